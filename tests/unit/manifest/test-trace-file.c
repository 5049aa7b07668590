/* accel: unit test of common/manifest/trace-file.c.
 *
 * The header the plugin writes must read back as the same image; a
 * trace reads back in file order with repeats dropped.  Then every
 * kind of bad trace must be refused with one message naming the file
 * and the line: not a trace, a malformed or out-of-limits first line,
 * an index that is not a plain decimal number or is out of range, a
 * line too long, a NUL byte, a missing final newline (a trace cut
 * short), an empty file.
 *
 * Files go to a private directory under $TMPDIR (or /tmp), removed at
 * the end.  Output: a line per failed check and a final
 * "trace-file: N checks, N failed".
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "test.h"
#include "trace-file.h"

static unsigned char sha[32];
static char header[TRACE_MAX_HEADER];

/* Write text to the trace file and read it back. */
static int
read_text (const char *text, struct trace_info *info, uint64_t **chunks,
           size_t *n)
{
  CLEANUP_FREE char *path = test_tmp_path ("t.trace");

  test_write_file (path, text, strlen (text));
  test_clear_errors ();
  return trace_read (path, info, chunks, n);
}

/* header + body must be refused with a message containing want. */
static void
refused (const char *first, const char *body, const char *want)
{
  CLEANUP_FREE char *text = NULL;
  CLEANUP_FREE uint64_t *chunks = NULL;
  struct trace_info info;
  size_t n;

  if (asprintf (&text, "%s%s", first, body) == -1)
    exit (EXIT_FAILURE);
  CHECK_INPUT (read_text (text, &info, &chunks, &n) == -1, "refused", text);
  CHECK_INPUT (test_error_says ("t.trace", want), "message", text);
}

static void
test_round_trip (void)
{
  CLEANUP_FREE char *text = NULL;
  CLEANUP_FREE uint64_t *chunks = NULL;
  struct trace_info info;
  size_t n, len;
  int i;

  for (i = 0; i < 32; i++)
    sha[i] = i * 7 + 1;
  len = trace_format_header (header, sha, 20 * 1048576 + 5, 1048576);
  CHECK (len == strlen (header) && header[len - 1] == '\n');
  CHECK (strncmp (header, "accel-trace v1 image-sha256=01080f16", 36) == 0);
  CHECK (strstr (header, " image-size=20971525 chunk-size=1048576\n"));

  if (asprintf (&text, "%s7\n5\n0\n7\n20\n5\n", header) == -1)
    exit (EXIT_FAILURE);
  CHECK (read_text (text, &info, &chunks, &n) == 0);
  EXPECT_ERRORS (0);
  CHECK (memcmp (info.image_sha256, sha, 32) == 0);
  CHECK (info.image_size == 20 * 1048576 + 5);
  CHECK (info.chunk_size == 1048576);
  CHECK (info.nr_chunks == 21);
  CHECK (n == 4 && chunks[0] == 7 && chunks[1] == 5 && chunks[2] == 0 &&
         chunks[3] == 20);

  /* No entries at all is a trace of nothing. */
  free (chunks);
  chunks = NULL;
  CHECK (read_text (header, &info, &chunks, &n) == 0);
  CHECK (n == 0 && chunks == NULL);
}

static void
test_bad_header (void)
{
  static const char *const tail = " image-size=100 chunk-size=4096\n";
  char good_sha[65], line[512];

  memcpy (good_sha, header + strlen ("accel-trace v1 image-sha256="), 64);
  good_sha[64] = '\0';

  refused ("", "", "empty file");
  refused ("accel-trace v2 image-sha256=\n", "", "not an accel trace");
  refused ("ACCEL-TRACE v1\n", "", "not an accel trace");
  refused ("accel-trace v1 junk\n", "", "line 1: malformed");
  snprintf (line, sizeof line, "accel-trace v1 image-sha256=%.63s%s", good_sha,
            tail);
  refused (line, "", "line 1: malformed");
  snprintf (line, sizeof line, "accel-trace v1 image-sha256=%.63sA%s", good_sha,
            tail);
  refused (line, "", "line 1: malformed");
  snprintf (line, sizeof line,
            "accel-trace v1 image-sha256=%s image-size=100 chunk-size=4096 "
            "x=1\n",
            good_sha);
  refused (line, "", "line 1: malformed");
  snprintf (line, sizeof line,
            "accel-trace v1 image-sha256=%s image-size=-1 chunk-size=4096\n",
            good_sha);
  refused (line, "", "line 1: malformed");
  snprintf (line, sizeof line,
            "accel-trace v1 image-sha256=%s image-size=100 chunk-size=5000\n",
            good_sha);
  refused (line, "", "outside the manifest format's limits");
  snprintf (line, sizeof line,
            "accel-trace v1 image-sha256=%s image-size=0 chunk-size=4096\n",
            good_sha);
  refused (line, "", "outside the manifest format's limits");
  snprintf (line, sizeof line,
            "accel-trace v1 image-sha256=%s image-size=%" PRIu64
            " chunk-size=4096\n",
            good_sha, (uint64_t) 4096 << 25);
  refused (line, "", "more than the manifest format's limit");
  snprintf (line, sizeof line,
            "accel-trace v1 image-sha256=%s image-size=99999999999999999999"
            " chunk-size=4096\n",
            good_sha);
  refused (line, "", "line 1: malformed");
  snprintf (line, sizeof line, "accel-trace v1 image-sha256=%s%s", good_sha,
            " image-size=100 chunk-size=4096");
  refused (line, "", "no newline at the end");
}

static void
test_bad_lines (void)
{
  char big[64], nul[] = "5\n1\0002\n";
  CLEANUP_FREE char *text = NULL;
  CLEANUP_FREE uint64_t *chunks = NULL;
  struct trace_info info;
  size_t n, hl = strlen (header);

  refused (header, "5\n\n", "line 3: \"\" is not a chunk index");
  refused (header, "+5\n", "line 2: \"+5\" is not a chunk index");
  refused (header, " 5\n", "line 2");
  refused (header, "5 \n", "line 2");
  refused (header, "0x10\n", "line 2: \"0x10\" is not a chunk index");
  refused (header, "1\n2\n21\n",
           "line 4: chunk 21 is out of range (the "
           "image has 21 chunks)");
  refused (header, "18446744073709551616\n", "line 2");
  memset (big, '1', sizeof big - 2);
  big[sizeof big - 2] = '\n';
  big[sizeof big - 1] = '\0';
  refused (header, big, "line 2: too long");
  refused (header, "1\n2", "line 3: no newline at the end");

  /* A NUL byte inside a line. */
  text = test_alloc (hl + sizeof nul);
  memcpy (text, header, hl);
  memcpy (text + hl, nul, sizeof nul - 1);
  {
    CLEANUP_FREE char *path = test_tmp_path ("t.trace");

    test_write_file (path, text, hl + sizeof nul - 1);
    test_clear_errors ();
    CHECK (trace_read (path, &info, &chunks, &n) == -1);
    CHECK (test_error_says ("t.trace", "line 3: contains a NUL byte"));
  }

  /* A file that is not there. */
  test_clear_errors ();
  CHECK (trace_read ("/nonexistent/t.trace", &info, &chunks, &n) == -1);
  CHECK (test_error_says ("/nonexistent/t.trace", "No such file"));
}

int
main (void)
{
  test_capture_errors (false);
  test_make_tmpdir ("accel-test-trace-file");
  test_round_trip ();
  test_bad_header ();
  test_bad_lines ();
  return test_summary ("trace-file");
}
