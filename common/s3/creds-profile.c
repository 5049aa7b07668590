/* accel: the profile in use, as the AWS CLI finds it, and what it
 * says besides credentials: the shared files' paths and sections, a
 * profile's settings (and another profile's, for source_profile), the
 * region and the S3 and STS endpoints.  Below every credential source:
 * creds.c and the steps it calls (creds-assume.c, creds-sso.c) read
 * profiles through here and never the other way round.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "creds-fetch.h"
#include "creds-internal.h"
#include "creds.h"
#include "endpoint.h"
#include "ini.h"
#include "report.h"

#define DEFAULT_REGION "us-east-1"

/* The path of one of the shared files: the environment variable (with a
 * leading "~/" expanded, as the AWS CLI does), else ~/.aws/LEAF.
 * Returns NULL with errno = ENOENT if there is no HOME to find it in.
 */
static char *
shared_file_path (const char *env, const char *leaf)
{
  const char *p = creds_getenv (env);
  const char *home = creds_getenv ("HOME");
  char *path;
  int r;

  if (p && !(p[0] == '~' && (p[1] == '/' || p[1] == '\0'))) {
    path = strdup (p);
    if (path == NULL)
      report_error ("strdup: %m");
    return path;
  }
  if (home == NULL) {
    report_debug ("credentials: HOME is not set: no ~/.aws/%s", leaf);
    errno = ENOENT;
    return NULL;
  }
  if (p)
    r = asprintf (&path, "%s%s", home, p + 1);
  else
    r = asprintf (&path, "%s/.aws/%s", home, leaf);
  if (r == -1) {
    report_error ("asprintf: %m");
    return NULL;
  }
  return path;
}

/* Load one shared file; a missing file is not an error. */
static int
load_shared_file (const char *env, const char *leaf, char **path,
                  struct ini **ini)
{
  *path = shared_file_path (env, leaf);
  if (*path == NULL)
    return errno == ENOENT ? 0 : -1;
  *ini = ini_load (*path);
  if (*ini == NULL && errno != ENOENT)
    return -1;
  return 0;
}

/* Release what profile_load allocated. */
void
profile_free (struct profile *pf)
{
  free (pf->credentials_path);
  free (pf->config_path);
  ini_free (pf->credentials);
  ini_free (pf->config);
  free (pf->config_profile);
}

/* Find the profile's section in the config file: "[profile NAME]", or
 * for the default profile also "[default]"; as in the AWS CLI the
 * former wins if both exist.
 */
static int
profile_find_section (struct profile *pf)
{
  if (asprintf (&pf->config_profile, "profile %s", pf->name) == -1) {
    pf->config_profile = NULL;
    report_error ("asprintf: %m");
    return -1;
  }
  if (pf->config) {
    if (ini_has_section (pf->config, pf->config_profile))
      pf->config_section = pf->config_profile;
    else if (strcmp (pf->name, "default") == 0 &&
             ini_has_section (pf->config, "default"))
      pf->config_section = "default";
  }
  return 0;
}

/* Pick the profile and load its files (the credentials file only if
 * want_credentials).
 */
int
profile_load (struct profile *pf, const char *profile, bool want_credentials)
{
  memset (pf, 0, sizeof *pf);
  pf->explicit = profile != NULL;
  if (profile == NULL)
    profile = creds_getenv ("AWS_PROFILE");
  pf->named = profile != NULL;
  pf->name = profile ? profile : "default";

  if (want_credentials &&
      load_shared_file ("AWS_SHARED_CREDENTIALS_FILE", "credentials",
                        &pf->credentials_path, &pf->credentials) == -1)
    goto err;
  if (load_shared_file ("AWS_CONFIG_FILE", "config", &pf->config_path,
                        &pf->config) == -1)
    goto err;

  if (profile_find_section (pf) == -1)
    goto err;
  return 0;

err:
  profile_free (pf);
  return -1;
}

/* For the region alone: the config file, and the credentials file's
 * [NAME] too (botocore merges it), but a credentials file that cannot
 * be opened (unreadable, a directory) is skipped, as botocore's
 * configparser does: credentials from the environment never read it,
 * and the region lookup did not need it before.
 */
static int
profile_load_for_region (struct profile *pf, const char *profile)
{
  struct stat st;
  char *path;
  int fd;

  if (profile_load (pf, profile, false) == -1)
    return -1;
  path = shared_file_path ("AWS_SHARED_CREDENTIALS_FILE", "credentials");
  if (path == NULL)
    return 0;
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd == -1 || fstat (fd, &st) == -1 || !S_ISREG (st.st_mode)) {
    if (fd == -1 && errno != ENOENT)
      report_debug ("credentials: %s: %m: not read for the region", path);
    else if (fd != -1)
      report_debug ("credentials: %s: not a file: not read for the region",
                    path);
    if (fd != -1)
      close (fd);
    free (path);
    return 0;
  }
  close (fd);
  pf->credentials = ini_load (path);
  pf->credentials_path = path;
  return 0;
}

/* See creds-internal.h: the same files, another section. */
int
profile_view (const struct profile *base, const char *name, struct profile *out)
{
  *out = *base;
  out->name = name;
  out->explicit = out->named = true;
  out->config_section = NULL;
  out->config_profile = NULL;
  return profile_find_section (out);
}

/* Only the section name is the view's own. */
void
profile_view_free (struct profile *v)
{
  free (v->config_profile);
  v->config_profile = NULL;
}

/* A key of the profile's section in the config file, or NULL. */
const char *
profile_config_get (const struct profile *pf, const char *key)
{
  if (pf->config_section == NULL)
    return NULL;
  return nonempty (ini_get (pf->config, pf->config_section, key));
}

/* As in the AWS CLI (botocore), the credentials file's [NAME] section
 * is merged over the config file's: a setting may be in either.
 */
const char *
profile_merged_find (const struct profile *pf, const char *key,
                     const char **path)
{
  const char *v = NULL;

  if (pf->credentials)
    v = nonempty (ini_get (pf->credentials, pf->name, key));
  if (v) {
    *path = pf->credentials_path;
    return v;
  }
  v = profile_config_get (pf, key);
  *path = pf->config_path;
  return v;
}

const char *
profile_merged_get (const struct profile *pf, const char *key)
{
  const char *path;

  return profile_merged_find (pf, key, &path);
}

/* The profile as endpoint.c reads it. */
struct endpoint_profile
profile_endpoint_view (const struct profile *pf)
{
  struct endpoint_profile epf = {
    .config = pf->config,
    .config_path = pf->config_path,
    .section = pf->config_section,
  };

  return epf;
}

/* Say which endpoint and CA bundle were chosen, and why. */
static void
endpoint_describe (const char *service, const struct endpoint_setting *ep,
                   const struct endpoint_setting *ca)
{
  if (ep->value)
    report_debug ("endpoint: %s (from %s)", ep->value, ep->source);
  else
    report_debug ("endpoint: none configured: AWS's own %s endpoint", service);
  if (ca->value)
    report_debug ("CA bundle: %s (from %s)", ca->value, ca->source);
}

/* See creds.h.  The profile need not exist: then only the explicit
 * settings and the environment count.
 */
int
creds_endpoint (const char *profile, const char *service,
                const char *explicit_url, const char *explicit_cainfo,
                struct endpoint_setting *endpoint,
                struct endpoint_setting *ca_bundle)
{
  struct endpoint_profile epf;
  struct profile pf;
  int r;

  memset (endpoint, 0, sizeof *endpoint);
  memset (ca_bundle, 0, sizeof *ca_bundle);
  if (profile_load (&pf, profile, false) == -1)
    return -1;
  epf = profile_endpoint_view (&pf);
  r = endpoint_resolve (service, explicit_url, &epf, endpoint);
  if (r == 0)
    r = endpoint_ca_bundle (explicit_cainfo, &epf, ca_bundle);
  profile_free (&pf);
  if (r == -1) {
    endpoint_setting_free (endpoint);
    return -1;
  }
  endpoint_describe (service, endpoint, ca_bundle);
  return 0;
}

/* A profile named by the user must exist somewhere (the default one
 * need not), otherwise a typo would silently fall through to other
 * credentials.
 */
int
profile_check (const struct profile *pf)
{
  if (!pf->named || strcmp (pf->name, "default") == 0)
    return 0;
  if (pf->config_section ||
      (pf->credentials && ini_has_section (pf->credentials, pf->name)))
    return 0;
  report_error ("credentials: profile %s not found in %s or %s", pf->name,
                pf->credentials_path ? pf->credentials_path : "(no file)",
                pf->config_path ? pf->config_path : "(no file)");
  return -1;
}

/* The region, in the order of creds_default_region. */
char *
profile_region (const struct profile *pf)
{
  const char *r = creds_getenv ("AWS_REGION");
  char *region;

  if (r == NULL)
    r = creds_getenv ("AWS_DEFAULT_REGION");
  if (r == NULL && pf)
    r = profile_merged_get (pf, "region");
  if (r == NULL)
    r = DEFAULT_REGION;
  region = strdup (r);
  if (region == NULL)
    report_error ("strdup: %m");
  return region;
}

/* See creds.h: profile_region's order, saying where it came from. */
int
creds_region (const char *profile, struct endpoint_setting *out)
{
  const char *names[] = { "AWS_REGION", "AWS_DEFAULT_REGION" };
  const char *r = NULL, *path;
  struct profile pf;
  size_t i;
  int ret = 0;

  memset (out, 0, sizeof *out);
  if (profile_load_for_region (&pf, profile) == -1)
    return -1;
  for (i = 0; r == NULL && i < 2; ++i)
    if ((r = creds_getenv (names[i])) != NULL)
      out->source = strdup (names[i]);
  if (r == NULL && (r = profile_merged_find (&pf, "region", &path)) != NULL &&
      asprintf (&out->source, "profile %s in %s", pf.name, path) == -1)
    out->source = NULL;
  if (r == NULL) {
    r = DEFAULT_REGION;
    out->source = strdup ("the default");
  }
  out->value = strdup (r);
  if (out->value == NULL || out->source == NULL) {
    report_error ("strdup: %m");
    endpoint_setting_free (out);
    ret = -1;
  }
  profile_free (&pf);
  return ret;
}

/* The same order as the AWS CLI (see creds.h). */
char *
creds_default_region (const char *profile)
{
  struct profile pf;
  char *region;

  /* The environment wins: no need to read any file. */
  if (creds_getenv ("AWS_REGION") || creds_getenv ("AWS_DEFAULT_REGION"))
    return profile_region (NULL);
  if (profile_load_for_region (&pf, profile) == -1)
    return NULL;
  region = profile_region (&pf);
  profile_free (&pf);
  return region;
}

/* See creds-internal.h.  STS is found by the same rules as S3
 * (endpoint.h).
 */
int
profile_sts (const struct profile *pf, char **region, char **url)
{
  struct endpoint_profile epf = profile_endpoint_view (pf);
  struct endpoint_setting sts = { 0 };

  *url = NULL;
  *region = profile_region (pf);
  if (*region == NULL)
    return -1;
  if (endpoint_resolve ("sts", NULL, &epf, &sts) == -1)
    goto err;
  if (sts.value)
    report_debug ("credentials: STS endpoint %s (from %s)", sts.value,
                  sts.source);
  *url = creds_sts_url (sts.value, *region);
  endpoint_setting_free (&sts);
  if (*url)
    return 0;
err:
  free (*region);
  *region = NULL;
  return -1;
}
