/* accel plugin: what an opened image is, as the read path asks it —
 * a chunk's length, whether the manifest says it is all zeros, its
 * expected hash — and the names and small files that image-open.c and
 * offline.c share.  The bottom of the plugin's image files: offline.c
 * uses it, image-open.c uses both.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cleanup.h"
#include "image.h"
#include "report.h"

/* Write path atomically (temp file, fsync, rename). */
int
image_write_small (const char *path, const char *text)
{
  CLEANUP_FREE char *tmp = NULL;
  size_t len = strlen (text);
  int fd;

  if (asprintf (&tmp, "%s.tmp", path) == -1) {
    report_error ("asprintf: %m");
    return -1;
  }
  fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd == -1 || write (fd, text, len) != (ssize_t) len || fsync (fd) == -1 ||
      close (fd) == -1 || rename (tmp, path) == -1) {
    report_error ("writing %s: %m", path);
    if (fd >= 0)
      close (fd);
    unlink (tmp);
    return -1;
  }
  return 0;
}

char *
image_cache_identity (const char *manifest_sha256, const char *object_identity,
                      const char *etag, const char *version_id, uint64_t size)
{
  char *id;
  int r;

  if (manifest_sha256 && *manifest_sha256)
    r = asprintf (&id, "manifest:%s", manifest_sha256);
  /* NB: two versions of one key may share an ETag (same bytes, or an
   * ETag that is not an MD5); without a manifest only the version tells
   * them apart.  Unversioned objects keep the identity they always had.
   */
  else if (version_id)
    r = asprintf (&id, "object:%s\netag:%s\nversion:%s\nsize:%" PRIu64,
                  object_identity, etag, version_id, size);
  else
    r = asprintf (&id, "object:%s\netag:%s\nsize:%" PRIu64, object_identity,
                  etag, size);
  if (r == -1) {
    report_error ("asprintf: %m");
    return NULL;
  }
  return id;
}

/* cache_expected_fn: the manifest's hash of a chunk. */
int
image_expected_hash (void *opaque, uint64_t idx, unsigned char sha256[32])
{
  struct image *img = opaque;

  if (img->manifest == NULL)
    return 0;
  if (manifest_chunk_sha256 (img->manifest, idx, sha256) == -1)
    return -1;
  return 1;
}

int
image_open_cache_dir (struct image *img, const struct image_config *cfg)
{
  unsigned char key[32];
  int r;

  img->dir = cache_dir_open (cfg->cache_dir, cfg->cache_size);
  if (img->dir == NULL)
    return -1;
  if (cfg->cache_key == NULL)
    return 0;
  /* NB: after the directory exists: the key must not be inside it. */
  r = cache_key_load (cfg->cache_key, cfg->cache_dir, key);
  if (r == 0)
    r = cache_dir_set_key (img->dir, key);
  OPENSSL_cleanse (key, sizeof key);
  return r;
}

uint32_t
image_chunk_len (const struct image *img, uint64_t idx)
{
  uint64_t off = idx * img->chunk_size;

  if (off + img->chunk_size > img->size)
    return img->size - off;
  return img->chunk_size;
}

bool
image_chunk_is_zero (const struct image *img, uint64_t idx)
{
  return img->manifest && manifest_chunk_is_zero (img->manifest, idx);
}
