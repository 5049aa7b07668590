/* accel: tidying a cache directory while others serve from it — what
 * accel-cache evict and gc do.
 *
 * Everything here runs under the directory lock and evicts through
 * cache-evict.c, like a store that makes room, so a process serving the
 * same images sees its chunks go exactly as it sees LRU eviction: its
 * next read of them is a miss and fetches them again.
 *
 * An image directory is removed as a whole (map, data, info) only when
 * nobody serves the image: serve.lock is then held exclusively while it
 * goes, and the directory lock keeps any new server waiting until it is
 * gone (it then starts a fresh one).  The local copy of the image's
 * manifest stays: it is small, and the next server would fetch it again.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache-internal.h"
#include "cleanup.h"
#include "report.h"

/* Rounds of eviction gc makes when freeing chunks frees fewer blocks
 * than it counted (a short last chunk, a file system's own blocks).
 */
#define GC_ROUNDS 4

/* With the directory lock held: remove image id's directory unless a
 * process serves it.  Counts in res what happened.
 */
static int
remove_image_locked (struct cache_dir *d, const char *id,
                     struct cache_evict_result *res)
{
  CLEANUP_FREE char *path = NULL;
  struct dirent *ent;
  DIR *dir;
  int fd, r = 0;

  if (cache_image_serving_locked (d, id, &fd)) {
    res->busy++;
    return 0;
  }
  if (asprintf (&path, "%s/images/%s", d->path, id) == -1) {
    report_error ("asprintf: %m");
    r = -1;
    goto out;
  }
  dir = opendir (path);
  if (dir == NULL) {
    report_error ("cache: %s: %m", path);
    r = -1;
    goto out;
  }
  while ((ent = readdir (dir)) != NULL) {
    if (strcmp (ent->d_name, ".") == 0 || strcmp (ent->d_name, "..") == 0)
      continue;
    if (unlinkat (dirfd (dir), ent->d_name, 0) == -1) {
      report_error ("cache: %s/%s: %m", path, ent->d_name);
      r = -1;
      break;
    }
  }
  closedir (dir);
  if (r == 0 && rmdir (path) == -1) {
    report_error ("cache: %s: %m", path);
    r = -1;
  }
  if (r == 0)
    res->removed++;
out:
  if (fd >= 0)
    close (fd); /* NB: after the files are gone */
  return r;
}

/* With the directory lock held: remove the directories of images whose
 * map is missing or not a valid map (a crash while one was created, a
 * damaged map) and that nobody serves.  No server can use their data,
 * and no eviction can free it (it sees no chunks), yet it counts
 * against the cap.  Only those not modified since before (0: any).
 * NB: under the directory lock an image is never half-created by
 * anyone but a process that already holds its serve.lock.
 */
static int
remove_unusable_locked (struct cache_dir *d, uint32_t before,
                        struct cache_evict_result *res)
{
  char (*ids)[65] = NULL;
  size_t n = 0, i;
  struct dirent *ent;
  DIR *dir;
  int r = 0;

  ids = calloc (CACHE_MAX_IMAGES, sizeof *ids);
  if (ids == NULL) {
    report_error ("calloc: %m");
    return -1;
  }
  dir = cache_images_opendir (d);
  if (dir == NULL) {
    free (ids);
    return -1;
  }
  while ((ent = readdir (dir)) != NULL && n < CACHE_MAX_IMAGES) {
    struct cache_view v;
    struct stat st;
    int o;

    if (!cache_is_image_id (ent->d_name))
      continue;
    o = cache_view_open (dirfd (dir), ent->d_name, false, &v);
    if (o == -1) {
      r = -1;
      break;
    }
    if (o == 1) {
      cache_view_close (&v);
      continue;
    }
    if (before &&
        (fstatat (dirfd (dir), ent->d_name, &st, 0) == -1 ||
         st.st_mtime >= (time_t) before))
      continue;
    memcpy (ids[n++], ent->d_name, 65);
  }
  closedir (dir);
  for (i = 0; i < n && r == 0; i++) {
    unsigned removed = res->removed;

    r = remove_image_locked (d, ids[i], res);
    if (r == 0 && res->removed != removed)
      report_debug ("cache: %s: removed an image whose map is missing or "
                    "damaged",
                    ids[i]);
  }
  free (ids);
  return r;
}

/* Lock, measure, run fn, measure again, unlock. */
static int
with_lock (struct cache_dir *d, struct cache_evict_result *res,
           int (*fn) (struct cache_dir *d, struct cache_evict_result *res,
                      const void *arg),
           const void *arg)
{
  int r;

  memset (res, 0, sizeof *res);
  if (cache_dir_lock (d) == -1)
    return -1;
  r = cache_dir_usage_locked (d, &res->usage_before);
  if (r == 0)
    r = fn (d, res, arg);
  if (r == 0)
    r = cache_dir_usage_locked (d, &res->usage_after);
  cache_dir_unlock (d);
  return r;
}

/* gc: eviction's order across images, measuring again, until under
 * target.
 */
static int
gc_locked (struct cache_dir *d, struct cache_evict_result *res, const void *arg)
{
  uint64_t target = *(const uint64_t *) arg, usage = res->usage_before;
  int round;

  /* First what nobody can use at all. */
  if (usage > target) {
    if (remove_unusable_locked (d, 0, res) == -1 ||
        cache_dir_usage_locked (d, &usage) == -1)
      return -1;
  }
  for (round = 0; round < GC_ROUNDS && usage > target; round++) {
    uint64_t before = res->chunks;

    if (cache_evict_lru_locked (d, NULL, 0, usage - target, res) == -1 ||
        cache_dir_usage_locked (d, &usage) == -1)
      return -1;
    if (res->chunks == before)
      break; /* nothing left to evict */
  }
  return 0;
}

int
cache_dir_gc (struct cache_dir *d, uint64_t target,
              struct cache_evict_result *res)
{
  return with_lock (d, res, gc_locked, &target);
}

/* evict IMAGE: every chunk, then the directory if nobody serves it. */
static int
evict_image_locked (struct cache_dir *d, struct cache_evict_result *res,
                    const void *arg)
{
  const char *id = arg;
  CLEANUP_FREE char *path = NULL;
  struct stat st;

  if (asprintf (&path, "%s/images/%s", d->path, id) == -1) {
    report_error ("asprintf: %m");
    return -1;
  }
  if (stat (path, &st) == -1) {
    report_error ("cache: %s: %m", path);
    return -1;
  }
  if (cache_evict_lru_locked (d, id, 0, UINT64_MAX, res) == -1)
    return -1;
  return remove_image_locked (d, id, res);
}

int
cache_dir_evict_image (struct cache_dir *d, const char *id,
                       struct cache_evict_result *res)
{
  return with_lock (d, res, evict_image_locked, id);
}

/* True if the view has no present chunk and none was used since t. */
static bool
unused_since (const struct cache_view *v, uint32_t t)
{
  uint64_t i;

  for (i = 0; i < v->map->nr_chunks; i++) {
    if ((atomic_load (&v->entries[i].state) & STATE_PRESENT) ||
        atomic_load (&v->entries[i].atime) >= t)
      return false;
  }
  return true;
}

/* evict --older-than: old chunks, then images unused since. */
static int
evict_older_locked (struct cache_dir *d, struct cache_evict_result *res,
                    const void *arg)
{
  uint32_t before = *(const uint32_t *) arg;
  struct cache_view *views;
  size_t n, i;
  int r = 0;

  if (before == 0)
    return 0;
  if (cache_evict_lru_locked (d, NULL, before, UINT64_MAX, res) == -1)
    return -1;
  /* Then the images nobody used since (and so now hold nothing). */
  if (cache_views_open (d, NULL, false, &views, &n) == -1)
    return -1;
  for (i = 0; i < n && r == 0; i++) {
    if (unused_since (&views[i], before))
      r = remove_image_locked (d, views[i].id, res);
  }
  cache_views_close (views, n);
  if (r == 0)
    r = remove_unusable_locked (d, before, res);
  return r;
}

int
cache_dir_evict_older (struct cache_dir *d, uint32_t before,
                       struct cache_evict_result *res)
{
  return with_lock (d, res, evict_older_locked, &before);
}
