/* accel-cache: verify, evict and gc — the commands that change a cache,
 * safely while nbdkit serves from it.
 *
 * The work is done by common/cache/cache-admin.c and cache-verify.c, under
 * the directory lock and through the eviction the plugin itself uses;
 * this file chooses what to do from the command line and says what was
 * done.  A chunk dropped under a running server is, for that server,
 * just another evicted chunk: it fetches it again when it is read.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "format.h"
#include "manifest.h"
#include "report.h"
#include "sha256-file.h"
#include "tool.h"

/* cache_expected_fn: the hash the image's manifest gives a chunk. */
static int
manifest_hash (void *opaque, uint64_t idx, unsigned char sha256[32])
{
  struct manifest *m = opaque;

  if (manifest_chunk_sha256 (m, idx, sha256) == -1)
    return -1;
  return 1;
}

/* NB: a manifest's copy is named after its URL, so a server that has
 * downloaded another version since the listing wrote it over the one
 * that was listed: checking chunks against it would drop good ones.
 * Called with the copy open (m), so that what sqlite reads is what was
 * hashed, unless it is replaced again meanwhile (then the hashes the
 * map recorded are used, as here).
 */
static bool
still_its_manifest (const struct cache_image_info *info, const char *path)
{
  char digest[65];

  return info->identity && strncmp (info->identity, "manifest:", 9) == 0 &&
      sha256_file (path, digest) == 0 &&
      strcmp (digest, info->identity + 9) == 0;
}

/* Verify one image; adds what was found to *total.  0 or -1. */
static int
verify_one (struct cache_dir *d, const struct listing *l, size_t i,
            struct cache_verify_result *total)
{
  const struct cache_image_info *info = &l->images[i];
  struct cache_verify_result res;
  struct manifest *m = NULL;
  char id[13];
  int r;

  if (!info->valid) {
    char h[32];

    print_name (info);
    printf (" (%s): no valid map: nothing to verify\n",
            short_id (info->id, id));
    /* NB: not one being created: that one is served already. */
    if (!info->serving && info->disk_bytes > 0) {
      report_error ("image %s: its map is missing or damaged, so its %s "
                    "of data can never be served; free them with " PROGNAME
                    " evict %s",
                    info->id, format_size (info->disk_bytes, h, sizeof h),
                    short_id (info->id, id));
      return -1;
    }
    return 0;
  }
  /* Against the manifest, which is what the bytes must be; the hashes
   * in the map were recorded from it, but could be damaged too.
   */
  if (l->manifest[i]) {
    m = manifest_open (l->manifest[i]);
    if (m == NULL)
      return -1;
    if (manifest_image_size (m) != info->image_size ||
        manifest_chunk_size (m) != info->chunk_size) {
      report_error ("%s: the manifest does not describe image %s (size or "
                    "chunk size differs)",
                    l->manifest[i], info->id);
      manifest_close (m);
      return -1;
    }
    if (!still_its_manifest (info, l->manifest[i])) {
      report_debug ("%s: another version's manifest now: checking image %s "
                    "against the hashes its map recorded",
                    l->manifest[i], info->id);
      manifest_close (m);
      m = NULL;
    }
  }
  r = cache_dir_verify_image (d, info->id, m ? manifest_hash : NULL, m, &res);
  manifest_close (m);
  if (r == -1)
    return -1;

  print_name (info);
  printf (" (%s): %" PRIu64 " chunks checked against %s: %" PRIu64
          " good, %" PRIu64 " bad%s",
          short_id (info->id, id), res.checked,
          m ? "the manifest" : "the hashes recorded when they were cached",
          res.checked - res.bad, res.bad, res.bad ? " (dropped)" : "");
  if (res.changed)
    printf ("; %" PRIu64 " evicted or replaced while being read (skipped)",
            res.changed);
  putchar ('\n');
  total->checked += res.checked;
  total->bad += res.bad;
  total->changed += res.changed;
  return 0;
}

int
do_verify (struct cache_dir *d, const struct listing *l)
{
  struct cache_verify_result total = { 0 };
  size_t i, n = 0;
  int status = EXIT_SUCCESS;

  for (i = 0; i < l->n; i++) {
    if (!l->selected[i])
      continue;
    n++;
    if (verify_one (d, l, i, &total) == -1)
      status = EXIT_FAILURE;
  }
  printf ("verified %zu image%s: %" PRIu64 " chunks, %" PRIu64
          " bad (dropped: nbdkit fetches them again when they are read)\n",
          n, n == 1 ? "" : "s", total.checked, total.bad);
  if (total.bad > 0)
    status = EXIT_FAILURE;
  return status;
}

/* "3 chunks (3.0 MiB)". */
static void
print_evicted (const struct cache_evict_result *res)
{
  char h[32];

  printf ("%" PRIu64 " chunk%s (%s)", res->chunks, res->chunks == 1 ? "" : "s",
          format_size (res->bytes, h, sizeof h));
}

/* "cache usage 20.0 MiB -> 8.0 MiB". */
static void
print_usage (const struct cache_evict_result *res)
{
  char h1[32], h2[32];

  printf ("cache usage %s -> %s\n",
          format_size (res->usage_before, h1, sizeof h1),
          format_size (res->usage_after, h2, sizeof h2));
}

int
do_evict_images (struct cache_dir *d, const struct listing *l)
{
  struct cache_evict_result res;
  uint64_t before = UINT64_MAX, after = 0;
  size_t i;
  char id[13];

  for (i = 0; i < l->n; i++) {
    if (!l->selected[i])
      continue;
    if (cache_dir_evict_image (d, l->images[i].id, &res) == -1)
      return EXIT_FAILURE;
    if (before == UINT64_MAX)
      before = res.usage_before;
    after = res.usage_after;
    print_name (&l->images[i]);
    printf (" (%s): evicted ", short_id (l->images[i].id, id));
    print_evicted (&res);
    if (res.removed)
      printf ("; removed from the cache\n");
    else
      printf ("; kept: a running nbdkit serves it (it fetches again what "
              "it reads)\n");
  }
  res.usage_before = before;
  res.usage_after = after;
  print_usage (&res);
  return EXIT_SUCCESS;
}

int
do_evict_older (struct cache_dir *d, uint64_t seconds)
{
  struct cache_evict_result res;
  time_t now = now_wall_seconds ();
  uint32_t before;

  /* NB: access times are 32-bit seconds (docs/cache-format.md). */
  before = (uint64_t) now > seconds ? (uint32_t) (now - seconds) : 1;
  if (cache_dir_evict_older (d, before, &res) == -1)
    return EXIT_FAILURE;
  printf ("evicted ");
  print_evicted (&res);
  printf (" not used for %" PRIu64 " s; removed %u image%s nobody used "
          "since",
          seconds, res.removed, res.removed == 1 ? "" : "s");
  if (res.busy)
    printf (" (kept %u that a running nbdkit serves)", res.busy);
  printf ("\n");
  print_usage (&res);
  return EXIT_SUCCESS;
}

int
do_gc (struct cache_dir *d, uint64_t target)
{
  struct cache_evict_result res;
  char h[32];

  if (cache_dir_gc (d, target, &res) == -1)
    return EXIT_FAILURE;
  printf ("evicted ");
  print_evicted (&res);
  printf (", of images nobody serves first, to bring the cache to %s",
          format_size (target, h, sizeof h));
  if (res.removed)
    printf ("; removed %u image%s whose map was missing or damaged",
            res.removed, res.removed == 1 ? "" : "s");
  putchar ('\n');
  print_usage (&res);
  /* NB: not a failure: what is left is not evictable yet, and would be
   * stored again at once by the servers reading it.
   */
  if (res.usage_after > target)
    printf ("the rest are chunks being stored right now (recorded within "
            "a second) and file system blocks of the data files\n");
  return EXIT_SUCCESS;
}
