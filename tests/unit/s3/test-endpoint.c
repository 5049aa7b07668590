/* accel: unit test of common/s3/endpoint.c.
 *
 * The endpoint order of the AWS SDKs, one level at a time, each level
 * overriding the ones below it: explicit, AWS_ENDPOINT_URL_<SERVICE>,
 * AWS_ENDPOINT_URL, the profile's services section, its endpoint_url.
 * The ignore flag from the environment and from the profile (the
 * environment's wins, even when "false"); empty values count as unset;
 * the services section with several services and the errors the AWS
 * CLI makes too (a missing services section, "s3 = value").  Then the
 * CA bundle order, and creds_endpoint reading a real config file named
 * by AWS_CONFIG_FILE and AWS_PROFILE.
 *
 * Output: a line per failed check and a final "endpoint: N checks, N
 * failed".
 */

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "creds.h"
#include "endpoint.h"
#include "ini.h"
#include "test.h"

/* Every variable endpoint.c and creds.c read for endpoints. */
static void
reset_env (void)
{
  unsetenv ("AWS_ENDPOINT_URL");
  unsetenv ("AWS_ENDPOINT_URL_S3");
  unsetenv ("AWS_ENDPOINT_URL_STS");
  unsetenv ("AWS_ENDPOINT_URL_ELASTIC_BEANSTALK");
  unsetenv ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
  unsetenv ("AWS_CA_BUNDLE");
  unsetenv ("AWS_PROFILE");
  unsetenv ("AWS_CONFIG_FILE");
  test_clear_errors ();
}

static const char config_text[] = "[default]\n"
                                  "endpoint_url = http://profile-global\n"
                                  "services = local\n"
                                  "ca_bundle = /profile/ca.pem\n"
                                  "[profile ignoring]\n"
                                  "endpoint_url = http://profile-global\n"
                                  "ignore_configured_endpoint_urls = TRUE\n"
                                  "[profile no-services]\n"
                                  "endpoint_url = http://only-global\n"
                                  "[profile empty]\n"
                                  "endpoint_url =\n"
                                  "services =\n"
                                  "ca_bundle =\n"
                                  "[profile missing]\n"
                                  "services = nowhere\n"
                                  "[profile flat]\n"
                                  "services = flat\n"
                                  "[profile sts-only]\n"
                                  "endpoint_url = http://profile-global\n"
                                  "services = sts-only\n"
                                  "[services local]\n"
                                  "sts =\n"
                                  "  endpoint_url = http://services-sts\n"
                                  "s3 =\n"
                                  "\tendpoint_url = http://services-s3\n"
                                  "elastic_beanstalk =\n"
                                  "      endpoint_url = http://services-eb\n"
                                  "[services flat]\n"
                                  "s3 = http://not-nested\n"
                                  "[services sts-only]\n"
                                  "sts =\n"
                                  "  endpoint_url = http://services-sts\n";

static struct ini *config;

/* endpoint_resolve for one profile section; checks the result. */
static bool
resolves (const char *service, const char *explicit_url, const char *section,
          const char *want_url, const char *want_source)
{
  struct endpoint_profile pf = {
    .config = config,
    .config_path = "cfg",
    .section = section,
  };
  struct endpoint_setting out;
  bool ok;

  if (endpoint_resolve (service, explicit_url, &pf, &out) == -1)
    return false;
  ok = test_str_is (out.value, want_url) &&
      test_str_is (out.source, want_source);
  if (!ok)
    fprintf (stderr, "got %s from %s\n", out.value ? out.value : "(none)",
             out.source ? out.source : "(none)");
  endpoint_setting_free (&out);
  return ok && test_nr_errors () == 0;
}

/* endpoint_resolve fails, reporting one error with a and b in it. */
static bool
refuses (const char *service, const char *section, const char *a, const char *b)
{
  struct endpoint_profile pf = {
    .config = config,
    .config_path = "cfg",
    .section = section,
  };
  struct endpoint_setting out;

  test_clear_errors ();
  if (endpoint_resolve (service, NULL, &pf, &out) != -1) {
    endpoint_setting_free (&out);
    return false;
  }
  return out.value == NULL && test_error_says (a, b);
}

/* Each level overrides every one below it. */
static void
test_order (void)
{
  reset_env ();
  setenv ("AWS_ENDPOINT_URL_S3", "http://env-s3", 1);
  setenv ("AWS_ENDPOINT_URL", "http://env-global", 1);
  CHECK (resolves ("s3", "http://explicit", "default", "http://explicit",
                   "the command line"));
  CHECK (
      resolves ("s3", NULL, "default", "http://env-s3", "AWS_ENDPOINT_URL_S3"));
  unsetenv ("AWS_ENDPOINT_URL_S3");
  CHECK (resolves ("s3", NULL, "default", "http://env-global",
                   "AWS_ENDPOINT_URL"));
  unsetenv ("AWS_ENDPOINT_URL");
  CHECK (resolves ("s3", NULL, "default", "http://services-s3",
                   "[services local] s3 endpoint_url in cfg"));
  CHECK (resolves ("s3", NULL, "profile no-services", "http://only-global",
                   "[profile no-services] endpoint_url in cfg"));
  /* The services section lacks s3: the profile's own endpoint_url. */
  CHECK (resolves ("s3", NULL, "profile sts-only", "http://profile-global",
                   "[profile sts-only] endpoint_url in cfg"));
  CHECK (resolves ("s3", NULL, NULL, NULL, NULL));
  {
    struct endpoint_setting out;

    CHECK (endpoint_resolve ("s3", NULL, NULL, &out) == 0 && out.value == NULL);
  }

  /* The variable is per service: AWS_ENDPOINT_URL_S3 is not STS's. */
  setenv ("AWS_ENDPOINT_URL_S3", "http://env-s3", 1);
  CHECK (resolves ("sts", NULL, "default", "http://services-sts",
                   "[services local] sts endpoint_url in cfg"));
  setenv ("AWS_ENDPOINT_URL_STS", "http://env-sts", 1);
  CHECK (resolves ("sts", NULL, "default", "http://env-sts",
                   "AWS_ENDPOINT_URL_STS"));
  /* Spaces and hyphens become '_' in the variable's name. */
  setenv ("AWS_ENDPOINT_URL_ELASTIC_BEANSTALK", "http://env-eb", 1);
  CHECK (resolves ("elastic beanstalk", NULL, "default", "http://env-eb",
                   "AWS_ENDPOINT_URL_ELASTIC_BEANSTALK"));
  CHECK (resolves ("elastic-beanstalk", NULL, "default", "http://env-eb",
                   "AWS_ENDPOINT_URL_ELASTIC_BEANSTALK"));
  unsetenv ("AWS_ENDPOINT_URL_ELASTIC_BEANSTALK");
  CHECK (resolves ("elastic_beanstalk", NULL, "default", "http://services-eb",
                   "[services local] elastic_beanstalk endpoint_url in cfg"));
}

/* Empty values count as unset, as in the AWS CLI. */
static void
test_empty (void)
{
  reset_env ();
  setenv ("AWS_ENDPOINT_URL_S3", "", 1);
  setenv ("AWS_ENDPOINT_URL", "", 1);
  setenv ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "", 1);
  CHECK (resolves ("s3", "", "default", "http://services-s3",
                   "[services local] s3 endpoint_url in cfg"));
  CHECK (resolves ("s3", NULL, "profile empty", NULL, NULL));
}

/* The ignore flag leaves only the explicit endpoint. */
static void
test_ignore (void)
{
  reset_env ();
  setenv ("AWS_ENDPOINT_URL_S3", "http://env-s3", 1);
  setenv ("AWS_ENDPOINT_URL", "http://env-global", 1);
  setenv ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
  CHECK (resolves ("s3", NULL, "default", NULL, NULL));
  CHECK (resolves ("s3", "http://explicit", "default", "http://explicit",
                   "the command line"));
  setenv ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "True", 1);
  CHECK (resolves ("sts", NULL, "default", NULL, NULL));
  /* Only "true" is true (botocore's ensure_boolean). */
  setenv ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "yes", 1);
  CHECK (
      resolves ("s3", NULL, "default", "http://env-s3", "AWS_ENDPOINT_URL_S3"));

  /* From the profile, when the environment does not say. */
  unsetenv ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
  CHECK (resolves ("s3", NULL, "profile ignoring", NULL, NULL));
  CHECK (resolves ("s3", "http://explicit", "profile ignoring",
                   "http://explicit", "the command line"));
  /* The environment's "false" wins over the profile's "true". */
  setenv ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "false", 1);
  CHECK (resolves ("s3", NULL, "profile ignoring", "http://env-s3",
                   "AWS_ENDPOINT_URL_S3"));
  unsetenv ("AWS_ENDPOINT_URL_S3");
  unsetenv ("AWS_ENDPOINT_URL");
  CHECK (resolves ("s3", NULL, "profile ignoring", "http://profile-global",
                   "[profile ignoring] endpoint_url in cfg"));
}

/* What the AWS CLI refuses, and URLs we never send to. */
static void
test_errors (void)
{
  reset_env ();
  CHECK (refuses ("s3", "profile missing",
                  "cfg: [profile missing]: services = nowhere",
                  "no [services nowhere] section"));
  CHECK (refuses ("s3", "profile flat",
                  "cfg: [services flat]: s3 =", "indented settings"));
  /* Only when that level is reached: the environment comes first. */
  setenv ("AWS_ENDPOINT_URL", "http://env-global", 1);
  CHECK (resolves ("s3", NULL, "profile missing", "http://env-global",
                   "AWS_ENDPOINT_URL"));

  setenv ("AWS_ENDPOINT_URL", "ftp://x", 1);
  CHECK (refuses ("s3", NULL, "s3 endpoint from AWS_ENDPOINT_URL",
                  "expected an http:// or https:// URL"));
  setenv ("AWS_ENDPOINT_URL", "http://a b", 1);
  CHECK (refuses ("s3", NULL, "AWS_ENDPOINT_URL", "no spaces"));
  /* NB: a URL with a password is not printed. */
  setenv ("AWS_ENDPOINT_URL", "http://user:hunter2@host", 1);
  CHECK (refuses ("s3", NULL, "must not contain a user name", NULL));
  CHECK (strstr (test_last_error, "hunter2") == NULL);
  unsetenv ("AWS_ENDPOINT_URL");
  CHECK (refuses ("", NULL, "invalid service identifier", NULL));
}

/* cainfo, then AWS_CA_BUNDLE, then the profile's ca_bundle. */
static void
test_ca_bundle (void)
{
  struct endpoint_profile pf = { .config = config,
                                 .config_path = "cfg",
                                 .section = "default" };
  struct endpoint_setting out;

  reset_env ();
  setenv ("AWS_CA_BUNDLE", "/env/ca.pem", 1);
  CHECK (endpoint_ca_bundle ("/explicit.pem", &pf, &out) == 0);
  CHECK (test_str_is (out.value, "/explicit.pem"));
  endpoint_setting_free (&out);
  CHECK (endpoint_ca_bundle (NULL, &pf, &out) == 0);
  CHECK (test_str_is (out.value, "/env/ca.pem"));
  CHECK (test_str_is (out.source, "AWS_CA_BUNDLE"));
  endpoint_setting_free (&out);
  setenv ("AWS_CA_BUNDLE", "", 1);
  CHECK (endpoint_ca_bundle ("", &pf, &out) == 0);
  CHECK (test_str_is (out.value, "/profile/ca.pem"));
  CHECK (test_str_is (out.source, "[default] ca_bundle in cfg"));
  endpoint_setting_free (&out);
  pf.section = "profile empty";
  CHECK (endpoint_ca_bundle (NULL, &pf, &out) == 0 && out.value == NULL);
  CHECK (endpoint_ca_bundle (NULL, NULL, &out) == 0 && out.value == NULL);
}

/* creds_endpoint finds the config file and the profile as the
 * credential chain does.
 */
static void
test_creds_endpoint (void)
{
  CLEANUP_FREE char *path = test_tmp_path ("config");
  struct endpoint_setting ep, ca;

  reset_env ();
  test_write_file (path, config_text, strlen (config_text));
  setenv ("AWS_CONFIG_FILE", path, 1);
  CHECK (creds_endpoint (NULL, "s3", NULL, NULL, &ep, &ca) == 0);
  CHECK (test_str_is (ep.value, "http://services-s3"));
  CHECK (test_str_is (ca.value, "/profile/ca.pem"));
  endpoint_setting_free (&ep);
  endpoint_setting_free (&ca);

  setenv ("AWS_PROFILE", "no-services", 1);
  CHECK (creds_endpoint (NULL, "s3", NULL, NULL, &ep, &ca) == 0);
  CHECK (test_str_is (ep.value, "http://only-global"));
  CHECK (ca.value == NULL);
  endpoint_setting_free (&ep);
  endpoint_setting_free (&ca);

  /* An explicit profile beats AWS_PROFILE. */
  CHECK (creds_endpoint ("missing", "s3", NULL, NULL, &ep, &ca) == -1);
  CHECK (test_error_says ("services = nowhere", NULL));
  CHECK (creds_endpoint ("missing", "s3", "http://explicit", "/x.pem", &ep,
                         &ca) == 0);
  CHECK (test_str_is (ep.value, "http://explicit"));
  CHECK (test_str_is (ca.value, "/x.pem"));
  endpoint_setting_free (&ep);
  endpoint_setting_free (&ca);

  /* No file at all: nothing configured, not an error. */
  setenv ("AWS_CONFIG_FILE", "/nonexistent/config", 1);
  CHECK (creds_endpoint (NULL, "s3", NULL, NULL, &ep, &ca) == 0);
  CHECK (ep.value == NULL && ca.value == NULL);
}

int
main (void)
{
  test_capture_errors (false);
  config = ini_parse ("cfg", config_text, strlen (config_text));
  CHECK (config != NULL);
  if (config == NULL)
    return test_summary ("endpoint");
  test_order ();
  test_empty ();
  test_ignore ();
  test_errors ();
  test_ca_bundle ();
  test_creds_endpoint ();
  ini_free (config);
  return test_summary ("endpoint");
}
