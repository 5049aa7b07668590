/* accel: tiny bounded extractors for credential service responses.
 *
 * The XML functions are xml.c's, under the tighter cap that credential
 * responses get.  The JSON reader is a real (if minimal) recursive descent over one
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
#include "xml.h"

/* JSON containers nested deeper than this are refused. */
#define JSON_MAX_DEPTH 16

/* Whether s[0..len) starts with the string prefix. */
static bool
starts_with (const char *s, size_t len, const char *prefix)
{
  size_t n = strlen (prefix);

  return len >= n && memcmp (s, prefix, n) == 0;
}

/* xml_find, under the cap of credential responses. */
int
creds_xml_find (const char *xml, size_t len, const char *name,
                const char **inner, size_t *inner_len)
{
  if (len > CREDS_PARSE_MAX) {
    errno = E2BIG;
    return -1;
  }
  return xml_find (xml, len, name, inner, inner_len);
}

/* xml_text, under the cap of credential responses. */
char *
creds_xml_text (const char *xml, size_t len, const char *name)
{
  if (len > CREDS_PARSE_MAX) {
    errno = E2BIG;
    return NULL;
  }
  return xml_text (xml, len, name);
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
  if (!xml_code_point_valid (cp))
    return 0;
  return xml_utf8_encode (cp, out);
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

/* Walk the whole top-level object, keeping the span of the first
 * value of key in *v, *v_len (*v = NULL if key is absent).
 */
static int
json_top_value (const char *json, size_t len, const char *key, const char **v,
                size_t *v_len)
{
  struct json_cursor c = { json, json + len };

  *v = NULL;
  *v_len = 0;
  if (len > CREDS_PARSE_MAX) {
    errno = E2BIG;
    return -1;
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
      const char *start;
      char *k = NULL;
      bool match;

      json_skip_ws (&c);
      if (json_string (&c, &k) == -1)
        goto bad;
      match = *v == NULL && strcmp (k, key) == 0;
      free (k);
      json_skip_ws (&c);
      if (c.p >= c.end || *c.p != ':')
        goto bad;
      c.p++;
      json_skip_ws (&c);
      start = c.p;
      if (json_skip_value (&c, 1) == -1)
        goto bad;
      if (match) {
        *v = start;
        *v_len = c.p - start;
      }
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
  return 0;

bad:
  errno = errno == ENOMEM ? ENOMEM : EINVAL;
  *v = NULL;
  return -1;
}

/* The value must be a string: decode it. */
char *
creds_json_string (const char *json, size_t len, const char *key)
{
  struct json_cursor c;
  const char *v;
  size_t v_len;
  char *found = NULL;

  errno = 0;
  if (json_top_value (json, len, key, &v, &v_len) == -1)
    return NULL;
  if (v == NULL) {
    errno = ENOENT;
    return NULL;
  }
  c = (struct json_cursor){ v, v + v_len };
  if (*v != '"' || json_string (&c, &found) == -1) {
    errno = errno == ENOMEM ? ENOMEM : EINVAL;
    return NULL;
  }
  return found;
}

/* Any value, as its raw text. */
int
creds_json_raw (const char *json, size_t len, const char *key,
                const char **value, size_t *value_len)
{
  errno = 0;
  if (json_top_value (json, len, key, value, value_len) == -1)
    return -1;
  if (*value == NULL) {
    errno = ENOENT;
    return -1;
  }
  return 0;
}

/* The first match's value must be a JSON number that is an integer:
 * its span, as creds_json_raw finds it, is only digits after an
 * optional '-'.
 */
int
creds_json_integer (const char *json, size_t len, const char *key,
                    long long *out)
{
  const char *p, *end;
  size_t v_len;
  long long v = 0;
  bool negative = false;
  int digits = 0;

  if (creds_json_raw (json, len, key, &p, &v_len) == -1)
    return -1;
  end = p + v_len;
  if (p < end && *p == '-') {
    negative = true;
    p++;
  }
  for (; p < end && *p >= '0' && *p <= '9'; p++) {
    if (++digits > 18) {
      errno = EDOM;
      return -1;
    }
    v = v * 10 + (*p - '0');
  }
  /* A fraction or exponent, another type, or no digits at all. */
  if (digits == 0 || p != end) {
    errno = EDOM;
    return -1;
  }
  *out = negative ? -v : v;
  return 0;
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
