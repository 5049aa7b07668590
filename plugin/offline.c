/* accel plugin: starting without the origin.
 *
 * A node that hydrated an image completely (prefetch=all) should keep
 * serving it when S3 cannot be reached, say after a reboot in an
 * outage.  But the plugin normally learns which version to serve from
 * the origin (HEAD: size and ETag; then the manifest), and it must never
 * serve some other version than the one it would serve online.
 *
 * So every start with the origin writes a record of what it opened,
 * CACHE_DIR/origins/KEY, where KEY is the SHA-256 of the settings that
 * name the image (url= without any query string, endpoint=, manifest=):
 *
 *   accel-origin v1
 *   name=s3://bucket/datasets/genome.img
 *   etag="..."
 *   size=...
 *   chunk-size=...
 *   manifest=/var/cache/accel/manifests/...    (empty without one)
 *   manifest-sha256=...                        (empty without one)
 *   object-identity=...
 *   version-id=...                              (only in a versioned bucket)
 *
 * When opening the object fails because the origin is unreachable
 * (offline_unreachable: connection refused, no route, DNS, timeouts,
 * resets, after all retries), a start with the same settings finds the
 * record, checks that the manifest's local copy is still the file
 * recorded (its SHA-256), opens the cache of that exact identity and
 * counts its chunks.  Only if every chunk that is not all zeros is
 * there does it serve, offline: nothing is fetched, and a chunk that
 * goes missing later (evicted, found damaged) fails its reads with EIO.
 * Any answer from the origin (403, 404, 412...) still stops the start:
 * the object may be gone or replaced, and that must not be papered over.
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
#include "hex.h"
#include "offline.h"
#include "report.h"
#include "sha256-file.h"

#define RECORD_MAGIC "accel-origin v1"
#define MAX_RECORD OFFLINE_MAX_RECORD

bool
offline_unreachable (int err)
{
  return err == ECONNREFUSED || err == EHOSTUNREACH || err == ETIMEDOUT ||
      err == ECONNRESET || err == ENETUNREACH;
}

/* CACHE_DIR/origins/KEY for these settings (malloc'd), NULL on error.
 * NB: the endpoint is the one the client chose, which may come from the
 * environment or the profile rather than endpoint=.
 */
static char *
record_path (const struct image_config *cfg, const struct image *img)
{
  const char *endpoint = s3_client_endpoint (img->s3);
  CLEANUP_FREE char *key = NULL;
  unsigned char md[32];
  char hex[65], *path;

  if (asprintf (&key, "url=%.*s\nendpoint=%s\nmanifest=%s",
                (int) strcspn (cfg->url, "?"), cfg->url,
                endpoint ? endpoint : "",
                cfg->manifest ? cfg->manifest : "") == -1) {
    key = NULL;
    report_error ("asprintf: %m");
    return NULL;
  }
  SHA256 ((const unsigned char *) key, strlen (key), md);
  hex_encode (md, 32, hex);
  if (asprintf (&path, "%s/origins/%s", cfg->cache_dir, hex) == -1) {
    report_error ("asprintf: %m");
    return NULL;
  }
  return path;
}

char *
offline_read_record (const char *path)
{
  char *text;
  ssize_t r;
  size_t len = 0;
  int fd;

  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd == -1) {
    if (errno != ENOENT)
      report_error ("%s: %m", path);
    return NULL;
  }
  /* NB: a byte more than a record, so that a longer file is refused
   * (offline_parse_record) rather than cut to a shorter record.
   */
  text = malloc (MAX_RECORD + 2);
  if (text == NULL) {
    report_error ("malloc: %m");
    close (fd);
    return NULL;
  }
  while (len < MAX_RECORD + 1 &&
         (r = read (fd, text + len, MAX_RECORD + 1 - len)) != 0) {
    if (r == -1 && errno == EINTR)
      continue;
    if (r == -1) {
      report_error ("%s: read: %m", path);
      close (fd);
      free (text);
      return NULL;
    }
    len += r;
  }
  close (fd);
  text[len] = '\0';
  return text;
}

/* A decimal number that fills the whole value. */
static int
parse_number (const char *s, uint64_t *out)
{
  char *end;

  if (*s < '0' || *s > '9')
    return -1;
  errno = 0;
  *out = strtoull (s, &end, 10);
  return errno || *end ? -1 : 0;
}

/* Set *field to value unless the key came before: a record that says
 * two things about one key was not written by offline_save.
 */
static bool
set_once (const char **field, const char *value)
{
  if (*field)
    return false;
  *field = value;
  return true;
}

int
offline_parse_record (const char *path, char *text, struct offline_record *rec)
{
  char *line, *next;
  uint64_t n;
  bool have_size = false, have_chunk = false, ok = true;

  memset (rec, 0, sizeof *rec);
  next = strchr (text, '\n');
  if (strlen (text) > MAX_RECORD || next == NULL ||
      strncmp (text, RECORD_MAGIC "\n", strlen (RECORD_MAGIC) + 1) != 0)
    goto bad;
  for (line = next + 1; *line; line = next + 1) {
    char *eq;

    next = strchr (line, '\n');
    if (next == NULL)
      goto bad; /* cut short */
    *next = '\0';
    eq = strchr (line, '=');
    if (eq == NULL)
      goto bad;
    *eq++ = '\0';
    if (strcmp (line, "name") == 0)
      ok = set_once (&rec->name, eq);
    else if (strcmp (line, "etag") == 0)
      ok = set_once (&rec->etag, eq);
    else if (strcmp (line, "manifest") == 0)
      ok = set_once (&rec->manifest, eq);
    else if (strcmp (line, "manifest-sha256") == 0)
      ok = set_once (&rec->manifest_sha256, eq);
    else if (strcmp (line, "object-identity") == 0)
      ok = set_once (&rec->object_identity, eq);
    else if (strcmp (line, "version-id") == 0)
      ok = *eq != '\0' && set_once (&rec->version_id, eq);
    else if (strcmp (line, "size") == 0) {
      if (have_size || parse_number (eq, &rec->size) == -1 || rec->size == 0)
        goto bad;
      have_size = true;
    }
    else if (strcmp (line, "chunk-size") == 0) {
      if (have_chunk || parse_number (eq, &n) == -1 ||
          !manifest_chunk_size_valid (n))
        goto bad;
      rec->chunk_size = n;
      have_chunk = true;
    }
    if (!ok)
      goto bad;
  }
  if (rec->name && rec->etag && rec->manifest && rec->manifest_sha256 &&
      rec->object_identity && have_size && have_chunk &&
      (*rec->manifest == '\0') == (*rec->manifest_sha256 == '\0'))
    return 0;

bad:
  report_error ("%s: not a complete offline record: ignoring it", path);
  return -1;
}

void
offline_save (const struct image_config *cfg, const struct image *img)
{
  CLEANUP_FREE char *path = NULL, *dir = NULL, *text = NULL, *old = NULL;
  const char *version_id = s3_object_version_id (img->obj);
  const char *values[5] = { img->name, s3_object_etag (img->obj),
                            img->manifest_path ? img->manifest_path : "",
                            s3_object_identity (img->obj),
                            version_id ? version_id : "" };
  size_t i;

  for (i = 0; i < 5; i++) {
    if (strchr (values[i], '\n')) {
      report_debug ("offline: a name contains a newline: not recording "
                    "this image for offline starts");
      return;
    }
  }
  path = record_path (cfg, img);
  if (path == NULL)
    return;
  if (asprintf (&dir, "%s/origins", cfg->cache_dir) == -1) {
    dir = NULL;
    report_error ("asprintf: %m");
    return;
  }
  if (asprintf (&text,
                RECORD_MAGIC "\nname=%s\netag=%s\nsize=%" PRIu64
                             "\nchunk-size=%" PRIu32 "\nmanifest=%s\n"
                             "manifest-sha256=%s\nobject-identity=%s\n%s%s%s",
                values[0], values[1], img->size, img->chunk_size, values[2],
                img->manifest_sha256, values[3],
                /* NB: without a manifest the cache identity of a
                 * versioned object holds its version (choose_chunks).
                 */
                version_id ? "version-id=" : "", values[4],
                version_id ? "\n" : "") == -1) {
    text = NULL;
    report_error ("asprintf: %m");
    return;
  }
  /* Written only when it changed: a restart normally changes nothing. */
  old = offline_read_record (path);
  if (old && strcmp (old, text) == 0)
    return;
  if (mkdir (dir, 0700) == -1 && errno != EEXIST) {
    report_warning ("offline: mkdir: %s: %m", dir);
    return;
  }
  if (image_write_small (path, text) == 0)
    report_debug ("offline: recorded %s in %s", img->name, path);
}

/* The manifest the record names, if it is still the file recorded. */
static int
open_recorded_manifest (const struct image_config *cfg, struct image *img,
                        const struct offline_record *rec)
{
  char digest[65];

  if (cfg->manifest_sha256 &&
      strcasecmp (cfg->manifest_sha256, rec->manifest_sha256) != 0) {
    report_error ("the manifest last used (SHA-256 %s) is not the one "
                  "manifest-sha256= pins",
                  *rec->manifest_sha256 ? rec->manifest_sha256 : "none");
    return -1;
  }
  if (*rec->manifest == '\0')
    return 0;
  if (sha256_file (rec->manifest, digest) == -1)
    return -1;
  if (strcmp (digest, rec->manifest_sha256) != 0) {
    report_error ("%s: the local copy of the manifest has changed since "
                  "it was recorded",
                  rec->manifest);
    return -1;
  }
  img->manifest = manifest_open (rec->manifest);
  if (img->manifest == NULL)
    return -1;
  if (manifest_image_size (img->manifest) != rec->size ||
      manifest_chunk_size (img->manifest) != rec->chunk_size) {
    report_error ("%s: the manifest does not match the record", rec->manifest);
    return -1;
  }
  img->manifest_path = strdup (rec->manifest);
  if (img->manifest_path == NULL) {
    report_error ("strdup: %m");
    return -1;
  }
  memcpy (img->manifest_sha256, digest, sizeof digest);
  return 0;
}

/* Data chunks (not all zeros) that the cache does not hold. */
static uint64_t
count_missing (struct image *img)
{
  uint64_t idx, missing = 0;

  for (idx = 0; idx < img->nr_chunks; idx++)
    if (!image_chunk_is_zero (img, idx) && !cache_contains (img->cache, idx))
      missing++;
  return missing;
}

/* The body of offline_open: each reason it cannot is reported where it
 * is found; the caller adds what that means.
 */
static int
open_from_record (const struct image_config *cfg, struct image *img,
                  uint64_t *missing)
{
  CLEANUP_FREE char *path = NULL, *text = NULL, *identity = NULL;
  struct offline_record rec;

  path = record_path (cfg, img);
  if (path == NULL)
    return -1;
  text = offline_read_record (path);
  if (text == NULL) {
    report_error ("this cache directory (%s) has never served it with "
                  "these settings",
                  cfg->cache_dir);
    return -1;
  }
  if (offline_parse_record (path, text, &rec) == -1 ||
      open_recorded_manifest (cfg, img, &rec) == -1)
    return -1;
  if (cfg->chunk_size && cfg->chunk_size != rec.chunk_size) {
    report_error ("chunk-size=%" PRIu32 " differs from the recorded chunk "
                  "size %" PRIu32,
                  cfg->chunk_size, rec.chunk_size);
    return -1;
  }
  img->name = strdup (rec.name);
  if (img->name == NULL) {
    report_error ("strdup: %m");
    return -1;
  }
  img->size = rec.size;
  img->chunk_size = rec.chunk_size;
  img->nr_chunks = (img->size + img->chunk_size - 1) / img->chunk_size;
  identity = image_cache_identity (rec.manifest_sha256, rec.object_identity,
                                   rec.etag, rec.version_id, rec.size);
  if (identity == NULL)
    return -1;
  if (image_open_cache_dir (img, cfg) == -1)
    return -1;
  img->cache = cache_image_open (img->dir, identity, rec.name, img->size,
                                 img->chunk_size, image_expected_hash, img);
  if (img->cache == NULL)
    return -1;
  *missing = count_missing (img);
  if (*missing > 0) {
    uint64_t data = img->nr_chunks -
        (img->manifest ? manifest_nr_zero_chunks (img->manifest) : 0);

    report_error ("the cache holds %" PRIu64 " of the %" PRIu64 " data "
                  "chunks of %s (ETag %s) (prefetch=all while online "
                  "hydrates all of it)",
                  data - *missing, data, rec.name, rec.etag);
    return -1;
  }
  report_warning ("%s: the origin is unreachable: serving the "
                  "version last seen (ETag %s, %" PRIu64 " bytes%s) OFFLINE "
                  "from the complete cache in %s; a read the cache cannot "
                  "serve fails with EIO until nbdkit is restarted with the "
                  "origin reachable",
                  rec.name, rec.etag, rec.size,
                  img->manifest ? ", verified by its manifest" : "",
                  cache_image_dir (img->cache));
  return 0;
}

int
offline_open (const struct image_config *cfg, struct image *img)
{
  uint64_t missing = 0;
  int err = errno;

  if (open_from_record (cfg, img, &missing) == -1) {
    errno = err;
    report_error ("%.*s: the origin is unreachable (%m), and the cache "
                  "cannot serve it offline (see above): not starting",
                  (int) strcspn (cfg->url, "?"), cfg->url);
    return -1;
  }
  img->offline = true;
  return 0;
}
