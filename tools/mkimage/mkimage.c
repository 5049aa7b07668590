/* accel-mkimage: turn a directory into a published, indexed, read-only
 * file system image.
 *
 *   accel-mkimage SRC_DIR DEST [--fs ext4|squashfs|erofs] [--chunk-size SIZE]
 *                 [--block-size SIZE] [--label NAME] [--name NAME]
 *                 [--endpoint URL]
 *                 [--keep-image PATH] [--compress] [--hot TRACE]... [-v]
 *
 * The steps, each in its own file: build the image reproducibly
 * (ext4.c, squashfs.c, erofs.c), index it with the indexer library (indexer/
 * index.h, in this process), publish image then manifest (publish-s3.c,
 * publish-dir.c), and print
 * the nbdkit command line a node needs.  Everything temporary lives in
 * one directory that is removed on every exit path (workdir.c).
 *
 * This file: the command line, its checks (bad usage exits 2 before any
 * work is done), the order of the steps and the summary.
 *
 * Exit status: 0 done, 1 error, 2 bad usage.
 */

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
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

#include "cleanup.h"
#include "clock.h"
#include "format.h"
#include "index.h"
#include "manifest.h"
#include "report.h"
#include "mkimage.h"
#include "ext4.h"

/* The Makefile may pass the real version with -DACCEL_VERSION=... */
#ifndef ACCEL_VERSION
#define ACCEL_VERSION "0.1"
#endif

/* Exit status for bad usage, as distinct from a failure (1). */

/* Timestamps of every file when SOURCE_DATE_EPOCH is not set:
 * 2000-01-01T00:00:00Z.  NB: not 0, which libext2fs takes for "use
 * the clock".
 */
#define DEFAULT_EPOCH 946684800

#define EXT4_LABEL_MAX 16
#define NAME_MAX_LEN 200

enum {
  HELP_OPTION = CHAR_MAX + 1,
  VERSION_OPTION,
  BASE_OPTION,
  BLOCK_SIZE_OPTION,
  CHUNK_SIZE_OPTION,
  COMPRESS_OPTION,
  ENDPOINT_OPTION,
  FS_OPTION,
  HOT_OPTION,
  KEEP_IMAGE_OPTION,
  LABEL_OPTION,
  NAME_OPTION,
  NO_BASE_OPTION,
};

/* A leading ':' : getopt_long reports nothing, report_usage_error does. */
static const char short_options[] = ":v";
static const struct option long_options[] = {
  { "base", required_argument, NULL, BASE_OPTION },
  { "block-size", required_argument, NULL, BLOCK_SIZE_OPTION },
  { "chunk-size", required_argument, NULL, CHUNK_SIZE_OPTION },
  { "compress", no_argument, NULL, COMPRESS_OPTION },
  { "endpoint", required_argument, NULL, ENDPOINT_OPTION },
  { "fs", required_argument, NULL, FS_OPTION },
  { "help", no_argument, NULL, HELP_OPTION },
  { "hot", required_argument, NULL, HOT_OPTION },
  { "keep-image", required_argument, NULL, KEEP_IMAGE_OPTION },
  { "label", required_argument, NULL, LABEL_OPTION },
  { "name", required_argument, NULL, NAME_OPTION },
  { "no-base", no_argument, NULL, NO_BASE_OPTION },
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
      "  " PROGNAME " - publish a directory as an indexed read-only image\n"
      "\n"
      "SYNOPSIS\n"
      "  " PROGNAME " SRC_DIR DEST [--fs ext4|squashfs|erofs]\n"
      "                [--chunk-size SIZE] [--block-size SIZE]\n"
      "                [--label LABEL] [--name NAME]\n"
      "                [--endpoint URL]\n"
      "                [--keep-image PATH] [--compress] [--hot TRACE]... "
      "[-v]\n"
      "                [--base MANIFEST | --no-base]\n"
      "  " PROGNAME " --help | --version\n"
      "\n"
      "DESCRIPTION\n"
      "  Builds a read-only file system image of SRC_DIR, writes its\n"
      "  manifest (as accel-index does), publishes both to DEST as NAME.img\n"
      "  and NAME.img.manifest (the manifest last), and prints the nbdkit\n"
      "  command that serves the image on a node.  In S3 the image carries\n"
      "  its SHA-256 (x-amz-meta-accel-image-sha256), so that a node\n"
      "  starting between the two uploads waits for the new manifest.\n"
      "\n"
      "  The build is reproducible: the same tree (names, contents,\n"
      "  permission bits, symbolic link targets, hard links, device\n"
      "  numbers) gives a byte-identical image and manifest, whatever the\n"
      "  files' timestamps, owners and extended attributes, the order they\n"
      "  were created in and the file system they are on.  None of those\n"
      "  are stored: every file is owned by root and has the same\n"
      "  timestamp, and there are no extended attributes.  Results are\n"
      "  reproducible with the same versions of e2fsprogs, squashfs-tools\n"
      "  or erofs-utils.  SRC_DIR must not change during the build.\n"
      "\n"
      "  DEST is s3://BUCKET/PREFIX/NAME (the objects are PREFIX/NAME.img\n"
      "  and PREFIX/NAME.img.manifest), s3://BUCKET/PREFIX/ (with a final\n"
      "  '/': NAME comes from --name or SRC_DIR), or a local directory.\n"
      "  To S3 the image goes up with multipart uploads (run again, only\n"
      "  what is missing or different is sent); in a directory each file\n"
      "  is written under a temporary name and renamed into place.\n"
      "\n"
      "OPTIONS\n"
      "  --fs ext4|squashfs|erofs\n"
      "                      file system of the image (default ext4).\n"
      "                      ext4: sized to fit the tree with little room\n"
      "                      to spare, no journal, directories indexed,\n"
      "                      all-zero blocks left as holes; 1 KiB blocks,\n"
      "                      and files of up to 896 bytes stored in\n"
      "                      their (1 KiB) inode, when that makes the\n"
      "                      image at least 10%% smaller (Linux 3.8 or\n"
      "                      later mounts it; see --block-size).\n"
      "                      squashfs:\n"
      "                      made by mksquashfs, file data uncompressed\n"
      "                      (each file one range of the image) unless\n"
      "                      --compress is given.  erofs: made by\n"
      "                      mkfs.erofs (Linux 5.4 or later mounts it),\n"
      "                      file data uncompressed, each file whole\n"
      "                      blocks, one range of the image.\n"
      "  --chunk-size SIZE   manifest chunk size, a power of two from 4K\n"
      "                      to 64M (suffix K or M; default 1M).\n"
      "  --block-size 4096|1024|auto\n"
      "                      ext4: the block size of a fresh layout.\n"
      "                      auto (the default): 1 KiB when that makes\n"
      "                      the image at least 10%% smaller (trees of\n"
      "                      files of a few KiB: each takes whole blocks,\n"
      "                      and so does each file a new version adds),\n"
      "                      else 4 KiB.  A new version keeps its base's.\n"
      "  --label LABEL       ext4 volume label, at most 16 bytes (default\n"
      "                      none).\n"
      "  --name NAME         image name (default: the last component of\n"
      "                      SRC_DIR).\n"
      "  --endpoint URL      S3-compatible endpoint, path-style\n"
      "                      (http[s]://HOST[:PORT][/PATH]); default: see\n"
      "                      AWS_ENDPOINT_URL_S3 below, else AWS.\n"
      "  --keep-image PATH   also keep the built image at PATH.\n"
      "  --base MANIFEST     ext4: build the image as a new version of the\n"
      "                      image MANIFEST describes (a file, or an\n"
      "                      s3://, http:// or https:// URL):\n"
      "                      unchanged files keep their place and inode,\n"
      "                      new and grown ones go to free space, and\n"
      "                      UUID, hash seed and chunk size (unless\n"
      "                      --chunk-size is given) are the base's, so a\n"
      "                      node holding the old version fetches little\n"
      "                      more than what changed.  Default: the\n"
      "                      manifest already at DEST, if any.\n"
      "                      A fresh layout is made (and said so) when\n"
      "                      the tree outgrows the base's file system or\n"
      "                      would leave more than 40%% of it free\n"
      "                      beyond the slack a fresh layout keeps.\n"
      "  --no-base           ext4: a fresh layout, whatever DEST holds.\n"
      "  --compress          squashfs: compress file data (smaller, but a\n"
      "                      file's bytes are no longer one range of the\n"
      "                      image).\n"
      "  --hot TRACE         the manifest's hot list (chunks nodes\n"
      "                      prefetch first) from TRACE, recorded by the\n"
      "                      plugin's trace=TRACE while serving this same\n"
      "                      image (a rebuild of the same tree); repeat to\n"
      "                      merge several, as with accel-index --hot.\n"
      "  -v, --verbose       say what is being done, with the output of\n"
      "                      mke2fs, e2fsck, mksquashfs or mkfs.erofs and\n"
      "                      the indexer's summary.\n"
      "  --help              print this help.\n"
      "  --version           print the version.\n"
      "\n"
      "  On a terminal, long steps show a progress line; otherwise only a\n"
      "  summary is printed (on stderr).  The nbdkit command line (or, for\n"
      "  a local DEST, the paths written) is printed on stdout.\n"
      "\n"
      "  A local DEST, --keep-image and TMPDIR must be outside SRC_DIR:\n"
      "  what the build writes there would be part of the next version.\n"
      "\n"
      "ENVIRONMENT\n"
      "  SOURCE_DATE_EPOCH   the timestamp of every file, in seconds since\n"
      "                      1970 (default 946684800, 2000-01-01 UTC).\n"
      "  TMPDIR              where the image is built (default /tmp); it\n"
      "                      needs room for the whole image.  The work\n"
      "                      directory made there is removed on every\n"
      "                      exit, error or signal.\n"
      "  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,\n"
      "  AWS_PROFILE, AWS_REGION, ...\n"
      "                      credentials and region, found as the AWS CLI\n"
      "                      finds them.\n"
      "  AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL\n"
      "                      the endpoint without --endpoint, in the AWS\n"
      "                      SDKs' order: --endpoint, AWS_ENDPOINT_URL_S3,\n"
      "                      AWS_ENDPOINT_URL, the profile's services\n"
      "                      section (s3 = / endpoint_url =), its\n"
      "                      endpoint_url, else AWS.\n"
      "                      AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true\n"
      "                      keeps only --endpoint.\n"
      "  AWS_CA_BUNDLE       CA bundle for TLS (else the profile's\n"
      "                      ca_bundle, else the system's).\n"
      "\n"
      "EXIT STATUS\n"
      "  0 published, 1 error, 2 bad usage.\n"
      "\n"
      "EXAMPLES\n"
      "  " PROGNAME " ./hg38 s3://genomes/refs --label hg38\n"
      "  " PROGNAME " ./weights /srv/mirror --fs squashfs --name llm-7b\n"
      "  " PROGNAME " ./refs s3://genomes/refs/ --fs erofs\n");
}

/* --chunk-size, with accel-index's rules: digits with an optional K or
 * M suffix, a power of two within the manifest format's limits.
 * Checked here so that a typo fails before a long build, not after.
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

/* SOURCE_DATE_EPOCH, or the default. */
static uint32_t
parse_epoch (void)
{
  const char *s = getenv ("SOURCE_DATE_EPOCH");
  unsigned long long n;
  char *end;

  if (s == NULL || *s == '\0')
    return DEFAULT_EPOCH;
  errno = 0;
  n = strtoull (s, &end, 10);
  if (s[0] < '0' || s[0] > '9' || errno != 0 || *end != '\0' || n == 0 ||
      n > UINT32_MAX)
    report_usage_error (
        "SOURCE_DATE_EPOCH: '%s' is not a number of seconds from 1 "
        "to 4294967295",
        s);
  return n;
}

/* An image name becomes part of a file name and an S3 key. */
static void
check_name (const char *name)
{
  const char *p;

  if (*name == '\0' || strcmp (name, ".") == 0 || strcmp (name, "..") == 0 ||
      strlen (name) > NAME_MAX_LEN)
    report_usage_error ("--name: '%s' is not a usable image name", name);
  for (p = name; *p; p++)
    if (*p == '/' || (unsigned char) *p < 0x20 || *p == 0x7f)
      report_usage_error ("--name: '%s': no '/' or control characters, please",
                          name);
}

/* The default name: the last component of SRC_DIR, resolved (so that
 * "." and "dir/" name the directory itself).
 */
static char *
default_name (const char *src)
{
  CLEANUP_FREE char *real = realpath (src, NULL);
  const char *slash;
  char *name;

  if (real == NULL) {
    report_error ("%s: %m", src);
    exit (EXIT_FAILURE);
  }
  slash = strrchr (real, '/');
  name = strdup (slash ? slash + 1 : real);
  if (name == NULL) {
    report_error ("strdup: %m");
    exit (EXIT_FAILURE);
  }
  if (*name == '\0') {
    report_error ("%s: cannot name an image after '/': use --name", src);
    exit (EXIT_FAILURE);
  }
  return name;
}

/* SRC_DIR must be a directory (followed if a symbolic link). */
static void
check_src (const char *src)
{
  struct stat st;

  if (stat (src, &st) == -1) {
    report_error ("%s: %m", src);
    exit (EXIT_FAILURE);
  }
  if (!S_ISDIR (st.st_mode)) {
    report_error ("%s: not a directory", src);
    exit (EXIT_FAILURE);
  }
}

static bool
is_s3 (const char *dest)
{
  return strncmp (dest, "s3://", 5) == 0;
}

/* A local DEST must be an existing directory; s3:// needs a bucket. */
static void
check_dest (const char *dest)
{
  struct stat st;

  if (is_s3 (dest)) {
    if (dest[5] == '\0' || dest[5] == '/')
      report_usage_error ("%s: no bucket in the S3 URL", dest);
    return;
  }
  if (strstr (dest, "://") != NULL)
    report_usage_error (
        "%s: DEST is s3://BUCKET/PREFIX/NAME or a local directory", dest);
  if (stat (dest, &st) == -1) {
    report_error ("%s: %m", dest);
    exit (EXIT_FAILURE);
  }
  if (!S_ISDIR (st.st_mode)) {
    report_error ("%s: not a directory", dest);
    exit (EXIT_FAILURE);
  }
}

/* Write the manifest of image, as accel-index would. */
static int
build_manifest (const struct mkimage_options *o, const char *image,
                const char *manifest, const struct build_result *br)
{
  struct index_options io = { .chunk_size = o->chunk_size,
                              .traces = o->hot,
                              .nr_traces = o->nr_hot,
                              .origin = { br->mkfs_blocks, br->mkfs_inodes } };
  struct index_stats st;
  int r;

  /* The indexer writes MANIFEST.tmp and renames it. */
  workdir_file ("image.img.manifest.tmp");
  progress_start ("indexing", 0);
  r = index_image (image, manifest, &io, &st);
  progress_end ();
  if (r == 0 && o->verbose)
    index_print_summary (stderr, PROGNAME, &st);
  return r;
}

/* --keep-image: move the image there if it is on the same file system,
 * else copy it.  *image then names the kept copy.
 */
static int
keep_image (const char *keep, const char **image)
{
  if (rename (*image, keep) == 0) {
    *image = keep;
    return 0;
  }
  if (errno != EXDEV) {
    report_error ("%s: rename from %s: %m", keep, *image);
    return -1;
  }
  return copy_file_atomic (*image, keep, "keeping image");
}

/* The last lines: a summary on stderr, what a node needs on stdout. */
static void
print_result (const struct mkimage_options *o, const struct build_result *r,
              uint64_t manifest_size, uint64_t uploaded, double secs)
{
  char isz[32], fsz[32], msz[32], usz[32], frsz[32], slack[32];
  size_t len = strlen (o->dest);

  /* The overhead is only meaningful for more than a few files. */
  slack[0] = '\0';
  if (r->file_bytes >= 1024 * 1024)
    snprintf (slack, sizeof slack, " (%+.1f%%)",
              ((double) r->image_size - r->file_bytes) * 100 / r->file_bytes);
  fprintf (stderr,
           PROGNAME ": %s.img: %s, %" PRIu64 " entries, %s for %s of files%s, "
                    "manifest %s",
           o->name, o->fs, r->nr_entries,
           format_size (r->image_size, isz, sizeof isz),
           format_size (r->file_bytes, fsz, sizeof fsz), slack,
           format_size (manifest_size, msz, sizeof msz));
  if (strcmp (o->fs, "ext4") == 0)
    fprintf (stderr, ", %s free",
             format_size (r->free_bytes, frsz, sizeof frsz));
  if (r->attempts > 1)
    fprintf (stderr, ", built in %u attempts", r->attempts);
  if (is_s3 (o->dest))
    fprintf (stderr, "; uploaded %s", format_size (uploaded, usz, sizeof usz));
  fprintf (stderr, "; %.1f s\n", secs);

  while (len > 1 && o->dest[len - 1] == '/')
    len--;
  if (is_s3 (o->dest)) {
    printf ("nbdkit accel url=%.*s/%s.img cache-dir=/var/cache/accel",
            (int) len, o->dest, o->name);
    if (o->endpoint_used)
      printf (" endpoint=%s", o->endpoint_used);
    printf ("\n");
  }
  else
    printf ("%.*s/%s.img\n%.*s/%s.img.manifest\n", (int) len, o->dest, o->name,
            (int) len, o->dest, o->name);
}

/* --base URL, or the default base of an s3:// DEST. */
static bool
is_url (const char *s)
{
  return strncmp (s, "s3://", 5) == 0 || strncmp (s, "http://", 7) == 0 ||
      strncmp (s, "https://", 8) == 0;
}

/* The base layout: --base (a file or a URL), or the manifest already
 * at DEST (none there: a fresh layout, said so).  Its chunk size is
 * the default.  A remote base is downloaded into the work directory
 * first.  0, or -1 (error reported).
 */
static int
load_base (struct mkimage_options *o)
{
  const char *path = o->base_path;

  if (path == NULL)
    return 0;
  if (is_url (path)) {
    int r;

    path = workdir_file ("base.manifest");
    r = publish_s3_fetch (o, o->base_path, path, o->base_default);
    if (r == -1)
      return -1;
    if (r == 1)
      path = NULL;
  }
  else if (o->base_default && access (path, F_OK) == -1)
    path = NULL;
  if (path == NULL) {
    report_warning ("no earlier version at %s: a fresh layout", o->base_path);
    return 0;
  }
  o->base = ext4_base_load (path);
  if (o->base == NULL) {
    /* The messages above name the downloaded copy, a temporary file. */
    if (is_url (o->base_path))
      report_error ("%s: not a usable base manifest (downloaded as %s, "
                    "above)",
                    o->base_path, path);
    return -1;
  }
  if (!o->chunk_size_given)
    o->chunk_size = ext4_base_chunk_size (o->base);
  else if (o->chunk_size != ext4_base_chunk_size (o->base)) {
    char a[32], b[32];

    /* NB: a warning, not an error: the only way to change the chunk
     * size of a dataset is one such version.
     */
    report_warning ("--chunk-size %s: the base's chunks are %s, so nodes "
                    "holding it fetch this version in full",
                    format_size (o->chunk_size, a, sizeof a),
                    format_size (ext4_base_chunk_size (o->base), b, sizeof b));
  }
  if (o->block_size && o->block_size != ext4_base_layout (o->base)->block_size)
    report_warning ("--block-size %u: a new version keeps its base's "
                    "%" PRIu32 "-byte blocks (--no-base for a fresh layout)",
                    o->block_size, ext4_base_layout (o->base)->block_size);
  return 0;
}

/* True if path (resolved) is src (resolved) or lies under it. */
static bool
is_inside (const char *src, const char *path)
{
  size_t len = strlen (src);

  return strcmp (src, "/") == 0 ||
      (strncmp (path, src, len) == 0 &&
       (path[len] == '/' || path[len] == '\0'));
}

/* What the build writes must be outside SRC_DIR, or it becomes part of
 * the tree: the work directory (in TMPDIR: the half-built image, the
 * logs and the manifest; ext4 publishes them, mksquashfs and mkfs.erofs
 * see the tree change), a local DEST and --keep-image (the next version
 * would hold this one's image and manifest, silently).
 */
static int
check_outputs_outside_src (const struct mkimage_options *o)
{
  CLEANUP_FREE char *src = realpath (o->src, NULL);
  CLEANUP_FREE char *work = realpath (workdir_dir (), NULL);
  CLEANUP_FREE char *dest = NULL;

  if (src == NULL || work == NULL) {
    report_error ("%s: %m", src == NULL ? o->src : workdir_dir ());
    return -1;
  }
  if (is_inside (src, work)) {
    report_error ("%s: the work directory %s is inside SRC_DIR: set TMPDIR "
                  "to a directory outside it",
                  o->src, work);
    return -1;
  }
  /* NB: a DEST that does not exist is reported when publishing. */
  if (!is_s3 (o->dest) && (dest = realpath (o->dest, NULL)) != NULL &&
      is_inside (src, dest)) {
    report_error ("%s: DEST %s is inside SRC_DIR: the next version would "
                  "hold this one's image; publish outside it",
                  o->src, o->dest);
    return -1;
  }
  if (o->keep_image) {
    CLEANUP_FREE char *copy = strdup (o->keep_image);
    CLEANUP_FREE char *keep = NULL;

    if (copy == NULL) {
      report_error ("strdup: %m");
      return -1;
    }
    keep = realpath (dirname (copy), NULL);
    if (keep && is_inside (src, keep)) {
      report_error ("%s: --keep-image %s is inside SRC_DIR: the next "
                    "version would hold this one's image; keep it outside",
                    o->src, o->keep_image);
      return -1;
    }
  }
  return 0;
}

/* The steps, in order.  0, or -1 (error reported). */
static int
mkimage (struct mkimage_options *o)
{
  struct build_result r = { 0 };
  const char *image, *manifest;
  uint64_t uploaded = 0;
  double start = now_monotonic_seconds ();
  struct stat st;
  int ret;

  if (is_s3 (o->dest) && publish_s3_check (o) == -1)
    return -1;
  if (workdir_create () == -1 || check_outputs_outside_src (o) == -1)
    return -1;
  if (load_base (o) == -1)
    return -1;
  image = workdir_file ("image.img");
  manifest = workdir_file ("image.img.manifest");

  if (strcmp (o->fs, "ext4") == 0)
    ret = ext4_build (o, image, &r);
  else if (strcmp (o->fs, "squashfs") == 0)
    ret = squashfs_build (o, image, &r);
  else
    ret = erofs_build (o, image, &r);
  if (ret == -1 || build_manifest (o, image, manifest, &r) == -1)
    return -1;
  if (o->keep_image && keep_image (o->keep_image, &image) == -1)
    return -1;

  if (is_s3 (o->dest))
    ret = publish_s3 (o, image, manifest, &uploaded);
  else
    ret = publish_dir (o, image, manifest);
  if (ret == -1)
    return -1;

  if (stat (manifest, &st) == -1) {
    report_error ("%s: stat: %m", manifest);
    return -1;
  }
  print_result (o, &r, st.st_size, uploaded, now_monotonic_seconds () - start);
  return 0;
}

/* s3://BUCKET/PREFIX/NAME names the image: the objects are
 * PREFIX/NAME.img and PREFIX/NAME.img.manifest.  A DEST that is only a
 * bucket or ends in '/' is a prefix, and NAME comes from --name or
 * SRC_DIR.  Sets o->dest to the prefix part (in *prefix, to free).
 */
static void
split_s3_dest (struct mkimage_options *o, char **prefix)
{
  const char *key, *slash;

  if (!is_s3 (o->dest))
    return;
  key = strchr (o->dest + 5, '/');
  if (key == NULL || key[1] == '\0' || o->dest[strlen (o->dest) - 1] == '/')
    return;
  slash = strrchr (o->dest, '/');
  if (o->name && strcmp (o->name, slash + 1) != 0)
    report_usage_error (
        "--name %s: DEST %s already names the image '%s' (end DEST "
        "with '/' to give a prefix)",
        o->name, o->dest, slash + 1);
  check_name (slash + 1);
  o->name = slash + 1;
  *prefix = strndup (o->dest, slash - o->dest);
  if (*prefix == NULL) {
    perror (PROGNAME ": strndup");
    exit (EXIT_FAILURE);
  }
  o->dest = *prefix;
}

/* Options first (bad usage exits 2 before any work), then one run. */
int
main (int argc, char *argv[])
{
  struct mkimage_options o = { .fs = "ext4",
                               .chunk_size = INDEX_DEFAULT_CHUNK_SIZE };
  CLEANUP_FREE char *name = NULL, *dest_prefix = NULL, *dest_base = NULL;
  bool no_base = false;
  CLEANUP_FREE char **hot = NULL;
  int c, ret;

  hot = calloc (argc, sizeof *hot);
  if (hot == NULL) {
    perror (PROGNAME ": calloc");
    exit (EXIT_FAILURE);
  }
  o.hot = hot;

  report_set_tool (PROGNAME, false);
  opterr = 0;
  for (;;) {
    c = getopt_long (argc, argv, short_options, long_options, NULL);
    if (c == -1)
      break;
    switch (c) {
    case 'v':
      o.verbose = true;
      break;
    case BASE_OPTION:
      o.base_path = optarg;
      break;
    case CHUNK_SIZE_OPTION:
      o.chunk_size = parse_chunk_size (optarg);
      o.chunk_size_given = true;
      break;
    case COMPRESS_OPTION:
      o.compress = true;
      break;
    case ENDPOINT_OPTION:
      o.endpoint = optarg;
      break;
    case FS_OPTION:
      if (strcmp (optarg, "ext4") != 0 && strcmp (optarg, "squashfs") != 0 &&
          strcmp (optarg, "erofs") != 0)
        report_usage_error ("--fs: '%s': ext4, squashfs or erofs", optarg);
      o.fs = optarg;
      break;
    case HOT_OPTION:
      if (access (optarg, R_OK) == -1) {
        report_error ("--hot: %s: %m", optarg);
        exit (EXIT_FAILURE);
      }
      o.hot[o.nr_hot++] = optarg;
      break;
    case KEEP_IMAGE_OPTION:
      o.keep_image = optarg;
      break;
    case LABEL_OPTION:
      o.label = optarg;
      break;
    case BLOCK_SIZE_OPTION:
      if (strcmp (optarg, "4096") == 0)
        o.block_size = 4096;
      else if (strcmp (optarg, "1024") == 0)
        o.block_size = 1024;
      else if (strcmp (optarg, "auto") != 0)
        report_usage_error ("--block-size: '%s': 4096, 1024 or auto", optarg);
      break;
    case NAME_OPTION:
      o.name = optarg;
      break;
    case NO_BASE_OPTION:
      no_base = true;
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
  if (argc - optind != 2)
    report_usage_error (argc - optind < 2 ? "SRC_DIR and DEST are required"
                                          : "too many arguments");
  o.src = argv[optind];
  o.dest = argv[optind + 1];
  if (*o.src == '\0' || *o.dest == '\0')
    report_usage_error ("SRC_DIR and DEST must not be empty");
  if (o.label && strcmp (o.fs, "ext4") != 0)
    report_usage_error ("--label: only ext4 images have a label");
  if (o.block_size && strcmp (o.fs, "ext4") != 0)
    report_usage_error ("--block-size: only for ext4 images");
  if (o.label && strlen (o.label) > EXT4_LABEL_MAX)
    report_usage_error ("--label: '%s' is longer than %d bytes", o.label,
                        EXT4_LABEL_MAX);
  if (o.compress && strcmp (o.fs, "squashfs") != 0)
    report_usage_error ("--compress: only for --fs squashfs");
  if (o.endpoint && !is_s3 (o.dest) && !(o.base_path && is_url (o.base_path)))
    report_usage_error ("--endpoint: only for an s3:// DEST or --base URL");
  if (o.base_path && no_base)
    report_usage_error ("--base and --no-base: one or the other");
  if ((o.base_path || no_base) && strcmp (o.fs, "ext4") != 0)
    report_usage_error ("--base, --no-base: only for ext4 images");
  if (o.base_path && strstr (o.base_path, "://") != NULL &&
      !is_url (o.base_path))
    report_usage_error ("--base %s: a manifest file, or s3://, http:// or "
                        "https:// URL",
                        o.base_path);
  if (o.name)
    check_name (o.name);
  check_dest (o.dest);
  split_s3_dest (&o, &dest_prefix);
  o.epoch = parse_epoch ();

  report_set_tool (PROGNAME, o.verbose);
  progress_init ();
  check_src (o.src);
  if (o.name == NULL) {
    name = default_name (o.src);
    check_name (name);
    o.name = name;
  }
  /* The default base: the version already at DEST. */
  if (!no_base && o.base_path == NULL && strcmp (o.fs, "ext4") == 0) {
    size_t len = strlen (o.dest);

    while (len > 1 && o.dest[len - 1] == '/')
      len--;
    if (asprintf (&dest_base, "%.*s/%s.img.manifest", (int) len, o.dest,
                  o.name) == -1) {
      dest_base = NULL;
      perror (PROGNAME ": asprintf");
      exit (EXIT_FAILURE);
    }
    o.base_path = dest_base;
    o.base_default = true;
  }
  ret = mkimage (&o);
  ext4_base_free (o.base);
  free (o.endpoint_used);
  return ret == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
