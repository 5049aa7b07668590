/* accel plugin: the read path.
 *
 * A read is split into chunks.  Chunks the manifest marks all-zero are
 * answered with zeros, cached chunks from the cache (no lock), and the
 * rest are fetched.  A table of in-flight chunks makes sure each missing
 * chunk is fetched by one thread only: the first thread to want it owns
 * it, later ones wait for it.  An owner first looks for its chunks
 * locally (a copy that the cache holds for another image or offset:
 * cache-dedup.h), then fetches runs of adjacent owned chunks with one
 * ranged GET each (up to request_size bytes), checks each chunk against
 * the manifest (refetching a damaged one a few times, never serving it),
 * stores it in the cache, and hands the bytes to the waiters before
 * dropping them: a waiter never rereads the cache, so a store that fails
 * (full disk) costs nothing but the cache.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "cleanup.h"
#include "fetch.h"
#include "report.h"

/* Tries for a chunk whose bytes do not match the manifest. */
#define VERIFY_TRIES 3

#define INFLIGHT_BUCKETS 1024

/* The bytes of one GET, shared by the chunks it carried. */
struct blob {
  _Atomic unsigned refs;
  unsigned char data[];
};

enum { FETCHING, DONE, FAILED };

/* One chunk being fetched.  All fields but idx are protected by
 * inflight_lock.
 */
struct inflight {
  uint64_t idx;
  int state;
  int err; /* errno when FAILED */
  struct blob *blob; /* when DONE: holds the chunk's bytes */
  const unsigned char *data;
  unsigned refs; /* owner + waiters */
  bool linked; /* still in the table */
  struct inflight *next;
};

/* inflight_lock protects the table and every entry's state; waiters
 * sleep on inflight_done.  Never held over I/O.
 */
static pthread_mutex_t inflight_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t inflight_done = PTHREAD_COND_INITIALIZER;
static struct inflight *table[INFLIGHT_BUCKETS];

static uint32_t request_size = 8 * 1024 * 1024;

const double fetch_latency_bounds[FETCH_LATENCY_BUCKETS] = {
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
};

static struct {
  _Atomic uint64_t chunk_fetches, requests, waits, verify_failures;
  _Atomic uint64_t zero_reads;
  _Atomic uint64_t read_hits, read_misses, hit_bytes, miss_bytes;
  _Atomic uint64_t latency[FETCH_LATENCY_BUCKETS + 1], latency_us;
} stats;

/* A missing chunk of the current read. */
struct miss {
  uint64_t idx;
  struct inflight *e;
  bool owner;
};

void
fetch_init (uint32_t size)
{
  request_size = size;
}

void
fetch_get_stats (struct fetch_stats *out)
{
  out->chunk_fetches = stats.chunk_fetches;
  out->requests = stats.requests;
  out->waits = stats.waits;
  out->verify_failures = stats.verify_failures;
  out->zero_reads = stats.zero_reads;
  out->read_hits = stats.read_hits;
  out->read_misses = stats.read_misses;
  out->hit_bytes = stats.hit_bytes;
  out->miss_bytes = stats.miss_bytes;
  for (size_t i = 0; i <= FETCH_LATENCY_BUCKETS; i++)
    out->latency[i] = stats.latency[i];
  out->latency_us = stats.latency_us;
}

static uint64_t
now_us (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Count one GET's duration in its latency bucket. */
static void
observe_latency (uint64_t us)
{
  size_t i;

  for (i = 0; i < FETCH_LATENCY_BUCKETS; i++)
    if (us <= fetch_latency_bounds[i] * 1e6)
      break;
  stats.latency[i]++;
  stats.latency_us += us;
}

static void
blob_put (struct blob *b)
{
  if (b && atomic_fetch_sub (&b->refs, 1) == 1)
    free (b);
}

/* With inflight_lock held: find chunk idx's entry, or create it (then the
 * caller owns the fetch).
 */
static struct inflight *
inflight_get_locked (uint64_t idx, bool *owner)
{
  struct inflight **head = &table[idx % INFLIGHT_BUCKETS], *e;

  for (e = *head; e; e = e->next) {
    if (e->idx == idx) {
      e->refs++;
      *owner = false;
      return e;
    }
  }
  e = calloc (1, sizeof *e);
  if (e == NULL)
    return NULL;
  e->idx = idx;
  e->state = FETCHING;
  e->refs = 1;
  e->linked = true;
  e->next = *head;
  *head = e;
  *owner = true;
  return e;
}

/* With inflight_lock held: finish an entry and take it out of the table,
 * so later reads go to the cache.
 */
static void
inflight_finish_locked (struct inflight *e, struct blob *b,
                        const unsigned char *data, int err)
{
  struct inflight **p;

  if (err == 0) {
    e->state = DONE;
    e->blob = b;
    atomic_fetch_add (&b->refs, 1);
    e->data = data;
  }
  else {
    e->state = FAILED;
    e->err = err;
  }
  for (p = &table[e->idx % INFLIGHT_BUCKETS]; *p; p = &(*p)->next) {
    if (*p == e) {
      *p = e->next;
      break;
    }
  }
  e->linked = false;
}

static void
inflight_put_locked (struct inflight *e)
{
  if (--e->refs == 0) {
    blob_put (e->blob);
    free (e);
  }
}

/* Check one fetched chunk against the manifest.  Returns 1 if good (or
 * nothing to check against), 0 if damaged, -1 on error.
 */
static int
chunk_good (struct image *img, uint64_t idx, const unsigned char *data,
            uint32_t len)
{
  unsigned char want[32], got[32];

  if (img->manifest == NULL)
    return 1;
  if (manifest_chunk_sha256 (img->manifest, idx, want) == -1)
    return -1;
  SHA256 (data, len, got);
  return memcmp (want, got, 32) == 0;
}

/* One ranged GET; marks the image stale on HTTP 412. */
static int
get_range (struct image *img, uint64_t offset, uint64_t len, void *buf)
{
  uint64_t start = now_us ();
  int r;

  stats.requests++;
  r = s3_object_get_range (img->obj, offset, len, buf);
  observe_latency (now_us () - start);
  if (r == -1 && errno == ESTALE)
    atomic_store (&img->stale, true);
  return r;
}

/* Hand the bytes of an owned chunk (in b) to its waiters. */
static void
finish_owned (struct miss *m, struct blob *b)
{
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&inflight_lock);
    inflight_finish_locked (m->e, b, b->data, 0);
    pthread_cond_broadcast (&inflight_done);
  }
  blob_put (b);
}

/* Get an owned missing chunk without the origin, if we can: from the
 * cache, if another thread stored it between our lookup and our claim
 * (so it is not fetched twice); else a copy that the cache holds for
 * any image (cache-dedup.h).  True if done: the chunk's entry then has
 * its bytes, for us and any waiters.
 */
static bool
fill_locally (struct image *img, struct miss *m)
{
  uint32_t len = image_chunk_len (img, m->idx);
  unsigned char want[32];
  struct blob *b;

  if (!cache_contains (img->cache, m->idx) && img->dedup == NULL)
    return false;
  b = malloc (sizeof *b + len);
  if (b == NULL)
    return false;
  atomic_init (&b->refs, 1);
  if (cache_contains (img->cache, m->idx) &&
      cache_read (img->cache, m->idx, 0, len, b->data) == 1) {
    finish_owned (m, b);
    return true;
  }
  if (img->dedup && manifest_chunk_sha256 (img->manifest, m->idx, want) == 0 &&
      cache_dedup_copy (img->dedup, m->idx, want, b->data) == 1) {
    finish_owned (m, b);
    return true;
  }
  free (b);
  return false;
}

/* Fetch the n owned chunks starting at chunk first with one GET, verify
 * and store them, and hand them to their waiters.
 */
static void
fetch_run (struct image *img, struct miss *run, size_t n)
{
  uint64_t first = run[0].idx;
  uint64_t offset = first * img->chunk_size;
  uint64_t len = 0, pos;
  struct blob *b;
  int err = 0;
  size_t i;

  for (i = 0; i < n; i++)
    len += image_chunk_len (img, run[i].idx);

  b = malloc (sizeof *b + len);
  if (b == NULL) {
    report_error ("malloc: %m");
    err = ENOMEM;
  }
  else {
    atomic_init (&b->refs, 1);
    if (get_range (img, offset, len, b->data) == -1)
      err = errno ? errno : EIO;
  }

  for (i = 0, pos = 0; i < n; i++) {
    uint32_t clen = image_chunk_len (img, run[i].idx);
    unsigned char *data = err ? NULL : b->data + pos;
    int cerr = err, good = 1, tries;

    pos += clen;
    if (cerr == 0) {
      stats.chunk_fetches++;
      for (tries = 1;; tries++) {
        good = chunk_good (img, run[i].idx, data, clen);
        if (good != 0)
          break;
        stats.verify_failures++;
        report_debug ("chunk %" PRIu64 " of %s does not match its "
                      "manifest hash (try %d): fetching it again",
                      run[i].idx, s3_object_name (img->obj), tries);
        if (tries == VERIFY_TRIES)
          break;
        if (get_range (img, run[i].idx * img->chunk_size, clen, data) == -1) {
          good = -1;
          break;
        }
      }
      if (good == 0)
        report_error ("chunk %" PRIu64 " (bytes %" PRIu64 "-%" PRIu64
                      ") of %s does not match the manifest's hash after %d "
                      "fetches: refusing to serve it (the object or its "
                      "manifest is wrong)",
                      run[i].idx, run[i].idx * img->chunk_size,
                      run[i].idx * img->chunk_size + clen - 1,
                      s3_object_name (img->obj), VERIFY_TRIES);
      if (good != 1)
        cerr = good == 0 ? EIO : (errno ? errno : EIO);
      else if (cache_store (img->cache, run[i].idx, data, clen) == -1)
        report_debug ("chunk %" PRIu64 " served but not cached", run[i].idx);
    }

    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&inflight_lock);
    inflight_finish_locked (run[i].e, b, data, cerr);
    pthread_cond_broadcast (&inflight_done);
  }
  blob_put (b);
}

/* Where chunk idx's part of the read [offset, offset+count) lies. */
static void
chunk_part (const struct image *img, uint64_t idx, uint64_t offset,
            uint32_t count, uint32_t *coff, uint32_t *clen, uint32_t *boff)
{
  uint64_t cstart = idx * img->chunk_size;
  uint64_t start = offset > cstart ? offset : cstart;
  uint64_t cend = cstart + image_chunk_len (img, idx);
  uint64_t end = offset + count < cend ? offset + count : cend;

  *coff = start - cstart;
  *clen = end - start;
  *boff = start - offset;
}

int
fetch_read (struct image *img, void *buf, uint32_t count, uint64_t offset)
{
  CLEANUP_FREE struct miss *misses = NULL;
  uint64_t first, last, idx;
  size_t nr = 0, i, j;
  uint32_t coff, clen, boff;
  int r = 0, err = 0;

  if (count == 0)
    return 0;
  if (atomic_load (&img->stale)) {
    report_error ("%s changed since it was opened: not serving it any "
                  "more (restart nbdkit to serve the new version)",
                  s3_object_name (img->obj));
    errno = ESTALE;
    return -1;
  }
  first = offset / img->chunk_size;
  last = (offset + count - 1) / img->chunk_size;
  misses = malloc ((last - first + 1) * sizeof *misses);
  if (misses == NULL) {
    report_error ("malloc: %m");
    return -1;
  }

  /* Zeros, then cache hits; collect the rest. */
  for (idx = first; idx <= last; idx++) {
    chunk_part (img, idx, offset, count, &coff, &clen, &boff);
    if (image_chunk_is_zero (img, idx)) {
      stats.zero_reads++;
      if (buf) {
        memset ((char *) buf + boff, 0, clen);
        stats.hit_bytes += clen;
      }
      continue;
    }
    if (buf == NULL) {
      if (cache_contains (img->cache, idx))
        continue;
    }
    else {
      r = cache_read (img->cache, idx, coff, clen, (char *) buf + boff);
      if (r == -1)
        return -1;
      if (r == 1) {
        stats.hit_bytes += clen;
        continue;
      }
      stats.miss_bytes += clen;
    }
    misses[nr++] = (struct miss){ .idx = idx };
  }
  if (buf) {
    if (nr == 0)
      stats.read_hits++;
    else
      stats.read_misses++;
  }
  if (nr == 0)
    return 0;

  /* Claim the missing chunks or join their fetches. */
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&inflight_lock);
    for (i = 0; i < nr; i++) {
      misses[i].e = inflight_get_locked (misses[i].idx, &misses[i].owner);
      if (misses[i].e == NULL) {
        for (j = 0; j < i; j++) {
          if (misses[j].owner)
            inflight_finish_locked (misses[j].e, NULL, NULL, ENOMEM);
          inflight_put_locked (misses[j].e);
        }
        pthread_cond_broadcast (&inflight_done);
        report_error ("calloc: %m");
        return -1;
      }
    }
  }

  /* What can be had without the origin (fill_locally). */
  for (i = 0; i < nr; i++)
    if (misses[i].owner && fill_locally (img, &misses[i]))
      misses[i].owner = false; /* done: nothing left to fetch */

  /* Fetch runs of adjacent owned chunks, one GET each. */
  for (i = 0; i < nr; i = j) {
    uint64_t bytes;

    if (!misses[i].owner) {
      j = i + 1;
      continue;
    }
    bytes = image_chunk_len (img, misses[i].idx);
    for (j = i + 1;
         j < nr && misses[j].owner && misses[j].idx == misses[j - 1].idx + 1 &&
         bytes + image_chunk_len (img, misses[j].idx) <= request_size;
         j++)
      bytes += image_chunk_len (img, misses[j].idx);
    fetch_run (img, &misses[i], j - i);
  }

  /* Wait for the others' fetches, copy, let go. */
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&inflight_lock);
    for (i = 0; i < nr; i++) {
      struct inflight *e = misses[i].e;

      if (!misses[i].owner && e->state == FETCHING) {
        stats.waits++;
        while (e->state == FETCHING)
          pthread_cond_wait (&inflight_done, &inflight_lock);
      }
      if (e->state == FAILED) {
        if (err == 0)
          err = e->err;
      }
      else if (buf) {
        chunk_part (img, e->idx, offset, count, &coff, &clen, &boff);
        memcpy ((char *) buf + boff, e->data + coff, clen);
      }
      inflight_put_locked (e);
    }
  }

  if (err) {
    /* The owner reported the cause; a waiter adds which read failed. */
    errno = err;
    return -1;
  }
  return 0;
}
