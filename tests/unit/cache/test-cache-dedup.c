/* accel: unit test of dedup by chunk hash (common/cache/cache-dedup.c).
 *
 * Two images in one cache directory share some chunks at different
 * offsets.  Asserts on effects: a missing chunk of one is filled from the
 * other (bytes, then present in the map after a flush, then read back and
 * still there after a reopen), including from another offset of the same
 * image; a chunk nobody holds, a donor damaged at rest, an evicted donor,
 * a donor of another chunk size and a short last chunk of another length
 * are not used (and nothing is stored); chunks stored after the index
 * was built are found once a rebuild is due (not before); the copy
 * counts.  Then the cost of the scan: the time to index many images'
 * maps, printed (and bounded loosely, so that the test can fail).
 *
 * Chunk bytes are a function of a seed and a number, as in test-cache.c.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "cache-dedup.h"
#include "cache-internal.h"
#include "cache.h"
#include "cleanup.h"
#include "test.h"

#define CHUNK (64 * 1024)

/* Bytes of "content" n (xorshift64, never all zeros); len <= CHUNK. */
static void
content (uint64_t n, unsigned char *buf, uint32_t len)
{
  uint64_t x = (n + 1) * 0x9e3779b97f4a7c15ULL | 1;
  uint32_t i;

  for (i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    buf[i] = x >> 24;
  }
}

/* Store content n as chunk idx of ci, and record it. */
static void
put (struct cache_image *ci, uint64_t idx, uint64_t n, uint32_t len)
{
  CLEANUP_FREE unsigned char *buf = test_alloc (CHUNK);

  content (n, buf, len);
  CHECK (cache_store (ci, idx, buf, len) == 0);
  CHECK (cache_flush (ci) == 0);
}

/* cache_dedup_copy of chunk idx wanting content n: its result, and
 * whether buf then holds content n.
 */
static int
copy (struct cache_dedup *dd, uint64_t idx, uint64_t n, uint32_t len,
      bool *right)
{
  CLEANUP_FREE unsigned char *want = test_alloc (CHUNK);
  CLEANUP_FREE unsigned char *buf = test_alloc (CHUNK);
  unsigned char sha[32];
  int r;

  content (n, want, len);
  SHA256 (want, len, sha);
  r = cache_dedup_copy (dd, idx, sha, buf);
  *right = memcmp (buf, want, len) == 0;
  return r;
}

/* True if chunk idx of ci reads back as content n. */
static bool
reads_as (struct cache_image *ci, uint64_t idx, uint64_t n, uint32_t len)
{
  CLEANUP_FREE unsigned char *want = test_alloc (CHUNK);
  CLEANUP_FREE unsigned char *got = test_alloc (CHUNK);

  content (n, want, len);
  return cache_read (ci, idx, 0, len, got) == 1 && memcmp (got, want, len) == 0;
}

static bool
present (struct cache_image *ci, uint64_t idx)
{
  return atomic_load (&ci->entries[idx].state) & STATE_PRESENT;
}

/* Overwrite a stored chunk's bytes behind the cache's back. */
static void
scribble (struct cache_image *ci, uint64_t idx)
{
  char junk[16] = "damaged at rest";

  CHECK (pwrite (ci->data_fd, junk, sizeof junk, idx * ci->chunk_size + 100) ==
         (ssize_t) sizeof junk);
}

static uint64_t
ms_since (const struct timespec *t0)
{
  struct timespec t;

  clock_gettime (CLOCK_MONOTONIC, &t);
  return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Image "a" (8 chunks, contents 100..107) donates to image "b" (10
 * chunks, the last one short).
 */
static void
test_copy (void)
{
  char *path = test_tmp_path ("copy");
  struct cache_dir *d = cache_dir_open (path, 0);
  struct cache_image *a, *b, *c, *e;
  struct cache_dedup *dd;
  struct cache_dedup_stats st;
  const uint64_t bsize = 9 * CHUNK + 1000;
  bool right;
  uint64_t i;

  CHECK (d != NULL);
  a = cache_image_open (d, "a", "a", 8 * CHUNK, CHUNK, NULL, NULL);
  b = cache_image_open (d, "b", "b", bsize, CHUNK, NULL, NULL);
  /* Another chunk size: its chunks are never candidates. */
  c = cache_image_open (d, "c", "c", 8 * CHUNK, CHUNK / 2, NULL, NULL);
  /* Its short last chunk (1000 bytes, content 300) is one. */
  e = cache_image_open (d, "e", "e", 2 * CHUNK + 1000, CHUNK, NULL, NULL);
  CHECK (a && b && c && e);
  for (i = 0; i < 8; i++)
    put (a, i, 100 + i, CHUNK);
  put (c, 0, 200, CHUNK / 2);
  put (e, 2, 300, 1000);
  put (b, 0, 1, CHUNK);

  dd = cache_dedup_open (b);
  CHECK (dd != NULL);
  cache_dedup_stats (dd, &st);
  CHECK (st.scans == 1 && st.images == 3 && st.entries == 10);

  /* a's chunk 3 becomes b's chunk 5. */
  CHECK (copy (dd, 5, 103, CHUNK, &right) == 1 && right);
  CHECK (cache_pending (b) == 1);
  CHECK (cache_flush (b) == 0 && present (b, 5));
  CHECK (reads_as (b, 5, 103, CHUNK));
  CHECK (memcmp ((void *) b->entries[5].sha256, (void *) a->entries[3].sha256,
                 32) == 0);

  /* b's own chunk 0 becomes its chunk 6. */
  CHECK (copy (dd, 6, 1, CHUNK, &right) == 1 && right);
  CHECK (cache_flush (b) == 0 && reads_as (b, 6, 1, CHUNK));

  /* A short last chunk from another short last chunk. */
  CHECK (copy (dd, 9, 300, 1000, &right) == 1 && right);
  CHECK (cache_flush (b) == 0 && reads_as (b, 9, 300, 1000));

  /* Nobody holds content 999; c's half chunk is not a candidate. */
  CHECK (copy (dd, 7, 999, CHUNK, &right) == 0);
  CHECK (copy (dd, 7, 200, CHUNK / 2, &right) == 0);
  CHECK (!cache_contains (b, 7));

  /* A donor damaged at rest is not used, nothing is stored, and it
   * counts as a verify failure.
   */
  scribble (a, 4);
  CHECK (copy (dd, 7, 104, CHUNK, &right) == 0);
  CHECK (!cache_contains (b, 7));
  cache_dedup_stats (dd, &st);
  CHECK (st.verify_failed == 1);

  /* An evicted donor is not used. */
  CHECK (cache_dir_evict_to (d, 0) == 0);
  CHECK (!present (a, 2));
  CHECK (copy (dd, 8, 102, CHUNK, &right) == 0 && !cache_contains (b, 8));

  cache_dedup_stats (dd, &st);
  CHECK (st.chunks == 3 && st.bytes == 2 * CHUNK + 1000);
  EXPECT_ERRORS (0);
  cache_dedup_close (dd);
  cache_image_close (a);
  cache_image_close (b);
  cache_image_close (c);
  cache_image_close (e);

  /* The copies were recorded for good... until the eviction above took
   * them too: store one again and check it survives a reopen.
   */
  a = cache_image_open (d, "a", "a", 8 * CHUNK, CHUNK, NULL, NULL);
  b = cache_image_open (d, "b", "b", bsize, CHUNK, NULL, NULL);
  put (a, 1, 101, CHUNK);
  dd = cache_dedup_open (b);
  CHECK (dd && copy (dd, 2, 101, CHUNK, &right) == 1 && right);
  cache_dedup_close (dd);
  cache_image_close (b);
  b = cache_image_open (d, "b", "b", bsize, CHUNK, NULL, NULL);
  CHECK (b && present (b, 2) && reads_as (b, 2, 101, CHUNK));
  cache_image_close (a);
  cache_image_close (b);
  cache_dir_close (d);
  free (path);
}

/* Chunks stored after the index was built are found once a rebuild is
 * due (a second after the last one), and not before.
 */
static void
test_rebuild (void)
{
  char *path = test_tmp_path ("rebuild");
  struct cache_dir *d = cache_dir_open (path, 0);
  struct cache_image *a, *b;
  struct cache_dedup *dd;
  struct cache_dedup_stats st;
  bool right;

  a = cache_image_open (d, "a", "a", 4 * CHUNK, CHUNK, NULL, NULL);
  b = cache_image_open (d, "b", "b", 4 * CHUNK, CHUNK, NULL, NULL);
  CHECK (a && b);
  dd = cache_dedup_open (b);
  CHECK (dd != NULL);
  put (a, 0, 50, CHUNK);
  CHECK (copy (dd, 1, 50, CHUNK, &right) == 0);
  cache_dedup_stats (dd, &st);
  CHECK (st.scans == 1);
  sleep (1);
  usleep (100000);
  CHECK (copy (dd, 1, 50, CHUNK, &right) == 1 && right);
  cache_dedup_stats (dd, &st);
  CHECK (st.scans == 2 && st.entries == 1);
  EXPECT_ERRORS (0);
  cache_dedup_close (dd);
  cache_image_close (a);
  cache_image_close (b);
  cache_dir_close (d);
  free (path);
}

/* The scan's cost: nr_images images of nr_chunks present 1 MiB chunks
 * each (maps only; the data files stay sparse), all distinct.
 */
static void
test_scan_cost (unsigned nr_images, uint64_t nr_chunks)
{
  char *path = test_tmp_path ("scan");
  struct cache_dir *d = cache_dir_open (path, 0);
  struct cache_image *ci = NULL, *first = NULL;
  struct cache_dedup *dd;
  struct cache_dedup_stats st;
  struct timespec t0;
  uint64_t ms, i;
  unsigned k;

  for (k = 0; k < nr_images; k++) {
    char id[32];

    snprintf (id, sizeof id, "image-%u", k);
    ci = cache_image_open (d, id, id, nr_chunks << 20, 1 << 20, NULL, NULL);
    if (!CHECK (ci != NULL))
      break;
    for (i = 0; i < nr_chunks; i++) {
      unsigned char sha[32];
      uint64_t n = k * nr_chunks + i;

      SHA256 ((const unsigned char *) &n, sizeof n, sha);
      for (int j = 0; j < 32; j++)
        atomic_store (&ci->entries[i].sha256[j], sha[j]);
      atomic_store (&ci->entries[i].state, STATE_PRESENT);
    }
    if (first == NULL)
      first = ci;
    else
      cache_image_close (ci);
  }

  clock_gettime (CLOCK_MONOTONIC, &t0);
  dd = first ? cache_dedup_open (first) : NULL;
  ms = ms_since (&t0);
  if (CHECK (dd != NULL)) {
    cache_dedup_stats (dd, &st);
    printf ("scan of %u images x %" PRIu64 " chunks: %" PRIu64
            " chunks indexed in %" PRIu64 " ms\n",
            nr_images, nr_chunks, st.entries, ms);
    CHECK (st.entries == nr_images * nr_chunks);
    CHECK (st.images == nr_images);
    /* Loose: a few hundred ns per chunk is expected. */
    CHECK (ms < 10000);
  }
  cache_dedup_close (dd);
  cache_image_close (first);
  cache_dir_close (d);
  test_remove_tree (path);
  free (path);
}

/* Usage: test-cache-dedup [NR_IMAGES CHUNKS_PER_IMAGE] for another
 * size of the scan measurement.
 */
int
main (int argc, char *argv[])
{
  unsigned nr_images = 100;
  uint64_t nr_chunks = 10000;

  if (argc == 3) {
    nr_images = strtoul (argv[1], NULL, 10);
    nr_chunks = strtoull (argv[2], NULL, 10);
  }
  setvbuf (stdout, NULL, _IOLBF, 0);
  test_capture_errors (true);
  test_make_tmpdir ("accel-test-cache-dedup");

  test_copy ();
  test_rebuild ();
  test_scan_cost (nr_images, nr_chunks);

  return test_summary ("cache-dedup");
}
