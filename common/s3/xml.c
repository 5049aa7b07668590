/* accel: a tiny bounded extractor for AWS's XML (see xml.h).
 *
 * The scanner walks from one '<' to the next, stepping over comments,
 * CDATA sections, processing instructions and declarations, and stops
 * at the first start tag with the wanted name; it is enough for the
 * flat documents of STS and S3 and does not pretend to be a general
 * XML parser.  Every loop is bounded by the input length, which is
 * capped at XML_MAX_DOCUMENT; decoded output is never longer than its
 * input, so buffers are sized from the input.
 */

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xml.h"

/* The caller has rejected surrogates and values above U+10FFFF. */
size_t
xml_utf8_encode (uint32_t cp, char *out)
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

/* NUL would end the C string early; surrogates are not characters. */
bool
xml_code_point_valid (uint32_t cp)
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
xml_find (const char *xml, size_t len, const char *name, const char **inner,
          size_t *inner_len)
{
  /* What may hide something that looks like a start tag, and its end. */
  static const struct {
    const char *open, *close;
  } skips[] = {
    { "<!--", "-->" },
    { "<![CDATA[", "]]>" },
    { "<?", "?>" },
    { "<!", ">" },
  };
  const char *p = xml, *end = xml + len;
  size_t nlen = strlen (name);

  if (len > XML_MAX_DOCUMENT) {
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
    size_t i;

    for (i = 0; i < sizeof skips / sizeof skips[0] && !skip_to; i++)
      if (rest >= strlen (skips[i].open) &&
          memcmp (p, skips[i].open, strlen (skips[i].open)) == 0)
        skip_to = skips[i].close;
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
  if (!xml_code_point_valid (cp))
    return 0;
  *outlen = xml_utf8_encode (cp, out);
  return n;
}

/* Decode in place into a buffer the size of the raw content. */
char *
xml_text (const char *xml, size_t len, const char *name)
{
  const char *inner;
  size_t inner_len, i, j = 0;
  char *out;

  if (xml_find (xml, len, name, &inner, &inner_len) == -1)
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
