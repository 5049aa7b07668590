/* accel: unit test of common/s3/creds.c and common/s3/creds-parse.c.
 *
 * Resolution is tested through the environment and temporary
 * credentials/config files: each source alone, the order between them
 * (environment beats profile, credentials file beats config file, an
 * explicit profile beats the environment), the region, the anonymous
 * case and the errors a user can make (half a key pair, a missing named
 * profile, a web identity token file without a role).  The only network
 * access is to closed ports on 127.0.0.1, to see that unreachable STS
 * and IMDS endpoints fail the right way; the metadata service is
 * otherwise disabled.
 *
 * The XML, JSON and time extractors get edge cases and malformed input.
 * The caching provider runs with a fake clock and a scripted resolver,
 * so its refresh, back-off and "never stall a reader" rules are checked
 * deterministically, including with a resolver blocked mid-refresh.
 *
 * Output: a line per failed check and a final "creds: N checks, N
 * failed".
 */

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "creds-parse.h"
#include "creds.h"
#include "report.h"
#include "test.h"

/* Write a file in the test directory. */
static void
write_file (const char *name, const char *text)
{
  CLEANUP_FREE char *path = test_tmp_path (name);

  test_write_file (path, text, strlen (text));
}

/* Point an environment variable at a file of the test directory. */
static void
setenv_path (const char *var, const char *name)
{
  CLEANUP_FREE char *path = test_tmp_path (name);

  setenv (var, path, 1);
}

/* Every variable the chain reads, so that each test starts from an
 * environment that has nothing, and the metadata service off.
 */
static void
reset_env (void)
{
  static const char *const vars[] = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_CA_BUNDLE",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
    "ACCEL_CREDS_REFRESH_MARGIN",
    "ACCEL_CREDS_RETRY_INTERVAL",
  };
  size_t i;

  for (i = 0; i < sizeof vars / sizeof vars[0]; ++i)
    unsetenv (vars[i]);
  setenv ("AWS_EC2_METADATA_DISABLED", "true", 1);
  /* NB: should anything reach STS by mistake, it is a closed local port. */
  setenv ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1", 1);
  setenv_path ("HOME", "home");
  test_clear_errors ();
}

/* Resolve and check the source and access key (NULL: anonymous). */
static bool
resolves_to (const char *profile, const char *source, const char *access_key,
             const char *secret_key, const char *session_token)
{
  struct aws_creds *c = NULL;
  int r = creds_resolve (profile, NULL, &c);
  bool ok;

  if (source == NULL)
    return r == 1 && c == NULL;
  if (r != 0 || c == NULL) {
    fprintf (stderr, "creds_resolve: returned %d\n", r);
    return false;
  }
  ok = test_str_is (c->source, source) &&
      test_str_is (c->access_key, access_key) &&
      test_str_is (c->secret_key, secret_key) &&
      test_str_is (c->session_token, session_token) && c->expiration == 0;
  creds_put (c);
  return ok;
}

/* Resolution fails with an error containing the given words. */
static bool
resolve_fails (const char *profile, const char *a, const char *b)
{
  struct aws_creds *c = NULL;
  int r;

  test_clear_errors ();
  r = creds_resolve (profile, NULL, &c);
  return r == -1 && c == NULL && test_error_says (a, b);
}

/* Step 1 alone. */
static void
test_env (void)
{
  reset_env ();
  CHECK (resolves_to (NULL, NULL, NULL, NULL, NULL));
  setenv ("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
  setenv ("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
  CHECK (resolves_to (NULL, "env", "AKIAENV", "envsecret", NULL));
  setenv ("AWS_SESSION_TOKEN", "envtoken", 1);
  CHECK (resolves_to (NULL, "env", "AKIAENV", "envsecret", "envtoken"));
  /* An empty variable is an unset one. */
  setenv ("AWS_SESSION_TOKEN", "", 1);
  CHECK (resolves_to (NULL, "env", "AKIAENV", "envsecret", NULL));
  CHECK (test_nr_errors () == 0);

  /* Half a key pair is an error, not a reason to look elsewhere. */
  unsetenv ("AWS_SECRET_ACCESS_KEY");
  CHECK (resolve_fails (NULL, "AWS_ACCESS_KEY_ID is set",
                        "AWS_SECRET_ACCESS_KEY is not"));
  setenv ("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
  setenv ("AWS_ACCESS_KEY_ID", "", 1);
  CHECK (resolve_fails (NULL, "AWS_SECRET_ACCESS_KEY is set",
                        "AWS_ACCESS_KEY_ID is not"));
}

static const char credentials_file[] = "[default]\n"
                                       "aws_access_key_id = AKIADEFAULT\n"
                                       "aws_secret_access_key = defaultsecret\n"
                                       "\n"
                                       "[dev]\n"
                                       "aws_access_key_id=AKIADEV\n"
                                       "aws_secret_access_key=devsecret\n"
                                       "aws_session_token=devtoken\n"
                                       "\n"
                                       "[partial]\n"
                                       "aws_access_key_id = AKIAPARTIAL\n"
                                       "\n"
                                       "[empty]\n"
                                       "aws_access_key_id =\n";

static const char config_file[] =
    "[default]\n"
    "region = eu-north-1\n"
    "\n"
    "[profile dev]\n"
    "region = eu-west-3\n"
    "aws_access_key_id = AKIALOSER\n"
    "aws_secret_access_key = losersecret\n"
    "\n"
    "[profile cfgonly]\n"
    "aws_access_key_id = AKIACONFIG\n"
    "aws_secret_access_key = configsecret\n"
    "\n"
    "[noprefix]\n"
    "aws_access_key_id = AKIANOPREFIX\n"
    "aws_secret_access_key = noprefixsecret\n"
    "\n"
    "[profile cfgpartial]\n"
    "aws_secret_access_key = x\n"
    "\n"
    "[profile roleonly]\n"
    "role_arn = arn:aws:iam::123456789012:role/r\n"
    "source_profile = nosuch\n";

/* Step 2 and its order against step 1. */
static void
test_profile (void)
{
  reset_env ();
  write_file ("credentials", credentials_file);
  write_file ("config", config_file);
  setenv_path ("AWS_SHARED_CREDENTIALS_FILE", "credentials");
  setenv_path ("AWS_CONFIG_FILE", "config");

  CHECK (resolves_to (NULL, "profile", "AKIADEFAULT", "defaultsecret", NULL));
  setenv ("AWS_PROFILE", "dev", 1);
  /* The credentials file beats the config file. */
  CHECK (resolves_to (NULL, "profile", "AKIADEV", "devsecret", "devtoken"));
  setenv ("AWS_PROFILE", "cfgonly", 1);
  CHECK (resolves_to (NULL, "profile", "AKIACONFIG", "configsecret", NULL));
  /* An explicit profile beats AWS_PROFILE. */
  CHECK (resolves_to ("dev", "profile", "AKIADEV", "devsecret", "devtoken"));
  /* An empty key is an unset key. */
  CHECK (resolves_to ("empty", NULL, NULL, NULL, NULL));
  CHECK (test_nr_errors () == 0);
  /* An assume-role profile is not skipped: its source is checked
   * before any network request (tests/test-creds-assume.sh does the
   * rest against a fake STS).
   */
  CHECK (resolve_fails ("roleonly", "profile roleonly",
                        "source_profile nosuch does not exist"));
  /* In the config file only "[profile NAME]" names a profile. */
  CHECK (resolve_fails ("noprefix", "profile noprefix not found", "config"));

  /* The environment beats AWS_PROFILE ... */
  setenv ("AWS_PROFILE", "dev", 1);
  setenv ("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
  setenv ("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
  CHECK (resolves_to (NULL, "env", "AKIAENV", "envsecret", NULL));
  /* ... but not an explicit profile (as the CLI's --profile). */
  CHECK (
      resolves_to ("cfgonly", "profile", "AKIACONFIG", "configsecret", NULL));
  unsetenv ("AWS_ACCESS_KEY_ID");
  unsetenv ("AWS_SECRET_ACCESS_KEY");

  /* Mistakes. */
  CHECK (resolve_fails ("nosuch", "profile nosuch not found", "credentials"));
  setenv ("AWS_PROFILE", "nosuch", 1);
  CHECK (resolve_fails (NULL, "profile nosuch not found", NULL));
  CHECK (resolve_fails ("partial", "[partial]",
                        "aws_access_key_id without aws_secret_access_key"));
  CHECK (resolve_fails ("cfgpartial", "[profile cfgpartial]",
                        "aws_secret_access_key without aws_access_key_id"));
  unsetenv ("AWS_PROFILE");

  /* "default" may be "[profile default]", which beats "[default]". */
  write_file ("config2",
              "[default]\n"
              "aws_access_key_id = AKIAPLAIN\n"
              "aws_secret_access_key = plain\n"
              "[profile default]\n"
              "aws_access_key_id = AKIAPREFIXED\n"
              "aws_secret_access_key = prefixed\n");
  test_clear_errors ();
  setenv_path ("AWS_CONFIG_FILE", "config2");
  setenv ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null", 1);
  CHECK (resolves_to (NULL, "profile", "AKIAPREFIXED", "prefixed", NULL));
  write_file ("config3",
              "[default]\n"
              "aws_access_key_id = AKIAPLAIN\n"
              "aws_secret_access_key = plain\n");
  setenv_path ("AWS_CONFIG_FILE", "config3");
  CHECK (resolves_to (NULL, "profile", "AKIAPLAIN", "plain", NULL));

  /* The default paths are under $HOME/.aws, and "~/" is expanded. */
  unsetenv ("AWS_SHARED_CREDENTIALS_FILE");
  unsetenv ("AWS_CONFIG_FILE");
  CHECK (resolves_to (NULL, NULL, NULL, NULL, NULL));
  setenv_path ("HOME", "");
  setenv ("AWS_SHARED_CREDENTIALS_FILE", "~/credentials", 1);
  CHECK (resolves_to ("dev", "profile", "AKIADEV", "devsecret", "devtoken"));
  unsetenv ("AWS_SHARED_CREDENTIALS_FILE");
  {
    CLEANUP_FREE char *aws = test_tmp_path (".aws");
    CLEANUP_FREE char *cred = test_tmp_path (".aws/credentials");

    CHECK (mkdir (aws, 0700) == 0);
    write_file (".aws/credentials",
                "[default]\n"
                "aws_access_key_id = AKIAHOME\n"
                "aws_secret_access_key = home\n");
    CHECK (resolves_to (NULL, "profile", "AKIAHOME", "home", NULL));
    unlink (cred);
    rmdir (aws);
  }
  /* No HOME: no default files, and not an error. */
  unsetenv ("HOME");
  CHECK (resolves_to (NULL, NULL, NULL, NULL, NULL));
  CHECK (test_nr_errors () == 0);

  /* A malformed file is an error naming it. */
  reset_env ();
  write_file ("broken", "[default\n");
  setenv_path ("AWS_SHARED_CREDENTIALS_FILE", "broken");
  CHECK (resolve_fails (NULL, "broken", "line 1"));
  unsetenv ("AWS_SHARED_CREDENTIALS_FILE");
  setenv_path ("AWS_CONFIG_FILE", "broken");
  CHECK (resolve_fails (NULL, "broken", "line 1"));
}

/* Check creds_default_region's answer. */
static bool
region_is (const char *profile, const char *want)
{
  CLEANUP_FREE char *region = creds_default_region (profile);

  return test_str_is (region, want);
}

/* AWS_REGION, AWS_DEFAULT_REGION, the profile, us-east-1. */
static void
test_region (void)
{
  reset_env ();
  CHECK (region_is (NULL, "us-east-1"));
  write_file ("config", config_file);
  setenv_path ("AWS_CONFIG_FILE", "config");
  CHECK (region_is (NULL, "eu-north-1"));
  CHECK (region_is ("dev", "eu-west-3"));
  CHECK (region_is ("cfgonly", "us-east-1"));
  /* As botocore: the credentials file's section is merged over the
   * config file's, region included.
   */
  write_file ("credentials2",
              "[cfgonly]\nregion = me-south-1\n"
              "[dev]\nregion = af-south-1\n");
  setenv_path ("AWS_SHARED_CREDENTIALS_FILE", "credentials2");
  CHECK (region_is ("cfgonly", "me-south-1"));
  CHECK (region_is ("dev", "af-south-1"));
  CHECK (region_is (NULL, "eu-north-1"));
  /* A credentials file that cannot be read (here a directory) is not
   * needed for the region: skipped, as botocore does.
   */
  setenv_path ("AWS_SHARED_CREDENTIALS_FILE", ".");
  CHECK (region_is ("dev", "eu-west-3"));
  CHECK (test_nr_errors () == 0);
  unsetenv ("AWS_SHARED_CREDENTIALS_FILE");
  setenv ("AWS_PROFILE", "dev", 1);
  CHECK (region_is (NULL, "eu-west-3"));
  setenv ("AWS_DEFAULT_REGION", "ap-east-1", 1);
  CHECK (region_is (NULL, "ap-east-1"));
  setenv ("AWS_REGION", "sa-east-1", 1);
  CHECK (region_is (NULL, "sa-east-1"));
  CHECK (region_is ("dev", "sa-east-1"));
  setenv ("AWS_REGION", "", 1);
  CHECK (region_is (NULL, "ap-east-1"));
  CHECK (test_nr_errors () == 0);

  /* A broken config file matters only when it is read. */
  unsetenv ("AWS_DEFAULT_REGION");
  write_file ("broken", "[default\n");
  setenv_path ("AWS_CONFIG_FILE", "broken");
  test_clear_errors ();
  CHECK (creds_default_region (NULL) == NULL);
  CHECK (test_error_says ("broken", "line 1"));
  setenv ("AWS_REGION", "us-west-1", 1);
  CHECK (region_is (NULL, "us-west-1"));
}

/* The web identity step's own mistakes, and an STS that does not
 * answer.  (Talking to a working STS is tests/test-creds.sh's job.)
 */
static void
test_web_identity (void)
{
  reset_env ();
  write_file ("token", "header.payload.signature\n");
  write_file ("empty-token", "\n");

  setenv_path ("AWS_WEB_IDENTITY_TOKEN_FILE", "token");
  CHECK (resolve_fails (NULL, "web identity token file", "no role ARN"));

  setenv ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r", 1);
  CHECK (resolve_fails (NULL, "STS AssumeRoleWithWebIdentity", "127.0.0.1:1"));
  /* AWS_ENDPOINT_URL is the fallback for AWS_ENDPOINT_URL_STS. */
  unsetenv ("AWS_ENDPOINT_URL_STS");
  setenv ("AWS_ENDPOINT_URL", "http://127.0.0.1:2/", 1);
  CHECK (resolve_fails (NULL, "STS AssumeRoleWithWebIdentity", "127.0.0.1:2/"));
  setenv ("AWS_ENDPOINT_URL", "ftp://127.0.0.1:2/", 1);
  CHECK (resolve_fails (NULL, "sts endpoint from AWS_ENDPOINT_URL",
                        "expected an http:// or https:// URL"));
  unsetenv ("AWS_ENDPOINT_URL");
  /* NB: if the check were missing this would go to 127.0.0.1:1. */
  setenv ("AWS_REGION", "x@127.0.0.1:1#", 1);
  CHECK (resolve_fails (NULL, "invalid region name", NULL));
  setenv ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1", 1);
  unsetenv ("AWS_REGION");

  setenv_path ("AWS_WEB_IDENTITY_TOKEN_FILE", "empty-token");
  CHECK (resolve_fails (NULL, "empty-token", "empty"));
  setenv_path ("AWS_WEB_IDENTITY_TOKEN_FILE", "no-such-token");
  CHECK (resolve_fails (NULL, "no-such-token", NULL));

  /* A role alone is not web identity: nothing found. */
  unsetenv ("AWS_WEB_IDENTITY_TOKEN_FILE");
  CHECK (resolves_to (NULL, NULL, NULL, NULL, NULL));

  /* The same settings from the profile. */
  unsetenv ("AWS_ROLE_ARN");
  {
    CLEANUP_FREE char *token = test_tmp_path ("token");
    CLEANUP_FREE char *config = NULL;

    if (asprintf (&config,
                  "[profile wi]\n"
                  "web_identity_token_file = %s\n"
                  "role_arn = arn:aws:iam::123456789012:role/fromprofile\n",
                  token) == -1) {
      perror ("asprintf");
      exit (EXIT_FAILURE);
    }
    write_file ("config", config);
  }
  setenv_path ("AWS_CONFIG_FILE", "config");
  CHECK (resolve_fails ("wi", "role/fromprofile", "127.0.0.1:1"));

  /* Web identity comes before the profile's static keys, as in the
   * AWS CLI: the keys do not hide it, even when it fails.
   */
  write_file ("credentials",
              "[wi]\n"
              "aws_access_key_id = AKIAWI\n"
              "aws_secret_access_key = wisecret\n");
  setenv_path ("AWS_SHARED_CREDENTIALS_FILE", "credentials");
  CHECK (resolve_fails ("wi", "role/fromprofile", "127.0.0.1:1"));

  /* Without it, the keys. */
  write_file ("config", "[profile wi]\nregion = eu-west-1\n");
  CHECK (resolves_to ("wi", "profile", "AKIAWI", "wisecret", NULL));
}

/* The metadata service: disabled, or not there at all. */
static void
test_imds (void)
{
  time_t start;

  reset_env ();
  setenv ("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1", 1);
  CHECK (resolves_to (NULL, NULL, NULL, NULL, NULL));
  setenv ("AWS_EC2_METADATA_DISABLED", "TRUE", 1);
  CHECK (resolves_to (NULL, NULL, NULL, NULL, NULL));

  /* Not disabled, nothing listening: anonymous, quickly, no error. */
  unsetenv ("AWS_EC2_METADATA_DISABLED");
  start = time (NULL);
  CHECK (resolves_to (NULL, NULL, NULL, NULL, NULL));
  CHECK (time (NULL) - start <= 4);
  CHECK (test_nr_errors () == 0);

  setenv ("AWS_EC2_METADATA_SERVICE_ENDPOINT", "file:///etc/passwd", 1);
  CHECK (resolve_fails (NULL, "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                        "not an http(s) URL"));
  setenv ("AWS_EC2_METADATA_DISABLED", "true", 1);
}

/* creds_xml_text on one document, compared with want (NULL: expect
 * failure with errno err).
 */
static bool
xml_is (const char *xml, const char *name, const char *want, int err)
{
  CLEANUP_FREE char *got = creds_xml_text (xml, strlen (xml), name);

  if (want == NULL) {
    if (got != NULL || errno != err) {
      fprintf (stderr, "xml %s: got %s, errno %d, wanted errno %d\n", name,
               got ? got : "NULL", errno, err);
      return false;
    }
    return true;
  }
  return test_str_is (got, want);
}

/* STS-like documents, entities, decoys and malformed XML. */
static void
test_xml (void)
{
  static const char sts[] =
      "<?xml version=\"1.0\"?>\n"
      "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/"
      "doc/2011-06-15/\">\n"
      "  <AssumeRoleWithWebIdentityResult>\n"
      "    <!-- <AccessKeyId>INCOMMENT</AccessKeyId> -->\n"
      "    <![CDATA[<AccessKeyId>INCDATA</AccessKeyId>]]>\n"
      "    <AccessKeyIdSuffix>WRONG</AccessKeyIdSuffix>\n"
      "    <Credentials>\n"
      "      <SessionToken>tok&amp;en&lt;&gt;&quot;&apos;&#65;&#x42;"
      "&#xe9;&#x1F600;</SessionToken>\n"
      "      <SecretAccessKey>wJalr/K7MDENG+bPxRfi</SecretAccessKey>\n"
      "      <Expiration>2019-11-09T13:34:41Z</Expiration>\n"
      "      <AccessKeyId >ASIAEXAMPLE</AccessKeyId >\n"
      "      <Empty/>\n"
      "      <Attr a=\"1\">with attribute</Attr>\n"
      "    </Credentials>\n"
      "  </AssumeRoleWithWebIdentityResult>\n"
      "</AssumeRoleWithWebIdentityResponse>\n";
  const char *inner;
  size_t inner_len;
  CLEANUP_FREE char *big = NULL;

  CHECK (xml_is (sts, "AccessKeyId", "ASIAEXAMPLE", 0));
  CHECK (xml_is (sts, "SecretAccessKey", "wJalr/K7MDENG+bPxRfi", 0));
  CHECK (
      xml_is (sts, "SessionToken", "tok&en<>\"'AB\xc3\xa9\xf0\x9f\x98\x80", 0));
  CHECK (xml_is (sts, "Empty", "", 0));
  CHECK (xml_is (sts, "Attr", "with attribute", 0));
  CHECK (xml_is (sts, "Missing", NULL, ENOENT));
  CHECK (xml_is (sts, "Access", NULL, ENOENT));
  /* Markup inside a value is not text. */
  CHECK (xml_is (sts, "Credentials", NULL, EINVAL));
  CHECK (creds_xml_find (sts, strlen (sts), "Credentials", &inner,
                         &inner_len) == 0);
  CHECK (inner_len > 0 && memmem (inner, inner_len, "<Expiration>", 12));
  CHECK (memmem (inner, inner_len, "</Credentials>", 14) == NULL);

  /* Malformed documents and entities. */
  CHECK (xml_is ("<a>x", "a", NULL, EINVAL));
  CHECK (xml_is ("<a>x</b>", "a", NULL, EINVAL));
  CHECK (xml_is ("<a", "a", NULL, EINVAL));
  CHECK (xml_is ("<a>x</a", "a", NULL, EINVAL));
  CHECK (xml_is ("<!-- <a>x</a>", "a", NULL, EINVAL));
  CHECK (xml_is ("<a>&amp</a>", "a", NULL, EINVAL));
  CHECK (xml_is ("<a>&nbsp;</a>", "a", NULL, EINVAL));
  CHECK (xml_is ("<a>&#0;</a>", "a", NULL, EINVAL));
  CHECK (xml_is ("<a>&#xD800;</a>", "a", NULL, EINVAL));
  CHECK (xml_is ("<a>&#x110000;</a>", "a", NULL, EINVAL));
  CHECK (xml_is ("<a>&#99999999999;</a>", "a", NULL, EINVAL));
  CHECK (xml_is ("<a>&#x;</a>", "a", NULL, EINVAL));
  CHECK (xml_is ("<a>&#;</a>", "a", NULL, EINVAL));
  CHECK (xml_is ("<a>a & b</a>", "a", NULL, EINVAL));
  CHECK (xml_is ("<a>x</a >", "a", "x", 0));
  CHECK (xml_is ("", "a", NULL, ENOENT));
  CHECK (xml_is ("<<<<", "a", NULL, ENOENT));
  CHECK (xml_is ("<a>x</a>", "", NULL, EINVAL));

  /* A NUL byte inside a value. */
  CHECK (creds_xml_text ("<a>x\0y</a>", 10, "a") == NULL && errno == EINVAL);

  /* The size cap. */
  big = test_alloc (CREDS_PARSE_MAX + 2);
  memset (big, ' ', CREDS_PARSE_MAX + 1);
  memcpy (big, "<a>x</a>", 8);
  CHECK (xml_is (big, "a", NULL, E2BIG));
  big[CREDS_PARSE_MAX] = '\0';
  CHECK (xml_is (big, "a", "x", 0));
}

/* creds_json_string on one document (NULL want: expect errno err). */
static bool
json_is (const char *json, const char *key, const char *want, int err)
{
  CLEANUP_FREE char *got = creds_json_string (json, strlen (json), key);

  if (want == NULL) {
    if (got != NULL || errno != err) {
      fprintf (stderr, "json %s in %s: got %s, errno %d, wanted errno %d\n",
               key, json, got ? got : "NULL", errno, err);
      return false;
    }
    return true;
  }
  return test_str_is (got, want);
}

/* {"a": [[[...]]], "k": "v"} with levels brackets. */
static const char *
deep_json (char *buf, size_t size, unsigned levels)
{
  size_t n;

  n = snprintf (buf, size, "{\"a\":");
  if (n + 2 * levels + 16 > size)
    abort ();
  memset (buf + n, '[', levels);
  memset (buf + n + levels, ']', levels);
  n += 2 * levels;
  snprintf (buf + n, size - n, ",\"k\":\"v\"}");
  return buf;
}

/* IMDS-like documents, escapes, nesting and malformed JSON. */
static void
test_json (void)
{
  static const char imds[] = "{\n"
                             "  \"Code\" : \"Success\",\n"
                             "  \"LastUpdated\" : \"2012-04-26T16:39:16Z\",\n"
                             "  \"Type\" : \"AWS-HMAC\",\n"
                             "  \"AccessKeyId\" : \"ASIAIMDS\",\n"
                             "  \"SecretAccessKey\" : \"se\\/cr\\\"et\",\n"
                             "  \"Token\" : \"t\\u00e9\\ud83d\\ude00\\n\",\n"
                             "  \"Expiration\" : \"2017-05-17T15:09:54Z\",\n"
                             "  \"Nested\" : {\"AccessKeyId\": \"WRONG\", "
                             "\"a\": [1, -2.5e3, true, false, null, "
                             "{\"b\": []}, \"]}\"]}\n"
                             "}\n";
  char deep[200];

  CHECK (json_is (imds, "Code", "Success", 0));
  CHECK (json_is (imds, "AccessKeyId", "ASIAIMDS", 0));
  CHECK (json_is (imds, "SecretAccessKey", "se/cr\"et", 0));
  CHECK (json_is (imds, "Token", "t\xc3\xa9\xf0\x9f\x98\x80\n", 0));
  CHECK (json_is (imds, "Expiration", "2017-05-17T15:09:54Z", 0));
  CHECK (json_is (imds, "Missing", NULL, ENOENT));
  CHECK (json_is (imds, "a", NULL, ENOENT));
  /* Not a string. */
  CHECK (json_is (imds, "Nested", NULL, EINVAL));
  CHECK (json_is ("{\"k\": null}", "k", NULL, EINVAL));
  CHECK (json_is ("{\"k\": 1}", "k", NULL, EINVAL));
  /* The first of duplicate keys; escaped keys match. */
  CHECK (json_is ("{\"k\":\"1\",\"k\":\"2\"}", "k", "1", 0));
  CHECK (json_is ("{\"\\u006b\":\"v\"}", "k", "v", 0));
  CHECK (json_is (" {} ", "k", NULL, ENOENT));

  /* Malformed documents. */
  CHECK (json_is ("", "k", NULL, EINVAL));
  CHECK (json_is ("[]", "k", NULL, EINVAL));
  CHECK (json_is ("{\"k\": \"v\"", "k", NULL, EINVAL));
  CHECK (json_is ("{\"k\": \"v}", "k", NULL, EINVAL));
  CHECK (json_is ("{\"k\": \"v\"} x", "k", NULL, EINVAL));
  CHECK (json_is ("{\"k\": \"v\",}", "k", NULL, EINVAL));
  CHECK (json_is ("{\"k\" \"v\"}", "k", NULL, EINVAL));
  CHECK (json_is ("{k: \"v\"}", "k", NULL, EINVAL));
  CHECK (json_is ("{\"a\": [1,}, \"k\": \"v\"}", "k", NULL, EINVAL));
  CHECK (json_is ("{\"a\": tru, \"k\": \"v\"}", "k", NULL, EINVAL));
  CHECK (json_is ("{\"k\": \"a\nb\"}", "k", NULL, EINVAL));
  CHECK (json_is ("{\"k\": \"\\x\"}", "k", NULL, EINVAL));
  CHECK (json_is ("{\"k\": \"\\u12\"}", "k", NULL, EINVAL));
  CHECK (json_is ("{\"k\": \"\\u0000\"}", "k", NULL, EINVAL));
  CHECK (json_is ("{\"k\": \"\\ud83d\"}", "k", NULL, EINVAL));
  CHECK (json_is ("{\"k\": \"\\ud83d\\u0041\"}", "k", NULL, EINVAL));
  CHECK (json_is ("{\"k\": \"\\ude00\"}", "k", NULL, EINVAL));
  CHECK (json_is ("{\"k\": \"v\\", "k", NULL, EINVAL));
  /* Damage after the match still fails: the whole must be valid. */
  CHECK (json_is ("{\"k\": \"v\", \"x\": }", "k", NULL, EINVAL));

  /* Nesting: 15 levels below the top object are fine, 16 are not. */
  CHECK (json_is (deep_json (deep, sizeof deep, 15), "k", "v", 0));
  CHECK (json_is (deep_json (deep, sizeof deep, 16), "k", NULL, EINVAL));

  /* A NUL byte and the size cap. */
  CHECK (creds_json_string ("{\"k\":\"a\0\"}", 10, "k") == NULL &&
         errno == EINVAL);
  {
    CLEANUP_FREE char *big = test_alloc (CREDS_PARSE_MAX + 2);

    memset (big, ' ', CREDS_PARSE_MAX + 1);
    memcpy (big, "{\"k\":\"v\"}", 9);
    CHECK (json_is (big, "k", NULL, E2BIG));
    big[CREDS_PARSE_MAX] = '\0';
    CHECK (json_is (big, "k", "v", 0));
  }

  /* creds_json_raw: any value's text, e.g. the SSO portal's nested
   * roleCredentials and its expiration in milliseconds.
   */
  {
    static const char sso[] =
        "{\"roleCredentials\": {\"accessKeyId\": \"ASIASSO\", "
        "\"expiration\": 1700000000000}, \"x\": [1]}";
    const char *v;
    size_t n;

    CHECK (creds_json_raw (sso, strlen (sso), "roleCredentials", &v, &n) == 0 &&
           json_is (strndupa (v, n), "accessKeyId", "ASIASSO", 0));
    CHECK (creds_json_raw (v, n, "expiration", &v, &n) == 0 && n == 13 &&
           memcmp (v, "1700000000000", n) == 0);
    CHECK (creds_json_raw (sso, strlen (sso), "nope", &v, &n) == -1 &&
           errno == ENOENT);
    CHECK (creds_json_raw ("{\"k\": 1,}", 9, "k", &v, &n) == -1 &&
           errno == EINVAL);
  }
}

/* creds_json_integer on one document (err != 0: expect that errno). */
static bool
json_int_is (const char *json, const char *key, long long want, int err)
{
  long long got = -12345;
  int r = creds_json_integer (json, strlen (json), key, &got);

  if (err ? (r == -1 && errno == err) : (r == 0 && got == want))
    return true;
  fprintf (stderr, "json integer %s in %s: r=%d got %lld errno %d\n", key, json,
           r, got, errno);
  return false;
}

/* The Version of credential_process output: integers only. */
static void
test_json_integer (void)
{
  static const char doc[] = "{\"Version\": 1, \"AccessKeyId\": \"AKIA\"}";

  CHECK (json_int_is (doc, "Version", 1, 0));
  CHECK (json_int_is ("{\"v\":-42}", "v", -42, 0));
  CHECK (json_int_is ("{\"v\":0 }", "v", 0, 0));
  CHECK (json_int_is ("{\"v\":1,\"v\":2}", "v", 1, 0));
  CHECK (json_int_is (doc, "Missing", 0, ENOENT));
  CHECK (json_int_is ("{\"v\":\"1\"}", "v", 0, EDOM));
  CHECK (json_int_is ("{\"v\":1.0}", "v", 0, EDOM));
  CHECK (json_int_is ("{\"v\":1e3}", "v", 0, EDOM));
  CHECK (json_int_is ("{\"v\":true}", "v", 0, EDOM));
  CHECK (json_int_is ("{\"v\":null}", "v", 0, EDOM));
  CHECK (json_int_is ("{\"v\":1234567890123456789}", "v", 0, EDOM));
  CHECK (json_int_is ("{\"v\":1", "v", 0, EINVAL));
  CHECK (json_int_is ("{\"v\":1} garbage", "v", 0, EINVAL));
  /* A string key still reads as before beside a number. */
  CHECK (json_is (doc, "AccessKeyId", "AKIA", 0));
  CHECK (json_is (doc, "Version", NULL, EINVAL));
}

/* Parse a timestamp, expecting want (or failure if fail). */
static bool
time_is (const char *s, time_t want, bool fail)
{
  time_t t = 0;
  int r = creds_parse_time (s, &t);

  if (fail)
    return r == -1 && errno == EINVAL;
  if (r != 0 || t != want) {
    fprintf (stderr, "time %s: r=%d, got %lld, wanted %lld\n", s, r,
             (long long) t, (long long) want);
    return false;
  }
  return true;
}

/* AWS timestamp forms, calendar edge cases and malformed times. */
static void
test_time (void)
{
  CHECK (time_is ("1970-01-01T00:00:00Z", 0, false));
  CHECK (time_is ("2019-11-09T13:34:41Z", 1573306481, false));
  CHECK (time_is ("2019-11-09t13:34:41z", 1573306481, false));
  CHECK (time_is ("2019-11-09 13:34:41Z", 1573306481, false));
  CHECK (time_is ("2019-11-09T13:34:41.123456Z", 1573306481, false));
  CHECK (time_is ("2019-11-09T14:34:41+01:00", 1573306481, false));
  CHECK (time_is ("2019-11-09T12:04:41-0130", 1573306481, false));
  CHECK (time_is ("2024-02-29T00:00:00Z", 1709164800, false));
  CHECK (time_is ("2000-02-29T00:00:00Z", 951782400, false));
  CHECK (time_is ("2016-12-31T23:59:60Z", 1483228800, false));

  CHECK (time_is ("", 0, true));
  CHECK (time_is ("2019-11-09T13:34:41", 0, true));
  CHECK (time_is ("2019-11-09T13:34:41Zjunk", 0, true));
  CHECK (time_is ("2019-11-09T13:34Z", 0, true));
  CHECK (time_is ("19-11-09T13:34:41Z", 0, true));
  CHECK (time_is ("2019-13-09T13:34:41Z", 0, true));
  CHECK (time_is ("2019-00-09T13:34:41Z", 0, true));
  CHECK (time_is ("2019-02-29T13:34:41Z", 0, true));
  CHECK (time_is ("1900-02-29T00:00:00Z", 0, true));
  CHECK (time_is ("2019-04-31T13:34:41Z", 0, true));
  CHECK (time_is ("2019-11-00T13:34:41Z", 0, true));
  CHECK (time_is ("2019-11-09T24:00:00Z", 0, true));
  CHECK (time_is ("2019-11-09T13:60:00Z", 0, true));
  CHECK (time_is ("2019-11-09T13:34:61Z", 0, true));
  CHECK (time_is ("2019-11-09T13:34:41.Z", 0, true));
  CHECK (time_is ("2019-11-09T13:34:41+1:00", 0, true));
  CHECK (time_is ("2019-11-09T13:34:41+24:00", 0, true));
  CHECK (time_is ("1969-12-31T23:59:59Z", 0, true));
  CHECK (time_is ("2019-1a-09T13:34:41Z", 0, true));
}

/* The provider, with a fake clock and a scripted resolver.  The
 * resolver can be told to block until released, to stand for a slow
 * STS.
 */
struct script {
  pthread_mutex_t lock; /* protects every field below */
  pthread_cond_t cond; /* signalled when a field changes */
  time_t now; /* the fake clock */
  int result; /* what the next resolution returns */
  time_t lifetime; /* of the credentials it issues, 0: forever */
  unsigned calls; /* resolutions started */
  bool block; /* resolutions wait while this is true */
  bool inside; /* a resolution is waiting */
};

static struct script script = {
  .lock = PTHREAD_MUTEX_INITIALIZER,
  .cond = PTHREAD_COND_INITIALIZER,
};

/* The scripted resolver: credentials AKIDn for the n-th call. */
static int
script_resolve (void *opaque, const char *profile, struct aws_creds **out)
{
  struct script *s = opaque;
  char key[32];
  int result;
  time_t exp;

  (void) profile;
  pthread_mutex_lock (&s->lock);
  s->calls++;
  snprintf (key, sizeof key, "AKID%u", s->calls);
  s->inside = true;
  pthread_cond_broadcast (&s->cond);
  while (s->block)
    pthread_cond_wait (&s->cond, &s->lock);
  s->inside = false;
  result = s->result;
  exp = s->lifetime ? s->now + s->lifetime : 0;
  pthread_mutex_unlock (&s->lock);

  *out = NULL;
  if (result == 0)
    *out = creds_new (key, "secret", "token", exp, "test");
  else if (result == -1)
    report_error ("scripted failure");
  return result;
}

/* The fake clock. */
static time_t
script_now (void *opaque)
{
  struct script *s = opaque;
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->lock);
  return s->now;
}

/* Set one of the script's fields under its lock. */
#define SCRIPT_SET(field, value)                                               \
  do {                                                                         \
    pthread_mutex_lock (&script.lock);                                         \
    script.field = (value);                                                    \
    pthread_cond_broadcast (&script.cond);                                     \
    pthread_mutex_unlock (&script.lock);                                       \
  } while (0)

/* How many resolutions have started. */
static unsigned
script_calls (void)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&script.lock);
  return script.calls;
}

/* A provider over the script, with a 300 s margin, 5 s back-off, and
 * "nothing found" looked at again after recheck seconds (0: final).
 */
static struct creds_provider *
script_provider_recheck (int result, time_t lifetime, time_t recheck)
{
  struct creds_provider_hooks hooks = {
    .resolve = script_resolve,
    .now = script_now,
    .opaque = &script,
    .refresh_margin = 300,
    .retry_interval = 5,
    .anonymous_recheck = recheck,
  };
  struct creds_provider *p;

  SCRIPT_SET (now, 1000000);
  SCRIPT_SET (calls, 0);
  SCRIPT_SET (result, result);
  SCRIPT_SET (lifetime, lifetime);
  p = creds_provider_new_with_hooks ("test", &hooks);
  if (p == NULL)
    exit (EXIT_FAILURE);
  test_clear_errors ();
  return p;
}

static struct creds_provider *
script_provider (int result, time_t lifetime)
{
  return script_provider_recheck (result, lifetime, 0);
}

/* Get from the provider: expect return value r and access key key. */
static bool
get_is (struct creds_provider *p, int r, const char *key)
{
  struct aws_creds *c = NULL;
  int got = creds_provider_get (p, &c);
  bool ok = got == r && (key ? c && test_str_is (c->access_key, key) : !c);

  if (got != r)
    fprintf (stderr, "creds_provider_get: returned %d, wanted %d\n", got, r);
  creds_put (c);
  return ok;
}

/* Long-lived, anonymous and failing first resolutions. */
static void
test_provider_basic (void)
{
  struct creds_provider *p;
  struct aws_creds *a, *b;

  /* Credentials that never expire are resolved once. */
  p = script_provider (0, 0);
  CHECK (creds_provider_get (p, &a) == 0);
  SCRIPT_SET (now, 1000000 + 86400 * 365);
  CHECK (creds_provider_get (p, &b) == 0);
  CHECK (a == b && a->refs == 3);
  creds_put (a);
  creds_put (b);
  CHECK (script_calls () == 1);
  creds_provider_free (p);

  /* Anonymous is decided once. */
  p = script_provider (1, 0);
  CHECK (get_is (p, 1, NULL));
  CHECK (get_is (p, 1, NULL));
  SCRIPT_SET (now, 1000000 + 3600);
  CHECK (get_is (p, 1, NULL));
  CHECK (script_calls () == 1);
  CHECK (test_nr_errors () == 0);
  creds_provider_free (p);

  /* A failing first resolution is not retried before the back-off. */
  p = script_provider (-1, 3600);
  CHECK (get_is (p, -1, NULL));
  CHECK (test_error_says ("scripted failure", NULL));
  CHECK (get_is (p, -1, NULL));
  CHECK (test_error_says ("none available", NULL));
  CHECK (script_calls () == 1);
  SCRIPT_SET (now, 1000000 + 5);
  SCRIPT_SET (result, 0);
  CHECK (get_is (p, 0, "AKID2"));
  CHECK (script_calls () == 2);
  creds_provider_free (p);

  /* Anonymous, looked at again every 300 s: a source that was not
   * there at first (IMDS slow at start) is found later.
   */
  p = script_provider_recheck (1, 0, 300);
  CHECK (get_is (p, 1, NULL));
  SCRIPT_SET (now, 1000000 + 299);
  CHECK (get_is (p, 1, NULL));
  CHECK (script_calls () == 1);
  SCRIPT_SET (now, 1000000 + 300);
  CHECK (get_is (p, 1, NULL)); /* still nothing */
  CHECK (script_calls () == 2);
  SCRIPT_SET (now, 1000000 + 599);
  SCRIPT_SET (result, 0);
  CHECK (get_is (p, 1, NULL)); /* not before the next 300 s */
  CHECK (script_calls () == 2);
  SCRIPT_SET (now, 1000000 + 600);
  CHECK (get_is (p, 0, "AKID3"));
  CHECK (script_calls () == 3);
  CHECK (test_nr_errors () == 0);
  creds_provider_free (p);

  /* A failure, then nothing found: that is anonymous. */
  p = script_provider (-1, 3600);
  CHECK (get_is (p, -1, NULL));
  SCRIPT_SET (now, 1000000 + 5);
  SCRIPT_SET (result, 1);
  CHECK (get_is (p, 1, NULL));
  creds_provider_free (p);
}

/* Refresh inside the margin; failures keep old credentials until they
 * expire; expired and failing is an error.
 */
static void
test_provider_refresh (void)
{
  struct creds_provider *p;
  unsigned errors;

  p = script_provider (0, 1000);
  CHECK (get_is (p, 0, "AKID1"));
  SCRIPT_SET (now, 1000000 + 699);
  CHECK (get_is (p, 0, "AKID1"));
  CHECK (script_calls () == 1);
  /* Inside the margin: refreshed by this caller. */
  SCRIPT_SET (now, 1000000 + 700);
  CHECK (get_is (p, 0, "AKID2"));
  CHECK (script_calls () == 2);
  CHECK (get_is (p, 0, "AKID2"));
  CHECK (script_calls () == 2);
  CHECK (test_nr_errors () == 0);

  /* The next refresh fails: old ones kept, retried after the back-off,
   * not on every call.
   */
  SCRIPT_SET (result, -1);
  SCRIPT_SET (now, 1000000 + 700 + 700);
  CHECK (get_is (p, 0, "AKID2"));
  CHECK (script_calls () == 3);
  errors = test_nr_errors ();
  CHECK (get_is (p, 0, "AKID2"));
  SCRIPT_SET (now, 1000000 + 700 + 704);
  CHECK (get_is (p, 0, "AKID2"));
  CHECK (script_calls () == 3);
  CHECK (test_nr_errors () == errors);
  SCRIPT_SET (now, 1000000 + 700 + 706);
  CHECK (get_is (p, 0, "AKID2"));
  CHECK (script_calls () == 4);

  /* Finding nothing after having had credentials is a failure too. */
  SCRIPT_SET (result, 1);
  SCRIPT_SET (now, 1000000 + 700 + 720);
  CHECK (get_is (p, 0, "AKID2"));
  CHECK (script_calls () == 5);

  /* Expired: an error, not retried during the back-off ... */
  SCRIPT_SET (result, -1);
  SCRIPT_SET (now, 1000000 + 700 + 1000);
  test_clear_errors ();
  CHECK (get_is (p, -1, NULL));
  CHECK (test_error_says ("scripted failure", NULL));
  CHECK (script_calls () == 6);
  CHECK (get_is (p, -1, NULL));
  CHECK (test_error_says ("none available", NULL));
  CHECK (script_calls () == 6);
  SCRIPT_SET (result, 1);
  SCRIPT_SET (now, 1000000 + 700 + 1010);
  CHECK (get_is (p, -1, NULL));
  CHECK (test_error_says ("expired", "no new ones"));
  CHECK (script_calls () == 7);
  /* ... and recovered from. */
  SCRIPT_SET (result, 0);
  SCRIPT_SET (now, 1000000 + 700 + 1020);
  CHECK (get_is (p, 0, "AKID8"));
  creds_provider_free (p);

  /* Credentials issued already inside the margin are used, and refresh
   * is attempted once per back-off, not on every call.
   */
  p = script_provider (0, 100);
  CHECK (get_is (p, 0, "AKID1"));
  CHECK (get_is (p, 0, "AKID1"));
  CHECK (script_calls () == 1);
  SCRIPT_SET (now, 1000000 + 5);
  CHECK (get_is (p, 0, "AKID2"));
  CHECK (get_is (p, 0, "AKID2"));
  CHECK (script_calls () == 2);
  creds_provider_free (p);
}

/* A thread calling creds_provider_get once. */
struct getter {
  pthread_t thread;
  struct creds_provider *p;
  int r;
  char key[32];
  bool done;
};

/* The thread body: one call, remembered for the main thread. */
static void *
getter_run (void *arg)
{
  struct getter *g = arg;
  struct aws_creds *c = NULL;

  g->r = creds_provider_get (g->p, &c);
  if (c)
    snprintf (g->key, sizeof g->key, "%s", c->access_key);
  creds_put (c);
  __atomic_store_n (&g->done, true, __ATOMIC_RELEASE);
  return NULL;
}

/* Start a getter thread. */
static void
getter_start (struct getter *g, struct creds_provider *p)
{
  memset (g, 0, sizeof *g);
  g->p = p;
  if (pthread_create (&g->thread, NULL, getter_run, g) != 0) {
    perror ("pthread_create");
    exit (EXIT_FAILURE);
  }
}

/* Wait until the scripted resolver is blocked inside a resolution. */
static void
wait_inside (void)
{
  pthread_mutex_lock (&script.lock);
  while (!script.inside)
    pthread_cond_wait (&script.cond, &script.lock);
  pthread_mutex_unlock (&script.lock);
}

/* Wait up to 2 s for a getter that should not be blocked. */
static bool
wait_done (struct getter *g)
{
  int i;

  for (i = 0; i < 200; ++i) {
    struct timespec ts = { .tv_nsec = 10 * 1000 * 1000 };

    if (__atomic_load_n (&g->done, __ATOMIC_ACQUIRE))
      return true;
    nanosleep (&ts, NULL);
  }
  return false;
}

/* Give a thread that should be blocked a chance to (wrongly) finish. */
static void
pause_briefly (void)
{
  struct timespec ts = { .tv_nsec = 100 * 1000 * 1000 };

  nanosleep (&ts, NULL);
}

/* While one caller is stuck refreshing, others are served the old
 * credentials at once; with nothing usable they wait for that refresh
 * instead of starting their own.
 */
static void
test_provider_concurrent (void)
{
  struct creds_provider *p;
  struct getter a, b, c;

  p = script_provider (0, 1000);
  CHECK (get_is (p, 0, "AKID1"));

  /* a refreshes and blocks in the resolver. */
  SCRIPT_SET (block, true);
  SCRIPT_SET (now, 1000000 + 800);
  getter_start (&a, p);
  wait_inside ();
  /* Meanwhile other callers are not held up.  NB: they run in a thread
   * so that a broken provider fails the test instead of hanging it.
   */
  getter_start (&b, p);
  CHECK (wait_done (&b));
  CHECK (script_calls () == 2);
  CHECK (!__atomic_load_n (&a.done, __ATOMIC_ACQUIRE));
  SCRIPT_SET (block, false);
  pthread_join (a.thread, NULL);
  pthread_join (b.thread, NULL);
  CHECK (a.r == 0 && test_str_is (a.key, "AKID2"));
  CHECK (b.r == 0 && test_str_is (b.key, "AKID1"));
  CHECK (get_is (p, 0, "AKID2"));

  /* Expired: b refreshes and blocks; c must wait for b's result. */
  SCRIPT_SET (block, true);
  SCRIPT_SET (now, 1000000 + 800 + 1000);
  getter_start (&b, p);
  wait_inside ();
  getter_start (&c, p);
  pause_briefly ();
  CHECK (!__atomic_load_n (&c.done, __ATOMIC_ACQUIRE));
  CHECK (script_calls () == 3);
  SCRIPT_SET (block, false);
  pthread_join (b.thread, NULL);
  pthread_join (c.thread, NULL);
  CHECK (b.r == 0 && test_str_is (b.key, "AKID3"));
  CHECK (c.r == 0 && test_str_is (c.key, "AKID3"));
  CHECK (script_calls () == 3);

  /* Same, but b's refresh fails: c gets the error, without a
   * resolution of its own.
   */
  SCRIPT_SET (block, true);
  SCRIPT_SET (result, -1);
  SCRIPT_SET (now, 1000000 + 800 + 2000);
  getter_start (&b, p);
  wait_inside ();
  getter_start (&c, p);
  pause_briefly ();
  CHECK (!__atomic_load_n (&c.done, __ATOMIC_ACQUIRE));
  SCRIPT_SET (block, false);
  pthread_join (b.thread, NULL);
  pthread_join (c.thread, NULL);
  CHECK (b.r == -1 && c.r == -1);
  CHECK (script_calls () == 4);
  creds_provider_free (p);
}

/* creds_provider_new reads its test knobs from the environment. */
static void
test_provider_env (void)
{
  struct creds_provider *p;

  reset_env ();
  setenv ("ACCEL_CREDS_REFRESH_MARGIN", "10", 1);
  setenv ("ACCEL_CREDS_RETRY_INTERVAL", "1", 1);
  p = creds_provider_new (NULL, NULL);
  CHECK (p != NULL);
  /* With nothing configured: anonymous. */
  if (p)
    CHECK (get_is (p, 1, NULL));
  creds_provider_free (p);

  setenv ("ACCEL_CREDS_REFRESH_MARGIN", "ten", 1);
  CHECK (creds_provider_new (NULL, NULL) == NULL);
  CHECK (test_error_says ("ACCEL_CREDS_REFRESH_MARGIN", "ten"));
  setenv ("ACCEL_CREDS_REFRESH_MARGIN", "-1", 1);
  CHECK (creds_provider_new (NULL, NULL) == NULL);
  EXPECT_ERRORS (1);
  setenv ("ACCEL_CREDS_REFRESH_MARGIN", "10", 1);
  setenv ("ACCEL_CREDS_RETRY_INTERVAL", "99999999999999999999", 1);
  CHECK (creds_provider_new (NULL, NULL) == NULL);
  CHECK (test_error_says ("ACCEL_CREDS_RETRY_INTERVAL", NULL));

  /* Environment credentials through a real provider. */
  unsetenv ("ACCEL_CREDS_RETRY_INTERVAL");
  setenv ("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
  setenv ("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
  p = creds_provider_new (NULL, NULL);
  if (p) {
    CHECK (get_is (p, 0, "AKIAENV"));
    CHECK (get_is (p, 0, "AKIAENV"));
  }
  creds_provider_free (p);
}

/* Errors are captured, not printed, so that checks can read them. */
int
main (void)
{
  test_capture_errors (false);
  test_make_tmpdir ("accel-test-creds");

  test_env ();
  test_profile ();
  test_region ();
  test_web_identity ();
  test_imds ();
  test_xml ();
  test_json ();
  test_json_integer ();
  test_time ();
  test_provider_basic ();
  test_provider_refresh ();
  test_provider_concurrent ();
  test_provider_env ();

  return test_summary ("creds");
}
