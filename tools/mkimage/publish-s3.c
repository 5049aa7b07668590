/* accel-mkimage: publish to S3.
 *
 * DEST s3://BUCKET[/PREFIX] receives PREFIX/NAME.img and then
 * PREFIX/NAME.img.manifest.  The manifest goes last: the plugin only
 * serves an image once its manifest is there, so no reader ever sees a
 * manifest beside a half-uploaded image.  The image carries the SHA-256
 * its manifest records (S3_META_IMAGE_SHA256), so that a node starting
 * between the two uploads of an overwrite, which finds the new image
 * beside the old manifest, can tell and wait for the new one.  s3_put_file (common/
 * s3-upload.c) skips an object that is already there with the same
 * content and resumes an interrupted multipart upload, so running the
 * tool again after a failure, or on an unchanged tree, sends only what
 * is missing.
 *
 * Before the image is even built, publish_s3_check makes one HEAD of
 * the image's key, so that a wrong endpoint, bucket or credentials
 * fail in a second rather than after a long build.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "hex.h"
#include "manifest.h"
#include "report.h"
#include "s3.h"
#include "s3-upload.h"
#include "mkimage.h"

/* s3_put_file's progress callback: one call at a time. */
static void
upload_progress (void *opaque, uint64_t done, uint64_t total)
{
  (void) opaque;
  (void) total;
  progress_update (done);
}

/* Upload path to url with image_sha256 (or NULL) as metadata; adds
 * the bytes sent to *uploaded.
 */
static int
put (struct s3_client *c, const char *url, const char *path,
     const char *content_type, const char *image_sha256, const char *what,
     uint64_t *uploaded)
{
  struct s3_put_options opts = {
    .progress = upload_progress,
    .content_type = content_type,
    .image_sha256 = image_sha256,
  };
  struct stat st;
  int r;

  if (stat (path, &st) == -1) {
    report_error ("%s: stat: %m", path);
    return -1;
  }
  progress_start (what, st.st_size);
  r = s3_put_file (c, url, path, &opts);
  progress_end ();
  if (r == -1)
    return -1;
  if (r == 1)
    report_debug ("%s: already there, skipped", url);
  else {
    report_debug ("%s: uploaded %" PRIu64 " bytes", url, (uint64_t) st.st_size);
    *uploaded += st.st_size;
  }
  return 0;
}

/* One HEAD of url: a missing object is fine, anything else that fails
 * (endpoint, bucket, credentials) is reported.
 */
static int
preflight (struct s3_client *c, const char *url)
{
  struct s3_object *obj = s3_object_open (c, url, true);

  if (obj == NULL)
    return errno == ENOENT ? 0 : -1;
  report_debug ("%s exists (%" PRIu64 " bytes)", url, s3_object_size (obj));
  s3_object_close (obj);
  return 0;
}

/* s3://BUCKET/PREFIX/NAME.img (a trailing '/' of DEST is dropped):
 * a string to free, or NULL (error reported).
 */
static char *
image_url (const struct mkimage_options *o)
{
  size_t len = strlen (o->dest);
  char *url;

  while (len > 5 && o->dest[len - 1] == '/')
    len--;
  if (asprintf (&url, "%.*s/%s.img", (int) len, o->dest, o->name) == -1) {
    report_error ("%s: asprintf: %m", o->dest);
    return NULL;
  }
  return url;
}

static struct s3_client *
new_client (const struct mkimage_options *o)
{
  struct s3_config cfg;

  s3_config_init (&cfg);
  cfg.endpoint = o->endpoint;
  return s3_client_new (&cfg);
}

int
publish_s3_check (struct mkimage_options *o)
{
  CLEANUP_FREE char *img_url = image_url (o);
  struct s3_client *c;
  const char *ep;
  int r;

  if (img_url == NULL || (c = new_client (o)) == NULL)
    return -1;
  /* NB: the line printed for nodes names it, wherever it came from. */
  ep = s3_client_endpoint (c);
  if (ep && (o->endpoint_used = strdup (ep)) == NULL) {
    report_error ("strdup: %m");
    s3_client_free (c);
    return -1;
  }
  r = preflight (c, img_url);
  s3_client_free (c);
  return r;
}

/* The image's SHA-256 as the manifest at path records it, in hex. */
static int
recorded_sha256 (const char *path, char hex[65])
{
  struct manifest *m = manifest_open (path);

  if (m == NULL)
    return -1;
  hex_encode (manifest_image_sha256 (m), 32, hex);
  manifest_close (m);
  return 0;
}

int
publish_s3 (const struct mkimage_options *o, const char *image,
            const char *manifest, uint64_t *uploaded)
{
  CLEANUP_FREE char *img_url = image_url (o), *man_url = NULL;
  struct s3_client *c;
  char sha256[65];
  int r = -1;

  if (img_url == NULL || recorded_sha256 (manifest, sha256) == -1)
    return -1;
  if (asprintf (&man_url, "%s.manifest", img_url) == -1) {
    man_url = NULL;
    report_error ("%s: asprintf: %m", o->dest);
    return -1;
  }
  c = new_client (o);
  if (c == NULL)
    return -1;
  if (put (c, img_url, image, "application/octet-stream", sha256,
           "uploading image", uploaded) == 0 &&
      put (c, man_url, manifest, "application/vnd.sqlite3", NULL,
           "uploading manifest", uploaded) == 0)
    r = 0;
  s3_client_free (c);
  return r;
}

/* NB: the base is read before anything is built or uploaded, so a
 * failure here costs nothing; a missing DEST manifest is the first
 * version of a dataset.
 */
int
publish_s3_fetch (const struct mkimage_options *o, const char *url,
                  const char *path, bool missing_ok)
{
  struct s3_client *c = new_client (o);
  struct s3_object *obj;
  int fd, r = -1;

  if (c == NULL)
    return -1;
  obj = s3_object_open (c, url, missing_ok);
  if (obj == NULL) {
    r = missing_ok && errno == ENOENT ? 1 : -1;
    goto out;
  }
  fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd == -1) {
    report_error ("%s: create: %m", path);
    goto out;
  }
  if (s3_object_get_to_fd (obj, fd, MANIFEST_MAX_FILE_SIZE) == -1) {
    close (fd);
    goto out;
  }
  if (close (fd) == -1) {
    report_error ("%s: close: %m", path);
    goto out;
  }
  report_debug ("base manifest %s: %" PRIu64 " bytes", url,
                s3_object_size (obj));
  r = 0;

out:
  if (obj)
    s3_object_close (obj);
  s3_client_free (c);
  return r;
}
