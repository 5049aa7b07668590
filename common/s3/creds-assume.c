/* accel: assume-role profiles, as the AWS CLI reads them.
 *
 * A profile with role_arn (and no web_identity_token_file, which is the
 * web identity step's) gets its credentials from STS AssumeRole, signed
 * with source credentials named by exactly one of:
 *
 *  - source_profile = NAME: that profile's credentials.  If it has keys
 *    of its own, or no role_arn, they come from its own steps (web
 *    identity, SSO, keys, credential_process: creds_from_own_steps);
 *    otherwise it is an assume-role profile in turn, and the chain goes
 *    on.  A profile naming itself is allowed
 *    only if it has keys (then they are the source, as in the AWS CLI);
 *    any other repetition is a loop.
 *  - credential_source = Environment | Ec2InstanceMetadata |
 *    EcsContainer.
 *
 * role_session_name defaults to "accel-session-SECONDS", like the
 * CLI's "botocore-session-SECONDS"; duration_seconds to 3600; an
 * external_id is passed on.  mfa_serial needs a code typed at a
 * terminal, which a block device server does not have: it is an error.
 *
 * STS is found as for web identity (endpoint.h, "sts"), with the region
 * of the top-level profile for every step of a chain, as the AWS CLI
 * creates its STS client once.  Nothing is cached here: creds.c's
 * provider resolves the whole chain again before the role's credentials
 * expire, source credentials included.
 *
 * Sources: https://docs.aws.amazon.com/cli/latest/userguide/
 * cli-configure-role.html, botocore's AssumeRoleProvider.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "clock.h"
#include "creds-container.h"
#include "creds-fetch.h"
#include "creds-internal.h"
#include "report.h"
#include "sigv4.h"

/* Profiles in one chain, the top-level one included. */
#define MAX_CHAIN 8

/* STS's limits on DurationSeconds (the role's own maximum may be
 * lower: STS says so then).
 */
#define MIN_DURATION 900
#define MAX_DURATION 43200
#define DEFAULT_DURATION "3600"

/* What every step of one resolution shares. */
struct chain {
  const struct profile *top; /* the region and STS endpoint are its */
  const char *cainfo;
  creds_step_fn *own_steps; /* a source_profile's own credentials */
  const char *names[MAX_CHAIN]; /* the profiles assumed so far */
  size_t n;
  /* Where the innermost role's source credentials came from, for the
   * result's origin: the source_profile or credential_source, and that
   * source's own origin.
   */
  char *leaf, *leaf_origin;
};

/* Does the profile exist in either file? */
static bool
profile_exists (const struct profile *pf)
{
  return pf->config_section ||
      (pf->credentials && ini_has_section (pf->credentials, pf->name));
}

/* Static keys in either file. */
static bool
has_static_keys (const struct profile *pf)
{
  return profile_merged_get (pf, "aws_access_key_id") != NULL;
}

/* The assume-role step applies: role_arn without web identity. */
static bool
has_assume_role (const struct profile *pf)
{
  return profile_merged_get (pf, "role_arn") &&
      profile_merged_get (pf, "web_identity_token_file") == NULL;
}

/* "a -> b -> c" for messages. */
static void
chain_describe (const struct chain *ch, const char *last, char *buf,
                size_t size)
{
  size_t i, used = 0;

  buf[0] = '\0';
  for (i = 0; i < ch->n && used < size; ++i)
    used += snprintf (buf + used, size - used, "%s -> ", ch->names[i]);
  if (used < size)
    snprintf (buf + used, size - used, "%s", last);
}

static int assume_role (struct chain *ch, const struct profile *pf,
                        struct aws_creds **out);

/* Remember where the innermost role's source credentials src came
 * from: the source_profile's name, or "credential_source NAME".
 */
static int
chain_set_leaf (struct chain *ch, const char *source_profile,
                const char *credential_source, const struct aws_creds *src)
{
  int r;

  if (source_profile)
    r = asprintf (&ch->leaf, "%s", source_profile);
  else
    r = asprintf (&ch->leaf, "(credential_source %s)", credential_source);
  if (r == -1) {
    ch->leaf = NULL;
    report_error ("asprintf: %m");
    return -1;
  }
  ch->leaf_origin = strdup (src->origin ? src->origin : src->source);
  if (ch->leaf_origin == NULL) {
    report_error ("strdup: %m");
    return -1;
  }
  return 0;
}

/* source_profile = name, for the profile pf. */
static int
source_from_profile (struct chain *ch, const struct profile *pf,
                     const char *name, struct aws_creds **out)
{
  char path[512];
  struct profile src;
  size_t i;
  int r;

  if (profile_view (pf, name, &src) == -1)
    return -1;
  if (!profile_exists (&src)) {
    report_error ("credentials: profile %s: its source_profile %s does not "
                  "exist in %s or %s",
                  pf->name, name,
                  pf->credentials_path ? pf->credentials_path : "(no file)",
                  pf->config_path ? pf->config_path : "(no file)");
    r = -1;
    goto out;
  }

  /* A profile may source its own keys; any other revisit is a loop. */
  if (strcmp (name, pf->name) == 0 && has_static_keys (&src)) {
    r = ch->own_steps (&src, ch->cainfo, out);
    goto out;
  }
  for (i = 0; i < ch->n; ++i) {
    if (strcmp (ch->names[i], name) == 0) {
      chain_describe (ch, name, path, sizeof path);
      report_error ("credentials: profile %s: source_profile loop: %s",
                    ch->names[0], path);
      r = -1;
      goto out;
    }
  }

  if (has_static_keys (&src) || !has_assume_role (&src)) {
    r = ch->own_steps (&src, ch->cainfo, out);
    if (r == 1) {
      report_error ("credentials: profile %s: its source_profile %s has no "
                    "credentials (no keys, web identity, SSO or "
                    "credential_process settings)",
                    pf->name, name);
      r = -1;
    }
  }
  else
    r = assume_role (ch, &src, out);

out:
  profile_view_free (&src);
  return r;
}

/* credential_source Environment: step 1, as a source. */
static int
source_env (const char *cainfo __attribute__ ((unused)), struct aws_creds **out)
{
  return creds_from_env (out);
}

/* The values of credential_source, the step each names (creds.h's 1, 9
 * and 8) and why it may find nothing.
 */
static const struct {
  const char *name;
  int (*fn) (const char *cainfo, struct aws_creds **out);
  const char *none;
} credential_sources[] = {
  { "Environment", source_env,
    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set" },
  { "Ec2InstanceMetadata", creds_fetch_imds,
    "the instance metadata service gave no role credentials" },
  { "EcsContainer", creds_fetch_container,
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and "
    "AWS_CONTAINER_CREDENTIALS_FULL_URI are not set" },
};

/* credential_source = name: finding nothing there is an error. */
static int
source_from_credential_source (const struct chain *ch, const struct profile *pf,
                               const char *name, struct aws_creds **out)
{
  size_t i;
  int r;

  for (i = 0; i < sizeof credential_sources / sizeof credential_sources[0];
       ++i) {
    if (strcmp (name, credential_sources[i].name) != 0)
      continue;
    r = credential_sources[i].fn (ch->cainfo, out);
    if (r == 1) {
      report_error ("credentials: profile %s: credential_source %s, but %s",
                    pf->name, name, credential_sources[i].none);
      r = -1;
    }
    return r;
  }
  report_error ("credentials: profile %s: unknown credential_source %s "
                "(expected Environment, Ec2InstanceMetadata or "
                "EcsContainer)",
                pf->name, name);
  return -1;
}

/* Host and path of an http(s) URL, for the request we sign. */
static int
url_host_path (const char *url, char **host, const char **path)
{
  const char *h = strstr (url, "://");
  size_t n;

  if (h == NULL)
    return -1;
  h += 3;
  n = strcspn (h, "/?#");
  if (n == 0)
    return -1;
  *host = strndup (h, n);
  *path = h[n] == '/' ? h + n : "/";
  return *host ? 0 : -1;
}

/* Append one "&name=value" to the form, value encoded. */
static int
form_add (char **form, const char *name, const char *value)
{
  CLEANUP_FREE char *enc = sigv4_uri_encode (value, true);
  char *s;

  if (enc == NULL)
    return -1;
  if (asprintf (&s, "%s&%s=%s", *form, name, enc) == -1) {
    report_error ("asprintf: %m");
    return -1;
  }
  free (*form);
  *form = s;
  return 0;
}

/* Append "Name: value" to a curl header list. */
static int
header_add (struct curl_slist **list, const char *name, const char *value)
{
  CLEANUP_FREE char *h = NULL;
  struct curl_slist *l;

  if (asprintf (&h, "%s: %s", name, value) == -1) {
    h = NULL;
    report_error ("asprintf: %m");
    return -1;
  }
  l = curl_slist_append (*list, h);
  explicit_bzero (h, strlen (h)); /* may be a session token */
  if (l == NULL) {
    report_error ("curl_slist_append: out of memory");
    return -1;
  }
  *list = l;
  return 0;
}

/* Wipe and free a header list: it holds a signature and maybe a token. */
static void
headers_free (struct curl_slist *l)
{
  struct curl_slist *p;

  for (p = l; p; p = p->next)
    explicit_bzero (p->data, strlen (p->data));
  curl_slist_free_all (l);
}

/* The AssumeRole request, signed with src. */
static int
sts_assume_role (const struct chain *ch, const struct aws_creds *src,
                 const char *role_arn, const char *session,
                 const char *duration, const char *external_id,
                 struct aws_creds **out)
{
  CLEANUP_FREE char *region = NULL, *url = NULL, *host = NULL, *form = NULL;
  CLEANUP_FREE char *auth = NULL;
  struct curl_slist *headers = NULL;
  char amz_date[17], payload_hash[65];
  struct sigv4_kv h[4];
  struct sigv4_request sr;
  const char *path;
  size_t nh = 0;
  int r = -1;

  if (profile_sts (ch->top, &region, &url) == -1)
    return -1;
  if (url_host_path (url, &host, &path) == -1) {
    report_error ("STS endpoint: cannot find the host in %s", url);
    return -1;
  }

  form = strdup ("Action=AssumeRole&Version=2011-06-15");
  if (form == NULL) {
    report_error ("strdup: %m");
    return -1;
  }
  if (form_add (&form, "RoleArn", role_arn) == -1 ||
      form_add (&form, "RoleSessionName", session) == -1 ||
      form_add (&form, "DurationSeconds", duration) == -1 ||
      (external_id && form_add (&form, "ExternalId", external_id) == -1))
    return -1;

  if (sigv4_format_date (now_wall_seconds (), amz_date) == -1 ||
      sigv4_sha256_hex (form, strlen (form), payload_hash) == -1)
    return -1;
  h[nh++] = (struct sigv4_kv){ "content-type",
                               "application/x-www-form-urlencoded; "
                               "charset=utf-8" };
  h[nh++] = (struct sigv4_kv){ "host", host };
  h[nh++] = (struct sigv4_kv){ "x-amz-date", amz_date };
  if (src->session_token)
    h[nh++] = (struct sigv4_kv){ "x-amz-security-token", src->session_token };
  sr = (struct sigv4_request){
    .method = "POST",
    .path = path,
    .headers = h,
    .nr_headers = nh,
    .payload_hash = payload_hash,
    .region = region,
    .service = "sts",
    .amz_date = amz_date,
  };
  auth = sigv4_authorization (&sr, src->access_key, src->secret_key, ", ");
  if (auth == NULL)
    goto out;
  /* NB: the Host header is set, not left to libcurl, so that what is
   * sent is what was signed.
   */
  for (size_t i = 0; i < nh; ++i)
    if (header_add (&headers, h[i].name, h[i].value) == -1)
      goto out;
  if (header_add (&headers, "Authorization", auth) == -1)
    goto out;

  report_debug ("credentials: AssumeRole %s as %s for %s s at %s, signed "
                "with credentials from %s",
                role_arn, session, duration, url,
                src->origin ? src->origin : src->source);
  r = creds_fetch_sts (url, "AssumeRole", role_arn, form, headers, ch->cainfo,
                       "assume-role", out);
out:
  headers_free (headers);
  return r;
}

/* duration_seconds: a whole number in STS's range. */
static int
check_duration (const struct profile *pf, const char *s)
{
  char *end;
  long v;

  errno = 0;
  v = strtol (s, &end, 10);
  if (errno || end == s || *end || v < MIN_DURATION || v > MAX_DURATION) {
    report_error ("credentials: profile %s: duration_seconds must be %d to "
                  "%d: %s",
                  pf->name, MIN_DURATION, MAX_DURATION, s);
    return -1;
  }
  return 0;
}

/* Assume pf's role: check its settings, get the source credentials
 * (recursively), call STS.
 */
static int
assume_role (struct chain *ch, const struct profile *pf, struct aws_creds **out)
{
  const char *role_arn = profile_merged_get (pf, "role_arn");
  const char *source_profile = profile_merged_get (pf, "source_profile");
  const char *credential_source = profile_merged_get (pf, "credential_source");
  const char *session = profile_merged_get (pf, "role_session_name");
  const char *duration = profile_merged_get (pf, "duration_seconds");
  const char *external_id = profile_merged_get (pf, "external_id");
  struct aws_creds *src = NULL;
  char default_session[64], path[512];
  int r;

  if (ch->n == MAX_CHAIN) {
    chain_describe (ch, pf->name, path, sizeof path);
    report_error ("credentials: profile %s: role chain longer than %d "
                  "profiles: %s",
                  ch->names[0], MAX_CHAIN, path);
    return -1;
  }
  ch->names[ch->n++] = pf->name;

  if (source_profile && credential_source) {
    report_error ("credentials: profile %s: role_arn %s with both "
                  "source_profile and credential_source (use one)",
                  pf->name, role_arn);
    return -1;
  }
  if (!source_profile && !credential_source) {
    report_error ("credentials: profile %s: role_arn %s without "
                  "source_profile or credential_source",
                  pf->name, role_arn);
    return -1;
  }
  if (profile_merged_get (pf, "mfa_serial")) {
    report_error ("credentials: profile %s: role %s needs an MFA code "
                  "(mfa_serial), which cannot be typed here; get "
                  "credentials with \"aws configure export-credentials "
                  "--profile %s\" and pass them in the environment",
                  pf->name, role_arn, pf->name);
    return -1;
  }
  if (duration == NULL)
    duration = DEFAULT_DURATION;
  if (check_duration (pf, duration) == -1)
    return -1;
  if (session == NULL) {
    snprintf (default_session, sizeof default_session, "accel-session-%lld",
              (long long) now_wall_seconds ());
    session = default_session;
  }

  if (source_profile)
    r = source_from_profile (ch, pf, source_profile, &src);
  else
    r = source_from_credential_source (ch, pf, credential_source, &src);
  if (r != 0)
    return -1;
  /* The innermost role gets its source first. */
  if (ch->leaf == NULL &&
      chain_set_leaf (ch, source_profile, credential_source, src) == -1) {
    creds_put (src);
    return -1;
  }

  r = sts_assume_role (ch, src, role_arn, session, duration, external_id, out);
  creds_put (src);
  if (r == -1)
    report_error ("credentials: profile %s: could not assume role %s", pf->name,
                  role_arn);
  return r;
}

/* See creds-internal.h.  The origin names the role, every profile of
 * the chain and where the first source credentials came from (never a
 * secret), for debug messages and accel-inspect --whoami.
 */
int
creds_from_assume_role (const struct profile *pf, const char *cainfo,
                        creds_step_fn *own_steps, struct aws_creds **out)
{
  struct chain ch = { .top = pf, .cainfo = cainfo, .own_steps = own_steps };
  char path[512];
  int r;

  if (!has_assume_role (pf))
    return 1;
  r = assume_role (&ch, pf, out);
  if (r == 0) {
    chain_describe (&ch, ch.leaf, path, sizeof path);
    if (creds_set_origin (*out, "role %s, profile chain %s, source: %s",
                          profile_merged_get (pf, "role_arn"), path,
                          ch.leaf_origin) == -1) {
      creds_put (*out);
      *out = NULL;
      r = -1;
    }
  }
  free (ch.leaf);
  free (ch.leaf_origin);
  return r;
}
