/* accel: unit test of common/manifest/manifest-diff.c and
 * manifest-diff-files.c.
 *
 * Pairs of manifests are written with the real writer from a small
 * description (each chunk a content number, 0 for all zeros; a file
 * map), and manifest_diff must give exactly what a node holding OLD
 * fetches by the cache's rule: identical versions cost nothing, one
 * changed chunk costs that chunk, zero chunks are free, a chunk that
 * moved to another index is free, a short last chunk costs its real
 * length, a chunk NEW repeats is counted at each index (and once in the
 * distinct figures), and chunk sizes that differ match nothing.  Then
 * the file list: added, removed, renamed (provably, and not when the
 * bytes cannot be proved), modified and fetched files, with their bytes
 * in chunks to fetch.
 *
 * Output: a line per failed check and "manifest-diff: N checks, N
 * failed".
 */

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "manifest.h"
#include "report.h"
#include "test.h"

#define CS 4096 /* the chunk size of most versions */
#define MAX_CHUNKS 16
#define MAX_FILES 8

/* A file of a version: one extent at image_offset (none if length 0). */
struct tfile {
  const char *path;
  uint64_t size;
  uint32_t mode;
  uint64_t image_offset, length;
};

/* A version of an image: its size, chunk size, chunk contents and files.
 * content[i] == 0 means chunk i is all zeros.
 */
struct version {
  uint64_t image_size;
  uint32_t chunk_size;
  unsigned content[MAX_CHUNKS];
  struct tfile files[MAX_FILES];
};

/* The SHA-256 a chunk of that content and length would have.  A real
 * hash depends on the length too, so a short last chunk never matches
 * a full one of the "same" content.
 */
static void
fake_sha256 (unsigned content, uint32_t len, unsigned char out[32])
{
  size_t i;

  for (i = 0; i < 32; i++)
    out[i] = (content * 131 + len * 7 + i * 29) & 0xff;
  memcpy (out, &content, sizeof content);
  memcpy (out + 8, &len, sizeof len);
}

/* Write v to NAME in the test directory and open it.  Exits on error. */
static struct manifest *
open_version (const char *name, const struct version *v)
{
  CLEANUP_FREE char *path = test_tmp_path (name);
  uint64_t nr = (v->image_size + v->chunk_size - 1) / v->chunk_size, i;
  struct manifest_writer *w;
  struct manifest *m;
  unsigned char sha[32], image_sha[32] = { 0 };
  int64_t id;

  w = manifest_writer_create (path, v->image_size, v->chunk_size, "ext4");
  if (w == NULL)
    goto fail;
  for (i = 0; i < MAX_FILES && v->files[i].path; i++) {
    const struct tfile *f = &v->files[i];

    if (manifest_writer_add_file (w, f->path, f->size, f->mode, &id) == -1 ||
        (f->length &&
         manifest_writer_add_extent (w, id, 0, f->image_offset, f->length) ==
             -1))
      goto fail;
  }
  for (i = 0; i < nr; i++) {
    uint32_t len =
        i + 1 < nr ? v->chunk_size : v->image_size - i * v->chunk_size;

    fake_sha256 (v->content[i], len, sha);
    if (manifest_writer_add_chunk (w, i, sha, v->content[i] == 0) == -1)
      goto fail;
  }
  if (manifest_writer_finish (w, image_sha) == -1)
    goto fail;
  m = manifest_open (path);
  if (m == NULL)
    goto fail;
  return m;

fail:
  fprintf (stderr, "%s: cannot write or open: %s\n", name, test_last_error);
  exit (EXIT_FAILURE);
}

/* The manifest_diff of two versions; both stay open for the caller. */
static void
diff (const struct version *a, const struct version *b, struct manifest **ma,
      struct manifest **mb, struct manifest_diff *d)
{
  *ma = open_version ("old.db", a);
  *mb = open_version ("new.db", b);
  CHECK (manifest_diff (*ma, *mb, d) == 0);
  EXPECT_ERRORS (0);
}

static void
close_both (struct manifest *a, struct manifest *b, struct manifest_diff *d)
{
  manifest_diff_free (d);
  manifest_close (a);
  manifest_close (b);
}

/* Five full chunks, chunk 2 all zeros. */
static const struct version base = {
  .image_size = 5 * CS,
  .chunk_size = CS,
  .content = { 1, 2, 0, 4, 5 },
};

static void
check_identical (void)
{
  struct manifest *a, *b;
  struct manifest_diff d;
  uint64_t i;
  bool none = true;

  diff (&base, &base, &a, &b, &d);
  CHECK (d.nr_chunks == 5);
  CHECK (d.nr_zero_chunks == 1);
  CHECK (d.data_bytes == 4 * CS);
  CHECK (d.fetch_chunks == 0 && d.fetch_bytes == 0);
  CHECK (d.distinct_chunks == 0 && d.distinct_bytes == 0);
  CHECK (!d.chunk_size_mismatch);
  for (i = 0; i < 6; i++)
    none = none && !manifest_diff_needed (&d, i);
  CHECK (none);
  close_both (a, b, &d);
}

static void
check_one_chunk_changed (void)
{
  struct version v = base;
  struct manifest *a, *b;
  struct manifest_diff d;

  v.content[3] = 40;
  diff (&base, &v, &a, &b, &d);
  CHECK (d.fetch_chunks == 1 && d.fetch_bytes == CS);
  CHECK (d.distinct_chunks == 1 && d.distinct_bytes == CS);
  CHECK (manifest_diff_needed (&d, 3));
  CHECK (!manifest_diff_needed (&d, 0) && !manifest_diff_needed (&d, 4));
  close_both (a, b, &d);
}

/* Zero chunks are free, whether OLD has zeros there or not; a chunk
 * that moved to another index is free; OLD's zero chunk is not a donor
 * for anything (the cache never holds one).
 */
static void
check_zero_and_moved (void)
{
  struct version v = base;
  struct manifest *a, *b;
  struct manifest_diff d;

  v.content[0] = 0; /* was 1: now zeros */
  v.content[2] = 5; /* was zeros: now what OLD has at 4 */
  v.content[4] = 1; /* what OLD has at 0 */
  diff (&base, &v, &a, &b, &d);
  CHECK (d.nr_zero_chunks == 1);
  CHECK (d.data_bytes == 4 * CS);
  CHECK (d.fetch_chunks == 0 && d.fetch_bytes == 0);
  close_both (a, b, &d);

  /* Every chunk zero: nothing to fetch, nothing of data. */
  memset (v.content, 0, sizeof v.content);
  diff (&base, &v, &a, &b, &d);
  CHECK (d.nr_zero_chunks == 5 && d.data_bytes == 0);
  CHECK (d.fetch_chunks == 0);
  close_both (a, b, &d);
}

/* The last chunk is short: it costs its real length; a chunk NEW
 * repeats is counted at each index, once in the distinct figures.
 */
static void
check_short_last_chunk (void)
{
  struct version old = base, v = base;
  struct manifest *a, *b;
  struct manifest_diff d;

  old.image_size = v.image_size = 4 * CS + 100;
  diff (&old, &old, &a, &b, &d);
  CHECK (d.data_bytes == 3 * CS + 100);
  CHECK (d.fetch_bytes == 0);
  close_both (a, b, &d);

  v.content[4] = 50;
  diff (&old, &v, &a, &b, &d);
  CHECK (d.fetch_chunks == 1 && d.fetch_bytes == 100);
  close_both (a, b, &d);

  /* The image grows by 1 byte: the old short chunk's content at a new
   * length is a new chunk.
   */
  v = old;
  v.image_size = 4 * CS + 101;
  diff (&old, &v, &a, &b, &d);
  CHECK (d.fetch_chunks == 1 && d.fetch_bytes == 101);
  CHECK (manifest_diff_needed (&d, 4));
  close_both (a, b, &d);

  /* Two new chunks of one content, and a new short one. */
  v = old;
  v.content[0] = v.content[1] = 77;
  v.content[4] = 78;
  diff (&old, &v, &a, &b, &d);
  CHECK (d.fetch_chunks == 3 && d.fetch_bytes == 2 * CS + 100);
  CHECK (d.distinct_chunks == 2 && d.distinct_bytes == CS + 100);
  close_both (a, b, &d);
}

/* Another chunk size: nothing matches, every non-zero chunk counts. */
static void
check_chunk_size_mismatch (void)
{
  struct version v = base;
  struct manifest *a, *b;
  struct manifest_diff d;

  v.chunk_size = 2 * CS;
  v.image_size = 5 * 2 * CS - 10;
  diff (&base, &v, &a, &b, &d);
  CHECK (d.chunk_size_mismatch);
  CHECK (d.nr_chunks == 5 && d.nr_zero_chunks == 1);
  CHECK (d.fetch_chunks == 4 && d.fetch_bytes == 4 * 2 * CS - 10);
  CHECK (d.data_bytes == d.fetch_bytes);
  close_both (a, b, &d);
}

/* The changes manifest_diff_files reports, as "change:path" lines. */
struct seen {
  char text[1024];
  uint64_t fetch_of_e, fetch_of_new;
};

static void
record (void *opaque, const struct manifest_file_change *c)
{
  struct seen *s = opaque;
  size_t len = strlen (s->text);

  snprintf (s->text + len, sizeof s->text - len, "%s:%s%s%s\n", c->change,
            c->path, c->old_path ? "<" : "", c->old_path ? c->old_path : "");
  if (strcmp (c->path, "/e") == 0)
    s->fetch_of_e = c->fetch;
  if (strcmp (c->path, "/new") == 0)
    s->fetch_of_new = c->fetch;
}

static void
check_files (void)
{
  /* OLD: /a in chunk 0, /b in chunk 1, /d/c in chunk 3, /e in chunk 4,
   * /d/empty, /sparse (no extents), /f in chunk 3 beside /d/c.
   */
  struct version old = {
    .image_size = 5 * CS,
    .chunk_size = CS,
    .content = { 1, 2, 0, 4, 5 },
    .files = {
      { "/a", 100, 0100644, 0, 100 },
      { "/b", 200, 0100644, CS, 200 },
      { "/d/c", 300, 0100644, 3 * CS, 300 },
      { "/d/empty", 0, 0100644, 0, 0 },
      { "/e", 1000, 0100644, 4 * CS + 96, 1000 },
      { "/f", 10, 0100600, 3 * CS + 1000, 10 },
      { "/sparse", 50000, 0100644, 0, 0 },
    },
  };
  /* NEW: /a grew, /b removed, /d renamed to /d2 (same bytes), /e's
   * chunk changed, /new added across chunks 4 and 5, /f renamed to /g
   * (chunk 3 unchanged) and /sparse to /sparse2.
   */
  struct version v = {
    .image_size = 6 * CS,
    .chunk_size = CS,
    .content = { 10, 2, 0, 4, 50, 60 },
    .files = {
      { "/a", 101, 0100644, 0, 101 },
      { "/d2/c", 300, 0100644, 3 * CS, 300 },
      { "/d2/empty", 0, 0100644, 0, 0 },
      { "/e", 1000, 0100644, 4 * CS + 96, 1000 },
      { "/g", 10, 0100600, 3 * CS + 1000, 10 },
      { "/new", 5000, 0100644, 5 * CS - 1000, 5000 },
      { "/sparse2", 50000, 0100644, 0, 0 },
    },
  };
  struct manifest_file_counts c;
  struct manifest *a, *b;
  struct manifest_diff d;
  struct seen s = { .text = "" };

  diff (&old, &v, &a, &b, &d);
  CHECK (manifest_diff_files (a, b, &d, record, &s, &c) == 0);
  EXPECT_ERRORS (0);
  CHECK (test_str_is (s.text,
                      "modified:/a\n"
                      "removed:/b\n"
                      "renamed:/d2/c</d/c\n"
                      "renamed:/d2/empty</d/empty\n"
                      "fetched:/e\n"
                      "renamed:/g</f\n"
                      "added:/new\n"
                      "renamed:/sparse2</sparse\n"));
  CHECK (c.added == 1 && c.removed == 1 && c.renamed == 4);
  CHECK (c.modified == 1 && c.fetched == 1 && c.unchanged == 0);
  /* /e lies in chunk 4 only; /new in chunks 4 and 5. */
  CHECK (s.fetch_of_e == 1000);
  CHECK (s.fetch_of_new == 5000);
  close_both (a, b, &d);

  /* The same rename, but the chunk holding /d2/c also changed (as an
   * ext4 directory block beside it would): not provable, so removed
   * and added.
   */
  v.content[3] = 41;
  memset (&s, 0, sizeof s);
  diff (&old, &v, &a, &b, &d);
  CHECK (manifest_diff_files (a, b, &d, record, &s, &c) == 0);
  CHECK (strstr (s.text, "added:/d2/c\n") != NULL);
  CHECK (strstr (s.text, "removed:/d/c\n") != NULL);
  CHECK (strstr (s.text, "renamed:/d2/c") == NULL);
  close_both (a, b, &d);

  /* Chunk sizes that differ prove nothing: no renames. */
  v.content[3] = 4;
  v.chunk_size = 2 * CS;
  memset (&s, 0, sizeof s);
  diff (&old, &v, &a, &b, &d);
  CHECK (manifest_diff_files (a, b, &d, record, &s, &c) == 0);
  CHECK (c.renamed == 0 && c.added == 5 && c.removed == 5);
  close_both (a, b, &d);

  /* Identical: nothing listed, everything unchanged. */
  memset (&s, 0, sizeof s);
  diff (&old, &old, &a, &b, &d);
  CHECK (manifest_diff_files (a, b, &d, record, &s, &c) == 0);
  CHECK (test_str_is (s.text, ""));
  CHECK (c.unchanged == 7 && c.added + c.removed + c.renamed == 0);
  close_both (a, b, &d);
}

int
main (void)
{
  test_capture_errors (false);
  test_make_tmpdir ("test-manifest-diff");

  check_identical ();
  check_one_chunk_changed ();
  check_zero_and_moved ();
  check_short_last_chunk ();
  check_chunk_size_mismatch ();
  check_files ();

  return test_summary ("manifest-diff");
}
