/* accel: unit test of plugin/readahead.c's stream detector
 * (readahead_detect).
 *
 * The detector sees every client's reads, in the order nbdkit's threads
 * note them, and answers with the pieces to fetch ahead.  The cases
 * feed it reads and check the exact pieces queued and the streams it
 * keeps: the third read of a stream queues the window beyond its
 * furthest end in 2 MiB chunk-aligned pieces; more is queued only when
 * a quarter window is not queued yet; reads out of order, and streams
 * interleaved, are followed; "near" is a quarter window (at least a
 * chunk) either side of the furthest end, bounds included; the slot
 * continued longest ago is the one reused; the image's end, a full
 * queue and chunks larger than a piece are respected.  Output: a line
 * per failed check and a final "plugin-readahead: N checks, N failed".
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "readahead.h"

#include "test.h"

#define KiB (UINT64_C (1024))
#define MiB (UINT64_C (1024) * 1024)
#define GiB (MiB * 1024)

#define ROOM 64

static struct readahead_request out[ROOM];

/* Note one read; how many pieces it queued (in out). */
static size_t
note (struct readahead_streams *s, const struct readahead_geometry *g,
      uint64_t offset, uint32_t count)
{
  return readahead_detect (s, g, offset, count, out, ROOM);
}

/* Check that pieces out[0..n) cover [from, until) in order, each of
 * piece bytes but the last.
 */
static bool
covers (size_t n, uint64_t from, uint64_t until, uint64_t piece)
{
  size_t i;

  for (i = 0; i < n; i++) {
    uint64_t want = until - from < piece ? until - from : piece;

    if (out[i].offset != from || out[i].count != want) {
      fprintf (stderr, "piece %zu: %llu+%u, wanted %llu+%llu\n", i,
               (unsigned long long) out[i].offset, out[i].count,
               (unsigned long long) from, (unsigned long long) want);
      return false;
    }
    from += want;
  }
  return from == until;
}

/* The default: a 32 MiB window over 1 MiB chunks, 2 MiB pieces. */
static const struct readahead_geometry def = { .window = 32 * MiB,
                                               .chunk_size = MiB,
                                               .image_size = GiB };

static void
test_sequential (void)
{
  struct readahead_streams s = { 0 };
  size_t n;

  /* Two reads make no stream yet; the third queues the window beyond
   * its furthest end (384 KiB), from the chunk that holds that end.
   */
  CHECK (note (&s, &def, 0, 128 * KiB) == 0);
  CHECK (note (&s, &def, 128 * KiB, 128 * KiB) == 0);
  n = note (&s, &def, 256 * KiB, 128 * KiB);
  CHECK (n == 17);
  CHECK (covers (n, 0, 32 * MiB + 384 * KiB, 2 * MiB));
  CHECK (s.slot[0].streak == 3);
  CHECK (s.slot[0].next_offset == 384 * KiB);
  CHECK (s.slot[0].queued_until == 32 * MiB + 384 * KiB);

  /* Nothing more until a quarter window (8 MiB) is not queued. */
  CHECK (note (&s, &def, 384 * KiB, 128 * KiB) == 0);
  CHECK (note (&s, &def, 8 * MiB - 256 * KiB, 128 * KiB) == 0);
  /* The end at 8 MiB: [32 MiB, 40 MiB) is 8 MiB. */
  n = note (&s, &def, 8 * MiB - 128 * KiB, 128 * KiB);
  CHECK (n == 4);
  CHECK (covers (n, 32 * MiB, 40 * MiB, 2 * MiB));
  CHECK (s.slot[0].queued_until == 40 * MiB);
  /* Still one stream. */
  CHECK (s.slot[1].last_use == 0);
}

static void
test_out_of_order (void)
{
  struct readahead_streams s = { 0 };
  size_t n;

  /* nbdkit's threads (and a kernel's several connections) reorder a
   * stream's reads: behind its furthest end, they still continue it.
   */
  CHECK (note (&s, &def, 256 * KiB, 128 * KiB) == 0);
  CHECK (note (&s, &def, 0, 128 * KiB) == 0);
  n = note (&s, &def, 128 * KiB, 128 * KiB);
  CHECK (n == 17);
  CHECK (covers (n, 0, 32 * MiB + 384 * KiB, 2 * MiB));
  CHECK (s.slot[0].next_offset == 384 * KiB);
}

static void
test_interleaved (void)
{
  struct readahead_streams s = { 0 };
  size_t n;

  /* Two files read at once, their reads interleaved. */
  CHECK (note (&s, &def, 0, 256 * KiB) == 0);
  CHECK (note (&s, &def, 512 * MiB, 256 * KiB) == 0);
  CHECK (note (&s, &def, 256 * KiB, 256 * KiB) == 0);
  CHECK (note (&s, &def, 512 * MiB + 256 * KiB, 256 * KiB) == 0);
  n = note (&s, &def, 512 * KiB, 256 * KiB);
  CHECK (covers (n, 0, 32 * MiB + 768 * KiB, 2 * MiB));
  n = note (&s, &def, 512 * MiB + 512 * KiB, 256 * KiB);
  CHECK (covers (n, 512 * MiB, 544 * MiB + 768 * KiB, 2 * MiB));
}

static void
test_near (void)
{
  struct readahead_streams s = { 0 };

  /* near = 8 MiB either side of the furthest end (16 MiB here). */
  note (&s, &def, 15 * MiB, MiB);
  note (&s, &def, 24 * MiB, MiB); /* 16 + 8: continues, end 25 MiB */
  CHECK (s.slot[0].streak == 2 && s.slot[0].next_offset == 25 * MiB);
  CHECK (s.slot[1].last_use == 0);
  note (&s, &def, 33 * MiB + 1, MiB); /* 25 + 8 + 1: a new stream */
  CHECK (s.slot[1].streak == 1 && s.slot[1].next_offset == 34 * MiB + 1);
  CHECK (s.slot[0].streak == 2);

  memset (&s, 0, sizeof s);
  note (&s, &def, 20 * MiB, MiB); /* end 21 MiB */
  note (&s, &def, 13 * MiB, MiB); /* 21 - 8: continues */
  CHECK (s.slot[0].streak == 2 && s.slot[0].next_offset == 21 * MiB);
  note (&s, &def, 13 * MiB - 1, MiB); /* 21 - 8 - 1: a new stream */
  CHECK (s.slot[1].streak == 1);

  /* A small window: near is a chunk, not a quarter window. */
  {
    const struct readahead_geometry g = { .window = 2 * MiB,
                                          .chunk_size = MiB,
                                          .image_size = GiB };

    memset (&s, 0, sizeof s);
    note (&s, &g, 0, 4 * KiB);
    note (&s, &g, 4 * KiB + MiB, 4 * KiB);
    CHECK (s.slot[0].streak == 2);
    note (&s, &g, 8 * KiB + 2 * MiB + 1, 4 * KiB);
    CHECK (s.slot[0].streak == 2 && s.slot[1].streak == 1);
  }
}

/* The slot continued longest ago makes room for a new stream. */
static void
test_reuse (void)
{
  struct readahead_streams s = { 0 };
  unsigned i;

  /* A stream with two reads, then seven others: all fit. */
  note (&s, &def, 0, MiB);
  note (&s, &def, MiB, MiB);
  for (i = 1; i < READAHEAD_STREAMS; i++)
    CHECK (note (&s, &def, i * 100 * MiB, MiB) == 0);
  CHECK (note (&s, &def, 2 * MiB, MiB) == 16);

  /* The same, with eight others: the first stream is forgotten, its
   * third read starts again.
   */
  memset (&s, 0, sizeof s);
  note (&s, &def, 0, MiB);
  note (&s, &def, MiB, MiB);
  for (i = 1; i <= READAHEAD_STREAMS; i++)
    CHECK (note (&s, &def, i * 100 * MiB, MiB) == 0);
  CHECK (s.slot[0].next_offset == 800 * MiB + MiB);
  CHECK (note (&s, &def, 2 * MiB, MiB) == 0);
  CHECK (s.slot[1].streak == 1 && s.slot[1].next_offset == 3 * MiB);

  /* Random reads, far apart, never queue anything. */
  memset (&s, 0, sizeof s);
  for (i = 0; i < 100; i++)
    CHECK (note (&s, &def, (i * 7919 % 1000) * MiB, 64 * KiB) == 0);
}

static void
test_limits (void)
{
  struct readahead_streams s = { 0 };
  size_t n;

  /* The image's end: a 20 MiB image queues up to its end only, and
   * nothing once that is queued.
   */
  {
    const struct readahead_geometry g = { .window = 32 * MiB,
                                          .chunk_size = MiB,
                                          .image_size = 20 * MiB };

    note (&s, &g, 0, MiB);
    note (&s, &g, MiB, MiB);
    n = note (&s, &g, 2 * MiB, MiB);
    CHECK (n == 9);
    CHECK (covers (n, 3 * MiB, 20 * MiB, 2 * MiB));
    CHECK (note (&s, &g, 3 * MiB, MiB) == 0);
  }

  /* Less than a quarter window left before the end: nothing is queued
   * (10 MiB image, 7 MiB left).
   */
  {
    const struct readahead_geometry g = { .window = 32 * MiB,
                                          .chunk_size = MiB,
                                          .image_size = 10 * MiB };

    memset (&s, 0, sizeof s);
    note (&s, &g, 0, MiB);
    note (&s, &g, MiB, MiB);
    CHECK (note (&s, &g, 2 * MiB, MiB) == 0);
    CHECK (s.slot[0].streak == 3 && s.slot[0].queued_until == 0);
  }

  /* A full queue: only room pieces are taken, and the rest is asked
   * for by the next read.
   */
  memset (&s, 0, sizeof s);
  note (&s, &def, 0, MiB);
  note (&s, &def, MiB, MiB);
  n = readahead_detect (&s, &def, 2 * MiB, MiB, out, 3);
  CHECK (n == 3);
  CHECK (covers (n, 3 * MiB, 9 * MiB, 2 * MiB));
  CHECK (s.slot[0].queued_until == 9 * MiB);
  n = readahead_detect (&s, &def, 3 * MiB, MiB, out, 0);
  CHECK (n == 0);
  n = note (&s, &def, 4 * MiB, MiB);
  CHECK (covers (n, 9 * MiB, 37 * MiB, 2 * MiB));

  /* Chunks larger than a piece: one chunk a piece. */
  {
    const struct readahead_geometry g = { .window = 32 * MiB,
                                          .chunk_size = 4 * MiB,
                                          .image_size = GiB };

    memset (&s, 0, sizeof s);
    note (&s, &g, 0, MiB);
    note (&s, &g, MiB, MiB);
    n = note (&s, &g, 2 * MiB, MiB);
    CHECK (n == 9);
    CHECK (covers (n, 0, 35 * MiB, 4 * MiB));
  }

  /* Small chunks: pieces stay 2 MiB, aligned to the chunk. */
  {
    const struct readahead_geometry g = { .window = 8 * MiB,
                                          .chunk_size = 64 * KiB,
                                          .image_size = GiB };

    memset (&s, 0, sizeof s);
    note (&s, &g, 0, 100 * KiB);
    note (&s, &g, 100 * KiB, 100 * KiB);
    n = note (&s, &g, 200 * KiB, 100 * KiB);
    CHECK (covers (n, 256 * KiB, 300 * KiB + 8 * MiB, 2 * MiB));
  }
}

int
main (void)
{
  test_capture_errors (true);
  test_sequential ();
  test_out_of_order ();
  test_interleaved ();
  test_near ();
  test_reuse ();
  test_limits ();
  EXPECT_ERRORS (0);
  return test_summary ("plugin-readahead");
}
