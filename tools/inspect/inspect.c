/* accel-inspect: show what a manifest says about its image.
 *
 *   accel-inspect [--endpoint URL] [--file PATH] [--json] MANIFEST
 *
 * An operator's look inside a published image without fetching it: the
 * image's size, file system, chunking, zero chunks and hash, and the
 * files in it (summary.c), or where one file's bytes are (file.c).
 * MANIFEST is a local file or an s3:// or http(s):// URL, downloaded to
 * a temporary file first (remote.c).  The manifest is opened with the
 * same validating reader the plugin uses, so a malformed one is refused
 * with the reader's message, never half-printed.
 *
 * Exit status: 0 done, 1 error, 2 bad usage.
 */

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

#include "inspect.h"
#include "manifest.h"
#include "report.h"

/* The Makefile may pass the real version with -DACCEL_VERSION=... */
#ifndef ACCEL_VERSION
#define ACCEL_VERSION "0.1"
#endif

/* Exit status for bad usage, as distinct from a failure (1). */
#define EXIT_USAGE 2

enum {
  HELP_OPTION = CHAR_MAX + 1,
  VERSION_OPTION,
  ENDPOINT_OPTION,
  JSON_OPTION,
};

static const char short_options[] = "f:v";
static const struct option long_options[] = {
  { "endpoint", required_argument, NULL, ENDPOINT_OPTION },
  { "file", required_argument, NULL, 'f' },
  { "help", no_argument, NULL, HELP_OPTION },
  { "json", no_argument, NULL, JSON_OPTION },
  { "verbose", no_argument, NULL, 'v' },
  { "version", no_argument, NULL, VERSION_OPTION },
  { NULL, 0, NULL, 0 },
};

/* --help: a short manual page. */
static void
usage (void)
{
  printf (
      "Usage: " PROGNAME " [--endpoint URL] [--file PATH] [--json] [-v] "
      "MANIFEST\n"
      "\n"
      "Show what the manifest of an accel image says about the image:\n"
      "its size, file system, chunk size and number of chunks, how many\n"
      "chunks are all zeros (served without fetching), its SHA-256, and\n"
      "the files it holds (mode, size, path), from the manifest alone.\n"
      "\n"
      "MANIFEST is a local file, s3://BUCKET/KEY or an http:// or\n"
      "https:// URL (public or presigned); a remote manifest is\n"
      "downloaded to a temporary file, which is removed again.\n"
      "\n"
      "Options:\n"
      "  --endpoint URL     S3-compatible endpoint for s3:// URLs, path-\n"
      "                     style (http://127.0.0.1:7480); default below\n"
      "  -f, --file PATH    show one file instead: size, mode, extents\n"
      "                     (file offset, image offset, length) and the\n"
      "                     chunks that hold it, with how many of each\n"
      "                     chunk's bytes are the file's (the leading '/'\n"
      "                     may be left out)\n"
      "  --json             print one JSON object instead of text\n"
      "                     (bytes of names that are not UTF-8 become\n"
      "                     U+FFFD; text output shows them as \\xNN)\n"
      "  -v, --verbose      print what is done (downloads) on stderr\n"
      "  --help             print this help\n"
      "  --version          print the version\n"
      "\n"
      "Output:\n"
      "  The summary: image size, file system (ext4, squashfs, erofs or\n"
      "  raw), chunk size, number of chunks, zero chunks (and their\n"
      "  share, rounded down), hot chunks, the image's SHA-256, the\n"
      "  number of files and their total size; then a line per file:\n"
      "  mode (as in ls -l), size in bytes, path.  In paths, control\n"
      "  characters, backslash and bytes that are not UTF-8 are shown\n"
      "  as \\n, \\\\ and \\xNN.  With --file: size, mode, bytes mapped\n"
      "  to the image, the extents, then a line per chunk: its index,\n"
      "  how many of its bytes are the file's, and \"(zero)\" if it is\n"
      "  all zeros.  With --json, the same as one object: image_size,\n"
      "  fs_type, chunk_size, nr_chunks, nr_zero_chunks,\n"
      "  zero_chunks_percent, nr_hot_chunks, image_sha256, nr_files,\n"
      "  file_bytes, files[] (path, size, mode, mode_string); or with\n"
      "  --file: path, size, mode, mode_string, mapped_bytes,\n"
      "  nr_chunks, extents[] (file_offset, image_offset, length),\n"
      "  chunks[] (index, bytes, zero).\n"
      "\n"
      "Examples:\n"
      "  accel-inspect genome.img.manifest\n"
      "  accel-inspect --file index/genome.1.bt2 \\\n"
      "      --endpoint http://127.0.0.1:7480 s3://data/genome.img.manifest\n"
      "  accel-inspect --json genome.img.manifest | jq .nr_zero_chunks\n"
      "\n"
      "Credentials for s3:// URLs are found as the AWS CLI finds them:\n"
      "the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,\n"
      "AWS_SESSION_TOKEN), the profile (AWS_PROFILE, else default) in\n"
      "~/.aws/credentials and ~/.aws/config, web identity, then the EC2\n"
      "instance role; none found means anonymous requests.  The region\n"
      "is AWS_REGION, AWS_DEFAULT_REGION, the profile's, or us-east-1.\n"
      "The endpoint, in the AWS SDKs' order: --endpoint,\n"
      "AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile's services\n"
      "section (s3 = / endpoint_url =), its endpoint_url, else AWS;\n"
      "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true keeps only --endpoint.\n"
      "TLS trusts AWS_CA_BUNDLE, else the profile's ca_bundle, else the\n"
      "system's CA bundle.\n"
      "\n"
      "The file list comes from the manifest's file map (written by\n"
      "accel-index for ext4, squashfs and erofs images); a raw image has\n"
      "none.\n"
      "\n"
      "Exit status: 0 on success, 1 on error (no such manifest or file,\n"
      "a malformed manifest, a failed download), 2 on bad usage.\n");
}

/* Open the manifest (downloading it first if it is remote), print, and
 * check that stdout took it all.  0, or -1 (error reported).
 */
static int
inspect (const char *arg, const char *endpoint, const char *file, bool json)
{
  const char *path = arg;
  struct manifest *m;
  int r;

  if (remote_is_url (arg)) {
    if (remote_fetch (arg, endpoint, &path) == -1)
      return -1;
    report_debug ("%s: downloaded to %s", arg, path);
  }
  m = manifest_open (path);
  /* NB: sqlite keeps the file open (and immutable=1 means it never
   * reopens it), so the download can go at once: nothing is left behind
   * even if printing is interrupted.
   */
  if (path != arg)
    remote_remove ();
  if (m == NULL)
    return -1;

  if (file)
    r = file_print (m, arg, file, json);
  else
    r = summary_print (m, arg, json);
  manifest_close (m);
  if (r == -1)
    return -1;
  if (fflush (stdout) == EOF || ferror (stdout)) {
    report_error ("standard output: write: %m");
    return -1;
  }
  return 0;
}

/* Options first (bad usage exits 2 before any work), then one run. */
int
main (int argc, char *argv[])
{
  const char *endpoint = NULL, *file = NULL;
  bool json = false, verbose = false;
  int c;

  report_set_tool (PROGNAME, false);
  for (;;) {
    c = getopt_long (argc, argv, short_options, long_options, NULL);
    if (c == -1)
      break;
    switch (c) {
    case 'f':
      if (*optarg == '\0')
        report_usage_error ("--file: empty path");
      file = optarg;
      break;
    case 'v':
      verbose = true;
      break;
    case ENDPOINT_OPTION:
      if (strncmp (optarg, "http://", 7) != 0 &&
          strncmp (optarg, "https://", 8) != 0)
        report_usage_error (
            "--endpoint: '%s' is not an http:// or https:// URL", optarg);
      endpoint = optarg;
      break;
    case JSON_OPTION:
      json = true;
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
    report_usage_error (optind == argc ? "no MANIFEST given"
                                       : "more than one MANIFEST");
  if (argv[optind][0] == '\0')
    report_usage_error ("MANIFEST is empty");
  report_set_tool (PROGNAME, verbose);

  return inspect (argv[optind], endpoint, file, json) == 0 ? EXIT_SUCCESS
                                                           : EXIT_FAILURE;
}
