/* accel plugin: prefetch= — what to fetch in the background at start-up
 * (the manifest's hot list, or the whole image) and how fast.  The
 * threads that do it are background.c's.
 */

#ifndef ACCEL_PREFETCH_H
#define ACCEL_PREFETCH_H

#include <stdbool.h>
#include <stdint.h>

#include "image.h"

enum prefetch_mode {
  PREFETCH_DEFAULT, /* hot if the manifest has a hot list, else none */
  PREFETCH_NONE,
  PREFETCH_HOT,
  PREFETCH_ALL,
};

/* One request: count bytes at offset, a run of adjacent chunks. */
struct prefetch_batch {
  uint64_t offset;
  uint32_t count;
  uint64_t nr_chunks;
};

/* Plan the prefetch of img: rate is the cap in bytes per second (0 =
 * none), cache_cap the cache-size= (0 = none), max_batch the largest
 * request.  Returns 1 if there is work for the threads, 0 if not, -1 on
 * error (reported).
 */
int prefetch_plan (struct image *img, enum prefetch_mode mode, uint64_t rate,
                   uint64_t cache_cap, uint32_t max_batch);

/* Take the next batch (any thread).  false when the plan is done. */
bool prefetch_take (struct prefetch_batch *b);

/* Reserve b's bytes under the rate cap: how many nanoseconds to wait
 * before sending it.
 */
uint64_t prefetch_pace (const struct prefetch_batch *b);

/* A batch was fetched (r == 0) or failed (r == -1).  Returns how many
 * nanoseconds to pause before the next (after failures).
 */
uint64_t prefetch_finish (const struct prefetch_batch *b, int r);

/* The rate cap's clock: each batch reserves count / rate seconds from
 * the later of now and the end of the last reservation, so batches
 * leave at most rate bytes a second, and an idle period earns no
 * credit (no burst above the cap after it).
 */
struct prefetch_pacer {
  uint64_t rate; /* bytes per second, 0 = no cap */
  uint64_t next_slot_ns; /* where the last reservation ended */
};

/* Reserve count bytes at time now (ns, CLOCK_MONOTONIC): how many
 * nanoseconds to wait before sending them.  The pure part of
 * prefetch_pace, for tests.
 */
uint64_t
prefetch_pacer_reserve (struct prefetch_pacer *p, uint32_t count, uint64_t now);

/* A batch that failed (after the read path's own retries) pauses the
 * threads; this many failures in a row stop the prefetch.
 */
#define PREFETCH_FAILURE_PAUSE_NS (2 * UINT64_C (1000000000))
#define PREFETCH_MAX_FAILURES 5

/* What prefetch has done, for its final log line. */
struct prefetch_tally {
  uint64_t chunks, bytes, cached, failed;
  unsigned failures_in_a_row;
};

/* Count batch b's result r (0 or -1) in t.  Returns the pause before
 * the next batch (after a failure); *give_up is set when failures in a
 * row reach PREFETCH_MAX_FAILURES.  The pure part of prefetch_finish.
 */
uint64_t
prefetch_tally_result (struct prefetch_tally *t, const struct prefetch_batch *b,
                       int r, bool *give_up);

/* Free the plan (from .cleanup, after the threads have stopped). */
void prefetch_free (void);

#endif /* ACCEL_PREFETCH_H */
