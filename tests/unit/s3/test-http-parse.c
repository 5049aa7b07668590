/* accel: unit test of common/s3/http-parse.c.
 *
 * Everything that parses what a server sends is checked here with
 * tables of good and hostile input: Content-Range (RFC 9110 14.4,
 * including overflow and junk), Content-Length, ETags, S3 XML error
 * bodies (entities, truncation, oversize), the status -> errno mapping
 * and which failures are retried.  Output is one line per failed check
 * and a final "http-parse: N checks, N failed".
 */

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "http-parse.h"
#include "test.h"

/* Content-Range: r is -1 for invalid input. */
static const struct {
  const char *in;
  int r;
  uint64_t first, last, complete;
  bool known;
} content_ranges[] = {
  { "bytes 0-0/1", 0, 0, 0, 1, true },
  { "bytes 0-99/100", 0, 0, 99, 100, true },
  { "bytes 42-1233/1234", 0, 42, 1233, 1234, true },
  { "bytes 42-1233/*", 0, 42, 1233, 0, false },
  { "BYTES 1-2/3", 0, 1, 2, 3, true },
  { "  bytes 1-2/3 \t", 0, 1, 2, 3, true },
  { "bytes 007-8/9", 0, 7, 8, 9, true },
  { "bytes 0-18446744073709551614/18446744073709551615", 0, 0,
    18446744073709551614ULL, 18446744073709551615ULL, true },
  { "bytes 18446744073709551615-18446744073709551615/*", 0,
    18446744073709551615ULL, 18446744073709551615ULL, 0, false },
  /* overflow */
  { "bytes 0-18446744073709551616/*", -1, 0, 0, 0, false },
  { "bytes 0-1/18446744073709551616", -1, 0, 0, 0, false },
  { "bytes 99999999999999999999-1/2", -1, 0, 0, 0, false },
  /* first > last, last >= complete */
  { "bytes 5-4/10", -1, 0, 0, 0, false },
  { "bytes 0-10/10", -1, 0, 0, 0, false },
  { "bytes 0-0/0", -1, 0, 0, 0, false },
  /* junk */
  { "", -1, 0, 0, 0, false },
  { "bytes", -1, 0, 0, 0, false },
  { "bytes ", -1, 0, 0, 0, false },
  { "bytes  0-1/2", -1, 0, 0, 0, false },
  { "bytes=0-1/2", -1, 0, 0, 0, false },
  { "bits 0-1/2", -1, 0, 0, 0, false },
  { "bytes -1-2/3", -1, 0, 0, 0, false },
  { "bytes +1-2/3", -1, 0, 0, 0, false },
  { "bytes 1--2/3", -1, 0, 0, 0, false },
  { "bytes 1-2/-3", -1, 0, 0, 0, false },
  { "bytes 1-2/+3", -1, 0, 0, 0, false },
  { "bytes 1-2", -1, 0, 0, 0, false },
  { "bytes 1-2/", -1, 0, 0, 0, false },
  { "bytes 1-/3", -1, 0, 0, 0, false },
  { "bytes -2/3", -1, 0, 0, 0, false },
  { "bytes 1 -2/3", -1, 0, 0, 0, false },
  { "bytes 1- 2/3", -1, 0, 0, 0, false },
  { "bytes 1-2 /3", -1, 0, 0, 0, false },
  { "bytes 1-2/3x", -1, 0, 0, 0, false },
  { "bytes 1-2/3 4", -1, 0, 0, 0, false },
  { "bytes 1-2/**", -1, 0, 0, 0, false },
  { "bytes 0x1-2/3", -1, 0, 0, 0, false },
  { "bytes 1-2/3, bytes 4-5/6", -1, 0, 0, 0, false },
  { "bytes */100", -1, 0, 0, 0, false },
  { "bytes 1.0-2/3", -1, 0, 0, 0, false },
};

/* Every row, and that a failed parse leaves the output alone. */
static void
test_content_range (void)
{
  size_t i;

  for (i = 0; i < sizeof content_ranges / sizeof content_ranges[0]; i++) {
    struct http_content_range cr = { 7, 7, 7, true };
    int r = http_parse_content_range (content_ranges[i].in, &cr);

    CHECK_INPUT (r == content_ranges[i].r, "content-range: result",
                 content_ranges[i].in);
    if (r == 0 && content_ranges[i].r == 0) {
      CHECK_INPUT (
          cr.first == content_ranges[i].first &&
              cr.last == content_ranges[i].last &&
              cr.complete_known == content_ranges[i].known &&
              (!cr.complete_known || cr.complete == content_ranges[i].complete),
          "content-range: values", content_ranges[i].in);
    }
    if (r == -1)
      CHECK_INPUT (cr.first == 7 && cr.last == 7,
                   "content-range: output untouched on error",
                   content_ranges[i].in);
  }
}

/* The form sent with a 416: an asterisk, then the size. */
static void
test_unsatisfied_range (void)
{
  uint64_t n = 1;

  CHECK_INPUT (http_parse_unsatisfied_range ("bytes */0", &n) == 0 && n == 0,
               "unsatisfied", "bytes */0");
  CHECK_INPUT (http_parse_unsatisfied_range ("bytes */1234", &n) == 0 &&
                   n == 1234,
               "unsatisfied", "bytes */1234");
  CHECK_INPUT (http_parse_unsatisfied_range ("bytes */", &n) == -1,
               "unsatisfied", "bytes */");
  CHECK_INPUT (http_parse_unsatisfied_range ("bytes 0-1/2", &n) == -1,
               "unsatisfied", "bytes 0-1/2");
  CHECK_INPUT (
      http_parse_unsatisfied_range ("bytes */18446744073709551616", &n) == -1,
      "unsatisfied", "overflow");
  CHECK_INPUT (http_parse_unsatisfied_range ("bytes */*", &n) == -1,
               "unsatisfied", "bytes */*");
}

static const struct {
  const char *in;
  int r;
  uint64_t v;
} uint64s[] = {
  { "0", 0, 0 },
  { "1234", 0, 1234 },
  { " 5 ", 0, 5 },
  { "18446744073709551615", 0, UINT64_MAX },
  { "18446744073709551616", -1, 0 },
  { "184467440737095516150", -1, 0 },
  { "", -1, 0 },
  { " ", -1, 0 },
  { "-1", -1, 0 },
  { "+1", -1, 0 },
  { "1 2", -1, 0 },
  { "12a", -1, 0 },
  { "0x10", -1, 0 },
  { "1,1", -1, 0 },
};

/* Content-Length style numbers. */
static void
test_uint64 (void)
{
  size_t i;

  for (i = 0; i < sizeof uint64s / sizeof uint64s[0]; i++) {
    uint64_t v = 0;
    int r = http_parse_uint64 (uint64s[i].in, &v);

    CHECK_INPUT (r == uint64s[i].r && (r == -1 || v == uint64s[i].v), "uint64",
                 uint64s[i].in);
  }
}

/* ETag: out is what must be sent back in If-Match (NULL = invalid). */
static const struct {
  const char *in;
  const char *out;
} etags[] = {
  { "\"abc\"", "\"abc\"" },
  { "\"d41d8cd98f00b204e9800998ecf8427e\"",
    "\"d41d8cd98f00b204e9800998ecf8427e\"" },
  { "\"d41d8cd98f00b204e9800998ecf8427e-12\"",
    "\"d41d8cd98f00b204e9800998ecf8427e-12\"" },
  { "  \"x\"\t", "\"x\"" },
  { "\"\"", "\"\"" },
  { "\"caf\xc3\xa9\"", "\"caf\xc3\xa9\"" },
  { "W/\"abc\"", NULL },
  { "abc", NULL },
  { "\"abc", NULL },
  { "abc\"", NULL },
  { "\"a\"b\"", NULL },
  { "\"a b\"", NULL },
  { "\"a\x01\"", NULL },
  { "\"a\" \"b\"", NULL },
  { "\"a\",\"b\"", NULL },
  { "", NULL },
};

/* ETags are echoed verbatim; weak or malformed ones refused. */
static void
test_etag (void)
{
  char out[HTTP_MAX_ETAG], big[HTTP_MAX_ETAG + 10];
  size_t i;

  for (i = 0; i < sizeof etags / sizeof etags[0]; i++) {
    int r = http_parse_etag (etags[i].in, out);

    if (etags[i].out)
      CHECK_INPUT (r == 0 && strcmp (out, etags[i].out) == 0, "etag",
                   etags[i].in);
    else
      CHECK_INPUT (r == -1, "etag: invalid", etags[i].in);
  }

  /* The longest that fits, and one byte more. */
  memset (big, 'a', sizeof big);
  big[0] = '"';
  big[HTTP_MAX_ETAG - 2] = '"';
  big[HTTP_MAX_ETAG - 1] = '\0';
  CHECK_INPUT (http_parse_etag (big, out) == 0 && strcmp (out, big) == 0,
               "etag: longest", "(255 bytes)");
  big[HTTP_MAX_ETAG - 2] = 'a';
  big[HTTP_MAX_ETAG - 1] = '"';
  big[HTTP_MAX_ETAG] = '\0';
  CHECK_INPUT (http_parse_etag (big, out) == -1, "etag: too long",
               "(256 bytes)");
}

/* x-amz-version-id: AWS's and radosgw's shapes pin, "null" and ""
 * mean an unversioned object, anything we could not send back safely
 * in a signed query is refused.
 */
static const struct {
  const char *in;
  int r;
  const char *out;
} version_ids[] = {
  { "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo", 1,
    "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo" },
  { " FZ3xDZyC8AHKTlcUsL0QShyqkbh5kS9 ", 1, "FZ3xDZyC8AHKTlcUsL0QShyqkbh5kS9" },
  { "null", 0, "" },
  { "", 0, "" },
  { "  ", 0, "" },
  { "nullx", 1, "nullx" },
  { "a b", -1, NULL },
  { "a\tb", -1, NULL },
  { "caf\xc3\xa9", -1, NULL },
  { "a\x7f", -1, NULL },
};

static void
test_version_id (void)
{
  char out[HTTP_MAX_VERSION_ID];
  char big[HTTP_MAX_VERSION_ID + 1];
  size_t i;

  for (i = 0; i < sizeof version_ids / sizeof version_ids[0]; i++) {
    int r = http_parse_version_id (version_ids[i].in, out);

    if (version_ids[i].out)
      CHECK_INPUT (r == version_ids[i].r &&
                       strcmp (out, version_ids[i].out) == 0,
                   "version-id", version_ids[i].in);
    else
      CHECK_INPUT (r == -1, "version-id: invalid", version_ids[i].in);
  }

  /* The longest that fits, and one byte more. */
  memset (big, 'v', sizeof big);
  big[HTTP_MAX_VERSION_ID - 1] = '\0';
  CHECK_INPUT (http_parse_version_id (big, out) == 1 && strcmp (out, big) == 0,
               "version-id: longest", "(1023 bytes)");
  big[HTTP_MAX_VERSION_ID - 1] = 'v';
  big[HTTP_MAX_VERSION_ID] = '\0';
  CHECK_INPUT (http_parse_version_id (big, out) == -1, "version-id: too long",
               "(1024 bytes)");
}

/* XML error bodies. */
static const struct {
  const char *what;
  const char *body;
  const char *code, *message, *region;
} xml_errors[] = {
  { "S3 403",
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature "
    "we calculated does not match the signature you provided.</Message>"
    "<AWSAccessKeyId>AKIAEXAMPLE</AWSAccessKeyId><SignatureProvided>abcdef"
    "</SignatureProvided><RequestId>1</RequestId></Error>",
    "SignatureDoesNotMatch",
    "The request signature we calculated does not match the signature you "
    "provided.",
    "" },
  { "S3 301",
    "<Error><Code>PermanentRedirect</Code><Message>The bucket you are "
    "attempting to access must be addressed using the specified endpoint."
    "</Message><Endpoint>b.s3.eu-west-1.amazonaws.com</Endpoint>"
    "<Bucket>b</Bucket></Error>",
    "PermanentRedirect",
    "The bucket you are attempting to access must be addressed using the "
    "specified endpoint.",
    "" },
  { "S3 400 wrong region",
    "<Error><Code>AuthorizationHeaderMalformed</Code><Message>the region "
    "'us-east-1' is wrong; expecting 'eu-west-1'</Message><Region>eu-west-1"
    "</Region></Error>",
    "AuthorizationHeaderMalformed",
    "the region 'us-east-1' is wrong; expecting 'eu-west-1'", "eu-west-1" },
  { "BucketRegion wins over Region",
    "<Error><Code>X</Code><Region>a-1</Region><BucketRegion>b-2"
    "</BucketRegion></Error>",
    "X", "", "b-2" },
  { "entities",
    "<Error><Code>A&amp;B</Code><Message>&lt;tag&gt; &quot;q&quot; "
    "&apos;s&apos; &#65;&#x42;&#X43; caf&#xe9; &#x1F600;</Message></Error>",
    "A&B", "<tag> \"q\" 's' AB&#X43; caf\xc3\xa9 \xf0\x9f\x98\x80", "" },
  { "bad entities kept literally",
    "<Error><Code>&bogus; &amp &#; &#x; &#12a; &</Code></Error>",
    "&bogus; &amp &#; &#x; &#12a; &", "", "" },
  { "invalid code points",
    "<Error><Code>&#0;&#xD800;&#x110000;&#1114112;</Code></Error>",
    "&#0;?&#x110000;&#1114112;", "", "" },
  { "control characters become spaces",
    "<Error><Code>a\nb\tc&#10;d&#x7f;e\x1b</Code></Error>", "a b c d e ", "",
    "" },
  { "raw UTF-8 kept", "<Error><Message>\xe2\x82\xac \xc3\xa9</Message></Error>",
    "", "\xe2\x82\xac \xc3\xa9", "" },
  { "truncated body", "<Error><Code>SlowDown</Code><Message>Please reduce your",
    "SlowDown", "", "" },
  { "missing fields", "<Error></Error>", "", "", "" },
  { "empty element", "<Error><Code></Code></Error>", "", "", "" },
  { "not XML", "Service Unavailable", "", "", "" },
  { "HTML", "<html><body><h1>502 Bad Gateway</h1></body></html>", "", "", "" },
  { "empty", "", "", "", "" },
  { "close before open", "</Code>x<Code>y</Code>", "y", "", "" },
};

/* The table, then the bounds: NULL, unterminated, huge fields, a body
 * past the cap.
 */
static void
test_xml_error (void)
{
  struct http_s3_error xe;
  char *big;
  size_t i, n;

  for (i = 0; i < sizeof xml_errors / sizeof xml_errors[0]; i++) {
    http_parse_s3_error (xml_errors[i].body, strlen (xml_errors[i].body), &xe);
    CHECK_INPUT (strcmp (xe.code, xml_errors[i].code) == 0, "xml: code",
                 xml_errors[i].what);
    CHECK_INPUT (strcmp (xe.message, xml_errors[i].message) == 0,
                 "xml: message", xml_errors[i].what);
    CHECK_INPUT (strcmp (xe.region, xml_errors[i].region) == 0, "xml: region",
                 xml_errors[i].what);
  }

  /* NULL body. */
  http_parse_s3_error (NULL, 10, &xe);
  CHECK_INPUT (xe.code[0] == '\0' && xe.message[0] == '\0', "xml: NULL",
               "NULL");

  /* The body need not be NUL-terminated: only len bytes are read. */
  http_parse_s3_error ("<Code>ab</Code>", 12, &xe);
  CHECK_INPUT (xe.code[0] == '\0', "xml: len respected", "<Code>ab</Co");

  /* A huge message is cut to the field size, at a UTF-8 boundary. */
  n = 3 * HTTP_MAX_XML_FIELD;
  big = test_alloc (n + 64);
  memcpy (big, "<Message>", 9);
  for (i = 9; i < n; i += 2)
    memcpy (big + i, "\xc3\xa9", 2);
  memcpy (big + i, "</Message>", 11);
  http_parse_s3_error (big, strlen (big), &xe);
  CHECK_INPUT (
      strlen (xe.message) > 0 && strlen (xe.message) < HTTP_MAX_XML_FIELD &&
          strlen (xe.message) % 2 == 0 && (unsigned char) xe.message[0] == 0xc3,
      "xml: long message cut on a character boundary", "(1.5 KB)");

  /* Past HTTP_MAX_ERROR_BODY nothing is looked at. */
  free (big);
  n = HTTP_MAX_ERROR_BODY + 100;
  big = test_alloc (n + 64);
  memset (big, ' ', n);
  memcpy (big + HTTP_MAX_ERROR_BODY - 10, "<Code>Late</Code>", 18);
  http_parse_s3_error (big, strlen (big), &xe);
  CHECK_INPUT (xe.code[0] == '\0', "xml: element past the cap ignored",
               "(16 KB of spaces)");
  memset (big, ' ', n);
  memcpy (big + 100, "<Code>Early</Code>", 18);
  big[n] = '\0';
  http_parse_s3_error (big, n, &xe);
  CHECK_INPUT (strcmp (xe.code, "Early") == 0, "xml: element before the cap",
               "(16 KB)");
  free (big);
}

static const struct {
  long status;
  int err;
  bool retry;
} statuses[] = {
  { 200, 0, false },        { 206, 0, false },       { 301, EIO, false },
  { 307, EIO, false },      { 400, EINVAL, false },  { 401, EACCES, false },
  { 403, EACCES, false },   { 404, ENOENT, false },  { 405, ENOTSUP, false },
  { 408, ETIMEDOUT, true }, { 409, EBUSY, false },   { 410, ENOENT, false },
  { 412, ESTALE, false },   { 416, ERANGE, false },  { 429, EIO, true },
  { 500, EIO, true },       { 501, ENOTSUP, false }, { 502, EIO, true },
  { 503, EIO, true },       { 504, EIO, true },      { 505, EIO, false },
  { 0, EIO, false },        { 999, EIO, false },     { -1, EIO, false },
};

/* Status -> errno and retryable, for every status we name. */
static void
test_status (void)
{
  char what[64];
  size_t i;

  for (i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
    snprintf (what, sizeof what, "%ld", statuses[i].status);
    CHECK_INPUT (http_status_errno (statuses[i].status) == statuses[i].err,
                 "status errno", what);
    CHECK_INPUT (http_status_retryable (statuses[i].status) ==
                     statuses[i].retry,
                 "status retryable", what);
  }
  CHECK_INPUT (strcmp (http_status_text (403), "Forbidden") == 0, "status text",
               "403");
  CHECK_INPUT (strcmp (http_status_text (299), "") == 0, "status text", "299");
}

static const struct {
  int cc;
  bool retry;
  int err;
} curl_codes[] = {
  { CURLE_OK, false, 0 },
  { CURLE_COULDNT_CONNECT, true, ECONNREFUSED },
  { CURLE_OPERATION_TIMEDOUT, true, ETIMEDOUT },
  { CURLE_GOT_NOTHING, true, ECONNRESET },
  { CURLE_RECV_ERROR, true, ECONNRESET },
  { CURLE_SEND_ERROR, true, ECONNRESET },
  { CURLE_PARTIAL_FILE, true, EIO },
  { CURLE_COULDNT_RESOLVE_HOST, false, EHOSTUNREACH },
  { CURLE_WRITE_ERROR, false, EIO },
  { CURLE_PEER_FAILED_VERIFICATION, false, EIO },
  { CURLE_URL_MALFORMAT, false, EINVAL },
  { CURLE_OUT_OF_MEMORY, false, ENOMEM },
};

/* Transfer failures -> errno and retryable. */
static void
test_curl_codes (void)
{
  size_t i;

  for (i = 0; i < sizeof curl_codes / sizeof curl_codes[0]; i++) {
    const char *what = curl_easy_strerror (curl_codes[i].cc);

    CHECK_INPUT (http_curl_retryable (curl_codes[i].cc) == curl_codes[i].retry,
                 "curl retryable", what);
    CHECK_INPUT (http_curl_errno (curl_codes[i].cc) == curl_codes[i].err,
                 "curl errno", what);
  }
}

/* Run every group; exit 0 only if every check passed. */
int
main (void)
{
  test_content_range ();
  test_unsatisfied_range ();
  test_uint64 ();
  test_etag ();
  test_version_id ();
  test_xml_error ();
  test_status ();
  test_curl_codes ();
  return test_summary ("http-parse");
}
