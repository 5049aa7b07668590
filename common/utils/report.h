/* accel: one place where errors and debug messages go.
 *
 * Code in common/ is linked into the nbdkit plugin and into command line
 * tools.  In the plugin, messages must go through nbdkit_error and
 * nbdkit_debug (the plugin never prints); in a tool they go to stderr
 * prefixed by the tool's name.  The host program chooses once, at start,
 * with report_set_handlers or report_set_tool.  Format strings may use %m.
 */

#ifndef ACCEL_REPORT_H
#define ACCEL_REPORT_H

#include <stdarg.h>
#include <stdbool.h>

typedef void (*report_fn) (const char *fs, va_list args);

/* Route messages to the given functions.  The plugin passes
 * nbdkit_verror and nbdkit_vdebug (common/ does not link nbdkit's
 * symbols itself, so that tools can link it too).
 */
void report_set_handlers (report_fn error, report_fn debug);

/* Route messages to stderr as "PROGNAME: message".  Debug messages are
 * printed only if verbose is true.
 */
void report_set_tool (const char *progname, bool verbose);

/* Report an error once, where it happens. */
void report_error (const char *fs, ...) __attribute__ ((format (printf, 1, 2)));

/* Something the user should know that is not a failure: the operation
 * goes on (a check turned off, a degraded mode, a lost trace entry).
 * Printed as "warning: message" through the error route, since nbdkit
 * has no warning level.
 */
void
report_warning (const char *fs, ...) __attribute__ ((format (printf, 1, 2)));

/* A debug message (nbdkit -v, or a tool's --verbose). */
void report_debug (const char *fs, ...) __attribute__ ((format (printf, 1, 2)));

/* A tool's bad command line: "PROGNAME: message", where --help is,
 * then exit status 2.  PROGNAME is the program's own name (the tool may
 * not have called report_set_tool yet).
 */
void report_usage_error (const char *fs, ...)
    __attribute__ ((noreturn, format (printf, 1, 2)));

#endif /* ACCEL_REPORT_H */
