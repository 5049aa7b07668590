/* accel: credentials from the container credentials endpoint.
 *
 * This is how ECS tasks (task roles) and EKS pods (Pod Identity) get
 * their role's credentials: a GET of
 *
 *  - http://169.254.170.2 followed by AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
 *    (ECS sets it), else
 *  - AWS_CONTAINER_CREDENTIALS_FULL_URI (EKS Pod Identity sets
 *    http://169.254.170.23/v1/credentials), which must be https, or http
 *    to a loopback address (127.0.0.0/8, ::1, localhost), to ECS's
 *    169.254.170.2, or to Pod Identity's 169.254.170.23 or fd00:ec2::23;
 *    any other host is refused, so that a stray variable cannot send the
 *    authorization token to just anyone;
 *
 * with an Authorization header holding the contents of
 * AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (read again at every refresh:
 * the Pod Identity agent rotates it), else AWS_CONTAINER_AUTHORIZATION_TOKEN.
 * The answer is JSON: AccessKeyId, SecretAccessKey, Token, Expiration
 * (errors: "code" and "message").  We also accept an answer without
 * Token or Expiration (long-term keys, never refreshed).
 * Source: https://docs.aws.amazon.com/sdkref/latest/guide/
 * feature-container-credentials.html.
 */

#ifndef ACCEL_CREDS_CONTAINER_H
#define ACCEL_CREDS_CONTAINER_H

#include "creds.h"

/* The fixed host of AWS_CONTAINER_CREDENTIALS_RELATIVE_URI. */
#define CREDS_CONTAINER_HOST "http://169.254.170.2"

/* Fetch them.  cainfo is the CA bundle for an https URL, or NULL.
 * Returns 0 with *out set, 1 if neither variable is set, or -1 after
 * reporting an error (a host not allowed, an unreadable token file, the
 * endpoint unreachable or failing, a bad answer).
 */
int creds_fetch_container (const char *cainfo, struct aws_creds **out);

#endif /* ACCEL_CREDS_CONTAINER_H */
