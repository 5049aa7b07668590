/* accel: which endpoint a service is reached at, and which CA bundle
 * verifies it, found the way the AWS SDKs and CLI find them.
 *
 * The endpoint of a service (SERVICE is its identifier as a config key,
 * e.g. "s3" or "sts"; in the environment it is upper case, spaces and
 * hyphens as '_') is the first of:
 *
 *  1. the explicit one (endpoint=, --endpoint);
 *  2. AWS_ENDPOINT_URL_<SERVICE>;
 *  3. AWS_ENDPOINT_URL;
 *  4. the profile's "services = NAME" section, [services NAME] in the
 *     config file, key SERVICE, nested endpoint_url:
 *       [services NAME]
 *       s3 =
 *         endpoint_url = http://127.0.0.1:7480
 *  5. the profile's own endpoint_url;
 *  6. none: the service's AWS endpoint for the region.
 *
 * AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true, or if that is unset the
 * profile's ignore_configured_endpoint_urls = true, skips 2 to 5.  As in
 * the AWS CLI, empty values count as unset; a profile naming a services
 * section that does not exist, and a SERVICE key with a value of its own
 * instead of nested keys, are errors (the AWS CLI fails on both).
 * Source: https://docs.aws.amazon.com/sdkref/latest/guide/
 * feature-ss-endpoints.html and botocore's ConfiguredEndpointProvider.
 *
 * The CA bundle is the explicit one (cainfo=, --cainfo), else
 * AWS_CA_BUNDLE, else the profile's ca_bundle, else the system's.
 */

#ifndef ACCEL_ENDPOINT_H
#define ACCEL_ENDPOINT_H

#include "ini.h"

#define ENDPOINT_MAX_URL 2048

/* A setting and where it came from. */
struct endpoint_setting {
  char *value; /* NULL: none configured (use the default) */
  char *source; /* for messages, e.g. "AWS_ENDPOINT_URL_S3", or NULL */
};

/* The profile as endpoint_resolve needs it: the config file (NULL if
 * there is none) and the profile's section in it (NULL if absent).
 */
struct endpoint_profile {
  const struct ini *config;
  const char *config_path;
  const char *section;
};

/* The endpoint of service, in the order above.  explicit_url and pf may
 * be NULL.  The URL must be http(s) with no blanks or control
 * characters.  Returns 0 with *out set (free it with
 * endpoint_setting_free), or -1 after reporting an error.
 */
int endpoint_resolve (const char *service, const char *explicit_url,
                      const struct endpoint_profile *pf,
                      struct endpoint_setting *out);

/* The CA bundle, in the order above.  Returns 0 with *out set, or -1
 * after reporting an error.
 */
int endpoint_ca_bundle (const char *explicit_path,
                        const struct endpoint_profile *pf,
                        struct endpoint_setting *out);

/* Free the strings of s (not s itself); s may be zeroed. */
void endpoint_setting_free (struct endpoint_setting *s);

#endif /* ACCEL_ENDPOINT_H */
