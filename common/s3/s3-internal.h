/* accel: the parts of the S3 client shared by its files.
 *
 * s3.c owns clients and objects and runs the retry loop (s3_run);
 * s3-request.c performs one HTTP exchange and s3-check.c judges its
 * response; s3-upload.c builds uploads out of s3_run requests.  Nothing
 * here is for other modules.
 */

#ifndef ACCEL_S3_INTERNAL_H
#define ACCEL_S3_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "creds.h"
#include "http-parse.h"
#include "http.h"
#include "s3-url.h"
#include "s3.h"
#include "sigv4.h"

/* The counters behind struct s3_stats, updated by all threads. */
struct s3_counters {
  _Atomic uint64_t requests, gets, heads, puts, posts, deletes;
  _Atomic uint64_t bytes, sent, retries, errors;
  _Atomic uint64_t slowdowns, throttled_us;
};

extern void s3_counters_snapshot (struct s3_counters *k, struct s3_stats *out);

/* Why a request is made, which decides what a good response is. */
enum s3_purpose {
  S3_OPEN, /* HEAD, or GET bytes=0-0: learn size and ETag */
  S3_READ_RANGE, /* GET bytes=first-last into buf */
  S3_READ_ALL, /* GET the whole object (len bytes) into fd */
  S3_SEND, /* PUT a body (PutObject, UploadPart): 200 with an ETag */
  S3_XML, /* GET or POST whose 200 carries an XML document into buf */
  S3_DELETE, /* DELETE (AbortMultipartUpload): any 2xx */
};

struct s3_request {
  enum s3_purpose purpose;
  const char *method; /* "GET", "HEAD", "PUT", "POST" or "DELETE" */
  const char *what; /* for messages, e.g. "part 5 of 8", or NULL */
  const struct sigv4_kv *query; /* decoded query parameters (s3:// only) */
  size_t nr_query;
  bool has_range;
  uint64_t first, last; /* Range: bytes=first-last */
  const char *if_match; /* ETag to send in If-Match (and expect), or NULL */
  uint64_t size; /* S3_READ_RANGE: the object's size at open */
  bool missing_ok; /* 404: fail with ENOENT, and no message */
  char *buf; /* response body goes here (len bytes at most) ... */
  uint64_t len; /* ... or, with fd, the expected body size */
  int fd; /* -1, or where the response body goes */

  /* With buf: told as the body's bytes land in it (see s3_progress). */
  struct s3_progress *progress;

  /* The request body: body_len bytes of body or, if body is NULL, read
   * with pread from body_fd at body_offset, so that every attempt sends
   * the file's bytes again without holding them in memory.
   */
  const char *body;
  int body_fd;
  uint64_t body_offset, body_len;
  const char *body_sha256; /* its lowercase hex SHA-256; NULL if none */
  const char *content_md5; /* base64 MD5 of the body, or NULL */
  const char *content_type; /* or NULL */
  const char *image_sha256; /* sent as S3_META_IMAGE_SHA256, or NULL */
};

/* One header we keep: its value (trimmed, "" if too long) and how many
 * times it came (a repeated one is treated as invalid).
 */
struct s3_header {
  char value[HTTP_MAX_VERSION_ID];
  unsigned count;
};

struct s3_response {
  long status; /* 0 if no response */
  CURLcode cc;
  char curl_error[CURL_ERROR_SIZE];

  uint64_t got; /* body bytes accepted into buf or fd */
  bool headers_checked; /* progress: s3_read_headers_ok was asked */
  bool headers_rejected; /* ... and said no, so the body was refused */
  bool overflow; /* the server sent more than we allowed */
  int write_errno; /* writing to fd failed with this */
  uint64_t sent; /* request body bytes handed to libcurl */
  int read_errno; /* reading the request body failed with this */
  bool body_shrank; /* ... or its file ended early */

  struct s3_header content_range, content_length, etag, bucket_region;
  struct s3_header content_encoding;
  struct s3_header version_id; /* x-amz-version-id */
  struct s3_header image_sha256; /* S3_META_IMAGE_SHA256 */

  /* The start of a non-2xx body (HTTP_MAX_ERROR_BODY at most). */
  char *err_body;
  size_t err_len;
  uint64_t err_total;

  /* How the request was authenticated, for messages.  The access key
   * ID is not a secret; only its ends are kept anyway.
   */
  bool was_signed, anonymous;
  char key_hint[32];
  char creds_source[32];

  /* What an S3_OPEN learnt (size and ETag), or an S3_SEND (ETag). */
  uint64_t size;
  char learned_etag[HTTP_MAX_ETAG];

  /* For the callbacks during the transfer. */
  CURL *curl;
  const struct s3_request *rq;
};

enum s3_outcome { S3_OK, S3_RETRY, S3_FAIL };

extern void s3_response_init (struct s3_response *rs);
extern void s3_response_free (struct s3_response *rs);

/* libcurl's CURLOPT_HEADERFUNCTION for a response: takes one header
 * line (size * nitems bytes, not NUL-terminated) into rs (opaque).
 */
extern size_t
s3_response_header (char *ptr, size_t size, size_t nitems, void *opaque);

/* The calling thread's deadline (s3_set_thread_deadline), 0 if none. */
extern uint64_t s3_thread_deadline (void);

/* Perform one exchange: take a handle, sign (if url->sign and we have
 * credentials), send, stream the body.  Returns 0 if the exchange was
 * made, whatever came of it (see rs), or -1 after report_error if it
 * could not be attempted at all.
 */
extern int s3_perform (struct http_pool *pool, struct creds_provider *creds,
                       const char *region, const struct s3_url *url,
                       const struct s3_request *rq, struct s3_response *rs,
                       struct s3_counters *counters);

/* Judge a response to rq (reads against rq->size and rq->if_match).
 * Unless S3_OK, writes a message (without the object's name) to msg
 * and the errno to *err.
 */
extern enum s3_outcome
s3_check_response (const struct s3_url *url, const struct s3_request *rq,
                   struct s3_response *rs, char *msg, size_t msglen, int *err);

/* Is the response back-pressure rather than a failure: 429, or 503
 * with S3's SlowDown or no body at all?  (Before s3_response_free.)
 */
extern bool s3_response_throttled (const struct s3_response *rs);

/* Whether a 2xx response's headers are what a read of an opened object
 * must get (the judgement s3_check_response makes of them at the end).
 */
extern bool
s3_read_headers_ok (const struct s3_request *rq, const struct s3_response *rs);

/* Parse url (s3://, http://, https://) with c's endpoint and region.
 * Returns 0, or -1 after report_error; free out with s3_url_free.
 */
extern int
s3_client_url (struct s3_client *c, const char *url, struct s3_url *out);

/* Make rq to url with c, retrying transient failures with backoff.
 * On success returns 0 and, if out is not NULL, leaves the last
 * response there (its error body freed).  On failure sets errno and
 * returns -1 after reporting one message "NAME[: WHAT]: REASON", or,
 * if errbuf is not NULL, after writing it there instead for the caller
 * to report (so that of many parallel failures one is shown; "" means
 * that it could not be attempted and that was reported already).  With
 * rq->missing_ok a 404 gives ENOENT and no message at all; a request
 * of a lower priority yielding while throttled gives EAGAIN and none.
 */
extern int s3_run (struct s3_client *c, const struct s3_url *url,
                   const struct s3_request *rq, struct s3_response *out,
                   char *errbuf, size_t errlen);

#endif /* ACCEL_S3_INTERNAL_H */
