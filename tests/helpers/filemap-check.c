/* filemap-check: check a manifest's file map against the source tree
 * the image was built from (for tests/test-filemap.sh).
 *
 *   filemap-check MANIFEST IMAGE SRCDIR [--partial] [--missing-ok]
 *   filemap-check MANIFEST IMAGE --open-only
 *
 * The manifest is opened with manifest_open (so every rule of the file
 * map is checked on a real manifest too).  Then for every regular file
 * under SRCDIR, its row is looked up with manifest_file_extents: size
 * and mode must match, every extent's bytes in IMAGE must equal the
 * file's bytes at its offset, and every byte not covered by an extent
 * must be zero (a hole), unless --partial (compressed squashfs, where
 * gaps may be compressed data).  A file without a row is an error
 * unless --missing-ok (ext4 inline data).  Every row, listed with
 * manifest_foreach_file in path order, must be a regular file of
 * SRCDIR.  The last line on stdout is
 *   "files N, rows N, extents N, mapped N, missing N, without-extents N"
 * with the number of source files, of rows, extents, mapped bytes,
 * source files without a row, and rows of non-empty files without any
 * extent.  --open-only (for manifests of damaged images) only opens the
 * manifest and looks up every row's extents from inside the
 * manifest_foreach_file callback.  Exit status 0 if every check passed,
 * 1 otherwise.
 */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest.h"
#include "report.h"

static struct manifest *m;
static int image_fd;
static const char *src;
static size_t src_len;
static bool partial, missing_ok, open_only;
static uint64_t nr_files, nr_rows, nr_extents, mapped, nr_missing;
static uint64_t nr_without_extents, nr_failed;

/* Report a failed check (and go on, to see all of them). */
static void __attribute__ ((format (printf, 1, 2))) failed (const char *fs, ...)
{
  va_list args;

  fprintf (stderr, "filemap-check: ");
  va_start (args, fs);
  vfprintf (stderr, fs, args);
  va_end (args);
  fprintf (stderr, "\n");
  nr_failed++;
}

/* Read exactly len bytes at offset of fd into buf, or exit. */
static void
read_fully (int fd, void *buf, size_t len, uint64_t offset, const char *what)
{
  size_t done = 0;

  while (done < len) {
    ssize_t r = pread (fd, (char *) buf + done, len - done, offset + done);

    if (r <= 0) {
      fprintf (stderr, "filemap-check: %s: read: %s\n", what,
               r == 0 ? "unexpected end of file" : strerror (errno));
      exit (EXIT_FAILURE);
    }
    done += r;
  }
}

/* Check one source file against its row and extents. */
static void
check_file (const char *fpath, const struct stat *st)
{
  const char *path = fpath + src_len; /* "/a/b" */
  struct manifest_extent *ext = NULL;
  struct manifest_file f;
  unsigned char *data, *covered, *buf;
  size_t n, i;
  uint64_t j;
  int fd, r;

  nr_files++;
  r = manifest_file_extents (m, path, &f, &ext, &n);
  if (r == -1) {
    failed ("%s: lookup failed", path);
    return;
  }
  if (r == 1) {
    nr_missing++;
    if (!missing_ok)
      failed ("%s: no row in the manifest", path);
    return;
  }
  if (f.path != path)
    failed ("%s: f.path does not point to the argument", path);
  if (f.size != (uint64_t) st->st_size)
    failed ("%s: size %" PRIu64 ", source has %jd", path, f.size,
            (intmax_t) st->st_size);
  if (f.mode != st->st_mode)
    failed ("%s: mode 0%o, source has 0%o", path, f.mode, st->st_mode);
  if (n == 0 && st->st_size > 0)
    nr_without_extents++;

  data = malloc (st->st_size + 1);
  covered = calloc (st->st_size + 1, 1);
  if (data == NULL || covered == NULL) {
    perror ("malloc");
    exit (EXIT_FAILURE);
  }
  fd = open (fpath, O_RDONLY);
  if (fd == -1) {
    perror (fpath);
    exit (EXIT_FAILURE);
  }
  read_fully (fd, data, st->st_size, 0, fpath);
  close (fd);

  for (i = 0; i < n; ++i) {
    const struct manifest_extent *e = &ext[i];

    nr_extents++;
    mapped += e->length;
    if (e->file_offset + e->length > (uint64_t) st->st_size) {
      failed ("%s: extent %zu ends beyond the file", path, i);
      continue;
    }
    buf = malloc (e->length);
    if (buf == NULL) {
      perror ("malloc");
      exit (EXIT_FAILURE);
    }
    read_fully (image_fd, buf, e->length, e->image_offset, "image");
    if (memcmp (buf, data + e->file_offset, e->length) != 0)
      failed ("%s: extent %zu (file offset %" PRIu64 ", image offset %" PRIu64
              ", length %" PRIu64 ") differs from the file",
              path, i, e->file_offset, e->image_offset, e->length);
    memset (covered + e->file_offset, 1, e->length);
    free (buf);
    if (i > 0 && ext[i - 1].file_offset + ext[i - 1].length > e->file_offset)
      failed ("%s: extents %zu and %zu overlap or are out of order", path,
              i - 1, i);
    /* The indexer merges runs contiguous in both file and image. */
    if (i > 0 && ext[i - 1].file_offset + ext[i - 1].length == e->file_offset &&
        ext[i - 1].image_offset + ext[i - 1].length == e->image_offset)
      failed ("%s: extents %zu and %zu were not merged", path, i - 1, i);
  }
  if (!partial)
    for (j = 0; j < (uint64_t) st->st_size; ++j)
      if (!covered[j] && data[j] != 0) {
        failed ("%s: byte %" PRIu64 " is data but has no extent", path, j);
        break;
      }
  free (ext);
  free (data);
  free (covered);
}

/* nftw callback: regular files only (symlinks are not followed). */
static int
visit (const char *fpath, const struct stat *st, int type, struct FTW *ftw)
{
  (void) ftw;
  if (type == FTW_F && S_ISREG (st->st_mode))
    check_file (fpath, st);
  return 0;
}

/* --open-only: the row's extents, looked up while the walk goes on,
 * must agree with the row and lie inside the image.
 */
static void
lookup_row (const struct manifest_file *f)
{
  struct manifest_extent *ext = NULL;
  struct manifest_file g;
  size_t n, i;

  if (manifest_file_extents (m, f->path, &g, &ext, &n) != 0 || g.id != f->id ||
      g.size != f->size || g.mode != f->mode || g.path != f->path) {
    failed ("%s: lookup does not match the row", f->path);
    free (ext);
    return;
  }
  for (i = 0; i < n; ++i) {
    nr_extents++;
    mapped += ext[i].length;
    if (ext[i].image_offset + ext[i].length > manifest_image_size (m) ||
        ext[i].file_offset + ext[i].length > f->size)
      failed ("%s: extent %zu is outside the image or the file", f->path, i);
  }
  free (ext);
}

/* Every row must be a regular file of the source, in path order. */
static int
check_row (void *opaque, const struct manifest_file *f)
{
  static char prev[MANIFEST_MAX_PATH_LEN + 1];
  char full[8192];
  struct stat st;

  (void) opaque;
  nr_rows++;
  if (open_only) {
    lookup_row (f);
    return 0;
  }
  if (nr_rows > 1 && strcmp (prev, f->path) >= 0)
    failed ("%s: rows not in path order (after %s)", f->path, prev);
  snprintf (prev, sizeof prev, "%s", f->path);
  snprintf (full, sizeof full, "%s%s", src, f->path);
  if (lstat (full, &st) == -1 || !S_ISREG (st.st_mode))
    failed ("%s: row for something that is not a regular file of the "
            "source",
            f->path);
  return 0;
}

/* Options, the source walk, then the rows walk and the totals. */
int
main (int argc, char *argv[])
{
  int i;

  if (argc < 4) {
    fprintf (stderr,
             "usage: filemap-check MANIFEST IMAGE SRCDIR "
             "[--partial] [--missing-ok]\n"
             "       filemap-check MANIFEST IMAGE --open-only\n");
    exit (2);
  }
  for (i = 3; i < argc; ++i) {
    if (i == 3 && strcmp (argv[i], "--open-only") != 0)
      continue;
    if (strcmp (argv[i], "--open-only") == 0)
      open_only = true;
    else if (strcmp (argv[i], "--partial") == 0)
      partial = true;
    else if (strcmp (argv[i], "--missing-ok") == 0)
      missing_ok = true;
    else {
      fprintf (stderr, "filemap-check: unknown option %s\n", argv[i]);
      exit (2);
    }
  }
  report_set_tool ("filemap-check", false);
  m = manifest_open (argv[1]);
  if (m == NULL)
    exit (EXIT_FAILURE);
  image_fd = open (argv[2], O_RDONLY);
  if (image_fd == -1) {
    perror (argv[2]);
    exit (EXIT_FAILURE);
  }
  src = argv[3];
  src_len = strlen (src);
  while (src_len > 1 && src[src_len - 1] == '/')
    src_len--;

  if (!open_only && nftw (src, visit, 64, FTW_PHYS) == -1) {
    perror (src);
    exit (EXIT_FAILURE);
  }
  if (manifest_foreach_file (m, check_row, NULL) == -1)
    failed ("manifest_foreach_file failed");
  if (manifest_nr_files (m) != nr_rows)
    failed ("manifest_nr_files says %" PRIu64 ", foreach saw %" PRIu64,
            manifest_nr_files (m), nr_rows);
  if (!open_only && nr_rows + nr_missing != nr_files)
    failed ("%" PRIu64 " rows and %" PRIu64 " missing, but %" PRIu64
            " source files",
            nr_rows, nr_missing, nr_files);
  printf ("files %" PRIu64 ", rows %" PRIu64 ", extents %" PRIu64
          ", mapped %" PRIu64 ", missing %" PRIu64 ", without-extents %" PRIu64
          "\n",
          nr_files, nr_rows, nr_extents, mapped, nr_missing,
          nr_without_extents);
  manifest_close (m);
  close (image_fd);
  return nr_failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
