/* accel: the multipart protocol of S3 uploads (see s3-upload.c).
 *
 * To resume, we list the uploads in progress for the key
 * (ListMultipartUploads ?uploads=&prefix=KEY, keeping exact matches),
 * take the newest, list its parts (ListParts, page by page with
 * part-number-marker) and reuse each whose size and MD5 are those of
 * our part with the same number; otherwise CreateMultipartUpload.
 * Then the missing parts go up in parallel (UploadPart, each signed
 * with its SHA-256 and sent with its Content-MD5, so the server checks
 * it), and CompleteMultipartUpload names them all.  Only after that
 * are the other uploads for the key aborted: until then they are the
 * work of an earlier run, or of someone else.
 *
 * Listings and replies are bounded (LIST_MAX, REPLY_MAX, pages) and
 * parsed by s3-multipart.c.  Every request goes through s3_run: one
 * retry policy, one mapping of statuses to errno, one message.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cleanup.h"
#include "report.h"
#include "s3-internal.h"
#include "s3-multipart.h"
#include "s3-upload-internal.h"
#include "s3-url.h"
#include "sigv4.h"
#include "xml.h"

#define REPLY_MAX 65536 /* bytes of a Create/Complete reply we keep */
#define LIST_MAX XML_MAX_DOCUMENT /* bytes of a listing page we keep */
#define UPLOADS_PAGE "100" /* max-uploads: ~2.5 KiB each at worst */
#define MAX_UPLOAD_PAGES 100 /* ... so we look at 10000 at most */
#define MAX_PENDING 1000 /* uploads in progress for one key we keep */

/* Before a fresh start, and when the upload is freed. */
void
upload_forget_parts (struct upload *up)
{
  size_t i;

  for (i = 0; i < up->nparts; i++) {
    free (up->parts[i].etag);
    up->parts[i].etag = NULL;
  }
}

/* Job: UploadPart, unless the server has the part already. */
static int
send_part (struct upload *up, size_t i, char *msg, size_t msglen)
{
  struct part *pt = &up->parts[i];
  char number[16], what[64], md5_b64[25];
  struct sigv4_kv query[2] = { { "partNumber", number },
                               { "uploadId", up->upload_id } };
  struct s3_request rq = {
    .purpose = S3_SEND,
    .method = "PUT",
    .what = what,
    .query = query,
    .nr_query = 2,
    .fd = -1,
    .body_fd = up->fd,
    .body_offset = pt->offset,
    .body_len = pt->len,
    .body_sha256 = pt->sha256,
    .content_md5 = md5_b64,
  };
  struct s3_response rs;

  if (pt->etag)
    return 0;
  snprintf (number, sizeof number, "%zu", i + 1);
  snprintf (what, sizeof what, "part %zu of %zu", i + 1, up->nparts);
  s3_md5_base64 (pt->md5, md5_b64);
  if (s3_run (up->c, &up->url, &rq, &rs, msg, msglen) == -1)
    return -1;
  pt->etag = strdup (rs.learned_etag);
  if (pt->etag == NULL) {
    snprintf (msg, msglen, "strdup: %m");
    return -1;
  }
  upload_progress_add (up, pt->len);
  return 0;
}

/* Make a request whose reply is an XML document (at most cap bytes)
 * into a new buffer.  Returns the buffer and its length, or NULL after
 * report_error or, with errbuf, after writing the message there (as
 * s3_run does), or quietly, ENOENT, if rq->missing_ok and a 404.
 */
static char *
xml_request (struct upload *up, const struct s3_url *url, struct s3_request *rq,
             size_t cap, size_t *len, char *errbuf, size_t errlen)
{
  struct s3_response rs;
  char *buf = malloc (cap);

  if (buf == NULL) {
    report_error ("malloc: %m");
    if (errbuf)
      errbuf[0] = '\0';
    return NULL;
  }
  rq->purpose = S3_XML;
  rq->fd = -1;
  rq->buf = buf;
  rq->len = cap;
  if (s3_run (up->c, url, rq, &rs, errbuf, errlen) == -1) {
    int saved_errno = errno;

    free (buf);
    errno = saved_errno;
    return NULL;
  }
  *len = rs.got;
  return buf;
}

/* Uploads in progress for exactly our key (the listing is by prefix). */
struct pending {
  const char *key;
  size_t n;
  char *ids[MAX_PENDING];
  char initiated[MAX_PENDING][S3_MAX_TIMESTAMP];
};

/* Callback of s3_parse_list_uploads. */
static int
collect_upload (void *opaque, const struct s3_listed_upload *u)
{
  struct pending *pd = opaque;

  if (strcmp (u->key, pd->key) != 0 || pd->n == MAX_PENDING)
    return 0;
  pd->ids[pd->n] = strdup (u->upload_id);
  if (pd->ids[pd->n] == NULL)
    return -1;
  snprintf (pd->initiated[pd->n], S3_MAX_TIMESTAMP, "%s", u->initiated);
  pd->n++;
  return 0;
}

/* Why a listing could not be used, for messages. */
static const char *
malformed (int err)
{
  return err == E2BIG ? "has more entries than asked for" : "is malformed";
}

/* ListMultipartUploads ?uploads=&prefix=KEY, page after page.  A
 * failed request leaves its message in msg, for the caller.
 */
static int
list_pending (struct upload *up, struct pending *pd, char *msg, size_t msglen)
{
  struct s3_url bucket;
  struct s3_list_next next = { 0 };
  unsigned page;
  int ret = -1;

  msg[0] = '\0';
  if (s3_url_bucket (&up->url, &bucket) == -1)
    return -1;
  pd->key = up->url.key;
  for (page = 0; page < MAX_UPLOAD_PAGES; page++) {
    struct sigv4_kv q[5] = { { "uploads", "" },
                             { "prefix", up->url.key },
                             { "max-uploads", UPLOADS_PAGE } };
    struct s3_request rq = {
      .method = "GET", .what = "ListMultipartUploads", .query = q, .nr_query = 3
    };
    CLEANUP_FREE char *buf = NULL;
    size_t len;

    if (next.key_marker) {
      q[rq.nr_query++] = (struct sigv4_kv){ "key-marker", next.key_marker };
      q[rq.nr_query++] =
          (struct sigv4_kv){ "upload-id-marker", next.upload_id_marker };
    }
    buf = xml_request (up, &bucket, &rq, LIST_MAX, &len, msg, msglen);
    if (buf == NULL)
      goto out;
    s3_list_next_free (&next);
    if (s3_parse_list_uploads (buf, len, collect_upload, pd, &next) == -1) {
      snprintf (msg, msglen, "%s: ListMultipartUploads: the reply %s",
                bucket.name, malformed (errno));
      errno = EPROTO;
      goto out;
    }
    if (!next.truncated)
      break;
  }
  if (next.truncated)
    report_debug ("s3: %s: more than %d pages of uploads in progress: "
                  "looked at the first ones only",
                  bucket.name, MAX_UPLOAD_PAGES);
  ret = 0;

out:
  s3_list_next_free (&next);
  s3_url_free (&bucket);
  return ret;
}

/* Callback of s3_parse_list_parts: reuse a part whose size and MD5
 * are those of ours.
 */
static int
match_part (void *opaque, const struct s3_listed_part *lp)
{
  struct upload *up = opaque;
  struct part *pt;
  char want[S3_ETAG_LEN];

  if (lp->number > up->nparts)
    return 0;
  pt = &up->parts[lp->number - 1];
  s3_single_etag (pt->md5, want);
  if (pt->etag || lp->size != pt->len || !s3_etag_equal (lp->etag, want))
    return 0;
  pt->etag = strdup (want);
  return pt->etag ? 0 : -1;
}

/* ListParts ?uploadId=ID, page after page (part-number-marker), until
 * past our last part.  Returns -1 with errno ENOENT and msg "" if the
 * upload is gone, else with the message in msg.
 */
static int
list_parts (struct upload *up, char *msg, size_t msglen)
{
  uint64_t marker = 0;

  while (marker < up->nparts) {
    char marker_str[16];
    struct sigv4_kv q[3] = { { "uploadId", up->upload_id },
                             { "max-parts", "1000" },
                             { "part-number-marker", marker_str } };
    struct s3_request rq = { .method = "GET",
                             .what = "ListParts",
                             .query = q,
                             .nr_query = marker ? 3 : 2,
                             .missing_ok = true };
    struct s3_list_next next;
    CLEANUP_FREE char *buf = NULL;
    size_t len;

    snprintf (marker_str, sizeof marker_str, "%" PRIu64, marker);
    msg[0] = '\0';
    buf = xml_request (up, &up->url, &rq, LIST_MAX, &len, msg, msglen);
    if (buf == NULL)
      return -1;
    if (s3_parse_list_parts (buf, len, match_part, up, &next) == -1) {
      snprintf (msg, msglen, "%s: ListParts: the reply %s", up->url.name,
                malformed (errno));
      errno = EPROTO;
      return -1;
    }
    if (!next.truncated)
      break;
    if (next.part_marker <= marker) {
      snprintf (msg, msglen,
                "%s: ListParts: the listing does not move forward "
                "(marker %" PRIu32 " after %" PRIu64 ")",
                up->url.name, next.part_marker, marker);
      errno = EPROTO;
      return -1;
    }
    marker = next.part_marker;
  }
  return 0;
}

/* AbortMultipartUpload, best effort: a left-over upload only costs
 * storage, and the next run for the key reuses or aborts it.
 */
static void
abort_upload (struct upload *up, const char *id)
{
  struct sigv4_kv q[1] = { { "uploadId", id } };
  struct s3_request rq = { .purpose = S3_DELETE,
                           .method = "DELETE",
                           .what = "AbortMultipartUpload",
                           .query = q,
                           .nr_query = 1,
                           .missing_ok = true,
                           .fd = -1 };
  char msg[2560];

  if (s3_run (up->c, &up->url, &rq, NULL, msg, sizeof msg) == 0)
    report_debug ("s3: %s: aborted upload %s", up->url.name, id);
  else if (errno != ENOENT)
    report_debug ("s3: %s", msg);
}

/* A listing failed.  If we may not list (a policy that allows uploads
 * but not listings), go on with a new upload; otherwise report.
 */
static int
listing_failed (const char *msg)
{
  int err = errno;

  if (err == EACCES || err == ENOENT) {
    if (msg[0])
      report_debug ("s3: %s (not resuming: starting a new upload)", msg);
    return 0;
  }
  if (msg[0])
    report_error ("%s", msg);
  errno = err;
  return -1;
}

/* Resume the newest upload in progress for the key, if any (the others
 * are left to abort_stale).  Returns 0, or -1 after report_error.
 */
static int
find_resumable (struct upload *up, struct pending *pd)
{
  size_t i, newest = 0, reused = 0;
  uint64_t bytes = 0;
  char msg[2560];

  if (list_pending (up, pd, msg, sizeof msg) == -1)
    return listing_failed (msg);
  /* NB: an upload in progress keeps the metadata it was created with
   * (perhaps another version's S3_META_IMAGE_SHA256): put() asks for a
   * fresh one if the completed object does not carry ours.
   */
  if (pd->n == 0 || up->fresh)
    return 0;
  /* NB: ISO 8601 timestamps in one format sort as strings. */
  for (i = 1; i < pd->n; i++)
    if (strcmp (pd->initiated[i], pd->initiated[newest]) >= 0)
      newest = i;
  up->upload_id = pd->ids[newest];
  pd->ids[newest] = NULL;
  if (list_parts (up, msg, sizeof msg) == -1) {
    upload_forget_parts (up);
    free (up->upload_id);
    up->upload_id = NULL;
    return listing_failed (msg);
  }
  up->resumed = true;
  for (i = 0; i < up->nparts; i++)
    if (up->parts[i].etag) {
      reused++;
      bytes += up->parts[i].len;
    }
  report_debug ("s3: %s: resuming upload %s: %zu of %zu parts are there",
                up->url.name, up->upload_id, reused, up->nparts);
  if (bytes)
    upload_progress_add (up, bytes);
  return 0;
}

/* CreateMultipartUpload ?uploads= (the object's Content-Type and
 * metadata are given here, not with the parts).
 */
static int
create_upload (struct upload *up)
{
  struct sigv4_kv q[1] = { { "uploads", "" } };
  struct s3_request rq = { .method = "POST",
                           .what = "CreateMultipartUpload",
                           .query = q,
                           .nr_query = 1,
                           .content_type = up->opts.content_type,
                           .image_sha256 = up->opts.image_sha256 };
  CLEANUP_FREE char *buf = NULL;
  size_t len;

  buf = xml_request (up, &up->url, &rq, REPLY_MAX, &len, NULL, 0);
  if (buf == NULL)
    return -1;
  up->upload_id = s3_parse_upload_id (buf, len);
  if (up->upload_id == NULL) {
    report_error ("%s: CreateMultipartUpload: the reply has no valid "
                  "UploadId (%m)",
                  up->url.name);
    errno = EPROTO;
    return -1;
  }
  report_debug ("s3: %s: created upload %s", up->url.name, up->upload_id);
  return 0;
}

/* CompleteMultipartUpload ?uploadId= with the list of parts.  Returns
 * 0, or -1 after report_error, or -1 with errno ENOENT and no message
 * if the upload is gone (perhaps completed by an attempt whose reply
 * was lost: the caller checks the object).
 */
static int
complete_upload (struct upload *up)
{
  CLEANUP_FREE char **etags = calloc (up->nparts, sizeof *etags);
  CLEANUP_FREE char *body = NULL, *reply = NULL;
  struct sigv4_kv q[1] = { { "uploadId", up->upload_id } };
  unsigned char md5[EVP_MAX_MD_SIZE];
  unsigned int md5_len;
  char sha256[65], md5_b64[25];
  size_t len, i;
  struct s3_request rq = { .method = "POST",
                           .what = "CompleteMultipartUpload",
                           .query = q,
                           .nr_query = 1,
                           .missing_ok = true,
                           .body_sha256 = sha256,
                           .content_md5 = md5_b64,
                           .content_type = "application/xml" };

  if (etags == NULL) {
    report_error ("calloc: %m");
    return -1;
  }
  for (i = 0; i < up->nparts; i++)
    etags[i] = up->parts[i].etag;
  body = s3_complete_xml (etags, up->nparts, &len);
  if (body == NULL) {
    report_error ("%s: CompleteMultipartUpload: %m", up->url.name);
    return -1;
  }
  if (sigv4_sha256_hex (body, len, sha256) == -1)
    return -1;
  if (EVP_Digest (body, len, md5, &md5_len, EVP_md5 (), NULL) != 1) {
    report_error ("%s: MD5 failed", up->url.name);
    errno = EIO;
    return -1;
  }
  s3_md5_base64 (md5, md5_b64);
  rq.body = body;
  rq.body_len = len;
  reply = xml_request (up, &up->url, &rq, REPLY_MAX, &len, NULL, 0);
  return reply ? 0 : -1;
}

/* Abort the uploads for the key that we did not use. */
static void
abort_stale (struct upload *up, struct pending *pd)
{
  size_t i;

  for (i = 0; i < pd->n; i++)
    if (pd->ids[i])
      abort_upload (up, pd->ids[i]);
}

/* Errors after which resuming cannot help (see s3-upload.h). */
static bool
error_is_fatal (int err)
{
  return err == EINVAL || err == ESTALE;
}

/* The order matters: parts are sent only once the upload to send them
 * to is known, and stale uploads are aborted only once ours completed.
 */
int
upload_multipart (struct upload *up, bool *unconfirmed)
{
  CLEANUP_FREE struct pending *pd = calloc (1, sizeof *pd);
  size_t i, have = 0;
  int ret = -1, err;

  if (pd == NULL) {
    report_error ("calloc: %m");
    return -1;
  }
  if (find_resumable (up, pd) == -1)
    goto out;
  if (up->upload_id == NULL && create_upload (up) == -1)
    goto out;

  if (upload_run_parallel (up, send_part) == -1) {
    err = errno;
    for (i = 0; i < up->nparts; i++)
      have += up->parts[i].etag != NULL;
    if (up->msg[0])
      report_error ("%s (%s)", up->msg,
                    error_is_fatal (err) ? "the upload is aborted"
                                         : "the parts sent are kept: run "
                                           "again to resume");
    report_debug ("s3: %s: %zu of %zu parts are on the server", up->url.name,
                  have, up->nparts);
    if (error_is_fatal (err))
      abort_upload (up, up->upload_id);
    errno = err;
    goto out;
  }

  if (complete_upload (up) == -1) {
    err = errno;
    if (err == ENOENT)
      *unconfirmed = true;
    else {
      if (error_is_fatal (err))
        abort_upload (up, up->upload_id);
      goto out;
    }
  }
  abort_stale (up, pd);
  ret = 0;

out:
  for (i = 0; i < pd->n; i++)
    free (pd->ids[i]);
  return ret;
}
