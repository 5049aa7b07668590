/* accel plugin: work done off the request path — the periodic flush
 * that records cached chunks (with the trace and metrics files), and
 * the prefetch workers.  Readahead's workers are readahead.c's.
 */

#ifndef ACCEL_BACKGROUND_H
#define ACCEL_BACKGROUND_H

#include <stdint.h>

#include "image.h"

/* How many prefetch workers background_start should start (at most
 * 2), to run the plan prefetch_plan made.  0 (the default): none.
 */
void background_set_prefetch (unsigned threads);

/* Start the threads (from .after_fork): one flusher and the prefetch
 * workers.  0, or -1 (reported).
 */
int background_start (struct image *img);

/* Stop and join them (from .cleanup), flushing once more. */
void background_stop (void);

#endif /* ACCEL_BACKGROUND_H */
