/* accel-index: build the manifest of an image.
 *
 *   accel-index IMAGE -o MANIFEST [--chunk-size SIZE] [--hot TRACE]... [-v]
 *   accel-index --update MANIFEST --hot TRACE... [-o OUTPUT] [-v]
 *
 * The command line around the indexer library (index.h, index.c), which
 * does the work: the file map, the chunk hashes, the hot list, and
 * --update of an existing manifest's hot list.  accel-mkimage calls the
 * same library.  This file parses the options and prints the summary.
 *
 * Exit status: 0 done, 1 error, 2 bad usage.
 */

#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

#include "index.h"
#include "manifest.h"
#include "report.h"

/* The Makefile may pass the real version with -DACCEL_VERSION=... */
#ifndef ACCEL_VERSION
#define ACCEL_VERSION "0.1"
#endif

#define PROGNAME "accel-index"

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
          "File system: ext4 (and ext2/ext3), squashfs and erofs images\n"
          "are recognised and recorded as such, anything else as raw.\n"
          "File map: for ext4, squashfs and erofs, every regular file's\n"
          "path, size, mode and the image bytes that hold its data.  Holes,\n"
          "squashfs compressed blocks and fragments and erofs compressed\n"
          "files have no extents; ext4 files with inline data and\n"
          "encrypted files are left out.  For a complete squashfs map:\n"
          "mksquashfs SRC IMAGE -noD -no-fragments; for erofs: mkfs.erofs\n"
          "without -z.\n"
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

/* Options first (bad usage exits 2 before any work), then one run. */
int
main (int argc, char *argv[])
{
  const char *output = NULL, *update = NULL;
  uint32_t chunk_size = INDEX_DEFAULT_CHUNK_SIZE;
  bool verbose = false, chunk_size_set = false;
  char **traces;
  size_t nr_traces = 0, nr_hot;
  struct index_options o;
  struct index_stats st;
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

  o = (struct index_options){ .chunk_size = chunk_size,
                              .traces = traces,
                              .nr_traces = nr_traces };
  if (update) {
    r = index_update_hot (update, output, &o, &nr_hot);
    if (r == 0)
      fprintf (verbose ? stdout : stderr,
               PROGNAME ": %s: hot list of %zu chunks written\n", output,
               nr_hot);
  }
  else {
    r = index_image (argv[optind], output, &o, &st);
    if (r == 0)
      index_print_summary (verbose ? stdout : stderr, PROGNAME, &st);
  }
  free (traces);
  return r == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
