/* accel-inspect: show what a manifest says about its image.
 *
 *   accel-inspect [--endpoint URL] [--file PATH] [--json] MANIFEST
 *   accel-inspect [--endpoint URL] [--json] --diff OLD NEW
 *   accel-inspect [--endpoint URL] [--profile NAME] [--json] --whoami
 *
 * An operator's look inside a published image without fetching it: the
 * image's size, file system, chunking, zero chunks and hash, and the
 * files in it (summary.c), where one file's bytes are (file.c), or what
 * a node holding one version fetches for another (diff.c).
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
  DIFF_OPTION,
  ENDPOINT_OPTION,
  JSON_OPTION,
  PROFILE_OPTION,
  WHOAMI_OPTION,
};

static const char short_options[] = "f:v";
static const struct option long_options[] = {
  { "diff", no_argument, NULL, DIFF_OPTION },
  { "endpoint", required_argument, NULL, ENDPOINT_OPTION },
  { "file", required_argument, NULL, 'f' },
  { "help", no_argument, NULL, HELP_OPTION },
  { "json", no_argument, NULL, JSON_OPTION },
  { "profile", required_argument, NULL, PROFILE_OPTION },
  { "verbose", no_argument, NULL, 'v' },
  { "version", no_argument, NULL, VERSION_OPTION },
  { "whoami", no_argument, NULL, WHOAMI_OPTION },
  { NULL, 0, NULL, 0 },
};

/* --help: a short manual page. */
static void
usage (void)
{
  printf (
      "Usage: " PROGNAME " [--endpoint URL] [--file PATH] [--json] [-v] "
      "MANIFEST\n"
      "       " PROGNAME " [--endpoint URL] [--json] [-v] --diff OLD NEW\n"
      "       " PROGNAME " [--endpoint URL] [--profile NAME] [--json] [-v] "
      "--whoami\n"
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
      "With --diff, compare two versions of an image (OLD and NEW, each\n"
      "a manifest file or URL): what a node whose cache holds OLD\n"
      "fetches to serve NEW, by the cache's own rule.  A chunk of NEW is\n"
      "free if it is all zeros (never fetched) or if its SHA-256 is that\n"
      "of any chunk of OLD (copied from the cache); every other chunk is\n"
      "fetched, at its real length (the last chunk may be short).  The\n"
      "manifest's own download is not counted.  The cache dedups only\n"
      "between equal chunk sizes: if they differ, a warning says so and\n"
      "every non-zero chunk counts.  This is the plugin's \"fetched\n"
      "bytes\" (-D accel.stats=1) after serving NEW from such a cache.\n"
      "\n"
      "With --whoami, say which AWS credentials, region, S3 endpoint and\n"
      "CA bundle accel (the plugin, every tool) would use here, and where\n"
      "each came from, without any secret: the source (env, assume-role,\n"
      "web-identity, sso, profile, process, container, imds, or none), its\n"
      "origin (the file and profile section, the role ARN with the\n"
      "profile chain and first source, the SSO account and role, the\n"
      "endpoint URL), the access key id's first 4 characters, whether\n"
      "there is a session token, and when the credentials expire.  The\n"
      "credential chain is run for real, as the plugin runs it (a\n"
      "credential_process is run, STS, the SSO portal or the container\n"
      "endpoint asked), so an error in it shows here.\n"
      "\n"
      "Options:\n"
      "  --diff             compare OLD and NEW (see above)\n"
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
      "  --profile NAME     AWS profile (as the plugin's profile=; it\n"
      "                     disables the environment's keys, as in the\n"
      "                     AWS CLI); default AWS_PROFILE, else default\n"
      "  -v, --verbose      print what is done (downloads, each step of\n"
      "                     the credential chain) on stderr\n"
      "  --whoami           say which credentials, region and endpoint\n"
      "                     would be used (see above)\n"
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
      "  With --diff: the new image's size, chunks and zero chunks; what\n"
      "  is to fetch: chunks, bytes and their share of the bytes of the\n"
      "  non-zero chunks (and, if NEW repeats a chunk to fetch, the\n"
      "  figures with each repeat fetched once: a reader slow enough for\n"
      "  the cache to find its own copy); then a line per file that\n"
      "  differs, with its size and its bytes in chunks to fetch: added,\n"
      "  removed, renamed (provably the same bytes under a new path),\n"
      "  modified (size or mode), fetched (same size and mode, but bytes\n"
      "  in chunks to fetch: edited in place, moved, or beside a change);\n"
      "  then the counts, unchanged files included.  --json:\n"
      "  image_size, chunk_size, old_chunk_size, chunk_size_mismatch,\n"
      "  nr_chunks, nr_zero_chunks, data_bytes, fetch_chunks,\n"
      "  fetch_bytes, fetch_percent, distinct_fetch_chunks,\n"
      "  distinct_fetch_bytes, files[] (change, path, old_path for a\n"
      "  rename, size, fetch_bytes), nr_added, nr_removed, nr_renamed,\n"
      "  nr_modified, nr_fetched, nr_unchanged.\n"
      "  With --whoami: lines profile, credentials (source: origin),\n"
      "  access key, session token, expires, region, endpoint and CA\n"
      "  bundle, each with \"(from SOURCE)\" where it applies.  --json:\n"
      "  profile, source, origin, access_key_prefix, session_token,\n"
      "  expiration, expires_in, region, region_source, endpoint,\n"
      "  endpoint_source, ca_bundle, ca_bundle_source (null when unset).\n"
      "\n"
      "Examples:\n"
      "  accel-inspect genome.img.manifest\n"
      "  accel-inspect --file index/genome.1.bt2 \\\n"
      "      --endpoint http://127.0.0.1:7480 s3://data/genome.img.manifest\n"
      "  accel-inspect --json genome.img.manifest | jq .nr_zero_chunks\n"
      "  accel-inspect --diff s3://data/v1/genome.img.manifest \\\n"
      "      s3://data/v2/genome.img.manifest\n"
      "  AWS_PROFILE=dev accel-inspect --whoami\n"
      "\n"
      "Credentials for s3:// URLs are found as the AWS CLI finds them:\n"
      "the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,\n"
      "AWS_SESSION_TOKEN), the profile's (AWS_PROFILE, else default)\n"
      "role_arn with source_profile or credential_source (STS\n"
      "AssumeRole), web identity (AWS_WEB_IDENTITY_TOKEN_FILE and\n"
      "AWS_ROLE_ARN, or the profile's), the profile's SSO settings (the\n"
      "token of \"aws sso login\"), its keys in ~/.aws/credentials, its\n"
      "credential_process, its keys in ~/.aws/config, the container\n"
      "endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI: ECS,\n"
      "EKS Pod Identity), then the EC2 instance role; none found means\n"
      "anonymous requests.  The region is AWS_REGION,\n"
      "AWS_DEFAULT_REGION, the profile's, or us-east-1.\n"
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
      "Exit status: 0 on success (--whoami: also when no credentials are\n"
      "found), 1 on error (no such manifest or file, a malformed\n"
      "manifest, a failed download, a credential source that fails), 2\n"
      "on bad usage.\n");
}

/* Open the manifest, downloading it first if it is remote.  NULL on
 * error (reported).
 */
static struct manifest *
open_manifest (const char *arg, const char *endpoint)
{
  const char *path = arg;
  struct manifest *m;

  if (remote_is_url (arg)) {
    if (remote_fetch (arg, endpoint, &path) == -1)
      return NULL;
    report_debug ("%s: downloaded to %s", arg, path);
  }
  m = manifest_open_as (path, arg);
  /* NB: sqlite keeps the file open (and immutable=1 means it never
   * reopens it), so the download can go at once: nothing is left behind
   * even if printing is interrupted.
   */
  if (path != arg)
    remote_remove ();
  return m;
}

/* Open the manifest(s), print, and check that stdout took it all.
 * args holds one MANIFEST, or OLD and NEW with diff.  0, or -1 (error
 * reported).
 */
static int
inspect (char **args, const char *endpoint, const char *file, bool diff,
         bool json)
{
  struct manifest *m, *old = NULL;
  int r;

  if (diff) {
    old = open_manifest (args[0], endpoint);
    if (old == NULL)
      return -1;
    args++;
  }
  m = open_manifest (args[0], endpoint);
  if (m == NULL) {
    if (old)
      manifest_close (old);
    return -1;
  }

  if (old)
    r = diff_print (old, m, args[-1], args[0], json);
  else if (file)
    r = file_print (m, args[0], file, json);
  else
    r = summary_print (m, args[0], json);
  manifest_close (m);
  if (old)
    manifest_close (old);
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
  const char *endpoint = NULL, *file = NULL, *profile = NULL;
  bool diff = false, json = false, verbose = false, whoami = false;
  int i, nr_args;
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
    case DIFF_OPTION:
      diff = true;
      break;
    case JSON_OPTION:
      json = true;
      break;
    case PROFILE_OPTION:
      if (*optarg == '\0')
        report_usage_error ("--profile: empty name");
      profile = optarg;
      break;
    case WHOAMI_OPTION:
      whoami = true;
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
  nr_args = argc - optind;
  if (whoami) {
    if (diff || file || nr_args > 0)
      report_usage_error ("--whoami takes no MANIFEST, --diff or --file");
    report_set_tool (PROGNAME, verbose);
    return whoami_print (endpoint, profile, json) == 0 ? EXIT_SUCCESS
                                                       : EXIT_FAILURE;
  }
  if (profile)
    report_usage_error ("--profile is only for --whoami");
  if (diff && file)
    report_usage_error ("--diff and --file cannot be used together");
  if (diff && nr_args != 2)
    report_usage_error ("--diff needs two manifests, OLD and NEW");
  if (!diff && nr_args != 1)
    report_usage_error (nr_args == 0 ? "no MANIFEST given"
                                     : "more than one MANIFEST");
  for (i = optind; i < argc; i++)
    if (argv[i][0] == '\0')
      report_usage_error ("MANIFEST is empty");
  report_set_tool (PROGNAME, verbose);

  return inspect (&argv[optind], endpoint, file, diff, json) == 0
      ? EXIT_SUCCESS
      : EXIT_FAILURE;
}
