/* accel: unit test of common/s3/ini.c.
 *
 * The parser is fed AWS-style credentials and config files from memory
 * (ini_parse) and from files (ini_load, ini_lookup): the syntax the AWS
 * CLI accepts (comments, blanks, CRLF, a byte order mark, nested
 * sub-properties, repeated keys and sections), then malformed files and
 * files over each cap, which must be refused with a message naming the
 * file and the line.  A missing file must be "absent", not an error.
 *
 * Files go to a private directory under $TMPDIR (or /tmp), removed at
 * the end.  Output: a line per failed check and a final
 * "ini: N checks, N failed".
 */

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "ini.h"
#include "report.h"
#include "test.h"

/* Parse a string; the test's file name is "test.ini". */
static struct ini *
parse (const char *s)
{
  test_clear_errors ();
  return ini_parse ("test.ini", s, strlen (s));
}

/* Write a file in the test's directory, returning its malloc'd path. */
static char *
write_file (const char *name, const char *data, size_t len)
{
  char *path = test_tmp_path (name);

  test_write_file (path, data, len);
  return path;
}

/* The file formats of the AWS docs, with every kind of noise. */
static void
test_syntax (void)
{
  struct ini *ini;

  ini = parse ("# comment\n"
               "; another comment\n"
               "\n"
               "[default]\n"
               "aws_access_key_id = AKIDEFAULT\n"
               "aws_secret_access_key=secret/with+slash=\n"
               "region\t=  eu-west-1 \t\n"
               "   # indented comment\n"
               "[profile   dev ]\n"
               "role_arn = arn:aws:iam::123456789012:role/x=y\n"
               "empty =\n"
               "Mixed_Case = yes\n"
               "[colon]\n"
               "aws_access_key_id: AKIDCOLON\n"
               "credential_process: helper --x=1\n"
               "role_arn = arn:aws:iam::1:role/r\n");
  CHECK (ini != NULL);
  CHECK (test_nr_errors () == 0);
  if (ini == NULL)
    return;
  CHECK (test_str_is (ini_get (ini, "default", "aws_access_key_id"),
                      "AKIDEFAULT"));
  CHECK (test_str_is (ini_get (ini, "default", "aws_secret_access_key"),
                      "secret/with+slash="));
  CHECK (test_str_is (ini_get (ini, "default", "region"), "eu-west-1"));
  CHECK (test_str_is (ini_get (ini, "profile dev", "role_arn"),
                      "arn:aws:iam::123456789012:role/x=y"));
  CHECK (test_str_is (ini_get (ini, "profile dev", "empty"), ""));
  /* Keys are case-insensitive, section names are not. */
  CHECK (test_str_is (ini_get (ini, "profile dev", "mixed_case"), "yes"));
  CHECK (test_str_is (ini_get (ini, "profile dev", "MIXED_CASE"), "yes"));
  CHECK (ini_get (ini, "Default", "region") == NULL);
  /* "key: value", as configparser reads it: the first '=' or ':'. */
  CHECK (
      test_str_is (ini_get (ini, "colon", "aws_access_key_id"), "AKIDCOLON"));
  CHECK (test_str_is (ini_get (ini, "colon", "credential_process"),
                      "helper --x=1"));
  CHECK (test_str_is (ini_get (ini, "colon", "role_arn"),
                      "arn:aws:iam::1:role/r"));
  /* Keys do not leak between sections. */
  CHECK (ini_get (ini, "profile dev", "region") == NULL);
  CHECK (ini_get (ini, "default", "role_arn") == NULL);
  CHECK (ini_has_section (ini, "default"));
  CHECK (ini_has_section (ini, "profile dev"));
  CHECK (!ini_has_section (ini, "dev"));
  CHECK (!ini_has_section (ini, "profile"));
  ini_free (ini);

  /* CRLF, a byte order mark, and no newline at the end. */
  ini = parse ("\xef\xbb\xbf[default]\r\n"
               "a = 1\r\n"
               "\r\n"
               "b = 2");
  CHECK (ini != NULL);
  if (ini) {
    CHECK (test_str_is (ini_get (ini, "default", "a"), "1"));
    CHECK (test_str_is (ini_get (ini, "default", "b"), "2"));
    ini_free (ini);
  }

  /* No inline comments in values, as in the AWS CLI; headers may
   * have one.
   */
  ini = parse ("[default] # the default\n"
               "region = us-east-2 # ohio\n"
               "[x];c\n");
  CHECK (ini != NULL);
  if (ini) {
    CHECK (
        test_str_is (ini_get (ini, "default", "region"), "us-east-2 # ohio"));
    CHECK (ini_has_section (ini, "x"));
    ini_free (ini);
  }

  /* Empty files and files of comments only. */
  ini = parse ("");
  CHECK (ini != NULL);
  if (ini) {
    CHECK (ini_get (ini, "default", "a") == NULL);
    CHECK (!ini_has_section (ini, "default"));
    ini_free (ini);
  }
  ini = parse ("\n\n# nothing\n   \n");
  CHECK (ini != NULL);
  ini_free (ini);
}

/* Nested sub-properties (indented under a key) are never top-level
 * keys: a nested aws_access_key_id must not be found by ini_get, only
 * by ini_get_nested.
 */
static void
test_nested (void)
{
  struct ini *ini;

  ini = parse ("[default]\n"
               "s3 =\n"
               "    max_concurrent_requests = 20\n"
               "    aws_access_key_id = NESTED\n"
               "\n"
               "    signature_version = s3v4\n"
               "region = us-west-2\n"
               "  indented = top\n"
               "    deeper = skipped\n"
               "[profile other]\n"
               "  first = indented but first in section\n");
  CHECK (ini != NULL);
  CHECK (test_nr_errors () == 0);
  if (ini == NULL)
    return;
  CHECK (test_str_is (ini_get (ini, "default", "s3"), ""));
  CHECK (ini_get (ini, "default", "aws_access_key_id") == NULL);
  CHECK (ini_get (ini, "default", "max_concurrent_requests") == NULL);
  CHECK (ini_get (ini, "default", "signature_version") == NULL);
  /* "indented" is deeper than "region" above it: a continuation,
   * joined to the value as configparser does (with a space).
   */
  CHECK (test_str_is (ini_get (ini, "default", "region"),
                      "us-west-2 indented = top deeper = skipped"));
  CHECK (ini_get (ini, "default", "indented") == NULL);
  CHECK (ini_get (ini, "default", "deeper") == NULL);
  CHECK (test_str_is (ini_get (ini, "profile other", "first"),
                      "indented but first in section"));
  CHECK (test_str_is (
      ini_get_nested (ini, "default", "s3", "max_concurrent_requests"), "20"));
  CHECK (test_str_is (
      ini_get_nested (ini, "default", "s3", "signature_version"), "s3v4"));
  /* A continuation of a key with a value is not nested in it. */
  CHECK (ini_get_nested (ini, "default", "region", "indented") == NULL);
  CHECK (ini_get_nested (ini, "default", "s3", "region") == NULL);
  ini_free (ini);
}

/* [services NAME] blocks as the AWS docs write them, with any
 * indentation, several services, comments inside, and repeats.
 */
static void
test_nested_services (void)
{
  struct ini *ini;

  ini = parse ("[services local]\n"
               "s3 =\n"
               "  endpoint_url = http://s3.local\n"
               "  # a comment inside the block\n"
               "\tEndpoint_Url = http://case.matters\n"
               "sts =\n"
               "\t\tendpoint_url=http://sts.local\n"
               "dynamodb =\n"
               "        endpoint_url = http://a\n"
               "   region = deeper than dynamodb\n"
               "dynamodb =\n"
               " endpoint_url = http://b=with=equals\n"
               "ec2 = \n"
               "empty =\n"
               "[services other]\n"
               "s3 =\n"
               "  endpoint_url = http://other\n");
  CHECK (ini != NULL);
  CHECK (test_nr_errors () == 0);
  if (ini == NULL)
    return;
  CHECK (
      test_str_is (ini_get_nested (ini, "services local", "s3", "endpoint_url"),
                   "http://s3.local"));
  /* Nested keys keep their case, as in the AWS CLI. */
  CHECK (
      test_str_is (ini_get_nested (ini, "services local", "s3", "Endpoint_Url"),
                   "http://case.matters"));
  CHECK (test_str_is (
      ini_get_nested (ini, "services local", "sts", "endpoint_url"),
      "http://sts.local"));
  /* The last block of a repeated key replaces the earlier one whole. */
  CHECK (test_str_is (
      ini_get_nested (ini, "services local", "dynamodb", "endpoint_url"),
      "http://b=with=equals"));
  CHECK (ini_get_nested (ini, "services local", "dynamodb", "region") == NULL);
  CHECK (ini_get_nested (ini, "services local", "ec2", "endpoint_url") == NULL);
  CHECK (ini_get_nested (ini, "services local", "empty", "endpoint_url") ==
         NULL);
  CHECK (ini_get_nested (ini, "services local", "s4", "endpoint_url") == NULL);
  CHECK (ini_get (ini, "services local", "endpoint_url") == NULL);
  CHECK (
      test_str_is (ini_get_nested (ini, "services other", "s3", "endpoint_url"),
                   "http://other"));
  ini_free (ini);

  /* A nested line without '=' is malformed, as in the AWS CLI. */
  CHECK (parse ("[services x]\ns3 =\n  endpoint_url\n") == NULL);
  CHECK (test_error_says ("test.ini: line 3",
                          "expected 'key = value' nested in 's3'"));
  /* ... but under a key with a value it only continues the value. */
  ini = parse ("[default]\nkey = a\n  no equals here\n");
  CHECK (ini != NULL);
  CHECK (test_nr_errors () == 0);
  ini_free (ini);
}

/* Repeated keys and sections: the last one wins, sections merge. */
static void
test_repeats (void)
{
  struct ini *ini;

  ini = parse ("[a]\n"
               "k = 1\n"
               "k = 2\n"
               "only_first = yes\n"
               "[b]\n"
               "k = b\n"
               "[a]\n"
               "k = 3\n");
  CHECK (ini != NULL);
  if (ini == NULL)
    return;
  CHECK (test_str_is (ini_get (ini, "a", "k"), "3"));
  CHECK (test_str_is (ini_get (ini, "a", "only_first"), "yes"));
  CHECK (test_str_is (ini_get (ini, "b", "k"), "b"));
  ini_free (ini);
}

/* Each malformed file is refused with the file name and line number. */
static void
test_malformed (void)
{
  static const struct {
    const char *text;
    const char *line;
    const char *words;
  } cases[] = {
    { "k = v\n", "line 1", "outside of a [section]" },
    { "# c\n\n[a]\nk = v\nno equals sign\n", "line 5",
      "expected 'key = value'" },
    { "[a]\n= value\n", "line 2", "empty key" },
    { "[a\nk = v\n", "line 1", "missing ']'" },
    { "[]\n", "line 1", "empty section name" },
    { "[   ]\n", "line 1", "empty section name" },
    { "[a] junk\n", "line 1", "unexpected text" },
    { "[a]\r\nk = v\r\n[b\r\n", "line 3", "missing ']'" },
  };
  size_t i;

  for (i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    struct ini *ini = parse (cases[i].text);

    CHECK (ini == NULL);
    CHECK (errno == EINVAL);
    CHECK (test_last_error_has (cases[i].words));
    CHECK (test_error_says ("test.ini", cases[i].line));
    ini_free (ini);
  }

  /* A NUL byte: not a text file. */
  test_clear_errors ();
  CHECK (ini_parse ("test.ini", "[a]\nk = v\0x\n", 10) == NULL);
  CHECK (test_error_says ("test.ini", "NUL"));
}

/* Every cap is enforced, and just under each cap is accepted. */
static void
test_caps (void)
{
  size_t size = INI_MAX_FILE_SIZE + 1, i, len;
  char *buf = test_alloc (size + 1);
  struct ini *ini;

  /* File size. */
  memset (buf, '#', size);
  buf[size] = '\0';
  test_clear_errors ();
  CHECK (ini_parse ("big.ini", buf, size) == NULL);
  CHECK (errno == EFBIG);
  CHECK (test_error_says ("big.ini", "larger than"));
  test_clear_errors ();
  ini = ini_parse ("big.ini", buf, size - 1); /* one long comment line */
  CHECK (ini == NULL);
  CHECK (test_error_says ("big.ini", "line 1: longer than"));

  /* Line length: exactly INI_MAX_LINE is fine, one more is not. */
  len = snprintf (buf, size, "[a]\nk = ");
  memset (buf + len, 'v', INI_MAX_LINE - 4);
  len += INI_MAX_LINE - 4;
  buf[len] = '\0';
  ini = parse (buf);
  CHECK (ini != NULL);
  if (ini) {
    CHECK (strlen (ini_get (ini, "a", "k")) == INI_MAX_LINE - 4);
    ini_free (ini);
  }
  buf[len++] = 'v';
  buf[len] = '\0';
  ini = parse (buf);
  CHECK (ini == NULL);
  CHECK (errno == E2BIG);
  CHECK (test_error_says ("test.ini", "line 2: longer than"));

  /* Number of entries: the header plus INI_MAX_ENTRIES - 1 keys fit. */
  len = snprintf (buf, size, "[a]\n");
  for (i = 0; i < INI_MAX_ENTRIES - 1; ++i)
    len += snprintf (buf + len, size - len, "k=\n");
  ini = parse (buf);
  CHECK (ini != NULL);
  ini_free (ini);
  len += snprintf (buf + len, size - len, "k=\n");
  ini = parse (buf);
  CHECK (ini == NULL);
  CHECK (errno == E2BIG);
  CHECK (test_error_says ("test.ini", "more than"));

  /* Headers count too. */
  len = 0;
  for (i = 0; i < INI_MAX_ENTRIES + 1; ++i)
    len += snprintf (buf + len, size - len, "[s]\n");
  ini = parse (buf);
  CHECK (ini == NULL);
  CHECK (test_error_says ("test.ini", "more than"));

  free (buf);
}

/* Loading from files: absent is not an error, unreadable is. */
static void
test_files (void)
{
  static const char text[] = "[default]\n"
                             "region = ap-south-1\n";
  CLEANUP_FREE char *path = write_file ("config", text, sizeof text - 1);
  CLEANUP_FREE char *missing = test_tmp_path ("no-such-file");
  CLEANUP_FREE char *notdir = test_tmp_path ("config/below-a-file");
  CLEANUP_FREE char *big = NULL, *bad = NULL;
  CLEANUP_FREE char *value = NULL, *buf = NULL;
  struct ini *ini;

  test_clear_errors ();
  ini = ini_load (path);
  CHECK (ini != NULL);
  if (ini) {
    CHECK (test_str_is (ini_get (ini, "default", "region"), "ap-south-1"));
    ini_free (ini);
  }
  CHECK (test_nr_errors () == 0);

  ini = ini_load (missing);
  CHECK (ini == NULL && errno == ENOENT);
  ini = ini_load (notdir);
  CHECK (ini == NULL && errno == ENOENT);
  CHECK (test_nr_errors () == 0);

  /* A directory is an error, and not ENOENT. */
  ini = ini_load (test_tmpdir);
  CHECK (ini == NULL && errno != ENOENT);
  CHECK (test_error_says (test_tmpdir, NULL));

  /* /dev/null is a common way to say "no credentials file". */
  test_clear_errors ();
  ini = ini_load ("/dev/null");
  CHECK (ini != NULL);
  ini_free (ini);

  /* A file over the cap is refused without reading all of it. */
  buf = test_alloc (INI_MAX_FILE_SIZE + 100);
  memset (buf, '\n', INI_MAX_FILE_SIZE + 100);
  big = write_file ("big", buf, INI_MAX_FILE_SIZE + 100);
  test_clear_errors ();
  CHECK (ini_load (big) == NULL);
  CHECK (errno != ENOENT);
  CHECK (test_error_says (big, "larger than"));

  /* ini_lookup: found, absent key, absent section, absent file. */
  test_clear_errors ();
  CHECK (ini_lookup (path, "default", "region", &value) == 0);
  CHECK (test_str_is (value, "ap-south-1"));
  free (value);
  CHECK (ini_lookup (path, "default", "nope", &value) == 0 && value == NULL);
  CHECK (ini_lookup (path, "nope", "region", &value) == 0 && value == NULL);
  CHECK (ini_lookup (missing, "default", "region", &value) == 0 &&
         value == NULL);
  CHECK (test_nr_errors () == 0);

  /* ... and a malformed file is an error. */
  bad = write_file ("bad", "[default\n", 9);
  CHECK (ini_lookup (bad, "default", "region", &value) == -1 && value == NULL);
  CHECK (test_error_says (bad, "line 1"));

  unlink (path);
  unlink (big);
  unlink (bad);
}

/* Errors are captured, not printed, so that checks can read them. */
int
main (void)
{
  test_capture_errors (false);
  test_make_tmpdir ("accel-test-ini");

  test_syntax ();
  test_nested ();
  test_nested_services ();
  test_repeats ();
  test_malformed ();
  test_caps ();
  test_files ();

  return test_summary ("ini");
}
