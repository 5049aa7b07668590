/* accel: the current time, in the units callers need.
 *
 * Durations, rates and backoff use the monotonic clock (it does not jump
 * when the wall clock is set); timestamps that are stored or compared
 * with other hosts' (LRU ages in the cache map, credential expiry, the
 * SigV4 date) use the wall clock.
 */

#ifndef ACCEL_CLOCK_H
#define ACCEL_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic time since an arbitrary point. */
extern uint64_t now_monotonic_ns (void);
extern uint64_t now_monotonic_us (void);
extern double now_monotonic_seconds (void);

/* Wall clock seconds since the epoch, as time (NULL). */
extern time_t now_wall_seconds (void);

#endif /* ACCEL_CLOCK_H */
