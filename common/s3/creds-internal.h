/* accel: what the steps of the credential chain share.
 *
 * creds-profile.c loads the profile files and reads settings from
 * them; creds.c walks the chain (creds.h); the steps that live in their
 * own files (creds-assume.c, creds-sso.c) read the profile through
 * creds-profile.c, and the assume-role step resolves a source_profile
 * through the same per-profile steps as the top-level one, which
 * creds.c hands it (so that no two files call each other).  Not for
 * use outside common/s3/creds*.c.
 */

#ifndef ACCEL_CREDS_INTERNAL_H
#define ACCEL_CREDS_INTERNAL_H

#include <stdbool.h>

#include "creds.h"
#include "endpoint.h"
#include "ini.h"

/* An empty value in a file counts as unset, as in the environment. */
static inline const char *
nonempty (const char *v)
{
  return v && *v ? v : NULL;
}

/* The profile in use and its two files, loaded once per resolution. */
struct profile {
  const char *name;
  bool explicit; /* passed by the caller */
  bool named; /* explicit, or from AWS_PROFILE */
  char *credentials_path, *config_path;
  struct ini *credentials, *config; /* NULL if the file does not exist */
  const char *config_section; /* its section in config, or NULL */
  char *config_profile; /* "profile NAME" */
};

/* creds-profile.c: load the profile (the explicit one, else
 * AWS_PROFILE, else "default") and its files; want_credentials also
 * loads the credentials file.  Returns 0, or -1 after reporting an
 * error; free with profile_free.
 */
int
profile_load (struct profile *pf, const char *profile, bool want_credentials);
void profile_free (struct profile *pf);

/* A profile named by the user must exist in one of the files: 0, or
 * -1 after reporting an error.
 */
int profile_check (const struct profile *pf);

/* Another profile of base's files (a source_profile), as if named
 * explicitly: the environment's keys and web identity settings do not
 * apply to it, as in the AWS CLI.  It borrows base's files; release it
 * with profile_view_free before base.  Returns 0, or -1 after
 * reporting an error.
 */
int profile_view (const struct profile *base, const char *name,
                  struct profile *out);
void profile_view_free (struct profile *v);

/* A non-empty key of the profile's section in the config file, or NULL. */
const char *profile_config_get (const struct profile *pf, const char *key);
/* The same, from the credentials file's [NAME] if it has the key, else
 * the config file's: where role and web identity settings and the
 * region may be.  profile_merged_find also says which file (*path).
 */
const char *profile_merged_get (const struct profile *pf, const char *key);
const char *profile_merged_find (const struct profile *pf, const char *key,
                                 const char **path);

/* The profile as endpoint.c reads it. */
struct endpoint_profile profile_endpoint_view (const struct profile *pf);

/* The region (AWS_REGION, AWS_DEFAULT_REGION, the profile's, the
 * default), malloc'd; NULL after reporting an error.  pf may be NULL.
 */
char *profile_region (const struct profile *pf);

/* STS for the profile: the region (as profile_region) and the URL
 * (endpoint.h's "sts", else the regional one), both malloc'd.  Returns
 * 0, or -1 after reporting an error.
 */
int profile_sts (const struct profile *pf, char **region, char **url);

/* The steps.  Each returns 0 with *out set, 1 if it does not apply, or
 * -1 after reporting an error.
 */
int creds_from_env (struct aws_creds **out); /* creds-value.c */
int creds_from_web_identity (const struct profile *pf, const char *cainfo,
                             struct aws_creds **out);

/* A profile's own steps (3 to 7 of creds.h: web identity, SSO, keys in
 * the credentials file, credential_process, keys in the config file),
 * in that order: where a source_profile's credentials come from.
 */
int creds_from_own_steps (const struct profile *pf, const char *cainfo,
                          struct aws_creds **out);

/* The type of a step (such as creds_from_own_steps), for passing one. */
typedef int creds_step_fn (const struct profile *pf, const char *cainfo,
                           struct aws_creds **out);

/* creds-assume.c: role_arn with source_profile or credential_source;
 * a source_profile's credentials come from own_steps
 * (creds_from_own_steps).
 */
int creds_from_assume_role (const struct profile *pf, const char *cainfo,
                            creds_step_fn *own_steps, struct aws_creds **out);

/* creds-sso.c: the token cached by "aws sso login". */
int creds_from_sso (const struct profile *pf, const char *cainfo,
                    struct aws_creds **out);

#endif /* ACCEL_CREDS_INTERNAL_H */
