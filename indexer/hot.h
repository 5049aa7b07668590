/* accel-index: the manifest's hot list, from trace files (--hot). */

#ifndef ACCEL_HOT_H
#define ACCEL_HOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hot_traces;

/* Read and check the syntax of the n trace files at paths.  NULL (error
 * reported) if any is unreadable or malformed.
 */
struct hot_traces *hot_load (char *const *paths, size_t n);
void hot_free (struct hot_traces *h);

/* Check that every trace was recorded on the image described (image
 * names the image in messages).  image_sha256 may be NULL while it is
 * not known yet (before the scan): then only the geometry is checked.
 * 0, or -1 (error reported).
 */
int
hot_check (const struct hot_traces *h, const char *image, uint64_t image_size,
           uint32_t chunk_size, const unsigned char *image_sha256);

/* Merge the traces into one list: the chunks of the first trace in its
 * order, then those of the second that are not listed yet, and so on,
 * leaving out the chunks for which is_zero is true (they are never
 * fetched).  *list is malloc'd (NULL when *n is 0).  0, or -1 (error
 * reported).
 */
int hot_merge (const struct hot_traces *h,
               bool (*is_zero) (void *opaque, uint64_t idx), void *opaque,
               uint64_t **list, size_t *n);

#endif /* ACCEL_HOT_H */
