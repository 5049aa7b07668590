/* fuzz-ini: the AWS shared config and credentials files, through
 * common/s3/ini.c and the profile logic of common/s3/creds.c that reads them.
 *
 * The input is parsed from memory (ini_parse) and every lookup that
 * creds.c makes is tried on it; then it is written to a file and used
 * as the config file (creds_default_region: ini_load and the
 * "[profile NAME]" rules) and as the credentials file (creds_resolve:
 * static keys of the default and of a named profile).
 *
 * NB: creds_resolve never sees the input as a config file: a config
 * profile may name a web identity token file and make it ask STS over
 * the network.  With the config file missing, the instance metadata
 * service disabled and the AWS_* variables unset, the chain stops at
 * the credentials file, as wanted.
 *
 * Seeds: config and credentials files as the AWS CLI documents them
 * (tests/fuzz/corpus/ini/).
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "creds.h"
#include "fuzz.h"
#include "ini.h"

/* The sections and keys creds.c looks up. */
static const char *const sections[] = { "default", "profile default", "dev",
                                        "profile dev" };
static const char *const keys[] = {
  "aws_access_key_id", "aws_secret_access_key",   "aws_session_token", "region",
  "role_arn",          "web_identity_token_file", "role_session_name"
};

/* The environment variables the credential chain reads, cleared. */
static const char *const env_unset[] = {
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_PROFILE",
  "AWS_REGION",
  "AWS_DEFAULT_REGION",
  "AWS_ROLE_ARN",
  "AWS_WEB_IDENTITY_TOKEN_FILE",
  "AWS_ROLE_SESSION_NAME",
  "AWS_ENDPOINT_URL",
  "AWS_ENDPOINT_URL_STS",
};

/* Resolve credentials from the file, for profile (NULL: default). */
static void
resolve (const char *profile)
{
  struct aws_creds *c;
  int r = creds_resolve (profile, NULL, &c);

  FUZZ_CHECK (r == -1 || r == 0 || r == 1);
  if (r == 0) {
    FUZZ_CHECK (c->access_key[0] != '\0' && c->secret_key[0] != '\0');
    FUZZ_CHECK (strcmp (c->source, "profile") == 0);
    creds_put (c);
  }
  else
    FUZZ_CHECK (c == NULL);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static char file[4096], missing[4096];
  struct ini *ini;
  char *region;
  size_t i, j;

  if (file[0] == '\0') {
    fuzz_quiet ();
    fuzz_dir_file ("aws-file", file, sizeof file);
    fuzz_dir_file ("missing", missing, sizeof missing);
    for (i = 0; i < sizeof env_unset / sizeof env_unset[0]; i++)
      unsetenv (env_unset[i]);
    setenv ("AWS_EC2_METADATA_DISABLED", "true", 1);
  }

  ini = ini_parse ("fuzz", (const char *) data, size);
  if (ini) {
    for (i = 0; i < sizeof sections / sizeof sections[0]; i++) {
      (void) ini_has_section (ini, sections[i]);
      for (j = 0; j < sizeof keys / sizeof keys[0]; j++) {
        const char *v = ini_get (ini, sections[i], keys[j]);

        if (v)
          (void) strlen (v);
      }
    }
    ini_free (ini);
  }

  fuzz_write_file (file, data, size);
  setenv ("AWS_CONFIG_FILE", file, 1);
  setenv ("AWS_SHARED_CREDENTIALS_FILE", missing, 1);
  region = creds_default_region (NULL);
  free (region);
  region = creds_default_region ("dev");
  free (region);

  setenv ("AWS_CONFIG_FILE", missing, 1);
  setenv ("AWS_SHARED_CREDENTIALS_FILE", file, 1);
  resolve (NULL);
  resolve ("dev");
  return 0;
}
