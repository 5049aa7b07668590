/* accel: tiny bounded extractors for credential service responses.
 *
 * The XML scanner walks from one '<' to the next, stepping over
 * comments, CDATA sections, processing instructions and declarations, and
 * stops at the first start tag with the wanted name; it is enough for
 * STS's flat documents and does not pretend to be a general XML parser.
 * The JSON reader is a real (if minimal) recursive descent over one
 * object, so that a key is only matched at the top level and a truncated
 * or garbled document is refused as a whole.  Every loop is bounded by
 * the input length, which is capped at CREDS_PARSE_MAX; decoded output is
 * never longer than its input, so buffers are sized from the input.
 */

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "creds-parse.h"

/* JSON containers nested deeper than this are refused. */
#define JSON_MAX_DEPTH 16

/* Whether s[0..len) starts with the string prefix. */
static bool
starts_with (const char *s, size_t len, const char *prefix)
{
  size_t n = strlen (prefix);

  return len >= n && memcmp (s, prefix, n) == 0;
}

/* Encode a Unicode code point as UTF-8; returns the number of bytes.
 * The caller has rejected surrogates and values above U+10FFFF.
 */
static size_t
utf8_encode (uint32_t cp, char *out)
{
  if (cp < 0x80) {
    out[0] = cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = 0xc0 | (cp >> 6);
    out[1] = 0x80 | (cp & 0x3f);
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = 0xe0 | (cp >> 12);
    out[1] = 0x80 | ((cp >> 6) & 0x3f);
    out[2] = 0x80 | (cp & 0x3f);
    return 3;
  }
  out[0] = 0xf0 | (cp >> 18);
  out[1] = 0x80 | ((cp >> 12) & 0x3f);
  out[2] = 0x80 | ((cp >> 6) & 0x3f);
  out[3] = 0x80 | (cp & 0x3f);
  return 4;
}

/* A code point we are willing to put in a C string. */
static bool
valid_code_point (uint32_t cp)
{
  return cp > 0 && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff);
}

/* Whether the character after "<name" ends the name, so that looking
 * for <AccessKeyId> does not match <AccessKeyIdX>.
 */
static bool
xml_name_ends (char c)
{
  return c == '>' || c == '/' || isspace ((unsigned char) c);
}

/* Find the matching "</name>" (blanks allowed before '>') from p. */
static const char *
xml_find_close (const char *p, const char *end, const char *name, size_t nlen,
                const char **after)
{
  while (p < end) {
    const char *q = memmem (p, end - p, "</", 2);
    const char *r;

    if (q == NULL)
      return NULL;
    r = q + 2;
    if ((size_t) (end - r) > nlen && memcmp (r, name, nlen) == 0) {
      r += nlen;
      while (r < end && isspace ((unsigned char) *r))
        r++;
      if (r < end && *r == '>') {
        *after = r + 1;
        return q;
      }
    }
    p = q + 2;
  }
  return NULL;
}

/* Skip whatever cannot contain a real start tag, then match names
 * exactly.
 */
int
creds_xml_find (const char *xml, size_t len, const char *name,
                const char **inner, size_t *inner_len)
{
  const char *p = xml, *end = xml + len;
  size_t nlen = strlen (name);

  if (len > CREDS_PARSE_MAX) {
    errno = E2BIG;
    return -1;
  }
  if (nlen == 0) {
    errno = EINVAL;
    return -1;
  }

  while (p < end && (p = memchr (p, '<', end - p)) != NULL) {
    size_t rest = end - p;
    const char *skip_to = NULL, *q;

    if (starts_with (p, rest, "<!--"))
      skip_to = "-->";
    else if (starts_with (p, rest, "<![CDATA["))
      skip_to = "]]>";
    else if (starts_with (p, rest, "<?"))
      skip_to = "?>";
    else if (starts_with (p, rest, "<!"))
      skip_to = ">";
    if (skip_to) {
      q = memmem (p + 2, rest - 2, skip_to, strlen (skip_to));
      if (q == NULL) {
        errno = EINVAL;
        return -1;
      }
      p = q + strlen (skip_to);
      continue;
    }

    if (rest > nlen && memcmp (p + 1, name, nlen) == 0 &&
        (rest == nlen + 1 || xml_name_ends (p[1 + nlen]))) {
      const char *gt = memchr (p + 1 + nlen, '>', end - (p + 1 + nlen));
      const char *close, *after;

      if (gt == NULL) { /* also "<name" at the very end */
        errno = EINVAL;
        return -1;
      }
      if (gt[-1] == '/') { /* <name/> */
        *inner = gt;
        *inner_len = 0;
        return 0;
      }
      close = xml_find_close (gt + 1, end, name, nlen, &after);
      if (close == NULL) {
        errno = EINVAL;
        return -1;
      }
      *inner = gt + 1;
      *inner_len = close - (gt + 1);
      return 0;
    }
    p++;
  }
  errno = ENOENT;
  return -1;
}

/* Decode one entity starting at s[0] == '&' into out; returns the
 * number of input bytes consumed, or 0 if it is malformed.
 */
static size_t
xml_decode_entity (const char *s, size_t len, char *out, size_t *outlen)
{
  static const struct {
    const char *name;
    char c;
  } named[] = {
    { "&amp;", '&' },  { "&lt;", '<' },    { "&gt;", '>' },
    { "&quot;", '"' }, { "&apos;", '\'' },
  };
  const char *semi;
  size_t i, n;
  uint32_t cp = 0;

  /* The longest reference we accept is "&#x0010FFFF;". */
  semi = memchr (s, ';', len < 12 ? len : 12);
  if (semi == NULL)
    return 0;
  n = semi - s + 1;
  for (i = 0; i < sizeof named / sizeof named[0]; ++i) {
    if (n == strlen (named[i].name) && memcmp (s, named[i].name, n) == 0) {
      out[0] = named[i].c;
      *outlen = 1;
      return n;
    }
  }
  if (n < 4 || s[1] != '#')
    return 0;
  if (s[2] == 'x' || s[2] == 'X') {
    if (n < 5)
      return 0;
    for (i = 3; i < n - 1; ++i) {
      if (!isxdigit ((unsigned char) s[i]))
        return 0;
      cp = cp * 16 +
          (isdigit ((unsigned char) s[i])
               ? s[i] - '0'
               : (tolower ((unsigned char) s[i]) - 'a' + 10));
    }
  }
  else {
    for (i = 2; i < n - 1; ++i) {
      if (!isdigit ((unsigned char) s[i]))
        return 0;
      cp = cp * 10 + (s[i] - '0');
    }
  }
  /* At most 8 hex or 9 decimal digits, so cp did not overflow. */
  if (!valid_code_point (cp))
    return 0;
  *outlen = utf8_encode (cp, out);
  return n;
}

/* Decode in place into a buffer the size of the raw content. */
char *
creds_xml_text (const char *xml, size_t len, const char *name)
{
  const char *inner;
  size_t inner_len, i, j = 0;
  char *out;

  if (creds_xml_find (xml, len, name, &inner, &inner_len) == -1)
    return NULL;
  out = malloc (inner_len + 1);
  if (out == NULL)
    return NULL;
  for (i = 0; i < inner_len;) {
    if (inner[i] == '&') {
      size_t outlen, n;

      n = xml_decode_entity (&inner[i], inner_len - i, &out[j], &outlen);
      if (n == 0)
        goto bad;
      i += n;
      j += outlen;
    }
    else if (inner[i] == '<' || inner[i] == '\0')
      goto bad;
    else
      out[j++] = inner[i++];
  }
  out[j] = '\0';
  return out;

bad:
  free (out);
  errno = EINVAL;
  return NULL;
}

/* A position in the JSON input. */
struct json_cursor {
  const char *p, *end;
};

/* Skip JSON whitespace. */
static void
json_skip_ws (struct json_cursor *c)
{
  while (c->p < c->end &&
         (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
    c->p++;
}

/* Read the 4 hex digits of a \u escape. */
static int
json_hex4 (struct json_cursor *c, uint32_t *v)
{
  int i;

  if (c->end - c->p < 4)
    return -1;
  *v = 0;
  for (i = 0; i < 4; ++i) {
    char h = c->p[i];

    if (!isxdigit ((unsigned char) h))
      return -1;
    *v = *v * 16 +
        (isdigit ((unsigned char) h)
             ? h - '0'
             : (tolower ((unsigned char) h) - 'a' + 10));
  }
  c->p += 4;
  return 0;
}

/* Decode one escape after the backslash into out; returns the number of
 * output bytes, or 0 if it is malformed.
 */
static size_t
json_escape (struct json_cursor *c, char *out)
{
  /* Pairs of escape letter and the character it stands for. */
  static const char simple[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
  uint32_t cp, lo;
  char e;

  if (c->p >= c->end)
    return 0;
  e = *c->p++;
  if (e != 'u') {
    const char *q = e ? strchr (simple, e) : NULL;

    /* q must point at an escape letter, not at a replacement. */
    if (q == NULL || (q - simple) % 2 != 0)
      return 0;
    out[0] = q[1];
    return 1;
  }
  if (json_hex4 (c, &cp) == -1)
    return 0;
  if (cp >= 0xd800 && cp <= 0xdbff) {
    /* A high surrogate must be followed by an escaped low one. */
    if (c->end - c->p < 2 || c->p[0] != '\\' || c->p[1] != 'u')
      return 0;
    c->p += 2;
    if (json_hex4 (c, &lo) == -1 || lo < 0xdc00 || lo > 0xdfff)
      return 0;
    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
  }
  if (!valid_code_point (cp))
    return 0;
  return utf8_encode (cp, out);
}

/* Read the string at c->p (which is '"').  If out is NULL the string is
 * only checked and skipped.
 */
static int
json_string (struct json_cursor *c, char **out)
{
  char *buf = NULL;
  size_t j = 0;

  if (c->p >= c->end || *c->p != '"')
    return -1;
  c->p++;
  if (out) {
    /* Decoding never makes a string longer than its source. */
    buf = malloc (c->end - c->p + 1);
    if (buf == NULL)
      return -1;
  }
  while (c->p < c->end) {
    unsigned char ch = *c->p;

    if (ch == '"') {
      c->p++;
      if (out) {
        buf[j] = '\0';
        *out = buf;
      }
      return 0;
    }
    if (ch < 0x20)
      break;
    if (ch == '\\') {
      char tmp[4];
      size_t n;

      c->p++;
      n = json_escape (c, tmp);
      if (n == 0)
        break;
      if (buf)
        memcpy (&buf[j], tmp, n);
      j += n;
    }
    else {
      if (buf)
        buf[j] = ch;
      j++;
      c->p++;
    }
  }
  free (buf);
  errno = EINVAL;
  return -1;
}

/* Skip a literal (true, false, null) or a number. */
static int
json_skip_scalar (struct json_cursor *c)
{
  static const char *const literals[] = { "true", "false", "null" };
  size_t i, n = 0;

  for (i = 0; i < sizeof literals / sizeof literals[0]; ++i) {
    if (starts_with (c->p, c->end - c->p, literals[i])) {
      c->p += strlen (literals[i]);
      return 0;
    }
  }
  while (c->p < c->end && strchr ("+-.0123456789eE", *c->p) && *c->p) {
    c->p++;
    n++;
  }
  return n > 0 ? 0 : -1;
}

/* Skip any JSON value, descending at most JSON_MAX_DEPTH levels. */
static int
json_skip_value (struct json_cursor *c, unsigned depth)
{
  char close;

  json_skip_ws (c);
  if (c->p >= c->end)
    return -1;
  if (*c->p == '"')
    return json_string (c, NULL);
  if (*c->p != '{' && *c->p != '[')
    return json_skip_scalar (c);

  if (depth >= JSON_MAX_DEPTH)
    return -1;
  close = *c->p == '{' ? '}' : ']';
  c->p++;
  json_skip_ws (c);
  if (c->p < c->end && *c->p == close) {
    c->p++;
    return 0;
  }
  for (;;) {
    if (close == '}') {
      json_skip_ws (c);
      if (json_string (c, NULL) == -1)
        return -1;
      json_skip_ws (c);
      if (c->p >= c->end || *c->p != ':')
        return -1;
      c->p++;
    }
    if (json_skip_value (c, depth + 1) == -1)
      return -1;
    json_skip_ws (c);
    if (c->p >= c->end)
      return -1;
    if (*c->p == close) {
      c->p++;
      return 0;
    }
    if (*c->p != ',')
      return -1;
    c->p++;
  }
}

/* Walk the whole top-level object, keeping the first match. */
char *
creds_json_string (const char *json, size_t len, const char *key)
{
  struct json_cursor c = { json, json + len };
  char *found = NULL;
  int saved_errno;

  errno = 0;
  if (len > CREDS_PARSE_MAX) {
    errno = E2BIG;
    return NULL;
  }
  json_skip_ws (&c);
  if (c.p >= c.end || *c.p != '{')
    goto bad;
  c.p++;
  json_skip_ws (&c);
  if (c.p < c.end && *c.p == '}')
    c.p++;
  else {
    for (;;) {
      char *k = NULL;
      bool match;

      json_skip_ws (&c);
      if (json_string (&c, &k) == -1)
        goto bad;
      match = found == NULL && strcmp (k, key) == 0;
      free (k);
      json_skip_ws (&c);
      if (c.p >= c.end || *c.p != ':')
        goto bad;
      c.p++;
      json_skip_ws (&c);
      if (match) {
        if (c.p >= c.end || *c.p != '"' || json_string (&c, &found) == -1)
          goto bad;
      }
      else if (json_skip_value (&c, 1) == -1)
        goto bad;
      json_skip_ws (&c);
      if (c.p >= c.end)
        goto bad;
      if (*c.p == '}') {
        c.p++;
        break;
      }
      if (*c.p != ',')
        goto bad;
      c.p++;
    }
  }
  json_skip_ws (&c);
  if (c.p != c.end)
    goto bad;
  if (found == NULL)
    errno = ENOENT;
  return found;

bad:
  saved_errno = errno == ENOMEM ? ENOMEM : EINVAL;
  free (found);
  errno = saved_errno;
  return NULL;
}

/* Read exactly n decimal digits. */
static int
time_digits (const char **s, int n, int *v)
{
  int i, r = 0;

  for (i = 0; i < n; ++i) {
    if (!isdigit ((unsigned char) (*s)[i]))
      return -1;
    r = r * 10 + ((*s)[i] - '0');
  }
  *s += n;
  *v = r;
  return 0;
}

/* Read one expected separator character. */
static int
time_sep (const char **s, const char *allowed)
{
  if (**s == '\0' || strchr (allowed, **s) == NULL)
    return -1;
  (*s)++;
  return 0;
}

/* Strict parsing by hand, then timegm: no locale, no time zone, no
 * gmtime.
 */
int
creds_parse_time (const char *s, time_t *t)
{
  static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
  int year, mon, day, hour, min, sec, oh = 0, om = 0, sign = 0, dim;
  struct tm tm = { 0 };
  time_t r;

  if (time_digits (&s, 4, &year) == -1 || time_sep (&s, "-") == -1 ||
      time_digits (&s, 2, &mon) == -1 || time_sep (&s, "-") == -1 ||
      time_digits (&s, 2, &day) == -1 || time_sep (&s, "Tt ") == -1 ||
      time_digits (&s, 2, &hour) == -1 || time_sep (&s, ":") == -1 ||
      time_digits (&s, 2, &min) == -1 || time_sep (&s, ":") == -1 ||
      time_digits (&s, 2, &sec) == -1)
    goto bad;
  if (*s == '.') { /* fraction of a second: ignored */
    int n = 0;

    for (s++; isdigit ((unsigned char) *s) && n < 9; s++)
      n++;
    if (n == 0)
      goto bad;
  }
  if (*s == 'Z' || *s == 'z')
    s++;
  else if (*s == '+' || *s == '-') {
    sign = *s == '+' ? 1 : -1;
    s++;
    if (time_digits (&s, 2, &oh) == -1)
      goto bad;
    if (*s == ':')
      s++;
    if (time_digits (&s, 2, &om) == -1 || oh > 23 || om > 59)
      goto bad;
  }
  else
    goto bad;
  if (*s != '\0')
    goto bad;

  if (year < 1970 || mon < 1 || mon > 12 || hour > 23 || min > 59 || sec > 60)
    goto bad;
  dim = mdays[mon - 1];
  if (mon == 2 && year % 4 == 0 && (year % 100 != 0 || year % 400 == 0))
    dim = 29;
  if (day < 1 || day > dim)
    goto bad;

  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  r = timegm (&tm);
  if (r == (time_t) -1)
    goto bad;
  *t = r - sign * (oh * 3600 + om * 60);
  return 0;

bad:
  errno = EINVAL;
  return -1;
}
