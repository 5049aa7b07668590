/* accel: unit test of common/utils/report.c: where errors, warnings
 * and debug messages go.
 *
 * With handlers (as in the plugin) a warning is one call of the error
 * handler, "warning: " in front, %m still the caller's errno.  As a
 * tool (stderr, read back through a pipe) it is "PROGNAME: warning: ...",
 * and debug messages only when verbose.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "report.h"

#include "test.h"

static void
test_handlers (void)
{
  char fs[2048];

  test_capture_errors (false);
  report_warning ("cache: %s: %d", "x", 42);
  CHECK (strcmp (test_last_error, "warning: cache: x: 42") == 0);
  CHECK (test_error_says ("warning: cache: x: 42", NULL));
  errno = ENOSPC;
  report_warning ("write: %m");
  CHECK (test_error_says ("warning: write: ", strerror (ENOSPC)));
  report_error ("plain %s", "error");
  CHECK (strcmp (test_last_error, "plain error") == 0);
  CHECK (test_error_says ("plain error", NULL));
  report_debug ("not an error");
  EXPECT_ERRORS (0);

  /* A format too long to prefix still goes out, once. */
  memset (fs, 'a', sizeof fs - 1);
  fs[sizeof fs - 1] = '\0';
  report_warning ("%s", fs);
  EXPECT_ERRORS (1);
  test_clear_errors ();
}

/* What the tool's messages print to stderr. */
static void
test_tool (void)
{
  char buf[4096];
  ssize_t n;
  int fds[2], saved;

  if (pipe (fds) == -1) {
    perror ("pipe");
    exit (EXIT_FAILURE);
  }
  saved = dup (STDERR_FILENO);
  dup2 (fds[1], STDERR_FILENO);
  close (fds[1]);

  report_set_tool ("accel-test", false);
  report_warning ("tls-verify=%s", "false");
  report_debug ("hidden");
  report_set_tool ("accel-test", true);
  report_debug ("shown");
  report_error ("failed");

  dup2 (saved, STDERR_FILENO);
  close (saved);
  n = read (fds[0], buf, sizeof buf - 1);
  close (fds[0]);
  buf[n > 0 ? n : 0] = '\0';
  CHECK (test_str_is (buf,
                      "accel-test: warning: tls-verify=false\n"
                      "accel-test: shown\n"
                      "accel-test: failed\n"));
}

int
main (void)
{
  test_handlers ();
  test_tool ();
  return test_summary ("report");
}
