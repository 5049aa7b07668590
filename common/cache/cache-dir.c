/* accel: the cache directory — creation (or, for accel-cache, opening
 * an existing one), the format marker, the directory-wide lock, the
 * record of the cap and the measure of how many bytes it holds.
 *
 * The lock is an flock on DIR/lock, taken by every process before it
 * writes chunk bytes or evicts, so the cap holds across processes.  It is
 * never taken by a cache hit and never held over network I/O.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cache-internal.h"
#include "cleanup.h"
#include "clock.h"
#include "file-io.h"
#include "report.h"

/* mkdir -p with mode for the last component.  Parents get 0755 (they are
 * usually system directories like /var/cache).
 */
static int
make_dirs (const char *path, mode_t mode)
{
  CLEANUP_FREE char *copy = strdup (path);
  char *p;

  if (copy == NULL) {
    report_error ("strdup: %m");
    return -1;
  }
  for (p = copy + 1; *p; p++) {
    if (*p == '/') {
      *p = '\0';
      if (mkdir (copy, 0755) == -1 && errno != EEXIST) {
        report_error ("cache-dir: mkdir: %s: %m", copy);
        return -1;
      }
      *p = '/';
    }
  }
  if (mkdir (copy, mode) == -1 && errno != EEXIST) {
    report_error ("cache-dir: mkdir: %s: %m", copy);
    return -1;
  }
  return 0;
}

/* A new directory gets the marker; an existing one must have it (or be
 * empty), so that we never scribble over something else.
 */
static int
check_marker (const char *path)
{
  CLEANUP_FREE char *marker = NULL;
  DIR *dir;
  struct dirent *ent;
  bool empty = true;
  int fd;

  if (asprintf (&marker, "%s/%s", path, CACHE_MARKER) == -1) {
    report_error ("asprintf: %m");
    return -1;
  }
  if (access (marker, F_OK) == 0)
    return 0;

  dir = opendir (path);
  if (dir == NULL) {
    report_error ("cache-dir: %s: %m", path);
    return -1;
  }
  while ((ent = readdir (dir)) != NULL) {
    if (strcmp (ent->d_name, ".") != 0 && strcmp (ent->d_name, "..") != 0 &&
        strcmp (ent->d_name, "lost+found") != 0) {
      empty = false;
      break;
    }
  }
  closedir (dir);
  /* NB: another process may have just made it a cache: the marker is the
   * first thing it writes, so what we saw is fine if the marker is there
   * now.
   */
  if (!empty && access (marker, F_OK) == 0)
    return 0;
  if (!empty) {
    report_error ("cache-dir: %s is not empty and is not an accel cache "
                  "of format %d (no %s file): refusing to use it",
                  path, CACHE_FORMAT_VERSION, CACHE_MARKER);
    return -1;
  }

  fd = open (marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd == -1) {
    report_error ("cache-dir: %s: %m", marker);
    return -1;
  }
  close (fd);
  return 0;
}

/* Write down the cap this process will keep (DIR/cache-size), so that
 * accel-cache can show usage against it.  The last process to open the
 * directory wins: processes should agree on it anyway.  Not an error if
 * it cannot be written: it is only for people.
 */
static void
record_cap (struct cache_dir *d)
{
  CLEANUP_FREE char *path = NULL, *tmp = NULL;
  char text[32];
  int fd, len;

  if (asprintf (&path, "%s/cache-size", d->path) == -1 ||
      asprintf (&tmp, "%s/cache-size.tmp", d->path) == -1)
    return;
  len = snprintf (text, sizeof text, "%" PRIu64 "\n", d->cap);
  /* NB: under the lock, so that two processes do not share the
   * temporary file.
   */
  if (cache_dir_lock (d) == -1)
    return;
  fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd == -1 || write_full (fd, text, len) == -1 || close (fd) == -1 ||
      rename (tmp, path) == -1) {
    report_debug ("cache-dir: recording the cap in %s: %m", path);
    if (fd >= 0)
      close (fd);
    unlink (tmp);
  }
  cache_dir_unlock (d);
}

int
cache_dir_recorded_cap (struct cache_dir *d, uint64_t *cap)
{
  CLEANUP_FREE char *path = NULL;
  char text[32], *end;
  ssize_t r;
  int fd;

  if (asprintf (&path, "%s/cache-size", d->path) == -1) {
    report_error ("asprintf: %m");
    return -1;
  }
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd == -1) {
    if (errno == ENOENT)
      return 0;
    report_error ("%s: %m", path);
    return -1;
  }
  r = read (fd, text, sizeof text - 1);
  close (fd);
  if (r == -1) {
    report_error ("%s: read: %m", path);
    return -1;
  }
  text[r] = '\0';
  errno = 0;
  *cap = strtoull (text, &end, 10);
  if (r == 0 || errno != 0 || end == text || (*end != '\n' && *end != '\0')) {
    report_error ("%s: not a number of bytes", path);
    return -1;
  }
  return 1;
}

struct cache_dir *
cache_dir_open (const char *path, uint64_t cap)
{
  struct cache_dir *d;
  CLEANUP_FREE char *lock = NULL, *images = NULL;

  d = calloc (1, sizeof *d);
  if (d == NULL) {
    report_error ("calloc: %m");
    return NULL;
  }
  d->lock_fd = -1;
  pthread_mutex_init (&d->store_lock, NULL);
  d->cap = cap;
  d->path = strdup (path);
  if (d->path == NULL) {
    report_error ("strdup: %m");
    goto err;
  }

  if (make_dirs (path, 0700) == -1)
    goto err;
  if (check_marker (path) == -1)
    goto err;
  /* NB: an existing directory keeps its owner; tighten its mode if it is
   * ours, because cached data may be private.  Only after the marker
   * check: a directory we refuse must be left as it was.
   */
  if (chmod (path, 0700) == -1 && errno != EPERM) {
    report_error ("cache-dir: chmod: %s: %m", path);
    goto err;
  }

  if (asprintf (&images, "%s/images", path) == -1 ||
      asprintf (&lock, "%s/lock", path) == -1) {
    report_error ("asprintf: %m");
    goto err;
  }
  if (mkdir (images, 0700) == -1 && errno != EEXIST) {
    report_error ("cache-dir: mkdir: %s: %m", images);
    goto err;
  }
  d->lock_fd = open (lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (d->lock_fd == -1) {
    report_error ("cache-dir: %s: %m", lock);
    goto err;
  }
  record_cap (d);
  return d;

err:
  cache_dir_close (d);
  return NULL;
}

/* The format version of a directory holding another version's marker
 * (accel-cache-vN), or 0 if it has none.
 */
static int
other_version (const char *path)
{
  DIR *dir = opendir (path);
  struct dirent *ent;
  int v = 0;

  if (dir == NULL)
    return 0;
  while ((ent = readdir (dir)) != NULL && v == 0) {
    if (strncmp (ent->d_name, "accel-cache-v", 13) == 0 &&
        sscanf (ent->d_name + 13, "%d", &v) != 1)
      v = 0;
  }
  closedir (dir);
  return v;
}

struct cache_dir *
cache_dir_open_existing (const char *path)
{
  struct cache_dir *d;
  CLEANUP_FREE char *marker = NULL, *lock = NULL;
  struct stat st;
  int v;

  if (stat (path, &st) == -1) {
    report_error ("%s: %m", path);
    return NULL;
  }
  if (!S_ISDIR (st.st_mode)) {
    report_error ("%s: not a directory", path);
    return NULL;
  }
  if (asprintf (&marker, "%s/%s", path, CACHE_MARKER) == -1 ||
      asprintf (&lock, "%s/lock", path) == -1) {
    report_error ("asprintf: %m");
    return NULL;
  }
  if (access (marker, F_OK) == -1) {
    if (errno != ENOENT)
      report_error ("%s: %m", path);
    else if ((v = other_version (path)) != 0)
      report_error ("%s is an accel cache of format %d; this program "
                    "knows format %d only",
                    path, v, CACHE_FORMAT_VERSION);
    else
      report_error ("%s is not an accel cache (it has no %s file)", path,
                    CACHE_MARKER);
    return NULL;
  }

  d = calloc (1, sizeof *d);
  if (d == NULL) {
    report_error ("calloc: %m");
    return NULL;
  }
  d->lock_fd = -1;
  pthread_mutex_init (&d->store_lock, NULL);
  d->path = strdup (path);
  if (d->path == NULL) {
    report_error ("strdup: %m");
    goto err;
  }
  /* NB: flock works on a read-only descriptor too, for a user who may
   * look but not change.
   */
  d->lock_fd = open (lock, O_RDWR | O_CLOEXEC);
  if (d->lock_fd == -1 && errno == EACCES)
    d->lock_fd = open (lock, O_RDONLY | O_CLOEXEC);
  if (d->lock_fd == -1) {
    report_error ("%s: %m", lock);
    goto err;
  }
  return d;

err:
  cache_dir_close (d);
  return NULL;
}

void
cache_dir_close (struct cache_dir *d)
{
  if (d == NULL)
    return;
  if (d->lock_fd >= 0)
    close (d->lock_fd);
  pthread_mutex_destroy (&d->store_lock);
  OPENSSL_cleanse (d->key, sizeof d->key);
  EVP_MAC_free (d->tag_mac);
  free (d->path);
  free (d);
}

const char *
cache_dir_path (const struct cache_dir *d)
{
  return d->path;
}

/* Take the directory lock: the mutex for threads of this process, the
 * flock for other processes.
 */
int
cache_dir_lock (struct cache_dir *d)
{
  pthread_mutex_lock (&d->store_lock);
  while (flock (d->lock_fd, LOCK_EX) == -1) {
    if (errno != EINTR) {
      report_error ("cache-dir: flock: %s/lock: %m", d->path);
      pthread_mutex_unlock (&d->store_lock);
      return -1;
    }
  }
  return 0;
}

void
cache_dir_unlock (struct cache_dir *d)
{
  flock (d->lock_fd, LOCK_UN);
  pthread_mutex_unlock (&d->store_lock);
}

/* Bytes held: the blocks allocated to every image's data file.  This is
 * the truth on disk, so it needs no bookkeeping that a crash could
 * break.  NB: costs one fstatat per image; fine for the tens of images a
 * node holds.
 */
int
cache_dir_usage_locked (struct cache_dir *d, uint64_t *bytes)
{
  CLEANUP_FREE char *images = NULL;
  DIR *dir;
  struct dirent *ent;
  uint64_t total = 0;
  int dfd;

  if (asprintf (&images, "%s/images", d->path) == -1) {
    report_error ("asprintf: %m");
    return -1;
  }
  dir = opendir (images);
  if (dir == NULL) {
    report_error ("cache-dir: %s: %m", images);
    return -1;
  }
  dfd = dirfd (dir);
  while ((ent = readdir (dir)) != NULL) {
    char name[300];
    struct stat st;

    if (ent->d_name[0] == '.')
      continue;
    if (snprintf (name, sizeof name, "%s/data", ent->d_name) >=
        (int) sizeof name)
      continue;
    if (fstatat (dfd, name, &st, 0) == 0)
      total += (uint64_t) st.st_blocks * 512;
  }
  closedir (dir);
  *bytes = total;
  return 0;
}

int
cache_dir_usage (struct cache_dir *d, uint64_t *bytes)
{
  int r;

  if (cache_dir_lock (d) == -1)
    return -1;
  r = cache_dir_usage_locked (d, bytes);
  cache_dir_unlock (d);
  return r;
}

/* Punch a hole (keeping the file size): the bytes read back as zeros and
 * their blocks go back to the filesystem.
 */
int
cache_punch (int fd, uint64_t offset, uint64_t len)
{
  if (fallocate (fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, len) ==
      -1) {
    report_error ("cache: punching a hole: %m");
    return -1;
  }
  return 0;
}

/* Coarse clock for LRU; the map stores 32-bit wall clock seconds
 * (docs/cache-format.md), so they wrap in 2106.
 */
uint32_t
cache_now (void)
{
  return (uint32_t) now_wall_seconds ();
}
