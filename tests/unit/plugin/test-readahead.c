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

#include "manifest.h"
#include "readahead-map.h"
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
    CHECK (s.slot[0].next_offset == 8 * KiB + MiB && s.slot[1].last_use == 0);
    note (&s, &g, 8 * KiB + 2 * MiB + 1, 4 * KiB);
    CHECK (s.slot[1].streak == 1);
    /* ... but a read a chunk ahead of 4 KiB reads does not add to the
     * streak: only a read within CLOSE_READS of its own length does.
     */
    CHECK (s.slot[0].streak == 1);
  }
}

/* Sparse random reads (a reader that will touch a small part of the
 * image) make no stream, whatever their size, the image's size and the
 * seed: reads landing within "near" of a stream by chance do not add to
 * its streak (before the "close" rule, 20,000 reads of 4 KiB over 1 GiB
 * queued a few dozen pieces).  Dense random reads, which go over most of
 * a region, do start a stream there after a while, as a directory read
 * in hash order does; that region is read whole anyway.
 */
static void
test_random (void)
{
  static const uint64_t images[] = { 256 * MiB, GiB, 4 * GiB };
  static const uint32_t sizes[] = { 4 * KiB, 16 * KiB };
  static const uint64_t seeds[] = { 88172645463325252ULL, 0x9e3779b97f4a7c15ULL,
                                    12345 };
  size_t a, b, c;
  unsigned i;

  for (a = 0; a < sizeof images / sizeof images[0]; a++)
    for (b = 0; b < sizeof sizes / sizeof sizes[0]; b++)
      for (c = 0; c < sizeof seeds / sizeof seeds[0]; c++) {
        const struct readahead_geometry g = { .window = 32 * MiB,
                                              .chunk_size = MiB,
                                              .image_size = images[a] };
        struct readahead_streams s = { 0 };
        uint64_t x = seeds[c];
        size_t queued = 0;

        /* 4,000 reads: at most 62 MiB of the image. */
        for (i = 0; i < 4000; i++) {
          x ^= x << 13; /* xorshift64: the same reads every run */
          x ^= x >> 7;
          x ^= x << 17;
          queued +=
              note (&s, &g, (x % (images[a] / sizes[b])) * sizes[b], sizes[b]);
        }
        if (queued != 0)
          fprintf (stderr, "image %llu MiB, reads of %u: %zu queued\n",
                   (unsigned long long) (images[a] / MiB), sizes[b], queued);
        CHECK (queued == 0);
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

/* ---- along the file map (readahead_detect_walk) --------------------- */

/* The test image: 64 MiB of 1 MiB chunks.  /frag is 6 MiB in three
 * extents, chunks 0-1, 4-5 and 8-9, interleaved with /other's 2-3, 6-7
 * and 10-11; /frag2 is a hard link of /frag.  /probe is 8 MiB at 16-23.
 * Then 32 small files /d/f00 ... /d/f31 of 64 KiB, back to back from
 * 32 MiB (two chunks of them hold 16 each... 32 x 64 KiB = 2 MiB), and
 * /big, 16 MiB at 40-55, after them.  Chunks 12-15, 24-31, 34-39 and
 * 56-63 hold no file (metadata, free space).
 */
static struct readahead_map *
load_test_map (void)
{
  static const unsigned char sha[32];
  struct manifest_writer *w;
  struct manifest *m;
  struct readahead_map *map = NULL;
  char *path;
  int64_t id;
  uint64_t i;
  int ok = 1;

  test_make_tmpdir ("test-readahead");
  path = test_tmp_path ("map.manifest");
  w = manifest_writer_create (path, 64 * MiB, MiB, "ext4");
  CHECK (w != NULL);
  if (w == NULL)
    exit (EXIT_FAILURE);
  for (i = 0; i < 64; i++)
    ok &= manifest_writer_add_chunk (w, i, sha, false) == 0;
  ok &= manifest_writer_add_file (w, "/frag", 6 * MiB, 0100644, &id) == 0;
  for (i = 0; i < 3; i++)
    ok &= manifest_writer_add_extent (w, id, i * 2 * MiB, i * 4 * MiB,
                                      2 * MiB) == 0;
  ok &= manifest_writer_add_file (w, "/frag2", 6 * MiB, 0100644, &id) == 0;
  for (i = 0; i < 3; i++)
    ok &= manifest_writer_add_extent (w, id, i * 2 * MiB, i * 4 * MiB,
                                      2 * MiB) == 0;
  ok &= manifest_writer_add_file (w, "/other", 6 * MiB, 0100644, &id) == 0;
  for (i = 0; i < 3; i++)
    ok &= manifest_writer_add_extent (w, id, i * 2 * MiB, (i * 4 + 2) * MiB,
                                      2 * MiB) == 0;
  ok &= manifest_writer_add_file (w, "/probe", 8 * MiB, 0100644, &id) == 0;
  ok &= manifest_writer_add_extent (w, id, 0, 16 * MiB, 8 * MiB) == 0;
  for (i = 0; i < 32; i++) {
    char name[16];

    snprintf (name, sizeof name, "/d/f%02u", (unsigned) i);
    ok &= manifest_writer_add_file (w, name, 64 * KiB, 0100644, &id) == 0;
    ok &= manifest_writer_add_extent (w, id, 0, 32 * MiB + i * 64 * KiB,
                                      64 * KiB) == 0;
  }
  ok &= manifest_writer_add_file (w, "/big", 16 * MiB, 0100644, &id) == 0;
  ok &= manifest_writer_add_extent (w, id, 0, 40 * MiB, 16 * MiB) == 0;
  CHECK (ok);
  CHECK (manifest_writer_finish (w, sha) == 0);
  m = manifest_open (path);
  CHECK (m != NULL);
  if (m == NULL)
    exit (EXIT_FAILURE);
  CHECK (readahead_map_load (m, &map) == 0 && map != NULL);
  manifest_close (m);
  free (path);
  if (map == NULL)
    exit (EXIT_FAILURE);
  return map;
}

/* Note one read along map; how many pieces it queued (in out). */
static size_t
note_walk (struct readahead_streams *s, const struct readahead_map *map,
           uint64_t offset, uint32_t count, bool *in_file)
{
  static const struct readahead_geometry g = { .window = 32 * MiB,
                                               .chunk_size = MiB,
                                               .image_size = 64 * MiB };

  return readahead_detect_walk (s, &g, map, offset, count, out, ROOM, in_file);
}

/* The chunks out[0..n) ask for, as a bitmap of the 64. */
static uint64_t
chunks_asked (size_t n)
{
  uint64_t bits = 0, c;
  size_t i;

  for (i = 0; i < n; i++) {
    CHECK (out[i].offset % MiB == 0 && out[i].count <= 2 * MiB);
    for (c = out[i].offset / MiB;
         c < (out[i].offset + out[i].count + MiB - 1) / MiB; c++)
      bits |= UINT64_C (1) << c;
  }
  return bits;
}

#define CHUNK(c) (UINT64_C (1) << (c))
#define CHUNKS(a, b) (((UINT64_C (1) << ((b) + 1)) - 1) & ~(CHUNK (a) - 1))

static void
test_walk_map (const struct readahead_map *map)
{
  uint64_t w, avail, fs, fe;

  /* The hard link is laid out once: /frag, /other, /probe, the 32
   * small files, /big.
   */
  CHECK (map->nr_files == 36);
  CHECK (map->nr_ext == 3 + 3 + 1 + 32 + 1);
  CHECK (map->walk_size == (6 + 6 + 8 + 2 + 16) * MiB);
  /* /frag's second extent (chunk 4) follows its first in the walk. */
  CHECK (readahead_map_find (map, 4 * MiB + 5, &w, &avail, &fs, &fe));
  CHECK (w == 2 * MiB + 5 && avail == 2 * MiB - 5);
  CHECK (fs == 0 && fe == 6 * MiB);
  /* /other's first extent (chunk 2) comes after /frag's last. */
  CHECK (readahead_map_find (map, 2 * MiB, &w, &avail, &fs, &fe));
  CHECK (w == 6 * MiB && fs == 6 * MiB && fe == 12 * MiB);
  /* No file: metadata or free space, before, between and after. */
  CHECK (!readahead_map_find (map, 12 * MiB, &w, &avail, &fs, &fe));
  CHECK (!readahead_map_find (map, 34 * MiB, &w, &avail, &fs, &fe));
  CHECK (!readahead_map_find (map, 63 * MiB, &w, &avail, &fs, &fe));
}

/* A fragmented file read from start to end: readahead follows its
 * extents, never touches the file it is interleaved with, and stops at
 * its end.
 */
static void
test_walk_fragmented (const struct readahead_map *map)
{
  struct readahead_streams s = { 0 };
  uint64_t asked = 0, off;
  bool in_file;
  size_t n, i;

  for (i = 0; i < 3; i++)
    for (off = 0; off < 2 * MiB; off += 256 * KiB) {
      n = note_walk (&s, map, i * 4 * MiB + off, 256 * KiB, &in_file);
      CHECK (in_file);
      asked |= chunks_asked (n);
    }
  CHECK (asked == (CHUNKS (0, 1) | CHUNKS (4, 5) | CHUNKS (8, 9)));
  /* The end: nothing more, even read again. */
  CHECK (note_walk (&s, map, 10 * MiB - 4 * KiB, 4 * KiB, &in_file) == 0);
  CHECK (s.slot[0].walk == false);
  CHECK (s.slot[1].last_use == 0);
}

/* Small files read one after another, in the walk's order: from the
 * third, the next files are asked for, and then what follows them.
 */
static void
test_walk_files (const struct readahead_map *map)
{
  struct readahead_streams s = { 0 };
  bool in_file;
  size_t n;

  CHECK (note_walk (&s, map, 32 * MiB, 64 * KiB, &in_file) == 0);
  CHECK (note_walk (&s, map, 32 * MiB + 64 * KiB, 64 * KiB, &in_file) == 0);
  CHECK (s.slot[0].walk);
  n = note_walk (&s, map, 32 * MiB + 128 * KiB, 64 * KiB, &in_file);
  /* The rest of the small files (32-33) and /big (40-55), not the
   * chunks between (34-39), nor what follows /big.
   */
  CHECK (chunks_asked (n) == (CHUNKS (32, 33) | CHUNKS (40, 55)));

  /* The files in another order (a hash-ordered directory) make a walk
   * too: once a stream has gone on to a later file, reads behind its
   * furthest end continue it.
   */
  memset (&s, 0, sizeof s);
  note_walk (&s, map, 32 * MiB + 5 * 64 * KiB, 64 * KiB, &in_file);
  note_walk (&s, map, 32 * MiB + 2 * 64 * KiB, 64 * KiB, &in_file);
  CHECK (s.slot[1].streak == 1); /* an earlier file: not the same stream */
  CHECK (note_walk (&s, map, 32 * MiB + 9 * 64 * KiB, 64 * KiB, &in_file) == 0);
  CHECK (s.slot[0].streak == 2 && s.slot[0].walk);
  n = note_walk (&s, map, 32 * MiB + 7 * 64 * KiB, 64 * KiB, &in_file);
  CHECK (s.slot[0].streak == 3);
  CHECK (chunks_asked (n) == (CHUNKS (32, 33) | CHUNKS (40, 55)));
}

/* What is not a file, or not a stream: nothing. */
static void
test_walk_nothing (const struct readahead_map *map)
{
  struct readahead_streams s = { 0 };
  bool in_file;
  unsigned i;

  /* Metadata reads, however sequential. */
  for (i = 0; i < 10; i++) {
    CHECK (note_walk (&s, map, 12 * MiB + i * 4 * KiB, 4 * KiB, &in_file) == 0);
    CHECK (!in_file);
  }
  CHECK (s.slot[0].last_use == 0);

  /* Probes (blkid): 4 KiB at 1, 2 and 4 MiB into a file are not a
   * stream; nor is one that jumps from a file before its end into the
   * next.
   */
  memset (&s, 0, sizeof s);
  CHECK (note_walk (&s, map, 17 * MiB, 4 * KiB, &in_file) == 0);
  CHECK (note_walk (&s, map, 18 * MiB, 4 * KiB, &in_file) == 0);
  CHECK (note_walk (&s, map, 20 * MiB, 4 * KiB, &in_file) == 0);
  CHECK (note_walk (&s, map, 22 * MiB, 4 * KiB, &in_file) == 0);
  memset (&s, 0, sizeof s);
  note_walk (&s, map, 20 * MiB, 4 * KiB, &in_file);
  note_walk (&s, map, 24 * MiB - 8 * KiB, 4 * KiB, &in_file);
  /* /probe not read to its end: the first small file starts again. */
  CHECK (note_walk (&s, map, 32 * MiB, 4 * KiB, &in_file) == 0);
  CHECK (s.slot[0].streak == 1 && !s.slot[0].walk);
  /* Reads of an earlier file do not continue a stream in a later one:
   * two reads of /probe and one of /other (behind, within "near") are
   * no stream of three.
   */
  memset (&s, 0, sizeof s);
  note_walk (&s, map, 16 * MiB, 4 * KiB, &in_file);
  note_walk (&s, map, 16 * MiB + 8 * KiB, 4 * KiB, &in_file);
  CHECK (note_walk (&s, map, 10 * MiB, 4 * KiB, &in_file) == 0);
  CHECK (s.slot[0].streak == 2 && s.slot[1].streak == 1);
  /* A small file read whole, then a read inside the next one, not at
   * its start: a probe, not a walk.
   */
  memset (&s, 0, sizeof s);
  note_walk (&s, map, 32 * MiB, 64 * KiB, &in_file);
  CHECK (note_walk (&s, map, 32 * MiB + 68 * KiB, 4 * KiB, &in_file) == 0);
  CHECK (s.slot[0].streak == 1 && !s.slot[0].walk);
  CHECK (note_walk (&s, map, 32 * MiB + 132 * KiB, 4 * KiB, &in_file) == 0);
  CHECK (s.slot[0].streak == 1 && !s.slot[0].walk);
}

/* Metadata read in order (an inode table as `find` stats file after
 * file): from the third close read, a window beyond it in image
 * offsets that starts at a chunk and doubles with each close read, of
 * the chunks that hold something outside files only; a mount's probes
 * and random metadata reads ask little or nothing.
 */
static void
test_meta (const struct readahead_map *map)
{
  static const struct readahead_geometry g = { .window = 32 * MiB,
                                               .chunk_size = MiB,
                                               .image_size = 64 * MiB };
  struct readahead_streams s = { 0 };
  uint64_t reached, asked = 0;
  unsigned i;
  size_t n;

  CHECK (readahead_detect_meta (&s, &g, map, 12 * MiB, 4 * KiB, out, ROOM) ==
         0);
  CHECK (readahead_detect_meta (&s, &g, map, 12 * MiB + 4 * KiB, 4 * KiB, out,
                                ROOM) == 0);
  n = readahead_detect_meta (&s, &g, map, 12 * MiB + 8 * KiB, 4 * KiB, out,
                             ROOM);
  CHECK (chunks_asked (n) == CHUNKS (12, 13)); /* a chunk beyond 12 MiB+12K */
  for (i = 3; i < 12; i++) {
    n = readahead_detect_meta (&s, &g, map, 12 * MiB + i * 4 * KiB, 4 * KiB,
                               out, ROOM);
    asked |= chunks_asked (n);
  }
  /* The window doubled to 32 MiB: up to 44 MiB + 48 KiB, but not
   * /probe (16-23), the small files (32-33) nor /big (40-55).
   */
  CHECK (asked == (CHUNKS (13, 15) | CHUNKS (24, 31) | CHUNKS (34, 39)));

  /* A mount's probes where no file is (56-63 MiB): 4 KiB at 0, 4 KiB,
   * 8 KiB, 32 KiB, 64 KiB, 128 KiB, ... 4 MiB.  The first five are
   * close (within 8 reads' length of each other): one chunk asked,
   * then two, then four; from 128 KiB on each read is a stream of its
   * own, and nothing more is asked.
   */
  memset (&s, 0, sizeof s);
  asked = 0;
  for (i = 0; i < 3; i++)
    asked |= chunks_asked (readahead_detect_meta (
        &s, &g, map, 56 * MiB + i * 4 * KiB, 4 * KiB, out, ROOM));
  for (i = 32; i <= 4096; i *= 2)
    asked |= chunks_asked (readahead_detect_meta (
        &s, &g, map, 56 * MiB + i * KiB, 4 * KiB, out, ROOM));
  CHECK (asked == CHUNKS (56, 60));

  /* Metadata reads far apart: no stream. */
  memset (&s, 0, sizeof s);
  for (i = 0; i < 8; i++)
    CHECK (readahead_detect_meta (&s, &g, map,
                                  (12 + (i * 5) % 4) * MiB + i * 64 * KiB,
                                  4 * KiB, out, ROOM) == 0);

  /* Chunks of 4 MiB: chunk 8 (32-35 MiB) holds the small files and
   * metadata, so it is asked; the runs are cut into 8 MiB pieces.
   */
  n = readahead_map_meta_ranges (map, 0, 64 * MiB, 4 * MiB, 64 * MiB, 8 * MiB,
                                 out, ROOM, &reached);
  CHECK (n == 4 && reached == 64 * MiB);
  CHECK (out[0].offset == 12 * MiB && out[0].count == 4 * MiB);
  CHECK (out[1].offset == 24 * MiB && out[1].count == 8 * MiB);
  CHECK (out[2].offset == 32 * MiB && out[2].count == 8 * MiB);
  CHECK (out[3].offset == 56 * MiB && out[3].count == 8 * MiB);
  /* Out of room part way: reached says where to go on from. */
  n = readahead_map_meta_ranges (map, 0, 64 * MiB, 4 * MiB, 64 * MiB, 8 * MiB,
                                 out, 2, &reached);
  CHECK (n == 2 && reached == 32 * MiB);
  n = readahead_map_meta_ranges (map, reached, 64 * MiB, 4 * MiB, 64 * MiB,
                                 8 * MiB, out, ROOM, &reached);
  CHECK (n == 2 && out[0].offset == 32 * MiB && out[1].offset == 56 * MiB);
  /* The image's end cuts the last chunk; a range of file data alone
   * asks nothing.
   */
  n = readahead_map_meta_ranges (map, 60 * MiB, 64 * MiB, MiB, 62 * MiB + 5,
                                 8 * MiB, out, ROOM, &reached);
  CHECK (n == 1 && out[0].offset == 60 * MiB && out[0].count == 2 * MiB + 5);
  CHECK (readahead_map_meta_ranges (map, 40 * MiB, 56 * MiB, MiB, 64 * MiB,
                                    8 * MiB, out, ROOM, &reached) == 0);
  CHECK (reached == 56 * MiB);
}

/* Less room than pieces: the rest is asked for by the next read. */
static void
test_walk_room (const struct readahead_map *map)
{
  static const struct readahead_geometry g = { .window = 32 * MiB,
                                               .chunk_size = MiB,
                                               .image_size = 64 * MiB };
  struct readahead_streams s = { 0 };
  bool in_file;
  size_t n;

  note_walk (&s, map, 40 * MiB, MiB, &in_file);
  note_walk (&s, map, 41 * MiB, MiB, &in_file);
  n = readahead_detect_walk (&s, &g, map, 42 * MiB, MiB, out, 2, &in_file);
  CHECK (n == 2 && chunks_asked (n) == CHUNKS (43, 46));
  n = note_walk (&s, map, 43 * MiB, MiB, &in_file);
  CHECK (chunks_asked (n) == CHUNKS (47, 55));
}

int
main (void)
{
  struct readahead_map *map;

  test_capture_errors (true);
  test_sequential ();
  test_out_of_order ();
  test_interleaved ();
  test_near ();
  test_random ();
  test_reuse ();
  test_limits ();
  map = load_test_map ();
  test_walk_map (map);
  test_walk_fragmented (map);
  test_walk_files (map);
  test_walk_nothing (map);
  test_walk_room (map);
  test_meta (map);
  readahead_map_free (map);
  EXPECT_ERRORS (0);
  return test_summary ("plugin-readahead");
}
