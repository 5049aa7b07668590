/* accel: unit test of common/manifest-*.c.
 *
 * The writer and reader are tested against each other (round trips of
 * several geometries, including a short last chunk, zero chunks, hot
 * lists and concurrent lookups) and the writer's output must be
 * byte-identical for identical input.  Then the reader is fed broken
 * manifests: damaged files, and good manifests altered with plain SQL
 * through sqlite3 directly, one rule broken at a time.  Each must be
 * refused with a message that names the file and contains the expected
 * words, and none may crash (run under valgrind to be sure).
 *
 * Files go to a private directory under $TMPDIR (or /tmp), removed at
 * the end.  Output: a line per failed check and a final
 * "manifest: N checks, N failed".
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cleanup.h"
#include "manifest.h"
#include "report.h"
#include "test.h"

#define KiB (UINT64_C (1024))
#define MiB (KiB * 1024)

/* Fake chunk hashes: zero chunks share one hash (as real zero chunks
 * of the same length do), the others are distinct.
 */
static bool
test_zero (uint64_t idx)
{
  return idx % 5 == 2;
}

static void
test_sha256 (uint64_t idx, unsigned char out[32])
{
  size_t i;

  if (test_zero (idx)) {
    memset (out, 0xaa, 32);
    return;
  }
  for (i = 0; i < 32; ++i)
    out[i] = (idx >> (8 * (i % 8))) ^ (i * 37);
}

static const unsigned char image_sha256[32] = "0123456789abcdef0123456789abcde";

/* Write a manifest of the fake content with nr_hot hot chunks and a
 * small file map: /etc/hostname (1 byte, one extent), /usr/bin/tool
 * (10000 bytes, two extents and holes), /empty.  0 or -1.
 */
static int
write_test_manifest (const char *path, uint64_t image_size, uint32_t chunk_size,
                     const char *fs_type, uint64_t nr_hot)
{
  struct manifest_writer *w;
  uint64_t nr = (image_size + chunk_size - 1) / chunk_size, i;
  uint64_t tail = image_size < 100 ? image_size : 100;
  unsigned char sha[32];
  int64_t id;

  w = manifest_writer_create (path, image_size, chunk_size, fs_type);
  if (w == NULL)
    return -1;
  for (i = 0; i < nr; ++i) {
    test_sha256 (i, sha);
    if (manifest_writer_add_chunk (w, i, sha, test_zero (i)) == -1)
      goto err;
  }
  for (i = 0; i < nr_hot; ++i)
    if (manifest_writer_add_hot (w, i, (i * 7) % nr) == -1)
      goto err;
  if (manifest_writer_add_file (w, "/etc/hostname", 1, 0100644, &id) == -1 ||
      manifest_writer_add_extent (w, id, 0, 0, 1) == -1 ||
      manifest_writer_add_file (w, "/usr/bin/tool", 10000, 0100755, &id) ==
          -1 ||
      manifest_writer_add_extent (w, id, 0, image_size - tail, tail) == -1 ||
      manifest_writer_add_extent (w, id, 5000, 0, 1) == -1 ||
      manifest_writer_add_file (w, "/empty", 0, 0100600, &id) == -1)
    goto err;
  return manifest_writer_finish (w, image_sha256);

err:
  manifest_writer_abort (w);
  return -1;
}

/* Read a whole (small) file; *len set.  Exits on error. */
static unsigned char *
read_file (const char *path, size_t *len)
{
  unsigned char *buf;
  struct stat st;
  FILE *fp = fopen (path, "rb");

  if (fp == NULL || fstat (fileno (fp), &st) == -1) {
    perror (path);
    exit (EXIT_FAILURE);
  }
  buf = malloc (st.st_size + 1);
  if (buf == NULL || fread (buf, 1, st.st_size, fp) != (size_t) st.st_size) {
    perror (path);
    exit (EXIT_FAILURE);
  }
  fclose (fp);
  *len = st.st_size;
  return buf;
}

/* For the determinism checks: same length, same bytes. */
static bool
files_equal (const char *a, const char *b)
{
  size_t alen, blen;
  CLEANUP_FREE unsigned char *abuf = read_file (a, &alen);
  CLEANUP_FREE unsigned char *bbuf = read_file (b, &blen);

  return alen == blen && memcmp (abuf, bbuf, alen) == 0;
}

/* For checking that no temporary file is left behind. */
static bool
exists (const char *path)
{
  return access (path, F_OK) == 0;
}

/* Open a manifest written by write_test_manifest and check every answer
 * against the fake content.
 */
static void
check_round_trip (uint64_t image_size, uint32_t chunk_size, const char *fs_type,
                  uint64_t nr_hot)
{
  CLEANUP_FREE char *path = test_tmp_path ("round-trip.db");
  CLEANUP_FREE char *tmp = test_tmp_path ("round-trip.db.tmp");
  CLEANUP_FREE uint64_t *hot = NULL;
  uint64_t nr = (image_size + chunk_size - 1) / chunk_size, i, found;
  unsigned char sha[32], want[32];
  struct manifest *m;
  size_t nr_hot_read;
  bool ok;

  test_clear_errors ();
  CHECK (write_test_manifest (path, image_size, chunk_size, fs_type, nr_hot) ==
         0);
  CHECK (!exists (tmp));
  m = manifest_open (path);
  CHECK (m != NULL);
  if (m == NULL) {
    fprintf (stderr, "round trip %" PRIu64 "/%" PRIu32 ": %s\n", image_size,
             chunk_size, test_last_error);
    return;
  }
  CHECK (manifest_image_size (m) == image_size);
  CHECK (manifest_chunk_size (m) == chunk_size);
  CHECK (manifest_nr_chunks (m) == nr);
  CHECK (memcmp (manifest_image_sha256 (m), image_sha256, 32) == 0);
  CHECK (strcmp (manifest_fs_type (m), fs_type) == 0);

  ok = true;
  for (i = 0; i < nr; ++i) {
    test_sha256 (i, want);
    if (manifest_chunk_sha256 (m, i, sha) != 0 || memcmp (sha, want, 32) != 0 ||
        manifest_chunk_is_zero (m, i) != test_zero (i))
      ok = false;
  }
  CHECK (ok);
  CHECK (!manifest_chunk_is_zero (m, nr));
  CHECK (!manifest_chunk_is_zero (m, UINT64_MAX));
  test_clear_errors ();
  CHECK (manifest_chunk_sha256 (m, nr, sha) == -1);
  CHECK (test_error_says (path, "out of range"));

  /* Each distinct hash is found at its first chunk. */
  test_sha256 (nr - 1, want);
  CHECK (manifest_find_chunk (m, want, &found) == 0);
  CHECK (found == (test_zero (nr - 1) ? 2 : nr - 1));
  memset (want, 0x55, 32);
  CHECK (manifest_find_chunk (m, want, &found) == 1);

  CHECK (manifest_hot_chunks (m, &hot, &nr_hot_read) == 0);
  CHECK (nr_hot_read == nr_hot);
  ok = true;
  for (i = 0; i < nr_hot_read; ++i)
    if (hot[i] != (i * 7) % nr)
      ok = false;
  CHECK (ok);
  CHECK (nr_hot > 0 || hot == NULL);

  /* The file map of write_test_manifest. */
  {
    struct manifest_extent *ext = NULL;
    struct manifest_file f;
    uint64_t tail = image_size < 100 ? image_size : 100, nr_zero = 0;
    const char *tool = "/usr/bin/tool";
    size_t n;

    for (i = 0; i < nr; ++i)
      nr_zero += test_zero (i);
    CHECK (manifest_nr_zero_chunks (m) == nr_zero);
    CHECK (manifest_nr_files (m) == 3);
    CHECK (manifest_file_extents (m, tool, &f, &ext, &n) == 0);
    CHECK (f.path == tool && f.size == 10000 && f.mode == 0100755);
    CHECK (n == 2);
    if (n == 2) {
      CHECK (ext[0].file_offset == 0 && ext[0].length == tail &&
             ext[0].image_offset == image_size - tail);
      CHECK (ext[1].file_offset == 5000 && ext[1].image_offset == 0 &&
             ext[1].length == 1);
    }
    free (ext);
    ext = NULL;
    CHECK (manifest_file_extents (m, "/empty", &f, &ext, &n) == 0);
    CHECK (f.size == 0 && f.mode == 0100600 && n == 0 && ext == NULL);
    CHECK (manifest_file_extents (m, "/usr/bin", &f, &ext, &n) == 1);
    CHECK (manifest_file_extents (m, "", &f, &ext, &n) == 1);
  }
  manifest_close (m);
}

/* The same calls must give the same bytes, also when replacing a file. */
static void
check_determinism (void)
{
  CLEANUP_FREE char *a = test_tmp_path ("a.db");
  CLEANUP_FREE char *b = test_tmp_path ("b.db");

  CHECK (write_test_manifest (a, 100 * 4096 + 17, 4096, "ext4", 20) == 0);
  CHECK (write_test_manifest (b, 100 * 4096 + 17, 4096, "ext4", 20) == 0);
  CHECK (files_equal (a, b));
  CHECK (write_test_manifest (a, 100 * 4096 + 17, 4096, "ext4", 20) == 0);
  CHECK (files_equal (a, b));
  CHECK (write_test_manifest (b, 100 * 4096 + 17, 4096, "raw", 20) == 0);
  CHECK (!files_equal (a, b));
  unlink (a);
  unlink (b);
}

struct lookup_thread {
  struct manifest *m;
  unsigned seed;
  bool ok;
};

/* Many lookups at once must each get the right answer. */
static void *
lookup_thread (void *arg)
{
  struct lookup_thread *t = arg;
  uint64_t nr = manifest_nr_chunks (t->m);
  unsigned char sha[32], want[32];
  unsigned i;

  t->ok = true;
  for (i = 0; i < 2000; ++i) {
    uint64_t idx = rand_r (&t->seed) % nr, found;

    test_sha256 (idx, want);
    if (manifest_chunk_sha256 (t->m, idx, sha) != 0 ||
        memcmp (sha, want, 32) != 0 ||
        manifest_find_chunk (t->m, want, &found) != 0 ||
        found != (test_zero (idx) ? 2 : idx))
      t->ok = false;
  }
  return NULL;
}

/* The reader promises thread safety after open: 4 threads at once. */
static void
check_threads (void)
{
  CLEANUP_FREE char *path = test_tmp_path ("threads.db");
  struct lookup_thread t[4];
  pthread_t tid[4];
  struct manifest *m;
  size_t i;

  CHECK (write_test_manifest (path, 1000 * 4096, 4096, "raw", 0) == 0);
  m = manifest_open (path);
  CHECK (m != NULL);
  if (m == NULL)
    return;
  for (i = 0; i < 4; ++i) {
    t[i].m = m;
    t[i].seed = i + 1;
    CHECK (pthread_create (&tid[i], NULL, lookup_thread, &t[i]) == 0);
  }
  for (i = 0; i < 4; ++i) {
    pthread_join (tid[i], NULL);
    CHECK (t[i].ok);
  }
  manifest_close (m);
  unlink (path);
}

/* What the foreach callback of check_file_map saw. */
struct walk {
  struct manifest *m;
  unsigned calls, stop_after;
  char paths[8][64];
  bool lookups_ok;
};

/* Record each path and look it up again from inside the callback (the
 * manifest's lock is not held here).
 */
static int
walk_file (void *opaque, const struct manifest_file *f)
{
  struct walk *wk = opaque;
  struct manifest_extent *ext = NULL;
  struct manifest_file g;
  size_t n;

  if (wk->calls < 8)
    snprintf (wk->paths[wk->calls], sizeof wk->paths[0], "%s", f->path);
  wk->calls++;
  if (manifest_file_extents (wk->m, f->path, &g, &ext, &n) != 0 ||
      g.id != f->id || g.size != f->size || g.mode != f->mode)
    wk->lookups_ok = false;
  free (ext);
  if (wk->stop_after && wk->calls == wk->stop_after)
    return -1;
  return 0;
}

/* The file map's reader: files in path order (bytewise, not insertion
 * order), lookups from inside the walk, a walk stopped by its callback,
 * extents merged by nobody (the reader returns what was written).
 */
static void
check_file_map (void)
{
  CLEANUP_FREE char *path = test_tmp_path ("filemap.db");
  static const char *const names[] = {
    "/zeta", "/a/b", "/ä", "/a", "/B", "/a/b/c", "/\xe5\x90\x8d", "/a.txt",
  };
  static const char *const sorted[] = {
    "/B",     "/a",    "/a.txt",    "/a/b",
    "/a/b/c", "/zeta", "/\xc3\xa4", "/\xe5\x90\x8d",
  };
  struct manifest_writer *w;
  struct manifest_extent *ext = NULL;
  struct manifest_file f;
  struct walk wk = { .lookups_ok = true };
  unsigned char sha[32] = { 0 };
  struct manifest *m;
  size_t i, n;
  int64_t id;
  bool ok = true;

  w = manifest_writer_create (path, 64 * 4096, 4096, "ext4");
  CHECK (w != NULL);
  if (w == NULL)
    return;
  for (i = 0; i < 64; ++i)
    CHECK (manifest_writer_add_chunk (w, i, sha, true) == 0);
  for (i = 0; i < 8; ++i) {
    CHECK (manifest_writer_add_file (w, names[i], 4096 * (i + 1), 0100644,
                                     &id) == 0);
    /* i + 1 one-block extents, every other block (so none merge). */
    for (n = 0; n <= i; n += 2)
      CHECK (manifest_writer_add_extent (w, id, n * 4096, (i * 8 + n) * 4096,
                                         4096) == 0);
  }
  CHECK (manifest_writer_finish (w, image_sha256) == 0);

  m = manifest_open (path);
  CHECK (m != NULL);
  if (m == NULL)
    return;
  CHECK (manifest_nr_files (m) == 8);
  CHECK (manifest_nr_zero_chunks (m) == 64);
  wk.m = m;
  CHECK (manifest_foreach_file (m, walk_file, &wk) == 0);
  CHECK (wk.calls == 8);
  for (i = 0; i < 8; ++i)
    if (strcmp (wk.paths[i], sorted[i]) != 0)
      ok = false;
  CHECK (ok);
  CHECK (wk.lookups_ok);

  /* A callback's -1 stops the walk and is passed on. */
  wk.calls = 0;
  wk.stop_after = 3;
  CHECK (manifest_foreach_file (m, walk_file, &wk) == -1);
  CHECK (wk.calls == 3);

  CHECK (manifest_file_extents (m, "/a/b/c", &f, &ext, &n) == 0);
  CHECK (f.size == 6 * 4096 && n == 3);
  ok = n == 3;
  for (i = 0; i < n && ok; ++i)
    ok = ext[i].file_offset == 2 * i * 4096 &&
        ext[i].image_offset == (5 * 8 + 2 * i) * 4096 && ext[i].length == 4096;
  CHECK (ok);
  free (ext);
  manifest_close (m);
  unlink (path);
}

/* The writer refuses what the reader would refuse, and never leaves a
 * temporary file or a half manifest behind.
 */
static void
check_writer_errors (void)
{
  CLEANUP_FREE char *path = test_tmp_path ("writer.db");
  CLEANUP_FREE char *tmp = test_tmp_path ("writer.db.tmp");
  struct manifest_writer *w;
  unsigned char sha[32] = { 0 };
  int64_t file_id;

  test_clear_errors ();
  CHECK (manifest_writer_create (path, 8192, 3000, "raw") == NULL);
  CHECK (test_error_says (path, "chunk_size 3000 is not a power of two"));
  CHECK (manifest_writer_create (path, 8192, 2048, "raw") == NULL);
  CHECK (test_error_says (path, "chunk_size 2048"));
  CHECK (manifest_writer_create (path, 8192, 128 * MiB, "raw") == NULL);
  CHECK (test_error_says (path, "chunk_size 134217728"));
  CHECK (manifest_writer_create (path, 0, 4096, "raw") == NULL);
  CHECK (test_error_says (path, "image_size 0 is not between"));
  CHECK (manifest_writer_create (path, MANIFEST_MAX_IMAGE_SIZE + 1, 64 * MiB,
                                 "raw") == NULL);
  CHECK (test_error_says (path, "image_size 1125899906842625"));
  CHECK (manifest_writer_create (path, UINT64_MAX, 64 * MiB, "raw") == NULL);
  CHECK (test_error_says (path, "image_size 18446744073709551615"));
  CHECK (manifest_writer_create (path, MANIFEST_MAX_IMAGE_SIZE, 32 * MiB,
                                 "raw") == NULL);
  CHECK (test_error_says (path, "use a larger chunk size"));
  CHECK (manifest_writer_create (path, 8192, 4096, "xfs") == NULL);
  CHECK (test_error_says (path, "fs_type \"xfs\""));
  CHECK (manifest_writer_create ("", 8192, 4096, "raw") == NULL);
  CHECK (test_error_says ("path length 0", NULL));
  CHECK (!exists (tmp));

  /* The largest image is allowed (with 64 MiB chunks). */
  w = manifest_writer_create (path, MANIFEST_MAX_IMAGE_SIZE, 64 * MiB, "raw");
  CHECK (w != NULL);
  CHECK (exists (tmp));
  manifest_writer_abort (w);
  CHECK (!exists (tmp));
  CHECK (!exists (path));

  /* A failed write keeps the previous manifest. */
  CHECK (write_test_manifest (path, 3 * 4096, 4096, "raw", 0) == 0);
  w = manifest_writer_create (path, 3 * 4096, 4096, "raw");
  CHECK (w != NULL);
  if (w == NULL)
    return;
  test_clear_errors ();
  CHECK (manifest_writer_add_chunk (w, 1, sha, false) == -1);
  CHECK (test_error_says (path, "out of order"));
  CHECK (manifest_writer_add_chunk (w, 0, sha, false) == 0);
  CHECK (manifest_writer_add_chunk (w, 0, sha, false) == -1);
  EXPECT_ERRORS (1);
  CHECK (manifest_writer_add_hot (w, 0, 3) == -1);
  CHECK (test_error_says (path, "chunk 3 out of range"));
  CHECK (manifest_writer_add_hot (w, 0, 2) == 0);
  CHECK (manifest_writer_add_hot (w, 0, 1) == -1);
  CHECK (test_error_says (path, "UNIQUE"));
  CHECK (manifest_writer_add_file (w, "/a", 100, 0100644, &file_id) == 0);
  CHECK (manifest_writer_add_file (w, "/a", 1, 0100644, &file_id) == -1);
  CHECK (test_error_says (path, "writing file /a: UNIQUE"));
  CHECK (manifest_writer_add_file (w, "", 1, 0100644, &file_id) == -1);
  EXPECT_ERRORS (1);
  CHECK (manifest_writer_add_file (w, "a/b", 1, 0100644, &file_id) == -1);
  CHECK (test_error_says (path, "path not absolute"));
  CHECK (manifest_writer_add_file (w, "/dir", 0, 040755, &file_id) == -1);
  CHECK (test_error_says (path, "mode 040755 is not a regular file's"));
  CHECK (manifest_writer_add_file (w, "/big", (uint64_t) INT64_MAX + 1, 0100644,
                                   &file_id) == -1);
  EXPECT_ERRORS (1);
  CHECK (manifest_writer_add_extent (w, 1, 0, 3 * 4096 - 10, 11) == -1);
  CHECK (test_error_says (path, "outside the image"));
  CHECK (manifest_writer_add_extent (w, 1, 0, 0, 0) == -1);
  EXPECT_ERRORS (1);
  CHECK (manifest_writer_add_extent (w, 1, 0, UINT64_MAX, 2) == -1);
  EXPECT_ERRORS (1);
  CHECK (manifest_writer_add_extent (w, 1, 0, 3 * 4096 - 10, 10) == 0);
  /* The file map's rules: in order, inside the file, after the file. */
  CHECK (manifest_writer_add_extent (w, 1, 5, 0, 10) == -1);
  CHECK (test_error_says (path, "out of order or overlapping"));
  CHECK (manifest_writer_add_extent (w, 1, 10, 0, 91) == -1);
  CHECK (test_error_says (path, "beyond the file's size 100"));
  CHECK (manifest_writer_add_extent (w, 1, UINT64_MAX - 5, 0, 10) == -1);
  CHECK (test_error_says (path, "beyond the file's size"));
  CHECK (manifest_writer_add_extent (w, 1, 10, 0, 90) == 0);
  CHECK (manifest_writer_add_extent (w, 2, 0, 0, 1) == -1);
  CHECK (test_error_says (path, "added after another file (1)"));
  CHECK (manifest_writer_add_file (w, "/b", 100, 0100644, &file_id) == 0);
  CHECK (file_id == 2);
  CHECK (manifest_writer_add_extent (w, 1, 0, 0, 1) == -1);
  CHECK (test_error_says (path, "added after another file (2)"));
  CHECK (manifest_writer_finish (w, image_sha256) == -1);
  CHECK (test_error_says (path, "only 1 of 3 chunks"));
  CHECK (!exists (tmp));
  {
    struct manifest *m = manifest_open (path);

    CHECK (m != NULL);
    manifest_close (m);
  }

  /* A missing directory fails at create. */
  test_clear_errors ();
  CHECK (manifest_writer_create ("/nonexistent-dir/x.db", 4096, 4096, "raw") ==
         NULL);
  CHECK (test_error_says ("/nonexistent-dir/x.db", NULL));
  manifest_writer_abort (NULL);
  unlink (path);
}

/* A broken manifest made by running sql on a copy of a good one. */
struct bad_sql {
  const char *sql;
  const char *error; /* expected in the message */
};

static const struct bad_sql bad_sql[] = {
  { "UPDATE meta SET value = 2 WHERE key = 'format_version'",
    "manifest format 2 is newer than this accel supports (1)" },
  { "UPDATE meta SET value = 0 WHERE key = 'format_version'",
    "format_version 0 is not valid" },
  { "UPDATE meta SET value = '1' WHERE key = 'format_version'",
    "format_version is not an integer" },
  { "DELETE FROM meta WHERE key = 'format_version'",
    "format_version is missing" },
  { "DROP TABLE meta", "no table meta" },
  { "DROP TABLE chunks", "no table chunks" },
  { "DROP TABLE files", "no table files" },
  { "DROP TABLE extents", "no table extents" },
  { "DROP TABLE hot", "no table hot" },
  { "ALTER TABLE chunks DROP COLUMN zero", "table chunks lacks columns" },
  { "ALTER TABLE chunks RENAME TO c2;"
    "CREATE VIEW chunks AS SELECT * FROM c2",
    "no table chunks" },
  { "DROP TABLE hot;"
    "CREATE VIRTUAL TABLE hot USING fts4 (rank, chunk_idx)",
    "hot is not an ordinary table" },

  /* Chunk rows. */
  { "DELETE FROM chunks WHERE idx = 3",
    "chunks: 10 rows, but image_size and chunk_size need 11" },
  { "INSERT INTO chunks VALUES (11, zeroblob (32), 0)", "chunks: 12 rows" },
  { "UPDATE chunks SET idx = 11 WHERE idx = 10",
    "idx runs from 0 to 11, not 0 to 10" },
  { "UPDATE chunks SET idx = -1 WHERE idx = 0", "idx runs from -1 to 10" },
  { "UPDATE chunks SET idx = 1 << 62 WHERE idx = 10", "idx runs from 0 to" },
  { "CREATE TABLE c2 AS SELECT * FROM chunks; DROP TABLE chunks;"
    "CREATE TABLE chunks (idx INTEGER, sha256 BLOB NOT NULL,"
    " zero INTEGER NOT NULL);"
    "INSERT INTO chunks SELECT * FROM c2 WHERE idx <> 5;"
    "INSERT INTO chunks VALUES (4, zeroblob (32), 0);"
    "CREATE INDEX chunks_sha256 ON chunks (sha256); DROP TABLE c2",
    "chunks.idx is not the table's primary key" },
  { "UPDATE chunks SET sha256 = zeroblob (31) WHERE idx = 4",
    "chunk 4: sha256 is not a 32-byte blob" },
  { "UPDATE chunks SET sha256 = zeroblob (33) WHERE idx = 4",
    "chunk 4: sha256 is not a 32-byte blob" },
  { "UPDATE chunks SET sha256 = printf ('%32s', 'x') WHERE idx = 5",
    "chunk 5: sha256 is not a 32-byte blob" },
  { "UPDATE chunks SET zero = 2 WHERE idx = 6", "chunk 6: zero is not 0 or 1" },
  { "UPDATE chunks SET zero = 'x' WHERE idx = 7",
    "chunk 7: zero is not 0 or 1" },
  { "UPDATE chunks SET zero = -1 WHERE idx = 8",
    "chunk 8: zero is not 0 or 1" },
  { "DROP INDEX chunks_sha256", "chunks: no index on sha256" },

  /* Sizes. */
  { "UPDATE meta SET value = 3000 WHERE key = 'chunk_size'",
    "chunk_size 3000 is not a power of two from 4K to 64M" },
  { "UPDATE meta SET value = 2048 WHERE key = 'chunk_size'",
    "chunk_size 2048 is not a power of two" },
  { "UPDATE meta SET value = 1 << 27 WHERE key = 'chunk_size'",
    "chunk_size 134217728 is not a power of two" },
  { "UPDATE meta SET value = 8192 WHERE key = 'chunk_size'",
    "chunks: 11 rows, but image_size and chunk_size need 6" },
  { "UPDATE meta SET value = 0 WHERE key = 'image_size'",
    "image_size 0 is not between 1 and 1125899906842624" },
  { "UPDATE meta SET value = -4096 WHERE key = 'image_size'",
    "image_size is negative" },
  { "UPDATE meta SET value = (1 << 50) + 1 WHERE key = 'image_size'",
    "image_size 1125899906842625 is not between" },
  { "UPDATE meta SET value = 9223372036854775807 WHERE key = 'image_size'",
    "image_size 9223372036854775807 is not between" },
  { "UPDATE meta SET value = 1 << 50 WHERE key = 'image_size'",
    "use a larger chunk size" },
  { "UPDATE meta SET value = 1e300 WHERE key = 'image_size'",
    "image_size is not an integer" },
  { "UPDATE meta SET value = '45056' WHERE key = 'image_size'",
    "image_size is not an integer" },
  { "UPDATE meta SET value = 5 * 4096 WHERE key = 'image_size'",
    "chunks: 11 rows, but image_size and chunk_size need 5" },

  /* Other meta values. */
  { "DELETE FROM meta WHERE key = 'fs_type'", "fs_type is missing" },
  { "UPDATE meta SET value = 'xfs' WHERE key = 'fs_type'",
    "fs_type \"xfs\" is not ext4, squashfs, erofs or raw" },
  { "UPDATE meta SET value = 'ext4' || char (0) WHERE key = 'fs_type'",
    "fs_type is longer than" },
  { "UPDATE meta SET value = printf ('%.100c', 'x') WHERE key = 'fs_type'",
    "fs_type is longer than 15 bytes" },
  { "UPDATE meta SET value = 'abc' WHERE key = 'image_sha256'",
    "image_sha256 is not 64 hex digits" },
  { "UPDATE meta SET value = printf ('%.64c', 'g') WHERE key = 'image_sha256'",
    "image_sha256 is not 64 hex digits" },
  /* Only the very last digit (a low half) is bad. */
  { "UPDATE meta SET value = printf ('%.63cg', '0') WHERE key = 'image_sha256'",
    "image_sha256 is not 64 hex digits" },
  { "UPDATE meta SET value = printf ('%.65c', 'a') WHERE key = 'image_sha256'",
    "image_sha256 is longer than 64 bytes" },
  { "UPDATE meta SET value = zeroblob (32) WHERE key = 'image_sha256'",
    "image_sha256 is not text" },
  { "DELETE FROM meta WHERE key = 'created_by'", "created_by is missing" },
  { "UPDATE meta SET value = printf ('%.300c', 'x') WHERE key = 'created_by'",
    "created_by is longer than 256 bytes" },
  { "UPDATE meta SET value = printf ('%.100000c', 'x')"
    " WHERE key = 'created_by'",
    "string or blob too big" },
  { "CREATE TABLE m2 AS SELECT * FROM meta; DROP TABLE meta;"
    "CREATE TABLE meta (key TEXT, value NOT NULL);"
    "INSERT INTO meta SELECT * FROM m2; DROP TABLE m2;"
    "INSERT INTO meta VALUES ('chunk_size', 8192)",
    "chunk_size appears more than once" },

  /* Hot list. */
  { "INSERT INTO hot VALUES (100, 11)",
    "hot: entries whose chunk_idx is not an integer between 0 and 10: 1" },
  { "INSERT INTO hot VALUES (100, -1)", "hot: entries whose chunk_idx" },
  { "INSERT INTO hot VALUES (100, 'x')", "hot: entries whose chunk_idx" },
  { "INSERT INTO hot SELECT idx + 100, idx FROM chunks",
    "hot: 14 entries, more than the 11 chunks" },

  /* File map: /etc/hostname is file 1 (1 byte, extent 0+1 at 0),
   * /usr/bin/tool file 2 (10000 bytes, extents 0+100 and 5000+1),
   * /empty file 3; the image has 41060 bytes.
   */
  { "UPDATE files SET path = 'etc/hostname' WHERE id = 1",
    "files: file 1: path is not text of 1 to 4096 bytes starting with '/'" },
  { "UPDATE files SET path = '' WHERE id = 1", "files: file 1: path" },
  { "UPDATE files SET path = '/a' || char (0) || 'b' WHERE id = 2",
    "files: file 2: path" },
  { "UPDATE files SET path = CAST ('/ab' AS BLOB) WHERE id = 2",
    "files: file 2: path" },
  { "UPDATE files SET path = printf ('/%.5000c', 'x') WHERE id = 3",
    "files: file 3: path" },
  { "UPDATE files SET size = -1 WHERE id = 3",
    "files: file 3: size is not a non-negative integer" },
  { "UPDATE files SET size = 1.5 WHERE id = 3", "files: file 3: size" },
  { "UPDATE files SET size = 'ten' WHERE id = 3", "files: file 3: size" },
  { "UPDATE files SET mode = 4294967296 WHERE id = 1",
    "files: file 1: mode is not an integer between 0 and 2^32-1" },
  { "UPDATE files SET mode = -1 WHERE id = 1", "files: file 1: mode" },
  { "UPDATE files SET mode = 'rw' WHERE id = 1", "files: file 1: mode" },
  { "UPDATE files SET mode = 16877 WHERE id = 1", /* 040755, a directory */
    "files: file 1: mode is not an integer between 0 and 2^32-1 with the "
    "type bits of a regular file" },
  { "UPDATE files SET mode = 420 WHERE id = 1", "files: file 1: mode" },
  { "CREATE TABLE f2 AS SELECT * FROM files; DROP TABLE files;"
    "CREATE TABLE files (id INTEGER PRIMARY KEY, path TEXT NOT NULL,"
    " size INTEGER NOT NULL, mode INTEGER NOT NULL);"
    "INSERT INTO files SELECT * FROM f2; DROP TABLE f2",
    "files: no unique index on path" },
  { "CREATE TABLE f2 AS SELECT * FROM files; DROP TABLE files;"
    "CREATE TABLE files (id INTEGER PRIMARY KEY, path TEXT NOT NULL,"
    " size INTEGER NOT NULL, mode INTEGER NOT NULL, UNIQUE (path, size));"
    "INSERT INTO files SELECT * FROM f2; DROP TABLE f2",
    "files: no unique index on path" },
  { "DROP INDEX extents_file", "extents: no index on (file_id, file_offset)" },
  { "INSERT INTO extents VALUES (9, 0, 0, 1)",
    "extents: file 9 does not exist" },
  { "UPDATE extents SET length = '1x' WHERE file_id = 1",
    "extents: some values are not integers" },
  { "UPDATE extents SET image_offset = 2.5 WHERE file_id = 1",
    "extents: some values are not integers" },
  { "UPDATE extents SET length = 0 WHERE file_id = 1",
    "extents: file 1: an extent is empty or not inside the image (41060 "
    "bytes)" },
  { "UPDATE extents SET length = -1 WHERE file_id = 1",
    "extents: file 1: an extent is empty" },
  { "UPDATE extents SET image_offset = 41060 WHERE file_id = 1",
    "extents: file 1: an extent is empty or not inside the image" },
  { "UPDATE extents SET image_offset = -1 WHERE file_id = 1",
    "extents: file 1: an extent is empty or not inside the image" },
  { "UPDATE extents SET image_offset = 41000 WHERE file_offset = 0"
    " AND file_id = 2",
    "extents: file 2: an extent is empty or not inside the image" },
  { "UPDATE extents SET length = 9223372036854775807 WHERE file_id = 2"
    " AND file_offset = 5000",
    "extents: file 2: an extent is empty or not inside the image" },
  { "UPDATE files SET size = 0 WHERE id = 1",
    "extents: file 1: an extent ends beyond the file's size" },
  { "UPDATE extents SET file_offset = 10000 WHERE file_offset = 5000",
    "extents: file 2: an extent ends beyond the file's size" },
  { "UPDATE extents SET file_offset = -1 WHERE file_id = 1",
    "extents: file 1: an extent ends beyond" },
  { "UPDATE extents SET file_offset = 9223372036854775807 WHERE file_id = 1",
    "extents: file 1: an extent ends beyond" },
  { "INSERT INTO extents VALUES (2, 99, 0, 1)",
    "extents: file 2: extents overlap" },
  { "INSERT INTO extents VALUES (2, 4000, 0, 1001)",
    "extents: file 2: extents overlap" },
  { "INSERT INTO extents VALUES (2, 0, 7, 1)",
    "extents: file 2: extents overlap" },

  /* Some other program's database. */
  { "PRAGMA application_id = 42", "not an accel manifest" },
};

/* Apply sql to a copy of good, then the reader must refuse it. */
static void
check_bad_sql (const char *good, const struct bad_sql *t)
{
  CLEANUP_FREE char *path = test_tmp_path ("bad.db");
  CLEANUP_FREE unsigned char *buf = NULL;
  struct manifest *m;
  char *errmsg = NULL;
  sqlite3 *db;
  size_t len;

  buf = read_file (good, &len);
  test_write_file (path, buf, len);
  if (sqlite3_open (path, &db) != SQLITE_OK ||
      sqlite3_exec (db, t->sql, NULL, NULL, &errmsg) != SQLITE_OK) {
    test_check (false, __FILE__, __LINE__, "%s: cannot apply: %s", t->sql,
                errmsg ? errmsg : sqlite3_errmsg (db));
    sqlite3_free (errmsg);
    sqlite3_close (db);
    return;
  }
  sqlite3_close (db);

  test_clear_errors ();
  m = manifest_open (path);
  if (test_check (m == NULL && test_error_says (path, t->error), __FILE__,
                  __LINE__, "%s: %s", t->sql, m ? "accepted" : "wrong message"))
    printf ("refused: %s\n  %s\n", t->sql, test_last_error);
  manifest_close (m);
  unlink (path);
}

/* The reader must refuse path with an error naming it and containing
 * want (if not NULL).  The message goes to the log for review.
 */
static void
expect_refused (const char *path, const char *what, const char *want)
{
  struct manifest *m;

  test_clear_errors ();
  m = manifest_open (path);
  CHECK (m == NULL);
  CHECK (test_error_says (path, want));
  printf ("refused: %s\n  %s\n", what, test_last_error);
  manifest_close (m);
}

/* Damaged files: the reader must refuse them (or, for random damage,
 * at least answer without crashing).
 */
static void
check_bad_files (const char *good)
{
  CLEANUP_FREE char *path = test_tmp_path ("bad.db");
  CLEANUP_FREE unsigned char *buf = NULL;
  unsigned char *copy;
  size_t len, i;
  unsigned seed = 1, refused = 0, iter;
  int fd;

  buf = read_file (good, &len);
  copy = malloc (len);
  if (copy == NULL)
    exit (EXIT_FAILURE);

  expect_refused (path, "missing file", "No such file");
  expect_refused (test_tmpdir, "directory", "not a regular file");

  test_write_file (path, "", 0);
  expect_refused (path, "empty file", "too small");
  test_write_file (path, buf, 100);
  expect_refused (path, "100 bytes", "too small");

  /* Not sqlite at all. */
  for (i = 0; i < len; ++i)
    copy[i] = rand_r (&seed);
  test_write_file (path, copy, len);
  expect_refused (path, "random bytes", "not a sqlite3 database");
  memset (copy, 'x', len);
  test_write_file (path, copy, len);
  expect_refused (path, "text", "not a sqlite3 database");

  /* Truncated at various points, including a page boundary. */
  for (i = 512; i < len; i += len / 7) {
    test_write_file (path, buf, i);
    expect_refused (path, "truncated", "corrupt or truncated");
  }
  test_write_file (path, buf, 4096);
  expect_refused (path, "truncated to one page", "corrupt or truncated");

  /* A page of garbage in the middle. */
  memcpy (copy, buf, len);
  for (i = 4096 * 3; i < 4096 * 4 && i < len; ++i)
    copy[i] = rand_r (&seed);
  test_write_file (path, copy, len);
  expect_refused (path, "garbage page", "corrupt or truncated");

  /* Larger than the cap (a sparse file). */
  fd = open (path, O_WRONLY | O_TRUNC);
  CHECK (fd >= 0);
  if (fd >= 0) {
    CHECK (write (fd, buf, 4096) == 4096);
    CHECK (ftruncate (fd, MANIFEST_MAX_FILE_SIZE + 1) == 0);
    close (fd);
    expect_refused (path, "sparse 2 GiB + 1", "larger than the limit");
  }

  /* Random damage: a few bytes changed anywhere (the header excepted,
   * which is checked above).  Whatever opens must answer sanely.
   */
  for (iter = 0; iter < 300; ++iter) {
    struct manifest *m;
    unsigned n = 1 + rand_r (&seed) % 8;

    memcpy (copy, buf, len);
    for (i = 0; i < n; ++i)
      copy[16 + rand_r (&seed) % (len - 16)] = rand_r (&seed);
    test_write_file (path, copy, len);
    test_clear_errors ();
    m = manifest_open (path);
    if (m == NULL) {
      refused++;
      CHECK (test_error_says (path, NULL));
    }
    else {
      uint64_t j, found, *hot = NULL;
      unsigned char sha[32];
      size_t nr_hot;

      for (j = 0; j < manifest_nr_chunks (m); ++j)
        if (manifest_chunk_sha256 (m, j, sha) == 0)
          manifest_find_chunk (m, sha, &found);
      if (manifest_hot_chunks (m, &hot, &nr_hot) == 0)
        for (j = 0; j < nr_hot; ++j)
          CHECK (hot[j] < manifest_nr_chunks (m));
      free (hot);
      {
        struct walk wk = { .m = m, .lookups_ok = true };

        manifest_foreach_file (m, walk_file, &wk);
      }
      manifest_close (m);
    }
  }
  printf ("random damage: %u of 300 refused\n", refused);
  CHECK (refused > 0);

  free (copy);
  unlink (path);
}

/* Round trips and writer checks first, then the broken manifests. */
/* The chunk size rule every program shares, and the parser of
 * --chunk-size built on it.
 */
static void
check_chunk_size_rule (void)
{
  static const struct {
    const char *arg;
    uint64_t n;
    bool valid;
  } t[] = {
    { "0", 0, false },
    { "1", 1, false },
    { "2048", 2048, false },
    { "4095", 4095, false },
    { "4096", 4096, true },
    { "4K", 4096, true },
    { "4097", 4097, false },
    { "12288", 12288, false }, /* 3 * 4096: not a power of two */
    { "64k", 65536, true },
    { "1M", MiB, true },
    { "64M", 64 * MiB, true },
    { "67108864", 64 * MiB, true },
    { "67108865", 64 * MiB + 1, false }, /* max + 1 */
    { "128M", 128 * MiB, false },
    { "4G", UINT64_C (4) << 30, false }, /* not even 32 bits */
  };
  static const char *const bad_syntax[] = {
    "",
    "K",
    "-4096",
    " 4096",
    "4096 ",
    "4Q",
    "4KB",
    "0x1000",
    "18446744073709551616",
    "99999999999999999999K",
  };
  uint32_t out;
  size_t i;

  for (i = 0; i < sizeof t / sizeof t[0]; i++) {
    CHECK_INPUT (manifest_chunk_size_valid (t[i].n) == t[i].valid,
                 "manifest_chunk_size_valid", t[i].arg);
    out = 1;
    CHECK_INPUT (manifest_parse_chunk_size (t[i].arg, &out) ==
                     (t[i].valid ? 0 : -1),
                 "manifest_parse_chunk_size", t[i].arg);
    CHECK_INPUT (out == (t[i].valid ? t[i].n : 1), "output", t[i].arg);
  }
  CHECK (!manifest_chunk_size_valid (UINT64_C (1) << 63));
  CHECK (!manifest_chunk_size_valid (UINT64_MAX));
  for (i = 0; i < sizeof bad_syntax / sizeof bad_syntax[0]; i++)
    CHECK_INPUT (manifest_parse_chunk_size (bad_syntax[i], &out) == -1,
                 "manifest_parse_chunk_size", bad_syntax[i]);
  EXPECT_ERRORS (0);
}

int
main (void)
{
  CLEANUP_FREE char *good = NULL;
  size_t i;

  test_capture_errors (false);
  test_make_tmpdir ("test-manifest");

  check_chunk_size_rule ();
  check_round_trip (1, 4096, "raw", 0);
  check_round_trip (4096, 4096, "raw", 1);
  check_round_trip (10 * 4096 + 1, 4096, "ext4", 11);
  check_round_trip (3 * MiB + 512, MiB, "squashfs", 2);
  check_round_trip (5 * MiB, MiB, "erofs", 5);
  check_round_trip (2 * 64 * MiB, 64 * MiB, "raw", 2);
  check_round_trip (1000 * 65536 - 4096, 65536, "ext4", 500);
  check_round_trip (64 * MiB - 1, 4096, "raw", 100);
  check_determinism ();
  check_threads ();
  check_file_map ();
  check_writer_errors ();

  /* 11 chunks, the last one short; chunks 2 and 7 are zero. */
  good = test_tmp_path ("good.db");
  CHECK (write_test_manifest (good, 10 * 4096 + 100, 4096, "raw", 3) == 0);
  for (i = 0; i < sizeof bad_sql / sizeof bad_sql[0]; ++i)
    check_bad_sql (good, &bad_sql[i]);
  check_bad_files (good);

  return test_summary ("manifest");
}
