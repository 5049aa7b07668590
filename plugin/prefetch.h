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

/* Free the plan (from .cleanup, after the threads have stopped). */
void prefetch_free (void);

#endif /* ACCEL_PREFETCH_H */
