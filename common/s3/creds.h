/* accel: AWS credentials and region, found the way the AWS CLI finds them.
 *
 * Credentials are looked for in the AWS CLI v2's order ("Configuration
 * and credential precedence", https://docs.aws.amazon.com/cli/latest/
 * userguide/cli-chap-authentication.html; botocore's
 * create_credential_resolver: env, assume-role,
 * assume-role-with-web-identity, sso, shared-credentials-file,
 * custom-process, config-file, container-role, iam-role):
 *
 *  1. the environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and
 *     AWS_SESSION_TOKEN);
 *  2. assume role (creds-assume.c): the profile's role_arn (without
 *     web_identity_token_file) with source_profile or credential_source,
 *     and role_session_name, duration_seconds, external_id: STS
 *     AssumeRole, signed with the source credentials, at STS's endpoint
 *     found as for step 3.  A source_profile's credentials come from its
 *     own steps 3 to 7, or from its own role in turn (a chain);
 *     credential_source is Environment (step 1), EcsContainer (step 8)
 *     or Ec2InstanceMetadata (step 9);
 *  3. web identity: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN (and
 *     AWS_ROLE_SESSION_NAME), or the profile's web_identity_token_file,
 *     role_arn and role_session_name, exchanged with STS
 *     AssumeRoleWithWebIdentity at STS's endpoint, found as S3's is
 *     (endpoint.h: AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, the profile's
 *     services section, its endpoint_url) or else
 *     https://sts.REGION.amazonaws.com;
 *  4. SSO (creds-sso.c): the profile's sso_session (or the legacy
 *     sso_start_url and sso_region), sso_account_id and sso_role_name:
 *     the token cached by "aws sso login" exchanged at the SSO portal
 *     (its endpoint found as S3's, service "sso"); never a login or a
 *     token refresh;
 *  5. the profile's keys (aws_access_key_id, aws_secret_access_key,
 *     aws_session_token) in the shared credentials file
 *     (AWS_SHARED_CREDENTIALS_FILE, default ~/.aws/credentials);
 *  6. the profile's credential_process (creds-process.h), in either
 *     file;
 *  7. the profile's keys in the config file (AWS_CONFIG_FILE, default
 *     ~/.aws/config);
 *  8. the container endpoint: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or
 *     _FULL_URI (creds-container.h; ECS task roles, EKS Pod Identity);
 *  9. the EC2 instance role, through IMDSv2 at
 *     AWS_EC2_METADATA_SERVICE_ENDPOINT (default http://169.254.169.254),
 *     unless AWS_EC2_METADATA_DISABLED=true.
 *
 * The profile is the explicit profile argument, else AWS_PROFILE, else
 * "default".  A source that is configured but fails (an unreachable
 * STS, a credential_process exiting 1) is an error, not a reason to try
 * the next: only "nothing configured here" moves on.
 *
 * The network steps verify TLS with the CA bundle chosen as for S3
 * (endpoint.h: cainfo, AWS_CA_BUNDLE, the profile's ca_bundle).
 *
 * Finding nothing is not an error here: it means anonymous access, and
 * the caller decides whether that is acceptable.
 *
 * NB: as in the AWS CLI, an explicit profile argument (not AWS_PROFILE)
 * disables the environment variables of steps 1 and 3 (not those of 8
 * and 9, which are not about profiles).  The steps are all resolved
 * again on every refresh, so a role's source credentials are always
 * fresh.
 *
 * NB: libcurl must have been initialized (curl_global_init) before any
 * thread calls into this module.
 */

#ifndef ACCEL_CREDS_H
#define ACCEL_CREDS_H

#include <time.h>

#include "endpoint.h"

struct aws_creds {
  char *access_key, *secret_key, *session_token; /* session_token may be NULL */
  time_t expiration; /* 0 = does not expire */
  const char *source; /* "env", "profile", "web-identity", "assume-role",
                         "sso", "process", "container", "imds" */
  char *origin; /* more detail for people, or NULL: creds_set_origin */
  unsigned refs; /* private: see creds_put */
};

/* New credentials holding one reference.  Strings are copied;
 * session_token may be NULL.  Returns NULL after reporting an error.
 */
struct aws_creds *
creds_new (const char *access_key, const char *secret_key,
           const char *session_token, time_t expiration, const char *source);

/* Drop a reference; the last one wipes the secrets and frees. */
void creds_put (struct aws_creds *c);

/* Say where exactly c came from ("profile dev in /root/.aws/config",
 * a URL...), for debug messages and accel-inspect --whoami: never a
 * secret.  Returns 0, or -1 after reporting an error.
 */
int creds_set_origin (struct aws_creds *c, const char *fs, ...)
    __attribute__ ((format (printf, 2, 3)));

/* Resolve credentials once, in the order above.  profile and cainfo
 * (an explicit CA bundle) may be NULL.  Returns 0 with *out set (one
 * reference), 1 with *out = NULL if no credentials were found anywhere
 * (anonymous), -1 after reporting an error.
 */
int
creds_resolve (const char *profile, const char *cainfo, struct aws_creds **out);

/* The endpoint of service ("s3", "sts", ...) and the CA bundle for the
 * profile (NULL: AWS_PROFILE or "default"), in the orders of
 * endpoint.h, saying in a debug message which were chosen and where
 * they came from.  explicit_url and explicit_cainfo may be NULL.
 * Returns 0 with both set (free them with endpoint_setting_free), or -1
 * after reporting an error.
 */
int creds_endpoint (const char *profile, const char *service,
                    const char *explicit_url, const char *explicit_cainfo,
                    struct endpoint_setting *endpoint,
                    struct endpoint_setting *ca_bundle);

/* The region: AWS_REGION, AWS_DEFAULT_REGION, the profile's "region" in
 * the config file, else "us-east-1".  profile may be NULL (AWS_PROFILE or
 * "default").  Returns a malloc'd string, or NULL after reporting an
 * error.
 */
char *creds_default_region (const char *profile);

/* The same region, and where it came from ("AWS_REGION", "profile dev
 * in /root/.aws/config", "the default"), for accel-inspect --whoami.
 * Returns 0 with *out set (free it with endpoint_setting_free), or -1
 * after reporting an error.
 */
int creds_region (const char *profile, struct endpoint_setting *out);

/* A thread-safe cache of credentials in front of creds_resolve.
 *
 * creds_provider_get returns a reference to the current credentials
 * (release it with creds_put), resolving them on the first call.  When
 * they are within the refresh margin of their expiry (5 minutes, or
 * ACCEL_CREDS_REFRESH_MARGIN seconds), exactly one caller refreshes
 * while the others keep getting the old, still valid, ones at once.  If
 * a refresh fails while the old ones are still valid they are kept, and
 * the next attempt waits for the retry interval (5 seconds, or
 * ACCEL_CREDS_RETRY_INTERVAL).  Returns 0 with *out set, 1 with *out =
 * NULL for anonymous access (decided once, by the first successful
 * resolution), or -1 after reporting an error (no usable credentials).
 */
struct creds_provider;

/* Does not resolve anything yet.  profile and cainfo (as for
 * creds_resolve) may be NULL.  Returns NULL after reporting an error.
 */
struct creds_provider *
creds_provider_new (const char *profile, const char *cainfo);
int creds_provider_get (struct creds_provider *p, struct aws_creds **out);

/* No other thread may be using p. */
void creds_provider_free (struct creds_provider *p);

/* For tests: a provider with its resolver, clock and timings replaced. */
struct creds_provider_hooks {
  /* Like creds_resolve. */
  int (*resolve) (void *opaque, const char *profile, struct aws_creds **out);
  time_t (*now) (void *opaque);
  void *opaque;
  time_t refresh_margin; /* seconds */
  time_t retry_interval; /* seconds */
  time_t anonymous_recheck; /* seconds; 0: "nothing found" is final */
};
struct creds_provider *
creds_provider_new_with_hooks (const char *profile,
                               const struct creds_provider_hooks *hooks);

#endif /* ACCEL_CREDS_H */
