/* fuzz-http: what an HTTP server sends back to the S3 client: header
 * lines (common/s3/s3-request.c's s3_response_header), Content-Range,
 * Content-Length and ETag (common/s3/http-parse.c), error bodies, and the
 * judgement of the whole response against the request
 * (common/s3/s3-check.c's s3_check_response).
 *
 * Input: a 12-byte request description, then a raw header block as it
 * comes off the wire (status line, "Name: value" lines, a blank line),
 * then the body.
 *
 *   byte 0     purpose (enum s3_purpose, modulo its size)
 *   byte 1     flags: 1 HEAD, 2 Range sent, 4 If-Match sent, 8 signed
 *              URL, 16 anonymous, 32 missing_ok, 64 transfer error
 *   byte 2     the transfer error (CURLcode) if flag 64
 *   bytes 3-4  first byte of the range (little-endian)
 *   bytes 5-6  length of the range less one
 *   bytes 7-10 size of the object when it was opened
 *   byte 11    unused
 *
 * Each header line goes to s3_response_header as libcurl would hand it
 * over; the status is the code in the last status line.  Besides not
 * crashing, the verdict must make sense: a failure has a message and
 * an errno, success has a 2xx status (or the 416 of an empty object),
 * and a range read succeeds only with exactly the range asked for.
 *
 * Seeds: real S3 and radosgw response heads (tests/fuzz/corpus/http/).
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "fuzz.h"
#include "http-parse.h"
#include "s3-internal.h"

#define PREFIX 12

/* What we fetch at most in one request in this target. */
#define MAX_BODY 65536

/* Little-endian fields of the prefix. */
static uint32_t
get_le (const uint8_t *p, int n)
{
  uint32_t v = 0;
  int i;

  for (i = n - 1; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

/* The parsers of header values on the value of any header line,
 * unbounded (s3_response_header keeps only HTTP_MAX_ETAG bytes).
 */
static void
parse_value (const char *line, size_t len)
{
  const char *colon = memchr (line, ':', len);
  struct http_content_range cr;
  char etag[HTTP_MAX_ETAG], *v;
  uint64_t n;

  if (colon == NULL)
    return;
  v = strndup (colon + 1, len - (colon + 1 - line));
  if (v == NULL)
    fuzz_fail ("strndup");
  if (http_parse_content_range (v, &cr) == 0)
    FUZZ_CHECK (cr.first <= cr.last &&
                (!cr.complete_known || cr.last < cr.complete));
  (void) http_parse_unsatisfied_range (v, &n);
  (void) http_parse_uint64 (v, &n);
  if (http_parse_etag (v, etag) == 0)
    FUZZ_CHECK (etag[0] == '"' && strlen (etag) >= 2 &&
                etag[strlen (etag) - 1] == '"');
  free (v);
}

/* The 3-digit code of a status line "HTTP/x yyy ...", or 0. */
static long
status_code (const char *line, size_t len)
{
  const char *sp = memchr (line, ' ', len);
  long code = 0;
  int i;

  if (sp == NULL || (size_t) (sp - line) + 4 > len)
    return 0;
  for (i = 1; i <= 3; i++) {
    if (sp[i] < '0' || sp[i] > '9')
      return 0;
    code = code * 10 + (sp[i] - '0');
  }
  return code;
}

/* Feed the header block at p[0..len) line by line; returns where the
 * body starts.
 */
static size_t
feed_headers (struct s3_response *rs, const char *p, size_t len)
{
  size_t pos = 0;

  while (pos < len) {
    const char *nl = memchr (p + pos, '\n', len - pos);
    size_t n = nl ? (size_t) (nl - (p + pos)) + 1 : len - pos;
    char *line = malloc (n); /* its own allocation: ASan sees overreads */

    if (line == NULL)
      fuzz_fail ("malloc");
    memcpy (line, p + pos, n);
    if (n >= 5 && memcmp (line, "HTTP/", 5) == 0)
      rs->status = status_code (line, n);
    FUZZ_CHECK (s3_response_header (line, 1, n, rs) == n);
    parse_value (line, n);
    free (line);
    pos += n;
    if ((n == 1 && p[pos - 1] == '\n') ||
        (n == 2 && p[pos - 2] == '\r' && p[pos - 1] == '\n'))
      break; /* the blank line */
  }
  return pos;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static bool init;
  struct s3_url url = { 0 };
  struct s3_request rq = { 0 };
  struct s3_response rs;
  struct http_content_range cr;
  const char *text = (const char *) data + PREFIX;
  size_t text_len, body, body_len;
  uint8_t flags;
  char msg[1024];
  enum s3_outcome o;
  int err = 0;

  if (!init) {
    fuzz_quiet ();
    init = true;
  }
  if (size < PREFIX)
    return 0;
  text_len = size - PREFIX;
  flags = data[1];

  rq.purpose = data[0] % (S3_DELETE + 1);
  rq.method = flags & 1 ? "HEAD" : "GET";
  rq.has_range = flags & 2;
  rq.first = get_le (data + 3, 2);
  rq.last = rq.first + get_le (data + 5, 2);
  rq.if_match = flags & 4 ? "\"0123456789abcdef0123456789abcdef\"" : NULL;
  rq.size = get_le (data + 7, 4);
  rq.missing_ok = flags & 32;
  rq.fd = -1;
  rq.body_fd = -1;
  url.sign = flags & 8;

  s3_response_init (&rs);
  rs.rq = &rq;
  rs.anonymous = flags & 16;
  if (flags & 64)
    rs.cc = data[2];
  body = feed_headers (&rs, text, text_len);
  body_len = text_len - body;

  /* The body goes where write_cb would put it: an error body is kept
   * in part, a 2xx body fills the buffer or overflows it.
   */
  if (rs.status < 200 || rs.status > 299) {
    rs.err_len =
        body_len < HTTP_MAX_ERROR_BODY ? body_len : HTTP_MAX_ERROR_BODY;
    rs.err_total = body_len;
    if (rs.err_len > 0) {
      rs.err_body = malloc (rs.err_len);
      if (rs.err_body == NULL)
        fuzz_fail ("malloc");
      memcpy (rs.err_body, text + body, rs.err_len);
    }
  }
  else {
    rq.len = rq.purpose == S3_OPEN    ? 1
        : rq.purpose == S3_READ_RANGE ? rq.last - rq.first + 1
                                      : MAX_BODY;
    rq.buf = malloc (rq.len);
    if (rq.buf == NULL)
      fuzz_fail ("malloc");
    rs.got = body_len < rq.len ? body_len : rq.len;
    rs.overflow = body_len > rq.len;
    memcpy (rq.buf, text + body, rs.got);
  }
  if (rq.purpose == S3_SEND)
    rs.sent = rq.body_len;

  o = s3_check_response (&url, &rq, &rs, msg, sizeof msg, &err);
  FUZZ_CHECK (o == S3_OK || o == S3_RETRY || o == S3_FAIL);
  FUZZ_CHECK (memchr (msg, '\0', sizeof msg) != NULL);
  if (o != S3_OK)
    FUZZ_CHECK (msg[0] != '\0' && err != 0);
  else {
    FUZZ_CHECK ((rs.status >= 200 && rs.status <= 299) ||
                (rq.purpose == S3_OPEN && rs.status == 416));
    FUZZ_CHECK (rs.cc == CURLE_OK && !rs.overflow);
    if (rq.purpose == S3_READ_RANGE && rs.status == 206)
      FUZZ_CHECK (http_parse_content_range (rs.content_range.value, &cr) == 0 &&
                  cr.first == rq.first && cr.last == rq.last);
    if (rq.purpose == S3_OPEN || rq.purpose == S3_SEND)
      FUZZ_CHECK (rs.learned_etag[0] == '"');
  }
  s3_response_free (&rs);
  free (rq.buf);
  return 0;
}
