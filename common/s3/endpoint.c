/* accel: endpoints and CA bundles from settings, environment and
 * profile (see endpoint.h for the order).
 *
 * Pure apart from getenv: the profile's config file is loaded by the
 * caller (creds.c, which knows how to find it), so that the S3 client
 * and the STS request of the credential chain read exactly the same
 * rules, and tests/unit/s3/test-endpoint.c can feed it any file.
 */

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "creds-fetch.h"
#include "endpoint.h"
#include "report.h"

/* Longest service identifier we build a variable name from. */
#define MAX_SERVICE 64

/* Free what endpoint_resolve or endpoint_ca_bundle set. */
void
endpoint_setting_free (struct endpoint_setting *s)
{
  free (s->value);
  free (s->source);
  s->value = s->source = NULL;
}

/* Set out to copies of value and source (a printf format). */
static int
setting_set (struct endpoint_setting *out, const char *value, const char *fs,
             ...) __attribute__ ((format (printf, 3, 4)));

static int
setting_set (struct endpoint_setting *out, const char *value, const char *fs,
             ...)
{
  va_list args;
  int r;

  va_start (args, fs);
  r = vasprintf (&out->source, fs, args);
  va_end (args);
  if (r == -1) {
    out->source = NULL;
    report_error ("vasprintf: %m");
    return -1;
  }
  out->value = strdup (value);
  if (out->value == NULL) {
    report_error ("strdup: %m");
    endpoint_setting_free (out);
    return -1;
  }
  return 0;
}

/* A value from the config file; empty counts as unset. */
static const char *
profile_get (const struct endpoint_profile *pf, const char *key)
{
  const char *v;

  if (pf == NULL || pf->config == NULL || pf->section == NULL)
    return NULL;
  v = ini_get (pf->config, pf->section, key);
  return v && *v ? v : NULL;
}

/* AWS_IGNORE_CONFIGURED_ENDPOINT_URLS, else the profile's setting.  As
 * in botocore (ensure_boolean), only "true" in any case is true.
 */
static bool
ignore_configured (const struct endpoint_profile *pf)
{
  const char *v = creds_getenv ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
  const char *what = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS";

  if (v == NULL) {
    v = profile_get (pf, "ignore_configured_endpoint_urls");
    what = "ignore_configured_endpoint_urls";
  }
  if (v == NULL)
    return false;
  if (strcasecmp (v, "true") == 0)
    return true;
  if (strcasecmp (v, "false") != 0)
    report_debug ("endpoint: %s=%s is not \"true\": taken as false", what, v);
  return false;
}

/* http(s), no blanks or control characters (which could smuggle
 * something into a request line), bounded.  NB: a URL with a user
 * name or password is not printed, even to say it is wrong.
 */
static int
endpoint_check (const char *service, const char *url, const char *source)
{
  size_t i;

  if (strchr (url, '@')) {
    report_error ("%s endpoint from %s: must not contain a user name or "
                  "password",
                  service, source);
    errno = EINVAL;
    return -1;
  }
  for (i = 0; url[i]; ++i)
    if ((unsigned char) url[i] <= 0x20 || url[i] == 0x7f ||
        i >= ENDPOINT_MAX_URL)
      break;
  if ((strncasecmp (url, "http://", 7) != 0 &&
       strncasecmp (url, "https://", 8) != 0) ||
      url[i] != '\0') {
    report_error ("%s endpoint from %s: \"%.*s\": expected an http:// or "
                  "https:// URL with no spaces or control characters",
                  service, source, (int) (i < 256 ? i : 256), url);
    errno = EINVAL;
    return -1;
  }
  return 0;
}

/* Step 4: [services NAME], SERVICE =, nested endpoint_url. */
static int
endpoint_from_services (const char *service, const struct endpoint_profile *pf,
                        const char **url, char **source)
{
  const char *name = profile_get (pf, "services");
  const char *block;
  char *section;

  *url = NULL;
  if (name == NULL)
    return 0;
  if (asprintf (&section, "services %s", name) == -1) {
    report_error ("asprintf: %m");
    return -1;
  }
  if (!ini_has_section (pf->config, section)) {
    report_error ("%s: [%s]: services = %s, but there is no [%s] section",
                  pf->config_path, pf->section, name, section);
    free (section);
    errno = EINVAL;
    return -1;
  }
  block = ini_get (pf->config, section, service);
  if (block && *block) {
    report_error ("%s: [%s]: %s = must be followed by indented settings such "
                  "as \"endpoint_url = URL\", not a value",
                  pf->config_path, section, service);
    free (section);
    errno = EINVAL;
    return -1;
  }
  *url = ini_get_nested (pf->config, section, service, "endpoint_url");
  if (*url && **url == '\0')
    *url = NULL;
  if (*url &&
      asprintf (source, "[%s] %s endpoint_url in %s", section, service,
                pf->config_path) == -1) {
    report_error ("asprintf: %m");
    free (section);
    return -1;
  }
  free (section);
  return 0;
}

/* The order of endpoint.h, first hit wins. */
int
endpoint_resolve (const char *service, const char *explicit_url,
                  const struct endpoint_profile *pf,
                  struct endpoint_setting *out)
{
  char env_service[sizeof "AWS_ENDPOINT_URL_" + MAX_SERVICE];
  const char *url;
  char *source = NULL;
  size_t i, n;
  int r;

  memset (out, 0, sizeof *out);
  if (explicit_url && *explicit_url) {
    if (endpoint_check (service, explicit_url, "the command line") == -1)
      return -1;
    return setting_set (out, explicit_url, "the command line");
  }
  if (ignore_configured (pf))
    return 0;

  n = strlen (service);
  if (n == 0 || n > MAX_SERVICE) {
    report_error ("endpoint: invalid service identifier \"%s\"", service);
    errno = EINVAL;
    return -1;
  }
  /* "s3" -> AWS_ENDPOINT_URL_S3, "elastic beanstalk" -> ..._ELASTIC_BEANSTALK */
  memcpy (env_service, "AWS_ENDPOINT_URL_", 17);
  for (i = 0; i < n; ++i) {
    char c = service[i];

    env_service[17 + i] =
        c == ' ' || c == '-' ? '_' : toupper ((unsigned char) c);
  }
  env_service[17 + n] = '\0';

  if ((url = creds_getenv (env_service)) != NULL)
    r = setting_set (out, url, "%s", env_service);
  else if ((url = creds_getenv ("AWS_ENDPOINT_URL")) != NULL)
    r = setting_set (out, url, "AWS_ENDPOINT_URL");
  else {
    if (endpoint_from_services (service, pf, &url, &source) == -1)
      return -1;
    if (url) {
      r = setting_set (out, url, "%s", source);
      free (source);
    }
    else if ((url = profile_get (pf, "endpoint_url")) != NULL)
      r = setting_set (out, url, "[%s] endpoint_url in %s", pf->section,
                       pf->config_path);
    else
      return 0;
  }
  if (r == 0 && endpoint_check (service, out->value, out->source) == -1) {
    endpoint_setting_free (out);
    return -1;
  }
  return r;
}

/* The AWS CLI's order: --ca-bundle, AWS_CA_BUNDLE, ca_bundle. */
int
endpoint_ca_bundle (const char *explicit_path,
                    const struct endpoint_profile *pf,
                    struct endpoint_setting *out)
{
  const char *path;

  memset (out, 0, sizeof *out);
  if (explicit_path && *explicit_path)
    return setting_set (out, explicit_path, "the command line");
  if ((path = creds_getenv ("AWS_CA_BUNDLE")) != NULL)
    return setting_set (out, path, "AWS_CA_BUNDLE");
  if ((path = profile_get (pf, "ca_bundle")) != NULL)
    return setting_set (out, path, "[%s] ca_bundle in %s", pf->section,
                        pf->config_path);
  return 0;
}
