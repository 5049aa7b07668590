/* accel plugin: work done off the request path — the periodic flush
 * that records cached chunks (with the trace and metrics files), and
 * the prefetch workers.  Readahead's workers are readahead.c's.
 */

#ifndef ACCEL_BACKGROUND_H
#define ACCEL_BACKGROUND_H

#include <stdint.h>

#include "image.h"

/* How many prefetch workers background_start should start (at most
 * 2), to run the plan prefetch_plan made, and the most they wait
 * before their first request (a random delay, prefetch-jitter=).  0
 * workers (the default): none.
 */
void background_set_prefetch (unsigned threads, uint64_t jitter_ns);

/* Start the threads (from .after_fork): one flusher and the prefetch
 * workers.  0, or -1 (reported).
 */
int background_start (struct image *img);

/* Stop and join them (from .cleanup), flushing once more. */
void background_stop (void);

#endif /* ACCEL_BACKGROUND_H */
