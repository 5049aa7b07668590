/* accel-index: read an image once, hashing each chunk and the whole. */

#ifndef ACCEL_SCAN_H
#define ACCEL_SCAN_H

#include <stdbool.h>
#include <stdint.h>

/* Called once per chunk, in index order, from one worker thread (the
 * same thread every time).  0, or -1 (error reported) to stop the scan.
 */
typedef int (*scan_chunk_fn) (void *opaque, uint64_t idx,
                              const unsigned char sha256[32], bool zero);

/* Read image_size bytes of fd (named name in messages) from offset 0.
 * Calls chunk_fn for each chunk of chunk_size bytes (the last may be
 * short), and sets image_sha256 and *nr_zero (chunks that are all zero).
 * 0, or -1 (error reported).
 */
int scan_image (int fd, const char *name, uint64_t image_size,
                uint32_t chunk_size, scan_chunk_fn chunk_fn, void *opaque,
                unsigned char image_sha256[32], uint64_t *nr_zero);

#endif /* ACCEL_SCAN_H */
