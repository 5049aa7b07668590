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
 * Where?  Without a manifest (or with one whose file map is empty or too
 * large) streams are in image offsets, as above, and the window runs
 * on through whatever follows: other files, metadata.  With a file map
 * (readahead-map.c) streams are followed in the "walk", every file's
 * extents end to end, files in image order, so that:
 *
 *  - a reader of one file is read ahead along that file's extents,
 *    however fragmented, and never past its end (else a cold read
 *    fetches what nobody reads, and a restart fetches it again);
 *  - a stream that reads a file to its end and goes on to the start of
 *    a later one is a walk (`find`, `tar`, `cp -r`, `cat` of a glob read
 *    file after file), and its window runs over the next files in
 *    that order, skipping metadata and free space;
 *  - ahead of a stream, a read must start within a chunk (1 MiB at
 *    least) of its end to continue it, and a non-walk stream is not
 *    continued by reads of earlier files, so that probes (blkid reads
 *    4 KiB at 32 KiB, 64 KiB, ... 4 MiB) and reads of other files
 *    nearby are not taken for a reader going through a file;
 *  - reads outside every file (metadata) are streams of their own, in
 *    image offsets (readahead_detect_meta): metadata read in order, as
 *    `find` or `du` go through an inode table, is read ahead, but only
 *    the chunks that hold something besides file data, so that the
 *    window never runs into files nobody may read (readahead from
 *    metadata into file data gave the aligner 1.18x origin bytes), and
 *    with a window that grows from one chunk as the stream goes on, so
 *    that a mount's probes fetch little.  The bench's `find | xargs
 *    cksum` of 20,000 small files, its reads replayed through the
 *    detector (tests/bench/readahead-replay): 52 of them wait on a
 *    chunk not asked for first without it, all outside files, 29 with
 *    it, and no chunk is asked that is not read.
 *
 * accel_pread notes each read before it serves it, so those GETs start
 * along with the read's own.  Worker threads (8 by default) take the
 * pieces and bring them into the cache with the demand read path
 * (fetch_read with no buffer), so a chunk is still fetched only once
 * however many readers and workers want it.  The queue is small and
 * drops pieces when it is full: readahead is a hint, never a debt.
 * -D accel.readahead=1 logs each piece queued.
 */

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>

#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "fetch.h"
#include "readahead-map.h"
#include "readahead.h"
#include "report.h"
#include "threads.h"

/* -D accel.readahead=1: a debug line for each piece queued. */
NBDKIT_DLL_PUBLIC int accel_debug_readahead = 0;

#define QUEUE_LEN 64
#define MAX_WORKERS 16

/* Reads in a row that make a stream sequential. */
#define STREAK 2

/* A read counts towards its stream's streak only if it starts within
 * this many times its own length of the stream's furthest end: a
 * reader's reads, reordered by nbdkit's threads and the client's
 * connections, are that close; random reads that land within "near" by
 * chance are not, and would otherwise make streams of nothing (and
 * fetch chunks nobody reads: a node's restart that should take nothing
 * from the origin took a chunk in 4 of 10 random-read runs).  Random
 * reads dense enough to go over most of a region still start a stream
 * there after a while, as a directory read in hash order must.
 */
#define CLOSE_READS 8

/* Readahead GETs: 2 MiB (at least a chunk), so that 8 workers keep
 * 16 MiB in flight: at 20 ms to the first byte and 100 MB/s a
 * connection, 2 MiB GETs give each worker ~50 MB/s.
 */
#define RA_PIECE (2 * 1024 * 1024)

#define MiB (UINT64_C (1024) * 1024)

/* lock protects the queue, quit and streams; workers sleep on
 * queue_cond.
 */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_cond = PTHREAD_COND_INITIALIZER;
static struct readahead_request queue[QUEUE_LEN];
static size_t q_head, q_len;
static bool quit;
static struct readahead_state state;

/* Set by readahead_start before the workers start. */
static struct image *image;
static uint64_t window;
static pthread_t workers[MAX_WORKERS];
static unsigned nr_workers;
static struct readahead_map *file_map; /* NULL: no manifest, or no file map */

/* The stream that a read at offset continues (one that starts at most
 * behind before or ahead after the furthest end it reached and, along
 * the file map, is not in a file before the stream's unless the stream
 * is a walk: file_end is the end of the read's file, 0 without a map),
 * or a new one (streak 0) in the slot continued longest ago (an unused
 * one first).
 */
static struct readahead_stream *
find_stream (struct readahead_streams *s, uint64_t offset, uint64_t behind,
             uint64_t ahead, uint64_t file_end)
{
  struct readahead_stream *st, *oldest = &s->slot[0];

  for (st = s->slot; st < s->slot + READAHEAD_STREAMS; st++) {
    if (st->last_use && offset + behind >= st->next_offset &&
        offset <= st->next_offset + ahead &&
        (st->walk || file_end >= st->file_end))
      return st;
    if (st->last_use < oldest->last_use)
      oldest = st;
  }
  *oldest = (struct readahead_stream){ .next_offset = offset };
  return oldest;
}

/* Note a read of [offset, end) in s, continuing a stream if it starts
 * at most ahead bytes (0: "near") after its furthest end (and, with
 * file_end, as find_stream says): the stream, its streak and furthest
 * end updated, and *prev_end the furthest end before.
 */
static struct readahead_stream *
note_stream (struct readahead_streams *s, const struct readahead_geometry *g,
             uint64_t offset, uint64_t end, uint64_t ahead, uint64_t file_end,
             uint64_t *prev_end)
{
  uint64_t near, close;
  struct readahead_stream *st;

  near = g->window / 4 > g->chunk_size ? g->window / 4 : g->chunk_size;
  st = find_stream (s, offset, near, ahead ? ahead : near, file_end);
  *prev_end = st->next_offset;
  st->last_use = ++s->clock;
  close = CLOSE_READS * (end - offset);
  if (st->streak == 0 ||
      (offset + close >= st->next_offset && offset <= st->next_offset + close))
    st->streak++;
  if (end > st->next_offset)
    st->next_offset = end;
  return st;
}

/* Readahead GETs: RA_PIECE, but at least a chunk and in whole chunks. */
static uint64_t
piece_size (const struct readahead_geometry *g)
{
  uint64_t piece = RA_PIECE - RA_PIECE % g->chunk_size;

  return piece < g->chunk_size ? g->chunk_size : piece;
}

/* readahead_detect, and readahead_detect_meta with map: the window in
 * image offsets beyond the stream's furthest end, without map in
 * pieces of all of it, with map in pieces of the chunks that hold
 * something outside files.  With map, a stream goes on only with reads
 * close ahead of it, and its window starts at one chunk and doubles
 * with each close read after the third, up to readahead=: a mount's
 * probes (blkid reads 4 KiB at 0, 4 KiB, 8 KiB, then 32 KiB, 64 KiB,
 * ... 4 MiB) make a stream of a few close reads, and would otherwise
 * fetch a whole window of metadata (in a test image, that window held
 * chunks shared with other files' data); a scan of an inode table
 * makes hundreds.
 */
static size_t
detect_image (struct readahead_streams *s, const struct readahead_geometry *g,
              const struct readahead_map *map, uint64_t offset, uint32_t count,
              struct readahead_request *out, size_t room)
{
  uint64_t end, from, until, piece, prev_end, reached, win = g->window;
  struct readahead_stream *st;
  size_t n = 0;

  st = note_stream (s, g, offset, offset + count,
                    map ? CLOSE_READS * (uint64_t) count : 0, 0, &prev_end);
  if (st->streak <= STREAK)
    return 0;

  end = st->next_offset;
  if (map) {
    unsigned doublings = st->streak - STREAK - 1;

    if (doublings < 32 && ((uint64_t) g->chunk_size << doublings) < win)
      win = (uint64_t) g->chunk_size << doublings;
  }
  from = end > st->queued_until ? end : st->queued_until;
  until = end + win;
  if (until > g->image_size)
    until = g->image_size;
  /* Ask in chunk-aligned pieces, a quarter of a window at least at a
   * time; each piece is one GET, and several workers fetch pieces at
   * once, since an S3-like origin serves each connection at a fraction
   * of what it serves in all.
   */
  from -= from % g->chunk_size;
  if (from >= until || until - from < win / 4)
    return 0;

  piece = piece_size (g);
  if (map) {
    n = readahead_map_meta_ranges (map, from, until, g->chunk_size,
                                   g->image_size, piece, out, room, &reached);
    st->queued_until = reached;
    return n;
  }
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

size_t
readahead_detect (struct readahead_streams *s,
                  const struct readahead_geometry *g, uint64_t offset,
                  uint32_t count, struct readahead_request *out, size_t room)
{
  return detect_image (s, g, NULL, offset, count, out, room);
}

size_t
readahead_detect_meta (struct readahead_streams *s,
                       const struct readahead_geometry *g,
                       const struct readahead_map *map, uint64_t offset,
                       uint32_t count, struct readahead_request *out,
                       size_t room)
{
  return detect_image (s, g, map, offset, count, out, room);
}

size_t
readahead_detect_walk (struct readahead_streams *s,
                       const struct readahead_geometry *g,
                       const struct readahead_map *map, uint64_t offset,
                       uint32_t count, struct readahead_request *out,
                       size_t room, bool *in_file)
{
  uint64_t w, avail, file_start, file_end, from, until, bound, reached;
  uint64_t w_end, ahead, prev_end;
  struct readahead_stream *st;
  size_t n;

  *in_file =
      readahead_map_find (map, offset, &w, &avail, &file_start, &file_end);
  if (!*in_file)
    return 0;
  /* Ahead of a stream, a read must be close to continue it: reads a
   * chunk or more apart are probes (blkid reads 4 KiB at 64 KiB, 128
   * KiB, ... 1 MiB, 2 MiB, 4 MiB) or random reads, not a reader going
   * through a file, however out of order its reads arrive.
   */
  ahead = g->chunk_size > MiB ? g->chunk_size : MiB;
  w_end = w + (count < avail ? count : avail);
  st = note_stream (s, g, w, w_end, ahead, file_end, &prev_end);
  /* A stream that reached its file's end and goes on to the start of
   * a later file is a walk: from then on its window runs over the next
   * files.  One that jumps to a later file otherwise (probes: blkid
   * reads 4 KiB at 32 KiB, 64 KiB, 128 KiB, ...) starts again there.
   * Until it is a walk, its window ends at its file's end.
   */
  if (st->streak == 1)
    st->file_end = file_end;
  else if (file_start >= st->file_end) {
    if (st->walk || (prev_end >= st->file_end && w == file_start))
      st->walk = true;
    else
      *st = (struct readahead_stream){ .next_offset = w_end,
                                       .streak = 1,
                                       .last_use = st->last_use };
    st->file_end = file_end;
  }
  if (st->streak <= STREAK)
    return 0;

  bound = st->walk ? map->walk_size : st->file_end;
  from =
      st->next_offset > st->queued_until ? st->next_offset : st->queued_until;
  until = st->next_offset + g->window;
  if (until > bound)
    until = bound;
  /* A quarter of a window at least at a time, as above, or all that
   * is left of the file.
   */
  if (from >= until || (until - from < g->window / 4 && until < bound))
    return 0;
  n = readahead_map_ranges (map, from, until, g->chunk_size, g->image_size,
                            piece_size (g), out, room, &reached);
  st->queued_until = reached;
  return n;
}

size_t
readahead_detect_read (struct readahead_state *s,
                       const struct readahead_geometry *g,
                       const struct readahead_map *map, uint64_t offset,
                       uint32_t count, struct readahead_request *out,
                       size_t room, bool *in_file)
{
  size_t n;

  *in_file = true;
  if (map == NULL)
    return readahead_detect (&s->streams, g, offset, count, out, room);
  n = readahead_detect_walk (&s->streams, g, map, offset, count, out, room,
                             in_file);
  if (!*in_file)
    n = readahead_detect_meta (&s->meta, g, map, offset, count, out, room);
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
  if (threads > 0 && img->manifest) {
    /* A map that cannot be loaded (reported) leaves image offsets:
     * readahead is a hint, and serving goes on.
     */
    if (readahead_map_load (img->manifest, &file_map) == -1)
      file_map = NULL;
    if (file_map)
      report_debug ("readahead: following the file map: %zu files, %zu "
                    "extents",
                    file_map->nr_files, file_map->nr_ext);
    else
      report_debug ("readahead: no file map (none, or more than %" PRIu64
                    " extents): following image offsets",
                    READAHEAD_MAP_MAX_EXTENTS);
  }
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
  readahead_map_free (file_map);
  file_map = NULL;
}

void
readahead_note_read (uint64_t offset, uint32_t count)
{
  struct readahead_request reqs[QUEUE_LEN];
  struct readahead_geometry g;
  bool in_file;
  size_t n, i;

  if (nr_workers == 0 || image == NULL)
    return;
  g = (struct readahead_geometry){ .window = window,
                                   .chunk_size = image->chunk_size,
                                   .image_size = image->size };
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
  n = readahead_detect_read (&state, &g, file_map, offset, count, reqs,
                             QUEUE_LEN - q_len, &in_file);
  for (i = 0; i < n; i++) {
    if (accel_debug_readahead)
      report_debug ("readahead: read %" PRIu64 "+%" PRIu32 ": ask %" PRIu64
                    "+%" PRIu32,
                    offset, count, reqs[i].offset, reqs[i].count);
    queue[(q_head + q_len) % QUEUE_LEN] = reqs[i];
    q_len++;
  }
  if (n > 0)
    pthread_cond_broadcast (&queue_cond);
}
