/* accel: credentials from a profile's credential_process (creds-process.h).
 *
 * The command may be called from any of the plugin's threads, so it is
 * started with posix_spawn (no fork of a threaded process).  stdin is
 * /dev/null, stdout a pipe we read, stderr ours: what the command says
 * there reaches the user, as with the AWS CLI.  It gets a process group
 * of its own, so that a timeout kills whatever it started too (a shell
 * script's children would otherwise keep the pipe open).  Its signal
 * dispositions are reset, since nbdkit ignores SIGPIPE.
 *
 * stdout holds secrets: it is read into one buffer allocated at its
 * full size (CREDS_MAX_RESPONSE), wiped before it is freed, and never
 * printed, not even when it is malformed.
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "clock.h"
#include "creds-fetch.h"
#include "creds-http.h"
#include "creds-parse.h"
#include "creds-process.h"
#include "report.h"

/* A number macro as a string literal. */
#define STR_(x) #x
#define STR(x) STR_ (x)

extern char **environ;

/* The timeout in seconds: CREDS_PROCESS_TIMEOUT or the knob (not 0). */
static int
process_timeout (int *seconds)
{
  time_t t;

  if (creds_env_seconds ("ACCEL_CREDS_PROCESS_TIMEOUT", CREDS_PROCESS_TIMEOUT,
                         &t) == -1)
    return -1;
  if (t == 0) {
    report_error ("ACCEL_CREDS_PROCESS_TIMEOUT: 0 would never let the "
                  "command run");
    return -1;
  }
  *seconds = t;
  return 0;
}

/* Start sh -c command with stdout on the pipe's write end. */
static int
process_spawn (const char *command, int out_fd, pid_t *pid)
{
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  sigset_t none, reset;
  char *argv[] = { (char *) "sh", (char *) "-c", (char *) command, NULL };
  int r;

  sigemptyset (&none);
  sigemptyset (&reset);
  sigaddset (&reset, SIGPIPE);
  sigaddset (&reset, SIGCHLD);
  sigaddset (&reset, SIGINT);
  sigaddset (&reset, SIGTERM);
  sigaddset (&reset, SIGHUP);
  sigaddset (&reset, SIGQUIT);
  posix_spawn_file_actions_init (&fa);
  posix_spawnattr_init (&attr);
  r = posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
  if (r == 0)
    r = posix_spawn_file_actions_adddup2 (&fa, out_fd, 1);
  if (r == 0)
    r = posix_spawnattr_setflags (
        &attr,
        POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  if (r == 0)
    r = posix_spawnattr_setpgroup (&attr, 0);
  if (r == 0)
    r = posix_spawnattr_setsigmask (&attr, &none);
  if (r == 0)
    r = posix_spawnattr_setsigdefault (&attr, &reset);
  if (r == 0)
    r = posix_spawn (pid, "/bin/sh", &fa, &attr, argv, environ);
  posix_spawn_file_actions_destroy (&fa);
  posix_spawnattr_destroy (&attr);
  errno = r;
  return r == 0 ? 0 : -1;
}

/* Read stdout until EOF, the cap or the deadline (monotonic seconds).
 * Returns 0, or -1 with *why saying what went wrong.
 */
static int
process_read (int fd, char *buf, size_t *len, double deadline, const char **why)
{
  *len = 0;
  for (;;) {
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    double left = deadline - now_monotonic_seconds ();
    ssize_t n;
    int r;

    if (left <= 0) {
      *why = "timed out";
      return -1;
    }
    r = poll (&pfd, 1, (int) (left * 1000) + 1);
    if (r == -1 && errno == EINTR)
      continue;
    if (r == -1) {
      *why = "poll failed";
      return -1;
    }
    if (r == 0)
      continue; /* the deadline is checked above */
    n = read (fd, buf + *len, CREDS_MAX_RESPONSE + 1 - *len);
    if (n == -1 && errno == EINTR)
      continue;
    if (n == -1) {
      *why = "reading its output failed";
      return -1;
    }
    if (n == 0)
      return 0;
    *len += n;
    if (*len > CREDS_MAX_RESPONSE) {
      *why = "printed more than " STR (CREDS_MAX_RESPONSE) " bytes";
      return -1;
    }
  }
}

/* Wait for the command to exit, until the deadline.  Returns its wait
 * status, or -1 with *why set (the caller then kills it).
 */
static int
process_wait (pid_t pid, double deadline, const char **why)
{
  const struct timespec tick = { 0, 10 * 1000 * 1000 };
  int status;
  pid_t r;

  for (;;) {
    r = waitpid (pid, &status, WNOHANG);
    if (r == pid)
      return status;
    if (r == -1 && errno != EINTR) {
      *why = "its exit status is unknown (waitpid failed)";
      return -1;
    }
    if (now_monotonic_seconds () >= deadline) {
      *why = "timed out";
      return -1;
    }
    nanosleep (&tick, NULL);
  }
}

/* Kill the command and everything in its process group, and reap it. */
static void
process_kill (pid_t pid)
{
  kill (-pid, SIGKILL);
  while (waitpid (pid, NULL, 0) == -1 && errno == EINTR)
    ;
}

/* Check the document's Version and take its credentials. */
static int
process_parse (const char *origin, const char *buf, size_t len,
               struct aws_creds **out)
{
  CLEANUP_FREE char *what = NULL;
  long long version;

  if (asprintf (&what, "credential_process (%s): output", origin) == -1) {
    what = NULL;
    report_error ("asprintf: %m");
    return -1;
  }
  if (creds_json_integer (buf, len, "Version", &version) == -1) {
    report_error ("%s: %s", what,
                  errno == ENOENT     ? "Version is missing"
                      : errno == EDOM ? "Version is not an integer"
                                      : "not a valid JSON object");
    return -1;
  }
  if (version != 1) {
    report_error ("%s: Version is %lld, but only version 1 is known", what,
                  version);
    return -1;
  }
  return creds_from_fields_opt (what, false, buf, len, "SessionToken", false,
                                "process", out);
}

/* See creds-process.h. */
int
creds_fetch_process (const char *command, const char *origin,
                     struct aws_creds **out)
{
  const char *why = NULL;
  char *buf = NULL;
  size_t len = 0;
  int fds[2], timeout, status = -1, ret = -1;
  double deadline;
  pid_t pid;

  *out = NULL;
  if (process_timeout (&timeout) == -1)
    return -1;
  if (pipe2 (fds, O_CLOEXEC) == -1) {
    report_error ("credential_process (%s): pipe: %m", origin);
    return -1;
  }
  buf = malloc (CREDS_MAX_RESPONSE + 1);
  if (buf == NULL) {
    report_error ("malloc: %m");
    close (fds[0]);
    close (fds[1]);
    return -1;
  }
  report_debug ("credentials: running the credential_process of %s", origin);
  if (process_spawn (command, fds[1], &pid) == -1) {
    report_error ("credential_process (%s): /bin/sh: %m", origin);
    close (fds[0]);
    close (fds[1]);
    goto out;
  }
  close (fds[1]);
  deadline = now_monotonic_seconds () + timeout;
  if (process_read (fds[0], buf, &len, deadline, &why) == 0)
    status = process_wait (pid, deadline, &why);
  close (fds[0]);
  if (status == -1) {
    process_kill (pid);
    if (strcmp (why, "timed out") == 0)
      report_error ("credential_process (%s): timed out after %d s "
                    "(ACCEL_CREDS_PROCESS_TIMEOUT); killed",
                    origin, timeout);
    else
      report_error ("credential_process (%s): %s; killed", origin, why);
    goto out;
  }
  if (WIFSIGNALED (status)) {
    report_error ("credential_process (%s): killed by signal %d", origin,
                  WTERMSIG (status));
    goto out;
  }
  if (WEXITSTATUS (status) != 0) {
    report_error ("credential_process (%s): exited with status %d%s", origin,
                  WEXITSTATUS (status),
                  WEXITSTATUS (status) == 127 ? " (command not found?)" : "");
    goto out;
  }
  if (process_parse (origin, buf, len, out) == -1)
    goto out;
  if ((*out)->expiration && (*out)->expiration <= now_wall_seconds ()) {
    report_error ("credential_process (%s): the credentials it printed "
                  "expired %lld s ago",
                  origin,
                  (long long) (now_wall_seconds () - (*out)->expiration));
    creds_put (*out);
    *out = NULL;
    goto out;
  }
  if (creds_set_origin (*out, "credential_process of %s", origin) == -1) {
    creds_put (*out);
    *out = NULL;
    goto out;
  }
  ret = 0;

out:
  explicit_bzero (buf, len);
  free (buf);
  return ret;
}
