/* accel-index: build the manifest of an image.
 *
 *   accel-index IMAGE -o MANIFEST [--chunk-size SIZE] [--hot TRACE]... [-v]
 *   accel-index --update MANIFEST --hot TRACE... [-o OUTPUT] [-v]
 *
 * Recognises the image's file system (fstype.c), maps its files to
 * image bytes (filemap.c, for ext4 and squashfs), reads the image once
 * (scan.c) and writes the manifest (common/manifest-write.c): the file map,
 * the SHA-256 and zero flag of every chunk and the SHA-256 of the whole
 * image.  The manifest is uploaded beside the image; the plugin refuses
 * any chunk that does not match it.
 *
 * The file map comes first: it reads only metadata, so a malformed
 * image fails in seconds rather than after the full scan.  Traces
 * (--hot, hot.c) are read and checked even before that.
 *
 * --update rewrites an existing manifest with a new hot list
 * (common/manifest-copy.c), giving the same bytes as indexing the
 * image again with those traces.
 *
 * Exit status: 0 done, 1 error, 2 bad usage.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

#include "clock.h"
#include "file-io.h"
#include "filemap.h"
#include "fstype.h"
#include "hot.h"
#include "manifest.h"
#include "report.h"
#include "scan.h"

/* The Makefile may pass the real version with -DACCEL_VERSION=... */
#ifndef ACCEL_VERSION
#define ACCEL_VERSION "0.1"
#endif

#define PROGNAME "accel-index"
#define DEFAULT_CHUNK_SIZE (1024 * 1024)

/* Exit status for bad usage, as distinct from a failure (1). */
#define EXIT_USAGE 2

enum {
  HELP_OPTION = CHAR_MAX + 1,
  VERSION_OPTION,
  CHUNK_SIZE_OPTION,
  HOT_OPTION,
  UPDATE_OPTION,
};

static const char short_options[] = "o:v";
static const struct option long_options[] = {
  { "chunk-size", required_argument, NULL, CHUNK_SIZE_OPTION },
  { "help", no_argument, NULL, HELP_OPTION },
  { "hot", required_argument, NULL, HOT_OPTION },
  { "output", required_argument, NULL, 'o' },
  { "update", required_argument, NULL, UPDATE_OPTION },
  { "verbose", no_argument, NULL, 'v' },
  { "version", no_argument, NULL, VERSION_OPTION },
  { NULL, 0, NULL, 0 },
};

/* --help: everything a user needs, including what is not done yet. */
static void
usage (void)
{
  printf ("Usage: " PROGNAME " IMAGE -o MANIFEST [--chunk-size SIZE] "
          "[--hot TRACE]... [-v]\n"
          "       " PROGNAME " --update MANIFEST --hot TRACE... [-o OUTPUT] "
          "[-v]\n"
          "\n"
          "Write the manifest of a file system image (or any disk image):\n"
          "the SHA-256 and zero flag of every chunk and the SHA-256 of the\n"
          "whole image, in the sqlite format of docs/manifest-format.md.\n"
          "The manifest is written to MANIFEST.tmp and renamed to MANIFEST\n"
          "when complete.\n"
          "\n"
          "Options:\n"
          "  -o, --output MANIFEST  where to write the manifest (required,\n"
          "                         except with --update)\n"
          "  --chunk-size SIZE      chunk size, a power of two from 4K to 64M\n"
          "                         (suffix K or M; default 1M)\n"
          "  --hot TRACE            fill the manifest's hot list (the chunks\n"
          "                         the plugin prefetches first) from TRACE,\n"
          "                         written by the plugin's trace=TRACE.\n"
          "                         Repeat to merge several: chunks rank in\n"
          "                         order of first appearance, the first\n"
          "                         trace first.  All-zero chunks are left\n"
          "                         out.  Each trace must have been recorded\n"
          "                         on this image (same SHA-256, size and\n"
          "                         chunk size).\n"
          "  --update MANIFEST      instead of indexing an image, rewrite\n"
          "                         MANIFEST (or write OUTPUT) with the hot\n"
          "                         list from the --hot traces, replacing\n"
          "                         its old one.  The result is the same\n"
          "                         file that indexing the image with those\n"
          "                         traces gives.\n"
          "  -v, --verbose          print progress details, and the summary\n"
          "                         on stdout instead of stderr\n"
          "  --help                 print this help\n"
          "  --version              print the version\n"
          "\n"
          "File system: ext4 (and ext2/ext3) and squashfs images are\n"
          "recognised and recorded as such, anything else as raw.\n"
          "File map: for ext4 and squashfs, every regular file's path, size,\n"
          "mode and the image bytes that hold its data.  Holes, squashfs\n"
          "compressed blocks and fragments have no extents; ext4 files with\n"
          "inline data and encrypted files are left out.  For a complete\n"
          "squashfs map: mksquashfs SRC IMAGE -noD -no-fragments.\n"
          "\n"
          "Trace files are text: a first line \"accel-trace v1\n"
          "image-sha256=HEX image-size=N chunk-size=N\", then one chunk\n"
          "index per line in the order they were first read.\n"
          "\n"
          "Examples:\n"
          "  " PROGNAME " genome.img -o genome.img.manifest\n"
          "  nbdkit accel url=... trace=/tmp/run1.trace   # run the workload\n"
          "  " PROGNAME " --update genome.img.manifest --hot /tmp/run1.trace\n"
          "\n"
          "Exit status: 0 on success, 1 on error, 2 on bad usage.\n");
}

/* Parse --chunk-size: digits with an optional K or M suffix, a power of
 * two within the format's limits.  Exits on a bad value.
 */
static uint32_t
parse_chunk_size (const char *arg)
{
  uint32_t n;

  if (manifest_parse_chunk_size (arg, &n) == -1)
    report_usage_error ("--chunk-size: '%s' is not " MANIFEST_CHUNK_SIZE_RULE,
                        arg);
  return n;
}

/* What the scan hands each chunk to. */
struct index_state {
  struct manifest_writer *w;
  uint8_t *zero; /* zero chunks, for the hot list (NULL without --hot) */
};

/* accel_index's hand-off from the scan to the manifest writer.  NB: runs
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

/* The file map's part of the summary, for file system images. */
static void
print_filemap_summary (FILE *fp, const char *fs_type,
                       const struct filemap_stats *st, double secs)
{
  if (strcmp (fs_type, "raw") == 0)
    return;
  fprintf (fp,
           PROGNAME ": file map: %" PRIu64 " files, %" PRIu64 " extents, "
                    "%" PRIu64 " bytes mapped, %" PRIu64 " bytes not "
                    "mapped, %" PRIu64 " files left out (%.1f s)\n",
           st->nr_files, st->nr_extents, st->mapped_bytes, st->unmapped_bytes,
           st->nr_skipped, secs);
  if (strcmp (fs_type, "squashfs") == 0 && st->unmapped_bytes > 0)
    fprintf (fp,
             PROGNAME ": note: compressed blocks and fragments cannot be "
                      "mapped; build the image with mksquashfs -noD "
                      "-no-fragments for a complete file map\n");
}

/* Index image into output, with a hot list if hot is not NULL.  0, or
 * -1 (error reported).
 */
static int
accel_index (const char *image, const char *output, uint32_t chunk_size,
             const struct hot_traces *hot, bool verbose)
{
  struct index_state st = { 0 };
  struct manifest_writer *w;
  struct filemap_stats fst;
  unsigned char sha256[32];
  uint64_t size, nr_zero, nr_chunks;
  size_t nr_hot = 0;
  const char *fs_type;
  double start = now_monotonic_seconds (), secs, filemap_secs;
  int fd;

  fd = open_image (image, &size);
  if (fd == -1)
    return -1;
  if (check_output (fd, image, output) == -1 ||
      (fs_type = detect_fs_type (fd, image, size)) == NULL) {
    close (fd);
    return -1;
  }
  report_debug ("%s: %" PRIu64 " bytes, file system %s, chunk size %" PRIu32,
                image, size, fs_type, chunk_size);
  nr_chunks = size / chunk_size + (size % chunk_size != 0);
  /* The traces' geometry now, their image's SHA-256 after the scan. */
  if (hot && hot_check (hot, image, size, chunk_size, NULL) == -1) {
    close (fd);
    return -1;
  }
  if (hot && (st.zero = calloc (nr_chunks / 8 + 1, 1)) == NULL) {
    report_error ("calloc: %m");
    close (fd);
    return -1;
  }

  w = manifest_writer_create (output, size, chunk_size, fs_type);
  if (w == NULL) {
    free (st.zero);
    close (fd);
    return -1;
  }
  st.w = w;
  filemap_secs = now_monotonic_seconds ();
  if (filemap_write (image, fd, size, fs_type, w, &fst) == -1)
    goto err;
  filemap_secs = now_monotonic_seconds () - filemap_secs;
  if (scan_image (fd, image, size, chunk_size, add_chunk, &st, sha256,
                  &nr_zero) == -1)
    goto err;
  if (hot &&
      (hot_check (hot, image, size, chunk_size, sha256) == -1 ||
       add_hot (w, hot, st.zero, &nr_hot) == -1))
    goto err;
  free (st.zero);
  st.zero = NULL;
  close (fd);
  if (manifest_writer_finish (w, sha256) == -1)
    return -1;

  secs = now_monotonic_seconds () - start;
  fprintf (verbose ? stdout : stderr,
           PROGNAME ": indexed %" PRIu64 " bytes in %.1f s (%.0f MB/s), "
                    "%" PRIu64 " chunks, %" PRIu64 " zero\n",
           size, secs, secs > 0 ? size / secs / 1e6 : 0.0, nr_chunks, nr_zero);
  print_filemap_summary (verbose ? stdout : stderr, fs_type, &fst,
                         filemap_secs);
  if (hot)
    fprintf (verbose ? stdout : stderr, PROGNAME ": hot list: %zu chunks\n",
             nr_hot);
  return 0;

err:
  manifest_writer_abort (w);
  free (st.zero);
  close (fd);
  return -1;
}

/* --update: rewrite manifest (into output) with the traces' hot list.
 * 0, or -1 (error reported).
 */
static int
update_hot (const char *manifest, const char *output,
            const struct hot_traces *hot, bool verbose)
{
  struct manifest *m;
  uint64_t *list = NULL;
  size_t nr_hot = 0;
  int r = -1;

  m = manifest_open (manifest);
  if (m == NULL)
    return -1;
  if (hot_check (hot, manifest, manifest_image_size (m),
                 manifest_chunk_size (m), manifest_image_sha256 (m)) == 0 &&
      hot_merge (hot, manifest_zero, m, &list, &nr_hot) == 0)
    r = manifest_copy (m, output, list, nr_hot);
  free (list);
  manifest_close (m);
  if (r == 0)
    fprintf (verbose ? stdout : stderr,
             PROGNAME ": %s: hot list of %zu chunks written\n", output, nr_hot);
  return r;
}

/* Options first (bad usage exits 2 before any work), then one run. */
int
main (int argc, char *argv[])
{
  const char *output = NULL, *update = NULL;
  uint32_t chunk_size = DEFAULT_CHUNK_SIZE;
  bool verbose = false, chunk_size_set = false;
  char **traces;
  size_t nr_traces = 0;
  struct hot_traces *hot = NULL;
  int c, r;

  traces = calloc (argc, sizeof *traces);
  if (traces == NULL) {
    perror (PROGNAME ": calloc");
    exit (EXIT_FAILURE);
  }

  report_set_tool (PROGNAME, false);
  for (;;) {
    c = getopt_long (argc, argv, short_options, long_options, NULL);
    if (c == -1)
      break;
    switch (c) {
    case 'o':
      output = optarg;
      break;
    case 'v':
      verbose = true;
      break;
    case CHUNK_SIZE_OPTION:
      chunk_size = parse_chunk_size (optarg);
      chunk_size_set = true;
      break;
    case HOT_OPTION:
      if (*optarg == '\0')
        report_usage_error ("--hot: empty file name");
      traces[nr_traces++] = optarg;
      break;
    case UPDATE_OPTION:
      if (*optarg == '\0')
        report_usage_error ("--update: empty file name");
      update = optarg;
      break;
    case HELP_OPTION:
      usage ();
      exit (EXIT_SUCCESS);
    case VERSION_OPTION:
      printf (PROGNAME " " ACCEL_VERSION " (manifest format %d, "
                       "sqlite %s, %s)\n",
              MANIFEST_FORMAT_VERSION, sqlite3_libversion (),
              OpenSSL_version (OPENSSL_VERSION));
      exit (EXIT_SUCCESS);
    default:
      /* getopt_long has printed the reason. */
      fprintf (stderr, "Try '" PROGNAME " --help' for more information.\n");
      exit (EXIT_USAGE);
    }
  }
  if (update) {
    if (optind != argc)
      report_usage_error ("--update takes no IMAGE: it rewrites MANIFEST");
    if (nr_traces == 0)
      report_usage_error ("--update needs at least one --hot TRACE");
    if (chunk_size_set)
      report_usage_error ("--update keeps the manifest's chunk size: no "
                          "--chunk-size");
    if (output && *output == '\0')
      report_usage_error ("-o: empty file name");
    if (output == NULL)
      output = update;
  }
  else {
    if (optind != argc - 1)
      report_usage_error (optind == argc ? "no IMAGE given"
                                         : "more than one IMAGE");
    if (output == NULL || *output == '\0')
      report_usage_error ("no manifest given (-o MANIFEST)");
  }
  report_set_tool (PROGNAME, verbose);

  /* Traces first: a bad one fails before any long work. */
  if (nr_traces > 0 && (hot = hot_load (traces, nr_traces)) == NULL)
    r = -1;
  else if (update)
    r = update_hot (update, output, hot, verbose);
  else
    r = accel_index (argv[optind], output, chunk_size, hot, verbose);
  hot_free (hot);
  free (traces);
  return r == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
