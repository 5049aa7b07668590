/* accel: the current time (see clock.h). */

#include <time.h>

#include "clock.h"

uint64_t
now_monotonic_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * UINT64_C (1000000000) + ts.tv_nsec;
}

uint64_t
now_monotonic_us (void)
{
  return now_monotonic_ns () / 1000;
}

/* For summaries and progress: "took 1.25 s". */
double
now_monotonic_seconds (void)
{
  return now_monotonic_ns () / 1e9;
}

time_t
now_wall_seconds (void)
{
  return time (NULL);
}
