/* accel: routing of error and debug messages (see report.h). */

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "report.h"

/* Set once by the host program before any thread starts.  NULL
 * handlers mean "print to stderr as a tool".
 */
static report_fn error_fn, debug_fn;
static const char *tool_name = "accel";
static bool tool_verbose;

void
report_set_handlers (report_fn error, report_fn debug)
{
  error_fn = error;
  debug_fn = debug;
}

void
report_set_tool (const char *progname, bool verbose)
{
  error_fn = debug_fn = NULL;
  tool_name = progname;
  tool_verbose = verbose;
}

/* Print to stderr in one call so lines from threads do not interleave.
 * NB: errno is saved first so that %m in fs still refers to the caller's
 * error.
 */
static void
report_to_stderr (const char *fs, va_list args)
{
  int saved_errno = errno;
  char line[4096];
  int n;

  n = snprintf (line, sizeof line, "%s: ", tool_name);
  if (n < 0 || (size_t) n >= sizeof line)
    n = 0;
  errno = saved_errno;
  vsnprintf (line + n, sizeof line - n, fs, args);
  fprintf (stderr, "%s\n", line);
}

void
report_error (const char *fs, ...)
{
  va_list args;

  va_start (args, fs);
  if (error_fn)
    error_fn (fs, args);
  else
    report_to_stderr (fs, args);
  va_end (args);
}

void
report_warning (const char *fs, ...)
{
  int saved_errno = errno;
  char prefixed[1024];
  const char *f = fs;
  va_list args;

  /* NB: the prefix goes into the format, not the arguments, so that the
   * handler is still called once with one format (and %m still means the
   * caller's errno).  A format too long to prefix (none is) goes out as
   * it is.
   */
  if ((size_t) snprintf (prefixed, sizeof prefixed, "warning: %s", fs) <
      sizeof prefixed)
    f = prefixed;
  errno = saved_errno;
  va_start (args, fs);
  if (error_fn)
    error_fn (f, args);
  else
    report_to_stderr (f, args);
  va_end (args);
}

void
report_debug (const char *fs, ...)
{
  va_list args;

  va_start (args, fs);
  if (debug_fn)
    debug_fn (fs, args);
  else if (tool_verbose)
    report_to_stderr (fs, args);
  va_end (args);
}

void
report_usage_error (const char *fs, ...)
{
  va_list args;

  fprintf (stderr, "%s: ", program_invocation_short_name);
  va_start (args, fs);
  vfprintf (stderr, fs, args);
  va_end (args);
  fprintf (stderr, "\nTry '%s --help' for more information.\n",
           program_invocation_short_name);
  exit (2);
}
