/* accel: the indexer as a library (index.h): the steps that turn an
 * image into its manifest, shared by accel-index and accel-mkimage.
 *
 * Recognises the image's file system (fstype.c), maps its files to
 * image bytes (filemap.c, for ext4, squashfs and erofs), reads the image
 * once (scan.c) and writes the manifest (common/manifest/manifest-write.c):
 * the file map, the SHA-256 and zero flag of every chunk and the SHA-256
 * of the whole image.  The manifest is uploaded beside the image; the
 * plugin refuses any chunk that does not match it.
 *
 * The file map comes first: it reads only metadata, so a malformed
 * image fails in seconds rather than after the full scan.  Traces (the
 * hot list, hot.c) are read and checked even before that.
 *
 * index_update_hot rewrites an existing manifest with a new hot list
 * (common/manifest/manifest-copy.c), giving the same bytes as indexing
 * the image again with those traces.
 *
 * Nothing here prints except index_print_summary: errors and progress
 * go through report.h, so they carry the calling tool's name.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "file-io.h"
#include "filemap.h"
#include "fstype.h"
#include "hot.h"
#include "index.h"
#include "manifest.h"
#include "report.h"
#include "scan.h"

/* What the scan hands each chunk to. */
struct index_state {
  struct manifest_writer *w;
  uint8_t *zero; /* zero chunks, for the hot list (NULL without traces) */
};

/* index_image's hand-off from the scan to the manifest writer.  NB: runs
 * on the scan's chunk thread, the only user of the writer meanwhile.
 */
static int
add_chunk (void *opaque, uint64_t idx, const unsigned char sha256[32],
           bool zero)
{
  struct index_state *st = opaque;

  if (zero && st->zero)
    st->zero[idx / 8] |= 1 << (idx % 8);
  return manifest_writer_add_chunk (st->w, idx, sha256, zero);
}

/* hot_merge's is_zero, from the scan's bitmap. */
static bool
scanned_zero (void *opaque, uint64_t idx)
{
  const uint8_t *zero = opaque;

  return zero[idx / 8] & (1 << (idx % 8));
}

/* hot_merge's is_zero, from a manifest. */
static bool
manifest_zero (void *opaque, uint64_t idx)
{
  return manifest_chunk_is_zero (opaque, idx);
}

/* Merge the traces and add the result to w as the hot list. */
static int
add_hot (struct manifest_writer *w, const struct hot_traces *hot,
         const uint8_t *zero, size_t *nr_hot)
{
  uint64_t *list;
  size_t i;

  if (hot_merge (hot, scanned_zero, (void *) zero, &list, nr_hot) == -1)
    return -1;
  for (i = 0; i < *nr_hot; i++) {
    if (manifest_writer_add_hot (w, i, list[i]) == -1) {
      free (list);
      return -1;
    }
  }
  free (list);
  return 0;
}

/* Open the image and find its size.  Block devices are allowed: an
 * image may be built on one.  -1 (error reported) or the fd.
 */
static int
open_image (const char *image, uint64_t *size)
{
  struct stat st;
  off_t end;
  int fd;

  fd = open (image, O_RDONLY | O_CLOEXEC);
  if (fd == -1) {
    report_error ("%s: open: %m", image);
    return -1;
  }
  if (fstat (fd, &st) == -1) {
    report_error ("%s: fstat: %m", image);
    goto err;
  }
  if (!S_ISREG (st.st_mode) && !S_ISBLK (st.st_mode)) {
    report_error ("%s: not a regular file or block device", image);
    goto err;
  }
  end = lseek (fd, 0, SEEK_END);
  if (end == -1) {
    report_error ("%s: lseek: %m", image);
    goto err;
  }
  if (end == 0) {
    report_error ("%s: image is empty", image);
    goto err;
  }
  *size = end;
  return fd;

err:
  close (fd);
  return -1;
}

/* Replacing the image with its own manifest would be a bad surprise. */
static int
check_output (int fd, const char *image, const char *output)
{
  struct stat in, out;

  if (fstat (fd, &in) == 0 && stat (output, &out) == 0 &&
      in.st_dev == out.st_dev && in.st_ino == out.st_ino) {
    report_error ("%s: the manifest would overwrite the image %s", output,
                  image);
    return -1;
  }
  return 0;
}

/* The first bytes of the image, for fstype_detect. */
static const char *
detect_fs_type (int fd, const char *image, uint64_t size)
{
  unsigned char head[FSTYPE_PROBE_SIZE];
  size_t len = size < sizeof head ? size : sizeof head;
  ssize_t r = pread_full (fd, head, len, 0);

  if (r == -1) {
    report_error ("%s: read: %m", image);
    return NULL;
  }
  return fstype_detect (head, r);
}

/* Index the open image fd into output, with a hot list if hot is not
 * NULL, filling in st.  0, or -1 (error reported).
 */
static int
index_fd (int fd, const char *image, const char *output, uint32_t chunk_size,
          const struct filemap_origin *origin, const struct hot_traces *hot,
          struct index_stats *st)
{
  struct index_state is = { 0 };
  struct manifest_writer *w;
  unsigned char sha256[32];
  double start;

  if (check_output (fd, image, output) == -1 ||
      (st->fs_type = detect_fs_type (fd, image, st->image_size)) == NULL)
    return -1;
  report_debug ("%s: %" PRIu64 " bytes, file system %s, chunk size %" PRIu32,
                image, st->image_size, st->fs_type, chunk_size);
  st->nr_chunks =
      st->image_size / chunk_size + (st->image_size % chunk_size != 0);
  /* The traces' geometry now, their image's SHA-256 after the scan. */
  if (hot && hot_check (hot, image, st->image_size, chunk_size, NULL) == -1)
    return -1;
  if (hot && (is.zero = calloc (st->nr_chunks / 8 + 1, 1)) == NULL) {
    report_error ("calloc: %m");
    return -1;
  }

  w = manifest_writer_create (output, st->image_size, chunk_size, st->fs_type);
  if (w == NULL) {
    free (is.zero);
    return -1;
  }
  is.w = w;
  start = now_monotonic_seconds ();
  if (filemap_write (image, fd, st->image_size, st->fs_type, w, origin,
                     &st->filemap) == -1)
    goto err;
  st->filemap_secs = now_monotonic_seconds () - start;
  if (scan_image (fd, image, st->image_size, chunk_size, add_chunk, &is, sha256,
                  &st->nr_zero) == -1)
    goto err;
  if (hot &&
      (hot_check (hot, image, st->image_size, chunk_size, sha256) == -1 ||
       add_hot (w, hot, is.zero, &st->nr_hot) == -1))
    goto err;
  free (is.zero);
  return manifest_writer_finish (w, sha256);

err:
  manifest_writer_abort (w);
  free (is.zero);
  return -1;
}

int
index_image (const char *image, const char *manifest,
             const struct index_options *o, struct index_stats *stats)
{
  struct index_stats st = { 0 };
  struct hot_traces *hot = NULL;
  double start;
  int fd, r;

  /* Traces first: a bad one fails before any long work. */
  if (o->nr_traces > 0 && (hot = hot_load (o->traces, o->nr_traces)) == NULL)
    return -1;
  start = now_monotonic_seconds ();
  fd = open_image (image, &st.image_size);
  if (fd == -1) {
    hot_free (hot);
    return -1;
  }
  r = index_fd (fd, image, manifest, o->chunk_size, &o->origin, hot, &st);
  close (fd);
  hot_free (hot);
  if (r == -1)
    return -1;

  st.secs = now_monotonic_seconds () - start;
  st.has_hot = o->nr_traces > 0;
  if (stats)
    *stats = st;
  return 0;
}

int
index_update_hot (const char *manifest, const char *output,
                  const struct index_options *o, size_t *nr_hot)
{
  struct hot_traces *hot;
  struct manifest *m;
  uint64_t *list = NULL;
  size_t n = 0;
  int r = -1;

  if (o->nr_traces == 0) {
    report_error ("%s: no trace for the hot list", manifest);
    return -1;
  }
  hot = hot_load (o->traces, o->nr_traces);
  if (hot == NULL)
    return -1;
  m = manifest_open (manifest);
  if (m == NULL) {
    hot_free (hot);
    return -1;
  }
  if (hot_check (hot, manifest, manifest_image_size (m),
                 manifest_chunk_size (m), manifest_image_sha256 (m)) == 0 &&
      hot_merge (hot, manifest_zero, m, &list, &n) == 0)
    r = manifest_copy (m, output, list, n);
  free (list);
  manifest_close (m);
  hot_free (hot);
  if (r == 0 && nr_hot)
    *nr_hot = n;
  return r;
}

void
index_print_summary (FILE *fp, const char *progname,
                     const struct index_stats *st)
{
  const struct filemap_stats *f = &st->filemap;
  double secs = st->secs;

  fprintf (fp,
           "%s: indexed %" PRIu64 " bytes in %.1f s (%.0f MB/s), "
           "%" PRIu64 " chunks, %" PRIu64 " zero\n",
           progname, st->image_size, secs,
           secs > 0 ? st->image_size / secs / 1e6 : 0.0, st->nr_chunks,
           st->nr_zero);
  if (strcmp (st->fs_type, "raw") != 0) {
    fprintf (fp,
             "%s: file map: %" PRIu64 " files, %" PRIu64 " extents, "
             "%" PRIu64 " bytes mapped, %" PRIu64 " bytes not "
             "mapped, %" PRIu64 " files left out (%.1f s)\n",
             progname, f->nr_files, f->nr_extents, f->mapped_bytes,
             f->unmapped_bytes, f->nr_skipped, st->filemap_secs);
    if (strcmp (st->fs_type, "squashfs") == 0 && f->unmapped_bytes > 0)
      fprintf (fp,
               "%s: note: compressed blocks and fragments cannot be "
               "mapped; build the image with mksquashfs -noD "
               "-no-fragments for a complete file map\n",
               progname);
    if (strcmp (st->fs_type, "erofs") == 0 && f->unmapped_bytes > 0)
      fprintf (fp,
               "%s: note: compressed files cannot be mapped; build the "
               "image with mkfs.erofs without -z for a complete file "
               "map\n",
               progname);
  }
  if (st->has_hot)
    fprintf (fp, "%s: hot list: %zu chunks\n", progname, st->nr_hot);
}
