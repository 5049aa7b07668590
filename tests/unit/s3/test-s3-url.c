/* accel: unit test of common/s3/s3-url.c.
 *
 * Object URLs in, request URLs out: s3:// with and without an
 * endpoint, buckets with dots, keys that need encoding (spaces, UTF-8,
 * '+', '%', '=', "..", "//"), invalid bucket names, over-long keys,
 * bad endpoints and regions, and http(s) URLs with and without a query
 * (presigned).  For every s3:// case we also check that the path of
 * the URL we send is exactly the canonical URI the signer computes
 * from the raw path: if the two disagreed, S3 would refuse every
 * request with SignatureDoesNotMatch.  Each failure is counted and
 * must be reported exactly once, without leaking a password.
 */

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "report.h"
#include "s3-url.h"
#include "sigv4.h"
#include "test.h"

/* Good URLs: everything s3_url_parse must produce. */
static const struct {
  const char *in, *endpoint, *region;
  bool sign, presigned;
  const char *bucket, *key, *url, *host, *path, *name, *identity;
} good[] = {
  { "s3://bucket/key", "http://127.0.0.1:8000", "us-east-1", true, false,
    "bucket", "key", "http://127.0.0.1:8000/bucket/key", "127.0.0.1:8000",
    "/bucket/key", "s3://bucket/key", "http://127.0.0.1:8000/bucket/key" },
  { "s3://bucket/dir/key.img", "https://minio.example:9000/", "us-east-1", true,
    false, "bucket", "dir/key.img",
    "https://minio.example:9000/bucket/dir/key.img", "minio.example:9000",
    "/bucket/dir/key.img", "s3://bucket/dir/key.img",
    "https://minio.example:9000/bucket/dir/key.img" },
  { "s3://bucket/key", NULL, "us-west-2", true, false, "bucket", "key",
    "https://bucket.s3.us-west-2.amazonaws.com/key",
    "bucket.s3.us-west-2.amazonaws.com", "/key", "s3://bucket/key",
    "s3://bucket/key" },
  { "s3://my.dotted.bucket/k", NULL, "eu-west-1", true, false,
    "my.dotted.bucket", "k",
    "https://s3.eu-west-1.amazonaws.com/my.dotted.bucket/k",
    "s3.eu-west-1.amazonaws.com", "/my.dotted.bucket/k",
    "s3://my.dotted.bucket/k", "s3://my.dotted.bucket/k" },
  { "s3://bucket/k", NULL, "cn-north-1", true, false, "bucket", "k",
    "https://bucket.s3.cn-north-1.amazonaws.com.cn/k",
    "bucket.s3.cn-north-1.amazonaws.com.cn", "/k", "s3://bucket/k",
    "s3://bucket/k" },
  /* An endpoint under a path (a gateway or site cache): signed with it. */
  { "s3://bucket/key", "http://127.0.0.1:8000/s3", "us-east-1", true, false,
    "bucket", "key", "http://127.0.0.1:8000/s3/bucket/key", "127.0.0.1:8000",
    "/s3/bucket/key", "s3://bucket/key",
    "http://127.0.0.1:8000/s3/bucket/key" },
  { "s3://bucket/a b", "https://gw.example/site-1/s3.v2_~/", "us-east-1", true,
    false, "bucket", "a b", "https://gw.example/site-1/s3.v2_~/bucket/a%20b",
    "gw.example", "/site-1/s3.v2_~/bucket/a b", "s3://bucket/a b",
    "https://gw.example/site-1/s3.v2_~/bucket/a%20b" },
  /* Keys that need encoding: the raw key is signed, the URL encoded. */
  { "s3://bucket/my file+a%b=c&d", "http://h:1", "us-east-1", true, false,
    "bucket", "my file+a%b=c&d", "http://h:1/bucket/my%20file%2Ba%25b%3Dc%26d",
    "h:1", "/bucket/my file+a%b=c&d", "s3://bucket/my file+a%b=c&d",
    "http://h:1/bucket/my%20file%2Ba%25b%3Dc%26d" },
  { "s3://bucket/caf\xc3\xa9/\xe2\x82\xac~_-.x", NULL, "us-east-1", true, false,
    "bucket", "caf\xc3\xa9/\xe2\x82\xac~_-.x",
    "https://bucket.s3.us-east-1.amazonaws.com/caf%C3%A9/%E2%82%AC~_-.x",
    "bucket.s3.us-east-1.amazonaws.com", "/caf\xc3\xa9/\xe2\x82\xac~_-.x",
    "s3://bucket/caf\xc3\xa9/\xe2\x82\xac~_-.x",
    "s3://bucket/caf%C3%A9/%E2%82%AC~_-.x" },
  /* Never normalized: S3 keys may hold "//", "." and "..". */
  { "s3://bucket//a/./b/../c/", "http://h", "us-east-1", true, false, "bucket",
    "/a/./b/../c/", "http://h/bucket//a/./b/../c/", "h", "/bucket//a/./b/../c/",
    "s3://bucket//a/./b/../c/", "http://h/bucket//a/./b/../c/" },
  /* Control characters are escaped in the name for messages only. */
  { "s3://bucket/a\nb\x7f", "http://h", "us-east-1", true, false, "bucket",
    "a\nb\x7f", "http://h/bucket/a%0Ab%7F", "h", "/bucket/a\nb\x7f",
    "s3://bucket/a%0Ab%7F", "http://h/bucket/a%0Ab%7F" },
  { "s3://a.b-c/?x", "http://[::1]:8080", "us-east-1", true, false, "a.b-c",
    "?x", "http://[::1]:8080/a.b-c/%3Fx", "[::1]:8080", "/a.b-c/?x",
    "s3://a.b-c/?x", "http://[::1]:8080/a.b-c/%3Fx" },
  /* http(s): as given, never signed; the query is never shown. */
  { "https://example.com/images/disk.img", NULL, NULL, false, false, NULL, NULL,
    "https://example.com/images/disk.img", NULL, NULL,
    "https://example.com/images/disk.img",
    "https://example.com/images/disk.img" },
  { "http://127.0.0.1:9000/b/k?X-Amz-Signature=secretsig&X-Amz-Date=1#frag",
    "http://ignored", "us-east-1", false, true, NULL, NULL,
    "http://127.0.0.1:9000/b/k?X-Amz-Signature=secretsig&X-Amz-Date=1", NULL,
    NULL, "http://127.0.0.1:9000/b/k", "http://127.0.0.1:9000/b/k" },
  { "HTTPS://Example.COM/x%20y#only-a-fragment", NULL, NULL, false, false, NULL,
    NULL, "HTTPS://Example.COM/x%20y", NULL, NULL, "HTTPS://Example.COM/x%20y",
    "HTTPS://Example.COM/x%20y" },
  { "http://host", NULL, NULL, false, false, NULL, NULL, "http://host", NULL,
    NULL, "http://host", "http://host" },
};

/* The canonical request's second line must be our URL's path. */
static void
check_signer_agrees (const struct s3_url *u)
{
  struct sigv4_kv h[] = { { "host", u->host } };
  struct sigv4_request r = {
    .method = "GET",
    .path = u->path,
    .headers = h,
    .nr_headers = 1,
    .payload_hash = "UNSIGNED-PAYLOAD",
    .region = "us-east-1",
    .service = "s3",
    .amz_date = "20240101T000000Z",
  };
  CLEANUP_FREE char *creq = sigv4_canonical_request (&r);
  const char *url_path, *line, *end;

  if (creq == NULL) {
    CHECK_INPUT (false, "signer: canonical request", u->url);
    return;
  }
  url_path = strchr (strstr (u->url, "://") + 3, '/');
  line = strchr (creq, '\n') + 1;
  end = strchr (line, '\n');
  CHECK_INPUT (url_path && end && (size_t) (end - line) == strlen (url_path) &&
                   memcmp (line, url_path, end - line) == 0,
               "signer: canonical URI == URL path", u->url);
}

/* Every field of every good case, and signer agreement. */
static void
test_good (void)
{
  size_t i;

  for (i = 0; i < sizeof good / sizeof good[0]; i++) {
    struct s3_url u;
    int r;

    test_clear_errors ();
    r = s3_url_parse (good[i].in, good[i].endpoint, good[i].region, &u);
    CHECK_INPUT (r == 0 && test_nr_errors () == 0, "parse", good[i].in);
    if (r == -1) {
      printf ("  error: %s\n", test_last_error);
      continue;
    }
    CHECK_INPUT (u.sign == good[i].sign, "sign", good[i].in);
    CHECK_INPUT (u.presigned == good[i].presigned, "presigned", good[i].in);
    CHECK_INPUT (test_str_is (u.bucket, good[i].bucket), "bucket", good[i].in);
    CHECK_INPUT (test_str_is (u.key, good[i].key), "key", good[i].in);
    CHECK_INPUT (test_str_is (u.url, good[i].url), "url", good[i].in);
    CHECK_INPUT (test_str_is (u.host, good[i].host), "host", good[i].in);
    CHECK_INPUT (test_str_is (u.path, good[i].path), "path", good[i].in);
    CHECK_INPUT (test_str_is (u.name, good[i].name), "name", good[i].in);
    CHECK_INPUT (test_str_is (u.identity, good[i].identity), "identity",
                 good[i].in);
    if (u.sign)
      check_signer_agrees (&u);
    if (test_nr_failed)
      printf ("  got url=%s name=%s identity=%s\n", u.url, u.name, u.identity);
    s3_url_free (&u);
  }
}

/* Bad URLs: each must fail with exactly one message, which must not
 * contain the string in secret (if any).
 */
static const struct {
  const char *in, *endpoint, *region, *secret;
} bad[] = {
  { "s3://ab/key", NULL, "us-east-1", NULL },
  { "s3://Bucket/key", NULL, "us-east-1", NULL },
  { "s3://bucket_name/key", NULL, "us-east-1", NULL },
  { "s3://-bucket/key", NULL, "us-east-1", NULL },
  { "s3://bucket-/key", NULL, "us-east-1", NULL },
  { "s3://.bucket/key", NULL, "us-east-1", NULL },
  { "s3://a..b/key", NULL, "us-east-1", NULL },
  { "s3://192.168.1.1/key", NULL, "us-east-1", NULL },
  { "s3://bucket name/key", NULL, "us-east-1", NULL },
  { "s3://b\xc3\xa9ucket/key", NULL, "us-east-1", NULL },
  { "s3:///key", NULL, "us-east-1", NULL },
  { "s3://bucket", NULL, "us-east-1", NULL },
  { "s3://bucket/", NULL, "us-east-1", NULL },
  { "s3://", NULL, "us-east-1", NULL },
  { "s3://bucket/key", NULL, NULL, NULL },
  { "s3://bucket/key", NULL, "", NULL },
  { "s3://bucket/key", NULL, "US-EAST-1", NULL },
  { "s3://bucket/key", NULL, "us-east-1.evil.com/", NULL },
  { "s3://bucket/key", NULL, "us east", NULL },
  { "s3://bucket/key", NULL, "a-very-long-region-name-0123456789", NULL },
  { "s3://bucket/key", "ftp://host", "us-east-1", NULL },
  { "s3://bucket/key", "host:8000", "us-east-1", NULL },
  { "s3://bucket/key", "http://", "us-east-1", NULL },
  { "s3://bucket/key", "http://user:hunter2@host", "us-east-1", "hunter2" },
  { "s3://bucket/key", "http://host//prefix", "us-east-1", NULL },
  { "s3://bucket/key", "http://host/a/../b", "us-east-1", NULL },
  { "s3://bucket/key", "http://host/./b", "us-east-1", NULL },
  { "s3://bucket/key", "http://host/a/..", "us-east-1", NULL },
  { "s3://bucket/key", "http://host/a%20b", "us-east-1", NULL },
  { "s3://bucket/key", "http://host/a b", "us-east-1", NULL },
  { "s3://bucket/key", "http://host/a//", "us-east-1", NULL },
  { "s3://bucket/key", "http://host?x=1", "us-east-1", NULL },
  { "http://user:hunter2@host/x", NULL, NULL, "hunter2" },
  { "https://:hunter2@host/x?sig=1", NULL, NULL, "hunter2" },
  { "http:///x", NULL, NULL, NULL },
  { "http://host/a b", NULL, NULL, NULL },
  { "http://host/a\nb", NULL, NULL, NULL },
  { "http://host/\xc3\xa9", NULL, NULL, NULL },
  { "ftp://host/x", NULL, NULL, NULL },
  { "file:///etc/passwd", NULL, NULL, NULL },
  { "hunter2://x", NULL, NULL, NULL },
  { "bucket/key", NULL, NULL, NULL },
  { "AKIAEXAMPLE:hunter2/x", NULL, NULL, "hunter2" },
  { "averylongschemename://hunter2", NULL, NULL, "hunter2" },
  { "", NULL, NULL, NULL },
};

/* Each bad input fails, reports once, and leaks no password. */
static void
test_bad (void)
{
  size_t i;

  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct s3_url u;
    int r;

    test_clear_errors ();
    r = s3_url_parse (bad[i].in, bad[i].endpoint, bad[i].region, &u);
    CHECK_INPUT (r == -1, "must fail", bad[i].in);
    if (r == 0)
      s3_url_free (&u);
    CHECK_INPUT (test_nr_errors () == 1, "reported once", bad[i].in);
    if (bad[i].secret)
      CHECK_INPUT (strstr (test_last_error, bad[i].secret) == NULL,
                   "message has no password", test_last_error);
  }
}

/* Key and URL length limits, exactly at and one past the limit. */
static void
test_lengths (void)
{
  char *url = test_alloc (S3_MAX_URL + 16);
  struct s3_url u;
  size_t n;

  memcpy (url, "s3://bucket/", 12);
  memset (url + 12, 'k', S3_MAX_KEY);
  url[12 + S3_MAX_KEY] = '\0';
  CHECK_INPUT (s3_url_parse (url, "http://h", "us-east-1", &u) == 0 &&
                   strlen (u.key) == S3_MAX_KEY,
               "key of 1024 bytes", "s3://bucket/kkk...");
  s3_url_free (&u);
  url[12 + S3_MAX_KEY] = 'k';
  url[13 + S3_MAX_KEY] = '\0';
  CHECK_INPUT (s3_url_parse (url, "http://h", "us-east-1", &u) == -1,
               "key of 1025 bytes", "s3://bucket/kkk...");

  memcpy (url, "http://host/", 12);
  n = S3_MAX_URL;
  memset (url + 12, 'x', n - 12);
  url[n] = '\0';
  CHECK_INPUT (s3_url_parse (url, NULL, NULL, &u) == 0, "URL of 8192 bytes",
               "http://host/xxx...");
  s3_url_free (&u);
  url[n] = 'x';
  url[n + 1] = '\0';
  CHECK_INPUT (s3_url_parse (url, NULL, NULL, &u) == -1, "URL of 8193 bytes",
               "http://host/xxx...");
  free (url);
}

static const struct {
  const char *name;
  bool ok;
} buckets[] = {
  { "abc", true },
  { "a-b.c1", true },
  { "123", true },
  { "1.2.3", true },
  { "1.2.3.4.5", true },
  { "my-ap-abc123-s3alias", true },
  { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", true },
  { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false },
  { "ab", false },
  { "", false },
  { "abc.", false },
  { "a..bc", false },
  { "10.0.0.1", false },
  { "ABC", false },
  { "a_bc", false },
  { "a/bc", false },
};

/* S3's naming rules directly. */
static void
test_bucket_names (void)
{
  size_t i;

  for (i = 0; i < sizeof buckets / sizeof buckets[0]; i++)
    CHECK_INPUT (s3_bucket_name_valid (buckets[i].name) == buckets[i].ok,
                 "bucket name", buckets[i].name);
}

/* Bucket URLs derived from object URLs, for bucket operations. */
static const struct {
  const char *in, *endpoint, *region;
  const char *url, *path, *name;
} bucket_urls[] = {
  { "s3://bucket/disk.img", "http://127.0.0.1:8000", "us-east-1",
    "http://127.0.0.1:8000/bucket", "/bucket", "s3://bucket/" },
  { "s3://bucket/dir/my file+%.img", "http://h:1/", "us-east-1",
    "http://h:1/bucket", "/bucket", "s3://bucket/" },
  { "s3://bucket/dir/k", "http://h:1/gw/s3/", "us-east-1",
    "http://h:1/gw/s3/bucket", "/gw/s3/bucket", "s3://bucket/" },
  { "s3://bucket/a/b", NULL, "eu-west-1",
    "https://bucket.s3.eu-west-1.amazonaws.com/", "/", "s3://bucket/" },
  { "s3://my.bucket/k", NULL, "us-east-1",
    "https://s3.us-east-1.amazonaws.com/my.bucket", "/my.bucket",
    "s3://my.bucket/" },
};

/* s3_url_bucket: the bucket's URL, and a refusal for http URLs. */
static void
test_bucket_urls (void)
{
  struct s3_url obj, b;
  size_t i;

  for (i = 0; i < sizeof bucket_urls / sizeof bucket_urls[0]; i++) {
    if (s3_url_parse (bucket_urls[i].in, bucket_urls[i].endpoint,
                      bucket_urls[i].region, &obj) == -1) {
      CHECK_INPUT (false, "parse for s3_url_bucket", bucket_urls[i].in);
      continue;
    }
    CHECK_INPUT (s3_url_bucket (&obj, &b) == 0, "s3_url_bucket",
                 bucket_urls[i].in);
    CHECK_INPUT (test_str_is (b.url, bucket_urls[i].url), "bucket url", b.url);
    CHECK_INPUT (test_str_is (b.path, bucket_urls[i].path), "bucket path",
                 b.path);
    CHECK_INPUT (test_str_is (b.name, bucket_urls[i].name), "bucket name",
                 b.name);
    CHECK_INPUT (test_str_is (b.host, obj.host) &&
                     test_str_is (b.key, obj.key) && b.sign,
                 "bucket host, key", bucket_urls[i].in);
    s3_url_free (&b);
    s3_url_free (&obj);
  }

  CHECK_INPUT (s3_url_parse ("http://h/x", NULL, NULL, &obj) == 0, "parse",
               "http://h/x");
  test_clear_errors ();
  CHECK_INPUT (s3_url_bucket (&obj, &b) == -1 && test_nr_errors () == 1,
               "s3_url_bucket refuses http URLs", "http://h/x");
  s3_url_free (&obj);
}

/* Route report_error to our counter, run every group. */
int
main (void)
{
  test_capture_errors (false);
  test_good ();
  test_bad ();
  test_lengths ();
  test_bucket_names ();
  test_bucket_urls ();
  return test_summary ("s3-url");
}
