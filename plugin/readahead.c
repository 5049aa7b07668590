/* accel plugin: readahead for sequential streams.
 *
 * A node's kernel spreads one file's reads over several NBD connections
 * (nbd-client -connections, nbdfuse -C), a few at a time and out of
 * order, so no connection sees a stream on its own.  Streams are
 * therefore found among all clients' reads together: a read continues a
 * stream if it starts within `near` (a quarter of the window, at least
 * a chunk) of the furthest end that stream has reached, before or
 * after it; otherwise it starts a new stream in the slot continued
 * longest ago.  From the third read of a stream on, the window
 * (readahead=, 32 MiB by default) beyond its furthest end is queued,
 * in chunk-aligned pieces of RA_PIECE bytes, whenever at least a
 * quarter of a window is not queued yet.
 *
 * accel_pread notes each read before it serves it, so those GETs start
 * along with the read's own.  Worker threads (8 by default) take the
 * pieces and bring them into the cache with the demand read path
 * (fetch_read with no buffer), so a chunk is still fetched only once
 * however many readers and workers want it.  The queue is small and
 * drops pieces when it is full: readahead is a hint, never a debt.
 */

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>

#include "cleanup.h"
#include "fetch.h"
#include "readahead.h"
#include "report.h"
#include "threads.h"

#define QUEUE_LEN 64
#define MAX_WORKERS 16

/* Reads in a row that make a stream sequential. */
#define STREAK 2

/* Readahead GETs: 2 MiB (at least a chunk), so that 8 workers keep
 * 16 MiB in flight: at 20 ms to the first byte and 100 MB/s a
 * connection, 2 MiB GETs give each worker ~50 MB/s.
 */
#define RA_PIECE (2 * 1024 * 1024)

/* lock protects the queue, quit and streams; workers sleep on
 * queue_cond.
 */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_cond = PTHREAD_COND_INITIALIZER;
static struct readahead_request queue[QUEUE_LEN];
static size_t q_head, q_len;
static bool quit;
static struct readahead_streams streams;

/* Set by readahead_start before the workers start. */
static struct image *image;
static uint64_t window;
static pthread_t workers[MAX_WORKERS];
static unsigned nr_workers;

/* The stream that a read at offset continues, or a new one (streak 0)
 * in the slot continued longest ago (an unused one first).
 */
static struct readahead_stream *
find_stream (struct readahead_streams *s, uint64_t offset, uint64_t near)
{
  struct readahead_stream *st, *oldest = &s->slot[0];

  for (st = s->slot; st < s->slot + READAHEAD_STREAMS; st++) {
    if (st->last_use && offset + near >= st->next_offset &&
        offset <= st->next_offset + near)
      return st;
    if (st->last_use < oldest->last_use)
      oldest = st;
  }
  *oldest = (struct readahead_stream){ .next_offset = offset };
  return oldest;
}

size_t
readahead_detect (struct readahead_streams *s,
                  const struct readahead_geometry *g, uint64_t offset,
                  uint32_t count, struct readahead_request *out, size_t room)
{
  uint64_t end = offset + count, from, until, near, piece;
  struct readahead_stream *st;
  size_t n = 0;

  near = g->window / 4 > g->chunk_size ? g->window / 4 : g->chunk_size;
  st = find_stream (s, offset, near);
  st->last_use = ++s->clock;
  st->streak++;
  if (end > st->next_offset)
    st->next_offset = end;
  if (st->streak <= STREAK)
    return 0;

  end = st->next_offset;
  from = end > st->queued_until ? end : st->queued_until;
  until = end + g->window;
  if (until > g->image_size)
    until = g->image_size;
  /* Ask in chunk-aligned pieces, a quarter of a window at least at a
   * time; each piece is one GET, and several workers fetch pieces at
   * once, since an S3-like origin serves each connection at a fraction
   * of what it serves in all.
   */
  from -= from % g->chunk_size;
  if (from >= until || until - from < g->window / 4)
    return 0;

  piece = RA_PIECE - RA_PIECE % g->chunk_size;
  if (piece < g->chunk_size)
    piece = g->chunk_size;
  while (from < until && n < room) {
    uint64_t len = until - from;

    if (len > piece)
      len = piece;
    out[n++] = (struct readahead_request){ .offset = from, .count = len };
    from += len;
  }
  st->queued_until = from;
  return n;
}

/* A worker: fetch queued pieces into the cache until quit. */
static void *
worker_main (void *arg)
{
  (void) arg;
  /* Behind demand reads when the origin throttles (s3.h). */
  s3_set_thread_priority (S3_PRIORITY_READAHEAD);
  for (;;) {
    struct readahead_request req;

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
    /* Errors were reported by the read path; a demand read will retry.
     * Throttled, the piece is dropped (EAGAIN): readahead is a hint.
     */
    fetch_read (image, NULL, req.count, req.offset);
  }
  return NULL;
}

int
readahead_start (struct image *img, unsigned threads, uint64_t win)
{
  image = img;
  window = win;
  quit = false;
  if (window == 0)
    threads = 0;
  if (threads > MAX_WORKERS)
    threads = MAX_WORKERS;
  return threads_start (workers, &nr_workers, threads, worker_main);
}

void
readahead_stop (void)
{
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
    quit = true;
    pthread_cond_broadcast (&queue_cond);
  }
  threads_join (workers, &nr_workers);
}

void
readahead_note_read (uint64_t offset, uint32_t count)
{
  struct readahead_request reqs[QUEUE_LEN];
  struct readahead_geometry g;
  size_t n, i;

  if (nr_workers == 0 || image == NULL)
    return;
  g = (struct readahead_geometry){ .window = window,
                                   .chunk_size = image->chunk_size,
                                   .image_size = image->size };
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
  n = readahead_detect (&streams, &g, offset, count, reqs, QUEUE_LEN - q_len);
  for (i = 0; i < n; i++) {
    queue[(q_head + q_len) % QUEUE_LEN] = reqs[i];
    q_len++;
  }
  if (n > 0)
    pthread_cond_broadcast (&queue_cond);
}
