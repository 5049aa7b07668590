/* accel plugin: starting without the origin — serving an image that an
 * earlier run hydrated completely (prefetch=all) when S3 cannot be
 * reached at start-up.
 */

#ifndef ACCEL_OFFLINE_H
#define ACCEL_OFFLINE_H

#include <stdbool.h>
#include <stdint.h>

#include "image.h"

/* Is err (from opening the object) the origin being unreachable, as
 * opposed to an answer (403, 404, ...) that must stop us?
 */
bool offline_unreachable (int err);

/* After a successful open with the origin: record what the image was
 * (ETag, size, manifest, cache identity) for a later offline start.
 * Failures are only logged: serving goes on.
 */
void offline_save (const struct image_config *cfg, const struct image *img);

/* The origin is unreachable: open img (which has its S3 client) from
 * the record and the cache, if the record exists, matches cfg and every
 * data chunk is in the cache.  Sets img->offline.  0, or -1 with the
 * reason reported.
 */
int offline_open (const struct image_config *cfg, struct image *img);

/* The largest record read: it holds a URL (8 KiB at most), a path and
 * an identity.
 */
#define OFFLINE_MAX_RECORD 65536

/* A record (CACHE_DIR/origins/KEY), parsed: pointers into its text. */
struct offline_record {
  const char *name, *etag, *manifest, *manifest_sha256, *object_identity;
  const char *version_id; /* NULL: not pinned (or a record without it) */
  uint64_t size;
  uint32_t chunk_size;
};

/* The record file at path, NUL-terminated and malloc'd (at most
 * OFFLINE_MAX_RECORD bytes and one more, which makes it too long), or
 * NULL if there is none (or it cannot be read: reported).
 */
char *offline_read_record (const char *path);

/* Split a record's text (modified) into rec.  0, or -1 if it is not a
 * whole "accel-origin v1" record of at most OFFLINE_MAX_RECORD bytes,
 * each key once (reported, naming path).
 */
int
offline_parse_record (const char *path, char *text, struct offline_record *rec);

#endif /* ACCEL_OFFLINE_H */
