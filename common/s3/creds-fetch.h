/* accel: fetch temporary AWS credentials over the network.
 *
 * The network steps of the credential chain (creds.h): STS
 * AssumeRoleWithWebIdentity and the EC2 instance metadata service
 * (IMDSv2), and STS for the AssumeRole requests that creds-assume.c
 * builds.  creds.c decides when to call them.  The small-request and
 * secret-handling helpers they share with the other sources are in
 * creds-http.h.
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

/* A number of seconds from 0 to 86400 in the environment variable name
 * (timing knobs), else def.  In creds-value.c.  Returns 0 with *out set, or
 * -1 after reporting an error.
 */
int creds_env_seconds (const char *name, time_t def, time_t *out);

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

/* The EC2 instance role's credentials (cainfo as above, for an https
 * AWS_EC2_METADATA_SERVICE_ENDPOINT).  Returns 0 with *out set, 1 if
 * there is no instance metadata service (unreachable, disabled by
 * AWS_EC2_METADATA_DISABLED) or no role attached, or -1 after reporting
 * an error.
 */
int creds_fetch_imds (const char *cainfo, struct aws_creds **out);

#endif /* ACCEL_CREDS_FETCH_H */
