/* accel: unit test of common/utils/format.c (the output helpers of
 * accel-inspect and accel-cache).
 *
 * Paths in a manifest are untrusted bytes, so the two string printers
 * are fed what a hostile or merely odd image can hold: newlines, a
 * terminal escape, C1 controls, and every kind of malformed UTF-8 (stray
 * continuation bytes, overlong forms, surrogates, code points past
 * U+10FFFF, a sequence cut short by the end of the string), next to
 * valid multibyte names that must come out unchanged.  Then sizes,
 * modes and percentages.  Output: a line per failed check and a final
 * "inspect-format: N checks, N failed".
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"

#include "test.h"

/* Compare a formatted value with want. */
static void
check_equal (const char *file, int line, const char *got, const char *want)
{
  test_check (strcmp (got, want) == 0, file, line, "got \"%s\", wanted \"%s\"",
              got, want);
}
#define EQUAL(got, want) check_equal (__FILE__, __LINE__, got, want)

/* Compare what fn printed for in with want. */
static void
check_string (const char *file, int line, void (*fn) (FILE *, const char *),
              const char *in, const char *want)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *fp = open_memstream (&buf, &len);

  if (fp == NULL) {
    perror ("open_memstream");
    exit (EXIT_FAILURE);
  }
  fn (fp, in);
  fclose (fp);
  check_equal (file, line, buf, want);
  free (buf);
}
#define TEXT(in, want)                                                         \
  check_string (__FILE__, __LINE__, format_text_string, in, want)
#define JSON(in, want)                                                         \
  check_string (__FILE__, __LINE__, format_json_string, in, want)

static void
test_text (void)
{
  TEXT ("", "");
  TEXT ("/a/b c.txt", "/a/b c.txt");
  TEXT ("new\nline\ttab", "new\\nline\\ttab");
  TEXT ("back\\slash", "back\\\\slash");
  TEXT ("esc\033[31mred\r\x7f", "esc\\x1b[31mred\\x0d\\x7f");
  /* Valid UTF-8, 2, 3 and 4 bytes, and U+00A0 (just past the C1s). */
  TEXT ("ünïcødé", "ünïcødé");
  TEXT ("\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac");
  TEXT ("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80");
  TEXT ("\xc2\xa0", "\xc2\xa0");
  /* C1 controls: valid UTF-8, but CSI (U+009B) moves a cursor. */
  TEXT ("\xc2\x9bJ", "\\xc2\\x9bJ");
  TEXT ("\xc2\x80", "\\xc2\\x80");
  /* Malformed: each bad byte escaped, what follows kept. */
  TEXT ("\xff", "\\xff");
  TEXT ("\x80x", "\\x80x");
  TEXT ("\xc0\xaf", "\\xc0\\xaf"); /* overlong '/' */
  TEXT ("\xe0\x80\xaf", "\\xe0\\x80\\xaf"); /* overlong '/' */
  TEXT ("\xed\xa0\x80", "\\xed\\xa0\\x80"); /* surrogate U+D800 */
  TEXT ("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"); /* U+110000 */
  TEXT ("\xf5\x80\x80\x80", "\\xf5\\x80\\x80\\x80");
  TEXT ("ab\xe6\x97", "ab\\xe6\\x97"); /* cut short by the end */
  TEXT ("\xe6\x97z", "\\xe6\\x97z");
  TEXT ("\xf0\x9f\x98", "\\xf0\\x9f\\x98");
  TEXT ("\xc3\xc3\xbc", "\\xc3\xc3\xbc"); /* a bad byte, then a good one */
}

static void
test_json (void)
{
  JSON ("", "\"\"");
  JSON ("/a/b", "\"/a/b\"");
  JSON ("q\"b\\", "\"q\\\"b\\\\\"");
  JSON ("n\nt\t\x01\x1f\x7f", "\"n\\nt\\t\\u0001\\u001f\\u007f\"");
  JSON ("esc\033[0m", "\"esc\\u001b[0m\"");
  JSON ("\xe6\x97\xa5 \xf0\x9f\x98\x80", "\"\xe6\x97\xa5 \xf0\x9f\x98\x80\"");
  JSON ("\xff", "\"\\ufffd\"");
  JSON ("a\xc0\xafz", "\"a\\ufffd\\ufffdz\"");
  JSON ("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");
  JSON ("end\xe6\x97", "\"end\\ufffd\\ufffd\"");
}

static void
test_numbers (void)
{
  char buf[32];

  EQUAL (format_size (0, buf, sizeof buf), "0 B");
  EQUAL (format_size (1023, buf, sizeof buf), "1023 B");
  EQUAL (format_size (1024, buf, sizeof buf), "1.0 KiB");
  EQUAL (format_size (1536, buf, sizeof buf), "1.5 KiB");
  EQUAL (format_size (16777216, buf, sizeof buf), "16.0 MiB");
  EQUAL (format_size (UINT64_C (1) << 50, buf, sizeof buf), "1.0 PiB");
  EQUAL (format_size (UINT64_MAX, buf, sizeof buf), "16384.0 PiB");

  EQUAL (format_mode (0100644, buf, sizeof buf), "-rw-r--r--");
  EQUAL (format_mode (0100755, buf, sizeof buf), "-rwxr-xr-x");
  EQUAL (format_mode (0104755, buf, sizeof buf), "-rwsr-xr-x");
  EQUAL (format_mode (0104644, buf, sizeof buf), "-rwSr--r--");
  EQUAL (format_mode (0102710, buf, sizeof buf), "-rwx--s---");
  EQUAL (format_mode (0102600, buf, sizeof buf), "-rw---S---");
  EQUAL (format_mode (041777, buf, sizeof buf), "drwxrwxrwt");
  EQUAL (format_mode (041776, buf, sizeof buf), "drwxrwxrwT");
  EQUAL (format_mode (0120777, buf, sizeof buf), "lrwxrwxrwx");
  EQUAL (format_mode (0, buf, sizeof buf), "?---------");
  EQUAL (format_mode (0100644, buf, 4), "-rw");

  EQUAL (format_percent (0, 0, buf, sizeof buf), "0.0");
  EQUAL (format_percent (0, 64, buf, sizeof buf), "0.0");
  EQUAL (format_percent (49, 64, buf, sizeof buf), "76.5");
  EQUAL (format_percent (2, 3, buf, sizeof buf), "66.6");
  EQUAL (format_percent (64, 64, buf, sizeof buf), "100.0");
  /* Rounded down: "100.0" only when all of them are. */
  EQUAL (format_percent ((1 << 24) - 1, 1 << 24, buf, sizeof buf), "99.9");
}

int
main (void)
{
  test_text ();
  test_json ();
  test_numbers ();
  return test_summary ("inspect-format");
}
