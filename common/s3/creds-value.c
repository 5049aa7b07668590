/* accel: one set of AWS credentials — made, shared by reference and
 * wiped when the last reference goes — and the environment as the AWS
 * CLI reads it.  The bottom of the credential files: creds-fetch.c
 * makes credentials here, creds.c chooses among the sources.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "creds-fetch.h"
#include "creds-http.h"
#include "creds-internal.h"
#include "creds.h"
#include "report.h"

#define CREDS_MAX_TIMING_ENV 86400

/* The AWS CLI treats an empty variable as unset; so do we. */
const char *
creds_getenv (const char *name)
{
  const char *v = getenv (name);

  return v && *v ? v : NULL;
}

/* See creds-fetch.h. */
int
creds_env_seconds (const char *name, time_t def, time_t *out)
{
  const char *s = creds_getenv (name);
  char *end;
  long v;

  *out = def;
  if (s == NULL)
    return 0;
  errno = 0;
  v = strtol (s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < 0 ||
      v > CREDS_MAX_TIMING_ENV) {
    report_error ("%s: expected seconds from 0 to %d: %s", name,
                  CREDS_MAX_TIMING_ENV, s);
    return -1;
  }
  *out = v;
  return 0;
}

/* Copies, so that callers can pass strings from files or env. */
struct aws_creds *
creds_new (const char *access_key, const char *secret_key,
           const char *session_token, time_t expiration, const char *source)
{
  struct aws_creds *c = calloc (1, sizeof *c);

  if (c == NULL) {
    report_error ("calloc: %m");
    return NULL;
  }
  c->refs = 1;
  c->access_key = strdup (access_key);
  c->secret_key = strdup (secret_key);
  c->session_token = session_token ? strdup (session_token) : NULL;
  if (c->access_key == NULL || c->secret_key == NULL ||
      (session_token && c->session_token == NULL)) {
    report_error ("strdup: %m");
    creds_put (c);
    return NULL;
  }
  c->expiration = expiration;
  c->source = source;
  return c;
}

/* The last reference wipes the secrets before freeing them. */
void
creds_put (struct aws_creds *c)
{
  if (c == NULL || __atomic_sub_fetch (&c->refs, 1, __ATOMIC_ACQ_REL) > 0)
    return;
  free (c->access_key);
  free (c->origin);
  cleanup_free_secret (&c->secret_key);
  cleanup_free_secret (&c->session_token);
  free (c);
}

/* Replaces any origin set before. */
int
creds_set_origin (struct aws_creds *c, const char *fs, ...)
{
  va_list args;
  char *s;
  int r;

  va_start (args, fs);
  r = vasprintf (&s, fs, args);
  va_end (args);
  if (r == -1) {
    report_error ("vasprintf: %m");
    return -1;
  }
  free (c->origin);
  c->origin = s;
  return 0;
}

/* Step 1: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. */
int
creds_from_env (struct aws_creds **out)
{
  const char *ak = creds_getenv ("AWS_ACCESS_KEY_ID");
  const char *sk = creds_getenv ("AWS_SECRET_ACCESS_KEY");

  if (ak == NULL && sk == NULL)
    return 1;
  if (ak == NULL || sk == NULL) {
    report_error ("credentials: %s is set but %s is not",
                  ak ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                  ak ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
    return -1;
  }
  *out = creds_new (ak, sk, creds_getenv ("AWS_SESSION_TOKEN"), 0, "env");
  if (*out == NULL)
    return -1;
  if (creds_set_origin (*out, "the environment (AWS_ACCESS_KEY_ID)") == -1) {
    creds_put (*out);
    *out = NULL;
    return -1;
  }
  return 0;
}
