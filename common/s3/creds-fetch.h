/* accel: fetch temporary AWS credentials over the network.
 *
 * The network steps of the credential chain (creds.h): STS
 * AssumeRoleWithWebIdentity and the EC2 instance metadata service
 * (IMDSv2), and the requests that creds-assume.c (STS AssumeRole) and
 * creds-sso.c (the SSO portal) build.  creds.c decides when to call
 * them.
 */

#ifndef ACCEL_CREDS_FETCH_H
#define ACCEL_CREDS_FETCH_H

#include <stddef.h>

#include <curl/curl.h>

#include "creds.h"

/* Caps on what we read from files and the network. */
#define CREDS_MAX_TOKEN_FILE 65536
#define CREDS_MAX_RESPONSE 65536

/* getenv, but an empty variable counts as unset (as in the AWS CLI).
 * In creds-value.c, with creds_new; used by creds.c and creds-fetch.c.
 */
const char *creds_getenv (const char *name);

/* Exchange the web identity token in token_file for credentials of
 * role_arn.  endpoint is STS's (endpoint.h), or NULL for the regional
 * one of region.  cainfo is the CA bundle, or NULL for the system's.
 * Returns 0 with *out set, or -1 after reporting an error (including
 * STS's own error code and message).
 */
int creds_fetch_web_identity (const char *endpoint, const char *region,
                              const char *role_arn, const char *token_file,
                              const char *session_name, const char *cainfo,
                              struct aws_creds **out);

/* The STS URL: endpoint (already resolved, endpoint.h) with a trailing
 * '/', or the regional https://sts.REGION.amazonaws.com/.  Returns a
 * malloc'd string, or NULL after reporting an error.
 */
char *creds_sts_url (const char *endpoint, const char *region);

/* POST form (an STS Query API request for action, e.g. "AssumeRole",
 * signed or not through headers) to url and parse the <Credentials> of
 * the answer as credentials from source.  STS's errors are reported
 * with its code and message, naming action and role_arn.  Returns 0
 * with *out set, or -1 after reporting an error.
 */
int creds_fetch_sts (const char *url, const char *action, const char *role_arn,
                     const char *form, struct curl_slist *headers,
                     const char *cainfo, const char *source,
                     struct aws_creds **out);

/* GET a small document (at most CREDS_MAX_RESPONSE bytes) with extra
 * headers, which may hold secrets.  Returns 0 with *status and *body
 * (NUL-terminated, *len bytes: release it with creds_free_secret), or -1
 * with errbuf (CURL_ERROR_SIZE bytes) saying why; nothing is reported.
 */
int
creds_http_get (const char *url, struct curl_slist *headers, const char *cainfo,
                long *status, char **body, size_t *len, char *errbuf);

/* Read a small file holding a secret (at most CREDS_MAX_TOKEN_FILE
 * bytes, no NUL byte, not empty), without its trailing white space.
 * Errors name the file as what.  Returns a malloc'd string (release it
 * with creds_free_secret), or NULL after reporting an error.
 */
char *creds_read_secret_file (const char *what, const char *path);

/* Wipe the len bytes of s, then free it.  s may be NULL. */
void creds_free_secret (char *s, size_t len);

/* Make server-provided text safe to print in place (control characters
 * become '?', cut at 512 bytes); returns s.
 */
char *creds_sanitize_message (char *s);

/* The EC2 instance role's credentials (cainfo as above, for an https
 * AWS_EC2_METADATA_SERVICE_ENDPOINT).  Returns 0 with *out set, 1 if
 * there is no instance metadata service (unreachable, disabled by
 * AWS_EC2_METADATA_DISABLED) or no role attached, or -1 after reporting
 * an error.
 */
int creds_fetch_imds (const char *cainfo, struct aws_creds **out);

#endif /* ACCEL_CREDS_FETCH_H */
