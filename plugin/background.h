/* accel plugin: work done off the request path — readahead for
 * sequential readers and the periodic flush that records cached chunks.
 */

#ifndef ACCEL_BACKGROUND_H
#define ACCEL_BACKGROUND_H

#include <stdint.h>

#include "image.h"

/* How many prefetch workers background_start should start (at most
 * 2), to run the plan prefetch_plan made.  0 (the default): none.
 */
void background_set_prefetch (unsigned threads);

/* Start the threads (from .after_fork): one flusher, `threads`
 * readahead workers that keep `window` bytes ahead of a sequential
 * reader (window 0: no readahead), and the prefetch workers.
 */
int background_start (struct image *img, unsigned threads, uint64_t window);

/* Stop and join them (from .cleanup), flushing once more. */
void background_stop (void);

/* Tell readahead about a client's read, before it is served. */
void background_note_read (uint64_t offset, uint32_t count);

#endif /* ACCEL_BACKGROUND_H */
