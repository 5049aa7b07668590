/* accel: AWS credentials and region, found the way the AWS CLI finds them.
 *
 * creds_resolve walks the chain described in creds.h once: the
 * environment, then the steps of creds_chain (assume role in
 * creds-assume.c, SSO in creds-sso.c, web identity and instance
 * metadata through creds-fetch.c, credential_process through
 * creds-process.c, the container endpoint through creds-container.c).
 * The profile's two files are loaded once per resolution and shared by
 * the steps that need them; a source_profile's credentials come from
 * the same table (creds_from_own_steps).
 *
 * creds_provider puts a cache in front of it for the plugin's many
 * threads.  Temporary credentials are refreshed by whichever caller
 * first notices they are close to expiry; the cache's lock is released
 * for the duration of that network round trip, so every other caller
 * keeps getting the old credentials without waiting.  Only when there is
 * nothing usable at all (first use, or expired) do callers wait for the
 * refresh in progress.
 */

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "clock.h"
#include "creds-container.h"
#include "creds-fetch.h"
#include "creds-internal.h"
#include "creds-process.h"
#include "creds.h"
#include "endpoint.h"
#include "ini.h"
#include "report.h"

#define DEFAULT_REFRESH_MARGIN 300
#define DEFAULT_RETRY_INTERVAL 5
/* "Nothing found" is looked at again this often: a source that was
 * briefly unreachable at start (IMDS busy) must not mean unsigned
 * requests for the life of the process.
 */
#define DEFAULT_ANONYMOUS_RECHECK 300

/* Take another reference; callers may hold them from any thread. */
static struct aws_creds *
creds_ref (struct aws_creds *c)
{
  __atomic_add_fetch (&c->refs, 1, __ATOMIC_RELAXED);
  return c;
}

/* Set (*out)'s origin; on failure drop *out and return -1. */
static int creds_origin_or_drop (struct aws_creds **out, const char *fs, ...)
    __attribute__ ((format (printf, 2, 3)));
static int
creds_origin_or_drop (struct aws_creds **out, const char *fs, ...)
{
  CLEANUP_FREE char *s = NULL;
  va_list args;
  int r;

  va_start (args, fs);
  r = vasprintf (&s, fs, args);
  va_end (args);
  if (r == -1) {
    s = NULL;
    report_error ("vasprintf: %m");
  }
  if (r == -1 || creds_set_origin (*out, "%s", s) == -1) {
    creds_put (*out);
    *out = NULL;
    return -1;
  }
  return 0;
}

/* Say where credentials came from, without the secrets: the access key
 * id is cut to its first 4 characters (which give its kind: AKIA
 * long-term, ASIA temporary).
 */
static void
creds_describe (const struct aws_creds *c)
{
  const char *o = c->origin ? c->origin : c->source;

  if (c->expiration)
    report_debug ("credentials: from %s, access key %.4s..., "
                  "expire in %lld s",
                  o, c->access_key,
                  (long long) (c->expiration - now_wall_seconds ()));
  else
    report_debug ("credentials: from %s, access key %.4s...", o, c->access_key);
}

/* Static keys in one section of one file.  Half a key pair is an
 * error rather than a reason to look elsewhere.
 */
static int
creds_from_section (const char *path, const struct ini *ini,
                    const char *section, struct aws_creds **out)
{
  const char *ak, *sk;

  if (ini == NULL || section == NULL)
    return 1;
  ak = nonempty (ini_get (ini, section, "aws_access_key_id"));
  sk = nonempty (ini_get (ini, section, "aws_secret_access_key"));
  if (ak == NULL && sk == NULL)
    return 1;
  if (ak == NULL || sk == NULL) {
    report_error ("credentials: %s: [%s]: %s without %s", path, section,
                  ak ? "aws_access_key_id" : "aws_secret_access_key",
                  ak ? "aws_secret_access_key" : "aws_access_key_id");
    return -1;
  }
  *out =
      creds_new (ak, sk, nonempty (ini_get (ini, section, "aws_session_token")),
                 0, "profile");
  if (*out == NULL)
    return -1;
  return creds_origin_or_drop (out, "[%s] in %s", section, path);
}

/* Step 3: web identity.  Each setting comes from its environment
 * variable, else from the profile (as in the AWS CLI, which therefore
 * lets the two be mixed).
 */
int
creds_from_web_identity (const struct profile *pf, const char *cainfo,
                         struct aws_creds **out)
{
  const char *token_file = NULL, *role_arn = NULL, *session = NULL;
  CLEANUP_FREE char *region = NULL, *url = NULL;
  char default_session[32];
  int r;

  if (!pf->explicit) {
    token_file = creds_getenv ("AWS_WEB_IDENTITY_TOKEN_FILE");
    role_arn = creds_getenv ("AWS_ROLE_ARN");
    session = creds_getenv ("AWS_ROLE_SESSION_NAME");
  }
  if (token_file == NULL)
    token_file = profile_merged_get (pf, "web_identity_token_file");
  if (role_arn == NULL)
    role_arn = profile_merged_get (pf, "role_arn");
  if (session == NULL)
    session = profile_merged_get (pf, "role_session_name");

  /* NB: a role_arn without a token file is the assume-role step's. */
  if (token_file == NULL)
    return 1;
  if (role_arn == NULL) {
    report_error ("credentials: web identity token file %s but no role ARN "
                  "(AWS_ROLE_ARN or role_arn)",
                  token_file);
    return -1;
  }
  if (session == NULL) {
    snprintf (default_session, sizeof default_session, "accel-%ld",
              (long) getpid ());
    session = default_session;
  }
  if (profile_sts (pf, &region, &url) == -1)
    return -1;
  r = creds_fetch_web_identity (url, region, role_arn, token_file, session,
                                cainfo, out);
  if (r == 0)
    r = creds_origin_or_drop (out,
                              "web identity: role %s, token file %s, STS %s",
                              role_arn, token_file, url);
  return r;
}

/* Step 5: the profile's keys in the shared credentials file. */
static int
step_credentials_file (const struct profile *pf,
                       const char *cainfo __attribute__ ((unused)),
                       struct aws_creds **out)
{
  return creds_from_section (pf->credentials_path, pf->credentials, pf->name,
                             out);
}

/* Step 6: the profile's credential_process.  As in the AWS CLI, which
 * merges the profile's sections of both files, it may be in either; the
 * credentials file wins.
 */
static int
step_process (const struct profile *pf,
              const char *cainfo __attribute__ ((unused)),
              struct aws_creds **out)
{
  const char *command = NULL, *path = pf->credentials_path;
  CLEANUP_FREE char *origin = NULL;

  if (pf->credentials)
    command =
        nonempty (ini_get (pf->credentials, pf->name, "credential_process"));
  if (command == NULL) {
    command = profile_config_get (pf, "credential_process");
    path = pf->config_path;
  }
  if (command == NULL)
    return 1;
  if (asprintf (&origin, "profile %s in %s", pf->name, path) == -1) {
    origin = NULL;
    report_error ("asprintf: %m");
    return -1;
  }
  return creds_fetch_process (command, origin, out);
}

/* Step 7: the profile's keys in the config file. */
static int
step_config_file (const struct profile *pf,
                  const char *cainfo __attribute__ ((unused)),
                  struct aws_creds **out)
{
  return creds_from_section (pf->config_path, pf->config, pf->config_section,
                             out);
}

/* Step 8: the container endpoint (ECS, EKS Pod Identity). */
static int
step_container (const struct profile *pf __attribute__ ((unused)),
                const char *cainfo, struct aws_creds **out)
{
  return creds_fetch_container (cainfo, out);
}

/* Step 9: the EC2 instance role. */
static int
step_imds (const struct profile *pf __attribute__ ((unused)),
           const char *cainfo, struct aws_creds **out)
{
  return creds_fetch_imds (cainfo, out);
}

/* Step 2: assume role, its source_profile's credentials from that
 * profile's own steps (below).
 */
static int
step_assume_role (const struct profile *pf, const char *cainfo,
                  struct aws_creds **out)
{
  return creds_from_assume_role (pf, cainfo, creds_from_own_steps, out);
}

/* The chain after the environment, in the AWS CLI's order (creds.h).
 * Each step returns 0 (found: stop), 1 (nothing here: go on) or -1
 * (error: stop, so that a broken source never falls through to others).
 * own marks a profile's own steps: those a source_profile's
 * credentials come from (botocore's ProfileProviderBuilder).
 */
static const struct creds_step {
  const char *name;
  creds_step_fn *fn;
  bool own;
} creds_chain[] = {
  { "assume role", step_assume_role, false },
  { "web identity", creds_from_web_identity, true },
  { "SSO", creds_from_sso, true },
  { "shared credentials file", step_credentials_file, true },
  { "credential_process", step_process, true },
  { "config file", step_config_file, true },
  { "container endpoint", step_container, false },
  { "instance metadata", step_imds, false },
};

/* Walk the chain (only_own: a profile's own steps) until a step finds
 * credentials or fails.  Returns as a step does.
 */
static int
creds_walk (const struct profile *pf, const char *cainfo, bool only_own,
            struct aws_creds **out)
{
  size_t i;
  int r = 1;

  for (i = 0; r == 1 && i < sizeof creds_chain / sizeof creds_chain[0]; ++i) {
    if (only_own && !creds_chain[i].own)
      continue;
    r = creds_chain[i].fn (pf, cainfo, out);
    if (r == -1)
      report_debug ("credentials: profile %s: %s failed", pf->name,
                    creds_chain[i].name);
  }
  return r;
}

/* See creds-internal.h. */
int
creds_from_own_steps (const struct profile *pf, const char *cainfo,
                      struct aws_creds **out)
{
  return creds_walk (pf, cainfo, true, out);
}

/* One pass over the chain; the first source that has credentials wins. */
int
creds_resolve (const char *profile, const char *cainfo, struct aws_creds **out)
{
  struct endpoint_setting ca = { 0 };
  struct endpoint_profile epf;
  struct profile pf;
  int r;

  *out = NULL;
  /* NB: an explicit profile overrides the environment's keys, as the
   * AWS CLI's --profile does.
   */
  if (profile == NULL) {
    r = creds_from_env (out);
    if (r != 1)
      goto done;
  }

  if (profile_load (&pf, profile, true) == -1)
    return -1;
  /* The CA bundle of the network steps is chosen as S3's is. */
  epf = profile_endpoint_view (&pf);
  r = endpoint_ca_bundle (cainfo, &epf, &ca);
  if (r == 0)
    r = profile_check (&pf);
  if (r == 0)
    r = creds_walk (&pf, ca.value, false, out);
  profile_free (&pf);
  endpoint_setting_free (&ca);

done:
  /* Already expired when received (a wrong clock here or at the
   * source): say so now, rather than failing later with "the last
   * attempt failed".
   */
  if (r == 0 && (*out)->expiration &&
      (*out)->expiration <= now_wall_seconds ()) {
    report_error ("AWS credentials from %s expired %lld s ago, when they "
                  "were received: is this machine's clock right?",
                  (*out)->origin ? (*out)->origin : (*out)->source,
                  (long long) (now_wall_seconds () - (*out)->expiration));
    creds_put (*out);
    *out = NULL;
    return -1;
  }
  if (r == 0)
    creds_describe (*out);
  else if (r == 1)
    report_debug ("credentials: none found: anonymous access");
  return r;
}

struct creds_provider {
  char *profile; /* NULL: AWS_PROFILE or "default" */
  char *cainfo; /* explicit CA bundle, or NULL */
  struct creds_provider_hooks hooks;

  /* lock protects every field below.  It is held only to look at or
   * swap them, never across a resolution (network I/O).
   */
  pthread_mutex_t lock;
  pthread_cond_t refreshed; /* broadcast when a resolution ends */
  struct aws_creds *current; /* the provider's own reference, or NULL */
  bool resolved; /* some resolution has succeeded */
  bool anonymous; /* ... and found nothing (until anonymous_until) */
  time_t anonymous_until; /* 0: for good */
  bool refreshing; /* one caller is resolving right now */
  unsigned generation; /* counts finished resolutions */
  time_t next_attempt; /* no new attempt before this time */
};

/* The default hooks: the real chain and the real clock.  opaque is the
 * provider, for its CA bundle.
 */
static int
provider_resolve (void *opaque, const char *profile, struct aws_creds **out)
{
  struct creds_provider *p = opaque;

  return creds_resolve (profile, p->cainfo, out);
}

/* The real clock; tests replace it to step through expiry. */
static time_t
provider_now (void *opaque __attribute__ ((unused)))
{
  return now_wall_seconds ();
}

/* The real provider: real chain, real clock, timings from the environment. */
struct creds_provider *
creds_provider_new (const char *profile, const char *cainfo)
{
  struct creds_provider_hooks hooks = {
    .resolve = provider_resolve,
    .now = provider_now,
  };
  struct creds_provider *p;

  if (creds_env_seconds ("ACCEL_CREDS_REFRESH_MARGIN", DEFAULT_REFRESH_MARGIN,
                         &hooks.refresh_margin) == -1 ||
      creds_env_seconds ("ACCEL_CREDS_RETRY_INTERVAL", DEFAULT_RETRY_INTERVAL,
                         &hooks.retry_interval) == -1 ||
      creds_env_seconds ("ACCEL_CREDS_ANONYMOUS_RECHECK",
                         DEFAULT_ANONYMOUS_RECHECK,
                         &hooks.anonymous_recheck) == -1)
    return NULL;
  p = creds_provider_new_with_hooks (profile, &hooks);
  if (p == NULL)
    return NULL;
  p->hooks.opaque = p;
  if (cainfo && (p->cainfo = strdup (cainfo)) == NULL) {
    report_error ("strdup: %m");
    creds_provider_free (p);
    return NULL;
  }
  return p;
}

/* Nothing is resolved until the first creds_provider_get. */
struct creds_provider *
creds_provider_new_with_hooks (const char *profile,
                               const struct creds_provider_hooks *hooks)
{
  struct creds_provider *p = calloc (1, sizeof *p);

  if (p == NULL) {
    report_error ("calloc: %m");
    return NULL;
  }
  if (profile) {
    p->profile = strdup (profile);
    if (p->profile == NULL) {
      report_error ("strdup: %m");
      free (p);
      return NULL;
    }
  }
  p->hooks = *hooks;
  pthread_mutex_init (&p->lock, NULL);
  pthread_cond_init (&p->refreshed, NULL);
  return p;
}

/* Callers hold their own references, so credentials may outlive p. */
void
creds_provider_free (struct creds_provider *p)
{
  if (p == NULL)
    return;
  creds_put (p->current);
  pthread_cond_destroy (&p->refreshed);
  pthread_mutex_destroy (&p->lock);
  free (p->profile);
  free (p->cainfo);
  free (p);
}

/* Usable: not expired, so a request may still be signed with them. */
static bool
creds_usable (const struct aws_creds *c, time_t now)
{
  return c && (c->expiration == 0 || now < c->expiration);
}

/* Fresh: not within the margin of expiring, so no refresh is due. */
static bool
creds_fresh (const struct aws_creds *c, time_t now, time_t margin)
{
  return c && (c->expiration == 0 || now < c->expiration - margin);
}

/* See creds.h.  The lock is dropped around the resolution, so the
 * refresher is the only caller that waits for the network.
 */
int
creds_provider_get (struct creds_provider *p, struct aws_creds **out)
{
  struct aws_creds *old = NULL, *fresh = NULL;
  bool waited = false;
  time_t now;
  int r;

  *out = NULL;
  pthread_mutex_lock (&p->lock);
  for (;;) {
    now = p->hooks.now (p->hooks.opaque);
    if (p->anonymous &&
        (p->anonymous_until == 0 || now < p->anonymous_until ||
         p->refreshing)) {
      pthread_mutex_unlock (&p->lock);
      return 1;
    }
    /* Old but usable credentials are fine while someone else refreshes
     * or while we back off after a failure.
     */
    if (creds_fresh (p->current, now, p->hooks.refresh_margin) ||
        (creds_usable (p->current, now) &&
         (p->refreshing || now < p->next_attempt))) {
      *out = creds_ref (p->current);
      pthread_mutex_unlock (&p->lock);
      return 0;
    }
    if (!p->refreshing) {
      if (!waited && now >= p->next_attempt)
        break; /* we refresh */
      pthread_mutex_unlock (&p->lock);
      report_error ("AWS credentials: none available: the last attempt "
                    "to get them failed");
      return -1;
    }
    /* Nothing usable and a refresh in progress: wait for its result. */
    {
      unsigned generation = p->generation;

      while (p->refreshing && p->generation == generation)
        pthread_cond_wait (&p->refreshed, &p->lock);
    }
    waited = true;
  }

  p->refreshing = true;
  if (creds_usable (p->current, now))
    old = creds_ref (p->current);
  pthread_mutex_unlock (&p->lock);

  if (old)
    report_debug ("credentials: refreshing, current ones expire in %lld s",
                  (long long) (old->expiration - now));

  /* NB: network I/O, so no lock held. */
  r = p->hooks.resolve (p->hooks.opaque, p->profile, &fresh);

  pthread_mutex_lock (&p->lock);
  now = p->hooks.now (p->hooks.opaque);
  p->refreshing = false;
  p->generation++;
  p->next_attempt = now + p->hooks.retry_interval;
  pthread_cond_broadcast (&p->refreshed);
  if (r == 0) {
    creds_put (p->current);
    p->current = fresh;
    p->resolved = true;
    p->anonymous = false;
    *out = creds_ref (fresh);
    pthread_mutex_unlock (&p->lock);
    creds_put (old);
    return 0;
  }
  if ((r == 1 && !p->resolved) || (r == -1 && p->anonymous)) {
    /* NB: a failed re-check while anonymous stays anonymous. */
    p->anonymous = true;
    p->anonymous_until =
        p->hooks.anonymous_recheck ? now + p->hooks.anonymous_recheck : 0;
    pthread_mutex_unlock (&p->lock);
    return 1;
  }
  pthread_mutex_unlock (&p->lock);

  /* The refresh failed (or found nothing, which after having had
   * credentials is a failure too).
   */
  if (creds_usable (old, now)) {
    report_debug ("credentials: refresh failed; keeping the current ones "
                  "(valid for %lld s more), next attempt in %lld s",
                  (long long) (old->expiration - now),
                  (long long) p->hooks.retry_interval);
    *out = old;
    return 0;
  }
  creds_put (old);
  if (r == 1)
    report_error ("AWS credentials: expired, and no new ones were found");
  return -1;
}
