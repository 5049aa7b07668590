/* accel: what the network and process sources of credentials share.
 *
 * creds-fetch.c (STS, instance metadata) defines these; the container
 * endpoint (creds-container.c), credential_process (creds-process.c)
 * and the SSO portal (creds-sso.c) use them, so that every source caps, sanitizes, parses and wipes the
 * same way.  Internal to the s3 library.
 */

#ifndef ACCEL_CREDS_HTTP_H
#define ACCEL_CREDS_HTTP_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "creds.h"

/* Free a string holding a secret, wiping it first. */
static inline void
cleanup_free_secret (char **ptr)
{
  if (*ptr) {
    explicit_bzero (*ptr, strlen (*ptr));
    free (*ptr);
  }
}
#define CLEANUP_FREE_SECRET __attribute__ ((cleanup (cleanup_free_secret)))

/* A response body, at most CREDS_MAX_RESPONSE bytes. */
struct http_body {
  char *data; /* NUL-terminated */
  size_t len;
  bool too_big;
};

/* Free a body at scope exit, wiping it: it may hold credentials. */
static inline void
cleanup_http_body (struct http_body *b)
{
  if (b->data) {
    explicit_bzero (b->data, b->len);
    free (b->data);
  }
}
#define CLEANUP_HTTP_BODY __attribute__ ((cleanup (cleanup_http_body)))

/* Free a curl handle at scope exit. */
static inline void
cleanup_curl (CURL **h)
{
  if (*h)
    curl_easy_cleanup (*h);
}
#define CLEANUP_CURL __attribute__ ((cleanup (cleanup_curl)))

/* Free a curl header list at scope exit. */
static inline void
cleanup_slist (struct curl_slist **l)
{
  curl_slist_free_all (*l);
}
#define CLEANUP_SLIST __attribute__ ((cleanup (cleanup_slist)))

/* One small request. */
struct http_request {
  const char *url;
  const char *method; /* NULL for GET, or POST if post is set */
  const char *post; /* request body, or NULL */
  struct curl_slist *headers;
  long connect_ms, total_ms;
  bool no_proxy;
  const char *cainfo; /* CA bundle, or NULL for the system's */
};

/* Perform req on a handle of its own (http and https only, no
 * redirects, the body capped at CREDS_MAX_RESPONSE).  Returns 0 with
 * *status and body filled in, or -1 with errbuf (CURL_ERROR_SIZE bytes)
 * describing a transport failure.  NB: transport failures are not
 * reported here: for IMDS that is simply what "not on EC2" looks like,
 * so the caller decides.
 */
int creds_http_do (const struct http_request *req, struct http_body *body,
                   long *status, char *errbuf);

/* Make outside text safe to print: control characters become '?' and
 * it is cut at 512 bytes.
 */
void creds_sanitize_message (char *s);

/* An endpoint URL from the environment must be plain http(s) with no
 * characters that could smuggle anything into a request line.
 */
bool creds_valid_endpoint (const char *url);

/* Read a token file (a secret) of at most CREDS_MAX_TOKEN_FILE bytes,
 * trailing white space removed; empty or NUL-bearing files are refused.
 * what names it in messages ("web identity token file").  Returns a
 * malloc'd string (wipe it), or NULL after reporting an error.
 */
char *creds_read_token_file (const char *what, const char *path);

/* Credentials from the fields AccessKeyId, SecretAccessKey, token_name
 * and Expiration (ISO 8601) of an XML (xml) or JSON document, as
 * credentials from source; what names the document in messages.  With
 * temporary, all four are required; without, the token and Expiration
 * may be absent (no expiry).  Returns 0 with *out set, or -1 after
 * reporting which field is missing or malformed.
 */
int creds_from_fields_opt (const char *what, bool xml, const char *doc,
                           size_t len, const char *token_name, bool temporary,
                           const char *source, struct aws_creds **out);

/* creds_from_fields_opt with temporary set (STS, IMDS). */
int creds_from_fields (const char *what, bool xml, const char *doc, size_t len,
                       const char *token_name, const char *source,
                       struct aws_creds **out);

#endif /* ACCEL_CREDS_HTTP_H */
