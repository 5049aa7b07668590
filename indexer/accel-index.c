/* accel-index: build the manifest of an image.
 *
 *   accel-index IMAGE -o MANIFEST [--chunk-size SIZE] [-v]
 *
 * Recognises the image's file system (fstype.c), maps its files to
 * image bytes (filemap.c, for ext4 and squashfs), reads the image once
 * (scan.c) and writes the manifest (common/manifest-write.c): the file map,
 * the SHA-256 and zero flag of every chunk and the SHA-256 of the whole
 * image.  The manifest is uploaded beside the image; the plugin refuses
 * any chunk that does not match it.
 *
 * The file map comes first: it reads only metadata, so a malformed
 * image fails in seconds rather than after the full scan.
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

#include "filemap.h"
#include "fstype.h"
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
};

static const char short_options[] = "o:v";
static const struct option long_options[] = {
  { "chunk-size", required_argument, NULL, CHUNK_SIZE_OPTION },
  { "help", no_argument, NULL, HELP_OPTION },
  { "output", required_argument, NULL, 'o' },
  { "verbose", no_argument, NULL, 'v' },
  { "version", no_argument, NULL, VERSION_OPTION },
  { NULL, 0, NULL, 0 },
};

/* --help: everything a user needs, including what is not done yet. */
static void
usage (void)
{
  printf ("Usage: " PROGNAME " IMAGE -o MANIFEST [--chunk-size SIZE] [-v]\n"
          "\n"
          "Write the manifest of a file system image (or any disk image):\n"
          "the SHA-256 and zero flag of every chunk and the SHA-256 of the\n"
          "whole image, in the sqlite format of docs/manifest-format.md.\n"
          "The manifest is written to MANIFEST.tmp and renamed to MANIFEST\n"
          "when complete.\n"
          "\n"
          "Options:\n"
          "  -o, --output MANIFEST  where to write the manifest (required)\n"
          "  --chunk-size SIZE      chunk size, a power of two from 4K to 64M\n"
          "                         (suffix K or M; default 1M)\n"
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
          "Exit status: 0 on success, 1 on error, 2 on bad usage.\n");
}

/* Bad usage: say why and where help is, then exit 2. */
static void __attribute__ ((noreturn, format (printf, 1, 2)))
usage_error (const char *fs, ...)
{
  va_list args;

  fprintf (stderr, PROGNAME ": ");
  va_start (args, fs);
  vfprintf (stderr, fs, args);
  va_end (args);
  fprintf (stderr, "\nTry '" PROGNAME " --help' for more information.\n");
  exit (EXIT_USAGE);
}

/* Parse --chunk-size: digits with an optional K or M suffix, a power of
 * two within the format's limits.  Exits on a bad value.
 */
static uint32_t
parse_chunk_size (const char *arg)
{
  uint32_t n;

  if (manifest_parse_chunk_size (arg, &n) == -1)
    usage_error ("--chunk-size: '%s' is not a power of two from 4K to 64M",
                 arg);
  return n;
}

/* accel_index's hand-off from the scan to the manifest writer.  NB: runs
 * on the scan's chunk thread, the only user of the writer meanwhile.
 */
static int
add_chunk (void *opaque, uint64_t idx, const unsigned char sha256[32],
           bool zero)
{
  return manifest_writer_add_chunk (opaque, idx, sha256, zero);
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
  size_t done = 0;

  while (done < len) {
    ssize_t r = pread (fd, head + done, len - done, done);

    if (r == -1 && errno == EINTR)
      continue;
    if (r == -1) {
      report_error ("%s: read: %m", image);
      return NULL;
    }
    if (r == 0)
      break;
    done += r;
  }
  return fstype_detect (head, done);
}

/* Seconds since an arbitrary point, for the summary. */
static double
now (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
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

/* Index image into output.  0, or -1 (error reported). */
static int
accel_index (const char *image, const char *output, uint32_t chunk_size,
             bool verbose)
{
  struct manifest_writer *w;
  struct filemap_stats fst;
  unsigned char sha256[32];
  uint64_t size, nr_zero, nr_chunks;
  const char *fs_type;
  double start = now (), secs, filemap_secs;
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

  w = manifest_writer_create (output, size, chunk_size, fs_type);
  if (w == NULL) {
    close (fd);
    return -1;
  }
  filemap_secs = now ();
  if (filemap_write (image, fd, size, fs_type, w, &fst) == -1)
    goto err;
  filemap_secs = now () - filemap_secs;
  if (scan_image (fd, image, size, chunk_size, add_chunk, w, sha256,
                  &nr_zero) == -1)
    goto err;
  close (fd);
  if (manifest_writer_finish (w, sha256) == -1)
    return -1;

  secs = now () - start;
  nr_chunks = size / chunk_size + (size % chunk_size != 0);
  fprintf (verbose ? stdout : stderr,
           PROGNAME ": indexed %" PRIu64 " bytes in %.1f s (%.0f MB/s), "
                    "%" PRIu64 " chunks, %" PRIu64 " zero\n",
           size, secs, secs > 0 ? size / secs / 1e6 : 0.0, nr_chunks, nr_zero);
  print_filemap_summary (verbose ? stdout : stderr, fs_type, &fst,
                         filemap_secs);
  return 0;

err:
  manifest_writer_abort (w);
  close (fd);
  return -1;
}

/* Options first (bad usage exits 2 before any work), then one run. */
int
main (int argc, char *argv[])
{
  const char *output = NULL;
  uint32_t chunk_size = DEFAULT_CHUNK_SIZE;
  bool verbose = false;
  int c;

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
  if (optind != argc - 1)
    usage_error (optind == argc ? "no IMAGE given" : "more than one IMAGE");
  if (output == NULL || *output == '\0')
    usage_error ("no manifest given (-o MANIFEST)");
  report_set_tool (PROGNAME, verbose);

  return accel_index (argv[optind], output, chunk_size, verbose) == 0
      ? EXIT_SUCCESS
      : EXIT_FAILURE;
}
