/* accel: AWS Signature Version 4 for S3 requests.
 *
 * S3 authenticates every request by an HMAC-SHA256 signature over a
 * canonical form of the request.  The signer is a chain of small pure
 * steps (canonical request -> string to sign -> signature) so that each
 * step can be checked against AWS's published vectors, and so that it
 * never reads the clock or the environment: the caller passes the date.
 *
 * Everything here is signed S3-style: the path is encoded once and never
 * normalised ("." "..", "//" stay as they are).  Inputs are capped (see
 * SIGV4_MAX_*) and rejected with report_error when absurd.
 */

#ifndef ACCEL_SIGV4_H
#define ACCEL_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* Limits on what a caller may ask us to sign. */
#define SIGV4_MAX_STRING 8192 /* bytes in any one input string */
#define SIGV4_MAX_PAIRS 64 /* headers, or query parameters */

/* Longest presigned URL lifetime that S3 accepts (7 days). */
#define SIGV4_MAX_EXPIRES 604800

struct sigv4_kv {
  const char *name;
  const char *value;
};

struct sigv4_request {
  /* "GET", "PUT", ... */
  const char *method;

  /* Raw (decoded) absolute path, e.g. "/bucket/my key".  Every byte
   * except unreserved ones and '/' is %XX-encoded by the signer.
   */
  const char *path;

  /* Decoded query parameters (value may be ""); encoded and sorted by
   * the signer.
   */
  const struct sigv4_kv *query;
  size_t nr_query;

  /* Every header to sign, including host and x-amz-date (and
   * x-amz-content-sha256, x-amz-security-token when used), in any case.
   * Repeated names are joined with ',' in the order given.
   */
  const struct sigv4_kv *headers;
  size_t nr_headers;

  /* Lowercase hex SHA-256 of the body, or "UNSIGNED-PAYLOAD". */
  const char *payload_hash;

  const char *region; /* "us-east-1" */
  const char *service; /* "s3" */
  const char *amz_date; /* "YYYYMMDDTHHMMSSZ" */
};

/* Each of these returns a malloc'd string, or NULL after report_error. */

/* S3 URI encoding: every byte except A-Za-z0-9-._~ (and '/' unless
 * encode_slash) becomes %XX with uppercase hex.
 */
extern char *sigv4_uri_encode (const char *s, bool encode_slash);

/* The canonical request (no trailing newline). */
extern char *sigv4_canonical_request (const struct sigv4_request *r);

/* The string to sign for a canonical request made from r. */
extern char *sigv4_string_to_sign (const struct sigv4_request *r,
                                   const char *canonical_request);

/* The value of the Authorization header.  separator goes between its
 * three parts: ", " (most clients) or "," (the S3 docs).
 */
extern char *
sigv4_authorization (const struct sigv4_request *r, const char *access_key,
                     const char *secret_key, const char *separator);

/* The query string of a presigned URL: r's own query parameters plus
 * X-Amz-Algorithm, -Credential, -Date, -Expires, -SignedHeaders (and
 * -Security-Token if session_token is not NULL), encoded and sorted,
 * followed by &X-Amz-Signature=.  r->payload_hash is normally
 * "UNSIGNED-PAYLOAD".  expires_seconds is 1 .. SIGV4_MAX_EXPIRES.
 */
extern char *
sigv4_presign_query (const struct sigv4_request *r, const char *access_key,
                     const char *secret_key, const char *session_token,
                     unsigned expires_seconds);

/* Format t as "YYYYMMDDTHHMMSSZ" (UTC).  Returns 0, or -1 after
 * report_error if t is outside years 1000 .. 9999.
 */
extern int sigv4_format_date (time_t t, char out[17]);

/* Lowercase hex SHA-256 of data.  Returns 0, or -1 after report_error. */
extern int sigv4_sha256_hex (const void *data, size_t len, char out[65]);

#endif /* ACCEL_SIGV4_H */
