/* accel plugin: metrics in Prometheus' text format, written to a file
 * (metrics-file=) for node_exporter's textfile collector.
 */

#ifndef ACCEL_METRICS_H
#define ACCEL_METRICS_H

#include "image.h"

/* Write metrics about img to path every interval seconds from now on.
 * The file is written once at once, so that a path that cannot be
 * written fails at start-up.  0, or -1 (error reported).
 */
int metrics_start (const char *path, unsigned interval, struct image *img);

/* Called often by one background thread: writes the file when due.  A
 * failure is reported once, and again only after a write succeeded.
 */
void metrics_tick (void);

/* Write the final numbers (at close, after the last flush) and stop. */
void metrics_stop (void);

#endif /* ACCEL_METRICS_H */
