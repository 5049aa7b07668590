/* accel plugin: background threads.
 *
 * The flusher records written chunks every FLUSH_MS (one fdatasync per
 * batch, see cache_flush), so reads never wait for a sync.  Tests
 * widen that window with -D accel.flush_ms=N, to catch a process with
 * chunks written but not recorded (tests/test-faults-cache.sh).  It also
 * writes out the trace (trace=, trace.c) and, when that is due, the
 * metrics file (metrics.c).
 *
 * Prefetch (prefetch=, prefetch.c has the plan and the pace): a couple
 * of workers take batches from the plan.  Before each request they
 * wait until no foreground read is waiting on the origin, then for the
 * batch's slot under the rate cap, so a demand read never queues behind
 * prefetch; and since there are at most PREFETCH_WORKERS of them,
 * prefetch holds at most that many of the pool's connections.  They
 * start after a random delay of up to prefetch-jitter= seconds, drawn
 * once per process: a fleet of nodes started together by one job would
 * otherwise send its first GETs in the same instant.
 *
 * Readahead has its own workers (readahead.c).
 */

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <nbdkit-plugin.h>

#include "background.h"
#include "cleanup.h"
#include "clock.h"
#include "fetch.h"
#include "prefetch.h"
#include "metrics.h"
#include "report.h"
#include "threads.h"
#include "trace.h"

#define FLUSH_MS 100

/* -D accel.flush_ms=N: the flusher's period, for tests. */
NBDKIT_DLL_PUBLIC int accel_debug_flush_ms = FLUSH_MS;
#define PREFETCH_WORKERS 2

/* How often a prefetch worker looks again while foreground reads are
 * waiting on the origin.
 */
#define YIELD_NS (10 * UINT64_C (1000000))

/* How long a prefetch worker waits after yielding to the throttle. */
#define THROTTLED_NS (500 * UINT64_C (1000000))

/* lock protects quit; the flusher and the prefetch workers sleep on
 * quit_cond between their rounds.
 */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t quit_cond = PTHREAD_COND_INITIALIZER;
static bool quit;

static struct image *image;
static pthread_t flusher, workers[PREFETCH_WORKERS];
static unsigned nr_workers, nr_flushers;
static unsigned prefetch_workers; /* set before background_start */
static uint64_t prefetch_jitter_ns; /* ... and the most they wait */
static uint64_t prefetch_delay_ns; /* drawn by background_start */

/* The flusher: every FLUSH_MS (accel_debug_flush_ms), what the other
 * threads left to record.
 */
static void *
flusher_main (void *arg)
{
  (void) arg;
  for (;;) {
    struct timespec ts;
    uint64_t ms = accel_debug_flush_ms > 0 ? accel_debug_flush_ms : FLUSH_MS;
    uint64_t ns;

    {
      ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
      if (quit)
        break;
      clock_gettime (CLOCK_REALTIME, &ts);
      ns = ts.tv_nsec + ms * 1000000;
      ts.tv_sec += ns / 1000000000;
      ts.tv_nsec = ns % 1000000000;
      pthread_cond_timedwait (&quit_cond, &lock, &ts);
      if (quit)
        break;
    }
    if (cache_pending (image->cache) > 0)
      cache_flush (image->cache);
    trace_flush ();
    metrics_tick ();
  }
  return NULL;
}

/* Sleep ns nanoseconds, or until quit.  Returns true on quit. */
static bool
nap (uint64_t ns)
{
  struct timespec ts;

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
  if (ns == 0 || quit)
    return quit;
  clock_gettime (CLOCK_REALTIME, &ts);
  ns += ts.tv_nsec;
  ts.tv_sec += ns / 1000000000;
  ts.tv_nsec = ns % 1000000000;
  while (!quit && pthread_cond_timedwait (&quit_cond, &lock, &ts) != ETIMEDOUT)
    ;
  return quit;
}

/* Wait until no foreground read is waiting on the origin.  Returns true
 * on quit.
 */
static bool
wait_for_quiet (void)
{
  while (fetch_foreground_misses () > 0)
    if (nap (YIELD_NS))
      return true;
  return false;
}

/* A prefetch worker: the plan's batches, one at a time, each behind
 * the foreground reads and at its slot under the rate cap.
 */
static void *
prefetch_main (void *arg)
{
  struct prefetch_batch b;

  (void) arg;
  /* Last when the origin throttles (s3.h). */
  s3_set_thread_priority (S3_PRIORITY_PREFETCH);
  if (nap (prefetch_delay_ns))
    return NULL;
  while (prefetch_take (&b)) {
    int r;

    if (wait_for_quiet () || nap (prefetch_pace (&b)) || wait_for_quiet ())
      break;
    /* Errors were reported by the read path; a demand read will retry.
     * EAGAIN: the origin throttles and others came first; the batch
     * waits and is not a failure.
     */
    while ((r = fetch_prefetch (image, b.count, b.offset)) == -1 &&
           errno == EAGAIN)
      if (nap (THROTTLED_NS) || wait_for_quiet ())
        goto quit;
    if (nap (prefetch_finish (&b, r)))
      break;
  }
quit:
  return NULL;
}

/* Called before the fork, when the plan is known: at most half of the
 * connection pool goes to prefetch.
 */
void
background_set_prefetch (unsigned threads, uint64_t jitter_ns)
{
  prefetch_workers = threads < PREFETCH_WORKERS ? threads : PREFETCH_WORKERS;
  prefetch_jitter_ns = jitter_ns;
}

/* A delay uniform in [0, max_ns]: from the kernel's random pool, which
 * differs on every node of a fleet even when their clocks and pids do
 * not.
 */
static uint64_t
random_delay (uint64_t max_ns)
{
  uint64_t r;

  if (max_ns == 0)
    return 0;
  if (getrandom (&r, sizeof r, GRND_NONBLOCK) != sizeof r)
    r = now_monotonic_ns () ^ ((uint64_t) getpid () << 32);
  return r % (max_ns + 1);
}

/* The threads start from .after_fork (nbdkit's rule: none before the
 * fork); on a failure, those already running are left for
 * background_stop, which .cleanup calls.
 */
int
background_start (struct image *img)
{
  image = img;
  quit = false;
  if (prefetch_workers > 0) {
    prefetch_delay_ns = random_delay (prefetch_jitter_ns);
    report_debug ("prefetch: starting in %.2f s (jitter: 0 to %.0f s)",
                  prefetch_delay_ns / 1e9, prefetch_jitter_ns / 1e9);
  }
  if (threads_start (&flusher, &nr_flushers, 1, flusher_main) == -1)
    return -1;
  return threads_start (workers, &nr_workers, prefetch_workers, prefetch_main);
}

/* Join every thread, then record what they stored: nothing stored
 * before .cleanup is lost.
 */
void
background_stop (void)
{
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
    quit = true;
    pthread_cond_broadcast (&quit_cond);
  }
  threads_join (workers, &nr_workers);
  threads_join (&flusher, &nr_flushers);
  if (image && image->cache)
    cache_flush (image->cache);
}
