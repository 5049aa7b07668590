/* accel: the parts of the S3 client shared by s3.c and s3-request.c.
 *
 * s3.c owns clients and objects and runs the retry loop; s3-request.c
 * performs one HTTP exchange and judges its response.  Nothing here is
 * for other modules.
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

/* The counters behind struct s3_stats, updated by all threads. */
struct s3_counters {
  _Atomic uint64_t requests, gets, heads, bytes, retries, errors;
};

extern void s3_counters_snapshot (struct s3_counters *k, struct s3_stats *out);

/* Why a request is made, which decides what a good response is. */
enum s3_purpose {
  S3_OPEN, /* HEAD, or GET bytes=0-0: learn size and ETag */
  S3_READ_RANGE, /* GET bytes=first-last into buf */
  S3_READ_ALL, /* GET the whole object (len bytes) into fd */
};

struct s3_request {
  enum s3_purpose purpose;
  const char *method; /* "GET" or "HEAD" */
  bool has_range;
  uint64_t first, last; /* Range: bytes=first-last */
  const char *if_match; /* ETag to send in If-Match, or NULL */
  char *buf; /* body goes here (len bytes at most) ... */
  uint64_t len; /* ... or, with fd, the expected body size */
  int fd; /* -1, or where the body goes */
};

/* One header we keep: its value (trimmed, "" if too long) and how many
 * times it came (a repeated one is treated as invalid).
 */
struct s3_header {
  char value[HTTP_MAX_ETAG];
  unsigned count;
};

struct s3_response {
  long status; /* 0 if no response */
  CURLcode cc;
  char curl_error[CURL_ERROR_SIZE];

  uint64_t got; /* body bytes accepted into buf or fd */
  bool overflow; /* the server sent more than we allowed */
  int write_errno; /* writing to fd failed with this */

  struct s3_header content_range, content_length, etag, bucket_region;

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

  /* What an S3_OPEN learnt. */
  uint64_t size;
  char learned_etag[HTTP_MAX_ETAG];

  /* For the callbacks during the transfer. */
  CURL *curl;
  const struct s3_request *rq;
};

enum s3_outcome { S3_OK, S3_RETRY, S3_FAIL };

extern void s3_response_init (struct s3_response *rs);
extern void s3_response_free (struct s3_response *rs);

/* Perform one exchange: take a handle, sign (if url->sign and we have
 * credentials), send, stream the body.  Returns 0 if the exchange was
 * made, whatever came of it (see rs), or -1 after report_error if it
 * could not be attempted at all.
 */
extern int s3_perform (struct http_pool *pool, struct creds_provider *creds,
                       const char *region, const struct s3_url *url,
                       const struct s3_request *rq, struct s3_response *rs,
                       struct s3_counters *counters);

/* Judge a response to rq for the object known to have size and etag
 * (unused for S3_OPEN).  Unless S3_OK, writes a message (without the
 * object's name) to msg and the errno to *err.
 */
extern enum s3_outcome
s3_check_response (const struct s3_url *url, const struct s3_request *rq,
                   struct s3_response *rs, uint64_t size, const char *etag,
                   char *msg, size_t msglen, int *err);

#endif /* ACCEL_S3_INTERNAL_H */
