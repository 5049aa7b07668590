/* accel-mkimage: run the programs we build on (mke2fs, e2fsck,
 * mksquashfs, mkfs.erofs).
 *
 * Their output goes to a log file in the work directory rather than
 * to our stderr: on success it is noise (shown only with -v), on
 * failure the end of it is printed under our own error line, which
 * names the program and its exit status.  Their environment is ours
 * plus a few fixed settings (a fixed clock, the C locale, our own
 * mke2fs.conf), which is part of what makes the image reproducible.
 *
 * NB: the child must leave with _exit, never exit: exit would run our
 * atexit handler, which removes the work directory.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "report.h"
#include "mkimage.h"

/* Bytes of a failed program's log shown under the error. */
#define LOG_TAIL 2048

/* Copy the last LOG_TAIL bytes of log to stderr. */
static void
show_log (const char *log)
{
  char buf[4096];
  ssize_t n;
  off_t size;
  int fd;

  fd = open (log, O_RDONLY | O_CLOEXEC);
  if (fd == -1)
    return;
  size = lseek (fd, 0, SEEK_END);
  if (size > LOG_TAIL)
    lseek (fd, size - LOG_TAIL, SEEK_SET);
  else
    lseek (fd, 0, SEEK_SET);
  fflush (stderr);
  while ((n = read (fd, buf, sizeof buf)) > 0)
    if (write (STDERR_FILENO, buf, n) != n)
      break;
  close (fd);
}

/* With -v: the command line, one debug line. */
static void
debug_argv (const char *const argv[])
{
  char line[2048];
  size_t i, len = 0;
  int n;

  line[0] = '\0';
  for (i = 0; argv[i] && len < sizeof line; i++) {
    n = snprintf (line + len, sizeof line - len, "%s%s", i ? " " : "", argv[i]);
    if (n < 0)
      break;
    len += n;
  }
  report_debug ("running: %s", line);
}

/* With -v: a successful program's output, line by line. */
static void
debug_log (const char *log)
{
  CLEANUP_FREE char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  unsigned lines = 0;
  FILE *fp;

  fp = fopen (log, "re");
  if (fp == NULL)
    return;
  while ((len = getline (&line, &cap, fp)) != -1 && lines++ < 200) {
    if (len > 0 && line[len - 1] == '\n')
      line[len - 1] = '\0';
    report_debug ("  | %s", line);
  }
  fclose (fp);
}

/* In the child: apply env, redirect, exec.  Never returns. */
static void __attribute__ ((noreturn))
exec_child (const char *const argv[], const char *const env[], int log_fd)
{
  static const int signals[] = { SIGINT, SIGTERM, SIGHUP };
  sigset_t set;
  int null_fd;
  size_t i;

  /* Our handler is for us; the parent blocked these around fork. */
  for (i = 0; i < sizeof signals / sizeof signals[0]; i++)
    signal (signals[i], SIG_DFL);
  sigemptyset (&set);
  sigprocmask (SIG_SETMASK, &set, NULL);

  for (i = 0; env && env[i]; i++) {
    const char *eq = strchr (env[i], '=');

    if (eq == NULL)
      unsetenv (env[i]);
    else {
      char name[256];
      size_t len = eq - env[i];

      if (len >= sizeof name)
        _exit (126);
      memcpy (name, env[i], len);
      name[len] = '\0';
      setenv (name, eq + 1, 1);
    }
  }
  null_fd = open ("/dev/null", O_RDONLY);
  if (null_fd == -1 || dup2 (null_fd, STDIN_FILENO) == -1 ||
      dup2 (log_fd, STDOUT_FILENO) == -1 || dup2 (log_fd, STDERR_FILENO) == -1)
    _exit (126);
  execvp (argv[0], (char *const *) argv);
  /* mke2fs and e2fsck live in /usr/sbin, which a user's PATH on Debian
   * does not have.
   */
  if (errno == ENOENT && strchr (argv[0], '/') == NULL) {
    static const char *const dirs[] = { "/usr/sbin", "/sbin" };
    char path[PATH_MAX];

    for (i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
      if (snprintf (path, sizeof path, "%s/%s", dirs[i], argv[0]) <
          (int) sizeof path)
        execv (path, (char *const *) argv);
    }
    errno = ENOENT;
  }
  dprintf (STDERR_FILENO, "%s: %s\n", argv[0], strerror (errno));
  _exit (127);
}

int
run_program (const char *what, const char *const argv[],
             const char *const env[], const char *log)
{
  sigset_t block, old;
  int log_fd, status;
  pid_t pid, r;

  log_fd = open (log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (log_fd == -1) {
    report_error ("%s: open: %m", log);
    return -1;
  }
  debug_argv (argv);
  fflush (stdout);
  fflush (stderr);
  /* NB: a signal between fork and workdir_set_child would not stop
   * the child, so none is taken until the pid is recorded.
   */
  sigemptyset (&block);
  sigaddset (&block, SIGINT);
  sigaddset (&block, SIGTERM);
  sigaddset (&block, SIGHUP);
  sigprocmask (SIG_BLOCK, &block, &old);
  pid = fork ();
  if (pid == 0)
    exec_child (argv, env, log_fd);
  if (pid > 0)
    workdir_set_child (pid);
  sigprocmask (SIG_SETMASK, &old, NULL);
  close (log_fd);
  if (pid == -1) {
    report_error ("%s: fork: %m", what);
    return -1;
  }
  do
    r = waitpid (pid, &status, 0);
  while (r == -1 && errno == EINTR);
  workdir_set_child (0);
  if (r == -1) {
    report_error ("%s: waitpid: %m", what);
    return -1;
  }

  if (WIFEXITED (status) && WEXITSTATUS (status) == 0) {
    debug_log (log);
    return 0;
  }
  if (WIFEXITED (status) && WEXITSTATUS (status) == 127)
    report_error ("%s: could not run %s (is it installed?)", what, argv[0]);
  else if (WIFEXITED (status))
    report_error ("%s: %s failed with exit status %d; its output:", what,
                  argv[0], WEXITSTATUS (status));
  else
    report_error ("%s: %s was killed by signal %d; its output:", what, argv[0],
                  WTERMSIG (status));
  show_log (log);
  return -1;
}
