/* accel: s3-put, a small driver of common/s3/upload/s3-upload.c for integration
 * tests.
 *
 *   s3-put [OPTIONS] FILE URL    upload FILE to URL (s3://BUCKET/KEY);
 *                                print "uploaded" or "skipped"
 *
 * --part-size SIZE and --parallel N are s3_put_options' (SIZE may end
 * in K, M or G: powers of 1024).  --progress prints each progress call
 * to stderr as "progress DONE TOTAL", --stats the client's counters.
 * --image-sha256 HEX gives the object that metadata (S3_META_IMAGE_SHA256),
 * as accel-mkimage does for an image.
 * Credentials come from the usual places (creds.h).  Exit status: 0
 * uploaded or skipped, 1 failure, 2 usage.
 */

#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "report.h"
#include "s3-upload.h"
#include "s3.h"

#define PROG "s3-put"

/* Wrong arguments: print the synopsis, exit 2. */
static void
usage (void)
{
  fprintf (stderr,
           "usage: " PROG " [--endpoint URL] [--region R] [--profile P]\n"
           "         [--part-size SIZE] [--parallel N] [--connections N]\n"
           "         [--retries N] [--timeout S] [--content-type T]\n"
           "         [--image-sha256 HEX]\n"
           "         [--progress] [--stats] [--verbose] FILE URL\n");
  exit (2);
}

/* A number with an optional size suffix (parse_size), or exit. */
static uint64_t
size_arg (const char *what, const char *s)
{
  uint64_t v;

  if (parse_size (s, &v) == -1) {
    fprintf (stderr, PROG ": %s: not a size: %s\n", what, s);
    exit (2);
  }
  return v;
}

/* --progress: one line per call (the module serialises them). */
static void
print_progress (void *opaque, uint64_t done, uint64_t total)
{
  (void) opaque;
  fprintf (stderr, "progress %" PRIu64 " %" PRIu64 "\n", done, total);
}

/* Parse options, upload, say what happened. */
int
main (int argc, char *argv[])
{
  enum {
    OPT_ENDPOINT = 256,
    OPT_REGION,
    OPT_PROFILE,
    OPT_PART_SIZE,
    OPT_PARALLEL,
    OPT_CONNECTIONS,
    OPT_RETRIES,
    OPT_TIMEOUT,
    OPT_CONTENT_TYPE,
    OPT_IMAGE_SHA256,
    OPT_PROGRESS,
    OPT_STATS,
  };
  static const struct option long_options[] = {
    { "endpoint", required_argument, NULL, OPT_ENDPOINT },
    { "region", required_argument, NULL, OPT_REGION },
    { "profile", required_argument, NULL, OPT_PROFILE },
    { "part-size", required_argument, NULL, OPT_PART_SIZE },
    { "parallel", required_argument, NULL, OPT_PARALLEL },
    { "connections", required_argument, NULL, OPT_CONNECTIONS },
    { "retries", required_argument, NULL, OPT_RETRIES },
    { "timeout", required_argument, NULL, OPT_TIMEOUT },
    { "content-type", required_argument, NULL, OPT_CONTENT_TYPE },
    { "image-sha256", required_argument, NULL, OPT_IMAGE_SHA256 },
    { "progress", no_argument, NULL, OPT_PROGRESS },
    { "stats", no_argument, NULL, OPT_STATS },
    { "verbose", no_argument, NULL, 'v' },
    { NULL, 0, NULL, 0 },
  };
  struct s3_config cfg;
  struct s3_put_options opts = { 0 };
  struct s3_client *client;
  struct s3_stats st;
  bool stats = false, verbose = false;
  uint64_t n;
  int c, r;

  s3_config_init (&cfg);
  while ((c = getopt_long (argc, argv, "v", long_options, NULL)) != -1) {
    switch (c) {
    case OPT_ENDPOINT:
      cfg.endpoint = optarg;
      break;
    case OPT_REGION:
      cfg.region = optarg;
      break;
    case OPT_PROFILE:
      cfg.profile = optarg;
      break;
    case OPT_PART_SIZE:
      opts.part_size = size_arg ("--part-size", optarg);
      break;
    case OPT_PARALLEL:
      n = size_arg ("--parallel", optarg);
      if (n > S3_MAX_PARALLEL)
        usage ();
      opts.parallel = n;
      break;
    case OPT_CONNECTIONS:
      n = size_arg ("--connections", optarg);
      if (n > 1024)
        usage ();
      cfg.connections = n;
      break;
    case OPT_RETRIES:
      n = size_arg ("--retries", optarg);
      if (n > S3_MAX_RETRIES)
        usage ();
      cfg.retries = n;
      break;
    case OPT_TIMEOUT:
      n = size_arg ("--timeout", optarg);
      if (n > 86400)
        usage ();
      cfg.timeout = n;
      break;
    case OPT_CONTENT_TYPE:
      opts.content_type = optarg;
      break;
    case OPT_IMAGE_SHA256:
      opts.image_sha256 = optarg;
      break;
    case OPT_PROGRESS:
      opts.progress = print_progress;
      break;
    case OPT_STATS:
      stats = true;
      break;
    case 'v':
      verbose = true;
      break;
    default:
      usage ();
    }
  }
  if (argc - optind != 2)
    usage ();

  report_set_tool (PROG, verbose);
  client = s3_client_new (&cfg);
  if (client == NULL)
    return 1;
  r = s3_put_file (client, argv[optind + 1], argv[optind], &opts);
  if (r >= 0)
    printf ("%s\n", r == 0 ? "uploaded" : "skipped");
  if (stats) {
    s3_client_stats (client, &st);
    fprintf (stderr,
             "stats: requests %" PRIu64 " gets %" PRIu64 " heads %" PRIu64
             " puts %" PRIu64 " posts %" PRIu64 " deletes %" PRIu64
             " sent %" PRIu64 " retries %" PRIu64 " errors %" PRIu64 "\n",
             st.requests, st.gets, st.heads, st.puts, st.posts, st.deletes,
             st.sent, st.retries, st.errors);
  }
  s3_client_free (client);
  return r >= 0 ? 0 : 1;
}
