/* accel plugin: trace=FILE — record which chunks clients read, in the
 * order they first read them, for accel-index --hot.
 */

#ifndef ACCEL_TRACE_H
#define ACCEL_TRACE_H

#include <stdint.h>

#include "image.h"

/* Create (or truncate) path and write its first line.  Needs the
 * image's manifest, which names the image.  0, or -1 (error reported).
 */
int trace_open (const char *path, struct image *img);

/* A client read [offset, offset+count): note the chunks read for the
 * first time.  Never blocks on I/O; a no-op without trace=.
 */
void trace_note (uint64_t offset, uint32_t count);

/* Write what was noted since the last flush (background thread). */
void trace_flush (void);

/* Flush and close (from .cleanup, after the threads have stopped). */
void trace_close (void);

#endif /* ACCEL_TRACE_H */
