/* accel-mkimage: publish into a local directory (a mirror, an NFS
 * export, a staging area for another uploader), and keep copies.
 *
 * Readers must never see half a file, nor a manifest beside an image
 * it does not describe, so each file is copied to a temporary name in
 * the destination directory, flushed to disk, renamed into place and
 * the directory flushed; the image first, the manifest last.  The
 * temporary file is removed if anything fails or a signal arrives
 * (workdir.c).  Holes in the image (ext4 leaves unused space as holes)
 * stay holes in the copy.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "file-io.h"
#include "report.h"
#include "mkimage.h"

#define COPY_SIZE (1024 * 1024)

/* True if len bytes at buf are all zero. */
static bool
all_zero (const char *buf, size_t len)
{
  return len == 0 || (buf[0] == 0 && memcmp (buf, buf + 1, len - 1) == 0);
}

/* Copy size bytes from in to out, seeking over zero blocks so the
 * copy is sparse.  The caller sets the final size with ftruncate.
 */
static int
copy_data (int in, int out, uint64_t size, const char *from, const char *to)
{
  CLEANUP_FREE char *buf = malloc (COPY_SIZE);
  uint64_t off = 0;
  ssize_t r;

  if (buf == NULL) {
    report_error ("%s: malloc: %m", to);
    return -1;
  }
  while (off < size) {
    size_t want = size - off < COPY_SIZE ? size - off : COPY_SIZE;

    r = pread_full (in, buf, want, off);
    if (r == -1) {
      report_error ("%s: read: %m", from);
      return -1;
    }
    if (r == 0) {
      report_error ("%s: unexpected end of file", from);
      return -1;
    }
    if (!all_zero (buf, r) && pwrite_full (out, buf, r, off) == -1) {
      report_error ("%s: write: %m", to);
      return -1;
    }
    off += r;
    progress_update (off);
  }
  return 0;
}

/* fsync the directory holding path, so a rename in it is durable. */
static int
sync_dir_of (const char *path)
{
  CLEANUP_FREE char *dir = strdup (path);
  char *slash;
  int fd, r;

  if (dir == NULL) {
    report_error ("%s: strdup: %m", path);
    return -1;
  }
  slash = strrchr (dir, '/');
  if (slash == dir)
    slash[1] = '\0';
  else if (slash)
    *slash = '\0';
  else {
    free (dir);
    dir = strdup (".");
    if (dir == NULL) {
      report_error ("%s: strdup: %m", path);
      return -1;
    }
  }
  fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd == -1) {
    report_error ("%s: open: %m", dir);
    return -1;
  }
  r = fsync (fd);
  if (r == -1)
    report_error ("%s: fsync: %m", dir);
  close (fd);
  return r;
}

int
copy_file_atomic (const char *path, const char *dest, const char *what)
{
  CLEANUP_FREE char *tmp = NULL;
  struct stat st;
  int in, out = -1;

  in = open (path, O_RDONLY | O_CLOEXEC);
  if (in == -1) {
    report_error ("%s: open: %m", path);
    return -1;
  }
  if (fstat (in, &st) == -1) {
    report_error ("%s: stat: %m", path);
    goto err;
  }
  if (asprintf (&tmp, "%s.tmp.XXXXXX", dest) == -1) {
    tmp = NULL;
    report_error ("%s: asprintf: %m", dest);
    goto err;
  }
  out = mkostemp (tmp, O_CLOEXEC);
  if (out == -1) {
    report_error ("%s: create: %m", tmp);
    goto err;
  }
  if (workdir_register (tmp) == -1) {
    unlink (tmp);
    goto err;
  }

  progress_start (what, st.st_size);
  if (copy_data (in, out, st.st_size, path, tmp) == -1) {
    progress_end ();
    goto err_unlink;
  }
  progress_end ();
  if (ftruncate (out, st.st_size) == -1) {
    report_error ("%s: ftruncate: %m", tmp);
    goto err_unlink;
  }
  if (fchmod (out, 0644) == -1) {
    report_error ("%s: chmod: %m", tmp);
    goto err_unlink;
  }
  if (fsync (out) == -1) {
    report_error ("%s: fsync: %m", tmp);
    goto err_unlink;
  }
  if (close (out) == -1) {
    out = -1;
    report_error ("%s: close: %m", tmp);
    goto err_unlink;
  }
  out = -1;
  if (rename (tmp, dest) == -1) {
    report_error ("%s: rename from %s: %m", dest, tmp);
    goto err_unlink;
  }
  workdir_forget (tmp);
  close (in);
  return sync_dir_of (dest);

err_unlink:
  unlink (tmp);
  workdir_forget (tmp);
err:
  if (out != -1)
    close (out);
  close (in);
  return -1;
}

int
publish_dir (const struct mkimage_options *o, const char *image,
             const char *manifest)
{
  CLEANUP_FREE char *img_dest = NULL, *man_dest = NULL;
  struct stat st;
  const char *sep;

  if (stat (o->dest, &st) == -1) {
    report_error ("%s: %m", o->dest);
    return -1;
  }
  if (!S_ISDIR (st.st_mode)) {
    report_error ("%s: not a directory", o->dest);
    return -1;
  }
  sep = o->dest[strlen (o->dest) - 1] == '/' ? "" : "/";
  if (asprintf (&img_dest, "%s%s%s.img", o->dest, sep, o->name) == -1) {
    img_dest = NULL;
    report_error ("%s: asprintf: %m", o->dest);
    return -1;
  }
  if (asprintf (&man_dest, "%s.manifest", img_dest) == -1) {
    man_dest = NULL;
    report_error ("%s: asprintf: %m", o->dest);
    return -1;
  }
  /* The image first: the manifest is what makes it visible. */
  if (copy_file_atomic (image, img_dest, "copying image") == -1 ||
      copy_file_atomic (manifest, man_dest, "copying manifest") == -1)
    return -1;
  report_debug ("copied to %s and %s", img_dest, man_dest);
  return 0;
}
