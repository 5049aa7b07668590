/* accel: credentials from the container credentials endpoint
 * (creds-container.h).
 *
 * The request goes through creds-fetch.c's small-request helper: its
 * own handle, http(s) only, no redirects (a redirect could carry the
 * authorization token elsewhere), a short timeout, the body capped and
 * wiped.  The host check is done on the URL as libcurl parses it, so
 * that what is checked is what is connected to; host names other than
 * "localhost" are not resolved to be checked, they are refused (use
 * https for those).
 *
 * NB: the authorization token is a secret: it goes only into the
 * request's header, which is wiped after use, never into a message.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "cleanup.h"
#include "creds-container.h"
#include "creds-fetch.h"
#include "creds-http.h"
#include "creds-parse.h"
#include "report.h"

#define CONTAINER_CONNECT_MS 2000L
#define CONTAINER_TOTAL_MS 5000L

/* Free a libcurl string at scope exit. */
static void
cleanup_curl_free (char **p)
{
  curl_free (*p);
}
#define CLEANUP_CURL_FREE __attribute__ ((cleanup (cleanup_curl_free)))

/* An http host the spec allows: loopback, ECS's address, Pod Identity's
 * two.  host is as libcurl gives it (IPv6 in brackets).
 */
static bool
host_allowed (const char *host)
{
  char buf[INET6_ADDRSTRLEN + 2];
  struct in_addr a4;
  struct in6_addr a6;
  size_t n = strlen (host);

  if (strcasecmp (host, "localhost") == 0)
    return true;
  if (inet_pton (AF_INET, host, &a4) == 1) {
    uint32_t a = ntohl (a4.s_addr);

    return (a >> 24) == 127 || a == 0xa9feaa02 /* 169.254.170.2 */ ||
        a == 0xa9feaa17 /* 169.254.170.23 */;
  }
  if (n < 3 || n >= sizeof buf || host[0] != '[' || host[n - 1] != ']')
    return false;
  memcpy (buf, host + 1, n - 2);
  buf[n - 2] = '\0';
  if (inet_pton (AF_INET6, buf, &a6) != 1)
    return false;
  if (IN6_IS_ADDR_LOOPBACK (&a6))
    return true;
  /* fd00:ec2::23 */
  {
    static const unsigned char pod_identity[16] = {
      0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x23
    };

    return memcmp (&a6, pod_identity, 16) == 0;
  }
}

/* A full URI must be https, or http to an allowed host. */
static int
check_full_uri (const char *url)
{
  CLEANUP_CURL_FREE char *scheme = NULL, *host = NULL;
  CURLU *u;
  int r = -1;

  u = curl_url ();
  if (u == NULL) {
    report_error ("curl_url: out of memory");
    return -1;
  }
  if (curl_url_set (u, CURLUPART_URL, url, 0) != CURLUE_OK ||
      curl_url_get (u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
      curl_url_get (u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
    report_error ("AWS_CONTAINER_CREDENTIALS_FULL_URI: not a valid URL: %s",
                  url);
  else if (strcasecmp (scheme, "https") == 0 || host_allowed (host))
    r = 0;
  else
    report_error ("AWS_CONTAINER_CREDENTIALS_FULL_URI: host %s is not "
                  "allowed: plain http may only go to a loopback address, "
                  "169.254.170.2, 169.254.170.23 or fd00:ec2::23 (use https "
                  "for any other host)",
                  host);
  curl_url_cleanup (u);
  return r;
}

/* The endpoint's URL from the environment, or NULL with *none set if
 * neither variable is.  Returns a malloc'd string, or NULL after
 * reporting an error.
 */
static char *
container_url (bool *none)
{
  const char *rel = creds_getenv ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  const char *full = creds_getenv ("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  char *url;

  *none = false;
  if (rel) {
    if (rel[0] != '/') {
      report_error ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: does not "
                    "start with '/': %s",
                    rel);
      return NULL;
    }
    if (asprintf (&url, "%s%s", CREDS_CONTAINER_HOST, rel) == -1) {
      report_error ("asprintf: %m");
      return NULL;
    }
    if (!creds_valid_endpoint (url)) {
      report_error ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: invalid "
                    "characters: %s",
                    rel);
      free (url);
      return NULL;
    }
    return url;
  }
  if (full == NULL) {
    *none = true;
    return NULL;
  }
  if (!creds_valid_endpoint (full)) {
    report_error ("AWS_CONTAINER_CREDENTIALS_FULL_URI: not an http(s) URL: "
                  "%s",
                  full);
    return NULL;
  }
  if (check_full_uri (full) == -1)
    return NULL;
  url = strdup (full);
  if (url == NULL)
    report_error ("strdup: %m");
  return url;
}

/* The Authorization header, or NULL with *none set if there is no
 * token.  The file wins over the variable, as in the AWS SDKs.
 */
static char *
auth_header (bool *none)
{
  const char *file = creds_getenv ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
  const char *value = creds_getenv ("AWS_CONTAINER_AUTHORIZATION_TOKEN");
  CLEANUP_FREE_SECRET char *token = NULL;
  char *header;
  size_t i;

  *none = false;
  if (file) {
    token = creds_read_token_file ("container authorization token file", file);
    if (token == NULL)
      return NULL;
  }
  else if (value) {
    token = strdup (value);
    if (token == NULL) {
      report_error ("strdup: %m");
      return NULL;
    }
  }
  else {
    *none = true;
    return NULL;
  }
  /* It goes into a header line: no line breaks or other controls. */
  for (i = 0; token[i]; ++i)
    if ((unsigned char) token[i] < 0x20 || token[i] == 0x7f) {
      report_error ("container authorization token%s%s: contains control "
                    "characters",
                    file ? " file " : "", file ? file : "");
      return NULL;
    }
  if (asprintf (&header, "Authorization: %s", token) == -1) {
    report_error ("asprintf: %m");
    return NULL;
  }
  return header;
}

/* Say why the endpoint refused, with its code and message if any. */
static void
container_report_error (const char *url, long status, const struct http_body *b)
{
  CLEANUP_FREE char *code = NULL, *message = NULL;

  code = creds_json_string (b->data, b->len, "code");
  if (code == NULL)
    code = creds_json_string (b->data, b->len, "Code");
  message = creds_json_string (b->data, b->len, "message");
  if (message == NULL)
    message = creds_json_string (b->data, b->len, "Message");
  if (code)
    creds_sanitize_message (code);
  if (message)
    creds_sanitize_message (message);
  report_error ("container credentials: %s: HTTP %ld%s%s%s%s", url, status,
                code ? ": " : "", code ? code : "", message ? ": " : "",
                message ? message : "");
}

/* See creds-container.h. */
int
creds_fetch_container (const char *cainfo, struct aws_creds **out)
{
  CLEANUP_FREE char *url = NULL;
  CLEANUP_FREE_SECRET char *header = NULL;
  CLEANUP_SLIST struct curl_slist *headers = NULL;
  CLEANUP_HTTP_BODY struct http_body body = { 0 };
  char errbuf[CURL_ERROR_SIZE];
  struct http_request req = { 0 };
  bool none;
  long status = 0;
  int r;

  *out = NULL;
  url = container_url (&none);
  if (url == NULL)
    return none ? 1 : -1;
  header = auth_header (&none);
  if (header == NULL && !none)
    return -1;
  if (header) {
    headers = curl_slist_append (NULL, header);
    if (headers == NULL) {
      report_error ("curl_slist_append: out of memory");
      return -1;
    }
  }

  report_debug ("credentials: container endpoint %s%s", url,
                header ? ", with an authorization token" : "");
  req.url = url;
  req.headers = headers;
  req.connect_ms = CONTAINER_CONNECT_MS;
  req.total_ms = CONTAINER_TOTAL_MS;
  /* Local endpoints are never reached through a proxy. */
  req.no_proxy = strncasecmp (url, "https://", 8) != 0;
  req.cainfo = cainfo;
  r = creds_http_do (&req, &body, &status, errbuf);
  /* NB: the list holds its own copy of the header, with the token. */
  if (headers)
    explicit_bzero (headers->data, strlen (headers->data));
  if (r == -1) {
    report_error ("container credentials: %s: %s", url, errbuf);
    return -1;
  }
  if (status != 200) {
    container_report_error (url, status, &body);
    return -1;
  }
  if (creds_from_fields_opt ("container credentials", false, body.data,
                             body.len, "Token", false, "container", out) == -1)
    return -1;
  if (creds_set_origin (*out, "container endpoint %s", url) == -1) {
    creds_put (*out);
    *out = NULL;
    return -1;
  }
  return 0;
}
