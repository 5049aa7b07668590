/* accel-prefetch: which export, which manifest, which paths.
 *
 * accel-mount keeps a state directory per mounted dataset,
 * RUN/NAME/state (RUN is $ACCEL_RUN_DIR, default /run/accel), a file of
 * KEY=VALUE lines in which the last value of a key wins.  It records
 * mountpoint=, socket= (nbdkit's Unix socket) and manifest= (the local
 * copy of the image's manifest, which the plugin names in its export
 * description).  Finding a mount is reading every state file and
 * picking the one whose mountpoint is MOUNT.
 */

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "prefetch.h"
#include "report.h"

/* State files are small; anything larger is not one. */
#define MAX_STATE 65536

/* The last value of key in a state file's text, malloc'd, or NULL. */
static char *
state_get (const char *text, const char *key)
{
  size_t klen = strlen (key);
  const char *line, *found = NULL;
  size_t flen = 0;

  for (line = text; *line;) {
    const char *end = strchrnul (line, '\n');

    if ((size_t) (end - line) > klen && strncmp (line, key, klen) == 0 &&
        line[klen] == '=') {
      found = line + klen + 1;
      flen = end - found;
    }
    line = *end ? end + 1 : end;
  }
  return found ? strndup (found, flen) : NULL;
}

/* A state file's text (NUL-terminated), or NULL. */
static char *
read_state (const char *path)
{
  char *text;
  size_t n;
  FILE *fp = fopen (path, "re");

  if (fp == NULL)
    return NULL;
  text = malloc (MAX_STATE + 1);
  if (text == NULL) {
    fclose (fp);
    return NULL;
  }
  n = fread (text, 1, MAX_STATE, fp);
  fclose (fp);
  text[n] = '\0';
  return text;
}

int
target_from_mount (const char *mountpoint, struct target *t)
{
  const char *run = getenv ("ACCEL_RUN_DIR");
  CLEANUP_FREE char *real = NULL;
  struct dirent *d;
  DIR *dir;

  if (run == NULL || *run == '\0')
    run = "/run/accel";
  real = realpath (mountpoint, NULL);
  if (real == NULL) {
    report_error ("%s: %m", mountpoint);
    return -1;
  }
  dir = opendir (run);
  if (dir == NULL) {
    report_error ("%s: %m (is anything mounted with accel-mount? "
                  "ACCEL_RUN_DIR names another run directory)",
                  run);
    return -1;
  }
  while ((d = readdir (dir)) != NULL) {
    CLEANUP_FREE char *path = NULL, *text = NULL, *mnt = NULL;
    CLEANUP_FREE char *mounted = NULL;

    if (d->d_name[0] == '.')
      continue;
    if (asprintf (&path, "%s/%s/state", run, d->d_name) == -1) {
      path = NULL;
      report_error ("asprintf: %m");
      break;
    }
    text = read_state (path);
    if (text == NULL)
      continue;
    /* Only a mount that completed ("mounted" is its last step). */
    mnt = state_get (text, "mountpoint");
    mounted = state_get (text, "mounted");
    if (mnt == NULL || strcmp (mnt, real) != 0 || mounted == NULL ||
        *mounted == '\0')
      continue;
    t->socket = state_get (text, "socket");
    t->manifest = state_get (text, "manifest");
    if (t->manifest && *t->manifest == '\0') {
      free (t->manifest);
      t->manifest = NULL;
    }
    t->mountpoint = real;
    real = NULL;
    closedir (dir);
    if (t->socket == NULL || *t->socket == '\0') {
      report_error ("%s: no socket recorded in %s", mountpoint, path);
      return -1;
    }
    report_debug ("%s: socket %s, manifest %s (from %s)", t->mountpoint,
                  t->socket, t->manifest ? t->manifest : "(ask the plugin)",
                  path);
    return 0;
  }
  closedir (dir);
  report_error ("%s: not mounted by accel-mount (no state in %s names it)",
                mountpoint, run);
  return -1;
}

/* Append component [s, s+len) to the normalised path out (at *n). */
static int
push (char *out, size_t *n, const char *s, size_t len, const char *arg)
{
  if (len == 0 || (len == 1 && s[0] == '.'))
    return 0;
  if (len == 2 && s[0] == '.' && s[1] == '.') {
    if (*n == 0) {
      report_error ("%s: goes above the root of the image", arg);
      return -1;
    }
    while (*n > 0 && out[*n - 1] != '/')
      (*n)--;
    (*n)--; /* the '/' */
    return 0;
  }
  if (*n + 1 + len > MANIFEST_MAX_PATH_LEN) {
    report_error ("%s: path too long", arg);
    return -1;
  }
  out[(*n)++] = '/';
  memcpy (out + *n, s, len);
  *n += len;
  return 0;
}

/* The rest of the absolute path if it is mountpoint (resolved: "/"
 * only if mounted on the root) or below it, else NULL.
 */
static const char *
under_mount (const char *mountpoint, const char *path)
{
  size_t mlen = strlen (mountpoint);

  if (strcmp (mountpoint, "/") == 0)
    return path;
  if (strncmp (path, mountpoint, mlen) != 0 ||
      (path[mlen] != '/' && path[mlen] != '\0'))
    return NULL;
  return path + mlen;
}

char *
target_image_path (const struct target *t, const char *arg)
{
  char out[MANIFEST_MAX_PATH_LEN + 2];
  CLEANUP_FREE char *real = NULL;
  const char *p = arg;
  size_t n = 0;

  if (*arg == '\0') {
    report_error ("an empty PATH");
    return NULL;
  }
  if (arg[0] == '/' && t->mountpoint) {
    /* As written, or else resolved: a path through a symbolic link to
     * the mount (accel-update's "current") names a file in it too.
     */
    p = under_mount (t->mountpoint, arg);
    if (p == NULL) {
      real = realpath (arg, NULL);
      if (real)
        p = under_mount (t->mountpoint, real);
    }
    if (p == NULL) {
      report_error ("%s: not under the mount %s", arg, t->mountpoint);
      return NULL;
    }
  }
  while (*p) {
    const char *end = strchrnul (p, '/');

    if (push (out, &n, p, end - p, arg) == -1)
      return NULL;
    p = *end ? end + 1 : end;
  }
  if (n == 0)
    out[n++] = '/';
  out[n] = '\0';
  return strdup (out);
}

void
target_free (struct target *t)
{
  free (t->socket);
  free (t->manifest);
  free (t->mountpoint);
}
