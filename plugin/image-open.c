/* accel plugin: opening the image — the S3 object, its manifest (kept
 * locally in CACHE_DIR/manifests/ and downloaded again only when its ETag
 * changes), and the image's cache, named by the manifest's digest when
 * there is one, else by the object's name, ETag and size.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "cleanup.h"
#include "clock.h"
#include "hex.h"
#include "image.h"
#include "offline.h"
#include "report.h"
#include "sha256-file.h"

#define DEFAULT_CHUNK_SIZE (1024 * 1024)

/* Read a small text file (the saved ETag); NULL if absent. */
static char *
read_small (const char *path)
{
  char buf[1024];
  ssize_t r;
  int fd = open (path, O_RDONLY | O_CLOEXEC);

  if (fd == -1)
    return NULL;
  r = read (fd, buf, sizeof buf - 1);
  close (fd);
  if (r <= 0)
    return NULL;
  buf[r] = '\0';
  return strdup (buf);
}

/* Bring the remote manifest's local copy up to date; returns its path.
 * NB: the copy is named after the manifest object and version (not its
 * content), so a restart with an unchanged ETag downloads nothing.
 */
static char *
fetch_manifest (struct image *img, const char *cache_dir, const char *url,
                bool missing_ok, bool *missing, char digest[65])
{
  CLEANUP_FREE char *dir = NULL, *etag_path = NULL, *tmp = NULL;
  CLEANUP_FREE char *saved = NULL, *versioned = NULL;
  CLEANUP_FREE char *sum_path = NULL, *saved_sum = NULL;
  struct s3_object *mobj;
  unsigned char id[32];
  char hex[65];
  char *path = NULL;
  const char *name;
  int fd;

  *missing = false;
  mobj = s3_object_open (img->s3, url, missing_ok);
  if (mobj == NULL) {
    *missing = missing_ok && errno == ENOENT;
    return NULL;
  }
  /* NB: each version of a versioned manifest key gets its own copy, so
   * that a node serving v2 does not rename its manifest over the one a
   * node still serving v1 has recorded (offline.c, accel-prefetch).
   */
  if (s3_object_version_id (mobj)) {
    if (asprintf (&versioned, "%s\nversion:%s", s3_object_identity (mobj),
                  s3_object_version_id (mobj)) == -1) {
      report_error ("asprintf: %m");
      goto err;
    }
    name = versioned;
  }
  else
    name = s3_object_identity (mobj);
  SHA256 ((const unsigned char *) name, strlen (name), id);
  hex_encode (id, 32, hex);
  if (asprintf (&dir, "%s/manifests", cache_dir) == -1 ||
      asprintf (&path, "%s/%s", dir, hex) == -1 ||
      asprintf (&etag_path, "%s.etag", path) == -1 ||
      asprintf (&sum_path, "%s.sha256", path) == -1 ||
      asprintf (&tmp, "%s.tmp", path) == -1) {
    report_error ("asprintf: %m");
    goto err;
  }
  if (mkdir (dir, 0700) == -1 && errno != EEXIST) {
    report_error ("manifest: mkdir: %s: %m", dir);
    goto err;
  }

  /* NB: the local copy is used only if it still has the SHA-256 it
   * had when it was downloaded: damage at rest (a flipped bit can turn
   * a data chunk into an "all zeros" one) is downloaded again, never
   * served from.
   */
  saved = read_small (etag_path);
  if (saved && strcmp (saved, s3_object_etag (mobj)) == 0 &&
      access (path, R_OK) == 0) {
    saved_sum = read_small (sum_path);
    if (saved_sum && sha256_file (path, digest) == 0 &&
        strcmp (saved_sum, digest) == 0) {
      report_debug ("manifest: %s: local copy is current", url);
      s3_object_close (mobj);
      return path;
    }
    if (saved_sum)
      report_warning ("manifest: %s: the local copy %s is damaged (its "
                      "SHA-256 changed): downloading it again",
                      url, path);
    else
      report_debug ("manifest: %s: the local copy %s has no recorded "
                    "SHA-256: downloading it again",
                    url, path);
  }

  report_debug ("manifest: downloading %s", url);
  fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd == -1) {
    report_error ("manifest: %s: %m", tmp);
    goto err;
  }
  if (s3_object_get_to_fd (mobj, fd, MANIFEST_MAX_FILE_SIZE) == -1) {
    close (fd);
    unlink (tmp);
    goto err;
  }
  if (fsync (fd) == -1 || close (fd) == -1 || rename (tmp, path) == -1) {
    report_error ("manifest: saving %s: %m", path);
    unlink (tmp);
    goto err;
  }
  if (sha256_file (path, digest) == -1 ||
      image_write_small (sum_path, digest) == -1 ||
      image_write_small (etag_path, s3_object_etag (mobj)) == -1)
    goto err;
  s3_object_close (mobj);
  return path;

err:
  s3_object_close (mobj);
  free (path);
  return NULL;
}

/* Find, fetch and open the manifest as configured.  Sets img->manifest
 * (NULL when there is none) and the cache identity string.
 */
static int
open_manifest (struct image *img, const struct image_config *cfg,
               char **identity)
{
  CLEANUP_FREE char *local = NULL, *default_url = NULL;
  const char *where = cfg->manifest;
  char digest[65];
  bool remote = false;

  *identity = NULL;
  if (where && strcmp (where, "none") == 0) {
    if (cfg->manifest_sha256) {
      report_error ("manifest-sha256= pins a manifest, but manifest=none");
      return -1;
    }
    return 0;
  }

  if (where && strstr (where, "://") == NULL)
    local = strdup (where); /* a local file */
  else {
    bool missing_ok = where == NULL, missing;
    remote = true;
    if (where == NULL) {
      /* Default: URL.manifest, unless the URL has a query (presigned). */
      if (strchr (cfg->url, '?') != NULL)
        return 0;
      if (asprintf (&default_url, "%s.manifest", cfg->url) == -1) {
        report_error ("asprintf: %m");
        return -1;
      }
      where = default_url;
    }
    local = fetch_manifest (img, cfg->cache_dir, where, missing_ok, &missing,
                            digest);
    if (local == NULL) {
      if (missing && cfg->manifest_sha256) {
        report_error ("%s: no manifest there, but manifest-sha256= pins one",
                      where);
        return -1;
      }
      if (missing) {
        report_debug ("no manifest at %s: chunks are verified only against "
                      "the hashes recorded when they were cached",
                      where);
        return 0;
      }
      return -1;
    }
  }
  if (local == NULL) {
    report_error ("strdup: %m");
    return -1;
  }

  /* NB: the pin is checked before the manifest is parsed at all.  A
   * downloaded copy's digest is known already (fetch_manifest).
   */
  if (!remote && sha256_file (local, digest) == -1)
    return -1;
  if (cfg->manifest_sha256 && strcasecmp (cfg->manifest_sha256, digest) != 0) {
    report_error ("manifest %s has SHA-256 %s, but manifest-sha256= pins %s: "
                  "refusing it",
                  where ? where : local, digest, cfg->manifest_sha256);
    return -1;
  }
  img->manifest = manifest_open (local);
  if (img->manifest == NULL)
    return -1;
  memcpy (img->manifest_sha256, digest, sizeof digest);
  /* Absolute: it is recorded for later runs (offline.c, accel-prefetch). */
  img->manifest_path = realpath (local, NULL);
  if (img->manifest_path == NULL) {
    report_error ("manifest: %s: realpath: %m", local);
    return -1;
  }
  *identity = image_cache_identity (digest, NULL, NULL, NULL, 0);
  return *identity ? 0 : -1;
}

/* The object's name (for messages) and size, which the HEAD that
 * opened it learnt.  An empty object is no image.
 */
static int
learn_object (struct image *img)
{
  img->name = strdup (s3_object_name (img->obj));
  if (img->name == NULL) {
    report_error ("strdup: %m");
    return -1;
  }
  img->size = s3_object_size (img->obj);
  if (img->size == 0) {
    report_error ("%s: the object is empty", s3_object_name (img->obj));
    return -1;
  }
  return 0;
}

/* How the image is cut into chunks: as its manifest says (which must
 * describe this object and agree with chunk-size=), else chunk-size= or
 * 1 MiB.  Without a manifest, the cache identity is the object's
 * (*identity is set), since no digest names its content.
 */
static int
choose_chunks (struct image *img, const struct image_config *cfg,
               char **identity)
{
  if (img->manifest) {
    img->chunk_size = manifest_chunk_size (img->manifest);
    if (manifest_image_size (img->manifest) != img->size) {
      report_error ("%s: the manifest is for an image of %" PRIu64
                    " bytes but the object has %" PRIu64 ": they do not "
                    "belong together (re-publish both, or set manifest=)",
                    s3_object_name (img->obj),
                    manifest_image_size (img->manifest), img->size);
      return -1;
    }
    if (cfg->chunk_size && cfg->chunk_size != img->chunk_size) {
      report_error ("chunk-size=%" PRIu32 " differs from the manifest's "
                    "chunk size %" PRIu32 ": leave chunk-size unset",
                    cfg->chunk_size, img->chunk_size);
      return -1;
    }
  }
  else {
    img->chunk_size = cfg->chunk_size ? cfg->chunk_size : DEFAULT_CHUNK_SIZE;
    *identity = image_cache_identity (
        NULL, s3_object_identity (img->obj), s3_object_etag (img->obj),
        s3_object_version_id (img->obj), img->size);
    if (*identity == NULL)
      return -1;
  }
  img->nr_chunks = (img->size + img->chunk_size - 1) / img->chunk_size;
  return 0;
}

/* The image's cache under identity, and dedup if asked for.  NB: dedup
 * needs the manifest's hashes: without them nothing says what a chunk
 * of this image must be, so no other copy can be trusted.
 */
static int
open_cache (struct image *img, const struct image_config *cfg,
            const char *identity)
{
  img->cache = cache_image_open (img->dir, identity, cfg->url, img->size,
                                 img->chunk_size, image_expected_hash, img);
  if (img->cache == NULL)
    return -1;
  if (cfg->dedup && img->manifest) {
    img->dedup = cache_dedup_open (img->cache);
    if (img->dedup == NULL)
      return -1;
  }
  return 0;
}

/* Whether the manifest is fetched from the origin (and so may race a
 * republish), not a local file or none.
 */
static bool
manifest_is_remote (const struct image_config *cfg)
{
  return cfg->manifest == NULL || strstr (cfg->manifest, "://") != NULL;
}

/* Whether the manifest can never change: a local file, a pin by
 * manifest-sha256=, or a URL that names one version (versionId=).
 */
static bool
manifest_is_fixed (const struct image_config *cfg)
{
  const char *q;

  if (!manifest_is_remote (cfg) || cfg->manifest_sha256)
    return true;
  /* NB: in an s3:// URL a '?' is part of the key; versionId=null
   * names the version a PUT to an unversioned key replaces.
   */
  if (cfg->manifest == NULL ||
      (strncmp (cfg->manifest, "http://", 7) != 0 &&
       strncmp (cfg->manifest, "https://", 8) != 0))
    return false;
  q = strchr (cfg->manifest, '?');
  if (q == NULL)
    return false;
  q++;
  while (strncmp (q, "versionId=", 10) != 0) {
    q = strchr (q, '&');
    if (q == NULL)
      return false;
    q++;
  }
  q += 10;
  return *q != '\0' && *q != '&' && *q != '#' &&
      !(strncmp (q, "null", 4) == 0 &&
        (q[4] == '\0' || q[4] == '&' || q[4] == '#'));
}

/* Drop the manifest open_manifest opened, to pair again. */
static void
forget_manifest (struct image *img)
{
  manifest_close (img->manifest);
  img->manifest = NULL;
  free (img->manifest_path);
  img->manifest_path = NULL;
  img->manifest_sha256[0] = '\0';
}

/* NB: the image and its manifest are pinned by two HEADs, and a
 * republish between them could pair the old image with the new
 * manifest (same size: then every chunk would fail its hash).  A
 * publish writes the image before the manifest, so if the image's key
 * still names the ETag and version we pinned once the manifest is
 * open, that manifest is not from a later publish.  Returns 1 if so, 0
 * if the key moved on (img->obj is then the new object, to pair
 * again), or -1.
 */
static int
image_unchanged (struct image *img, const struct image_config *cfg)
{
  struct s3_object *now;
  const char *v0, *v1;

  now = s3_object_open (img->s3, cfg->url, false);
  if (now == NULL)
    return -1;
  v0 = s3_object_version_id (img->obj);
  v1 = s3_object_version_id (now);
  if (strcmp (s3_object_etag (now), s3_object_etag (img->obj)) == 0 &&
      (v0 == NULL) == (v1 == NULL) && (v0 == NULL || strcmp (v0, v1) == 0)) {
    s3_object_close (now);
    return 1;
  }
  report_debug ("%s: republished while opening: pairing the new version "
                "with its manifest",
                s3_object_name (now));
  s3_object_close (img->obj);
  img->obj = now;
  forget_manifest (img);
  free (img->name);
  img->name = NULL;
  return learn_object (img) == -1 ? -1 : 0;
}

/* NB: the pairing above cannot see the one window a publish leaves: a
 * node starting between the upload of a new image and that of its
 * manifest finds the new image beside the old manifest.  accel-mkimage
 * gives the image the SHA-256 its manifest records (S3_META_IMAGE_SHA256),
 * so the pair can be checked; a manifest updated alone (a new hot
 * list) keeps it.  An object without one (another publisher, or an
 * older accel-mkimage) is taken on trust, as before: its chunks are
 * still checked against the manifest, so a wrong pair fails reads but
 * never serves wrong bytes.  Returns 1 if the manifest is the
 * object's (or nothing says), 0 if not but the manifest's URL may yet
 * get the right one (wait and look again), or -1 (error reported, at
 * once if the manifest cannot change).
 */
static int
manifest_pairs (struct image *img, const struct image_config *cfg,
                double deadline, bool *waiting)
{
  const char *want = s3_object_image_sha256 (img->obj);
  char have[65];

  hex_encode (manifest_image_sha256 (img->manifest), 32, have);
  if (want == NULL || strcmp (want, have) == 0)
    return 1;
  if (manifest_is_fixed (cfg)) {
    report_error (
        "%s: the object is an image with SHA-256 %s, but the "
        "manifest %s is for one with SHA-256 %s: they do not "
        "belong together",
        s3_object_name (img->obj), want,
        cfg->manifest ? cfg->manifest : "pinned by manifest-sha256=", have);
    return -1;
  }
  if (now_monotonic_seconds () >= deadline) {
    report_error ("%s: the object is an image with SHA-256 %s, but its "
                  "manifest is still for one with SHA-256 %s after %u s: "
                  "was the image uploaded without its manifest?  Publish "
                  "again, or wait longer with publish-wait=",
                  s3_object_name (img->obj), want, have, cfg->publish_wait);
    return -1;
  }
  if (!*waiting)
    report_warning ("%s: the manifest is for another version of the image "
                    "(SHA-256 %.12s, not %.12s): a publish under way?  "
                    "Waiting up to %u s for the image's own",
                    s3_object_name (img->obj), have, want, cfg->publish_wait);
  *waiting = true;
  return 0;
}

/* Back off together with every nbdkit of the node: the throttle
 * state lives in the cache directory (docs/cache-format.md).  If it
 * cannot, this process backs off on its own.
 */
static void
share_throttle (struct image *img, const char *cache_dir)
{
  CLEANUP_FREE char *path = NULL;

  if (asprintf (&path, "%s/throttle", cache_dir) == -1) {
    path = NULL;
    return;
  }
  s3_client_share_throttle (img->s3, path);
}

struct image *
image_open (const struct image_config *cfg)
{
  CLEANUP_FREE char *identity = NULL;
  struct image *img;
  unsigned republished = 0;
  bool waiting = false;
  double deadline;

  img = calloc (1, sizeof *img);
  if (img == NULL) {
    report_error ("calloc: %m");
    return NULL;
  }
  img->s3 = s3_client_new (&cfg->s3);
  if (img->s3 == NULL)
    goto err;
  img->obj = s3_object_open (img->s3, cfg->url, false);
  if (img->obj == NULL) {
    /* Unreachable (not refused): a complete cache may serve it. */
    if (offline_unreachable (errno) && offline_open (cfg, img) == 0)
      return img;
    goto err;
  }
  if (learn_object (img) == -1)
    goto err;
  /* The cache directory first: the manifest's local copy lives in it. */
  if (image_open_cache_dir (img, cfg) == -1)
    goto err;
  share_throttle (img, cfg->cache_dir);
  deadline = now_monotonic_seconds () + cfg->publish_wait;
  for (;;) {
    int r = 1;

    if (open_manifest (img, cfg, &identity) == -1)
      goto err;
    if (img->manifest == NULL)
      break;
    if (manifest_is_remote (cfg)) {
      r = image_unchanged (img, cfg);
      if (r == -1)
        goto err;
      if (r == 0 && ++republished == 3) {
        report_error ("%s: republished three times while opening it: try "
                      "again when publishing is done",
                      s3_object_name (img->obj));
        goto err;
      }
    }
    if (r == 1) {
      r = manifest_pairs (img, cfg, deadline, &waiting);
      if (r == -1)
        goto err;
      if (r == 1)
        break;
      forget_manifest (img);
      sleep (1);
    }
    free (identity);
    identity = NULL;
  }
  if (choose_chunks (img, cfg, &identity) == -1 ||
      open_cache (img, cfg, identity) == -1)
    goto err;

  report_debug ("serving %s: %" PRIu64 " bytes, %" PRIu64 " chunks of %" PRIu32
                ", ETag %s, version %s, %s, cache %s",
                s3_object_name (img->obj), img->size, img->nr_chunks,
                img->chunk_size, s3_object_etag (img->obj),
                s3_object_version_id (img->obj)
                    ? s3_object_version_id (img->obj)
                    : "none (a change of the object fails reads)",
                img->manifest ? "verified by manifest" : "no manifest",
                cache_image_dir (img->cache));
  /* What an offline start needs to know, should the origin be
   * unreachable next time.
   */
  offline_save (cfg, img);
  return img;

err:
  image_close (img);
  return NULL;
}

/* Everything image_open made, in reverse, whatever it got to. */
void
image_close (struct image *img)
{
  if (img == NULL)
    return;
  cache_dedup_close (img->dedup);
  cache_image_close (img->cache);
  cache_dir_close (img->dir);
  manifest_close (img->manifest);
  s3_object_close (img->obj);
  s3_client_free (img->s3);
  free (img->manifest_path);
  free (img->name);
  free (img);
}
