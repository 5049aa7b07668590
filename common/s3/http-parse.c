/* accel: parsing of HTTP and S3 responses (see http-parse.h).
 *
 * Written like curl's lib/ parsers: walk the input with a pointer,
 * accept exactly the grammar and nothing else, and check every length
 * and every arithmetic step before using it.  Nothing here allocates,
 * so there is nothing to leak on the error paths.
 */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "http-parse.h"

/* Header values may carry optional whitespace (RFC 9110 5.6.3). */
static bool
is_ows (char c)
{
  return c == ' ' || c == '\t';
}

/* Step over optional whitespace. */
static const char *
skip_ows (const char *p)
{
  while (is_ows (*p))
    p++;
  return p;
}

/* Read 1*DIGIT at *p into *out, advancing *p.  Fails on no digits or
 * on a value that does not fit in 64 bits (rather than wrapping, which
 * would let a hostile server pass off a huge range as a small one).
 */
static int
parse_digits (const char **p, uint64_t *out)
{
  const char *s = *p;
  uint64_t v = 0;

  if (*s < '0' || *s > '9')
    return -1;
  while (*s >= '0' && *s <= '9') {
    unsigned d = *s - '0';

    if (v > (UINT64_MAX - d) / 10)
      return -1;
    v = v * 10 + d;
    s++;
  }
  *p = s;
  *out = v;
  return 0;
}

/* Only trailing whitespace may follow a complete value. */
static bool
at_end (const char *p)
{
  return *skip_ows (p) == '\0';
}

/* Content-Length and the like: a bare decimal, nothing else. */
int
http_parse_uint64 (const char *value, uint64_t *out)
{
  const char *p = skip_ows (value);

  if (parse_digits (&p, out) == -1 || !at_end (p))
    return -1;
  return 0;
}

/* "bytes" followed by exactly one space: the unit is case-insensitive
 * (RFC 9110 14.1) but nothing else is tolerated.
 */
static int
parse_bytes_unit (const char **p)
{
  const char *s = skip_ows (*p);

  if (strncasecmp (s, "bytes ", 6) != 0)
    return -1;
  *p = s + 6;
  return 0;
}

/* The Content-Range of a 206, checked in full before anything is
 * believed: a wrong range here would put the wrong bytes in the cache.
 */
int
http_parse_content_range (const char *value, struct http_content_range *out)
{
  const char *p = value;
  struct http_content_range r = { 0 };

  if (parse_bytes_unit (&p) == -1)
    return -1;
  if (parse_digits (&p, &r.first) == -1 || *p++ != '-')
    return -1;
  if (parse_digits (&p, &r.last) == -1 || *p++ != '/')
    return -1;
  if (*p == '*') {
    p++;
    r.complete_known = false;
  }
  else {
    if (parse_digits (&p, &r.complete) == -1)
      return -1;
    r.complete_known = true;
  }
  if (!at_end (p))
    return -1;

  /* RFC 9110 14.4: invalid unless first <= last < complete. */
  if (r.first > r.last)
    return -1;
  if (r.complete_known && r.last >= r.complete)
    return -1;

  *out = r;
  return 0;
}

/* The Content-Range of a 416: how big the object really is. */
int
http_parse_unsatisfied_range (const char *value, uint64_t *complete)
{
  const char *p = value;

  if (parse_bytes_unit (&p) == -1)
    return -1;
  if (*p++ != '*' || *p++ != '/')
    return -1;
  if (parse_digits (&p, complete) == -1 || !at_end (p))
    return -1;
  return 0;
}

/* etagc = %x21 / %x23-7E / obs-text (RFC 9110 8.8.3). */
static bool
is_etagc (unsigned char c)
{
  return c == 0x21 || (c >= 0x23 && c <= 0x7e) || c >= 0x80;
}

/* Keep the ETag byte for byte: If-Match must echo it exactly. */
int
http_parse_etag (const char *value, char out[HTTP_MAX_ETAG])
{
  const char *p = skip_ows (value);
  const char *start = p;
  size_t len;

  /* A weak tag can never satisfy If-Match: refuse it here, so that
   * the caller can say why rather than fail every read with 412.
   */
  if (*p++ != '"')
    return -1;
  while (is_etagc ((unsigned char) *p))
    p++;
  if (*p++ != '"' || !at_end (p))
    return -1;

  len = p - start;
  if (len >= HTTP_MAX_ETAG)
    return -1;
  memcpy (out, start, len);
  out[len] = '\0';
  return 0;
}

/* A version ID is opaque (AWS: up to 1024 URL-safe bytes; radosgw:
 * alphanumerics, '.', '_' and '-'), but it goes back in a signed query
 * string, so only printable ASCII without spaces is taken.  "null" is
 * S3's name for "no version": sending it would pin nothing.
 */
int
http_parse_version_id (const char *value, char out[HTTP_MAX_VERSION_ID])
{
  const char *p = skip_ows (value);
  size_t len = 0;

  out[0] = '\0';
  while (p[len] > ' ' && p[len] < 0x7f)
    len++;
  if (!at_end (p + len))
    return -1;
  if (len == 0 || (len == 4 && memcmp (p, "null", 4) == 0))
    return 0;
  if (len >= HTTP_MAX_VERSION_ID)
    return -1;
  memcpy (out, p, len);
  out[len] = '\0';
  return 1;
}

/* Append the UTF-8 encoding of code point cp to out[*n], unless it
 * does not fit in cap - 1 bytes (then *full is set).  Invalid code
 * points become '?'; control characters become a space so that the
 * result is safe to print on one line.
 */
static void
append_code_point (char *out, size_t cap, size_t *n, bool *full, uint32_t cp)
{
  unsigned char b[4];
  size_t len, i;

  if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    cp = '?';
  if (cp < 0x20 || cp == 0x7f)
    cp = ' ';

  if (cp < 0x80) {
    b[0] = cp;
    len = 1;
  }
  else if (cp < 0x800) {
    b[0] = 0xc0 | (cp >> 6);
    b[1] = 0x80 | (cp & 0x3f);
    len = 2;
  }
  else if (cp < 0x10000) {
    b[0] = 0xe0 | (cp >> 12);
    b[1] = 0x80 | ((cp >> 6) & 0x3f);
    b[2] = 0x80 | (cp & 0x3f);
    len = 3;
  }
  else {
    b[0] = 0xf0 | (cp >> 18);
    b[1] = 0x80 | ((cp >> 12) & 0x3f);
    b[2] = 0x80 | ((cp >> 6) & 0x3f);
    b[3] = 0x80 | (cp & 0x3f);
    len = 4;
  }

  if (*n + len > cap - 1) {
    *full = true;
    return;
  }
  for (i = 0; i < len; i++)
    out[(*n)++] = b[i];
}

/* Decode a numeric character reference body ("#123" or "#x7B", without
 * '&' and ';') of length len.  Returns the code point, or 0 if it is
 * not one (0 is never valid XML, so it doubles as the error value).
 */
static uint32_t
decode_char_ref (const char *s, size_t len)
{
  uint32_t cp = 0;
  bool hex;
  size_t i;

  if (len < 2 || s[0] != '#')
    return 0;
  hex = s[1] == 'x';
  i = hex ? 2 : 1;
  if (i >= len)
    return 0;
  for (; i < len; i++) {
    unsigned d;
    char c = s[i];

    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (hex && c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (hex && c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else
      return 0;
    cp = cp * (hex ? 16 : 10) + d;
    if (cp > 0x10ffff)
      return 0;
  }
  return cp;
}

/* The entity starting at s[0] == '&' within s[0..len): the code point
 * it stands for and its length including '&' and ';'.  Returns 0 if it
 * is not a well-formed entity (then the '&' is copied literally).
 */
static size_t
decode_entity (const char *s, size_t len, uint32_t *cp)
{
  static const struct {
    const char *name;
    char c;
  } named[] = {
    { "amp", '&' },  { "lt", '<' },    { "gt", '>' },
    { "quot", '"' }, { "apos", '\'' },
  };
  const char *semi;
  size_t n, i;

  /* The longest entity we decode is "&#x10FFFF;" (10 bytes). */
  semi = memchr (s, ';', len < 12 ? len : 12);
  if (semi == NULL)
    return 0;
  n = semi - (s + 1);
  for (i = 0; i < sizeof named / sizeof named[0]; i++) {
    if (strlen (named[i].name) == n && memcmp (s + 1, named[i].name, n) == 0) {
      *cp = (unsigned char) named[i].c;
      return n + 2;
    }
  }
  *cp = decode_char_ref (s + 1, n);
  return *cp ? n + 2 : 0;
}

/* Drop a UTF-8 sequence that truncation cut in half. */
static void
trim_partial_utf8 (char *out, size_t *n)
{
  size_t end = *n;

  while (end > 0 && ((unsigned char) out[end - 1] & 0xc0) == 0x80)
    end--;
  if (end > 0 && (unsigned char) out[end - 1] >= 0xc0)
    end--;
  *n = end;
}

/* Copy the text of the first <tag>...</tag> in body into out (cap
 * bytes), decoding entities.  Returns true if the element was found
 * complete; out is "" otherwise.
 */
static bool
extract_element (const char *body, size_t len, const char *tag, char *out,
                 size_t cap)
{
  char open[64], close[64];
  size_t tag_len = strlen (tag);
  const char *start, *end, *p;
  size_t n = 0;
  bool full = false;

  out[0] = '\0';
  if (tag_len + 4 > sizeof open)
    return false;
  open[0] = '<';
  memcpy (open + 1, tag, tag_len);
  open[tag_len + 1] = '>';
  close[0] = '<';
  close[1] = '/';
  memcpy (close + 2, tag, tag_len);
  close[tag_len + 2] = '>';

  start = memmem (body, len, open, tag_len + 2);
  if (start == NULL)
    return false;
  start += tag_len + 2;
  end = memmem (start, len - (start - body), close, tag_len + 3);
  if (end == NULL)
    return false; /* truncated body */

  for (p = start; p < end && !full;) {
    uint32_t cp;
    size_t used = 0;

    if (*p == '&')
      used = decode_entity (p, end - p, &cp);
    if (used > 0)
      append_code_point (out, cap, &n, &full, cp);
    else if ((unsigned char) *p < 0x80) {
      used = 1;
      append_code_point (out, cap, &n, &full, (unsigned char) *p);
    }
    else if (n + 1 > cap - 1)
      full = true;
    else {
      used = 1;
      out[n++] = *p; /* a byte of raw UTF-8: copy it as it is */
    }
    p += used;
  }
  if (full)
    trim_partial_utf8 (out, &n);
  out[n] = '\0';
  return true;
}

/* S3 explains errors in an XML body; we keep only what a message needs. */
void
http_parse_s3_error (const char *body, size_t len, struct http_s3_error *out)
{
  if (len > HTTP_MAX_ERROR_BODY)
    len = HTTP_MAX_ERROR_BODY;
  if (body == NULL)
    len = 0;

  out->code[0] = out->message[0] = out->region[0] = '\0';
  if (len == 0)
    return;
  extract_element (body, len, "Code", out->code, sizeof out->code);
  extract_element (body, len, "Message", out->message, sizeof out->message);
  if (!extract_element (body, len, "BucketRegion", out->region,
                        sizeof out->region) ||
      out->region[0] == '\0')
    extract_element (body, len, "Region", out->region, sizeof out->region);
}

/* The one mapping of HTTP status to errno, so that callers (and the
 * plugin's NBD errors) agree on what each failure means.
 */
int
http_status_errno (long status)
{
  if (status >= 200 && status <= 299)
    return 0;
  switch (status) {
  case 400:
    return EINVAL;
  case 401:
  case 403:
    return EACCES;
  case 404:
  case 410:
    return ENOENT;
  case 405:
  case 501:
    return ENOTSUP;
  case 408:
    return ETIMEDOUT;
  case 409:
    return EBUSY;
  case 412:
    return ESTALE;
  case 413:
    return EFBIG;
  case 414:
    return ENAMETOOLONG;
  case 416:
    return ERANGE;
  default:
    /* 3xx (we never follow redirects), 429, other 5xx, and anything
       * that is not an HTTP status at all.
       */
    return EIO;
  }
}

/* Statuses by which a server says "try again later". */
bool
http_status_retryable (long status)
{
  switch (status) {
  case 408: /* Request Timeout */
  case 429: /* Too Many Requests */
  case 500: /* InternalError */
  case 502: /* Bad Gateway */
  case 503: /* SlowDown, Service Unavailable */
  case 504: /* Gateway Timeout */
    return true;
  default:
    return false;
  }
}

/* Transfer failures that another attempt can cure: the network or the
 * server hiccupped, as opposed to a bad URL or certificate.
 */
bool
http_curl_retryable (int curl_code)
{
  switch (curl_code) {
  case CURLE_COULDNT_CONNECT:
  case CURLE_PARTIAL_FILE:
  case CURLE_OPERATION_TIMEDOUT:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
  /* A kept-alive connection on which a server sent more than an earlier
   * response's Content-Length: the next response starts with that
   * excess (libcurl: "Received HTTP/0.9").  A new connection cures it;
   * a bad scheme was refused at open.
   */
  case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_WEIRD_SERVER_REPLY:
    return true;
  default:
    return false;
  }
}

/* An errno for a failed transfer, for callers that inspect it. */
int
http_curl_errno (int curl_code)
{
  switch (curl_code) {
  case CURLE_OK:
    return 0;
  case CURLE_UNSUPPORTED_PROTOCOL:
    return EPROTONOSUPPORT;
  case CURLE_URL_MALFORMAT:
    return EINVAL;
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_COULDNT_RESOLVE_HOST:
    return EHOSTUNREACH;
  case CURLE_COULDNT_CONNECT:
    return ECONNREFUSED;
  case CURLE_OPERATION_TIMEDOUT:
    return ETIMEDOUT;
  case CURLE_GOT_NOTHING:
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
    return ECONNRESET;
  case CURLE_OUT_OF_MEMORY:
    return ENOMEM;
  default:
    return EIO;
  }
}

/* Reason phrases for the statuses that we name in messages. */
static const struct {
  long status;
  const char *text;
} status_texts[] = {
  { 200, "OK" },
  { 206, "Partial Content" },
  { 301, "Moved Permanently" },
  { 302, "Found" },
  { 304, "Not Modified" },
  { 307, "Temporary Redirect" },
  { 308, "Permanent Redirect" },
  { 400, "Bad Request" },
  { 401, "Unauthorized" },
  { 403, "Forbidden" },
  { 404, "Not Found" },
  { 405, "Method Not Allowed" },
  { 408, "Request Timeout" },
  { 409, "Conflict" },
  { 410, "Gone" },
  { 412, "Precondition Failed" },
  { 416, "Range Not Satisfiable" },
  { 429, "Too Many Requests" },
  { 500, "Internal Server Error" },
  { 501, "Not Implemented" },
  { 502, "Bad Gateway" },
  { 503, "Service Unavailable" },
  { 504, "Gateway Timeout" },
};

/* Messages name the status in words, as S3's documentation does. */
const char *
http_status_text (long status)
{
  size_t i;

  for (i = 0; i < sizeof status_texts / sizeof status_texts[0]; i++)
    if (status_texts[i].status == status)
      return status_texts[i].text;
  return "";
}
