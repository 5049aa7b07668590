/* accel: parsing of HTTP and S3 responses.
 *
 * Everything a server sends us is untrusted: a Content-Range that does
 * not match what we asked for, an error body of any size, an ETag with
 * junk in it.  This file holds the pure functions that read such input,
 * each strict and bounded, so that they can be tested exhaustively
 * without a network (tests/unit/test-http-parse.c).  None of them
 * reports errors: they return -1 and the caller, which knows which
 * object was being read, reports once with that context.
 *
 * It is also the one place where an HTTP status becomes an errno, and
 * where we decide which failures are worth retrying.
 */

#ifndef ACCEL_HTTP_PARSE_H
#define ACCEL_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Caps on what we keep from a response. */
#define HTTP_MAX_ERROR_BODY 16384 /* bytes of an error body we read */
#define HTTP_MAX_ETAG 256 /* bytes in an ETag, quotes included */
#define HTTP_MAX_VERSION_ID 1024 /* bytes in an x-amz-version-id */
#define HTTP_MAX_XML_FIELD 512 /* bytes kept from one XML element */

/* A parsed "Content-Range: bytes FIRST-LAST/COMPLETE" (RFC 9110 14.4). */
struct http_content_range {
  uint64_t first;
  uint64_t last;
  uint64_t complete; /* valid only if complete_known */
  bool complete_known; /* false for "bytes FIRST-LAST/asterisk" */
};

/* Parse a Content-Range value for a satisfied range.  Strict: "bytes",
 * one space, decimal digits only, no overflow, FIRST <= LAST, and
 * LAST < COMPLETE when COMPLETE is known.  Leading and trailing
 * spaces/tabs are allowed (header whitespace).  Returns 0 or -1.
 */
extern int
http_parse_content_range (const char *value, struct http_content_range *out);

/* Parse the unsatisfied-range form sent with a 416 response: "bytes",
 * a space, an asterisk, a slash and COMPLETE.  Returns 0 or -1.
 */
extern int http_parse_unsatisfied_range (const char *value, uint64_t *complete);

/* Parse a decimal uint64_t such as a Content-Length: digits only (with
 * optional surrounding spaces/tabs), no sign, no overflow.  Returns 0
 * or -1.
 */
extern int http_parse_uint64 (const char *value, uint64_t *out);

/* Check an ETag header value and copy it, quotes and all, into out
 * (HTTP_MAX_ETAG bytes) without the surrounding whitespace: If-Match
 * must send back exactly what the server sent.  Only a strong entity
 * tag ("...") is accepted: If-Match compares strongly, so a weak one
 * (W/"...") could never match.  Returns 0 or -1.
 */
extern int http_parse_etag (const char *value, char out[HTTP_MAX_ETAG]);

/* Check an x-amz-version-id header value and copy it into out
 * (HTTP_MAX_VERSION_ID bytes).  Returns 1 if the object has a version
 * that can be pinned, 0 if it has none (no header, "" or "null": the
 * bucket is not versioned, or the object was written while it was
 * not), or -1 if the value is not one we would dare send back (too
 * long, or bytes outside printable ASCII).
 */
extern int
http_parse_version_id (const char *value, char out[HTTP_MAX_VERSION_ID]);

/* What we keep from an S3 XML error body.  Each field is "" if absent
 * or truncated, otherwise decoded (XML entities), cut at
 * HTTP_MAX_XML_FIELD - 1 bytes, with control characters replaced by
 * spaces so that it is safe to print.
 */
struct http_s3_error {
  char code[HTTP_MAX_XML_FIELD]; /* <Code>, e.g. "NoSuchKey" */
  char message[HTTP_MAX_XML_FIELD]; /* <Message> */
  char region[HTTP_MAX_XML_FIELD]; /* <BucketRegion>, else <Region> */
};

/* Extract the fields above from the first len bytes of body (which
 * need not be NUL-terminated; only HTTP_MAX_ERROR_BODY bytes are
 * looked at).  Never fails: what cannot be found is left "".
 */
extern void
http_parse_s3_error (const char *body, size_t len, struct http_s3_error *out);

/* The errno for an HTTP status: 0 for 2xx, otherwise e.g. EACCES for
 * 401/403, ENOENT for 404/410, ESTALE for 412, ERANGE for 416, EIO for
 * 5xx and 429.  The one place where this mapping is made.
 */
extern int http_status_errno (long status);

/* Is a response with this status worth retrying (408, 429, 500, 502,
 * 503, 504)?  Never 403, 404 or 412.
 */
extern bool http_status_retryable (long status);

/* Is this libcurl transfer error (a CURLcode) worth retrying: a
 * refused or reset connection, an empty reply, a short body, a
 * timeout?
 */
extern bool http_curl_retryable (int curl_code);

/* The errno for a libcurl transfer error (ETIMEDOUT, ECONNREFUSED,
 * ...; EIO if nothing fits better).
 */
extern int http_curl_errno (int curl_code);

/* The reason phrase for a status, e.g. "Forbidden"; "" if unknown. */
extern const char *http_status_text (long status);

#endif /* ACCEL_HTTP_PARSE_H */
