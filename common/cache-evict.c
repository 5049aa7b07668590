/* accel: least-recently-used eviction across every image in a cache
 * directory.
 *
 * Runs with the directory lock held (by a store that needs room, or by
 * accel-cache).  It maps every image's map file, picks the present chunks
 * with the oldest access times, marks them absent (bumping their
 * generation so that readers in any process notice), makes the maps
 * durable, and only then punches the chunks' holes.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache-internal.h"
#include "cleanup.h"
#include "report.h"

/* Cap on images in one directory that eviction will consider. */
#define MAX_IMAGES 4096

/* One image's files, mapped for the duration of an eviction. */
struct evict_image {
  int map_fd, data_fd;
  struct map_header *map;
  size_t map_len;
  bool dirty;
};

/* A present chunk that could be evicted. */
struct candidate {
  uint32_t atime;
  uint32_t state;
  uint32_t image;
  uint64_t idx;
};

static int
compare_atime (const void *a, const void *b)
{
  const struct candidate *x = a, *y = b;

  if (x->atime != y->atime)
    return x->atime < y->atime ? -1 : 1;
  return 0;
}

/* Map one image's map and open its data file.  Returns 1 if the image
 * is usable, 0 to skip it (not a valid map: nothing to evict), -1 error.
 */
static int
open_image (int images_fd, const char *name, struct evict_image *im)
{
  char path[300];
  struct stat st;
  const struct map_header *h;

  im->map_fd = im->data_fd = -1;
  im->map = NULL;
  im->dirty = false;

  snprintf (path, sizeof path, "%s/map", name);
  im->map_fd = openat (images_fd, path, O_RDWR | O_CLOEXEC);
  if (im->map_fd == -1)
    return 0;
  snprintf (path, sizeof path, "%s/data", name);
  im->data_fd = openat (images_fd, path, O_RDWR | O_CLOEXEC);
  if (im->data_fd == -1 || fstat (im->map_fd, &st) == -1 ||
      (uint64_t) st.st_size < MAP_HEADER_SIZE)
    return 0;
  im->map_len = st.st_size;
  im->map = mmap (NULL, im->map_len, PROT_READ | PROT_WRITE, MAP_SHARED,
                  im->map_fd, 0);
  if (im->map == MAP_FAILED) {
    im->map = NULL;
    report_error ("cache: evict: mmap %s/map: %m", name);
    return -1;
  }
  h = im->map;
  if (memcmp (h->magic, MAP_MAGIC, 8) != 0 ||
      h->version != CACHE_FORMAT_VERSION ||
      h->entry_size != sizeof (struct map_entry) || h->chunk_size == 0 ||
      (h->chunk_size & (h->chunk_size - 1)) != 0 || h->image_size == 0 ||
      h->nr_chunks != (h->image_size + h->chunk_size - 1) / h->chunk_size ||
      h->nr_chunks > (im->map_len - MAP_HEADER_SIZE) / h->entry_size)
    return 0;
  return 1;
}

static void
close_image (struct evict_image *im)
{
  if (im->map)
    munmap (im->map, im->map_len);
  if (im->map_fd >= 0)
    close (im->map_fd);
  if (im->data_fd >= 0)
    close (im->data_fd);
}

/* Bytes of chunk idx (the last one may be short). */
static uint64_t
chunk_bytes (const struct map_header *h, uint64_t idx)
{
  uint64_t off = idx * h->chunk_size;

  return off + h->chunk_size > h->image_size ? h->image_size - off
                                             : h->chunk_size;
}

static struct map_entry *
image_entries (const struct evict_image *im)
{
  return (struct map_entry *) ((char *) im->map + MAP_HEADER_SIZE);
}

int
cache_evict_locked (struct cache_dir *d, uint64_t usage, uint64_t target,
                    uint64_t *nr_evicted)
{
  CLEANUP_FREE char *images_path = NULL;
  CLEANUP_FREE struct evict_image *ims = NULL;
  CLEANUP_FREE struct candidate *cands = NULL;
  size_t nr_ims = 0, nr_cands = 0, max_cands = 0, i, n;
  uint64_t need = usage > target ? usage - target : 0, freed = 0;
  uint64_t evicted = 0;
  DIR *dir = NULL;
  struct dirent *ent;
  int r = -1;

  if (need == 0)
    return 0;
  if (asprintf (&images_path, "%s/images", d->path) == -1) {
    report_error ("asprintf: %m");
    return -1;
  }
  ims = calloc (MAX_IMAGES, sizeof *ims);
  if (ims == NULL) {
    report_error ("calloc: %m");
    return -1;
  }
  dir = opendir (images_path);
  if (dir == NULL) {
    report_error ("cache: evict: %s: %m", images_path);
    return -1;
  }

  /* Gather the present chunks of every image. */
  while ((ent = readdir (dir)) != NULL && nr_ims < MAX_IMAGES) {
    struct evict_image *im = &ims[nr_ims];
    struct map_entry *es;
    int ok;

    if (ent->d_name[0] == '.')
      continue;
    ok = open_image (dirfd (dir), ent->d_name, im);
    if (ok == -1) {
      close_image (im);
      goto out;
    }
    if (ok == 0) {
      close_image (im);
      continue;
    }
    nr_ims++;
    es = image_entries (im);
    for (i = 0; i < im->map->nr_chunks; i++) {
      uint32_t s = atomic_load (&es[i].state);
      if (!(s & STATE_PRESENT))
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
        .atime = atomic_load (&es[i].atime),
        .state = s,
        .image = nr_ims - 1,
        .idx = i,
      };
    }
  }

  if (nr_cands > 0)
    qsort (cands, nr_cands, sizeof *cands, compare_atime);

  /* Mark the oldest absent until enough is freed. */
  for (n = 0; n < nr_cands && freed < need; n++) {
    struct evict_image *im = &ims[cands[n].image];
    struct map_entry *e = &image_entries (im)[cands[n].idx];
    uint32_t s = cands[n].state;

    if (!atomic_compare_exchange_strong (&e->state, &s, STATE_NEXT_GEN (s))) {
      cands[n].state = 0; /* changed meanwhile: leave it */
      continue;
    }
    im->dirty = true;
    freed += chunk_bytes (im->map, cands[n].idx);
  }

  /* The maps must say "absent" on disk before any hole is punched. */
  for (i = 0; i < nr_ims; i++) {
    if (ims[i].dirty && msync (ims[i].map, ims[i].map_len, MS_SYNC) == -1) {
      report_error ("cache: evict: msync: %m");
      goto out;
    }
  }
  for (i = 0; i < n; i++) {
    struct evict_image *im = &ims[cands[i].image];
    uint64_t off, len;

    if (!(cands[i].state & STATE_PRESENT))
      continue;
    off = cands[i].idx * im->map->chunk_size;
    len = chunk_bytes (im->map, cands[i].idx);
    if (cache_punch (im->data_fd, off, len) == -1)
      goto out;
    evicted++;
  }
  report_debug ("cache: evicted %" PRIu64 " chunks (%" PRIu64 " bytes) "
                "to bring %" PRIu64 " bytes under %" PRIu64,
                evicted, freed, usage, target);
  if (nr_evicted)
    *nr_evicted += evicted;
  r = 0;

out:
  for (i = 0; i < nr_ims; i++)
    close_image (&ims[i]);
  closedir (dir);
  return r;
}
