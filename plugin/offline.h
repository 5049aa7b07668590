/* accel plugin: starting without the origin — serving an image that an
 * earlier run hydrated completely (prefetch=all) when S3 cannot be
 * reached at start-up.
 */

#ifndef ACCEL_OFFLINE_H
#define ACCEL_OFFLINE_H

#include <stdbool.h>

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

#endif /* ACCEL_OFFLINE_H */
