/* accel: unit test of plugin/offline.c's record of what was served
 * (offline_read_record, offline_parse_record).
 *
 * The record in CACHE_DIR/origins/ decides whether a start with the
 * origin unreachable may serve from the cache, and which version, so
 * anything that is not a whole "accel-origin v1" record must be refused
 * with one error naming the file.  The cases: complete records (with
 * and without a manifest) parsed to the exact fields; each key left
 * out; another version or no magic line; a record cut short, a line
 * without "=", an empty line; sizes and chunk sizes that are not
 * numbers, zero, out of range or not powers of two; a manifest without
 * its digest and the reverse; each key given twice; records of
 * OFFLINE_MAX_RECORD bytes and one more; reading a missing, a small, a
 * too long file and a directory.  Output: a line
 * per failed check and a final "plugin-offline: N checks, N failed".
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "offline.h"

#include "test.h"

#define PATH "/cache/origins/KEY"

#define SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* The lines of a complete record, with a manifest. */
static const char *const good[] = {
  "accel-origin v1",
  "name=s3://bucket/datasets/genome.img",
  "etag=\"9b2cf535f27731c974343645a3985328\"",
  "size=10485760",
  "chunk-size=1048576",
  "manifest=/var/cache/accel/manifests/" SHA,
  "manifest-sha256=" SHA,
  "object-identity=s3:bucket/datasets/genome.img",
};
#define NR_GOOD (sizeof good / sizeof good[0])

/* The good record's text, with line skip left out (NR_GOOD: none) and
 * extra appended (unless NULL), each line ending in a newline.
 */
static char *
record_text (size_t skip, const char *extra)
{
  char *text = test_alloc (4096);
  size_t i, len = 0;

  for (i = 0; i < NR_GOOD; i++)
    if (i != skip)
      len += snprintf (text + len, 4096 - len, "%s\n", good[i]);
  if (extra)
    snprintf (text + len, 4096 - len, "%s", extra);
  return text;
}

/* Parse text (a copy): true if it was accepted, with no error; or
 * refused, with exactly one error naming the file.
 */
static bool
parse (const char *text, bool want_ok, struct offline_record *rec)
{
  char *copy = strdup (text);
  bool ok;
  int r;

  if (copy == NULL)
    exit (EXIT_FAILURE);
  test_clear_errors ();
  r = offline_parse_record (PATH, copy, rec);
  if (want_ok)
    ok = r == 0 && test_nr_errors () == 0;
  else
    ok = r == -1 &&
        test_error_says (PATH, ": not a complete offline record: ignoring it");
  free (copy);
  return ok;
}
#define ACCEPTED(text) CHECK_INPUT (parse (text, true, &rec), "accepted", text)
#define REFUSED(text) CHECK_INPUT (parse (text, false, &rec), "refused", text)

static void
test_good (void)
{
  struct offline_record rec;
  char *text = record_text (NR_GOOD, NULL);

  CHECK (offline_parse_record (PATH, text, &rec) == 0);
  CHECK (test_str_is (rec.name, "s3://bucket/datasets/genome.img"));
  CHECK (test_str_is (rec.etag, "\"9b2cf535f27731c974343645a3985328\""));
  CHECK (rec.size == 10485760);
  CHECK (rec.chunk_size == 1048576);
  CHECK (test_str_is (rec.manifest, "/var/cache/accel/manifests/" SHA));
  CHECK (test_str_is (rec.manifest_sha256, SHA));
  CHECK (test_str_is (rec.object_identity, "s3:bucket/datasets/genome.img"));
  EXPECT_ERRORS (0);
  free (text);

  /* Without a manifest: both of its lines empty. */
  text = strdup ("accel-origin v1\nname=n\netag=e\nsize=1\nchunk-size=4096\n"
                 "manifest=\nmanifest-sha256=\nobject-identity=i\n");
  CHECK (text && offline_parse_record (PATH, text, &rec) == 0);
  CHECK (text && test_str_is (rec.manifest, "") &&
         test_str_is (rec.manifest_sha256, "") && rec.size == 1 &&
         rec.chunk_size == 4096 && test_str_is (rec.object_identity, "i"));
  EXPECT_ERRORS (0);
  free (text);

  /* Keys in any order, values with "=" in them, unknown keys ignored
   * (a later version may add some).
   */
  text = strdup ("accel-origin v1\nobject-identity=a=b\nmanifest-sha256=\n"
                 "future-key=x\nmanifest=\nchunk-size=65536\nsize=7\n"
                 "etag=\nname=s3://b/k?x=1\n");
  CHECK (text && offline_parse_record (PATH, text, &rec) == 0);
  CHECK (text && test_str_is (rec.object_identity, "a=b") &&
         test_str_is (rec.etag, "") && test_str_is (rec.name, "s3://b/k?x=1"));
  EXPECT_ERRORS (0);
  free (text);
}

static void
test_missing_keys (void)
{
  struct offline_record rec;
  size_t i;

  /* Each line left out in turn (line 0 is the magic). */
  for (i = 0; i < NR_GOOD; i++) {
    char *text = record_text (i, NULL);

    CHECK_INPUT (parse (text, false, &rec), "refused without", good[i]);
    free (text);
  }
  REFUSED ("");
  REFUSED ("accel-origin v1\n");
}

static void
test_magic (void)
{
  struct offline_record rec;
  char *text = record_text (0, NULL), *with;

  /* Another version, or something close to the magic line. */
  static const char *const magic[] = {
    "accel-origin v2\n",   "accel-origin v1 \n",
    "accel-origin v10\n",  "Accel-origin v1\n",
    "accel-origin\n",      " accel-origin v1\n",
    "accel-origin v1\r\n", "\n",
    "accel-origin v1",
  };
  size_t i;

  for (i = 0; i < sizeof magic / sizeof magic[0]; i++) {
    if (asprintf (&with, "%s%s", magic[i], text) == -1)
      exit (EXIT_FAILURE);
    REFUSED (with);
    free (with);
  }
  /* No magic line at all. */
  REFUSED (text);
  free (text);
}

static void
test_lines (void)
{
  struct offline_record rec;
  char *text = record_text (NR_GOOD, NULL);

  ACCEPTED (text);
  /* Cut short: the last line has no newline. */
  text[strlen (text) - 1] = '\0';
  REFUSED (text);
  free (text);

  /* A line without "=", an empty line, a line of spaces. */
  text = record_text (NR_GOOD, "junk\n");
  REFUSED (text);
  free (text);
  text = record_text (NR_GOOD, "\n");
  REFUSED (text);
  free (text);
  text = record_text (NR_GOOD, "   \n");
  REFUSED (text);
  free (text);
  /* An empty key is an unknown one. */
  text = record_text (NR_GOOD, "=x\n");
  ACCEPTED (text);
  free (text);
}

/* The good record with line i replaced by line. */
static void
check_line (const char *file, int lineno, size_t i, const char *line,
            bool want_ok)
{
  struct offline_record rec;
  char *with_newline, *text;

  if (asprintf (&with_newline, "%s\n", line) == -1)
    exit (EXIT_FAILURE);
  text = record_text (i, with_newline);
  free (with_newline);
  test_check (parse (text, want_ok, &rec), file, lineno, "%s: \"%s\"",
              want_ok ? "accepted" : "refused", line);
  free (text);
}
#define LINE_OK(i, line) check_line (__FILE__, __LINE__, i, line, true)
#define LINE_BAD(i, line) check_line (__FILE__, __LINE__, i, line, false)

#define SIZE 3
#define CHUNK 4
#define MANIFEST 5
#define MANIFEST_SHA 6

static void
test_numbers (void)
{
  LINE_OK (SIZE, "size=1");
  LINE_OK (SIZE, "size=1099511627776");
  LINE_BAD (SIZE, "size=0");
  LINE_BAD (SIZE, "size=");
  LINE_BAD (SIZE, "size=-1");
  LINE_BAD (SIZE, "size=+5");
  LINE_BAD (SIZE, "size= 5");
  LINE_BAD (SIZE, "size=5 ");
  LINE_BAD (SIZE, "size=12a");
  LINE_BAD (SIZE, "size=0x10");
  LINE_BAD (SIZE, "size=18446744073709551616");

  LINE_OK (CHUNK, "chunk-size=4096");
  LINE_OK (CHUNK, "chunk-size=67108864");
  LINE_BAD (CHUNK, "chunk-size=2048");
  LINE_BAD (CHUNK, "chunk-size=134217728");
  LINE_BAD (CHUNK, "chunk-size=1000000");
  LINE_BAD (CHUNK, "chunk-size=0");
  LINE_BAD (CHUNK, "chunk-size=");
  LINE_BAD (CHUNK, "chunk-size=1M");
  LINE_BAD (CHUNK, "chunk-size=4294971392"); /* 2^32 + 4096 */
}

static void
test_manifest_pair (void)
{
  /* The manifest and its digest come together or not at all. */
  LINE_BAD (MANIFEST, "manifest=");
  LINE_BAD (MANIFEST_SHA, "manifest-sha256=");
  LINE_OK (MANIFEST, "manifest=/elsewhere");
}

static void
test_duplicates (void)
{
  struct offline_record rec;
  size_t i;

  /* Each line again, with the same value or another. */
  for (i = 1; i < NR_GOOD; i++) {
    char *again, *text;

    if (asprintf (&again, "%s\n", good[i]) == -1)
      exit (EXIT_FAILURE);
    text = record_text (NR_GOOD, again);
    CHECK_INPUT (parse (text, false, &rec), "refused twice", good[i]);
    free (text);
    free (again);
  }
  LINE_BAD (NR_GOOD, "etag=\"other\"");
  LINE_BAD (NR_GOOD, "size=20971520");
  /* Unknown keys are not checked. */
  LINE_OK (NR_GOOD, "future-key=1\nfuture-key=2");
}

/* A record of exactly len bytes: the good one, then an unknown key's
 * line of padding.  len must leave room for "pad=\n".
 */
static char *
record_of_length (size_t len)
{
  char *good_text = record_text (NR_GOOD, NULL), *text;
  size_t glen = strlen (good_text);

  text = test_alloc (len + 1);
  memcpy (text, good_text, glen);
  memcpy (text + glen, "pad=", 4);
  memset (text + glen + 4, 'x', len - glen - 5);
  text[len - 1] = '\n';
  free (good_text);
  return text;
}

static void
test_length (void)
{
  struct offline_record rec;
  char *text;

  /* Up to OFFLINE_MAX_RECORD bytes, and not one more. */
  text = record_of_length (OFFLINE_MAX_RECORD);
  CHECK (parse (text, true, &rec));
  free (text);
  text = record_of_length (OFFLINE_MAX_RECORD + 1);
  CHECK (parse (text, false, &rec));
  free (text);
}

static void
test_read (void)
{
  char *path, *text, *big;

  test_make_tmpdir ("test-offline");
  path = test_tmp_path ("record");

  /* No record: NULL, and nothing to report. */
  test_clear_errors ();
  CHECK (offline_read_record (path) == NULL);
  EXPECT_ERRORS (0);

  /* A record is read whole. */
  big = record_text (NR_GOOD, NULL);
  test_write_file (path, big, strlen (big));
  text = offline_read_record (path);
  CHECK (text && test_str_is (text, big));
  EXPECT_ERRORS (0);
  free (text);
  free (big);

  /* A file longer than a record: one byte more than a record is
   * read, which makes it too long, even when the first
   * OFFLINE_MAX_RECORD bytes would be a complete record.
   */
  big = record_of_length (OFFLINE_MAX_RECORD + 20);
  big[OFFLINE_MAX_RECORD - 1] = '\n';
  test_write_file (path, big, OFFLINE_MAX_RECORD + 20);
  text = offline_read_record (path);
  CHECK (text && strlen (text) == OFFLINE_MAX_RECORD + 1);
  EXPECT_ERRORS (0);
  if (text) {
    struct offline_record rec;

    CHECK (offline_parse_record (path, text, &rec) == -1);
    CHECK (test_error_says (path, "not a complete offline record"));
  }
  free (text);
  free (big);

  /* Exactly a record's length: read whole, and accepted. */
  big = record_of_length (OFFLINE_MAX_RECORD);
  test_write_file (path, big, OFFLINE_MAX_RECORD);
  text = offline_read_record (path);
  CHECK (text && test_str_is (text, big));
  if (text) {
    struct offline_record rec;

    CHECK (offline_parse_record (path, text, &rec) == 0);
    EXPECT_ERRORS (0);
  }
  free (text);
  free (big);

  /* A directory where the record should be: reported. */
  remove (path);
  CHECK (mkdir (path, 0700) == 0);
  text = offline_read_record (path);
  CHECK (text == NULL);
  CHECK (test_error_says (path, "read"));

  free (path);
}

int
main (void)
{
  test_capture_errors (false);
  test_good ();
  test_missing_keys ();
  test_magic ();
  test_lines ();
  test_numbers ();
  test_manifest_pair ();
  test_duplicates ();
  test_length ();
  test_read ();
  EXPECT_ERRORS (0);
  return test_summary ("plugin-offline");
}
