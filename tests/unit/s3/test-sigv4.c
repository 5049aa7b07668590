/* accel: unit test of common/s3/sigv4.c against AWS's SigV4 vectors.
 *
 * Each row of the table below is one case directory of
 * tests/data/sigv4/ (see its README.md): the 12 cases of AWS's SigV4
 * test suite that apply to S3 and the 5 examples of the S3 API docs.  A
 * case parses NAME.req, signs it with a fixed clock and compares every
 * step (canonical request, string to sign, Authorization header or
 * presigned URL) with the expected file byte for byte, so a failure
 * says which step went wrong.  Then come checks of the limits and error
 * paths, which must refuse rather than sign something odd.
 *
 * The data directory is $ACCEL_TOP/tests/data/sigv4, or
 * tests/data/sigv4 relative to the current directory.  Output is one
 * line per case and a final "sigv4: N cases, N checks, N failed".
 */

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "report.h"
#include "sigv4.h"
#include "test.h"

#define EMPTY_SHA256                                                           \
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Test inputs are small; a bigger file means a broken checkout. */
#define MAX_FILE (64 * 1024)

/* The credentials and scope a group of vectors was made with. */
struct keyset {
  const char *access_key;
  const char *secret_key;
  const char *region;
  const char *service;
  time_t clock; /* the fixed "now" of the vectors */
  const char *separator;
};

/* AWS's test suite. */
static const struct keyset suite = {
  .access_key = "AKIDEXAMPLE",
  .secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
  .region = "us-east-1",
  .service = "service",
  .clock = 1440938160, /* 20150830T123600Z */
  .separator = ", ",
};

/* The S3 API docs.  NB: "/bPx" in the secret, the suite has "+bPx". */
static const struct keyset s3docs = {
  .access_key = "AKIAIOSFODNN7EXAMPLE",
  .secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
  .region = "us-east-1",
  .service = "s3",
  .clock = 1369353600, /* 20130524T000000Z */
  .separator = ",",
};

struct vector {
  const char *name; /* case directory and file stem */
  const char *dir; /* "" or "s3-docs/" */
  const struct keyset *keys;
  unsigned presign_expires; /* 0: Authorization header, else presigned */
};

static const struct vector vectors[] = {
  { "get-vanilla", "", &suite, 0 },
  { "get-vanilla-query", "", &suite, 0 },
  { "get-vanilla-empty-query-key", "", &suite, 0 },
  { "get-vanilla-query-order-key-case", "", &suite, 0 },
  { "get-vanilla-query-order-value", "", &suite, 0 },
  { "get-vanilla-query-unreserved", "", &suite, 0 },
  { "get-vanilla-utf8-query", "", &suite, 0 },
  { "get-unreserved", "", &suite, 0 },
  { "get-utf8", "", &suite, 0 },
  { "get-space", "", &suite, 0 },
  { "get-header-value-trim", "", &suite, 0 },
  { "get-header-key-duplicate", "", &suite, 0 },
  { "s3-get-object-range", "s3-docs/", &s3docs, 0 },
  { "s3-put-object", "s3-docs/", &s3docs, 0 },
  { "s3-get-bucket-lifecycle", "s3-docs/", &s3docs, 0 },
  { "s3-list-objects", "s3-docs/", &s3docs, 0 },
  { "s3-presigned-get", "s3-docs/", &s3docs, 86400 },
};
#define NR_VECTORS (sizeof vectors / sizeof vectors[0])

/* NAME.req cut up in place into a request. */
struct parsed {
  const char *method, *path, *body;
  size_t body_len;
  struct sigv4_kv query[SIGV4_MAX_PAIRS], headers[SIGV4_MAX_PAIRS];
  size_t nr_query, nr_headers;
};

/* Read one vector file whole.  NB: the files have no trailing newline
 * and may hold raw UTF-8, so they are compared as bytes.
 */
static char *
read_vector (const struct vector *v, const char *ext, size_t *len_ret)
{
  const char *top = getenv ("ACCEL_TOP");
  char path[4096];
  FILE *fp;
  char *buf;
  size_t len;

  snprintf (path, sizeof path, "%s%stests/data/sigv4/%s%s/%s.%s",
            top ? top : "", top ? "/" : "", v->dir, v->name, v->name, ext);
  fp = fopen (path, "rb");
  if (fp == NULL) {
    report_error ("%s: %m", path);
    return NULL;
  }
  buf = malloc (MAX_FILE + 1);
  if (buf == NULL) {
    report_error ("malloc: %m");
    fclose (fp);
    return NULL;
  }
  len = fread (buf, 1, MAX_FILE + 1, fp);
  if (ferror (fp) || len > MAX_FILE) {
    report_error ("%s: read error or larger than %d bytes", path, MAX_FILE);
    fclose (fp);
    free (buf);
    return NULL;
  }
  fclose (fp);
  buf[len] = '\0';
  if (len_ret)
    *len_ret = len;
  return buf;
}

/* Only s3-presigned-get needs this: its .req carries the X-Amz-*
 * parameters already encoded (X-Amz-Credential has %2F), while the
 * signer takes decoded values.  The suite's requests are raw.
 */
static void
percent_decode (char *s)
{
  char *out = s;

  for (; *s; s++) {
    unsigned x;

    if (s[0] == '%' && s[1] && s[2] && sscanf (s + 1, "%2x", &x) == 1) {
      *out++ = (char) x;
      s += 2;
    }
    else
      *out++ = *s;
  }
  *out = '\0';
}

/* Split "a=1&b&c=3" into pairs; a name without '=' has value "". */
static int
parse_query (char *q, struct parsed *p, bool decode)
{
  char *next;

  for (; q; q = next) {
    char *eq;

    next = strchr (q, '&');
    if (next)
      *next++ = '\0';
    if (p->nr_query >= SIGV4_MAX_PAIRS)
      return -1;
    eq = strchr (q, '=');
    if (eq)
      *eq++ = '\0';
    if (decode) {
      percent_decode (q);
      if (eq)
        percent_decode (eq);
    }
    p->query[p->nr_query].name = q;
    p->query[p->nr_query].value = eq ? eq : "";
    p->nr_query++;
  }
  return 0;
}

/* Parse "METHOD TARGET HTTP/1.1", "Name:value" lines, a blank line and a
 * body.  NB: the target may contain spaces (get-space), so the method
 * ends at the first space and the target at the last.
 */
static int
parse_request (char *text, struct parsed *p, bool decode_query)
{
  char *line_end, *sp, *last_sp, *target, *qmark, *line;

  memset (p, 0, sizeof *p);
  line_end = strchr (text, '\n');
  if (line_end)
    *line_end = '\0';
  sp = strchr (text, ' ');
  last_sp = strrchr (text, ' ');
  if (sp == NULL || last_sp == sp || strcmp (last_sp, " HTTP/1.1") != 0)
    return -1;
  *sp = *last_sp = '\0';
  p->method = text;
  target = sp + 1;
  qmark = strchr (target, '?');
  if (qmark) {
    *qmark = '\0';
    if (qmark[1] && parse_query (qmark + 1, p, decode_query) == -1)
      return -1;
  }
  p->path = target;

  p->body = "";
  for (line = line_end ? line_end + 1 : NULL; line; line = line_end) {
    char *colon;

    line_end = strchr (line, '\n');
    if (line_end)
      *line_end++ = '\0';
    if (line[0] == '\0') {
      if (line_end) {
        p->body = line_end;
        p->body_len = strlen (line_end);
      }
      break;
    }
    colon = strchr (line, ':');
    if (colon == NULL || p->nr_headers >= SIGV4_MAX_PAIRS)
      return -1;
    *colon = '\0';
    p->headers[p->nr_headers].name = line;
    p->headers[p->nr_headers].value = colon + 1;
    p->nr_headers++;
  }
  return 0;
}

/* The value of a header or query parameter by name, or NULL. */
static const char *
find_kv (const struct sigv4_kv *kv, size_t n, const char *name)
{
  size_t i;

  for (i = 0; i < n; i++) {
    if (strcasecmp (kv[i].name, name) == 0)
      return kv[i].value;
  }
  return NULL;
}

/* Compare a computed step with NAME.EXT; on a difference show both. */
static bool
expect_file (const struct vector *v, const char *ext, const char *got)
{
  CLEANUP_FREE char *want = NULL;
  size_t len;

  if (got == NULL)
    return false;
  want = read_vector (v, ext, &len);
  if (want == NULL)
    return false;
  if (strlen (got) == len && memcmp (got, want, len) == 0)
    return true;
  fprintf (stderr, "%s: .%s differs\n--- expected:\n%s\n--- got:\n%s\n---\n",
           v->name, ext, want, got);
  return false;
}

/* The presigned URL: https://HOST/PATH?QUERY, compared with NAME.url. */
static bool
check_presigned_url (const struct vector *v, const struct parsed *p,
                     const struct sigv4_request *r)
{
  struct sigv4_request bare = *r;
  CLEANUP_FREE char *query = NULL;
  CLEANUP_FREE char *path = NULL;
  CLEANUP_FREE char *url = NULL;
  const char *host = find_kv (p->headers, p->nr_headers, "host");

  /* The signer adds the X-Amz-* parameters itself. */
  bare.query = NULL;
  bare.nr_query = 0;
  query = sigv4_presign_query (&bare, v->keys->access_key, v->keys->secret_key,
                               NULL, v->presign_expires);
  path = sigv4_uri_encode (r->path, false);
  if (host == NULL || query == NULL || path == NULL ||
      asprintf (&url, "https://%s%s?%s", host, path, query) == -1) {
    url = NULL;
    return false;
  }
  return expect_file (v, "url", url);
}

/* Run one vector: every step must match its file.  Returns true if the
 * case passed.
 */
static bool
run_vector (const struct vector *v)
{
  CLEANUP_FREE char *text = NULL;
  CLEANUP_FREE char *creq = NULL;
  CLEANUP_FREE char *sts = NULL;
  CLEANUP_FREE char *authz = NULL;
  struct parsed p;
  struct sigv4_request r;
  char date[17], body_hash[65];
  const char *header_date, *content_sha256;
  bool presign = v->presign_expires > 0;
  bool ok = true;

  text = read_vector (v, "req", NULL);
  if (text == NULL)
    return false;
  if (parse_request (text, &p, presign) == -1) {
    fprintf (stderr, "%s: cannot parse .req\n", v->name);
    return false;
  }
  if (sigv4_format_date (v->keys->clock, date) == -1 ||
      sigv4_sha256_hex (p.body, p.body_len, body_hash) == -1)
    return false;

  /* The vector's own date must be our fixed clock, and a declared body
   * hash must be the real one (s3-put-object's body is signed).
   */
  header_date = find_kv (p.headers, p.nr_headers, "x-amz-date");
  if (header_date == NULL)
    header_date = find_kv (p.query, p.nr_query, "X-Amz-Date");
  if (header_date == NULL || strcmp (header_date, date) != 0) {
    fprintf (stderr, "%s: date is not %s\n", v->name, date);
    ok = false;
  }
  content_sha256 = find_kv (p.headers, p.nr_headers, "x-amz-content-sha256");
  if (content_sha256 && strcmp (content_sha256, body_hash) != 0) {
    fprintf (stderr, "%s: x-amz-content-sha256 is not the body's\n", v->name);
    ok = false;
  }

  r = (struct sigv4_request){
    .method = p.method,
    .path = p.path,
    .query = p.query,
    .nr_query = p.nr_query,
    .headers = p.headers,
    .nr_headers = p.nr_headers,
    .payload_hash = presign ? "UNSIGNED-PAYLOAD" : body_hash,
    .region = v->keys->region,
    .service = v->keys->service,
    .amz_date = date,
  };
  creq = sigv4_canonical_request (&r);
  ok &= expect_file (v, "creq", creq);
  if (creq)
    sts = sigv4_string_to_sign (&r, creq);
  ok &= expect_file (v, "sts", sts);
  if (presign)
    ok &= check_presigned_url (v, &p, &r);
  else {
    authz = sigv4_authorization (&r, v->keys->access_key, v->keys->secret_key,
                                 v->keys->separator);
    ok &= expect_file (v, "authz", authz);
  }
  return ok;
}

/* A refused call must return NULL after one error; free anything it
 * wrongly returned.
 */
static void
check_null (char *s, const char *what, int line)
{
  test_check (s == NULL && test_nr_errors () == 1, __FILE__, line, "%s", what);
  free (s);
}
#define CHECK_NULL(expr)                                                       \
  do {                                                                         \
    test_clear_errors ();                                                      \
    check_null ((expr), #expr, __LINE__);                                      \
  } while (0)

/* A call that must succeed, silently, with exactly this result. */
static void
check_str (char *s, const char *want, const char *what, int line)
{
  bool ok = s != NULL && test_str_is (s, want) && test_nr_errors () == 0;

  test_check (ok, __FILE__, line, "%s", what);
  free (s);
}
#define CHECK_STR(expr, want)                                                  \
  do {                                                                         \
    test_clear_errors ();                                                      \
    check_str ((expr), (want), #expr, __LINE__);                               \
  } while (0)

/* A call that must succeed silently, whatever the result. */
#define CHECK_OK(expr)                                                         \
  do {                                                                         \
    char *s_;                                                                  \
    test_clear_errors ();                                                      \
    s_ = (expr);                                                               \
    test_check (s_ != NULL && test_nr_errors () == 0, __FILE__, __LINE__,      \
                "%s", #expr);                                                  \
    free (s_);                                                                 \
  } while (0)

static const struct sigv4_kv base_headers[] = {
  { "Host", "example.amazonaws.com" },
  { "X-Amz-Date", "20150830T123600Z" },
};

/* get-vanilla, built by hand: each error check changes one field. */
static struct sigv4_request
base_request (void)
{
  return (struct sigv4_request){
    .method = "GET",
    .path = "/",
    .headers = base_headers,
    .nr_headers = 2,
    .payload_hash = EMPTY_SHA256,
    .region = "us-east-1",
    .service = "service",
    .amz_date = "20150830T123600Z",
  };
}

/* Encoding, hashing and dates on their own, including what S3 must not
 * do (normalise the path).
 */
static void
check_helpers (void)
{
  char date[17], hash[65];

  CHECK_STR (sigv4_uri_encode ("/a/./b/../c//d", false), "/a/./b/../c//d");
  CHECK_STR (sigv4_uri_encode ("a b/c+d=e~*", true), "a%20b%2Fc%2Bd%3De~%2A");
  CHECK_STR (sigv4_uri_encode ("/\xe1\x88\xb4", false), "/%E1%88%B4");
  CHECK_STR (sigv4_uri_encode ("", true), "");
  CHECK (sigv4_sha256_hex ("", 0, hash) == 0 &&
         strcmp (hash, EMPTY_SHA256) == 0);
  CHECK (sigv4_format_date (1440938160, date) == 0 &&
         strcmp (date, "20150830T123600Z") == 0);
  CHECK (sigv4_format_date (253402300799, date) == 0 &&
         strcmp (date, "99991231T235959Z") == 0);
  test_clear_errors ();
  CHECK (sigv4_format_date (253402300800, date) == -1 &&
         test_nr_errors () == 1);
}

/* Limits are inclusive: the largest allowed input is still signed. */
static void
check_limits (void)
{
  static char big[SIGV4_MAX_STRING + 2];
  static struct sigv4_kv many[SIGV4_MAX_PAIRS + 1];
  struct sigv4_request r;
  size_t i;

  memset (big, 'a', sizeof big - 1);
  big[0] = '/';
  for (i = 0; i < SIGV4_MAX_PAIRS + 1; i++)
    many[i] = (struct sigv4_kv){ i == 0 ? "host" : "x-a", "v" };

  r = base_request ();
  big[SIGV4_MAX_STRING] = '\0';
  r.path = big;
  CHECK_OK (sigv4_canonical_request (&r));
  big[SIGV4_MAX_STRING] = 'a';
  CHECK_NULL (sigv4_canonical_request (&r));
  CHECK_NULL (sigv4_uri_encode (big, false));

  r = base_request ();
  r.headers = many;
  r.nr_headers = SIGV4_MAX_PAIRS;
  CHECK_OK (sigv4_canonical_request (&r));
  r.nr_headers = SIGV4_MAX_PAIRS + 1;
  CHECK_NULL (sigv4_canonical_request (&r));

  r = base_request ();
  r.query = many;
  r.nr_query = SIGV4_MAX_PAIRS;
  CHECK_OK (sigv4_canonical_request (&r));
  r.nr_query = SIGV4_MAX_PAIRS + 1;
  CHECK_NULL (sigv4_canonical_request (&r));

  r = base_request ();
  CHECK_NULL (sigv4_authorization (&r, "AKIDEXAMPLE", big, ", "));
}

/* Each malformed input is refused (with one report_error), not signed. */
static void
check_errors (void)
{
  struct sigv4_request r;
  struct sigv4_kv hdr[2] = { { "Host", "example.amazonaws.com" } };
  struct sigv4_kv q[1] = { { "a", NULL } };

  r = base_request ();
  CHECK_STR (sigv4_authorization (&r, suite.access_key, suite.secret_key, ", "),
             "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/"
             "service/aws4_request, SignedHeaders=host;x-amz-date, "
             "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9"
             "b8aae1d763fbf31");

  CHECK_NULL (sigv4_canonical_request (NULL));
  CHECK_NULL (sigv4_uri_encode (NULL, true));
#define REFUSED(field, val)                                                    \
  do {                                                                         \
    r = base_request ();                                                       \
    r.field = (val);                                                           \
    test_clear_errors ();                                                      \
    check_null (sigv4_canonical_request (&r), #field " = " #val, __LINE__);    \
  } while (0)
  REFUSED (method, NULL);
  REFUSED (method, "GET /");
  REFUSED (path, NULL);
  REFUSED (path, "relative");
  REFUSED (payload_hash, NULL);
  REFUSED (payload_hash,
           "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA"
           "495991B7852B855");
  REFUSED (payload_hash, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
  REFUSED (region, NULL);
  REFUSED (region, "us/east-1");
  REFUSED (service, "");
  REFUSED (amz_date, "20150830T123600");
  REFUSED (amz_date, "20150830 123600Z");
  REFUSED (headers, NULL);
  REFUSED (nr_headers, 0); /* no host */
#undef REFUSED

  /* Header injection: CR/LF or controls in a value, odd names. */
  r = base_request ();
  r.headers = hdr;
  r.nr_headers = 2;
  hdr[1] = (struct sigv4_kv){ "x-a", "1\r\nX-Injected: 1" };
  CHECK_NULL (sigv4_canonical_request (&r));
  hdr[1] = (struct sigv4_kv){ "x-a", "1\nX-Injected: 1" };
  CHECK_NULL (sigv4_canonical_request (&r));
  hdr[1] = (struct sigv4_kv){ "x-a", "1\x01" };
  CHECK_NULL (sigv4_canonical_request (&r));
  hdr[1] = (struct sigv4_kv){ "x a", "1" };
  CHECK_NULL (sigv4_canonical_request (&r));
  hdr[1] = (struct sigv4_kv){ "x-a:", "1" };
  CHECK_NULL (sigv4_canonical_request (&r));
  hdr[1] = (struct sigv4_kv){ "", "1" };
  CHECK_NULL (sigv4_canonical_request (&r));
  hdr[1] = (struct sigv4_kv){ "x-a", NULL };
  CHECK_NULL (sigv4_canonical_request (&r));
  /* A tab is white space: trimmed and collapsed, not refused. */
  hdr[1] = (struct sigv4_kv){ "X-A", "\t1 \t 2\t" };
  CHECK_STR (sigv4_canonical_request (&r),
             "GET\n/\n\nhost:example.amazonaws.com\nx-a:1 2\n\n"
             "host;x-a\n" EMPTY_SHA256);

  r = base_request ();
  r.query = q;
  r.nr_query = 1;
  CHECK_NULL (sigv4_canonical_request (&r));

  r = base_request ();
  CHECK_NULL (sigv4_string_to_sign (&r, NULL));
  CHECK_NULL (sigv4_string_to_sign (NULL, "x"));
  CHECK_NULL (sigv4_authorization (&r, NULL, suite.secret_key, ", "));
  CHECK_NULL (sigv4_authorization (&r, "AKID/X", suite.secret_key, ","));
  CHECK_NULL (sigv4_authorization (&r, suite.access_key, NULL, ","));
  CHECK_NULL (sigv4_authorization (&r, suite.access_key, "", ","));
  CHECK_NULL (
      sigv4_authorization (&r, suite.access_key, suite.secret_key, NULL));
  CHECK_NULL (
      sigv4_authorization (&r, suite.access_key, suite.secret_key, ";"));
  CHECK_NULL (
      sigv4_presign_query (&r, suite.access_key, suite.secret_key, NULL, 0));
  CHECK_NULL (sigv4_presign_query (&r, suite.access_key, suite.secret_key, NULL,
                                   SIGV4_MAX_EXPIRES + 1));
}

/* A session token is signed inside the presigned query, encoded and in
 * sorted position.
 */
static void
check_presign_token (void)
{
  struct sigv4_request r = base_request ();
  CLEANUP_FREE char *q = NULL;

  r.headers = base_headers; /* host only */
  r.nr_headers = 1;
  q = sigv4_presign_query (&r, suite.access_key, suite.secret_key,
                           "tok/en=", 60);
  CHECK (q != NULL &&
         strstr (q,
                 "&X-Amz-Expires=60&X-Amz-Security-Token=tok%2Fen%3D"
                 "&X-Amz-SignedHeaders=host&X-Amz-Signature=") != NULL);
}

int
main (void)
{
  size_t i;

  test_capture_errors (true);

  for (i = 0; i < NR_VECTORS; i++) {
    bool ok = run_vector (&vectors[i]);

    printf ("%s %s%s\n", ok ? "PASS" : "FAIL", vectors[i].dir, vectors[i].name);
    if (!ok)
      test_nr_failed++;
  }

  check_helpers ();
  check_limits ();
  check_errors ();
  check_presign_token ();

  printf ("sigv4: %zu cases, %u checks, %u failed\n", NR_VECTORS,
          (unsigned) test_nr_checks, (unsigned) test_nr_failed);
  return test_nr_failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
