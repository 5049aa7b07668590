/* accel-mkimage: one updating progress line on a terminal.
 *
 * When stderr is a terminal, long steps (building, copying, uploading)
 * show "what: done / total  NN%  rate  ETA m:ss" on one line rewritten
 * in place at most ten times a second, and cleared when the step ends.
 * When stderr is not a terminal (a log, a pipe, CI) nothing is printed
 * here at all: the tool prints only its final summary.
 *
 * Only one step runs at a time, from one thread; the state is static.
 */

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "mkimage.h"

static bool enabled; /* stderr is a terminal */
static bool active; /* a line is on the screen */
static const char *label;
static uint64_t total;
static double start, last;

void
progress_init (void)
{
  enabled = isatty (STDERR_FILENO);
}

void
progress_start (const char *what, uint64_t bytes)
{
  label = what;
  total = bytes;
  start = now_monotonic_seconds ();
  last = 0;
  if (enabled) {
    fprintf (stderr, "\r\033[K%s ...", what);
    active = true;
  }
}

void
progress_update (uint64_t done)
{
  char d[32], t[32], r[32], eta[32] = "";
  double secs, rate;
  double tnow;

  if (!enabled || label == NULL)
    return;
  tnow = now_monotonic_seconds ();
  if (tnow - last < 0.1 && done < total)
    return;
  last = tnow;
  secs = tnow - start;
  rate = secs > 0 ? done / secs : 0;
  if (rate > 0 && done < total) {
    uint64_t left = (total - done) / rate;

    snprintf (eta, sizeof eta, "  ETA %" PRIu64 ":%02" PRIu64, left / 60,
              left % 60);
  }
  fprintf (stderr, "\r\033[K%s: %s / %s  %3d%%  %s/s%s", label,
           format_size (done, d, sizeof d), format_size (total, t, sizeof t),
           total ? (int) (done * 100 / total) : 100,
           format_size (rate, r, sizeof r), eta);
  active = true;
}

void
progress_end (void)
{
  if (enabled && active)
    fprintf (stderr, "\r\033[K");
  active = false;
  label = NULL;
}
