/* accel: object URLs (see s3-url.h).
 *
 * Three shapes of request URL come out of here:
 *
 *   s3://B/K with endpoint=E   E/B/K                       (path-style)
 *                              (E may end in a path: E/PATH/B/K)
 *   s3://B/K on AWS            https://B.s3.R.amazonaws.com/K
 *   s3://B.DOTTED/K on AWS     https://s3.R.amazonaws.com/B.DOTTED/K
 *   http(s)://...              as given, minus any #fragment
 *
 * A bucket with dots gets path-style on AWS because the wildcard TLS
 * certificate *.s3.R.amazonaws.com does not cover "a.b.s3...".
 */

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "report.h"
#include "s3-url.h"
#include "sigv4.h"

/* asprintf that leaves no undefined pointer behind on failure. */
static char *
str_printf (const char *fs, ...) __attribute__ ((format (printf, 1, 2)));

static char *
str_printf (const char *fs, ...)
{
  va_list args;
  char *r;
  int n;

  va_start (args, fs);
  n = vasprintf (&r, fs, args);
  va_end (args);
  return n == -1 ? NULL : r;
}

/* Free the strings inside u; safe on a zeroed or half-built u. */
void
s3_url_free (struct s3_url *u)
{
  free (u->bucket);
  free (u->key);
  free (u->url);
  free (u->host);
  free (u->path);
  free (u->name);
  free (u->identity);
  memset (u, 0, sizeof *u);
}

/* Bucket and region names allow only lowercase letters and digits
 * (plus a few separators).
 */
static bool
is_lower_alnum (char c)
{
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* "1.2.3.4": S3 forbids bucket names formatted as IPv4 addresses. */
static bool
looks_like_ipv4 (const char *s)
{
  unsigned dots = 0;
  bool digit = false;

  for (; *s; s++) {
    if (*s >= '0' && *s <= '9')
      digit = true;
    else if (*s == '.' && digit) {
      dots++;
      digit = false;
    }
    else
      return false;
  }
  return dots == 3 && digit;
}

/* The rules for general purpose buckets.  NB: reserved suffixes such
 * as "-s3alias" are not refused, because access point aliases carry
 * them and are used wherever a bucket name is.
 */
bool
s3_bucket_name_valid (const char *bucket)
{
  size_t len = strlen (bucket), i;

  if (len < 3 || len > 63)
    return false;
  if (!is_lower_alnum (bucket[0]) || !is_lower_alnum (bucket[len - 1]))
    return false;
  for (i = 0; i < len; i++) {
    char c = bucket[i];

    if (!is_lower_alnum (c) && c != '.' && c != '-')
      return false;
    if (c == '.' && bucket[i + 1] == '.')
      return false;
  }
  return !looks_like_ipv4 (bucket);
}

/* Regions end up in host names and in the signature's scope. */
bool
s3_region_valid (const char *region)
{
  size_t len = strlen (region), i;

  if (len < 1 || len > S3_MAX_REGION)
    return false;
  for (i = 0; i < len; i++)
    if (!is_lower_alnum (region[i]) && region[i] != '-')
      return false;
  return true;
}

/* A copy of s that is safe to print on one line: control characters
 * (which S3 allows in keys) become %XX.
 */
static char *
printable_copy (const char *s)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t len = strlen (s), i, n = 0;
  char *r;

  r = malloc (3 * len + 1);
  if (r == NULL)
    return NULL;
  for (i = 0; i < len; i++) {
    unsigned char c = s[i];

    if (c < 0x20 || c == 0x7f) {
      r[n++] = '%';
      r[n++] = hex[c >> 4];
      r[n++] = hex[c & 15];
    }
    else
      r[n++] = c;
  }
  r[n] = '\0';
  return r;
}

/* Length of the "http://" or "https://" prefix of s, or 0. */
static size_t
http_scheme_len (const char *s)
{
  if (strncasecmp (s, "http://", 7) == 0)
    return 7;
  if (strncasecmp (s, "https://", 8) == 0)
    return 8;
  return 0;
}

/* URLs we pass to libcurl must already be encoded: refusing spaces and
 * control characters here gives a clear message instead of a request
 * to somewhere else.
 */
static bool
is_url_char (unsigned char c)
{
  return c > 0x20 && c < 0x7f;
}

/* Check the authority (host[:port]) of an http(s) URL, which is
 * s[0..len).  No user:password@ (it would end up in messages), and
 * only characters that can appear in a host name, IP literal or port.
 */
static bool
authority_valid (const char *s, size_t len)
{
  size_t i;

  if (len == 0)
    return false;
  for (i = 0; i < len; i++) {
    char c = s[i];

    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' ||
          c == ':' || c == '[' || c == ']'))
      return false;
  }
  return true;
}

/* Is s an endpoint's path prefix we can send and sign unchanged?
 * "/SEGMENT..." of unreserved characters, with no empty, "." or ".."
 * segment: a proxy in front of the store might normalize those, and
 * then the path it forwards would not be the path we signed.
 */
static bool
prefix_valid (const char *s, size_t len)
{
  size_t i, seg = 0;

  if (len == 0)
    return true;
  if (s[0] != '/')
    return false;
  for (i = 1; i <= len; i++) {
    char c = i < len ? s[i] : '/';

    if (c == '/') {
      seg = i - 1 - seg; /* length of the segment just ended */
      if (seg == 0 || (seg == 1 && s[i - 1] == '.') ||
          (seg == 2 && s[i - 1] == '.' && s[i - 2] == '.'))
        return false;
      seg = i;
      continue;
    }
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' ||
          c == '~'))
      return false;
  }
  return true;
}

/* endpoint= : "http[s]://AUTHORITY[/PREFIX]" with at most a trailing
 * '/'.  Sets *base to "http[s]://AUTHORITY", *authority to its
 * host[:port] and *prefix to "/PREFIX" or "".  A prefix is for a store
 * (or a site cache in front of it) that serves S3 under a path, as the
 * AWS SDKs allow: requests go to PREFIX/BUCKET/KEY, signed as such.
 */
static int
parse_endpoint (const char *endpoint, char **base, char **authority,
                char **prefix)
{
  size_t scheme = http_scheme_len (endpoint), len = strlen (endpoint);
  size_t alen;

  /* Not even a bad endpoint is printed if it may hold a password. */
  if (strchr (endpoint, '@')) {
    report_error ("endpoint: must not contain a user name or password");
    errno = EINVAL;
    return -1;
  }
  if (scheme == 0) {
    report_error ("endpoint %s: must start with http:// or https://", endpoint);
    errno = EINVAL;
    return -1;
  }
  if (len > scheme && endpoint[len - 1] == '/')
    len--;
  alen = strcspn (endpoint + scheme, "/");
  if (alen > len - scheme)
    alen = len - scheme;
  if (!authority_valid (endpoint + scheme, alen) ||
      !prefix_valid (endpoint + scheme + alen, len - scheme - alen)) {
    report_error ("endpoint %s: expected http[s]://HOST[:PORT][/PATH] with "
                  "no user name or query, the path made of letters, digits "
                  "and -._~ with no empty, . or .. segments",
                  endpoint);
    errno = EINVAL;
    return -1;
  }
  *base = strndup (endpoint, scheme + alen);
  *authority = strndup (endpoint + scheme, alen);
  *prefix = strndup (endpoint + scheme + alen, len - scheme - alen);
  if (*base == NULL || *authority == NULL || *prefix == NULL) {
    report_error ("strndup: %m");
    free (*base);
    free (*authority);
    free (*prefix);
    return -1;
  }
  return 0;
}

/* s3://BUCKET/KEY. */
static int
parse_s3 (const char *url, const char *endpoint, const char *region,
          struct s3_url *u)
{
  CLEANUP_FREE char *base = NULL, *prefix = NULL;
  CLEANUP_FREE char *enc_path = NULL;
  CLEANUP_FREE char *printable_key = NULL;
  const char *b = url + 5, *slash;
  const char *domain;

  slash = strchr (b, '/');
  if (slash == NULL || slash == b || slash[1] == '\0') {
    report_error ("%s: expected s3://BUCKET/KEY", url);
    goto einval;
  }
  u->sign = true;
  u->bucket = strndup (b, slash - b);
  u->key = strdup (slash + 1);
  if (u->bucket == NULL || u->key == NULL)
    goto enomem;
  if (!s3_bucket_name_valid (u->bucket)) {
    report_error ("%s: invalid bucket name \"%s\" (S3 bucket names are 3-63 "
                  "lowercase letters, digits, dots and hyphens)",
                  url, u->bucket);
    goto einval;
  }
  if (strlen (u->key) > S3_MAX_KEY) {
    report_error ("s3://%s/: key is %zu bytes long, more than S3 allows (%d)",
                  u->bucket, strlen (u->key), S3_MAX_KEY);
    goto einval;
  }
  if (region == NULL || !s3_region_valid (region)) {
    report_error ("region \"%s\": invalid region name (expected e.g. %s)",
                  region ? region : "", S3_DEFAULT_REGION);
    goto einval;
  }

  if (endpoint) {
    if (parse_endpoint (endpoint, &base, &u->host, &prefix) == -1)
      return -1;
    u->path = str_printf ("%s/%s/%s", prefix, u->bucket, u->key);
  }
  else {
    /* China regions live under their own domain. */
    domain =
        strncmp (region, "cn-", 3) == 0 ? "amazonaws.com.cn" : "amazonaws.com";
    if (strchr (u->bucket, '.')) {
      u->host = str_printf ("s3.%s.%s", region, domain);
      u->path = str_printf ("/%s/%s", u->bucket, u->key);
    }
    else {
      u->host = str_printf ("%s.s3.%s.%s", u->bucket, region, domain);
      u->path = str_printf ("/%s", u->key);
    }
    if (u->host)
      base = str_printf ("https://%s", u->host);
    if (u->host == NULL || base == NULL)
      goto enomem;
  }
  if (u->path == NULL)
    goto enomem;

  enc_path = sigv4_uri_encode (u->path, false);
  if (enc_path == NULL)
    return -1;
  u->url = str_printf ("%s%s", base, enc_path);
  if (u->url == NULL)
    goto enomem;
  printable_key = printable_copy (u->key);
  if (printable_key == NULL)
    goto enomem;
  u->name = str_printf ("s3://%s/%s", u->bucket, printable_key);
  if (u->name == NULL)
    goto enomem;
  /* On AWS a bucket name is global, so the region is not part of the
   * identity; elsewhere the endpoint is.
   */
  if (endpoint)
    u->identity = strdup (u->url);
  else {
    CLEANUP_FREE char *enc_key = sigv4_uri_encode (u->key, false);

    if (enc_key == NULL)
      return -1;
    u->identity = str_printf ("s3://%s/%s", u->bucket, enc_key);
  }
  if (u->identity == NULL)
    goto enomem;
  return 0;

enomem:
  report_error ("%s: out of memory", url);
  errno = ENOMEM;
  return -1;
einval:
  errno = EINVAL;
  return -1;
}

/* http://... or https://...: used as given, never signed. */
static int
parse_http (const char *url, struct s3_url *u)
{
  size_t scheme = http_scheme_len (url), i, auth_len;
  const char *query, *hash;
  size_t len;

  for (i = 0; url[i]; i++) {
    if (!is_url_char (url[i])) {
      report_error ("URL contains a space or control character at byte %zu "
                    "(URLs must be %%-encoded)",
                    i);
      errno = EINVAL;
      return -1;
    }
  }
  auth_len = strcspn (url + scheme, "/?#");
  if (!authority_valid (url + scheme, auth_len)) {
    /* Do not print the URL: a user:password@ part would be a secret. */
    report_error ("URL has an invalid host part (expected http[s]://HOST"
                  "[:PORT]/PATH, with no user name or password)");
    errno = EINVAL;
    return -1;
  }

  /* The fragment is never sent; the query (a presigned URL's
   * signature) is sent but never shown.
   */
  hash = strchr (url, '#');
  len = hash ? (size_t) (hash - url) : strlen (url);
  query = memchr (url, '?', len);
  u->sign = false;
  u->presigned = query != NULL;
  u->url = strndup (url, len);
  u->name = strndup (url, query ? (size_t) (query - url) : len);
  u->identity = u->name ? strdup (u->name) : NULL;
  if (u->url == NULL || u->name == NULL || u->identity == NULL) {
    report_error ("strndup: %m");
    return -1;
  }
  return 0;
}

/* Derived from obj rather than parsed again, so that the endpoint,
 * addressing style and host are the object's.  NB: obj->url is the
 * base followed by sigv4_uri_encode (obj->path), which gives the base.
 */
int
s3_url_bucket (const struct s3_url *obj, struct s3_url *out)
{
  CLEANUP_FREE char *enc_obj = NULL, *enc_bucket = NULL;
  struct s3_url u = { 0 };
  size_t klen, plen, base_len;

  if (!obj->sign || obj->key == NULL || obj->path == NULL) {
    report_error ("%s: not an s3:// URL", obj->name);
    errno = EINVAL;
    return -1;
  }
  klen = strlen (obj->key);
  plen = strlen (obj->path);
  enc_obj = sigv4_uri_encode (obj->path, false);
  if (enc_obj == NULL)
    return -1;
  if (plen <= klen || strcmp (obj->path + plen - klen, obj->key) != 0 ||
      strlen (obj->url) < strlen (enc_obj)) {
    report_error ("%s: cannot derive the bucket's URL", obj->name);
    errno = EINVAL;
    return -1;
  }
  base_len = strlen (obj->url) - strlen (enc_obj);

  /* "/bucket/" loses its slash, "/" (virtual-hosted) keeps it. */
  plen -= klen;
  if (plen > 1)
    plen--;
  u.sign = true;
  u.path = strndup (obj->path, plen);
  u.bucket = strdup (obj->bucket);
  u.key = strdup (obj->key);
  u.host = strdup (obj->host);
  if (u.path == NULL || u.bucket == NULL || u.key == NULL || u.host == NULL)
    goto enomem;
  enc_bucket = sigv4_uri_encode (u.path, false);
  if (enc_bucket == NULL)
    goto err;
  u.url = str_printf ("%.*s%s", (int) base_len, obj->url, enc_bucket);
  u.name = str_printf ("s3://%s/", obj->bucket);
  u.identity = u.url ? strdup (u.url) : NULL;
  if (u.url == NULL || u.name == NULL || u.identity == NULL)
    goto enomem;
  *out = u;
  return 0;

enomem:
  report_error ("%s: out of memory", obj->name);
  errno = ENOMEM;
err:
  s3_url_free (&u);
  return -1;
}

/* Show at most a plausible scheme: whatever else was passed might be
 * a secret pasted in the wrong place.
 */
static void
report_unsupported (const char *url)
{
  size_t n = strspn (url,
                     "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789+.-");

  if (n > 0 && n <= 10 && strncmp (url + n, "://", 3) == 0)
    report_error ("unsupported URL scheme \"%.*s\": expected s3://BUCKET/KEY, "
                  "http:// or https://",
                  (int) n, url);
  else
    report_error ("not a URL: expected s3://BUCKET/KEY, http:// or https://");
}

/* Everything about an object URL is decided here, once, at open. */
int
s3_url_parse (const char *url, const char *endpoint, const char *region,
              struct s3_url *out)
{
  struct s3_url u = { 0 };
  int r;

  if (strlen (url) > S3_MAX_URL) {
    report_error ("URL is longer than %d bytes", S3_MAX_URL);
    errno = ENAMETOOLONG;
    return -1;
  }
  if (strncmp (url, "s3://", 5) == 0)
    r = parse_s3 (url, endpoint, region, &u);
  else if (http_scheme_len (url) > 0)
    r = parse_http (url, &u);
  else {
    report_unsupported (url);
    errno = EINVAL;
    r = -1;
  }
  if (r == -1) {
    int saved_errno = errno;

    s3_url_free (&u);
    errno = saved_errno;
    return -1;
  }
  *out = u;
  return 0;
}
