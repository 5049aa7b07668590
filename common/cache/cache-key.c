/* accel: the node key file (cache-key=), what at-rest tags are keyed by.
 *
 * A tag (cache-tags.c) is only as good as the key is secret from those
 * who can write the cache directory: whoever can write the cache and
 * read the key can make damaged bytes look right.  So the file is
 * refused where that is plain: inside the cache directory, readable or
 * writable by group or others, or owned by another user (as ssh treats
 * its keys).  A missing file is made, with a random key, so that a unit
 * or manifest need only name it; that is the common case on a fresh
 * node.  Format: 64 hex digits and a newline (`openssl rand -hex 32`).
 */

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "cache.h"
#include "cleanup.h"
#include "file-io.h"
#include "hex.h"
#include "report.h"

#define KEY_HEX 64
#define KEY_LINK_TRIES 100 /* of 10 ms */

/* Whether path lies inside dir, both resolved (path's directory must
 * exist; path itself need not): 1 if so, 0 if not, -1 if either cannot
 * be resolved (error reported: then nobody can tell).
 */
static int
inside (const char *path, const char *dir)
{
  CLEANUP_FREE char *copy = strdup (path), *p = NULL, *d = NULL;
  size_t n;

  if (copy == NULL) {
    report_error ("strdup: %m");
    return -1;
  }
  p = realpath (dirname (copy), NULL);
  if (p == NULL) {
    report_error ("cache-key=%s: its directory: %m", path);
    return -1;
  }
  d = realpath (dir, NULL);
  if (d == NULL) {
    report_error ("cache-dir=%s: %m", dir);
    return -1;
  }
  n = strlen (d);
  /* NB: the key's directory, so the key is inside if that is dir or
   * below it.
   */
  return strncmp (p, d, n) == 0 &&
      (p[n] == '/' || p[n] == '\0' || (n == 1 && d[0] == '/'));
}

/* Make the key file at path, with a new random key; the file appears
 * whole or not at all (written aside, then linked in place).  0, 1 if
 * another process made it first, or -1.
 */
static int
make_key (const char *path)
{
  unsigned char key[32];
  char hex[KEY_HEX + 2], tmp[PATH_MAX];
  int fd, r = -1;

  if (snprintf (tmp, sizeof tmp, "%s.XXXXXX", path) >= (int) sizeof tmp) {
    report_error ("cache-key=%s: path too long", path);
    return -1;
  }
  if (RAND_bytes (key, sizeof key) != 1) {
    report_error ("cache-key=%s: no random bytes for a key", path);
    return -1;
  }
  hex_encode (key, sizeof key, hex);
  OPENSSL_cleanse (key, sizeof key);
  hex[KEY_HEX] = '\n';
  hex[KEY_HEX + 1] = '\0';
  fd = mkostemp (tmp, O_CLOEXEC); /* mode 0600 */
  if (fd == -1) {
    report_error ("cache-key=%s: cannot make it: %s: %m", path, tmp);
    goto out;
  }
  if (write_full (fd, hex, KEY_HEX + 1) == -1 || fsync (fd) == -1) {
    report_error ("cache-key=%s: write: %m", tmp);
    goto out;
  }
  /* NB: link, not rename: a key another process made meanwhile wins. */
  if (link (tmp, path) == 0)
    r = 0;
  else if (errno == EEXIST)
    r = 1;
  else
    report_error ("cache-key=%s: link: %m", path);

out:
  OPENSSL_cleanse (hex, sizeof hex);
  if (fd != -1) {
    close (fd);
    unlink (tmp);
  }
  return r;
}

int
cache_key_load (const char *path, const char *cache_dir, unsigned char key[32])
{
  char buf[KEY_HEX + 3];
  struct stat st;
  ssize_t n;
  int fd, r, tries;

  if (path[0] != '/') {
    report_error ("cache-key=%s: must be an absolute path", path);
    return -1;
  }
  r = inside (path, cache_dir);
  if (r == -1)
    return -1;
  if (r == 1) {
    report_error ("cache-key=%s: must not be inside cache-dir=%s: whoever "
                  "can write the cache could read it",
                  path, cache_dir);
    return -1;
  }
  for (tries = 0;; tries++) {
    fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd == -1 && errno == ENOENT) {
      r = make_key (path);
      if (r == -1)
        return -1;
      if (r == 0)
        report_debug ("cache-key=%s: made a new key", path);
      continue;
    }
    if (fd == -1 && errno == ELOOP)
      report_error ("cache-key=%s: is a symbolic link (not followed)", path);
    else if (fd == -1)
      report_error ("cache-key=%s: %m", path);
    if (fd == -1)
      return -1;
    if (fstat (fd, &st) == -1) {
      report_error ("cache-key=%s: fstat: %m", path);
      close (fd);
      return -1;
    }
    /* NB: a process making the key (make_key) links it in place before
     * it removes its temporary name, so a second name may be there for
     * a moment when two start together: look again for up to a second.
     */
    if (st.st_nlink == 1 || tries >= KEY_LINK_TRIES)
      break;
    close (fd);
    nanosleep (&(struct timespec){ .tv_nsec = 10000000 }, NULL);
  }
  /* NB: one link only: another name of it could be inside the cache. */
  if (!S_ISREG (st.st_mode) || st.st_uid != geteuid () ||
      (st.st_mode & 077) != 0 || st.st_nlink != 1) {
    report_error ("cache-key=%s: must be a regular file with one name, "
                  "owned by this user, that nobody else can read or write "
                  "(chmod 600)",
                  path);
    close (fd);
    return -1;
  }
  n = read (fd, buf, sizeof buf);
  close (fd);
  r = -1;
  if (n == -1)
    report_error ("cache-key=%s: read: %m", path);
  else if (!(n == KEY_HEX || (n == KEY_HEX + 1 && buf[KEY_HEX] == '\n')) ||
           hex_decode (buf, 32, key) == -1)
    report_error ("cache-key=%s: not a key (64 hex digits, as made by "
                  "openssl rand -hex 32)",
                  path);
  else
    r = 0;
  OPENSSL_cleanse (buf, sizeof buf);
  return r;
}
