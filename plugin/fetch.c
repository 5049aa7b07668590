/* accel plugin: the read path.
 *
 * A read is split into chunks.  Chunks the manifest marks all-zero are
 * answered with zeros, cached chunks from the cache (no lock), and the
 * rest are fetched.  A table of in-flight chunks makes sure each missing
 * chunk is fetched by one thread only: the first thread to want it owns
 * it, later ones wait for it.  An owner first looks for its chunks
 * locally (a copy that the cache holds for another image or offset:
 * cache-dedup.h), then fetches runs of adjacent owned chunks with one
 * ranged GET each (up to request_size bytes).  As each
 * chunk of the body comes, it is checked against the manifest (a damaged
 * one is fetched again a few times, never served), handed to the
 * waiters, then stored in the cache; the entry stays in the table until
 * the store is done, so a reader arriving meanwhile gets the same bytes.
 * A waiter never rereads the cache, so a store that fails (full disk)
 * costs nothing but the cache.
 *
 * Prefetch (fetch_prefetch) takes the same path, in GETs as large as
 * its batches (prefetch-request-size), but is counted apart:
 * it must stay behind everything else, so it asks how many foreground
 * reads are waiting on the origin (fetch_foreground_misses) before each
 * request.
 *
 * When the origin throttles, a GET of readahead or prefetch that would
 * wait behind a demand read fails with EAGAIN (s3.h): its chunks fail
 * with EAGAIN too, and a demand read that was waiting for one of them
 * claims it again and fetches it itself.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/sha.h>

#include "cleanup.h"
#include "clock.h"
#include "fetch.h"
#include "report.h"

/* Tries for a chunk whose bytes do not match the manifest. */
#define VERIFY_TRIES 3

#define INFLIGHT_BUCKETS 1024

/* The bytes of one GET, shared by the chunks it carried.  NB: data is
 * page-aligned (BLOB_HEADER bytes into the blob's mapping), so that the
 * cache can store chunks from it with O_DIRECT (cache_write_buffer).
 */
struct blob {
  _Atomic unsigned refs;
  uint64_t len; /* of data counted in the GET budget (0: not counted) */
  size_t cap; /* bytes data can hold */
  struct blob *next; /* in the pool of free blobs */
  unsigned char *data;
};

#define BLOB_HEADER 4096

/* Blob capacities are multiples of this, so that freed blobs fit the
 * next GETs (runs of whole chunks, up to request_size).
 */
#define BLOB_ROUND (1024 * 1024)

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
  _Atomic uint64_t chunk_fetches, fetch_bytes, requests, waits;
  _Atomic uint64_t verify_failures;
  _Atomic uint64_t zero_reads;
  _Atomic uint64_t read_hits, read_misses, hit_bytes, miss_bytes;
  _Atomic uint64_t latency[FETCH_LATENCY_BUCKETS + 1], latency_us;
  _Atomic uint64_t prefetch_chunks, prefetch_bytes;
} stats;

/* Foreground reads (not prefetch) now fetching or waiting for a fetch. */
static _Atomic unsigned foreground_misses;

void
fetch_init (uint32_t size)
{
  request_size = size;
}

void
fetch_get_stats (struct fetch_stats *out)
{
  out->chunk_fetches = stats.chunk_fetches;
  out->fetch_bytes = stats.fetch_bytes;
  out->requests = stats.requests;
  out->waits = stats.waits;
  out->verify_failures = stats.verify_failures;
  out->zero_reads = stats.zero_reads;
  out->prefetch_chunks = stats.prefetch_chunks;
  out->prefetch_bytes = stats.prefetch_bytes;
  out->read_hits = stats.read_hits;
  out->read_misses = stats.read_misses;
  out->hit_bytes = stats.hit_bytes;
  out->miss_bytes = stats.miss_bytes;
  for (size_t i = 0; i <= FETCH_LATENCY_BUCKETS; i++)
    out->latency[i] = stats.latency[i];
  out->latency_us = stats.latency_us;
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

unsigned
fetch_foreground_misses (void)
{
  return atomic_load (&foreground_misses);
}

static struct blob *pool_take (uint64_t len);
static void pool_give (struct blob *b);

/* A blob of at least len bytes, with one reference; NULL (errno set) on
 * failure.  From the pool of freed blobs if one fits, else a new
 * mapping (pool_take).
 */
static struct blob *
blob_new (uint64_t len, bool budgeted)
{
  struct blob *b = pool_take (len);

  if (b == NULL)
    return NULL;
  atomic_init (&b->refs, 1);
  b->len = budgeted ? len : 0;
  return b;
}

static void
blob_put (struct blob *b)
{
  if (b && atomic_fetch_sub (&b->refs, 1) == 1)
    pool_give (b);
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

/* With inflight_lock held: take an entry out of the table, so that
 * later reads go to the cache.
 */
static void
inflight_unlink_locked (struct inflight *e)
{
  struct inflight **p;

  if (!e->linked)
    return;
  for (p = &table[e->idx % INFLIGHT_BUCKETS]; *p; p = &(*p)->next) {
    if (*p == e) {
      *p = e->next;
      break;
    }
  }
  e->linked = false;
}

/* With inflight_lock held: finish an entry.  A failed one leaves the
 * table at once (a later read tries again); a done one stays until its
 * chunk is in the cache, handing its bytes to readers that come
 * meanwhile, so that they neither fetch it again nor wait for the
 * store.
 */
static void
inflight_finish_locked (struct inflight *e, struct blob *b,
                        const unsigned char *data, int err)
{
  if (err == 0) {
    e->state = DONE;
    e->blob = b;
    atomic_fetch_add (&b->refs, 1);
    e->data = data;
  }
  else {
    e->state = FAILED;
    e->err = err;
    inflight_unlink_locked (e);
  }
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
 * nothing to check against), 0 if damaged, -1 on error.  A good chunk's
 * hash is left in got (all zeros if there was no manifest), for the
 * store, which then need not hash it again.
 */
static int
chunk_good (struct image *img, uint64_t idx, const unsigned char *data,
            uint32_t len, unsigned char got[32])
{
  unsigned char want[32];

  memset (got, 0, 32);
  if (img->manifest == NULL)
    return 1;
  if (manifest_chunk_sha256 (img->manifest, idx, want) == -1)
    return -1;
  SHA256 (data, len, got);
  return memcmp (want, got, 32) == 0;
}

/* Whether chunk_good computed a hash (it had a manifest). */
static const unsigned char *
chunk_hash (struct image *img, const unsigned char got[32])
{
  return img->manifest ? got : NULL;
}

/* One ranged GET; marks the image stale on HTTP 412.  With progress,
 * the bytes are handed over as they come (s3_object_get_range_progress).
 */
static int
get_range (struct image *img, uint64_t offset, uint64_t len, void *buf,
           struct s3_progress *progress)
{
  if (img->offline) {
    report_error ("bytes %" PRIu64 "-%" PRIu64 " of %s are not in the cache, "
                  "and the origin was unreachable when nbdkit started "
                  "(serving offline): failing the read (restart nbdkit "
                  "once the origin is reachable)",
                  offset, offset + len - 1, img->name);
    errno = EIO;
    return -1;
  }
  uint64_t start = now_monotonic_us ();
  int r;

  stats.requests++;
  r = s3_object_get_range_progress (img->obj, offset, len, buf, progress);
  observe_latency (now_monotonic_us () - start);
  if (r == -1 && errno == ESTALE)
    atomic_store (&img->stale, true);
  return r;
}

/* Memory for GETs: the bytes of every blob alive are counted, and a new
 * GET waits while they would pass INFLIGHT_BUDGET, unless no other GET
 * is under way (then the blobs alive are only held by readers about to
 * copy from them, and waiting could wait for ourselves).  This bounds
 * the plugin's memory whatever the image size, the number of clients or
 * request-size.
 *
 * Freed blobs are kept in a pool and reused, up to POOL_MAX bytes and as
 * long as the pool and the blobs alive stay within the budget too: a new mapping costs a page
 * fault per 4 KiB as curl fills it (dear in a VM), zeroed pages, and an
 * munmap with TLB shootdowns on every CPU; a reused one costs none of
 * that.  New blobs are mapped pre-faulted (MAP_POPULATE: one call
 * instead of a fault per page).  NB: mapped, not malloc'd: glibc would
 * keep freed megabytes in each thread's arena.
 */
#define INFLIGHT_BUDGET (32 * 1024 * 1024)

/* The most the pool keeps: two GETs of the default request-size. */
#define POOL_MAX (16 * 1024 * 1024)

/* budget_lock protects the budget's counts and the pool. */
static pthread_mutex_t budget_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t budget_freed = PTHREAD_COND_INITIALIZER;
static uint64_t budget_used; /* bytes of live blobs */
static unsigned budget_gets; /* GETs under way */
static struct blob *pool; /* free blobs */
static uint64_t pool_bytes; /* their capacity */

static void
blob_unmap (struct blob *b)
{
  munmap (b, BLOB_HEADER + b->cap);
}

static struct blob *
pool_take (uint64_t len)
{
  struct blob *b = NULL, **p, **best = NULL, *drop = NULL;
  size_t cap = (len + BLOB_ROUND - 1) / BLOB_ROUND * BLOB_ROUND;
  void *m;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&budget_lock);
    for (p = &pool; *p; p = &(*p)->next)
      if ((*p)->cap >= len && (best == NULL || (*p)->cap < (*best)->cap))
        best = p;
    if (best) {
      b = *best;
      *best = b->next;
      pool_bytes -= b->cap;
      return b;
    }
    /* None fits: unmap free blobs (outside the lock) as long as they
     * and the new one would pass the budget.
     */
    while (pool && pool_bytes + budget_used + cap > INFLIGHT_BUDGET) {
      b = pool;
      pool = b->next;
      pool_bytes -= b->cap;
      b->next = drop;
      drop = b;
    }
  }
  while (drop) {
    b = drop;
    drop = b->next;
    blob_unmap (b);
  }

  m = mmap (NULL, BLOB_HEADER + cap, PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (m == MAP_FAILED)
    return NULL;
  b = m;
  b->cap = cap;
  b->data = (unsigned char *) m + BLOB_HEADER;
  return b;
}

/* A blob nobody holds any more: back to the pool while the pool and the
 * blobs alive stay within the budget, else unmapped.
 */
static void
pool_give (struct blob *b)
{
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&budget_lock);
    budget_used -= b->len;
    pthread_cond_broadcast (&budget_freed);
    if (pool_bytes + b->cap <= POOL_MAX &&
        pool_bytes + budget_used + b->cap <= INFLIGHT_BUDGET) {
      b->next = pool;
      pool = b;
      pool_bytes += b->cap;
      return;
    }
  }
  blob_unmap (b);
}

static void
budget_take (uint64_t len)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&budget_lock);
  while (budget_gets > 0 && budget_used + len > INFLIGHT_BUDGET)
    pthread_cond_wait (&budget_freed, &budget_lock);
  budget_used += len;
  budget_gets++;
}

static void
budget_get_done (void)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&budget_lock);
  budget_gets--;
  pthread_cond_broadcast (&budget_freed);
}

static void
budget_release (uint64_t len)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&budget_lock);
  budget_used -= len;
  pthread_cond_broadcast (&budget_freed);
}

/* A run of adjacent owned chunks being fetched with one GET. */
struct run {
  struct image *img;
  struct fetch_miss *miss;
  size_t n;
  struct blob *b;
  bool prefetch; /* counted as prefetch (fetch_prefetch) */
  size_t next; /* chunks before this one have been handled */
  uint64_t next_pos; /* where chunk next starts in b->data */
};

/* Hand chunk i of the run to its waiters (DONE with its bytes, or
 * FAILED with err), then store good bytes in the cache: readers never
 * wait for the store, which may wait for the cache directory's lock
 * (another process evicting).
 */
static void
finish_chunk (struct run *r, size_t i, const unsigned char *data,
              const unsigned char *sha256, int err)
{
  uint32_t clen = image_chunk_len (r->img, r->miss[i].idx);

  r->miss[i].handled = true;
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&inflight_lock);
    inflight_finish_locked (r->miss[i].e, r->b, data, err);
    pthread_cond_broadcast (&inflight_done);
  }
  if (err)
    return;
  if (r->prefetch) {
    stats.prefetch_chunks++;
    stats.prefetch_bytes += clen;
  }
  if ((sha256 ? cache_store_hashed (r->img->cache, r->miss[i].idx, data, clen,
                                    sha256)
              : cache_store (r->img->cache, r->miss[i].idx, data, clen)) == -1)
    report_debug ("chunk %" PRIu64 " served but not cached", r->miss[i].idx);
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&inflight_lock);
  inflight_unlink_locked (r->miss[i].e);
}

/* Bytes [0, done) of the run's blob have come: check and hand over
 * every chunk now complete, so that a reader waiting for the first
 * chunk of a long GET does not wait for the whole of it.  A chunk that
 * does not match the manifest is left for fetch_run to fetch again.
 */
static uint64_t
run_progress (void *opaque, uint64_t done)
{
  struct run *r = opaque;

  while (r->next < r->n) {
    size_t i = r->next;
    uint32_t clen = image_chunk_len (r->img, r->miss[i].idx);
    const unsigned char *data = r->b->data + r->next_pos;
    unsigned char sha[32];
    int good;

    if (r->next_pos + clen > done)
      break;
    r->next++;
    r->next_pos += clen;
    stats.chunk_fetches++;
    stats.fetch_bytes += clen;
    good = chunk_good (r->img, r->miss[i].idx, data, clen, sha);
    if (good == 1)
      finish_chunk (r, i, data, chunk_hash (r->img, sha), 0);
    else if (good == -1)
      finish_chunk (r, i, NULL, NULL, errno ? errno : EIO);
    else {
      stats.verify_failures++;
      report_debug ("chunk %" PRIu64 " of %s does not match its manifest "
                    "hash (try 1): fetching it again",
                    r->miss[i].idx, r->img->name);
    }
  }
  /* Whole chunks handled: a retry must not write over them, and may
   * write over the rest (s3.h).
   */
  return r->next_pos;
}

/* A chunk that failed its check once: fetch it alone until it matches,
 * VERIFY_TRIES fetches in all.  Returns 1 (good), 0 (never matched,
 * reported) or -1 (the GET failed, errno set).  The caller bounds the
 * time of these GETs (s3_set_thread_deadline).
 */
static int
refetch_chunk (struct image *img, uint64_t idx, unsigned char *data,
               uint32_t clen, unsigned char sha[32])
{
  int tries, good = 0;

  for (tries = 2; tries <= VERIFY_TRIES; tries++) {
    if (get_range (img, idx * img->chunk_size, clen, data, NULL) == -1)
      return -1;
    stats.chunk_fetches++;
    stats.fetch_bytes += clen;
    good = chunk_good (img, idx, data, clen, sha);
    if (good != 0)
      return good;
    stats.verify_failures++;
    report_debug ("chunk %" PRIu64 " of %s does not match its manifest hash "
                  "(try %d)%s",
                  idx, img->name, tries,
                  tries < VERIFY_TRIES ? ": fetching it again" : "");
  }
  report_error ("chunk %" PRIu64 " (bytes %" PRIu64 "-%" PRIu64 ") of %s "
                "does not match the manifest's hash after %d fetches: "
                "refusing to serve it (the object or its manifest is wrong)",
                idx, idx * img->chunk_size, idx * img->chunk_size + clen - 1,
                img->name, VERIFY_TRIES);
  return 0;
}

/* Get an owned missing chunk without the origin, if we can: from the
 * cache, if another thread stored it between our lookup and our claim
 * (so it is not fetched twice); else a copy that the cache holds for
 * any image (cache-dedup.h), which that stores for this image too.  True
 * if done: the chunk's entry then has its bytes, for us and any waiters.
 * (The one-chunk blob is not counted in the GET budget: len 0.)
 */
static bool
fill_locally (struct image *img, struct fetch_miss *m)
{
  uint32_t len = image_chunk_len (img, m->idx);
  unsigned char want[32];
  struct blob *b;
  bool done = false;

  if (!cache_contains (img->cache, m->idx) && img->dedup == NULL)
    return false;
  b = blob_new (len, false);
  if (b == NULL)
    return false;
  if (cache_contains (img->cache, m->idx) &&
      cache_read_uncounted (img->cache, m->idx, 0, len, b->data) == 1)
    done = true;
  else if (img->dedup &&
           manifest_chunk_sha256 (img->manifest, m->idx, want) == 0 &&
           cache_dedup_copy (img->dedup, m->idx, want, b->data) == 1)
    done = true;
  if (done) {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&inflight_lock);
    inflight_finish_locked (m->e, b, b->data, 0);
    inflight_unlink_locked (m->e);
    pthread_cond_broadcast (&inflight_done);
  }
  blob_put (b);
  return done;
}

/* Fetch the n owned chunks starting at run[0] with one GET, verify and
 * store them, and hand them to their waiters as they come.
 */
static void
fetch_run (struct image *img, struct fetch_miss *miss, size_t n, bool prefetch)
{
  struct run r = { .img = img, .miss = miss, .n = n, .prefetch = prefetch };
  struct s3_progress progress = { .fn = run_progress, .opaque = &r };
  uint64_t len = 0, pos, budget = img->s3 ? s3_client_budget_ns (img->s3) : 0;
  uint64_t start = now_monotonic_ns ();
  int err = 0;
  size_t i;

  for (i = 0; i < n; i++)
    len += image_chunk_len (img, miss[i].idx);

  budget_take (len);
  r.b = blob_new (len, true);
  if (r.b == NULL) {
    report_error ("mmap: %m");
    err = ENOMEM;
  }
  else {
    if (get_range (img, miss[0].idx * img->chunk_size, len, r.b->data,
                   &progress) == -1)
      err = errno ? errno : EIO;
  }
  budget_get_done ();

  /* What the GET did not hand over: chunks that failed their check, and
   * all those after a failure.  The chunks fetched again share the
   * GET's budget, so that the read stays within the bound accel-mount
   * gives the kernel (README, "Timeouts"), however many fail.
   */
  if (budget)
    s3_set_thread_deadline (start + budget);
  for (i = 0, pos = 0; i < n; pos += image_chunk_len (img, miss[i].idx), i++) {
    uint32_t clen = image_chunk_len (img, miss[i].idx);
    unsigned char sha[32];
    int good;

    if (miss[i].handled)
      continue;
    if (err || i >= r.next) {
      finish_chunk (&r, i, NULL, NULL, err ? err : EIO);
      continue;
    }
    good = refetch_chunk (img, miss[i].idx, r.b->data + pos, clen, sha);
    if (good == 1)
      finish_chunk (&r, i, r.b->data + pos, chunk_hash (img, sha), 0);
    else
      finish_chunk (&r, i, NULL, NULL, good == 0 ? EIO : (errno ? errno : EIO));
  }
  s3_set_thread_deadline (0);
  if (r.b == NULL)
    budget_release (len);
  blob_put (r.b);
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

/* Scope exit of a foreground read that waited on the origin. */
static void
foreground_done (bool *waiting)
{
  if (*waiting)
    atomic_fetch_sub (&foreground_misses, 1);
}

/* Refuse every read once the origin object changed under us (HTTP
 * 412): two versions of an image must never be mixed.
 */
static int
check_not_stale (struct image *img)
{
  if (atomic_load (&img->stale)) {
    report_error ("%s changed since it was opened: not serving it any "
                  "more (restart nbdkit to serve the new version)",
                  img->name);
    errno = ESTALE;
    return -1;
  }
  return 0;
}

/* The first pass over the read's chunks, without the origin: answer
 * all-zero chunks and cache hits into buf (with buf NULL, only see
 * which chunks are cached), and list the others in misses.  Counts the
 * read as a hit or a miss.  Returns how many were listed, or -1 if the
 * cache failed (reported).
 */
static ssize_t
find_misses (struct image *img, void *buf, uint32_t count, uint64_t offset,
             struct fetch_miss *misses, bool counted)
{
  uint64_t first = offset / img->chunk_size;
  uint64_t last = (offset + count - 1) / img->chunk_size, idx;
  uint32_t coff, clen, boff;
  size_t nr = 0;
  int r;

  for (idx = first; idx <= last; idx++) {
    chunk_part (img, idx, offset, count, &coff, &clen, &boff);
    if (image_chunk_is_zero (img, idx)) {
      if (counted)
        continue; /* zeroed on the first pass */
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
        if (!counted)
          stats.hit_bytes += clen;
        continue;
      }
      if (!counted)
        stats.miss_bytes += clen;
    }
    misses[nr++] = (struct fetch_miss){ .idx = idx };
  }
  if (buf && !counted) {
    if (nr == 0)
      stats.read_hits++;
    else
      stats.read_misses++;
  }
  return nr;
}

/* Claim each missing chunk (then this read fetches it) or join the
 * fetch another thread has under way.  If an entry cannot be made, let
 * go of those taken so far, failing the ones we own, so that nobody
 * waits for them; -1 (reported).
 */
static int
claim_misses (struct fetch_miss *misses, size_t nr)
{
  size_t i, j;

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
  return 0;
}

size_t
fetch_run_length (const struct image *img, const struct fetch_miss *miss,
                  size_t nr, uint32_t max_bytes)
{
  uint64_t bytes;
  size_t n;

  if (nr == 0 || !miss[0].owner)
    return 0;
  bytes = image_chunk_len (img, miss[0].idx);
  for (n = 1; n < nr && miss[n].owner && miss[n].idx == miss[n - 1].idx + 1 &&
       bytes + image_chunk_len (img, miss[n].idx) <= max_bytes;
       n++)
    bytes += image_chunk_len (img, miss[n].idx);
  return n;
}

/* Get every chunk this read owns: locally if possible (fill_locally),
 * else in runs of adjacent chunks, one GET each.  Failures are handed
 * to the chunks' entries (and so to every reader waiting for them).
 */
static void
fetch_owned (struct image *img, struct fetch_miss *misses, size_t nr,
             bool prefetch, uint32_t max_get)
{
  size_t i, n;

  for (i = 0; i < nr; i++)
    if (misses[i].owner && fill_locally (img, &misses[i]))
      misses[i].owner = false; /* done: nothing left to fetch */

  for (i = 0; i < nr; i += n) {
    n = fetch_run_length (img, &misses[i], nr - i, max_get);
    if (n > 0)
      fetch_run (img, &misses[i], n, prefetch);
    else
      n = 1; /* another thread's fetch, or filled locally */
  }
}

/* Wait for the fetches of others, copy every missing chunk's part into
 * buf (unless NULL) and let go of the entries.  Returns 0, or the errno
 * of the first chunk that failed.  NB: the copy is made outside
 * inflight_lock, which every read and fetch takes, holding a reference
 * to the chunk's blob instead.
 */
static int
collect_misses (struct image *img, void *buf, uint32_t count, uint64_t offset,
                struct fetch_miss *misses, size_t nr)
{
  uint32_t coff, clen, boff;
  int err = 0;
  size_t i;

  for (i = 0; i < nr; i++) {
    struct inflight *e = misses[i].e;
    struct blob *b = NULL;
    const unsigned char *data = NULL;

    {
      ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&inflight_lock);
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
        b = e->blob;
        atomic_fetch_add (&b->refs, 1);
        data = e->data;
      }
      inflight_put_locked (e);
    }
    if (b) {
      chunk_part (img, misses[i].idx, offset, count, &coff, &clen, &boff);
      memcpy ((char *) buf + boff, data + coff, clen);
      blob_put (b);
    }
  }
  return err;
}

/* One pass of read_range; counted: an earlier pass counted the read
 * and zeroed its all-zero chunks.
 */
static int
read_range_pass (struct image *img, void *buf, uint32_t count, uint64_t offset,
                 bool prefetch, uint32_t max_get, bool counted)
{
  CLEANUP_FREE struct fetch_miss *misses = NULL;
  __attribute__ ((cleanup (foreground_done))) bool waiting = false;
  uint64_t nr_chunks;
  ssize_t nr;
  int err;

  if (count == 0)
    return 0;
  if (check_not_stale (img) == -1)
    return -1;
  nr_chunks =
      (offset + count - 1) / img->chunk_size - offset / img->chunk_size + 1;
  misses = malloc (nr_chunks * sizeof *misses);
  if (misses == NULL) {
    report_error ("malloc: %m");
    return -1;
  }
  nr = find_misses (img, buf, count, offset, misses, counted);
  if (nr <= 0)
    return nr;
  if (!prefetch) {
    atomic_fetch_add (&foreground_misses, 1);
    waiting = true;
  }
  if (claim_misses (misses, nr) == -1)
    return -1;
  fetch_owned (img, misses, nr, prefetch, max_get);
  err = collect_misses (img, buf, count, offset, misses, nr);
  if (err) {
    /* The owner reported the cause; a waiter adds which read failed. */
    errno = err;
    return -1;
  }
  return 0;
}

/* fetch_read and fetch_prefetch: zeros and cache hits first, then the
 * missing chunks, each fetched by one thread only.  A demand read whose
 * chunks were left by a readahead or prefetch GET that yielded to the
 * throttle (EAGAIN) goes again: it never yields, so the next pass
 * fetches them itself.
 */
static int
read_range (struct image *img, void *buf, uint32_t count, uint64_t offset,
            bool prefetch, uint32_t max_get)
{
  bool counted = false;
  int r;

  for (;;) {
    r = read_range_pass (img, buf, count, offset, prefetch, max_get, counted);
    if (r == 0 || errno != EAGAIN || prefetch ||
        s3_thread_priority () != S3_PRIORITY_DEMAND)
      return r;
    counted = true;
  }
}

int
fetch_read (struct image *img, void *buf, uint32_t count, uint64_t offset)
{
  return read_range (img, buf, count, offset, false, request_size);
}

int
fetch_cache (struct image *img, uint32_t count, uint64_t offset,
             uint32_t max_get)
{
  return read_range (img, NULL, count, offset, false,
                     max_get > request_size ? max_get : request_size);
}

int
fetch_prefetch (struct image *img, uint32_t count, uint64_t offset)
{
  /* The plan sized the batch (prefetch-request-size): one GET. */
  return read_range (img, NULL, count, offset, true,
                     count > request_size ? count : request_size);
}
