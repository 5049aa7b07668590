/* accel plugin: background threads.
 *
 * The flusher records written chunks every FLUSH_MS (one fdatasync per
 * batch, see cache_flush), so reads never wait for a sync.  It also
 * writes the metrics file when that is due (metrics.c).
 *
 * Readahead: a connection whose reads follow each other gets the next
 * `window` bytes queued; worker threads fetch them into the cache with
 * the same read path as demand reads (so a chunk is still fetched only
 * once).  The queue is small and drops requests when full: readahead is
 * a hint, never a debt.
 *
 * Prefetch (prefetch=, prefetch.c has the plan): a couple more workers
 * take batches from the plan.  Before each request they wait until no
 * foreground read is waiting on the origin, then for the batch's slot
 * under the rate cap, so a demand read never queues behind prefetch;
 * and since there are at most PREFETCH_WORKERS of them, prefetch holds
 * at most that many of the pool's connections.
 *
 * The flusher also writes out the trace (trace=, trace.c).
 */

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "background.h"
#include "cleanup.h"
#include "fetch.h"
#include "prefetch.h"
#include "metrics.h"
#include "report.h"
#include "trace.h"

#define FLUSH_MS 100
#define QUEUE_LEN 64
#define MAX_WORKERS 16
#define PREFETCH_WORKERS 2

/* How often a prefetch worker looks again while foreground reads are
 * waiting on the origin.
 */
#define YIELD_NS (10 * UINT64_C (1000000))

/* Reads in a row that make a reader sequential. */
#define STREAK 2

/* Readahead GETs: 2 MiB (at least a chunk), so that 8 workers keep
 * 16 MiB in flight: at 20 ms to the first byte and 100 MB/s a
 * connection, 2 MiB GETs give each worker ~50 MB/s.
 */
#define RA_PIECE (2 * 1024 * 1024)

struct ra_request {
  uint64_t offset;
  uint32_t count;
};

/* lock protects the queue, quit and every connection's readahead_state;
 * workers sleep on queue_cond, the flusher on quit_cond.
 */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_cond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t quit_cond = PTHREAD_COND_INITIALIZER;
static struct ra_request queue[QUEUE_LEN];
static size_t q_head, q_len;
static bool quit;

static struct image *image;
static uint64_t window;
static pthread_t flusher, workers[MAX_WORKERS + PREFETCH_WORKERS];
static unsigned nr_workers;
static bool flusher_running;
static unsigned prefetch_workers; /* set before background_start */
static unsigned ra_workers; /* the first ra_workers are readahead's */

static void *
flusher_main (void *arg)
{
  (void) arg;
  for (;;) {
    struct timespec ts;

    {
      ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
      if (quit)
        break;
      clock_gettime (CLOCK_REALTIME, &ts);
      ts.tv_nsec += FLUSH_MS * 1000000L;
      if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
      }
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

static void *
worker_main (void *arg)
{
  (void) arg;
  for (;;) {
    struct ra_request req;

    {
      ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
      while (!quit && q_len == 0)
        pthread_cond_wait (&queue_cond, &lock);
      if (quit)
        break;
      req = queue[q_head];
      q_head = (q_head + 1) % QUEUE_LEN;
      q_len--;
    }
    /* Errors were reported by the read path; a demand read will retry. */
    fetch_read (image, NULL, req.count, req.offset);
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

static void *
prefetch_main (void *arg)
{
  struct prefetch_batch b;

  (void) arg;
  while (prefetch_take (&b)) {
    int r;

    if (wait_for_quiet () || nap (prefetch_pace (&b)) || wait_for_quiet ())
      break;
    /* Errors were reported by the read path; a demand read will retry. */
    r = fetch_prefetch (image, b.count, b.offset);
    if (nap (prefetch_finish (&b, r)))
      break;
  }
  return NULL;
}

void
background_set_prefetch (unsigned threads)
{
  prefetch_workers = threads < PREFETCH_WORKERS ? threads : PREFETCH_WORKERS;
}

int
background_start (struct image *img, unsigned threads, uint64_t win)
{
  unsigned i;
  int err;

  image = img;
  window = win;
  quit = false;
  err = pthread_create (&flusher, NULL, flusher_main, NULL);
  if (err) {
    errno = err;
    report_error ("pthread_create: %m");
    return -1;
  }
  flusher_running = true;
  if (window == 0)
    threads = 0;
  if (threads > MAX_WORKERS)
    threads = MAX_WORKERS;
  for (i = 0; i < threads + prefetch_workers; i++) {
    err = pthread_create (&workers[nr_workers], NULL,
                          i < threads ? worker_main : prefetch_main, NULL);
    if (err) {
      errno = err;
      report_error ("pthread_create: %m");
      return -1;
    }
    nr_workers++;
  }
  ra_workers = threads;
  return 0;
}

void
background_stop (void)
{
  unsigned i;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
    quit = true;
    pthread_cond_broadcast (&queue_cond);
    pthread_cond_broadcast (&quit_cond);
  }
  for (i = 0; i < nr_workers; i++)
    pthread_join (workers[i], NULL);
  nr_workers = ra_workers = 0;
  if (flusher_running)
    pthread_join (flusher, NULL);
  flusher_running = false;
  if (image && image->cache)
    cache_flush (image->cache);
}

/* Sequential streams, found among all clients' reads: a node's kernel
 * spreads one file's reads over several NBD connections (nbd-client
 * -connections, nbdfuse -C), a few at a time and out of order, so no
 * connection sees a stream on its own.  A read continues a stream if it
 * starts within `near` of the furthest end the stream has reached;
 * otherwise it starts a new one in the least recently used slot.
 * Protected by lock.
 */
#define STREAMS 8

struct stream {
  uint64_t next_offset; /* the furthest end reached */
  uint64_t queued_until; /* readahead already asked up to here */
  unsigned streak; /* reads that continued it */
  uint64_t last_use; /* a tick of note_clock */
};

static struct stream streams[STREAMS];
static uint64_t note_clock;

/* With lock held: the stream that a read at offset continues, or a new
 * one (streak 0) in the slot used longest ago.
 */
static struct stream *
find_stream (uint64_t offset, uint64_t near)
{
  struct stream *s, *oldest = &streams[0];

  for (s = streams; s < streams + STREAMS; s++) {
    if (s->last_use && offset + near >= s->next_offset &&
        offset <= s->next_offset + near)
      return s;
    if (s->last_use < oldest->last_use)
      oldest = s;
  }
  *oldest = (struct stream){ .next_offset = offset };
  return oldest;
}

void
background_note_read (uint64_t offset, uint32_t count)
{
  uint64_t end = offset + count, from, until, near, piece;
  struct stream *st;

  if (ra_workers == 0 || image == NULL)
    return;
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
  near = window / 4 > image->chunk_size ? window / 4 : image->chunk_size;
  st = find_stream (offset, near);
  st->last_use = ++note_clock;
  st->streak++;
  if (end > st->next_offset)
    st->next_offset = end;
  if (st->streak <= STREAK)
    return;

  end = st->next_offset;
  from = end > st->queued_until ? end : st->queued_until;
  until = end + window;
  if (until > image->size)
    until = image->size;
  /* Ask in chunk-aligned pieces, a quarter of a window at least at a
   * time; each piece is one GET, and several workers fetch pieces at
   * once, since an S3-like origin serves each connection at a fraction
   * of what it serves in all.
   */
  from -= from % image->chunk_size;
  if (from >= until || until - from < window / 4)
    return;

  piece = RA_PIECE - RA_PIECE % image->chunk_size;
  if (piece < image->chunk_size)
    piece = image->chunk_size;
  while (from < until && q_len < QUEUE_LEN) {
    uint64_t n = until - from;
    if (n > piece)
      n = piece;
    queue[(q_head + q_len) % QUEUE_LEN] =
        (struct ra_request){ .offset = from, .count = n };
    q_len++;
    from += n;
  }
  st->queued_until = from;
  pthread_cond_broadcast (&queue_cond);
}
