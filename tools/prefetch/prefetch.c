/* accel-prefetch: warm the cache of a mounted dataset by file path.
 *
 *   accel-prefetch MOUNT PATH...
 *   accel-prefetch --socket SOCK [--manifest FILE] PATH...
 *
 * Before a job starts, the node can fetch the files it will read (an
 * aligner's index, a model's weights) into the plugin's cache, at full
 * speed and without the job waiting on S3 chunk by chunk.  The
 * manifest's file map says which chunks of the image hold each file;
 * the plugin is asked to cache exactly those with NBD_CMD_CACHE.
 * Reading the files afterwards fetches nothing.
 *
 * This file: the command line and the order of the steps.
 *
 * Exit status: 0 done, 1 error, 2 bad usage.
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "parse.h"
#include "prefetch.h"
#include "report.h"

/* The Makefile may pass the real version with -DACCEL_VERSION=... */
#ifndef ACCEL_VERSION
#define ACCEL_VERSION "0.1"
#endif

/* Exit status for bad usage, as distinct from a failure (1). */

#define DEFAULT_REQUESTS 4
#define MAX_REQUESTS 64
#define DEFAULT_BATCH (8 * 1024 * 1024)
#define MAX_BATCH (64 * 1024 * 1024)
/* As the plugin's prefetch-jitter=: nodes of a fleet that run this at
 * once do not send their first requests in the same instant.
 */
#define DEFAULT_JITTER 2
#define MAX_JITTER 600
/* Longer than the plugin's own budget for one request with its
 * defaults (420 s: README, "Timeouts"), which it may take before it
 * answers.
 */
#define DEFAULT_TIMEOUT 600
#define MAX_TIMEOUT 86400

enum {
  HELP_OPTION = CHAR_MAX + 1,
  VERSION_OPTION,
  BATCH_OPTION,
  JITTER_OPTION,
  MANIFEST_OPTION,
  SOCKET_OPTION,
  TIMEOUT_OPTION,
};

/* A leading ':' : getopt_long reports nothing, report_usage_error does. */
static const char short_options[] = ":nqr:v";
static const struct option long_options[] = {
  { "batch", required_argument, NULL, BATCH_OPTION },
  { "dry-run", no_argument, NULL, 'n' },
  { "help", no_argument, NULL, HELP_OPTION },
  { "jitter", required_argument, NULL, JITTER_OPTION },
  { "manifest", required_argument, NULL, MANIFEST_OPTION },
  { "quiet", no_argument, NULL, 'q' },
  { "requests", required_argument, NULL, 'r' },
  { "socket", required_argument, NULL, SOCKET_OPTION },
  { "timeout", required_argument, NULL, TIMEOUT_OPTION },
  { "verbose", no_argument, NULL, 'v' },
  { "version", no_argument, NULL, VERSION_OPTION },
  { NULL, 0, NULL, 0 },
};

/* --help: a manual page in brief. */
static void
usage (void)
{
  printf (
      "NAME\n"
      "  " PROGNAME " - fetch files of an accel dataset into the node's "
      "cache\n"
      "\n"
      "SYNOPSIS\n"
      "  " PROGNAME " [-n] [-q] [-v] [-r N] MOUNT PATH...\n"
      "  " PROGNAME " --socket SOCK [--manifest FILE] [-n] [-q] [-v] [-r N] "
      "PATH...\n"
      "  " PROGNAME " --help | --version\n"
      "\n"
      "DESCRIPTION\n"
      "  Makes the plugin fetch the chunks that hold the given files into\n"
      "  its persistent cache now, so that reading them later fetches\n"
      "  nothing from S3.  The chunks are found in the manifest's file\n"
      "  map and requested with NBD_CMD_CACHE in runs of adjacent chunks,\n"
      "  several at a time; the plugin answers each once it is cached.\n"
      "\n"
      "  MOUNT is a dataset mounted with accel-mount(1); its state\n"
      "  directory ($ACCEL_RUN_DIR/NAME, default /run/accel/NAME) records\n"
      "  nbdkit's socket and the manifest.  Each PATH is a file or a\n"
      "  directory (everything below it), relative to MOUNT or absolute\n"
      "  under it (also through a symbolic link to it, such as\n"
      "  accel-update's current link).  With --socket, PATHs are paths\n"
      "  inside the image.\n"
      "\n"
      "  Files whose bytes the map does not locate (squashfs compressed\n"
      "  blocks and fragments, erofs compressed files) are warmed only\n"
      "  in part; holes and all-zero chunks need no fetching.\n"
      "\n"
      "OPTIONS\n"
      "  --socket SOCK       the nbdkit Unix socket to use instead of a\n"
      "                      mount.\n"
      "  --manifest FILE     the image's manifest (a local file); default:\n"
      "                      the one accel-mount recorded, else the one\n"
      "                      the plugin names in its export description.\n"
      "  -r, --requests N    requests in flight (default %d, at most %d).\n"
      "  --batch SIZE        largest request (default 8M, the plugin's\n"
      "                      prefetch-request-size; suffix K or M): the\n"
      "                      plugin fetches a run of missing chunks with\n"
      "                      one GET of up to that size.\n"
      "  --jitter SECS       start after a random 0 to SECS seconds\n"
      "                      (default %d, at most %d; 0: at once), so that\n"
      "                      a fleet running this together does not reach\n"
      "                      S3 in lockstep.\n"
      "  --timeout SECS      give up when nbdkit answers nothing for SECS\n"
      "                      seconds (default %d, longer than the plugin's\n"
      "                      own budget for a request; at most %d; 0:\n"
      "                      wait for ever).\n"
      "  -n, --dry-run       only say what would be fetched.\n"
      "  -q, --quiet         print nothing but errors.\n"
      "  -v, --verbose       list each file selected.\n"
      "  --help              print this help.\n"
      "  --version           print the version.\n"
      "\n"
      "OUTPUT\n"
      "  On a terminal, a progress bar (bytes done / total, rate) on\n"
      "  stderr; otherwise one summary line at the end.\n"
      "\n"
      "EXIT STATUS\n"
      "  0 warmed, 1 error (a path not in the image, a failed request),\n"
      "  2 bad usage.\n"
      "\n"
      "EXAMPLES\n"
      "  " PROGNAME " /mnt/datasets/genome index/ reads.fq\n"
      "  " PROGNAME " --socket /run/accel/x/nbdkit.sock /weights/model.bin\n"
      "\n"
      "SEE ALSO\n"
      "  accel-mount(1), accel-inspect(1), nbdkit-accel-plugin\n",
      DEFAULT_REQUESTS, MAX_REQUESTS, DEFAULT_JITTER, MAX_JITTER,
      DEFAULT_TIMEOUT, MAX_TIMEOUT);
}

/* A number from min to max, or report_usage_error. */
static unsigned
parse_count (const char *opt, const char *arg, unsigned min, unsigned max)
{
  unsigned long n;
  char *end;

  errno = 0;
  n = strtoul (arg, &end, 10);
  if (arg[0] < '0' || arg[0] > '9' || errno || *end || n < min || n > max)
    report_usage_error ("%s: '%s' is not a number from %u to %u", opt, arg, min,
                        max);
  return n;
}

/* --batch: a size ("256K", "1M"). */
static uint32_t
parse_batch (const char *arg)
{
  uint64_t n;

  if (parse_size (arg, &n) == -1 || n == 0 || n > MAX_BATCH)
    report_usage_error ("--batch: '%s' is not a size from 1 to 64M", arg);
  return n;
}

/* The steps, once the command line is understood. */
static int
run (struct target *t, char *const *args, size_t nr_args, bool dry_run,
     bool verbose, struct warm_options *o)
{
  CLEANUP_FREE char **paths = NULL;
  struct selection s = { 0 };
  struct manifest *m = NULL;
  uint32_t chunk_size;
  size_t i, n = 0;
  char b[32];
  int r = -1;

  paths = calloc (nr_args, sizeof *paths);
  if (paths == NULL) {
    report_error ("calloc: %m");
    return -1;
  }
  for (i = 0; i < nr_args; i++) {
    paths[i] = target_image_path (t, args[i]);
    if (paths[i] == NULL)
      goto out;
    n++;
  }
  /* The plugin names its manifest when it was not recorded. */
  if ((!dry_run || t->manifest == NULL) && warm_connect (t, o->timeout) == -1)
    goto out;
  m = manifest_open (t->manifest);
  if (m == NULL)
    goto out;
  if (!dry_run && warm_check (m) == -1)
    goto out;
  if (manifest_nr_files (m) == 0) {
    report_error ("%s: the image has no file map (a %s image): nothing can "
                  "be found by path",
                  t->manifest, manifest_fs_type (m));
    goto out;
  }
  if (select_chunks (m, paths, n, verbose, &s) == -1)
    goto out;
  if (!o->quiet && s.unmapped_bytes > 0 &&
      (strcmp (manifest_fs_type (m), "squashfs") == 0 ||
       strcmp (manifest_fs_type (m), "erofs") == 0))
    fprintf (stderr,
             PROGNAME ": note: %s of these files are compressed or holes "
                      "in the %s image and cannot be located: they "
                      "are not warmed\n",
             format_size (s.unmapped_bytes, b, sizeof b), manifest_fs_type (m));
  if (dry_run) {
    printf ("%" PRIu64 " files, %" PRIu64 " chunks, %" PRIu64 " bytes\n",
            s.nr_files, s.nr_selected, s.bytes);
    r = 0;
    goto out;
  }
  /* Whole chunks per request. */
  chunk_size = manifest_chunk_size (m);
  o->batch -= o->batch % chunk_size;
  if (o->batch < chunk_size)
    o->batch = chunk_size;
  r = warm_run (m, &s, o);

out:
  select_free (&s);
  manifest_close (m);
  warm_disconnect ();
  for (i = 0; i < n; i++)
    free (paths[i]);
  return r;
}

int
main (int argc, char *argv[])
{
  struct warm_options o = { .requests = DEFAULT_REQUESTS,
                            .batch = DEFAULT_BATCH,
                            .jitter = DEFAULT_JITTER,
                            .timeout = DEFAULT_TIMEOUT };
  struct target t = { 0 };
  const char *sock = NULL, *manifest = NULL;
  bool dry_run = false, verbose = false;
  int c, r, first;

  report_set_tool (PROGNAME, false);
  opterr = 0;
  for (;;) {
    c = getopt_long (argc, argv, short_options, long_options, NULL);
    if (c == -1)
      break;
    switch (c) {
    case 'n':
      dry_run = true;
      break;
    case 'q':
      o.quiet = true;
      break;
    case 'r':
      o.requests = parse_count ("--requests", optarg, 1, MAX_REQUESTS);
      break;
    case 'v':
      verbose = true;
      break;
    case BATCH_OPTION:
      o.batch = parse_batch (optarg);
      break;
    case JITTER_OPTION:
      o.jitter = parse_count ("--jitter", optarg, 0, MAX_JITTER);
      break;
    case MANIFEST_OPTION:
      manifest = optarg;
      break;
    case SOCKET_OPTION:
      sock = optarg;
      break;
    case TIMEOUT_OPTION:
      o.timeout = parse_count ("--timeout", optarg, 0, MAX_TIMEOUT);
      break;
    case HELP_OPTION:
      usage ();
      exit (EXIT_SUCCESS);
    case VERSION_OPTION:
      printf (PROGNAME " " ACCEL_VERSION "\n");
      exit (EXIT_SUCCESS);
    case ':':
      report_usage_error ("%s: needs an argument", argv[optind - 1]);
    default:
      if (optopt)
        report_usage_error ("unknown option '-%c'", optopt);
      report_usage_error ("unknown option '%s'", argv[optind - 1]);
    }
  }
  first = optind;
  if (sock == NULL) {
    if (manifest)
      report_usage_error ("--manifest goes with --socket (a mount records its "
                          "manifest)");
    if (argc - optind < 2)
      report_usage_error (argc == optind ? "MOUNT and PATH... are required"
                                         : "no PATH given: name files or "
                                           "directories under MOUNT");
    first = optind + 1;
  }
  else if (argc - optind < 1)
    report_usage_error (
        "no PATH given: name files or directories in the image");
  report_set_tool (PROGNAME, verbose);
  o.progress = !o.quiet && isatty (STDERR_FILENO);

  if (sock) {
    t.socket = strdup (sock);
    t.manifest = manifest ? strdup (manifest) : NULL;
    if (t.socket == NULL || (manifest && t.manifest == NULL)) {
      perror (PROGNAME ": strdup");
      exit (EXIT_FAILURE);
    }
  }
  else if (target_from_mount (argv[optind], &t) == -1)
    exit (EXIT_FAILURE);

  r = run (&t, argv + first, argc - first, dry_run, verbose, &o);
  target_free (&t);
  return r == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
