/* accel: checking every cached chunk of an image against its hash —
 * what accel-cache verify does, while others may serve the image.
 *
 * A server checks a chunk the first time it reads it and then trusts
 * it, so damage that happens later (a bad disk, someone writing into
 * the data file) would be served until the server restarts.  This walk
 * finds it: each present chunk is read and hashed without any lock,
 * with the read path's seqlock (the state before and after the read
 * must be the same, else the chunk changed underneath and is skipped),
 * and the bad ones are dropped through eviction, so that every server
 * notices and fetches them again.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "cache-internal.h"
#include "cleanup.h"
#include "file-io.h"
#include "report.h"

/* Check one present chunk seen in state s.  1 good, 0 bad, 2 changed
 * while it was read, -1 error.
 */
static int
check_chunk (const struct cache_view *v, uint64_t idx, uint32_t s,
             unsigned char *buf, cache_expected_fn expected, void *opaque)
{
  struct map_entry *e = &v->entries[idx];
  uint32_t len = cache_view_chunk_len (v, idx);
  unsigned char want[32], got[32];
  ssize_t r;
  int have = 0;

  r = pread_full (v->data_fd, buf, len, idx * v->map->chunk_size);
  if (r == -1) {
    report_error ("cache: %s/data: read: %m", v->id);
    return -1;
  }
  cache_drop_pages (v->data_fd, idx * v->map->chunk_size, len);
  if (expected) {
    have = expected (opaque, idx, want);
    if (have == -1)
      return -1;
  }
  /* NB: the recorded hash, like the bytes, is read before the state is
   * checked again (as in read_verify).
   */
  if (!have)
    cache_hash_load (want, e->sha256);
  if (atomic_load_explicit (&e->state, memory_order_acquire) != s)
    return 2;
  if (r != len)
    return 0; /* the data file is short */
  SHA256 (buf, len, got);
  return memcmp (want, got, 32) == 0;
}

int
cache_dir_verify_image (struct cache_dir *d, const char *id,
                        cache_expected_fn expected, void *opaque,
                        struct cache_verify_result *res)
{
  struct cache_view *views = NULL, *v;
  CLEANUP_FREE unsigned char *buf = NULL;
  CLEANUP_FREE struct cache_victim *bad = NULL;
  size_t nr_views = 0, nr_bad = 0, max_bad = 0;
  uint64_t i;
  int r = -1;

  memset (res, 0, sizeof *res);
  if (cache_views_open (d, id, true, &views, &nr_views) == -1)
    return -1;
  if (nr_views == 0) {
    report_error ("cache: %s/images/%s: no such image, or no valid map",
                  d->path, id);
    goto out;
  }
  v = &views[0];
  cache_no_readahead (v->data_fd);
  buf = malloc (v->map->chunk_size);
  if (buf == NULL) {
    report_error ("malloc: %m");
    goto out;
  }

  for (i = 0; i < v->map->nr_chunks; i++) {
    uint32_t s =
        atomic_load_explicit (&v->entries[i].state, memory_order_acquire);
    int c;

    if (!(s & STATE_PRESENT))
      continue;
    c = check_chunk (v, i, s, buf, expected, opaque);
    if (c == -1)
      goto out;
    if (c == 2) {
      res->changed++;
      continue;
    }
    res->checked++;
    if (c == 1)
      continue;
    res->bad++;
    report_debug ("cache: %s: chunk %" PRIu64 " is damaged: dropping it", id,
                  i);
    if (nr_bad == max_bad) {
      size_t m = max_bad ? max_bad * 2 : 64;
      struct cache_victim *p = realloc (bad, m * sizeof *p);

      if (p == NULL) {
        report_error ("realloc: %m");
        goto out;
      }
      bad = p;
      max_bad = m;
    }
    bad[nr_bad++] = (struct cache_victim){ .v = v, .idx = i, .state = s };
  }

  r = 0;
  if (nr_bad > 0) {
    if (cache_dir_lock (d) == -1)
      r = -1;
    else {
      r = cache_evict_victims_locked (bad, nr_bad, NULL);
      cache_dir_unlock (d);
    }
  }

out:
  cache_views_close (views, nr_views);
  return r;
}
