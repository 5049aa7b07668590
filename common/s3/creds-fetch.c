/* accel: fetch temporary AWS credentials over the network.
 *
 * These requests are rare (once at start, then once per credential
 * lifetime), so each uses its own libcurl easy handle rather than the
 * data path's connection pool.  Every handle is restricted to http and
 * https, never follows redirects, never uses signals, and has a timeout;
 * the instance metadata service gets a very short one, because on a
 * machine that is not an EC2 instance nothing answers at all and the
 * chain must fall through to "anonymous" quickly.  Bodies are capped at
 * CREDS_MAX_RESPONSE and wiped before they are freed, since they hold
 * secrets.
 *
 * NB: nothing here may print a secret key, a session token, a web
 * identity token or an IMDS token, even in debug messages.
 */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cleanup.h"
#include "creds-fetch.h"
#include "creds-http.h"
#include "creds-parse.h"
#include "file-io.h"
#include "report.h"

#define IMDS_CONNECT_MS 1000L
#define IMDS_TOTAL_MS 3000L
#define STS_CONNECT_MS 5000L
#define STS_TOTAL_MS 30000L

/* Longest IMDSv2 session token we accept (they are ~60 bytes). */
#define IMDS_MAX_TOKEN 4096

/* Where server-provided text is cut before it is printed. */
#define MAX_MESSAGE 512

#define IMDS_CREDS_PATH "/latest/meta-data/iam/security-credentials/"

/* The buffer is allocated at its full size once so that realloc never
 * leaves copies of secrets behind in freed memory.
 */
static size_t
http_write (char *ptr, size_t size, size_t nmemb, void *opaque)
{
  struct http_body *b = opaque;
  size_t n = size * nmemb;

  if (b->data == NULL) {
    b->data = malloc (CREDS_MAX_RESPONSE + 1);
    if (b->data == NULL)
      return 0;
  }
  if (n > CREDS_MAX_RESPONSE - b->len) {
    b->too_big = true;
    return 0;
  }
  memcpy (b->data + b->len, ptr, n);
  b->len += n;
  b->data[b->len] = '\0';
  return n;
}

/* See creds-http.h. */
int
creds_http_do (const struct http_request *req, struct http_body *body,
               long *status, char *errbuf)
{
  CLEANUP_CURL CURL *h = NULL;
  CURLcode rc;

  errbuf[0] = '\0';
  h = curl_easy_init ();
  if (h == NULL) {
    snprintf (errbuf, CURL_ERROR_SIZE, "curl_easy_init failed");
    return -1;
  }
  rc = curl_easy_setopt (h, CURLOPT_ERRORBUFFER, errbuf);
  if (rc == CURLE_OK)
    rc = curl_easy_setopt (h, CURLOPT_URL, req->url);
  if (rc == CURLE_OK)
    rc = curl_easy_setopt (h, CURLOPT_PROTOCOLS_STR, "http,https");
  if (rc == CURLE_OK)
    rc = curl_easy_setopt (h, CURLOPT_FOLLOWLOCATION, 0L);
  if (rc == CURLE_OK)
    rc = curl_easy_setopt (h, CURLOPT_NOSIGNAL, 1L);
  if (rc == CURLE_OK)
    rc = curl_easy_setopt (h, CURLOPT_CONNECTTIMEOUT_MS, req->connect_ms);
  if (rc == CURLE_OK)
    rc = curl_easy_setopt (h, CURLOPT_TIMEOUT_MS, req->total_ms);
  if (rc == CURLE_OK)
    rc = curl_easy_setopt (h, CURLOPT_USERAGENT, "accel");
  if (rc == CURLE_OK)
    rc = curl_easy_setopt (h, CURLOPT_WRITEFUNCTION, http_write);
  if (rc == CURLE_OK)
    rc = curl_easy_setopt (h, CURLOPT_WRITEDATA, body);
  if (rc == CURLE_OK && req->headers)
    rc = curl_easy_setopt (h, CURLOPT_HTTPHEADER, req->headers);
  if (rc == CURLE_OK && req->no_proxy)
    rc = curl_easy_setopt (h, CURLOPT_NOPROXY, "*");
  if (rc == CURLE_OK && req->cainfo)
    rc = curl_easy_setopt (h, CURLOPT_CAINFO, req->cainfo);
  if (rc == CURLE_OK && req->post)
    rc = curl_easy_setopt (h, CURLOPT_POSTFIELDS, req->post);
  if (rc == CURLE_OK && req->post)
    rc = curl_easy_setopt (h, CURLOPT_POSTFIELDSIZE, (long) strlen (req->post));
  if (rc == CURLE_OK && req->method)
    rc = curl_easy_setopt (h, CURLOPT_CUSTOMREQUEST, req->method);
  if (rc != CURLE_OK) {
    snprintf (errbuf, CURL_ERROR_SIZE, "curl_easy_setopt: %s",
              curl_easy_strerror (rc));
    return -1;
  }

  rc = curl_easy_perform (h);
  if (body->too_big) {
    snprintf (errbuf, CURL_ERROR_SIZE, "response larger than %d bytes",
              CREDS_MAX_RESPONSE);
    return -1;
  }
  if (rc != CURLE_OK) {
    if (errbuf[0] == '\0')
      snprintf (errbuf, CURL_ERROR_SIZE, "%s", curl_easy_strerror (rc));
    return -1;
  }
  curl_easy_getinfo (h, CURLINFO_RESPONSE_CODE, status);
  if (body->data == NULL) { /* empty body */
    body->data = calloc (1, 1);
    if (body->data == NULL) {
      snprintf (errbuf, CURL_ERROR_SIZE, "out of memory");
      return -1;
    }
  }
  return 0;
}

/* Make server-provided text safe to print: control characters become
 * '?' and it is cut at MAX_MESSAGE bytes.
 */
void
creds_sanitize_message (char *s)
{
  size_t i;

  for (i = 0; s[i]; ++i) {
    if (i == MAX_MESSAGE) {
      s[i] = '\0';
      break;
    }
    if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
      s[i] = '?';
  }
}

/* An endpoint URL from the environment must be plain http(s) with no
 * characters that could smuggle anything into a request line.
 */
bool
creds_valid_endpoint (const char *url)
{
  size_t i;

  if (strncasecmp (url, "http://", 7) != 0 &&
      strncasecmp (url, "https://", 8) != 0)
    return false;
  for (i = 0; url[i]; ++i)
    if ((unsigned char) url[i] <= 0x20 || url[i] == 0x7f)
      return false;
  return i < 2048;
}

/* The STS URL: the endpoint that creds.c resolved (endpoint.h), or the
 * regional one.  NB: region ends up in a host name, so it is checked.
 */
char *
creds_sts_url (const char *ep, const char *region)
{
  char *url;
  size_t i, n;

  if (ep) {
    if (!creds_valid_endpoint (ep)) {
      report_error ("STS endpoint: not an http(s) URL: %s", ep);
      return NULL;
    }
    n = strlen (ep);
    if (asprintf (&url, "%s%s", ep, ep[n - 1] == '/' ? "" : "/") == -1) {
      report_error ("asprintf: %m");
      return NULL;
    }
    return url;
  }

  n = strlen (region);
  for (i = 0; i < n; ++i)
    if (!islower ((unsigned char) region[i]) &&
        !isdigit ((unsigned char) region[i]) && region[i] != '-')
      break;
  if (n == 0 || n > 64 || i < n) {
    report_error ("STS endpoint: invalid region name: %s", region);
    return NULL;
  }
  if (asprintf (&url, "https://sts.%s.%s/", region,
                strncmp (region, "cn-", 3) == 0 ? "amazonaws.com.cn"
                                                : "amazonaws.com") == -1) {
    report_error ("asprintf: %m");
    return NULL;
  }
  return url;
}

/* See creds-http.h.  Token files are rewritten periodically by whoever
 * provides them (Kubernetes, the EKS Pod Identity agent, "aws sso
 * login"), which is why callers read them afresh on every refresh.
 */
char *
creds_read_token_file (const char *what, const char *path)
{
  char *buf;
  size_t len = 0;
  ssize_t r;
  int fd;

  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd == -1) {
    report_error ("%s: %s: %m", what, path);
    return NULL;
  }
  buf = malloc (CREDS_MAX_TOKEN_FILE + 1);
  if (buf == NULL) {
    report_error ("malloc: %m");
    close (fd);
    return NULL;
  }
  r = read_full (fd, buf, CREDS_MAX_TOKEN_FILE + 1);
  if (r == -1) {
    report_error ("%s: %s: read: %m", what, path);
    goto err;
  }
  len = r;
  if (len > CREDS_MAX_TOKEN_FILE) {
    report_error ("%s: %s: larger than %d bytes", what, path,
                  CREDS_MAX_TOKEN_FILE);
    goto err;
  }
  while (len > 0 && isspace ((unsigned char) buf[len - 1]))
    len--;
  buf[len] = '\0';
  if (len == 0 || strlen (buf) != len) {
    report_error ("%s: %s: %s", what, path,
                  len == 0 ? "empty" : "contains a NUL byte");
    goto err;
  }
  close (fd);
  return buf;

err:
  explicit_bzero (buf, len);
  free (buf);
  close (fd);
  return NULL;
}

/* Turn STS's <ErrorResponse> into one clear message. */
static void
sts_report_error (const char *action, const char *role_arn, long status,
                  const struct http_body *b)
{
  CLEANUP_FREE char *code = NULL, *message = NULL;
  const char *err;
  size_t err_len;

  if (creds_xml_find (b->data, b->len, "Error", &err, &err_len) == 0) {
    code = creds_xml_text (err, err_len, "Code");
    message = creds_xml_text (err, err_len, "Message");
  }
  if (code)
    creds_sanitize_message (code);
  if (message)
    creds_sanitize_message (message);
  if (code && message)
    report_error ("STS %s for %s: %s: %s (HTTP %ld)", action, role_arn, code,
                  message, status);
  else if (code)
    report_error ("STS %s for %s: %s (HTTP %ld)", action, role_arn, code,
                  status);
  else
    report_error ("STS %s for %s: HTTP %ld without an error code", action,
                  role_arn, status);
}

/* Pull one required text field out of an XML or JSON document, saying
 * which field is wrong if it cannot.
 */
static char *
required_field (const char *what, bool xml, const char *doc, size_t len,
                const char *name)
{
  char *v = xml ? creds_xml_text (doc, len, name)
                : creds_json_string (doc, len, name);

  if (v == NULL)
    report_error ("%s: %s %s", what, name,
                  errno == ENOENT       ? "is missing"
                      : errno == ENOMEM ? "could not be allocated"
                                        : "is malformed");
  return v;
}

/* A field that may be absent: NULL with errno = ENOENT then, NULL
 * after reporting an error if it is there but malformed.
 */
static char *
optional_field (const char *what, bool xml, const char *doc, size_t len,
                const char *name)
{
  char *v = xml ? creds_xml_text (doc, len, name)
                : creds_json_string (doc, len, name);

  if (v == NULL && errno != ENOENT)
    report_error ("%s: %s %s", what, name,
                  errno == ENOMEM ? "could not be allocated" : "is malformed");
  return v;
}

/* See creds-http.h. */
int
creds_from_fields_opt (const char *what, bool xml, const char *doc, size_t len,
                       const char *token_name, bool temporary,
                       const char *source, struct aws_creds **out)
{
  CLEANUP_FREE_SECRET char *sk = NULL, *token = NULL;
  CLEANUP_FREE char *ak = NULL, *exp = NULL;
  time_t expiration = 0;

  ak = required_field (what, xml, doc, len, "AccessKeyId");
  if (ak == NULL)
    return -1;
  sk = required_field (what, xml, doc, len, "SecretAccessKey");
  if (sk == NULL)
    return -1;
  if (temporary) {
    token = required_field (what, xml, doc, len, token_name);
    exp = token ? required_field (what, xml, doc, len, "Expiration") : NULL;
    if (exp == NULL)
      return -1;
  }
  else {
    token = optional_field (what, xml, doc, len, token_name);
    if (token == NULL && errno != ENOENT)
      return -1;
    exp = optional_field (what, xml, doc, len, "Expiration");
    if (exp == NULL && errno != ENOENT)
      return -1;
  }
  if (exp && creds_parse_time (exp, &expiration) == -1) {
    creds_sanitize_message (exp);
    report_error ("%s: invalid Expiration: %s", what, exp);
    return -1;
  }
  *out = creds_new (ak, sk, token && *token ? token : NULL, expiration, source);
  return *out ? 0 : -1;
}

/* The four fields of temporary credentials: all required. */
int
creds_from_fields (const char *what, bool xml, const char *doc, size_t len,
                   const char *token_name, const char *source,
                   struct aws_creds **out)
{
  return creds_from_fields_opt (what, xml, doc, len, token_name, true, source,
                                out);
}

/* Parse the <Credentials> of an STS response to action. */
static int
sts_parse_credentials (const char *action, const char *source,
                       const struct http_body *b, struct aws_creds **out)
{
  char what[64];
  const char *xml;
  size_t len;

  snprintf (what, sizeof what, "STS %s response", action);
  if (creds_xml_find (b->data, b->len, "Credentials", &xml, &len) == -1) {
    report_error ("%s: no <Credentials>", what);
    return -1;
  }
  return creds_from_fields (what, true, xml, len, "SessionToken", source, out);
}

/* See creds-fetch.h.  The form and headers may hold secrets: they are
 * never printed.
 */
int
creds_fetch_sts (const char *url, const char *action, const char *role_arn,
                 const char *form, struct curl_slist *headers,
                 const char *cainfo, const char *source, struct aws_creds **out)
{
  CLEANUP_HTTP_BODY struct http_body body = { 0 };
  char errbuf[CURL_ERROR_SIZE];
  struct http_request req = { 0 };
  long status = 0;

  req.url = url;
  req.post = form;
  req.headers = headers;
  req.connect_ms = STS_CONNECT_MS;
  req.total_ms = STS_TOTAL_MS;
  req.cainfo = cainfo;
  if (creds_http_do (&req, &body, &status, errbuf) == -1) {
    report_error ("STS %s for %s: %s: %s", action, role_arn, url, errbuf);
    return -1;
  }
  if (status != 200) {
    sts_report_error (action, role_arn, status, &body);
    return -1;
  }
  return sts_parse_credentials (action, source, &body, out);
}

/* Read the token, POST the unsigned form, parse the XML answer. */
int
creds_fetch_web_identity (const char *endpoint, const char *region,
                          const char *role_arn, const char *token_file,
                          const char *session_name, const char *cainfo,
                          struct aws_creds **out)
{
  CLEANUP_FREE char *url = NULL;
  CLEANUP_FREE_SECRET char *token = NULL, *post = NULL;
  CLEANUP_SLIST struct curl_slist *headers = NULL;
  CLEANUP_CURL CURL *escaper = NULL;
  char *e_arn = NULL, *e_name = NULL, *e_token = NULL;
  int r;

  url = creds_sts_url (endpoint, region);
  if (url == NULL)
    return -1;
  token = creds_read_token_file ("web identity token file", token_file);
  if (token == NULL)
    return -1;

  /* NB: libcurl before 7.82 needs a handle to escape with. */
  escaper = curl_easy_init ();
  if (escaper) {
    e_arn = curl_easy_escape (escaper, role_arn, 0);
    e_name = curl_easy_escape (escaper, session_name, 0);
    e_token = curl_easy_escape (escaper, token, 0);
  }
  if (e_arn && e_name && e_token)
    r = asprintf (&post,
                  "Action=AssumeRoleWithWebIdentity&Version=2011-06-15"
                  "&RoleArn=%s&RoleSessionName=%s&WebIdentityToken=%s",
                  e_arn, e_name, e_token);
  else
    r = -1;
  if (e_token)
    explicit_bzero (e_token, strlen (e_token));
  curl_free (e_arn);
  curl_free (e_name);
  curl_free (e_token);
  if (r == -1) {
    post = NULL;
    report_error ("STS request: out of memory");
    return -1;
  }
  headers = curl_slist_append (
      NULL, "Content-Type: application/x-www-form-urlencoded; charset=utf-8");
  if (headers == NULL) {
    report_error ("curl_slist_append: out of memory");
    return -1;
  }

  report_debug ("credentials: AssumeRoleWithWebIdentity %s as %s at %s",
                role_arn, session_name, url);
  return creds_fetch_sts (url, "AssumeRoleWithWebIdentity", role_arn, post,
                          headers, cainfo, "web-identity", out);
}

/* The IMDS base URL, without a trailing '/'. */
static char *
imds_base (void)
{
  const char *ep = creds_getenv ("AWS_EC2_METADATA_SERVICE_ENDPOINT");
  const char *mode = creds_getenv ("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
  char *base;
  size_t n;

  if (ep == NULL)
    ep = mode && strcasecmp (mode, "IPv6") == 0 ? "http://[fd00:ec2::254]"
                                                : "http://169.254.169.254";
  if (!creds_valid_endpoint (ep)) {
    report_error ("AWS_EC2_METADATA_SERVICE_ENDPOINT: not an http(s) URL: %s",
                  ep);
    return NULL;
  }
  base = strdup (ep);
  if (base == NULL) {
    report_error ("strdup: %m");
    return NULL;
  }
  n = strlen (base);
  while (n > 0 && base[n - 1] == '/')
    base[--n] = '\0';
  return base;
}

/* One IMDS request; token is the IMDSv2 session token, or NULL for the
 * PUT that obtains it.  Transport failures are returned, not reported.
 */
static int
imds_request (const char *base, const char *path, const char *token,
              const char *cainfo, struct http_body *body, long *status,
              char *errbuf)
{
  CLEANUP_FREE char *url = NULL;
  CLEANUP_FREE_SECRET char *header = NULL;
  CLEANUP_SLIST struct curl_slist *headers = NULL;
  struct http_request req = { 0 };
  int r;

  if (asprintf (&url, "%s%s", base, path) == -1) {
    url = NULL;
    snprintf (errbuf, CURL_ERROR_SIZE, "out of memory");
    return -1;
  }
  if (token)
    r = asprintf (&header, "X-aws-ec2-metadata-token: %s", token);
  else
    r = asprintf (&header, "X-aws-ec2-metadata-token-ttl-seconds: 21600");
  if (r == -1) {
    header = NULL;
    snprintf (errbuf, CURL_ERROR_SIZE, "out of memory");
    return -1;
  }
  headers = curl_slist_append (NULL, header);
  if (headers == NULL) {
    snprintf (errbuf, CURL_ERROR_SIZE, "curl_slist_append failed");
    return -1;
  }
  req.url = url;
  req.method = token ? NULL : "PUT";
  req.headers = headers;
  req.connect_ms = IMDS_CONNECT_MS;
  req.total_ms = IMDS_TOTAL_MS;
  req.no_proxy = true; /* a link-local service: never via a proxy */
  req.cainfo = cainfo;
  r = creds_http_do (&req, body, status, errbuf);
  /* NB: the list holds its own copy of the header, with the token. */
  explicit_bzero (headers->data, strlen (headers->data));
  return r;
}

/* IMDSv2 session token: it goes into a header, so no control characters
 * or spaces.
 */
static char *
imds_token (const struct http_body *b)
{
  size_t i, n = b->len;

  while (n > 0 && isspace ((unsigned char) b->data[n - 1]))
    n--;
  if (n == 0 || n > IMDS_MAX_TOKEN)
    return NULL;
  for (i = 0; i < n; ++i)
    if ((unsigned char) b->data[i] <= 0x20 || b->data[i] == 0x7f)
      return NULL;
  return strndup (b->data, n);
}

/* The role name is the first line of the listing; it becomes part of a
 * URL path, so only IAM's role name characters are allowed.
 */
static char *
imds_role_name (const struct http_body *b)
{
  size_t n = strcspn (b->data, "\r\n");
  size_t i;

  if (n == 0 || n > 64)
    return NULL;
  for (i = 0; i < n; ++i)
    if (!isalnum ((unsigned char) b->data[i]) &&
        strchr ("+=,.@_-", b->data[i]) == NULL)
      return NULL;
  return strndup (b->data, n);
}

/* Parse the instance role's credentials document. */
static int
imds_parse_credentials (const struct http_body *b, struct aws_creds **out)
{
  static const char what[] = "instance metadata credentials";
  CLEANUP_FREE char *code = NULL;

  code = creds_json_string (b->data, b->len, "Code");
  if (code == NULL && errno != ENOENT) {
    report_error ("%s: not a valid JSON document", what);
    return -1;
  }
  if (code && strcmp (code, "Success") != 0) {
    creds_sanitize_message (code);
    report_error ("%s: Code is %s", what, code);
    return -1;
  }
  return creds_from_fields (what, false, b->data, b->len, "Token", "imds", out);
}

/* Token, role name, credentials: three requests, as IMDSv2 wants. */
int
creds_fetch_imds (const char *cainfo, struct aws_creds **out)
{
  CLEANUP_FREE char *base = NULL, *role = NULL, *path = NULL;
  CLEANUP_FREE_SECRET char *token = NULL;
  CLEANUP_HTTP_BODY struct http_body tb = { 0 }, lb = { 0 }, cb = { 0 };
  const char *disabled = creds_getenv ("AWS_EC2_METADATA_DISABLED");
  char errbuf[CURL_ERROR_SIZE];
  long status = 0;

  if (disabled && strcasecmp (disabled, "true") == 0) {
    report_debug ("credentials: instance metadata disabled by "
                  "AWS_EC2_METADATA_DISABLED");
    return 1;
  }
  base = imds_base ();
  if (base == NULL)
    return -1;

  /* Not answering the token request is how "not an EC2 instance" (or
   * IMDSv2 switched off) looks, so it is not an error.
   */
  if (imds_request (base, "/latest/api/token", NULL, cainfo, &tb, &status,
                    errbuf) == -1) {
    report_debug ("credentials: instance metadata service at %s "
                  "not reachable: %s",
                  base, errbuf);
    return 1;
  }
  if (status != 200) {
    report_debug ("credentials: instance metadata service at %s "
                  "gave no IMDSv2 token (HTTP %ld)",
                  base, status);
    return 1;
  }
  token = imds_token (&tb);
  if (token == NULL) {
    report_error ("instance metadata: %s: invalid IMDSv2 token", base);
    return -1;
  }

  if (imds_request (base, IMDS_CREDS_PATH, token, cainfo, &lb, &status,
                    errbuf) == -1) {
    report_error ("instance metadata: %s%s: %s", base, IMDS_CREDS_PATH, errbuf);
    return -1;
  }
  if (status == 404) {
    report_debug ("credentials: no IAM role attached to this instance");
    return 1;
  }
  if (status != 200) {
    report_error ("instance metadata: %s%s: HTTP %ld", base, IMDS_CREDS_PATH,
                  status);
    return -1;
  }
  role = imds_role_name (&lb);
  if (role == NULL) {
    report_error ("instance metadata: %s%s: invalid role name", base,
                  IMDS_CREDS_PATH);
    return -1;
  }

  if (asprintf (&path, "%s%s", IMDS_CREDS_PATH, role) == -1) {
    path = NULL;
    report_error ("asprintf: %m");
    return -1;
  }
  if (imds_request (base, path, token, cainfo, &cb, &status, errbuf) == -1) {
    report_error ("instance metadata: %s%s: %s", base, path, errbuf);
    return -1;
  }
  if (status != 200) {
    report_error ("instance metadata: %s%s: HTTP %ld", base, path, status);
    return -1;
  }
  report_debug ("credentials: instance role %s", role);
  if (imds_parse_credentials (&cb, out) == -1)
    return -1;
  if (creds_set_origin (*out, "instance role %s at %s", role, base) == -1) {
    creds_put (*out);
    *out = NULL;
    return -1;
  }
  return 0;
}
