/* accel: what an object URL means, and the URL we request for it.
 *
 * Users name an image as s3://BUCKET/KEY (requests signed with the
 * credentials found by creds.h, or anonymous) or as an http:// or
 * https:// URL (public or presigned, never signed).  This file turns
 * that, plus the endpoint and region settings, into everything a
 * request needs: the URL to send, the Host header and the raw path to
 * sign, a name for messages and a stable identity for the cache.  It
 * is pure (no network, no clock) so that tests/unit/test-s3-url.c can
 * check every case.
 *
 * NB: the request URL is built by encoding the raw path with
 * sigv4_uri_encode, the same function the signer uses on that path, so
 * what we send and what we sign cannot disagree whatever bytes the key
 * holds.
 */

#ifndef ACCEL_S3_URL_H
#define ACCEL_S3_URL_H

#include <stdbool.h>

#define S3_MAX_KEY 1024 /* bytes in an S3 key (S3's own limit) */
#define S3_MAX_URL 8192 /* bytes in any URL we accept */
#define S3_MAX_REGION 32 /* bytes in a region name */
#define S3_DEFAULT_REGION "us-east-1"

struct s3_url {
  bool sign; /* s3://: sign with credentials unless anonymous */
  bool presigned; /* http(s):// with a query string: HEAD won't work */
  char *bucket; /* s3:// only, else NULL */
  char *key; /* s3:// only, raw (not encoded), else NULL */
  char *url; /* the URL to request, encoded */
  char *host; /* s3:// only: value of the Host header we sign */
  char *path; /* s3:// only: raw absolute path given to the signer */
  char *name; /* for messages: no query string, no control chars */
  char *identity; /* stable name of the object (endpoint+bucket+key) */
};

/* Parse url.  endpoint (NULL for AWS) is
 * "http[s]://HOST[:PORT][/PATH][/]" and selects path-style requests
 * (to PATH/BUCKET/KEY); region is needed (and validated)
 * for s3:// URLs.  Returns 0, or -1 after report_error.  On success
 * the caller frees out with s3_url_free.
 */
extern int s3_url_parse (const char *url, const char *endpoint,
                         const char *region, struct s3_url *out);

/* The URL of obj's bucket (for bucket operations such as listing the
 * multipart uploads in progress): "/BUCKET" path-style, "/" for a
 * virtual-hosted bucket.  obj must be an s3:// URL.  key and bucket
 * are copied, path and url are the bucket's, name is "s3://BUCKET/".
 * Returns 0, or -1 after report_error; free out with s3_url_free.
 */
extern int s3_url_bucket (const struct s3_url *obj, struct s3_url *out);

/* Free the strings inside u (not u itself).  u may be zeroed. */
extern void s3_url_free (struct s3_url *u);

/* Does bucket follow S3's naming rules (3-63 of a-z 0-9 . -, starting
 * and ending with a letter or digit, no "..", not an IPv4 address)?
 */
extern bool s3_bucket_name_valid (const char *bucket);

/* Is region a plausible region name (1-32 of a-z 0-9 -)?  It goes into
 * host names, so nothing else is let through.
 */
extern bool s3_region_valid (const char *region);

#endif /* ACCEL_S3_URL_H */
