/* accel-inspect: bring a remote manifest (s3://, http://, https://) into
 * a temporary file.
 *
 * The manifest reader (common/manifest/manifest-read.c) opens a local file with
 * sqlite, so a manifest named by URL is downloaded whole through the
 * S3 client first, refusing anything larger than a manifest may be.
 * The file goes into a new directory of its own (mode 0700, under
 * $TMPDIR or /tmp), named after the object, so that the reader's
 * messages name something recognisable.  The caller removes it as soon
 * as the manifest is open; a signal during the download removes it too.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "inspect.h"
#include "manifest.h"
#include "report.h"
#include "s3.h"

/* At most this many bytes of the object's name go into the file name. */
#define MAX_BASENAME 100

/* The download: its directory and file, owned here.  The signal handler
 * reads them, so each is set as soon as its string exists (before the
 * directory or file does) and cleared before it is freed; only the main
 * thread changes them.
 */
static char *volatile tmp_dir, *volatile tmp_file;

/* By prefix alone: s3_object_open parses the rest. */
bool
remote_is_url (const char *arg)
{
  return strncmp (arg, "s3://", 5) == 0 || strncmp (arg, "http://", 7) == 0 ||
      strncmp (arg, "https://", 8) == 0;
}

/* Interrupted mid-download: leave nothing behind, then die of the same
 * signal.  Only async-signal-safe calls here.
 */
static void
remove_on_signal (int sig)
{
  if (tmp_file)
    unlink (tmp_file);
  if (tmp_dir)
    rmdir (tmp_dir);
  signal (sig, SIG_DFL);
  raise (sig);
}

/* The last component of the object's name, reduced to characters that
 * are safe in a file name and in a message; "manifest" if none are
 * left.  The result is malloc'd.
 */
static char *
local_name (const char *object_name)
{
  const char *base = strrchr (object_name, '/');
  char *out;
  size_t i, n;

  base = base ? base + 1 : object_name;
  n = strlen (base);
  if (n > MAX_BASENAME)
    n = MAX_BASENAME;
  out = malloc (n + sizeof "manifest");
  if (out == NULL)
    return NULL;
  for (i = 0; i < n; i++) {
    char c = base[i];

    out[i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_'
        ? c
        : '_';
  }
  out[n] = '\0';
  /* NB: "", "." and ".." (and any dot file) are not good names. */
  if (n == 0 || out[0] == '.')
    memcpy (out, "manifest", sizeof "manifest");
  return out;
}

/* Create the private directory and the empty file in it, setting
 * tmp_dir and tmp_file.  -1 (error reported, nothing left) or the fd.
 */
static int
create_local (const char *object_name)
{
  const char *tmpdir = getenv ("TMPDIR");
  CLEANUP_FREE char *base = NULL;
  char *dir, *file;
  int fd;

  if (tmpdir == NULL || *tmpdir == '\0')
    tmpdir = "/tmp";
  base = local_name (object_name);
  if (base == NULL || asprintf (&dir, "%s/" PROGNAME ".XXXXXX", tmpdir) == -1) {
    report_error ("%s: malloc: %m", object_name);
    return -1;
  }
  tmp_dir = dir;
  if (mkdtemp (dir) == NULL) {
    report_error ("%s: mkdtemp: %m", dir);
    goto err;
  }
  if (asprintf (&file, "%s/%s", dir, base) == -1) {
    report_error ("%s: malloc: %m", object_name);
    goto err;
  }
  tmp_file = file;
  fd = open (file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd == -1) {
    report_error ("%s: create: %m", file);
    goto err;
  }
  return fd;

err:
  remote_remove ();
  return -1;
}

/* One client with one connection: a manifest is a single GET. */
int
remote_fetch (const char *url, const char *endpoint, const char **path)
{
  struct s3_config cfg;
  struct s3_client *c;
  struct s3_object *o = NULL;
  int fd = -1, ret = -1;

  signal (SIGINT, remove_on_signal);
  signal (SIGTERM, remove_on_signal);
  signal (SIGHUP, remove_on_signal);

  s3_config_init (&cfg);
  cfg.endpoint = endpoint;
  cfg.connections = 1;
  c = s3_client_new (&cfg);
  if (c == NULL)
    return -1;
  o = s3_object_open (c, url, false);
  if (o == NULL)
    goto out;
  report_debug ("%s: %" PRIu64 " bytes, ETag %s", s3_object_name (o),
                s3_object_size (o), s3_object_etag (o));
  fd = create_local (s3_object_name (o));
  if (fd == -1)
    goto out;
  if (s3_object_get_to_fd (o, fd, MANIFEST_MAX_FILE_SIZE) == -1)
    goto out;
  /* NB: close reports late write errors (a full disk, say). */
  ret = close (fd);
  fd = -1;
  if (ret == -1) {
    report_error ("%s: close: %m", tmp_file);
    goto out;
  }
  *path = tmp_file;

out:
  if (fd != -1)
    close (fd);
  if (ret == -1)
    remote_remove ();
  if (o)
    s3_object_close (o);
  s3_client_free (c);
  return ret;
}

/* NB: called on error paths too, with either or both still unset. */
void
remote_remove (void)
{
  char *file = tmp_file, *dir = tmp_dir;

  tmp_file = NULL;
  tmp_dir = NULL;
  if (file)
    unlink (file);
  if (dir)
    rmdir (dir);
  free (file);
  free (dir);
}
