/* accel: fetch temporary AWS credentials over the network.
 *
 * The two network steps of the credential chain (creds.h): STS
 * AssumeRoleWithWebIdentity and the EC2 instance metadata service
 * (IMDSv2).  creds.c decides when to call them.
 */

#ifndef ACCEL_CREDS_FETCH_H
#define ACCEL_CREDS_FETCH_H

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

/* The EC2 instance role's credentials (cainfo as above, for an https
 * AWS_EC2_METADATA_SERVICE_ENDPOINT).  Returns 0 with *out set, 1 if
 * there is no instance metadata service (unreachable, disabled by
 * AWS_EC2_METADATA_DISABLED) or no role attached, or -1 after reporting
 * an error.
 */
int creds_fetch_imds (const char *cainfo, struct aws_creds **out);

#endif /* ACCEL_CREDS_FETCH_H */
