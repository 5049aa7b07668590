/* accel: listing a cache directory for accel-cache — what each image
 * holds (through the views of cache-view.c), what its info file says,
 * and which local manifest copy describes which image.
 */

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache-internal.h"
#include "cleanup.h"
#include "file-io.h"
#include "report.h"
#include "sha256-file.h"

/* Largest info file read (it holds an identity and a URL). */
#define MAX_INFO 65536

/* The value of "key: value" lines of an info file.  NB: an identity
 * without a manifest spans lines ("object:...\netag:...\nsize:..."):
 * lines that start with no known key continue the value before.
 */
static char *
info_value (const char *text, const char *key)
{
  static const char *const keys[] = { "identity: ", "description: ",
                                      "image-size: ", "chunk-size: " };
  size_t klen = strlen (key);
  const char *p = text, *start = NULL, *end;
  size_t i;

  while (*p) {
    if (strncmp (p, key, klen) == 0 && p[klen] == ':' && p[klen + 1] == ' ' &&
        (p == text || p[-1] == '\n')) {
      start = p + klen + 2;
      break;
    }
    p++;
  }
  if (start == NULL)
    return NULL;
  /* The value ends before the next line that starts with a known key. */
  for (end = start; *end; end++) {
    if (*end != '\n')
      continue;
    if (end[1] == '\0')
      break;
    for (i = 0; i < sizeof keys / sizeof keys[0]; i++)
      if (strncmp (end + 1, keys[i], strlen (keys[i])) == 0)
        break;
    if (i < sizeof keys / sizeof keys[0])
      break;
  }
  return strndup (start, end - start);
}

/* Read DIR/images/ID/info into the identity and description. */
static int
read_info (int images_fd, struct cache_image_info *info)
{
  char path[100];
  CLEANUP_FREE char *text = malloc (MAX_INFO);
  ssize_t r;
  int fd;

  if (text == NULL) {
    report_error ("malloc: %m");
    return -1;
  }
  snprintf (path, sizeof path, "%s/info", info->id);
  fd = openat (images_fd, path, O_RDONLY | O_CLOEXEC);
  if (fd == -1)
    return 0; /* no info: the numbers are still worth showing */
  r = pread_full (fd, text, MAX_INFO - 1, 0);
  close (fd);
  if (r <= 0)
    return 0;
  text[r] = '\0';
  info->identity = info_value (text, "identity");
  info->description = info_value (text, "description");
  return 0;
}

/* Walk a map: what is present, its bytes, the last access, the
 * counters.
 */
static void
summarise (const struct cache_view *v, struct cache_image_info *info)
{
  const struct map_header *h = v->map;
  uint64_t i;

  info->valid = true;
  info->image_size = h->image_size;
  info->chunk_size = h->chunk_size;
  info->nr_chunks = h->nr_chunks;
  info->hit_reads = atomic_load_explicit (&h->hit_reads, memory_order_relaxed);
  info->hit_bytes = atomic_load_explicit (&h->hit_bytes, memory_order_relaxed);
  info->miss_reads =
      atomic_load_explicit (&h->miss_reads, memory_order_relaxed);
  info->miss_bytes =
      atomic_load_explicit (&h->miss_bytes, memory_order_relaxed);
  for (i = 0; i < h->nr_chunks; i++) {
    uint32_t s =
        atomic_load_explicit (&v->entries[i].state, memory_order_relaxed);
    uint32_t t =
        atomic_load_explicit (&v->entries[i].atime, memory_order_relaxed);

    if (s & STATE_PRESENT) {
      info->cached_chunks++;
      info->cached_bytes += cache_view_chunk_len (v, i);
    }
    if (t > info->last_use)
      info->last_use = t;
  }
}

/* Sort order: description (images without one last), then id. */
static int
compare_info (const void *a, const void *b)
{
  const struct cache_image_info *x = a, *y = b;
  int c;

  if (x->description && y->description) {
    c = strcmp (x->description, y->description);
    if (c != 0)
      return c;
  }
  else if (x->description || y->description)
    return x->description ? -1 : 1;
  return strcmp (x->id, y->id);
}

int
cache_dir_list (struct cache_dir *d, struct cache_image_info **images,
                size_t *n)
{
  struct cache_image_info *infos;
  struct dirent *ent;
  DIR *dir;
  size_t nr = 0;

  *images = NULL;
  *n = 0;
  infos = calloc (CACHE_MAX_IMAGES, sizeof *infos);
  if (infos == NULL) {
    report_error ("calloc: %m");
    return -1;
  }
  dir = cache_images_opendir (d);
  if (dir == NULL)
    goto err;
  while ((ent = readdir (dir)) != NULL && nr < CACHE_MAX_IMAGES) {
    struct cache_image_info *info = &infos[nr];
    struct cache_view v;
    struct stat st;
    char path[100];
    int r;

    if (!cache_is_image_id (ent->d_name))
      continue;
    memcpy (info->id, ent->d_name, 65);
    nr++;
    if (read_info (dirfd (dir), info) == -1)
      goto err;
    snprintf (path, sizeof path, "%s/data", info->id);
    if (fstatat (dirfd (dir), path, &st, 0) == 0)
      info->disk_bytes = (uint64_t) st.st_blocks * 512;
    r = cache_view_open (dirfd (dir), info->id, false, &v);
    if (r == -1)
      goto err;
    if (r == 1) {
      summarise (&v, info);
      cache_view_close (&v);
    }
    if (cache_dir_lock (d) == -1)
      goto err;
    info->serving = cache_image_serving_locked (d, info->id, NULL);
    cache_dir_unlock (d);
  }
  closedir (dir);
  dir = NULL;
  if (nr > 0)
    qsort (infos, nr, sizeof *infos, compare_info);
  *images = infos;
  *n = nr;
  return 0;

err:
  if (dir)
    closedir (dir);
  cache_image_info_free (infos, nr);
  return -1;
}

void
cache_image_info_free (struct cache_image_info *images, size_t n)
{
  size_t i;

  if (images == NULL)
    return;
  for (i = 0; i < n; i++) {
    free (images[i].identity);
    free (images[i].description);
  }
  free (images);
}

/* One local manifest copy and the SHA-256 of its file. */
struct manifest_copy {
  char digest[65];
  char *path;
};

struct cache_manifests {
  struct manifest_copy *copies;
  size_t n;
};

/* Largest number of manifest copies looked at. */
#define MAX_MANIFESTS 4096

struct cache_manifests *
cache_manifests_open (struct cache_dir *d)
{
  CLEANUP_FREE char *dirpath = NULL;
  struct cache_manifests *ms;
  struct dirent *ent;
  DIR *dir;

  ms = calloc (1, sizeof *ms);
  if (ms == NULL ||
      (ms->copies = calloc (MAX_MANIFESTS, sizeof *ms->copies)) == NULL) {
    report_error ("calloc: %m");
    free (ms);
    return NULL;
  }
  if (asprintf (&dirpath, "%s/manifests", d->path) == -1) {
    report_error ("asprintf: %m");
    goto err;
  }
  dir = opendir (dirpath);
  if (dir == NULL) {
    if (errno == ENOENT)
      return ms; /* no manifest was ever downloaded */
    report_error ("cache: %s: %m", dirpath);
    goto err;
  }
  /* NB: copies are named by the hash of the manifest's URL; HASH.etag
   * and HASH.tmp (a download under way) are not manifests.
   */
  while ((ent = readdir (dir)) != NULL && ms->n < MAX_MANIFESTS) {
    struct manifest_copy *c = &ms->copies[ms->n];

    if (!cache_is_image_id (ent->d_name))
      continue;
    if (asprintf (&c->path, "%s/%s", dirpath, ent->d_name) == -1) {
      c->path = NULL;
      report_error ("asprintf: %m");
      closedir (dir);
      goto err;
    }
    ms->n++;
    if (sha256_file (c->path, c->digest) == -1) {
      closedir (dir);
      goto err;
    }
  }
  closedir (dir);
  return ms;

err:
  cache_manifests_close (ms);
  return NULL;
}

void
cache_manifests_close (struct cache_manifests *ms)
{
  size_t i;

  if (ms == NULL)
    return;
  for (i = 0; i < ms->n; i++)
    free (ms->copies[i].path);
  free (ms->copies);
  free (ms);
}

const char *
cache_manifests_find (const struct cache_manifests *ms, const char *identity)
{
  size_t i;

  if (identity == NULL || strncmp (identity, "manifest:", 9) != 0)
    return NULL;
  for (i = 0; i < ms->n; i++)
    if (strcmp (ms->copies[i].digest, identity + 9) == 0)
      return ms->copies[i].path;
  return NULL;
}
