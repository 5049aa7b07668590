/* accel: uploading a file to S3.
 *
 * accel-mkimage publishes an image, then its manifest, with
 * s3_put_file.  An upload is checked end to end: every body is signed
 * with its SHA-256 and sent with its Content-MD5, so the server refuses
 * bytes that differ from the file's, and the object's size is checked
 * once it is complete.  It is safe to run again: an object that is
 * already there with the same content (same size, and the ETag this
 * upload would give it) is skipped, and a multipart upload that was
 * interrupted is resumed, reusing the parts the server already has.
 *
 * A file of at most part_size bytes goes up in one PUT, a larger one
 * as a multipart upload of part_size parts, several at once.  The file
 * is read with pread, part by part (once to hash, once to send, again
 * for a retry), never held in memory.
 *
 * Errors are reported once (report.h) and -1 returned with errno set,
 * as in s3.h.  When a multipart upload fails it is kept for a later
 * run to resume, unless the failure means resuming cannot help (S3
 * refused the request as malformed, errno EINVAL, or the file changed,
 * ESTALE): then it is aborted.
 */

#ifndef ACCEL_S3_UPLOAD_H
#define ACCEL_S3_UPLOAD_H

#include <stdint.h>

#include "s3.h"

#define S3_DEFAULT_PARALLEL 4
#define S3_MAX_PARALLEL 256

/* Progress: bytes of the file that are on the server (parts completed,
 * or found from an earlier run) out of total.
 */
typedef void (*s3_progress_fn) (void *opaque, uint64_t done, uint64_t total);

struct s3_put_options {
  /* Bytes per part; 0 = S3_DEFAULT_PART_SIZE (16 MiB).  At least
   * S3_MIN_PART_SIZE (5 MiB), at most S3_MAX_PART_SIZE (5 GiB); grown
   * automatically so that a huge file fits in 10000 parts.
   */
  uint64_t part_size;
  unsigned parallel; /* parts in flight; 0 = S3_DEFAULT_PARALLEL */
  /* Called from any thread, one call at a time, as parts complete. */
  s3_progress_fn progress;
  void *opaque;
  const char *content_type; /* NULL = "application/octet-stream" */
  /* Sent as S3_META_IMAGE_SHA256 (64 hex digits), or NULL.  An object
   * that is already there with the same bytes but not this value is
   * uploaded again: metadata cannot be changed in place.
   */
  const char *image_sha256;
};

/* Upload the local regular file path to url (s3://BUCKET/KEY; http and
 * https URLs are refused).  opts may be NULL for the defaults.
 * Returns 0 if uploaded, 1 if skipped because the same object is
 * already there, or -1 after report_error.
 */
extern int s3_put_file (struct s3_client *c, const char *url, const char *path,
                        const struct s3_put_options *opts);

#endif /* ACCEL_S3_UPLOAD_H */
