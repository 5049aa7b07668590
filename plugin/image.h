/* accel plugin: the one image this nbdkit process serves — where its
 * bytes come from (an S3 object), what they must hash to (the manifest,
 * optional) and where they are kept (the cache).
 */

#ifndef ACCEL_IMAGE_H
#define ACCEL_IMAGE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cache-dedup.h"
#include "cache.h"
#include "manifest.h"
#include "s3.h"

/* Settings from nbdkit's command line (see accel.c for the keys). */
struct image_config {
  const char *url;
  const char *manifest; /* URL, file, "none", or NULL = default */
  const char *manifest_sha256; /* pin: the only manifest accepted */
  const char *cache_dir;
  const char *cache_key; /* the node key's file, or NULL */
  uint64_t cache_size; /* 0 = no cap */
  uint32_t chunk_size; /* 0 = the manifest's, else 1 MiB */
  bool dedup; /* copy chunks the cache holds for other images */
  /* Seconds to wait at open for the image's own manifest while the one
   * found is another version's (a publish under way).
   */
  unsigned publish_wait;
  struct s3_config s3;
};

struct image {
  struct s3_client *s3;
  struct s3_object *obj; /* NULL when offline */
  struct manifest *manifest; /* NULL: serving without verification */
  char *manifest_path; /* its local copy (NULL without a manifest) */
  char manifest_sha256[65]; /* SHA-256 of that file, hex ("" without) */
  char *name; /* the object, for messages (no query string) */
  struct cache_dir *dir;
  struct cache_image *cache;
  struct cache_dedup *dedup; /* NULL: no dedup (off, or no manifest) */
  uint64_t size;
  uint32_t chunk_size;
  uint64_t nr_chunks;

  /* Set when the origin object changed under us (HTTP 412): from then on
   * every read fails rather than mix two versions.
   */
  atomic_bool stale;

  /* The origin was unreachable at start-up and the image is served
   * from a complete cache (offline.c): nothing is ever fetched.
   */
  bool offline;
};

/* Open everything, reporting any problem clearly.  One request learns
 * the object's size and ETag; the manifest is downloaded only if the
 * local copy is not the current one.
 */
struct image *image_open (const struct image_config *cfg);
void image_close (struct image *img);

/* The cache identity of an image: its manifest's digest (hex) when it
 * has one, else the object's identity, ETag, version (if pinned) and
 * size.  NULL (error reported) if out of memory.
 */
char *
image_cache_identity (const char *manifest_sha256, const char *object_identity,
                      const char *etag, const char *version_id, uint64_t size);

/* The cache's cache_expected_fn for img (the opaque): the manifest's
 * hash of a chunk.
 */
int image_expected_hash (void *opaque, uint64_t idx, unsigned char sha256[32]);

/* Open the cache directory into img->dir, with the node key if
 * cache-key= names one.  0, or -1 (error reported).
 */
int image_open_cache_dir (struct image *img, const struct image_config *cfg);

/* Helper shared with offline.c: a small text file written atomically
 * (temp file, fsync, rename).  0, or -1 (error reported).  The SHA-256
 * of a whole file is sha256_file (common/utils/sha256-file.h).
 */
int image_write_small (const char *path, const char *text);

/* Bytes of chunk idx (the last one may be short). */
uint32_t image_chunk_len (const struct image *img, uint64_t idx);

/* True if the manifest says chunk idx is all zeros. */
bool image_chunk_is_zero (const struct image *img, uint64_t idx);

#endif /* ACCEL_IMAGE_H */
