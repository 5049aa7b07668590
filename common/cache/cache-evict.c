/* accel: eviction — the one way chunks leave the cache.
 *
 * Runs with the directory lock held: by a store that needs room, by a
 * reader that found a chunk damaged (cache_evict_chunk), and by
 * accel-cache (evict, gc, verify).  Whoever chooses the victims, they
 * go the same way: each is marked absent by a compare-and-swap from the
 * state it was chosen in to the next generation (so that readers in any
 * process notice, and a chunk that changed meanwhile is left alone),
 * the marked entries are made durable, and only then are the chunks'
 * holes punched.
 *
 * Least-recently-used choice maps every image's map file, gathers the
 * present chunks (of one image, or last used before some time, if
 * asked) and takes the chunks of images that nobody serves first, the
 * oldest first among them, then the oldest of served images.  An image
 * nobody serves (an old version of a dataset, unmounted) is only kept
 * for a later dedup or a remount; a served one's chunks are being read.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cache-internal.h"
#include "cleanup.h"
#include "report.h"

/* A present chunk that could be evicted. */
struct candidate {
  bool served; /* a process serves its image (serve.lock is held) */
  uint32_t atime;
  uint32_t state;
  uint32_t view;
  uint64_t idx;
};

/* qsort order: images nobody serves first, then least recently used. */
static int
compare_victims (const void *a, const void *b)
{
  const struct candidate *x = a, *y = b;

  if (x->served != y->served)
    return x->served ? 1 : -1;
  if (x->atime != y->atime)
    return x->atime < y->atime ? -1 : 1;
  return 0;
}

/* Make the entries this process marked durable (only their pages). */
static int
sync_marked (struct cache_view *v)
{
  long page = sysconf (_SC_PAGESIZE);
  uintptr_t start, end;

  if (v->dirty_lo >= v->dirty_hi)
    return 0;
  start = (uintptr_t) &v->entries[v->dirty_lo] & ~(uintptr_t) (page - 1);
  end = (uintptr_t) &v->entries[v->dirty_hi];
  if (msync ((void *) start, end - start, MS_SYNC) == -1) {
    report_error ("cache: %s/map: msync: %m", v->id);
    return -1;
  }
  v->dirty_lo = v->dirty_hi = 0;
  return 0;
}

int
cache_evict_victims_locked (struct cache_victim *victims, size_t n,
                            struct cache_evict_result *res)
{
  size_t i;

  /* Mark.  A victim whose state changed since it was chosen (evicted by
   * someone else, evicted and stored again) is not ours to drop.
   */
  for (i = 0; i < n; i++) {
    struct cache_view *v = victims[i].v;
    struct map_entry *e = &v->entries[victims[i].idx];
    uint32_t s = victims[i].state;

    if (!(s & STATE_PRESENT) ||
        !atomic_compare_exchange_strong (&e->state, &s, STATE_NEXT_GEN (s))) {
      victims[i].state = 0;
      continue;
    }
    if (v->dirty_lo >= v->dirty_hi) {
      v->dirty_lo = victims[i].idx;
      v->dirty_hi = victims[i].idx + 1;
    }
    else {
      if (victims[i].idx < v->dirty_lo)
        v->dirty_lo = victims[i].idx;
      if (victims[i].idx >= v->dirty_hi)
        v->dirty_hi = victims[i].idx + 1;
    }
  }

  /* The maps must say "absent" on disk before any hole is punched. */
  for (i = 0; i < n; i++)
    if (victims[i].state && sync_marked (victims[i].v) == -1)
      return -1;

  for (i = 0; i < n; i++) {
    struct cache_view *v = victims[i].v;
    uint64_t off = victims[i].idx * v->map->chunk_size;
    uint32_t len = cache_view_chunk_len (v, victims[i].idx);

    if (!victims[i].state)
      continue;
    if (cache_punch (v->data_fd, off, len) == -1)
      return -1;
    if (res) {
      res->chunks++;
      res->bytes += len;
    }
  }
  return 0;
}

int
cache_evict_lru_locked (struct cache_dir *d, const char *only_id,
                        uint32_t before, uint64_t need,
                        struct cache_evict_result *res)
{
  struct cache_view *views = NULL;
  CLEANUP_FREE struct candidate *cands = NULL;
  CLEANUP_FREE struct cache_victim *victims = NULL;
  size_t nr_views = 0, nr_cands = 0, max_cands = 0, nr_victims = 0, i, j;
  uint64_t chosen = 0;
  int r = -1;

  if (need == 0)
    return 0;
  if (cache_views_open (d, only_id, true, &views, &nr_views) == -1)
    return -1;

  /* Gather the present chunks that may go.  NB: whether an image is
   * served cannot change while the directory lock is held, except to
   * "not served" when its last server exits: then its chunks are just
   * taken a little later than they could have been.
   */
  for (i = 0; i < nr_views; i++) {
    struct cache_view *v = &views[i];
    bool served = cache_image_serving_locked (d, v->id, NULL);

    for (j = 0; j < v->map->nr_chunks; j++) {
      uint32_t s = atomic_load (&v->entries[j].state);
      uint32_t t = atomic_load (&v->entries[j].atime);

      if (!(s & STATE_PRESENT) || (before && t >= before))
        continue;
      if (nr_cands == max_cands) {
        size_t m = max_cands ? max_cands * 2 : 1024;
        struct candidate *c = realloc (cands, m * sizeof *c);
        if (c == NULL) {
          report_error ("realloc: %m");
          goto out;
        }
        cands = c;
        max_cands = m;
      }
      cands[nr_cands++] = (struct candidate){
        .served = served,
        .atime = t,
        .state = s,
        .view = i,
        .idx = j,
      };
    }
  }
  if (nr_cands == 0) {
    r = 0;
    goto out;
  }
  qsort (cands, nr_cands, sizeof *cands, compare_victims);

  /* In that order, until enough would be freed. */
  victims = malloc (nr_cands * sizeof *victims);
  if (victims == NULL) {
    report_error ("malloc: %m");
    goto out;
  }
  for (i = 0; i < nr_cands && chosen < need; i++) {
    struct cache_view *v = &views[cands[i].view];

    victims[nr_victims++] = (struct cache_victim){
      .v = v,
      .idx = cands[i].idx,
      .state = cands[i].state,
    };
    chosen += cache_view_chunk_len (v, cands[i].idx);
  }
  r = cache_evict_victims_locked (victims, nr_victims, res);

out:
  cache_views_close (views, nr_views);
  return r;
}

int
cache_evict_locked (struct cache_dir *d, uint64_t usage, uint64_t target,
                    uint64_t *nr_evicted)
{
  struct cache_evict_result res = { 0 };

  if (usage <= target)
    return 0;
  if (cache_evict_lru_locked (d, NULL, 0, usage - target, &res) == -1)
    return -1;
  report_debug ("cache: evicted %" PRIu64 " chunks (%" PRIu64 " bytes) "
                "to bring %" PRIu64 " bytes under %" PRIu64,
                res.chunks, res.bytes, usage, target);
  if (nr_evicted)
    *nr_evicted += res.chunks;
  return 0;
}

int
cache_dir_evict_to (struct cache_dir *d, uint64_t target)
{
  uint64_t usage;
  int r = 0;

  if (cache_dir_lock (d) == -1)
    return -1;
  if (cache_dir_usage_locked (d, &usage) == -1)
    r = -1;
  else if (usage > target)
    r = cache_evict_locked (d, usage, target, NULL);
  cache_dir_unlock (d);
  return r;
}

/* Forget one chunk found damaged or short, as eviction does: mark it
 * absent (bumping its generation, so concurrent readers retry), make
 * that durable, then free its blocks.  state is the state the caller
 * saw; if it changed meanwhile someone else already dealt with the chunk.
 */
int
cache_evict_chunk (struct cache_image *ci, uint64_t idx, uint32_t state)
{
  struct cache_view v = {
    .map_fd = ci->map_fd,
    .data_fd = ci->data_fd,
    .map = ci->map,
    .map_len = ci->map_len,
    .entries = ci->entries,
  };
  struct cache_victim victim = { .v = &v, .idx = idx, .state = state };
  int r;

  snprintf (v.id, sizeof v.id, "%s", ci->path + strlen (ci->path) - 64);
  if (cache_dir_lock (ci->dir) == -1)
    return -1;
  r = cache_evict_victims_locked (&victim, 1, NULL);
  cache_dir_unlock (ci->dir);
  return r;
}
