/* accel: what the unit tests (tests/unit/test-*.c) share.
 *
 * Header-only, since each test is one program built from its own .c
 * and libaccel-common.a.  Three things every test needs in the same
 * shape:
 *
 *  - Checks that count and go on.  CHECK (cond) counts one check and, if
 *    cond is false, prints "FILE:LINE: FAIL: cond" to stderr (at most
 *    TEST_MAX_SHOWN such lines).  A test ends with
 *    "return test_summary ("NAME");", which prints the final line
 *    "NAME: N checks, N failed" and gives the exit status.  The counters
 *    are atomic, so threads may check too.
 *
 *  - The errors the code under test reports.  After
 *    test_capture_errors (), report_error stores the message instead of
 *    printing it.  test_error_says asserts that a refusal reported
 *    exactly one error saying what it should (errors are reported once,
 *    where they happen), EXPECT_ERRORS (n) that n were reported (0 for
 *    a success).
 *
 *  - Buffers that are there or end the test (test_alloc), and a
 *    private temporary directory, removed at the end.
 */

#ifndef ACCEL_TEST_H
#define ACCEL_TEST_H

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "report.h"

/* ---- checks ------------------------------------------------------- */

/* More failed checks than this are counted but not shown. */
#define TEST_MAX_SHOWN 50

static _Atomic unsigned test_nr_checks, test_nr_failed;

/* If not 0, the process that runs the checks: failures in processes it
 * forks say "(child)".
 */
static pid_t test_main_pid;

/* Count one check; if it failed, say where and what (a printf format
 * describing the check).  Returns ok, so a test can skip what depends
 * on it.
 */
static inline bool
test_check (bool ok, const char *file, int line, const char *fs, ...)
    __attribute__ ((format (printf, 4, 5)));

static inline bool
test_check (bool ok, const char *file, int line, const char *fs, ...)
{
  unsigned failed;
  char what[1024];
  va_list args;

  test_nr_checks++;
  if (ok)
    return true;
  failed = ++test_nr_failed;
  if (failed > TEST_MAX_SHOWN + 1)
    return false;
  if (failed == TEST_MAX_SHOWN + 1) {
    fprintf (stderr, "(further failed checks not shown)\n");
    return false;
  }
  va_start (args, fs);
  vsnprintf (what, sizeof what, fs, args);
  va_end (args);
  fprintf (stderr, "%s:%d: FAIL%s: %s\n", file, line,
           test_main_pid == 0 || getpid () == test_main_pid ? "" : " (child)",
           what);
  return false;
}

/* The condition itself says what failed. */
#define CHECK(cond) test_check ((cond), __FILE__, __LINE__, "%s", #cond)

/* For table-driven checks: what was checked and on which input. */
#define CHECK_INPUT(cond, what, input)                                         \
  test_check ((cond), __FILE__, __LINE__, "%s: input \"%s\"", (what), (input))

/* Print the final "NAME: N checks, N failed" and return the exit
 * status: for "return test_summary (NAME);" at the end of main.
 */
static inline int
test_summary (const char *name)
{
  printf ("%s: %u checks, %u failed\n", name, (unsigned) test_nr_checks,
          (unsigned) test_nr_failed);
  return test_nr_failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* Compare strings where NULL means "absent"; show a mismatch. */
static inline bool
test_str_is (const char *got, const char *want)
{
  if (got == NULL || want == NULL) {
    if (got != want)
      fprintf (stderr, "got %s, wanted %s\n", got ? got : "NULL",
               want ? want : "NULL");
    return got == want;
  }
  if (strcmp (got, want) != 0) {
    fprintf (stderr, "got \"%s\", wanted \"%s\"\n", got, want);
    return false;
  }
  return true;
}

/* ---- errors reported by the code under test ------------------------ */

/* test_error_lock protects the two below: errors may come from the
 * threads of the code under test.
 */
static pthread_mutex_t test_error_lock = PTHREAD_MUTEX_INITIALIZER;
static char test_last_error[4096];
static unsigned test_nr_errors_seen;

/* Whether captured errors are also printed (to stderr). */
static bool test_show_errors;

/* The report_error handler: count, keep the last message and maybe
 * show it.  NB: errno is saved first for the %m in fs.
 */
static inline void
test_on_error (const char *fs, va_list args)
{
  int saved_errno = errno;

  pthread_mutex_lock (&test_error_lock);
  errno = saved_errno;
  vsnprintf (test_last_error, sizeof test_last_error, fs, args);
  test_nr_errors_seen++;
  if (test_show_errors)
    fprintf (stderr, "%s: %s\n", program_invocation_short_name,
             test_last_error);
  pthread_mutex_unlock (&test_error_lock);
}

/* Debug messages are not under test. */
static inline void
test_ignore_debug (const char *fs, va_list args)
{
  (void) fs;
  (void) args;
}

/* Route report_error to test_on_error; show the messages too if show
 * is true (for tests that only count them).
 */
static inline void
test_capture_errors (bool show)
{
  test_show_errors = show;
  report_set_handlers (test_on_error, test_ignore_debug);
}

/* How many errors were reported since the last test_error_says,
 * EXPECT_ERRORS or test_clear_errors.
 */
static inline unsigned
test_nr_errors (void)
{
  unsigned n;

  pthread_mutex_lock (&test_error_lock);
  n = test_nr_errors_seen;
  pthread_mutex_unlock (&test_error_lock);
  return n;
}

/* Forget the errors so far, before a step that should (not) report one. */
static inline void
test_clear_errors (void)
{
  pthread_mutex_lock (&test_error_lock);
  test_last_error[0] = '\0';
  test_nr_errors_seen = 0;
  pthread_mutex_unlock (&test_error_lock);
}

/* True if exactly one error was reported since the last
 * test_error_says, EXPECT_ERRORS or test_clear_errors, and it contains
 * a and (unless NULL) b; otherwise say what was reported.  Then forget
 * it, so that a test can check one refusal after another.
 */
static inline bool
test_error_says (const char *a, const char *b)
{
  bool ok;

  pthread_mutex_lock (&test_error_lock);
  ok = test_nr_errors_seen == 1 && strstr (test_last_error, a) != NULL &&
      (b == NULL || strstr (test_last_error, b) != NULL);
  if (!ok)
    fprintf (stderr, "unexpected error (%u): %s (wanted \"%s\" and \"%s\")\n",
             test_nr_errors_seen, test_last_error, a, b ? b : "");
  test_nr_errors_seen = 0;
  pthread_mutex_unlock (&test_error_lock);
  return ok;
}

/* True if the last error reported contains s (it is not forgotten). */
static inline bool
test_last_error_has (const char *s)
{
  bool r;

  pthread_mutex_lock (&test_error_lock);
  r = strstr (test_last_error, s) != NULL;
  pthread_mutex_unlock (&test_error_lock);
  return r;
}

/* Check that exactly n errors were reported since the last
 * test_error_says, EXPECT_ERRORS or test_clear_errors, then forget them.
 */
#define EXPECT_ERRORS(n)                                                       \
  do {                                                                         \
    unsigned test_n_ = test_nr_errors ();                                      \
    test_check (test_n_ == (n), __FILE__, __LINE__,                            \
                "%u error(s) reported, %u expected", test_n_, (unsigned) (n)); \
    test_clear_errors ();                                                      \
  } while (0)

/* ---- memory ------------------------------------------------------ */

/* n zeroed bytes for a test's buffer, or exit: a test cannot go on
 * without them.
 */
static inline void *
test_alloc (size_t n)
{
  void *p = calloc (1, n ? n : 1);

  if (p == NULL) {
    perror ("calloc");
    exit (EXIT_FAILURE);
  }
  return p;
}

/* ---- temporary files ---------------------------------------------- */

/* The test's private directory, made by test_make_tmpdir. */
static char test_tmpdir[4096];

static inline void test_remove_tree (const char *path);

/* atexit: the private directory goes however the test ends (exit on a
 * failed setup too), so that no run leaves one behind in /tmp.
 */
static pid_t test_tmpdir_owner;

static inline void
test_remove_tmpdir (void)
{
  /* Not from a forked child's exit: the directory is its parent's. */
  if (test_tmpdir[0] && getpid () == test_tmpdir_owner)
    test_remove_tree (test_tmpdir);
}

/* Make $TMPDIR/NAME.XXXXXX (or under /tmp) as test_tmpdir, or exit.
 * It is removed when the test exits.
 */
static inline void
test_make_tmpdir (const char *name)
{
  const char *dir = getenv ("TMPDIR");

  snprintf (test_tmpdir, sizeof test_tmpdir, "%s/%s.XXXXXX",
            dir && *dir ? dir : "/tmp", name);
  if (mkdtemp (test_tmpdir) == NULL) {
    perror ("mkdtemp");
    exit (EXIT_FAILURE);
  }
  test_tmpdir_owner = getpid ();
  if (atexit (test_remove_tmpdir) != 0) {
    test_remove_tree (test_tmpdir);
    fputs ("atexit failed\n", stderr);
    exit (EXIT_FAILURE);
  }
}

/* A malloc'd path inside test_tmpdir, or exit. */
static inline char *
test_tmp_path (const char *name)
{
  char *path;

  if (asprintf (&path, "%s/%s", test_tmpdir, name) == -1) {
    perror ("asprintf");
    exit (EXIT_FAILURE);
  }
  return path;
}

/* Write (or replace) a file with len bytes of buf, or exit. */
static inline void
test_write_file (const char *path, const void *buf, size_t len)
{
  FILE *fp = fopen (path, "wb");

  if (fp == NULL || fwrite (buf, 1, len, fp) != len || fclose (fp) != 0) {
    perror (path);
    exit (EXIT_FAILURE);
  }
}

/* One entry of a tree being removed (for nftw). */
static inline int
test_remove_entry (const char *path, const struct stat *st, int flag,
                   struct FTW *ftw)
{
  (void) st;
  (void) flag;
  (void) ftw;
  remove (path);
  return 0;
}

/* rm -rf path, not following symlinks. */
static inline void
test_remove_tree (const char *path)
{
  nftw (path, test_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif /* ACCEL_TEST_H */
