/* accel-mkimage: the private temporary directory, removed on every
 * exit path.
 *
 * The image, its manifest, mke2fs's configuration and the logs of
 * child programs are made in one directory created with mkdtemp in
 * $TMPDIR.  It is removed by an atexit handler on every normal exit
 * (success or error), and by a signal handler on SIGINT, SIGTERM and
 * SIGHUP, which first stops the running child program, if any.
 * Temporary files outside it (the half-copied image in a destination
 * directory) are registered here too.
 *
 * NB: the signal handler may only use async-signal-safe calls, so
 * every path it removes is built in advance in a fixed table, and it
 * empties the directory with unlink and rmdir only (no readdir):
 * nothing is written there but the files registered here, the
 * indexer's MANIFEST.tmp included (mkimage.c registers it).
 */

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "report.h"
#include "mkimage.h"

/* Files to remove: at most MAX_FILES, in a fixed table so the signal
 * handler needs no allocation.  Single-threaded: the table is only
 * changed by the main program, with signals blocked.
 */
#define MAX_FILES 24
static char files[MAX_FILES][PATH_MAX];
static volatile sig_atomic_t nr_files;
static char dir[PATH_MAX];
static volatile sig_atomic_t have_dir;
static volatile pid_t child_pid;

/* Remove everything registered and the directory.  Async-signal-safe. */
static void
remove_all (void)
{
  int i;

  for (i = 0; i < nr_files; i++)
    if (files[i][0])
      unlink (files[i]);
  if (have_dir)
    rmdir (dir);
}

/* On exit: also anything else a child left in the directory. */
static void
workdir_cleanup (void)
{
  DIR *d;
  struct dirent *e;
  char path[PATH_MAX];

  remove_all ();
  if (!have_dir)
    return;
  d = opendir (dir);
  if (d != NULL) {
    while ((e = readdir (d)) != NULL) {
      if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
        continue;
      if (snprintf (path, sizeof path, "%s/%s", dir, e->d_name) <
          (int) sizeof path)
        unlink (path);
    }
    closedir (d);
  }
  if (rmdir (dir) == -1 && errno != ENOENT)
    report_error ("%s: rmdir: %m", dir);
  have_dir = 0;
}

/* Stop the child, remove our files, then die of the same signal. */
static void
handle_signal (int sig)
{
  if (child_pid > 0)
    kill (child_pid, SIGTERM);
  remove_all ();
  signal (sig, SIG_DFL);
  raise (sig);
}

int
workdir_create (void)
{
  static const int signals[] = { SIGINT, SIGTERM, SIGHUP };
  const char *tmpdir = getenv ("TMPDIR");
  struct sigaction sa;
  size_t i;

  if (tmpdir == NULL || *tmpdir == '\0')
    tmpdir = "/tmp";
  if (snprintf (dir, sizeof dir, "%s/accel-mkimage.XXXXXX", tmpdir) >=
      (int) sizeof dir) {
    report_error ("TMPDIR: %s: path too long", tmpdir);
    return -1;
  }
  if (mkdtemp (dir) == NULL) {
    report_error ("%s: mkdtemp: %m", dir);
    return -1;
  }
  have_dir = 1;
  if (atexit (workdir_cleanup) != 0) {
    report_error ("atexit failed");
    workdir_cleanup ();
    return -1;
  }
  memset (&sa, 0, sizeof sa);
  sa.sa_handler = handle_signal;
  sigemptyset (&sa.sa_mask);
  for (i = 0; i < sizeof signals / sizeof signals[0]; i++)
    sigaction (signals[i], &sa, NULL);
  report_debug ("work directory %s", dir);
  return 0;
}

/* Add path to the table with signals blocked (the handler reads it). */
static const char *
add_file (const char *path)
{
  sigset_t all, old;
  int i;

  sigfillset (&all);
  sigprocmask (SIG_BLOCK, &all, &old);
  for (i = 0; i < nr_files; i++)
    if (files[i][0] == '\0' || strcmp (files[i], path) == 0)
      break;
  if (i == MAX_FILES || strlen (path) >= PATH_MAX) {
    sigprocmask (SIG_SETMASK, &old, NULL);
    return NULL;
  }
  memcpy (files[i], path, strlen (path) + 1);
  if (i == nr_files)
    nr_files = i + 1;
  sigprocmask (SIG_SETMASK, &old, NULL);
  return files[i];
}

const char *
workdir_dir (void)
{
  return dir;
}

const char *
workdir_file (const char *name)
{
  char path[PATH_MAX];
  const char *p;

  if (snprintf (path, sizeof path, "%s/%s", dir, name) >= (int) sizeof path)
    p = NULL;
  else
    p = add_file (path);
  if (p == NULL) {
    /* Only happens with a TMPDIR path near PATH_MAX or a bug. */
    report_error ("%s/%s: cannot register temporary file", dir, name);
    exit (EXIT_FAILURE);
  }
  return p;
}

int
workdir_register (const char *path)
{
  if (add_file (path) == NULL) {
    report_error ("%s: cannot register temporary file", path);
    return -1;
  }
  return 0;
}

void
workdir_forget (const char *path)
{
  sigset_t all, old;
  int i;

  sigfillset (&all);
  sigprocmask (SIG_BLOCK, &all, &old);
  for (i = 0; i < nr_files; i++)
    if (strcmp (files[i], path) == 0)
      files[i][0] = '\0';
  sigprocmask (SIG_SETMASK, &old, NULL);
}

void
workdir_set_child (pid_t pid)
{
  child_pid = pid;
}
