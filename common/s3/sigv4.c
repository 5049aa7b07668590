/* accel: AWS Signature Version 4 signing for S3 (see sigv4.h).
 *
 * The steps follow AWS's description of SigV4: build the canonical
 * request (method, encoded path, sorted query, canonical headers, signed
 * header list, payload hash), hash it into the string to sign, derive the
 * signing key from the secret by an HMAC chain over date, region and
 * service, and HMAC the string to sign with it.  Each step is a function
 * of its inputs only, so the unit test can compare every intermediate
 * result with AWS's vectors byte for byte.
 *
 * NB: S3 differs from other AWS services in two ways that matter here:
 * the path is encoded exactly once and is never normalised, so "/a/../b"
 * and "//" are signed as they are sent.
 *
 * Anything we are asked to sign ends up in an HTTP request line or
 * header, so inputs are checked before use: bounded lengths and counts,
 * header names that are HTTP tokens, and no control characters (CR, LF)
 * that could smuggle extra headers into the request.
 */

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cleanup.h"
#include "hex.h"
#include "report.h"
#include "sigv4.h"

#define ALGORITHM "AWS4-HMAC-SHA256"
#define SHA256_LEN 32

/* The parameters a presigned URL adds to the caller's own query. */
#define PRESIGN_PARAMS 6

/* A string built with open_memstream.  NB: buf is only valid after
 * fclose, so the cleanup closes before freeing.
 */
struct out {
  FILE *fp;
  char *buf;
  size_t len;
};

/* Release a stream that was not handed to the caller (error paths). */
static void
out_cleanup (struct out *o)
{
  if (o->fp)
    fclose (o->fp);
  free (o->buf);
}
#define CLEANUP_OUT __attribute__ ((cleanup (out_cleanup)))

/* Start building a string; the buffer grows as needed. */
static int
out_open (struct out *o)
{
  o->buf = NULL;
  o->len = 0;
  o->fp = open_memstream (&o->buf, &o->len);
  if (o->fp == NULL) {
    report_error ("sigv4: open_memstream: %m");
    return -1;
  }
  return 0;
}

/* Finish the string and pass ownership to the caller.  Write errors
 * (only ENOMEM for a memory stream) surface here, once.
 */
static char *
out_take (struct out *o)
{
  bool failed = ferror (o->fp) != 0;
  char *s;

  if (fclose (o->fp) == EOF)
    failed = true;
  o->fp = NULL;
  if (failed) {
    report_error ("sigv4: building string: out of memory");
    return NULL;
  }
  s = o->buf;
  o->buf = NULL;
  return s;
}

/* RFC 3986 unreserved characters, the only ones SigV4 leaves as they
 * are.  NB: not isalnum, which depends on the locale.
 */
static bool
is_unreserved (unsigned char c)
{
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
      (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
}

/* RFC 9110 token characters: what a method or header name may hold.
 * Anything else (space, ':', CR, LF) could change the meaning of the
 * request we send.
 */
static bool
is_tchar (unsigned char c)
{
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
      (c >= '0' && c <= '9') ||
      (c != '\0' && strchr ("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Every string input is present and bounded; checked before anything
 * walks it.
 */
static bool
check_string (const char *what, const char *s)
{
  if (s == NULL) {
    report_error ("sigv4: %s is missing", what);
    return false;
  }
  if (strnlen (s, SIGV4_MAX_STRING + 1) > SIGV4_MAX_STRING) {
    report_error ("sigv4: %s is longer than %d bytes", what, SIGV4_MAX_STRING);
    return false;
  }
  return true;
}

/* A string that is present, bounded, not empty and made only of the
 * characters allowed accepts.
 */
static bool
check_chars (const char *what, const char *s, bool (*allowed) (unsigned char))
{
  size_t i;

  if (!check_string (what, s))
    return false;
  if (s[0] == '\0') {
    report_error ("sigv4: %s is empty", what);
    return false;
  }
  for (i = 0; s[i]; i++) {
    if (!allowed (s[i])) {
      report_error ("sigv4: %s: character 0x%02x is not allowed", what,
                    (unsigned char) s[i]);
      return false;
    }
  }
  return true;
}

/* Methods and header names go on the wire as they are: tokens only. */
static bool
check_token (const char *what, const char *s)
{
  return check_chars (what, s, is_tchar);
}

/* A header value may not hold CR or LF (header injection) nor other
 * control characters; a tab counts as white space.
 */
static bool
check_header_value (const char *name, const char *s)
{
  size_t i;

  if (!check_string ("header value", s))
    return false;
  for (i = 0; s[i]; i++) {
    unsigned char c = s[i];

    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      report_error ("sigv4: header %s: control character 0x%02x in value", name,
                    c);
      return false;
    }
  }
  return true;
}

/* Region, service and access key become parts of the credential scope
 * "KEY/DATE/REGION/SERVICE/aws4_request", which is split on '/' and sent
 * in a comma-separated header: keep them to a plain alphabet.
 */
static bool
check_scope_part (const char *what, const char *s)
{
  return check_chars (what, s, is_unreserved);
}

/* The date is copied into the scope and string to sign by position, so
 * its shape must be exact: YYYYMMDDTHHMMSSZ.
 */
static bool
check_amz_date (const char *s)
{
  size_t i;

  if (!check_string ("x-amz-date", s))
    return false;
  for (i = 0; i < 16; i++) {
    bool ok;

    if (i == 8)
      ok = s[i] == 'T';
    else if (i == 15)
      ok = s[i] == 'Z';
    else
      ok = s[i] >= '0' && s[i] <= '9';
    if (!ok)
      break;
  }
  if (i < 16 || s[16] != '\0') {
    report_error ("sigv4: date is not YYYYMMDDTHHMMSSZ");
    return false;
  }
  return true;
}

/* S3 accepts a hex SHA-256 or UNSIGNED-PAYLOAD; anything else would only
 * fail later with a less helpful SignatureDoesNotMatch.
 */
static bool
check_payload_hash (const char *s)
{
  size_t i;

  if (!check_string ("payload hash", s))
    return false;
  if (strcmp (s, "UNSIGNED-PAYLOAD") == 0)
    return true;
  for (i = 0; i < 64; i++) {
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      break;
  }
  if (i < 64 || s[64] != '\0') {
    report_error ("sigv4: payload hash is not lowercase hex SHA-256 nor "
                  "UNSIGNED-PAYLOAD");
    return false;
  }
  return true;
}

/* Check a whole request once, at the entry of each public function, so
 * the steps below can assume well-formed input.  NB: messages never echo
 * a rejected value, which could itself hold CR/LF or be 8 KiB long.
 */
static bool
check_request (const struct sigv4_request *r)
{
  bool have_host = false;
  size_t i;

  if (r == NULL) {
    report_error ("sigv4: request is missing");
    return false;
  }
  if (!check_token ("method", r->method) || !check_string ("path", r->path) ||
      !check_payload_hash (r->payload_hash) ||
      !check_scope_part ("region", r->region) ||
      !check_scope_part ("service", r->service) ||
      !check_amz_date (r->amz_date))
    return false;
  if (r->path[0] != '/') {
    report_error ("sigv4: path does not start with '/'");
    return false;
  }

  if (r->nr_query > SIGV4_MAX_PAIRS || r->nr_headers > SIGV4_MAX_PAIRS) {
    report_error ("sigv4: too many query parameters (%zu) or headers (%zu), "
                  "limit is %d",
                  r->nr_query, r->nr_headers, SIGV4_MAX_PAIRS);
    return false;
  }
  if ((r->nr_query > 0 && r->query == NULL) ||
      (r->nr_headers > 0 && r->headers == NULL)) {
    report_error ("sigv4: query or header array is missing");
    return false;
  }
  for (i = 0; i < r->nr_query; i++) {
    if (!check_string ("query parameter name", r->query[i].name) ||
        !check_string ("query parameter value", r->query[i].value))
      return false;
  }
  for (i = 0; i < r->nr_headers; i++) {
    if (!check_token ("header name", r->headers[i].name) ||
        !check_header_value (r->headers[i].name, r->headers[i].value))
      return false;
    if (strcasecmp (r->headers[i].name, "host") == 0)
      have_host = true;
  }
  /* SigV4 requires host to be signed; without it S3 rejects the request. */
  if (!have_host) {
    report_error ("sigv4: the host header must be signed");
    return false;
  }
  return true;
}

/* One HMAC-SHA256 step of the signing key chain. */
static int
hmac_sha256 (const void *key, size_t key_len, const void *data, size_t len,
             unsigned char out[SHA256_LEN])
{
  unsigned int out_len = 0;

  if (HMAC (EVP_sha256 (), key, (int) key_len, data, len, out, &out_len) ==
          NULL ||
      out_len != SHA256_LEN) {
    report_error ("sigv4: HMAC-SHA256 failed");
    return -1;
  }
  return 0;
}

/* Used for the payload hash and the hash of the canonical request. */
int
sigv4_sha256_hex (const void *data, size_t len, char out[65])
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;

  if (!EVP_Digest (data, len, md, &md_len, EVP_sha256 (), NULL) ||
      md_len != SHA256_LEN) {
    report_error ("sigv4: SHA-256 failed");
    out[0] = '\0';
    return -1;
  }
  hex_encode (md, SHA256_LEN, out);
  return 0;
}

/* The caller owns the clock; this only formats it.  NB: gmtime_r, not
 * gmtime, because the plugin signs from many threads.  Years outside
 * 1000 .. 9999 do not fit the 16 characters and are refused.
 */
int
sigv4_format_date (time_t t, char out[17])
{
  struct tm tm;

  if (gmtime_r (&t, &tm) == NULL || tm.tm_year < 1000 - 1900 ||
      tm.tm_year > 9999 - 1900 ||
      strftime (out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16) {
    report_error ("sigv4: cannot format time %lld as a date", (long long) t);
    out[0] = '\0';
    return -1;
  }
  return 0;
}

/* S3 encodes the path with '/' kept and query names and values with '/'
 * encoded; everything outside the unreserved set is %XX, byte by byte,
 * so UTF-8 needs no special case.
 */
char *
sigv4_uri_encode (const char *s, bool encode_slash)
{
  static const char digits[] = "0123456789ABCDEF";
  size_t i, j;
  char *ret;

  if (!check_string ("string to encode", s))
    return NULL;

  /* NB: cannot overflow, s is at most SIGV4_MAX_STRING bytes. */
  ret = malloc (3 * strlen (s) + 1);
  if (ret == NULL) {
    report_error ("sigv4: malloc: %m");
    return NULL;
  }
  for (i = j = 0; s[i]; i++) {
    unsigned char c = s[i];

    if (is_unreserved (c) || (c == '/' && !encode_slash))
      ret[j++] = c;
    else {
      ret[j++] = '%';
      ret[j++] = digits[c >> 4];
      ret[j++] = digits[c & 15];
    }
  }
  ret[j] = '\0';
  return ret;
}

/* One header or query parameter on its way into canonical form. */
struct pair {
  char *name;
  char *value;
  size_t order; /* position in the caller's list, to keep sorting stable */
};

/* Free the strings of the first n pairs. */
static void
free_pairs (struct pair *pairs, size_t n)
{
  size_t i;

  for (i = 0; i < n; i++) {
    free (pairs[i].name);
    free (pairs[i].value);
  }
}

/* Query parameters sort by encoded name, then by encoded value (so
 * "a=2&a=1" signs as "a=1&a=2").
 */
static int
compare_query (const void *av, const void *bv)
{
  const struct pair *a = av, *b = bv;
  int c = strcmp (a->name, b->name);

  return c != 0 ? c : strcmp (a->value, b->value);
}

/* Headers sort by lowercase name; repeated names keep the caller's order
 * because their values are joined in that order.  NB: qsort is not
 * stable, hence the explicit tie break.
 */
static int
compare_headers (const void *av, const void *bv)
{
  const struct pair *a = av, *b = bv;
  int c = strcmp (a->name, b->name);

  if (c != 0)
    return c;
  return a->order < b->order ? -1 : a->order > b->order;
}

/* The canonical query string: the caller's parameters plus any extra
 * ones (presigning), each name and value encoded with '/' encoded, sorted,
 * joined as name=value with '&'.  A parameter without a value still gets
 * its '=' ("lifecycle=").
 */
static char *
canonical_query (const struct sigv4_kv *query, size_t nr_query,
                 const struct sigv4_kv *extra, size_t nr_extra)
{
  struct pair pairs[SIGV4_MAX_PAIRS + PRESIGN_PARAMS];
  CLEANUP_OUT struct out o = { 0 };
  size_t i, n = 0;
  char *ret = NULL;

  if (nr_query + nr_extra > sizeof pairs / sizeof pairs[0]) {
    report_error ("sigv4: too many query parameters");
    return NULL;
  }
  for (i = 0; i < nr_query + nr_extra; i++) {
    const struct sigv4_kv *kv = i < nr_query ? &query[i] : &extra[i - nr_query];

    pairs[n].name = sigv4_uri_encode (kv->name, true);
    pairs[n].value = sigv4_uri_encode (kv->value, true);
    pairs[n].order = i;
    n++;
    if (pairs[n - 1].name == NULL || pairs[n - 1].value == NULL)
      goto out;
  }
  qsort (pairs, n, sizeof pairs[0], compare_query);

  if (out_open (&o) == -1)
    goto out;
  for (i = 0; i < n; i++)
    fprintf (o.fp, "%s%s=%s", i > 0 ? "&" : "", pairs[i].name, pairs[i].value);
  ret = out_take (&o);
out:
  free_pairs (pairs, n);
  return ret;
}

/* A header value in canonical form: leading and trailing white space
 * removed and each inner run of spaces or tabs replaced by one space.
 */
static char *
trim_value (const char *s)
{
  size_t i, j = 0;
  bool space = false;
  char *ret = malloc (strlen (s) + 1);

  if (ret == NULL) {
    report_error ("sigv4: malloc: %m");
    return NULL;
  }
  for (i = 0; s[i]; i++) {
    if (s[i] == ' ' || s[i] == '\t')
      space = j > 0;
    else {
      if (space)
        ret[j++] = ' ';
      space = false;
      ret[j++] = s[i];
    }
  }
  ret[j] = '\0';
  return ret;
}

/* Lowercase a copy of a header name (ASCII only: names are tokens). */
static char *
lower_name (const char *s)
{
  char *ret = strdup (s);
  size_t i;

  if (ret == NULL) {
    report_error ("sigv4: strdup: %m");
    return NULL;
  }
  for (i = 0; ret[i]; i++) {
    if (ret[i] >= 'A' && ret[i] <= 'Z')
      ret[i] += 'a' - 'A';
  }
  return ret;
}

/* The canonical headers block ("name:value\n" per distinct name, values
 * of repeated names joined with ',') and the signed headers list
 * ("host;x-amz-date"), both from one sort.
 */
static int
canonical_headers (const struct sigv4_request *r, char **headers_ret,
                   char **signed_ret)
{
  struct pair pairs[SIGV4_MAX_PAIRS];
  CLEANUP_OUT struct out h = { 0 };
  CLEANUP_OUT struct out s = { 0 };
  size_t i, n = 0;
  char *hs, *ss;
  int ret = -1;

  for (i = 0; i < r->nr_headers; i++) {
    pairs[n].name = lower_name (r->headers[i].name);
    pairs[n].value = trim_value (r->headers[i].value);
    pairs[n].order = i;
    n++;
    if (pairs[n - 1].name == NULL || pairs[n - 1].value == NULL)
      goto out;
  }
  qsort (pairs, n, sizeof pairs[0], compare_headers);

  if (out_open (&h) == -1 || out_open (&s) == -1)
    goto out;
  for (i = 0; i < n; i++) {
    if (i > 0 && strcmp (pairs[i].name, pairs[i - 1].name) == 0)
      fprintf (h.fp, ",%s", pairs[i].value);
    else {
      fprintf (h.fp, "%s%s:%s", i > 0 ? "\n" : "", pairs[i].name,
               pairs[i].value);
      fprintf (s.fp, "%s%s", i > 0 ? ";" : "", pairs[i].name);
    }
  }
  if (n > 0)
    fputc ('\n', h.fp);
  hs = out_take (&h);
  ss = hs ? out_take (&s) : NULL;
  if (ss == NULL) {
    free (hs);
    goto out;
  }
  *headers_ret = hs;
  *signed_ret = ss;
  ret = 0;
out:
  free_pairs (pairs, n);
  return ret;
}

/* Join the parts of the canonical request, one per line. */
static char *
assemble_canonical_request (const struct sigv4_request *r, const char *query,
                            const char *headers, const char *signed_headers)
{
  CLEANUP_FREE char *path = sigv4_uri_encode (r->path, false);
  CLEANUP_OUT struct out o = { 0 };

  if (path == NULL || out_open (&o) == -1)
    return NULL;
  fprintf (o.fp, "%s\n%s\n%s\n%s\n%s\n%s", r->method, path, query, headers,
           signed_headers, r->payload_hash);
  return out_take (&o);
}

/* Public so that the test can compare it with the vectors' .creq, and so
 * that a SignatureDoesNotMatch from S3 (which returns its own canonical
 * request) can be debugged.
 */
char *
sigv4_canonical_request (const struct sigv4_request *r)
{
  CLEANUP_FREE char *query = NULL;
  CLEANUP_FREE char *headers = NULL;
  CLEANUP_FREE char *signed_headers = NULL;

  if (!check_request (r))
    return NULL;
  query = canonical_query (r->query, r->nr_query, NULL, 0);
  if (query == NULL || canonical_headers (r, &headers, &signed_headers) == -1)
    return NULL;
  return assemble_canonical_request (r, query, headers, signed_headers);
}

/* "YYYYMMDD/REGION/SERVICE/aws4_request": what the signing key is
 * bound to.  NB: the date is the first 8 characters of amz_date, never
 * a second reading of the clock.
 */
static char *
credential_scope (const struct sigv4_request *r)
{
  char *ret;

  if (asprintf (&ret, "%.8s/%s/%s/aws4_request", r->amz_date, r->region,
                r->service) == -1) {
    report_error ("sigv4: asprintf: %m");
    return NULL;
  }
  return ret;
}

/* What is actually signed: the algorithm, the date, the scope and the
 * hash of the canonical request, one per line.
 */
char *
sigv4_string_to_sign (const struct sigv4_request *r,
                      const char *canonical_request)
{
  CLEANUP_FREE char *scope = NULL;
  char hash[65];
  char *ret;

  if (!check_request (r))
    return NULL;
  if (canonical_request == NULL) {
    report_error ("sigv4: canonical request is missing");
    return NULL;
  }
  scope = credential_scope (r);
  if (scope == NULL ||
      sigv4_sha256_hex (canonical_request, strlen (canonical_request), hash) ==
          -1)
    return NULL;
  if (asprintf (&ret, ALGORITHM "\n%s\n%s\n%s", r->amz_date, scope, hash) ==
      -1) {
    report_error ("sigv4: asprintf: %m");
    return NULL;
  }
  return ret;
}

/* The signature of a canonical request: HMAC chain
 * "AWS4"+secret -> date -> region -> service -> "aws4_request", then
 * HMAC of the string to sign.  Key material is wiped from the stack.
 */
static int
signature (const struct sigv4_request *r, const char *secret_key,
           const char *canonical_request, char sig[65])
{
  CLEANUP_FREE char *sts = NULL;
  char secret[4 + SIGV4_MAX_STRING + 1];
  char date[9];
  unsigned char k[2][SHA256_LEN];
  const char *steps[5];
  const void *key = secret;
  size_t i, key_len;
  int ret = -1;

  sts = sigv4_string_to_sign (r, canonical_request);
  if (sts == NULL)
    return -1;
  /* NB: secret_key was length-checked by the caller. */
  snprintf (secret, sizeof secret, "AWS4%s", secret_key);
  key_len = strlen (secret);
  snprintf (date, sizeof date, "%.8s", r->amz_date);
  steps[0] = date;
  steps[1] = r->region;
  steps[2] = r->service;
  steps[3] = "aws4_request";
  steps[4] = sts;

  /* Each step's output is the next step's key.  NB: two buffers, so
   * HMAC never writes over the key it is reading.
   */
  for (i = 0; i < 5; i++) {
    if (hmac_sha256 (key, key_len, steps[i], strlen (steps[i]), k[i % 2]) == -1)
      goto out;
    key = k[i % 2];
    key_len = SHA256_LEN;
  }
  hex_encode (key, SHA256_LEN, sig);
  ret = 0;
out:
  OPENSSL_cleanse (secret, sizeof secret);
  OPENSSL_cleanse (k, sizeof k);
  return ret;
}

/* Keys come from configuration; check them like the request. */
static bool
check_keys (const char *access_key, const char *secret_key)
{
  if (!check_scope_part ("access key", access_key) ||
      !check_string ("secret key", secret_key))
    return false;
  if (secret_key[0] == '\0') {
    report_error ("sigv4: secret key is empty");
    return false;
  }
  return true;
}

/* The header form used for every request the plugin sends: S3 needs the
 * key id and scope to find the secret, and the signed header list to
 * rebuild the canonical request on its side.
 */
char *
sigv4_authorization (const struct sigv4_request *r, const char *access_key,
                     const char *secret_key, const char *separator)
{
  CLEANUP_FREE char *query = NULL;
  CLEANUP_FREE char *headers = NULL;
  CLEANUP_FREE char *signed_headers = NULL;
  CLEANUP_FREE char *creq = NULL;
  CLEANUP_FREE char *scope = NULL;
  char sig[65];
  char *ret;

  if (!check_request (r) || !check_keys (access_key, secret_key))
    return NULL;
  if (separator == NULL ||
      (strcmp (separator, ",") != 0 && strcmp (separator, ", ") != 0)) {
    report_error ("sigv4: separator must be \",\" or \", \"");
    return NULL;
  }
  query = canonical_query (r->query, r->nr_query, NULL, 0);
  if (query == NULL || canonical_headers (r, &headers, &signed_headers) == -1)
    return NULL;
  creq = assemble_canonical_request (r, query, headers, signed_headers);
  if (creq == NULL || (scope = credential_scope (r)) == NULL ||
      signature (r, secret_key, creq, sig) == -1)
    return NULL;
  if (asprintf (
          &ret, ALGORITHM " Credential=%s/%s%sSignedHeaders=%s%sSignature=%s",
          access_key, scope, separator, signed_headers, separator, sig) == -1) {
    report_error ("sigv4: asprintf: %m");
    return NULL;
  }
  return ret;
}

/* The query form: the same signature, but the credential, date and
 * lifetime travel in the URL, so the URL alone grants access (handed to
 * tools that cannot sign, e.g. curl or a browser).
 */
char *
sigv4_presign_query (const struct sigv4_request *r, const char *access_key,
                     const char *secret_key, const char *session_token,
                     unsigned expires_seconds)
{
  CLEANUP_FREE char *scope = NULL;
  CLEANUP_FREE char *credential = NULL;
  CLEANUP_FREE char *headers = NULL;
  CLEANUP_FREE char *signed_headers = NULL;
  CLEANUP_FREE char *query = NULL;
  CLEANUP_FREE char *creq = NULL;
  struct sigv4_kv extra[PRESIGN_PARAMS];
  char expires[16], sig[65];
  size_t n = 0;
  char *ret;

  if (!check_request (r) || !check_keys (access_key, secret_key) ||
      (session_token && !check_string ("session token", session_token)))
    return NULL;
  if (expires_seconds < 1 || expires_seconds > SIGV4_MAX_EXPIRES) {
    report_error ("sigv4: presigned URL lifetime %u is not 1 .. %d seconds",
                  expires_seconds, SIGV4_MAX_EXPIRES);
    return NULL;
  }
  snprintf (expires, sizeof expires, "%u", expires_seconds);
  scope = credential_scope (r);
  if (scope == NULL || canonical_headers (r, &headers, &signed_headers) == -1)
    return NULL;
  if (asprintf (&credential, "%s/%s", access_key, scope) == -1) {
    report_error ("sigv4: asprintf: %m");
    credential = NULL;
    return NULL;
  }

  /* NB: with a presigned URL the session token is part of the signed
   * query, unlike the header form where it is a signed header.
   */
  extra[n++] = (struct sigv4_kv){ "X-Amz-Algorithm", ALGORITHM };
  extra[n++] = (struct sigv4_kv){ "X-Amz-Credential", credential };
  extra[n++] = (struct sigv4_kv){ "X-Amz-Date", r->amz_date };
  extra[n++] = (struct sigv4_kv){ "X-Amz-Expires", expires };
  if (session_token)
    extra[n++] = (struct sigv4_kv){ "X-Amz-Security-Token", session_token };
  extra[n++] = (struct sigv4_kv){ "X-Amz-SignedHeaders", signed_headers };

  query = canonical_query (r->query, r->nr_query, extra, n);
  if (query == NULL)
    return NULL;
  creq = assemble_canonical_request (r, query, headers, signed_headers);
  if (creq == NULL || signature (r, secret_key, creq, sig) == -1)
    return NULL;
  if (asprintf (&ret, "%s&X-Amz-Signature=%s", query, sig) == -1) {
    report_error ("sigv4: asprintf: %m");
    return NULL;
  }
  return ret;
}
