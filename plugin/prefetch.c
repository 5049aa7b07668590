/* accel plugin: prefetch= — the plan and the pace.
 *
 * prefetch=hot walks the manifest's hot list in rank order (the order a
 * traced workload first read the chunks); prefetch=all does that, then
 * every other chunk of the image in order, so that the node ends up
 * with the whole image and can serve it with the origin unreachable
 * (offline.c).  Chunks that are all zeros or already cached are skipped
 * without a request; runs of chunks that are adjacent both in the plan
 * and in the image go in one request of up to max_batch bytes.
 *
 * Prefetch must never slow down demand reads.  The threads that run
 * the plan (background.c) send nothing while any foreground read is
 * waiting on the origin, use at most two of the connection pool's
 * handles, and stay under a bandwidth cap (prefetch-rate=) enforced
 * here: each batch reserves its bytes on a virtual clock that advances
 * by bytes / rate, and waits until its slot.  An idle period earns no
 * credit, so there are no bursts above the cap.
 *
 * With cache-size= the plan stops at three quarters of the cap, so that
 * prefetch does not evict what it fetched itself (or other images).
 */

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "clock.h"
#include "prefetch.h"
#include "report.h"

/* lock protects everything below but img, which is set by
 * prefetch_plan before the threads start.
 */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct image *img;
static uint64_t *hot; /* the hot list */
static size_t nr_hot;
static uint8_t *in_hot; /* bit idx: chunk idx is in the hot list */
static bool all; /* prefetch=all: every chunk after the hot list */
static size_t hot_pos; /* next hot list entry */
static uint64_t all_pos; /* next chunk of the prefetch=all pass */
static bool exhausted; /* nothing more to take */
static unsigned inflight; /* batches taken and not finished */
static bool reported; /* the final line was logged */

static struct prefetch_pacer pacer;
static uint32_t max_batch;
static uint64_t budget; /* bytes the plan may cover (cache-size) */
static uint64_t planned; /* data bytes passed so far, cached or not */

static struct prefetch_tally progress;
static uint64_t start_ns; /* when the plan was made */

static const char *
mode_name (enum prefetch_mode mode)
{
  return mode == PREFETCH_ALL ? "all" : "hot";
}

int
prefetch_plan (struct image *image, enum prefetch_mode mode, uint64_t r,
               uint64_t cache_cap, uint32_t batch)
{
  size_t i;

  if (mode == PREFETCH_NONE)
    return 0;
  if (image->offline) {
    report_debug ("prefetch: serving offline: nothing to prefetch");
    return 0;
  }
  img = image;
  if (image->manifest &&
      manifest_hot_chunks (image->manifest, &hot, &nr_hot) == -1)
    return -1;
  if (mode == PREFETCH_DEFAULT)
    mode = nr_hot > 0 ? PREFETCH_HOT : PREFETCH_NONE;
  if (mode == PREFETCH_NONE)
    return 0;
  if (mode == PREFETCH_HOT && nr_hot == 0) {
    report_debug ("prefetch=hot: the image has no hot list (accel-index "
                  "--hot): nothing to prefetch");
    return 0;
  }
  in_hot = calloc (image->nr_chunks / 8 + 1, 1);
  if (in_hot == NULL) {
    report_error ("calloc: %m");
    return -1;
  }
  for (i = 0; i < nr_hot; i++)
    in_hot[hot[i] / 8] |= 1 << (hot[i] % 8);
  all = mode == PREFETCH_ALL;
  pacer.rate = r;
  max_batch = batch < image->chunk_size ? image->chunk_size : batch;
  budget = cache_cap ? cache_cap / 4 * 3 : UINT64_MAX;
  start_ns = pacer.next_slot_ns = now_monotonic_ns ();
  report_debug ("prefetch=%s: %zu hot chunks%s, %s%" PRIu64 " bytes/s",
                mode_name (mode), nr_hot, all ? ", then the whole image" : "",
                r ? "at most " : "no cap, ", r);
  return 1;
}

/* With lock held: the next chunk of the plan, or false at its end. */
static bool
next_chunk_locked (uint64_t *idx)
{
  if (hot_pos < nr_hot) {
    *idx = hot[hot_pos++];
    return true;
  }
  while (all && all_pos < img->nr_chunks) {
    uint64_t i = all_pos++;

    if (!(in_hot[i / 8] & (1 << (i % 8)))) {
      *idx = i;
      return true;
    }
  }
  return false;
}

/* With lock held: is idx the plan's next chunk (without taking it)? */
static bool
peek_is_locked (uint64_t idx)
{
  if (hot_pos < nr_hot)
    return hot[hot_pos] == idx;
  return all && all_pos == idx && idx < img->nr_chunks &&
      !(in_hot[idx / 8] & (1 << (idx % 8)));
}

/* With lock held: does chunk idx need a request?  Counts the ones that
 * do not, and stops the plan at the cache-size budget.
 */
static bool
wanted_locked (uint64_t idx)
{
  uint32_t len;

  if (image_chunk_is_zero (img, idx))
    return false;
  len = image_chunk_len (img, idx);
  if (planned + len > budget) {
    if (!exhausted)
      report_debug ("prefetch: stopping at three quarters of cache-size "
                    "(%" PRIu64 " bytes)",
                    budget);
    exhausted = true;
    return false;
  }
  planned += len;
  if (cache_contains (img->cache, idx)) {
    progress.cached++;
    return false;
  }
  return true;
}

/* With lock held: log the result once the plan is done. */
static void
report_done_locked (void)
{
  double secs;

  if (reported || !exhausted || inflight > 0)
    return;
  reported = true;
  secs = (now_monotonic_ns () - start_ns) / 1e9;
  report_debug (
      "prefetch: done in %.1f s: %" PRIu64 " chunks (%" PRIu64
      " bytes) fetched, %" PRIu64 " already cached, %" PRIu64 " failed",
      secs, progress.chunks, progress.bytes, progress.cached, progress.failed);
}

bool
prefetch_take (struct prefetch_batch *b)
{
  uint64_t idx, first = 0, bytes = 0, n = 0;

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
  if (img == NULL || exhausted)
    return false;
  if (atomic_load (&img->stale)) {
    exhausted = true;
    report_done_locked ();
    return false;
  }
  while (n == 0) {
    if (exhausted || !next_chunk_locked (&idx)) {
      exhausted = true;
      report_done_locked ();
      return false;
    }
    if (wanted_locked (idx)) {
      first = idx;
      bytes = image_chunk_len (img, idx);
      n = 1;
    }
  }
  /* Extend the run while the plan goes on with the next chunk. */
  while (peek_is_locked (first + n) && !image_chunk_is_zero (img, first + n) &&
         bytes + image_chunk_len (img, first + n) <= max_batch &&
         !cache_contains (img->cache, first + n)) {
    next_chunk_locked (&idx);
    if (!wanted_locked (idx))
      break;
    bytes += image_chunk_len (img, idx);
    n++;
  }
  inflight++;
  b->offset = first * img->chunk_size;
  b->count = bytes;
  b->nr_chunks = n;
  return true;
}

uint64_t
prefetch_pacer_reserve (struct prefetch_pacer *p, uint32_t count, uint64_t now)
{
  uint64_t start;

  if (p->rate == 0)
    return 0;
  start = p->next_slot_ns > now ? p->next_slot_ns : now;
  p->next_slot_ns = start + (uint64_t) ((double) count * 1e9 / p->rate);
  return start - now;
}

uint64_t
prefetch_pace (const struct prefetch_batch *b)
{
  uint64_t now = now_monotonic_ns ();

  if (pacer.rate == 0)
    return 0;
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
  return prefetch_pacer_reserve (&pacer, b->count, now);
}

uint64_t
prefetch_tally_result (struct prefetch_tally *t, const struct prefetch_batch *b,
                       int r, bool *give_up)
{
  *give_up = false;
  if (r == 0) {
    t->chunks += b->nr_chunks;
    t->bytes += b->count;
    t->failures_in_a_row = 0;
    return 0;
  }
  t->failed += b->nr_chunks;
  if (++t->failures_in_a_row >= PREFETCH_MAX_FAILURES)
    *give_up = true;
  return PREFETCH_FAILURE_PAUSE_NS;
}

uint64_t
prefetch_finish (const struct prefetch_batch *b, int r)
{
  uint64_t pause;
  bool give_up;

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
  inflight--;
  pause = prefetch_tally_result (&progress, b, r, &give_up);
  if (give_up && !exhausted) {
    report_error ("prefetch: stopping after %d failed fetches in a row "
                  "(see above); reads are not affected",
                  PREFETCH_MAX_FAILURES);
    exhausted = true;
  }
  report_done_locked ();
  return pause;
}

void
prefetch_free (void)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
  free (hot);
  free (in_hot);
  hot = NULL;
  in_hot = NULL;
  nr_hot = 0;
  img = NULL;
}
