/* accel: unit test of common/utils/clock.c: the units agree with each
 * other and with the system's clocks, and monotonic time does not go
 * back.
 */

#include <stdint.h>
#include <time.h>

#include "clock.h"

#include "test.h"

int
main (void)
{
  struct timespec ts = { 0, 20 * 1000 * 1000 };
  uint64_t ns, ns2, us;
  double secs;
  time_t wall, before;
  int i;

  ns = now_monotonic_ns ();
  us = now_monotonic_us ();
  secs = now_monotonic_seconds ();
  ns2 = now_monotonic_ns ();
  CHECK (ns <= ns2);
  CHECK (us >= ns / 1000 && us <= ns2 / 1000);
  CHECK (secs >= ns / 1e9 - 1e-6 && secs <= ns2 / 1e9 + 1e-6);

  for (i = 0; i < 1000; i++) {
    ns2 = now_monotonic_ns ();
    if (ns2 < ns)
      break;
    ns = ns2;
  }
  CHECK (i == 1000);

  /* A 20 ms sleep is seen in every unit. */
  ns = now_monotonic_ns ();
  us = now_monotonic_us ();
  secs = now_monotonic_seconds ();
  nanosleep (&ts, NULL);
  CHECK (now_monotonic_ns () - ns >= 20 * 1000 * 1000);
  CHECK (now_monotonic_us () - us >= 20 * 1000 - 1);
  CHECK (now_monotonic_seconds () - secs >= 0.019);

  before = time (NULL);
  wall = now_wall_seconds ();
  CHECK (wall >= before && wall <= time (NULL));

  return test_summary ("clock");
}
