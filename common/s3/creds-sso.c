/* accel: SSO (IAM Identity Center) profiles, through the token that
 * "aws sso login" caches.
 *
 * A profile is an SSO profile if it has any of sso_session,
 * sso_start_url, sso_region, sso_account_id, sso_role_name.  It needs
 * sso_account_id and sso_role_name, and either sso_session naming a
 * [sso-session NAME] section of the config file with sso_start_url and
 * sso_region, or (the legacy form) those two in the profile itself.
 *
 * "aws sso login" leaves the access token in
 * ~/.aws/sso/cache/HEX.json, HEX being the SHA-1 of the session name
 * (or, in the legacy form, of the start URL), with fields accessToken
 * and expiresAt.  A valid token is exchanged at the portal,
 * GET /federation/credentials?account_id=..&role_name=.. with header
 * x-amz-sso_bearer_token, for roleCredentials (expiration in
 * milliseconds).  The portal is https://portal.sso.REGION.amazonaws.com
 * unless configured otherwise the way every endpoint is (endpoint.h,
 * service "sso": AWS_ENDPOINT_URL_SSO, ...).
 *
 * We never log in, nor refresh the token with its refresh token (that
 * rewrites the CLI's cache): a missing or expired token is an error
 * saying to run "aws sso login".  The token is a secret: never printed.
 *
 * Sources: https://docs.aws.amazon.com/cli/latest/userguide/
 * cli-configure-sso.html, the SSO portal API's GetRoleCredentials,
 * botocore's SSOProvider.
 */

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cleanup.h"
#include "clock.h"
#include "creds-fetch.h"
#include "creds-http.h"
#include "creds-internal.h"
#include "creds-parse.h"
#include "hex.h"
#include "report.h"
#include "s3-url.h"
#include "sigv4.h"

#define SHA1_LEN 20

/* The portal is a regional AWS service, like STS. */
#define SSO_CONNECT_MS 5000L
#define SSO_TOTAL_MS 30000L

/* What an SSO profile names. */
struct sso_config {
  const char *session; /* NULL in the legacy form */
  const char *start_url, *region, *account_id, *role_name;
};

/* Read the profile's SSO settings; 1 if it has none. */
static int
sso_config (const struct profile *pf, struct sso_config *c)
{
  CLEANUP_FREE char *section = NULL;
  const char *missing = NULL;

  c->session = profile_config_get (pf, "sso_session");
  c->start_url = profile_config_get (pf, "sso_start_url");
  c->region = profile_config_get (pf, "sso_region");
  c->account_id = profile_config_get (pf, "sso_account_id");
  c->role_name = profile_config_get (pf, "sso_role_name");
  if (!c->session && !c->start_url && !c->region && !c->account_id &&
      !c->role_name)
    return 1;

  if (c->session) {
    const char *url, *region;

    if (asprintf (&section, "sso-session %s", c->session) == -1) {
      section = NULL;
      report_error ("asprintf: %m");
      return -1;
    }
    if (pf->config == NULL || !ini_has_section (pf->config, section)) {
      report_error ("credentials: profile %s: sso_session %s: no "
                    "[sso-session %s] section in %s",
                    pf->name, c->session, c->session,
                    pf->config_path ? pf->config_path : "the config file");
      return -1;
    }
    url = ini_get (pf->config, section, "sso_start_url");
    region = ini_get (pf->config, section, "sso_region");
    /* As in the AWS CLI, the profile may repeat them, but not differ. */
    if ((c->start_url && url && strcmp (c->start_url, url) != 0) ||
        (c->region && region && strcmp (c->region, region) != 0)) {
      report_error ("credentials: profile %s: its sso_start_url or "
                    "sso_region differs from [sso-session %s]'s",
                    pf->name, c->session);
      return -1;
    }
    c->start_url = url && *url ? url : NULL;
    c->region = region && *region ? region : NULL;
  }
  if (!c->start_url)
    missing = "sso_start_url";
  else if (!c->region)
    missing = "sso_region";
  else if (!c->account_id)
    missing = "sso_account_id";
  else if (!c->role_name)
    missing = "sso_role_name";
  if (missing) {
    report_error ("credentials: profile %s: SSO profile without %s", pf->name,
                  missing);
    return -1;
  }
  return 0;
}

/* ~/.aws/sso/cache/SHA1HEX(key).json */
static char *
token_path (const char *key)
{
  const char *home = creds_getenv ("HOME");
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  char hex[2 * SHA1_LEN + 1];
  char *path;

  if (home == NULL) {
    report_error ("credentials: SSO: HOME is not set: no ~/.aws/sso/cache");
    return NULL;
  }
  if (!EVP_Digest (key, strlen (key), md, &md_len, EVP_sha1 (), NULL) ||
      md_len != SHA1_LEN) {
    report_error ("credentials: SSO: SHA-1 failed");
    return NULL;
  }
  hex_encode (md, SHA1_LEN, hex);
  if (asprintf (&path, "%s/.aws/sso/cache/%s.json", home, hex) == -1) {
    report_error ("asprintf: %m");
    return NULL;
  }
  return path;
}

/* The error for a token we cannot use, with the two ways out. */
static void
token_unusable (const struct profile *pf, const char *path, const char *why)
{
  report_error ("credentials: profile %s: SSO token %s %s: run \"aws sso "
                "login --profile %s\", or pass credentials from \"aws "
                "configure export-credentials --profile %s\" in the "
                "environment",
                pf->name, path, why, pf->name, pf->name);
}

/* Read the cached token if it is valid; NULL after reporting an error.
 * expiresAt is ISO 8601; older CLIs wrote "...UTC" instead of "Z".
 */
static char *
read_token (const struct profile *pf, const char *path)
{
  CLEANUP_FREE char *expires = NULL;
  CLEANUP_FREE_SECRET char *buf = NULL;
  char *token = NULL;
  size_t len, n;
  time_t t;

  if (access (path, F_OK) == -1 && errno == ENOENT) {
    token_unusable (pf, path, "not found");
    return NULL;
  }
  buf = creds_read_token_file ("SSO token cache", path);
  if (buf == NULL) {
    token_unusable (pf, path, "unreadable");
    return NULL;
  }
  len = strlen (buf);

  expires = creds_json_string (buf, len, "expiresAt");
  if (expires) {
    n = strlen (expires);
    if (n > 3 && strcmp (expires + n - 3, "UTC") == 0) {
      n -= 3;
      while (n > 0 && expires[n - 1] == ' ')
        n--;
      /* NB: at least 3 bytes shorter than it was: room for "Z". */
      expires[n] = 'Z';
      expires[n + 1] = '\0';
    }
  }
  if (expires == NULL || creds_parse_time (expires, &t) == -1) {
    token_unusable (pf, path, "has no valid expiresAt");
    return NULL;
  }
  if (t <= now_wall_seconds ()) {
    token_unusable (pf, path, "has expired");
    return NULL;
  }
  token = creds_json_string (buf, len, "accessToken");
  if (token == NULL || *token == '\0' ||
      strcspn (token, "\r\n") != strlen (token)) {
    cleanup_free_secret (&token);
    token_unusable (pf, path, "has no valid accessToken");
    return NULL;
  }
  report_debug ("credentials: SSO token %s, valid for %lld s more", path,
                (long long) (t - now_wall_seconds ()));
  return token;
}

/* The portal's URL for GetRoleCredentials. */
static char *
portal_url (const struct profile *pf, const struct sso_config *c)
{
  struct endpoint_profile epf = profile_endpoint_view (pf);
  struct endpoint_setting ep = { 0 };
  CLEANUP_FREE char *base = NULL, *account = NULL, *role = NULL;
  char *url = NULL;
  size_t n;

  if (!s3_region_valid (c->region)) {
    report_error ("credentials: profile %s: invalid sso_region %s", pf->name,
                  c->region);
    return NULL;
  }
  if (endpoint_resolve ("sso", NULL, &epf, &ep) == -1)
    return NULL;
  if (ep.value) {
    report_debug ("credentials: SSO portal %s (from %s)", ep.value, ep.source);
    base = ep.value;
    ep.value = NULL;
  }
  else if (asprintf (&base, "https://portal.sso.%s.amazonaws.com", c->region) ==
           -1) {
    base = NULL;
    report_error ("asprintf: %m");
  }
  endpoint_setting_free (&ep);
  if (base == NULL)
    return NULL;
  n = strlen (base);
  while (n > 0 && base[n - 1] == '/')
    base[--n] = '\0';
  account = sigv4_uri_encode (c->account_id, true);
  role = sigv4_uri_encode (c->role_name, true);
  if (account == NULL || role == NULL)
    return NULL;
  if (asprintf (&url, "%s/federation/credentials?account_id=%s&role_name=%s",
                base, account, role) == -1) {
    report_error ("asprintf: %m");
    return NULL;
  }
  return url;
}

/* A required, non-empty string of roleCredentials, or NULL after
 * reporting an error.  NB: it may be a secret: wipe it.
 */
static char *
role_field (const char *doc, size_t len, const char *name)
{
  char *v = creds_json_string (doc, len, name);

  if (v == NULL || *v == '\0') {
    report_error ("SSO GetRoleCredentials response: %s %s", name,
                  v                     ? "is empty"
                      : errno == ENOENT ? "is missing"
                                        : "is malformed");
    free (v);
    return NULL;
  }
  return v;
}

/* {"roleCredentials": {"accessKeyId", "secretAccessKey",
 * "sessionToken", "expiration" (milliseconds since the epoch)}}
 */
static int
parse_role_credentials (const char *body, size_t len, struct aws_creds **out)
{
  CLEANUP_FREE char *ak = NULL;
  CLEANUP_FREE_SECRET char *sk = NULL, *token = NULL;
  const char *rc;
  size_t rc_len;
  long long ms;

  if (creds_json_raw (body, len, "roleCredentials", &rc, &rc_len) == -1 ||
      *rc != '{') {
    report_error ("SSO GetRoleCredentials response: no roleCredentials "
                  "object");
    return -1;
  }
  if (creds_json_integer (rc, rc_len, "expiration", &ms) == -1 || ms <= 0) {
    report_error ("SSO GetRoleCredentials response: no valid expiration");
    return -1;
  }
  ak = role_field (rc, rc_len, "accessKeyId");
  sk = ak ? role_field (rc, rc_len, "secretAccessKey") : NULL;
  token = sk ? role_field (rc, rc_len, "sessionToken") : NULL;
  if (token == NULL)
    return -1;
  *out = creds_new (ak, sk, token, (time_t) (ms / 1000), "sso");
  return *out ? 0 : -1;
}

/* See creds-internal.h.  The origin names the account, the role and
 * the token's cache file (never the token), for debug messages and
 * accel-inspect --whoami.
 */
int
creds_from_sso (const struct profile *pf, const char *cainfo,
                struct aws_creds **out)
{
  struct sso_config c;
  CLEANUP_FREE char *path = NULL, *url = NULL;
  CLEANUP_FREE_SECRET char *token = NULL, *header = NULL;
  CLEANUP_SLIST struct curl_slist *headers = NULL;
  CLEANUP_HTTP_BODY struct http_body body = { 0 };
  char errbuf[CURL_ERROR_SIZE];
  struct http_request req = { 0 };
  long status = 0;
  int r;

  r = sso_config (pf, &c);
  if (r != 0)
    return r;
  path = token_path (c.session ? c.session : c.start_url);
  if (path == NULL)
    return -1;
  url = portal_url (pf, &c);
  if (url == NULL)
    return -1;
  token = read_token (pf, path);
  if (token == NULL)
    return -1;

  if (asprintf (&header, "x-amz-sso_bearer_token: %s", token) == -1) {
    header = NULL;
    report_error ("asprintf: %m");
    return -1;
  }
  headers = curl_slist_append (NULL, header);
  if (headers == NULL) {
    report_error ("curl_slist_append: out of memory");
    return -1;
  }

  report_debug ("credentials: SSO role %s in account %s at %s", c.role_name,
                c.account_id, url);
  req.url = url;
  req.headers = headers;
  req.connect_ms = SSO_CONNECT_MS;
  req.total_ms = SSO_TOTAL_MS;
  req.cainfo = cainfo;
  r = creds_http_do (&req, &body, &status, errbuf);
  /* NB: the list holds its own copy of the header, with the token. */
  explicit_bzero (headers->data, strlen (headers->data));
  if (r == -1) {
    report_error ("credentials: profile %s: SSO GetRoleCredentials: %s: %s",
                  pf->name, url, errbuf);
    return -1;
  }
  if (status == 401) {
    token_unusable (pf, path, "was refused by the SSO portal");
    return -1;
  }
  if (status == 403) {
    report_error ("credentials: profile %s: SSO: no access to role %s in "
                  "account %s (HTTP 403)",
                  pf->name, c.role_name, c.account_id);
    return -1;
  }
  if (status != 200) {
    report_error ("credentials: profile %s: SSO GetRoleCredentials for role "
                  "%s in account %s: HTTP %ld",
                  pf->name, c.role_name, c.account_id, status);
    return -1;
  }
  if (parse_role_credentials (body.data, body.len, out) == -1)
    return -1;
  if (creds_set_origin (*out, "SSO account %s, role %s (profile %s, token %s)",
                        c.account_id, c.role_name, pf->name, path) == -1) {
    creds_put (*out);
    *out = NULL;
    return -1;
  }
  return 0;
}
