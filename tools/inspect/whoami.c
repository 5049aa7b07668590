/* accel-inspect --whoami: which AWS credentials, region, endpoint and
 * CA bundle accel would use here, and where each came from.
 *
 * The credential chain is run once, exactly as the plugin runs it
 * (creds_resolve: a credential_process is run, the container endpoint,
 * STS or instance metadata asked), and what it found is described
 * without any secret: the source, its origin (a file, a URL, a role),
 * the access key id's first 4 characters (AKIA: long-term, ASIA:
 * temporary), whether there is a session token, and the expiry.  Paths
 * and URLs come from the environment and files, so they are printed
 * through format.h's escaping.
 */

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "creds.h"
#include "endpoint.h"
#include "format.h"
#include "inspect.h"
#include "report.h"

/* One "name: value (from source)" line, value NULL meaning fallback. */
static void
text_setting (const char *name, const struct endpoint_setting *s,
              const char *fallback)
{
  printf ("%s: ", name);
  if (s->value == NULL) {
    printf ("%s\n", fallback);
    return;
  }
  format_text_string (stdout, s->value);
  if (s->source) {
    printf (" (from ");
    format_text_string (stdout, s->source);
    printf (")");
  }
  printf ("\n");
}

/* "KEY": value or null, and "KEY_source": its source or null. */
static void
json_setting (const char *key, const struct endpoint_setting *s)
{
  printf (", \"%s\": ", key);
  if (s->value)
    format_json_string (stdout, s->value);
  else
    printf ("null");
  printf (", \"%s_source\": ", key);
  if (s->source)
    format_json_string (stdout, s->source);
  else
    printf ("null");
}

/* The expiry as ISO 8601 UTC, or "" if it cannot be formatted. */
static void
format_expiry (time_t t, char *buf, size_t len)
{
  struct tm tm;

  buf[0] = '\0';
  if (gmtime_r (&t, &tm))
    strftime (buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Print the credentials part (c NULL: none found). */
static void
print_creds (const struct aws_creds *c, bool json)
{
  char exp[32] = "";
  long long left = 0;

  if (c && c->expiration) {
    format_expiry (c->expiration, exp, sizeof exp);
    left = (long long) (c->expiration - time (NULL));
  }
  if (json) {
    printf ("\"source\": ");
    format_json_string (stdout, c ? c->source : "none");
    printf (", \"origin\": ");
    if (c && c->origin)
      format_json_string (stdout, c->origin);
    else
      printf ("null");
    printf (", \"access_key_prefix\": ");
    if (c)
      printf ("\"%.4s\"", c->access_key);
    else
      printf ("null");
    printf (", \"session_token\": %s",
            c && c->session_token ? "true" : "false");
    if (c && c->expiration)
      printf (", \"expiration\": \"%s\", \"expires_in\": %lld", exp, left);
    else
      printf (", \"expiration\": null, \"expires_in\": null");
    return;
  }
  if (c == NULL) {
    printf ("credentials: none found: requests are sent unsigned\n");
    return;
  }
  printf ("credentials: %s", c->source);
  if (c->origin) {
    printf (": ");
    format_text_string (stdout, c->origin);
  }
  printf ("\naccess key: %.4s... (first 4 characters)\n", c->access_key);
  printf ("session token: %s\n", c->session_token ? "yes" : "no");
  if (c->expiration)
    printf ("expires: %s (in %lld s)\n", exp, left);
  else
    printf ("expires: never\n");
}

/* See inspect.h. */
int
whoami_print (const char *endpoint, const char *profile, bool json)
{
  struct endpoint_setting ep = { 0 }, ca = { 0 }, region = { 0 };
  struct aws_creds *c = NULL;
  const char *env = getenv ("AWS_PROFILE");
  const char *shown = profile ? profile : env && *env ? env : "default";
  int r = -1;

  if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    report_error ("curl_global_init failed");
    return -1;
  }
  if (creds_endpoint (profile, "s3", endpoint, NULL, &ep, &ca) == -1 ||
      creds_region (profile, &region) == -1)
    goto out;
  /* NB: 1 (nothing found) is not an error: anonymous access. */
  if (creds_resolve (profile, ca.value, &c) == -1)
    goto out;

  if (json) {
    printf ("{\"profile\": ");
    format_json_string (stdout, shown);
    printf (", ");
    print_creds (c, true);
    json_setting ("region", &region);
    json_setting ("endpoint", &ep);
    json_setting ("ca_bundle", &ca);
    printf ("}\n");
  }
  else {
    printf ("profile: ");
    format_text_string (stdout, shown);
    printf ("%s\n",
            profile           ? " (--profile)"
                : env && *env ? " (from AWS_PROFILE)"
                              : "");
    print_creds (c, false);
    text_setting ("region", &region, "");
    text_setting ("endpoint", &ep,
                  "AWS (https://BUCKET.s3.REGION.amazonaws.com)");
    text_setting ("CA bundle", &ca, "the system's");
  }
  r = 0;

out:
  creds_put (c);
  endpoint_setting_free (&ep);
  endpoint_setting_free (&ca);
  endpoint_setting_free (&region);
  curl_global_cleanup ();
  return r;
}
