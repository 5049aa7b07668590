/* accel: judging one S3 response.
 *
 * After an exchange (s3-request.c) we decide, strictly by RFC 9110 and
 * by what we know of the object, whether it gave exactly what we asked
 * for: the right status, a Content-Range naming exactly our range and
 * the size seen at open, a body of exactly the right length, and the
 * same ETag; for an upload, the ETag of what was stored, or an XML
 * reply that is not an <Error> in disguise.  If not, we decide whether
 * another attempt could help (5xx, 429, reset, timeout, short body:
 * yes; 403, 404, 412 or a server that breaks the protocol: no) and
 * write the one message that the caller will report, saying what to
 * check.
 *
 * Messages never include secrets: only the access key ID's ends and
 * where the credentials came from.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "http-parse.h"
#include "s3-internal.h"
#include "s3-url.h"

/* Set the message and errno of a failed attempt and return outcome. */
static enum s3_outcome verdict (enum s3_outcome outcome, int err, int *err_out,
                                char *msg, size_t msglen, const char *fs, ...)
    __attribute__ ((format (printf, 6, 7)));

static enum s3_outcome
verdict (enum s3_outcome outcome, int err, int *err_out, char *msg,
         size_t msglen, const char *fs, ...)
{
  va_list args;

  va_start (args, fs);
  vsnprintf (msg, msglen, fs, args);
  va_end (args);
  *err_out = err;
  return outcome;
}

/* " (Code: Message)", " (Code)" or "" from an S3 error body. */
static void
format_detail (const struct http_s3_error *xe, char *out, size_t len)
{
  if (xe->code[0] && xe->message[0])
    snprintf (out, len, " (%s: %s)", xe->code, xe->message);
  else if (xe->code[0] || xe->message[0])
    snprintf (out, len, " (%s)", xe->code[0] ? xe->code : xe->message);
  else
    out[0] = '\0';
}

/* What to check after a 401/403, depending on how we asked. */
static void
format_access_hint (const struct s3_url *url, const struct s3_response *rs,
                    const struct http_s3_error *xe, char *out, size_t len)
{
  if (strcmp (xe->code, "RequestTimeTooSkewed") == 0)
    snprintf (out, len, "check the system clock");
  else if (!url->sign)
    snprintf (out, len,
              "check the URL (a presigned URL may have expired) "
              "and that the object is public");
  else if (rs->anonymous)
    snprintf (out, len,
              "the request was anonymous because no AWS credentials were "
              "found: configure credentials, or check the bucket policy");
  else
    snprintf (out, len,
              "check the credentials (access key %s from %s) and the "
              "endpoint/region",
              rs->key_hint, rs->creds_source);
}

/* The versionId= a request pins (s3.c, a versioned bucket), or NULL. */
static const char *
pinned_version (const struct s3_request *rq)
{
  size_t i;

  for (i = 0; i < rq->nr_query; i++)
    if (strcmp (rq->query[i].name, "versionId") == 0 && rq->query[i].value &&
        rq->query[i].value[0])
      return rq->query[i].value;
  return NULL;
}

/* A response with a status other than 2xx. */
static enum s3_outcome
judge_status (const struct s3_url *url, const struct s3_request *rq,
              struct s3_response *rs, char *msg, size_t msglen, int *err)
{
  struct http_s3_error xe;
  char detail[2 * HTTP_MAX_XML_FIELD + 8], hint[256];
  const char *region, *version;
  long st = rs->status;
  int e = http_status_errno (st);
  enum s3_outcome retry = http_status_retryable (st) ? S3_RETRY : S3_FAIL;

  http_parse_s3_error (rs->err_body, rs->err_len, &xe);
  format_detail (&xe, detail, sizeof detail);
  region = rs->bucket_region.value[0] ? rs->bucket_region.value : xe.region;

  /* S3 says "wrong region" with a redirect, or with a 400 whose body
   * names the right one.  The region goes into a host name, so only a
   * plausible one is repeated.
   */
  if ((st == 301 || st == 307 || st == 400) && url->sign &&
      s3_region_valid (region))
    return verdict (S3_FAIL, e, err, msg, msglen,
                    "%ld %s%s: the bucket is in region %s: set region=%s", st,
                    http_status_text (st), detail, region, region);
  if (st >= 300 && st <= 399)
    return verdict (S3_FAIL, e, err, msg, msglen,
                    "%ld %s%s: the server redirects elsewhere (redirects are "
                    "not followed): check the endpoint and region",
                    st, http_status_text (st), detail);

  switch (st) {
  case 401:
  case 403:
    format_access_hint (url, rs, &xe, hint, sizeof hint);
    return verdict (S3_FAIL, e, err, msg, msglen, "%ld %s%s: %s", st,
                    http_status_text (st), detail, hint);
  case 404:
    if (strcmp (xe.code, "NoSuchBucket") == 0)
      return verdict (S3_FAIL, e, err, msg, msglen,
                      "no such bucket (404 Not Found, NoSuchBucket): check "
                      "the bucket name and the endpoint/region");
    if (strcmp (xe.code, "NoSuchUpload") == 0)
      return verdict (S3_FAIL, e, err, msg, msglen,
                      "no such upload (404 Not Found, NoSuchUpload): it was "
                      "completed or aborted meanwhile");
    version = pinned_version (rq);
    if (version)
      return verdict (S3_FAIL, e, err, msg, msglen,
                      "version %s of the object is gone (404 Not Found%s%s): "
                      "it was deleted after it was opened; a restart opens "
                      "the current version",
                      version, xe.code[0] ? ", " : "", xe.code);
    return verdict (S3_FAIL, e, err, msg, msglen,
                    "no such object (404 Not Found%s%s): check the %s",
                    xe.code[0] ? ", " : "", xe.code,
                    url->sign ? "bucket and key" : "URL");
  case 412:
    return verdict (S3_FAIL, e, err, msg, msglen,
                    "the object changed since it was opened (ETag was %s): "
                    "refusing to mix versions",
                    rq->if_match ? rq->if_match : "?");
  case 416:
    return verdict (S3_FAIL, e, err, msg, msglen,
                    "416 Range Not Satisfiable for bytes %" PRIu64 "-%" PRIu64
                    ": the object is smaller than expected",
                    rq->first, rq->last);
  default:
    return verdict (retry, e, err, msg, msglen, "%ld %s%s", st,
                    http_status_text (st), detail);
  }
}

/* The transfer failed before a complete response arrived. */
static enum s3_outcome
judge_curl (const struct s3_response *rs, char *msg, size_t msglen, int *err)
{
  const char *hint = "";
  enum s3_outcome outcome;

  switch (rs->cc) {
  case CURLE_COULDNT_RESOLVE_HOST:
    hint = ": check the endpoint and region";
    break;
  case CURLE_COULDNT_CONNECT:
    hint = ": check the endpoint, and that the server is up";
    break;
  case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_WEIRD_SERVER_REPLY:
    hint = ": the server sent something that is not an HTTP response "
           "(an earlier response longer than its Content-Length?)";
    break;
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CERTPROBLEM:
    hint = ": check the server's certificate and the CA bundle (cainfo=, "
           "AWS_CA_BUNDLE or the profile's ca_bundle)";
    break;
  default:
    break;
  }
  outcome = http_curl_retryable (rs->cc) ? S3_RETRY : S3_FAIL;
  if (rs->curl_error[0])
    return verdict (outcome, http_curl_errno (rs->cc), err, msg, msglen,
                    "%s (%s)%s", curl_easy_strerror (rs->cc), rs->curl_error,
                    hint);
  return verdict (outcome, http_curl_errno (rs->cc), err, msg, msglen, "%s%s",
                  curl_easy_strerror (rs->cc), hint);
}

/* If a 2xx carries an ETag, it must be the one we opened: a server
 * that ignores If-Match must not make us mix versions either.
 */
static bool
etag_changed (const struct s3_response *rs, const char *etag)
{
  char got[HTTP_MAX_ETAG];

  if (etag == NULL || http_parse_etag (rs->etag.value, got) == -1)
    return false;
  return strcmp (got, etag) != 0;
}

/* The response to S3_OPEN: learn the size and the ETag. */
static enum s3_outcome
judge_open (const struct s3_request *rq, struct s3_response *rs, char *msg,
            size_t msglen, int *err)
{
  struct http_content_range cr;

  if (rs->status == 416)
    rs->size = 0; /* "bytes 0-0" of an empty object, see below */
  else if (strcmp (rq->method, "HEAD") == 0) {
    if (rs->status != 200 ||
        http_parse_uint64 (rs->content_length.value, &rs->size) == -1)
      return verdict (S3_FAIL, EPROTO, err, msg, msglen,
                      "%ld response to HEAD without a valid Content-Length "
                      "(\"%s\")",
                      rs->status, rs->content_length.value);
  }
  else if (rs->status == 206) {
    if (http_parse_content_range (rs->content_range.value, &cr) == -1 ||
        cr.first != 0 || cr.last != 0 || !cr.complete_known)
      return verdict (S3_FAIL, EPROTO, err, msg, msglen,
                      "invalid Content-Range \"%s\" in the response to "
                      "bytes=0-0",
                      rs->content_range.value);
    if (rs->got != 1)
      return verdict (S3_RETRY, EIO, err, msg, msglen,
                      "short body: %" PRIu64 " of 1 bytes", rs->got);
    rs->size = cr.complete;
  }
  else if (rs->status == 200) {
    /* The whole object: fine only if it is no bigger than the range
     * (a bigger one overflowed already).
     */
    if (rs->content_length.value[0] &&
        (http_parse_uint64 (rs->content_length.value, &rs->size) == -1 ||
         rs->size != rs->got))
      return verdict (S3_RETRY, EIO, err, msg, msglen,
                      "short body: %" PRIu64 " bytes, Content-Length \"%s\"",
                      rs->got, rs->content_length.value);
    rs->size = rs->got;
  }
  else
    return verdict (S3_FAIL, EPROTO, err, msg, msglen, "unexpected status %ld",
                    rs->status);

  if (http_parse_etag (rs->etag.value, rs->learned_etag) == -1)
    return verdict (S3_FAIL, EPROTO, err, msg, msglen,
                    "the server sent no usable ETag (a strong one is needed "
                    "to detect that the object changes): cannot serve it "
                    "safely");
  return S3_OK;
}

/* The status and Content-Range of the response to S3_READ_RANGE of an
 * object of size bytes.
 */
static enum s3_outcome
judge_range (const struct s3_request *rq, const struct s3_response *rs,
             uint64_t size, char *msg, size_t msglen, int *err)
{
  struct http_content_range cr;

  if (rs->status == 200) {
    /* RFC 9110 allows ignoring Range; we allow it only when the range
     * was the whole object anyway.
     */
    if (rq->first != 0 || rq->last + 1 != size)
      return verdict (S3_FAIL, EPROTO, err, msg, msglen,
                      "200 OK to a range request: the server does not "
                      "support ranges");
  }
  else if (rs->status == 206) {
    if (http_parse_content_range (rs->content_range.value, &cr) == -1)
      return verdict (S3_FAIL, EPROTO, err, msg, msglen,
                      "206 with a missing or invalid Content-Range (\"%s\")",
                      rs->content_range.value);
    if (cr.first != rq->first || cr.last != rq->last)
      return verdict (S3_FAIL, EPROTO, err, msg, msglen,
                      "asked for bytes %" PRIu64 "-%" PRIu64
                      " but the server sent %" PRIu64 "-%" PRIu64,
                      rq->first, rq->last, cr.first, cr.last);
    if (cr.complete_known && cr.complete != size)
      return verdict (S3_FAIL, ESTALE, err, msg, msglen,
                      "the object is now %" PRIu64 " bytes, not %" PRIu64
                      " as when it was opened: refusing to mix versions",
                      cr.complete, size);
  }
  else
    return verdict (S3_FAIL, EPROTO, err, msg, msglen,
                    "unexpected status %ld to a range request", rs->status);
  return S3_OK;
}

/* The headers of a response to a read of an opened object, S3_READ_RANGE
 * or S3_READ_ALL: the version it was opened at (etag) and the status the
 * request asks for.
 */
static enum s3_outcome
judge_read_headers (const struct s3_request *rq, const struct s3_response *rs,
                    const char *etag, char *msg, size_t msglen, int *err)
{
  enum s3_outcome o;

  if (rs->content_encoding.count > 0 &&
      strcasecmp (rs->content_encoding.value, "identity") != 0)
    return verdict (S3_FAIL, EPROTO, err, msg, msglen,
                    "the response has Content-Encoding \"%s\": a proxy or "
                    "the server encodes the body, whose bytes are then not "
                    "the object's (turn that off for this object)",
                    rs->content_encoding.value);
  if (etag_changed (rs, etag))
    return verdict (S3_FAIL, ESTALE, err, msg, msglen,
                    "the object changed since it was opened (ETag was %s, "
                    "now %s): refusing to mix versions",
                    etag, rs->etag.value);
  if (rq->purpose == S3_READ_RANGE) {
    o = judge_range (rq, rs, rq->size, msg, msglen, err);
    if (o != S3_OK)
      return o;
  }
  else if (rs->status != 200)
    return verdict (S3_FAIL, EPROTO, err, msg, msglen,
                    "unexpected status %ld to a GET of the whole object",
                    rs->status);
  return S3_OK;
}

bool
s3_read_headers_ok (const struct s3_request *rq, const struct s3_response *rs)
{
  char msg[1];
  int err;

  return judge_read_headers (rq, rs, rq->if_match, msg, sizeof msg, &err) ==
      S3_OK;
}

/* The whole response to a read: its headers, then every byte of the
 * body.
 */
static enum s3_outcome
judge_read (const struct s3_request *rq, const struct s3_response *rs,
            const char *etag, char *msg, size_t msglen, int *err)
{
  enum s3_outcome o = judge_read_headers (rq, rs, etag, msg, msglen, err);

  if (o != S3_OK)
    return o;
  if (rs->got != rq->len)
    return verdict (S3_RETRY, EIO, err, msg, msglen,
                    "short body: %" PRIu64 " of %" PRIu64 " bytes", rs->got,
                    rq->len);
  return S3_OK;
}

/* The response to S3_SEND: the ETag of what was stored is what
 * CompleteMultipartUpload must name.
 */
static enum s3_outcome
judge_send (const struct s3_request *rq, struct s3_response *rs, char *msg,
            size_t msglen, int *err)
{
  if (rs->status != 200)
    return verdict (S3_FAIL, EPROTO, err, msg, msglen,
                    "unexpected status %ld to a %s", rs->status, rq->method);
  if (rs->sent != rq->body_len)
    return verdict (S3_RETRY, EIO, err, msg, msglen,
                    "the server answered after %" PRIu64 " of %" PRIu64
                    " bytes",
                    rs->sent, rq->body_len);
  if (http_parse_etag (rs->etag.value, rs->learned_etag) == -1)
    return verdict (S3_FAIL, EPROTO, err, msg, msglen,
                    "the server sent no usable ETag for what it stored "
                    "(\"%s\")",
                    rs->etag.value);
  return S3_OK;
}

/* S3 errors to retry when they come in the body of a 200: a
 * CompleteMultipartUpload can fail after its 200 was sent.
 */
static bool
error_code_retryable (const char *code)
{
  return strcmp (code, "InternalError") == 0 ||
      strcmp (code, "SlowDown") == 0 ||
      strcmp (code, "ServiceUnavailable") == 0 ||
      strcmp (code, "RequestTimeout") == 0;
}

/* The response to S3_XML: a 200 whose document is not an <Error>.
 * What the document says is for the caller to parse.
 */
static enum s3_outcome
judge_xml (const struct s3_request *rq, const struct s3_response *rs, char *msg,
           size_t msglen, int *err)
{
  struct http_s3_error xe;
  char detail[2 * HTTP_MAX_XML_FIELD + 8];

  if (rs->status != 200)
    return verdict (S3_FAIL, EPROTO, err, msg, msglen,
                    "unexpected status %ld to a %s", rs->status, rq->method);
  if (rq->buf && memmem (rq->buf, rs->got, "<Error>", 7)) {
    http_parse_s3_error (rq->buf, rs->got, &xe);
    format_detail (&xe, detail, sizeof detail);
    return verdict (error_code_retryable (xe.code) ? S3_RETRY : S3_FAIL, EIO,
                    err, msg, msglen, "200 OK with an error%s", detail);
  }
  return S3_OK;
}

/* S3 asks a client to slow down with 503 SlowDown; other servers and
 * load balancers say the same with 429, or a 503 with no body.  A 503
 * with another code (ServiceUnavailable...) is a real error.
 */
bool
s3_response_throttled (const struct s3_response *rs)
{
  struct http_s3_error xe;

  if (rs->status == 429)
    return true;
  if (rs->status != 503)
    return false;
  if (rs->err_total == 0)
    return true;
  http_parse_s3_error (rs->err_body, rs->err_len, &xe);
  return strcmp (xe.code, "SlowDown") == 0;
}

/* Order matters: local read and write errors, then any status other than 2xx
 * (judged even if its body was cut short), then transfer errors, then
 * the strict checks of a 2xx.
 */
enum s3_outcome
s3_check_response (const struct s3_url *url, const struct s3_request *rq,
                   struct s3_response *rs, char *msg, size_t msglen, int *err)
{
  uint64_t complete;

  *err = EIO;
  msg[0] = '\0';
  if (rs->write_errno) {
    errno = rs->write_errno;
    return verdict (S3_FAIL, rs->write_errno, err, msg, msglen,
                    "writing the object: %m");
  }
  if (rs->read_errno) {
    errno = rs->read_errno;
    return verdict (S3_FAIL, rs->read_errno, err, msg, msglen,
                    "reading the file to upload: %m");
  }
  if (rs->body_shrank)
    return verdict (S3_FAIL, ESTALE, err, msg, msglen,
                    "the file to upload shrank during the upload");
  if (rs->overflow && rs->status == 200 && rq->has_range)
    return verdict (S3_FAIL, EPROTO, err, msg, msglen,
                    "200 OK with more than the %" PRIu64 " bytes asked "
                    "for: the server ignores Range (range requests are "
                    "needed)",
                    rq->len);
  if (rs->overflow)
    return verdict (S3_FAIL, EPROTO, err, msg, msglen,
                    "%ld response: the server sent more than the %" PRIu64
                    " bytes asked for",
                    rs->status, rq->len);

  /* A status is judged even if the transfer of its body then failed.
   * NB: asked for byte 0 of an empty object, a server says 416 with
   * "Content-Range: bytes * /0" (RFC 9110 15.5.17), and that is fine.
   */
  if (rs->status != 0 && (rs->status < 200 || rs->status > 299)) {
    if (rq->purpose == S3_OPEN && rs->status == 416 && rs->cc == CURLE_OK &&
        http_parse_unsatisfied_range (rs->content_range.value, &complete) ==
            0 &&
        complete == 0)
      return judge_open (rq, rs, msg, msglen, err);
    return judge_status (url, rq, rs, msg, msglen, err);
  }
  /* Streamed to the caller as it came (s3_request.progress), the body
   * was cut short when the headers were wrong: say what was wrong.
   */
  if (rs->headers_rejected)
    return judge_read (rq, rs, rq->if_match, msg, msglen, err);
  if (rs->cc != CURLE_OK)
    return judge_curl (rs, msg, msglen, err);
  if (rs->status == 0)
    return verdict (S3_FAIL, EPROTO, err, msg, msglen, "no HTTP response");

  switch (rq->purpose) {
  case S3_OPEN:
    return judge_open (rq, rs, msg, msglen, err);
  case S3_SEND:
    return judge_send (rq, rs, msg, msglen, err);
  case S3_XML:
    return judge_xml (rq, rs, msg, msglen, err);
  case S3_DELETE:
    return S3_OK;
  case S3_READ_RANGE:
  case S3_READ_ALL:
  default:
    return judge_read (rq, rs, rq->if_match, msg, msglen, err);
  }
}
