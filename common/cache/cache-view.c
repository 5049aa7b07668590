/* accel: the maps of a cache directory's images, opened by name —
 * how eviction, dedup and accel-cache see images they do not serve.
 *
 * A view opens DIR/images/ID/map and data without taking part in
 * serving (no serve.lock) and reads the map's entries with the same
 * atomic loads as the read path, so looking needs no lock.  Only the
 * question "does a process serve this image?" needs the directory lock:
 * a process opening an image holds it until it holds serve.lock.
 */

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache-internal.h"
#include "cleanup.h"
#include "manifest.h"
#include "report.h"

/* An image directory's name: 64 lowercase hex digits. */
bool
cache_is_image_id (const char *name)
{
  size_t i;

  for (i = 0; i < 64; i++)
    if (!isxdigit ((unsigned char) name[i]) ||
        isupper ((unsigned char) name[i]))
      return false;
  return name[64] == '\0';
}

int
cache_view_open (int images_fd, const char *id, bool writable,
                 struct cache_view *v)
{
  char path[100];
  struct stat st;
  const struct map_header *h;
  int flags = (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC;

  memset (v, 0, sizeof *v);
  v->map_fd = v->data_fd = -1;
  snprintf (v->id, sizeof v->id, "%s", id);

  /* NB: a missing file is an image being created or removed (nothing
   * to see), anything else an error that must not be passed over.
   */
  snprintf (path, sizeof path, "%s/map", id);
  v->map_fd = openat (images_fd, path, flags);
  if (v->map_fd >= 0) {
    snprintf (path, sizeof path, "%s/data", id);
    v->data_fd = openat (images_fd, path, flags);
  }
  if (v->map_fd == -1 || v->data_fd == -1) {
    int err = errno;

    if (err != ENOENT)
      report_error ("cache: %s: %s", path, strerror (err));
    cache_view_close (v);
    return err == ENOENT ? 0 : -1;
  }
  if (fstat (v->map_fd, &st) == -1) {
    report_error ("cache: %s/map: %m", id);
    cache_view_close (v);
    return -1;
  }
  if ((uint64_t) st.st_size < MAP_HEADER_SIZE) {
    cache_view_close (v);
    return 0;
  }
  v->map_len = st.st_size;
  v->map = mmap (NULL, v->map_len, PROT_READ | (writable ? PROT_WRITE : 0),
                 MAP_SHARED, v->map_fd, 0);
  if (v->map == MAP_FAILED) {
    v->map = NULL;
    report_error ("cache: mmap %s/map: %m", id);
    cache_view_close (v);
    return -1;
  }
  h = v->map;
  if (memcmp (h->magic, MAP_MAGIC, 8) != 0 ||
      h->version != CACHE_FORMAT_VERSION || h->header_size != MAP_HEADER_SIZE ||
      h->entry_size != sizeof (struct map_entry) ||
      !manifest_chunk_size_valid (h->chunk_size) || h->image_size == 0 ||
      h->nr_chunks != (h->image_size + h->chunk_size - 1) / h->chunk_size ||
      h->nr_chunks > (v->map_len - MAP_HEADER_SIZE) / h->entry_size) {
    cache_view_close (v);
    return 0;
  }
  v->entries = (struct map_entry *) ((char *) v->map + MAP_HEADER_SIZE);
  return 1;
}

void
cache_view_close (struct cache_view *v)
{
  if (v->map)
    munmap (v->map, v->map_len);
  if (v->map_fd >= 0)
    close (v->map_fd);
  if (v->data_fd >= 0)
    close (v->data_fd);
  v->map = NULL;
  v->entries = NULL;
  v->map_fd = v->data_fd = -1;
}

/* Bytes of chunk idx (the last one may be short). */
uint32_t
cache_view_chunk_len (const struct cache_view *v, uint64_t idx)
{
  uint64_t off = idx * v->map->chunk_size;

  return off + v->map->chunk_size > v->map->image_size
      ? v->map->image_size - off
      : v->map->chunk_size;
}

/* Open DIR/images as a directory stream. */
DIR *
cache_images_opendir (struct cache_dir *d)
{
  CLEANUP_FREE char *path = NULL;
  DIR *dir;

  if (asprintf (&path, "%s/images", d->path) == -1) {
    report_error ("asprintf: %m");
    return NULL;
  }
  dir = opendir (path);
  if (dir == NULL)
    report_error ("cache: %s: %m", path);
  return dir;
}

int
cache_views_open (struct cache_dir *d, const char *only_id, bool writable,
                  struct cache_view **views, size_t *n)
{
  struct cache_view *vs;
  struct dirent *ent;
  DIR *dir;
  size_t nr = 0;

  *views = NULL;
  *n = 0;
  vs = calloc (CACHE_MAX_IMAGES, sizeof *vs);
  if (vs == NULL) {
    report_error ("calloc: %m");
    return -1;
  }
  dir = cache_images_opendir (d);
  if (dir == NULL) {
    free (vs);
    return -1;
  }
  while ((ent = readdir (dir)) != NULL && nr < CACHE_MAX_IMAGES) {
    int r;

    if (!cache_is_image_id (ent->d_name) ||
        (only_id && strcmp (only_id, ent->d_name) != 0))
      continue;
    r = cache_view_open (dirfd (dir), ent->d_name, writable, &vs[nr]);
    if (r == -1) {
      closedir (dir);
      cache_views_close (vs, nr);
      return -1;
    }
    if (r == 1)
      nr++;
  }
  closedir (dir);
  *views = vs;
  *n = nr;
  return 0;
}

void
cache_views_close (struct cache_view *views, size_t n)
{
  size_t i;

  for (i = 0; i < n; i++)
    cache_view_close (&views[i]);
  free (views);
}

/* Try to take a flock on images/ID/NAME exclusively without waiting:
 * true if another process holds one (a file that is not there is not
 * held).  Otherwise the descriptor that holds it goes to *keep_fd if
 * asked (-1 if there is no such file), else is closed, which releases
 * it.
 */
static bool
held (struct cache_dir *d, const char *id, const char *name, int *keep_fd)
{
  char path[4096];
  int fd;

  if (keep_fd)
    *keep_fd = -1;
  if (snprintf (path, sizeof path, "%s/images/%s/%s", d->path, id, name) >=
      (int) sizeof path)
    return false;
  /* NB: a read-only descriptor is enough for flock, and never creates. */
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd == -1)
    return false; /* never served, or being removed */
  if (flock (fd, LOCK_EX | LOCK_NB) == -1) {
    close (fd);
    return true;
  }
  if (keep_fd)
    *keep_fd = fd;
  else
    close (fd);
  return false;
}

bool
cache_image_serving_locked (struct cache_dir *d, const char *id, int *keep_fd)
{
  int fd;

  if (keep_fd)
    *keep_fd = -1;
  if (held (d, id, "serve.lock", &fd))
    return true;
  /* Servers hold data too: they still serve if serve.lock was removed
   * under them (cache-image.c).
   */
  if (held (d, id, "data", NULL)) {
    if (fd != -1)
      close (fd);
    return true;
  }
  if (keep_fd)
    *keep_fd = fd;
  else if (fd != -1)
    close (fd); /* releases it */
  return false;
}

/* Copies of a chunk's hash out of and into the map. */
void
cache_hash_load (unsigned char out[32], const _Atomic unsigned char *hash)
{
  size_t i;

  for (i = 0; i < 32; i++)
    out[i] = atomic_load_explicit (&hash[i], memory_order_relaxed);
}
