/* accel: uploading a file to S3 (see s3-upload.h).
 *
 * An upload is a few steps, each a request made with s3_run (so with
 * the client's retries, error mapping and messages); this file runs
 * them, s3-upload-multipart.c does the multipart protocol of step 3:
 *
 *   1. HEAD the destination (also checks credentials before any work);
 *   2. hash every part of the file (MD5 and SHA-256, in parallel): the
 *      MD5s give the ETag the result would have, so an identical object
 *      already there is skipped;
 *   3. one PUT, or a multipart upload: resume the newest one in
 *      progress for the key (ListMultipartUploads, then ListParts to
 *      find which parts match ours) or create one, send the missing
 *      parts (in parallel), complete it;
 *   4. HEAD again: the object must have the file's size.
 *
 * Parts are streamed from the file by s3-request.c's read callback with
 * the hashes of step 2; the server recomputes both, so a file changed
 * after hashing fails with BadDigest instead of publishing a mixture.
 * A change during hashing is caught by comparing fstat before and after.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cleanup.h"
#include "hex.h"
#include "report.h"
#include "s3-internal.h"
#include "s3-multipart.h"
#include "s3-upload-internal.h"
#include "s3-upload.h"
#include "s3-url.h"
#include "s3.h"

#define HASH_BUFFER (1024 * 1024) /* bytes read at a time to hash */
#define DEFAULT_CONTENT_TYPE "application/octet-stream"

/* Job: the MD5 and SHA-256 of one part, read with pread. */
static int
hash_part (struct upload *up, size_t i, char *msg, size_t msglen)
{
  struct part *pt = &up->parts[i];
  CLEANUP_FREE unsigned char *buf = malloc (HASH_BUFFER);
  EVP_MD_CTX *md5 = EVP_MD_CTX_new (), *sha = EVP_MD_CTX_new ();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int dlen;
  uint64_t pos = 0;
  int ret = -1, err = ENOMEM;

  if (buf == NULL || md5 == NULL || sha == NULL ||
      EVP_DigestInit_ex (md5, EVP_md5 (), NULL) != 1 ||
      EVP_DigestInit_ex (sha, EVP_sha256 (), NULL) != 1) {
    snprintf (msg, msglen, "hashing %s: out of memory", up->path);
    goto out;
  }
  while (pos < pt->len) {
    size_t n = pt->len - pos < HASH_BUFFER ? pt->len - pos : HASH_BUFFER;
    ssize_t r = pread (up->fd, buf, n, pt->offset + pos);

    if (r == -1 && errno == EINTR)
      continue;
    if (r == 0) {
      err = ESTALE;
      snprintf (msg, msglen, "reading %s: the file shrank while it was read",
                up->path);
      goto out;
    }
    if (r == -1) {
      err = errno;
      snprintf (msg, msglen, "reading %s: %m", up->path);
      goto out;
    }
    EVP_DigestUpdate (md5, buf, r);
    EVP_DigestUpdate (sha, buf, r);
    pos += r;
  }
  if (EVP_DigestFinal_ex (md5, digest, &dlen) != 1 || dlen != 16)
    goto bad_digest;
  memcpy (pt->md5, digest, 16);
  if (EVP_DigestFinal_ex (sha, digest, &dlen) != 1 || dlen != 32)
    goto bad_digest;
  hex_encode (digest, 32, pt->sha256);
  ret = 0;
  goto out;

bad_digest:
  err = EIO;
  snprintf (msg, msglen, "hashing %s: OpenSSL digest failed", up->path);
out:
  EVP_MD_CTX_free (md5);
  EVP_MD_CTX_free (sha);
  errno = err;
  return ret;
}

/* Step 3 for a small file: one PutObject. */
static int
put_single (struct upload *up)
{
  struct part *pt = &up->parts[0];
  char md5_b64[25];
  struct s3_request rq = { .purpose = S3_SEND,
                           .method = "PUT",
                           .fd = -1,
                           .body_fd = up->fd,
                           .body_len = pt->len,
                           .body_sha256 = pt->sha256,
                           .content_md5 = md5_b64,
                           .content_type = up->opts.content_type,
                           .image_sha256 = up->opts.image_sha256 };

  s3_md5_base64 (pt->md5, md5_b64);
  if (s3_run (up->c, &up->url, &rq, NULL, NULL, 0) == -1)
    return -1;
  upload_progress_add (up, pt->len);
  return 0;
}

/* Did the file change between st and now? */
static bool
file_changed (const struct stat *a, const struct stat *b)
{
  return a->st_size != b->st_size || a->st_ino != b->st_ino ||
      a->st_mtim.tv_sec != b->st_mtim.tv_sec ||
      a->st_mtim.tv_nsec != b->st_mtim.tv_nsec;
}

/* Step 2: hash every part; the ETag that the upload would give. */
static int
hash_file (struct upload *up, char etag[S3_ETAG_LEN])
{
  CLEANUP_FREE unsigned char (*md5s)[16] = NULL;
  struct stat now;
  size_t i;

  if (upload_run_parallel (up, hash_part) == -1) {
    int err = errno;

    if (up->msg[0])
      report_error ("%s", up->msg);
    errno = err;
    return -1;
  }
  if (fstat (up->fd, &now) == -1 || file_changed (&up->st, &now)) {
    report_error ("%s: the file changed while it was read", up->path);
    errno = ESTALE;
    return -1;
  }
  if (up->nparts == 1) {
    s3_single_etag (up->parts[0].md5, etag);
    return 0;
  }
  md5s = malloc (up->nparts * sizeof *md5s);
  if (md5s == NULL) {
    report_error ("malloc: %m");
    return -1;
  }
  for (i = 0; i < up->nparts; i++)
    memcpy (md5s[i], up->parts[i].md5, 16);
  if (s3_multipart_etag (md5s, up->nparts, etag) == -1) {
    report_error ("%s: computing the multipart ETag: %m", up->path);
    return -1;
  }
  return 0;
}

/* Does o carry the S3_META_IMAGE_SHA256 this upload gives (if any)? */
static bool
metadata_is_ours (const struct upload *up, const struct s3_object *o)
{
  const char *want = up->opts.image_sha256, *have = s3_object_image_sha256 (o);

  return want == NULL || (have && strcasecmp (have, want) == 0);
}

/* The object's S3_META_IMAGE_SHA256 against the one we sent: 0 if it
 * is ours (or we sent none), 2 if a resumed upload gave it the value
 * of the run that created the upload (another version's, or none from
 * an older accel-mkimage), so that it must be sent again afresh; -1
 * if it is another's all the same (error reported).  A server that
 * keeps no metadata is warned about, not failed.
 */
static int
check_metadata (const struct upload *up, const struct s3_object *o)
{
  const char *want = up->opts.image_sha256, *have = s3_object_image_sha256 (o);

  if (metadata_is_ours (up, o))
    return 0;
  if (up->resumed)
    return 2;
  if (have) {
    report_error ("%s: the object carries %s %s, not %s: is another "
                  "publisher writing this key?",
                  up->url.name, S3_META_IMAGE_SHA256, have, want);
    return -1;
  }
  report_warning ("%s: the server did not keep the object's %s: nodes "
                  "cannot tell whether its manifest is its own",
                  up->url.name, S3_META_IMAGE_SHA256);
  return 0;
}

/* Step 4: the object must be there with the file's size.  If the
 * completion was unconfirmed, it must also have our ETag.  Returns 0,
 * 2 (check_metadata) or -1.
 */
static int
verify_object (struct upload *up, const char *etag, bool unconfirmed)
{
  struct s3_object *o = s3_object_open (up->c, up->url_str, false);
  int ret = -1;

  if (o == NULL)
    return -1;
  if (s3_object_size (o) != up->size)
    report_error ("%s: after the upload the object is %" PRIu64 " bytes, "
                  "not %" PRIu64 " as %s",
                  up->url.name, s3_object_size (o), up->size, up->path);
  else if (!s3_etag_equal (s3_object_etag (o), etag) && unconfirmed)
    report_error ("%s: CompleteMultipartUpload: the upload vanished and the "
                  "object is not ours (ETag %s, expected %s)",
                  up->url.name, s3_object_etag (o), etag);
  else {
    if (!s3_etag_equal (s3_object_etag (o), etag))
      report_debug ("s3: %s: ETag %s, not %s (encryption?)", up->url.name,
                    s3_object_etag (o), etag);
    ret = check_metadata (up, o);
  }
  if (ret == -1)
    errno = EIO;
  s3_object_close (o);
  return ret;
}

/* An object that is already there: is it ours, metadata included?
 * (Said in the debug log if only the metadata differs.)
 */
static bool
same_metadata (const struct upload *up, const struct s3_object *o)
{
  const char *want = up->opts.image_sha256, *have = s3_object_image_sha256 (o);

  if (metadata_is_ours (up, o))
    return true;
  report_debug ("s3: %s: same bytes, but %s %s, not %s: uploading again",
                up->url.name, S3_META_IMAGE_SHA256, have ? have : "missing",
                want);
  return false;
}

/* The steps, in order. */
static int
put (struct upload *up)
{
  struct s3_object *o;
  char etag[S3_ETAG_LEN];
  bool same, unconfirmed = false;
  int r;

  o = s3_object_open (up->c, up->url_str, true);
  if (o == NULL && errno != ENOENT)
    return -1;
  if (hash_file (up, etag) == -1) {
    s3_object_close (o);
    return -1;
  }
  same = o && s3_object_size (o) == up->size &&
      s3_etag_equal (s3_object_etag (o), etag) && same_metadata (up, o);
  s3_object_close (o);
  if (same) {
    report_debug ("s3: %s: already there (ETag %s): skipped", up->url.name,
                  etag);
    return 1;
  }

again:
  if (up->nparts == 1) {
    if (put_single (up) == -1)
      return -1;
  }
  else if (upload_multipart (up, &unconfirmed) == -1)
    return -1;
  r = verify_object (up, etag, unconfirmed);
  if (r == -1)
    return -1;
  if (r == 2) {
    /* NB: only the metadata is wrong: nodes starting meanwhile see it
     * differ from their manifest and wait (plugin/image-open.c).
     */
    report_debug ("s3: %s: the resumed upload did not carry this %s: "
                  "uploading again",
                  up->url.name, S3_META_IMAGE_SHA256);
    up->fresh = true;
    up->resumed = false;
    unconfirmed = false;
    upload_forget_parts (up);
    free (up->upload_id);
    up->upload_id = NULL;
    up->done = 0; /* progress starts again */
    goto again;
  }
  report_debug ("s3: %s: uploaded %" PRIu64 " bytes in %zu part(s)",
                up->url.name, up->size, up->nparts);
  return 0;
}

/* Check the options and the destination, open the file, plan the
 * parts.  Returns 0, or -1 after report_error.
 */
static int
upload_init (struct upload *up, const char *url, const char *path,
             const struct s3_put_options *opts)
{
  uint64_t requested = opts ? opts->part_size : 0, i;

  if (opts)
    up->opts = *opts;
  if (up->opts.content_type == NULL)
    up->opts.content_type = DEFAULT_CONTENT_TYPE;
  up->parallel = up->opts.parallel ? up->opts.parallel : S3_DEFAULT_PARALLEL;
  if (up->parallel > S3_MAX_PARALLEL) {
    report_error ("parallel=%u: the most is %d", up->parallel, S3_MAX_PARALLEL);
    goto einval;
  }
  if (requested &&
      (requested < S3_MIN_PART_SIZE || requested > S3_MAX_PART_SIZE)) {
    report_error ("part size %" PRIu64 ": S3 needs %llu to %llu bytes",
                  requested, S3_MIN_PART_SIZE, S3_MAX_PART_SIZE);
    goto einval;
  }
  if (s3_client_url (up->c, url, &up->url) == -1)
    return -1;
  if (!up->url.sign) {
    report_error ("%s: uploads need an s3://BUCKET/KEY URL, not an http(s) "
                  "one",
                  up->url.name);
    goto einval;
  }

  up->fd = open (path, O_RDONLY | O_CLOEXEC);
  if (up->fd == -1) {
    report_error ("open: %s: %m", path);
    return -1;
  }
  if (fstat (up->fd, &up->st) == -1) {
    report_error ("fstat: %s: %m", path);
    return -1;
  }
  if (!S_ISREG (up->st.st_mode)) {
    report_error ("%s: not a regular file", path);
    goto einval;
  }
  up->size = up->st.st_size;
  up->part_size = s3_part_size (up->size, requested);
  if (up->part_size == 0) {
    report_error ("%s: %" PRIu64 " bytes is more than S3 can store in one "
                  "object",
                  path, up->size);
    errno = EFBIG;
    return -1;
  }
  up->nparts = s3_part_count (up->size, up->part_size);
  up->parts = calloc (up->nparts, sizeof *up->parts);
  if (up->parts == NULL) {
    report_error ("calloc: %m");
    return -1;
  }
  for (i = 0; i < up->nparts; i++) {
    up->parts[i].offset = i * up->part_size;
    up->parts[i].len =
        i + 1 < up->nparts ? up->part_size : up->size - i * up->part_size;
  }
  return 0;

einval:
  errno = EINVAL;
  return -1;
}

/* Everything an upload allocated. */
static void
upload_free (struct upload *up)
{
  if (up->parts)
    upload_forget_parts (up);
  free (up->parts);
  free (up->upload_id);
  if (up->fd >= 0)
    close (up->fd);
  s3_url_free (&up->url);
  pthread_mutex_destroy (&up->lock);
}

/* Set up, run the steps, clean up. */
int
s3_put_file (struct s3_client *c, const char *url, const char *path,
             const struct s3_put_options *opts)
{
  struct upload up = { .c = c, .url_str = url, .path = path, .fd = -1 };
  int r, saved_errno;

  pthread_mutex_init (&up.lock, NULL);
  r = upload_init (&up, url, path, opts);
  if (r == 0)
    r = put (&up);
  saved_errno = errno;
  upload_free (&up);
  errno = saved_errno;
  return r;
}
