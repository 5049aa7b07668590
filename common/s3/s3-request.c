/* accel: one HTTP exchange with S3.
 *
 * s3_perform signs and sends one request and streams its body into the
 * caller's buffer or fd, never past the size asked for.  Error bodies
 * go to a small separate buffer, so that S3's <Code> and <Message> can
 * be shown.  Whether the exchange gave what we asked for is decided
 * afterwards, by s3-check.c.  A request body (uploads) is signed with
 * its SHA-256 and streamed from memory or, with pread, from a file.
 *
 * NB: no message or trace here contains the secret key, the session
 * token, the Authorization header or a URL's query string.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cleanup.h"
#include "clock.h"
#include "creds.h"
#include "file-io.h"
#include "http-parse.h"
#include "http.h"
#include "report.h"
#include "s3-internal.h"
#include "s3-url.h"
#include "sigv4.h"

/* SHA-256 of the empty body of GET and HEAD. */
#define EMPTY_SHA256                                                           \
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Past this many bytes of an error body we give up on the connection
 * rather than read a hostile server's endless reply.
 */
#define MAX_ERROR_BODY_READ (64 * HTTP_MAX_ERROR_BODY)

/* A response starts empty; the callbacks fill it in. */
void
s3_response_init (struct s3_response *rs)
{
  memset (rs, 0, sizeof *rs);
}

/* Frees only the error body: the rest stays readable. */
void
s3_response_free (struct s3_response *rs)
{
  free (rs->err_body);
  rs->err_body = NULL;
  rs->err_len = 0;
}

/* Remember one header's value.  A value too long for our buffer, or a
 * header sent twice, is kept as "" so that it fails every check.
 */
static void
store_header (struct s3_header *h, const char *value, size_t len)
{
  h->count++;
  if (h->count > 1 || len >= sizeof h->value || memchr (value, 0, len)) {
    h->value[0] = '\0';
    return;
  }
  memcpy (h->value, value, len);
  h->value[len] = '\0';
}

/* Forget the headers of an interim (1xx) response. */
static void
reset_headers (struct s3_response *rs)
{
  memset (&rs->content_range, 0, sizeof rs->content_range);
  memset (&rs->content_length, 0, sizeof rs->content_length);
  memset (&rs->content_encoding, 0, sizeof rs->content_encoding);
  memset (&rs->etag, 0, sizeof rs->etag);
  memset (&rs->bucket_region, 0, sizeof rs->bucket_region);
  memset (&rs->version_id, 0, sizeof rs->version_id);
  memset (&rs->image_sha256, 0, sizeof rs->image_sha256);
}

/* libcurl calls this once per header line ("Name: value\r\n", not
 * NUL-terminated); we keep only the few headers we check.  Not static:
 * tests/fuzz/fuzz-http.c feeds it header blocks.
 */
size_t
s3_response_header (char *ptr, size_t size, size_t nitems, void *opaque)
{
  struct s3_response *rs = opaque;
  size_t n = size * nitems, len = n, name_len, vlen;
  const char *colon, *value;
  struct s3_header *h;

  if (len >= 5 && memcmp (ptr, "HTTP/", 5) == 0) {
    reset_headers (rs);
    return n;
  }
  while (len > 0 && (ptr[len - 1] == '\r' || ptr[len - 1] == '\n'))
    len--;
  colon = memchr (ptr, ':', len);
  if (colon == NULL)
    return n;
  name_len = colon - ptr;
  value = colon + 1;
  vlen = len - name_len - 1;
  while (vlen > 0 && (*value == ' ' || *value == '\t'))
    value++, vlen--;
  while (vlen > 0 && (value[vlen - 1] == ' ' || value[vlen - 1] == '\t'))
    vlen--;

#define IS(s) (name_len == strlen (s) && strncasecmp (ptr, s, name_len) == 0)
  if (IS ("content-range"))
    h = &rs->content_range;
  else if (IS ("content-length"))
    h = &rs->content_length;
  else if (IS ("content-encoding"))
    h = &rs->content_encoding;
  else if (IS ("etag"))
    h = &rs->etag;
  else if (IS ("x-amz-bucket-region"))
    h = &rs->bucket_region;
  else if (IS ("x-amz-version-id"))
    h = &rs->version_id;
  else if (IS (S3_META_IMAGE_SHA256))
    h = &rs->image_sha256;
  else
    return n;
#undef IS
  store_header (h, value, vlen);
  return n;
}

/* Keep the start of an error body for its <Code> and <Message>. */
static size_t
keep_error_body (struct s3_response *rs, const char *ptr, size_t n)
{
  size_t room;

  rs->err_total += n;
  if (rs->err_total > MAX_ERROR_BODY_READ)
    return 0;
  if (rs->err_body == NULL) {
    rs->err_body = malloc (HTTP_MAX_ERROR_BODY);
    if (rs->err_body == NULL)
      return n; /* we only lose the details */
  }
  room = HTTP_MAX_ERROR_BODY - rs->err_len;
  if (n < room)
    room = n;
  memcpy (rs->err_body + rs->err_len, ptr, room);
  rs->err_len += room;
  return n;
}

/* A body the caller takes as it comes (s3_request.progress): no byte is
 * handed over before the headers say it is the range of the version
 * asked for, and a retry does not write over what the caller took and
 * may be reading; it does write over the rest of what a failed attempt
 * sent, which need not be the object's bytes.
 */
static size_t
write_progress (struct s3_response *rs, const char *ptr, size_t n)
{
  const struct s3_request *rq = rs->rq;
  struct s3_progress *p = rq->progress;
  uint64_t end = rs->got + n;

  if (!rs->headers_checked) {
    rs->headers_checked = true;
    /* (s3_perform learns it only at the end) */
    curl_easy_getinfo (rs->curl, CURLINFO_RESPONSE_CODE, &rs->status);
    if (!s3_read_headers_ok (rq, rs)) {
      rs->headers_rejected = true;
      return 0;
    }
  }
  if (end > p->done) {
    uint64_t skip = p->done > rs->got ? p->done - rs->got : 0;

    memcpy (rq->buf + rs->got + skip, ptr + skip, n - skip);
    /* Only what the caller took is final (s3.h). */
    p->done = p->fn (p->opaque, end);
  }
  rs->got = end;
  return n;
}

/* libcurl calls this with each piece of the body.  A 2xx body goes to
 * the caller, bounded by rq->len: returning less than n makes libcurl
 * abort the transfer (CURLE_WRITE_ERROR), which is how an oversized
 * body becomes an error instead of an overflow.
 */
static size_t
write_cb (char *ptr, size_t size, size_t nmemb, void *opaque)
{
  struct s3_response *rs = opaque;
  const struct s3_request *rq = rs->rq;
  size_t n = size * nmemb;
  long status = 0;

  curl_easy_getinfo (rs->curl, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status > 299)
    return keep_error_body (rs, ptr, n);

  if (n > rq->len - rs->got || (rq->buf == NULL && rq->fd < 0)) {
    rs->overflow = true;
    return 0;
  }
  if (rq->progress)
    return write_progress (rs, ptr, n);
  if (rq->buf)
    memcpy (rq->buf + rs->got, ptr, n);
  else if (write_full (rq->fd, ptr, n) == -1) {
    rs->write_errno = errno;
    return 0;
  }
  rs->got += n;
  return n;
}

/* libcurl asks for the request body piece by piece, again from the
 * start on every attempt (rs is new each time), so a retried part is
 * read from the file again.  A file that ends early is not padded:
 * the transfer is aborted and s3-check.c says why.
 */
static size_t
read_cb (char *ptr, size_t size, size_t nitems, void *opaque)
{
  struct s3_response *rs = opaque;
  const struct s3_request *rq = rs->rq;
  uint64_t left = rq->body_len - rs->sent;
  size_t n = size * nitems;
  ssize_t r;

  if (n > left)
    n = left;
  if (n == 0)
    return 0;
  if (rq->body)
    memcpy (ptr, rq->body + rs->sent, n);
  else {
    do
      r = pread (rq->body_fd, ptr, n, rq->body_offset + rs->sent);
    while (r == -1 && errno == EINTR);
    if (r == -1) {
      rs->read_errno = errno;
      return CURL_READFUNC_ABORT;
    }
    if (r == 0) {
      rs->body_shrank = true;
      return CURL_READFUNC_ABORT;
    }
    n = r;
  }
  rs->sent += n;
  return n;
}

/* libcurl rewinds the body when it must send it again on a new
 * connection (a kept-alive one that the server had closed).
 */
static int
seek_cb (void *opaque, curl_off_t offset, int origin)
{
  struct s3_response *rs = opaque;

  if (origin != SEEK_SET || offset < 0 || (uint64_t) offset > rs->rq->body_len)
    return CURL_SEEKFUNC_CANTSEEK;
  rs->sent = offset;
  return CURL_SEEKFUNC_OK;
}

/* Append "name: value" to a header list, or "name:" for an empty
 * value, which tells libcurl not to send a header it would add itself
 * (Expect).  The line is wiped before it is freed, since some values
 * (token, signature) are secrets.
 */
static int
add_header (struct curl_slist **list, const char *name, const char *value)
{
  size_t nlen = strlen (name), vlen = strlen (value);
  struct curl_slist *l;
  char *line;

  line = malloc (nlen + vlen + 3);
  if (line == NULL) {
    report_error ("malloc: %m");
    return -1;
  }
  memcpy (line, name, nlen);
  memcpy (line + nlen, ": ", 2);
  memcpy (line + nlen + (vlen ? 2 : 1), value, vlen + 1);
  l = curl_slist_append (*list, line);
  explicit_bzero (line, nlen + vlen + 2);
  free (line);
  if (l == NULL) {
    report_error ("curl_slist_append: out of memory");
    errno = ENOMEM;
    return -1;
  }
  *list = l;
  return 0;
}

/* "AKIA...MPLE": enough to tell keys apart, for messages. */
static void
set_key_hint (struct s3_response *rs, const char *key)
{
  size_t len = strlen (key);

  if (len >= 12)
    snprintf (rs->key_hint, sizeof rs->key_hint, "%.4s...%s", key,
              key + len - 4);
  else
    snprintf (rs->key_hint, sizeof rs->key_hint, "%.2s...", key);
}

/* Add the SigV4 headers (host, x-amz-date, x-amz-content-sha256,
 * x-amz-security-token, Authorization) to *list, with the credentials
 * of the moment, signing Content-MD5, Content-Type and our metadata
 * too when rq has them.  Nothing is added if the provider says anonymous.
 */
static int
sign_request (struct creds_provider *provider, const char *region,
              const struct s3_url *url, const struct s3_request *rq,
              struct curl_slist **list, struct s3_response *rs)
{
  const char *payload_hash = rq->body_sha256 ? rq->body_sha256 : EMPTY_SHA256;
  struct aws_creds *cr = NULL;
  char amz_date[17];
  struct sigv4_kv h[7];
  size_t nh = 0;
  struct sigv4_request sr;
  char *auth = NULL;
  int r, ret = -1;

  r = creds_provider_get (provider, &cr);
  if (r == -1)
    return -1;
  if (r == 1) {
    rs->anonymous = true;
    return 0;
  }
  rs->was_signed = true;
  set_key_hint (rs, cr->access_key);
  snprintf (rs->creds_source, sizeof rs->creds_source, "%s",
            cr->source ? cr->source : "?");

  if (sigv4_format_date (now_wall_seconds (), amz_date) == -1)
    goto out;
  h[nh++] = (struct sigv4_kv){ "host", url->host };
  h[nh++] = (struct sigv4_kv){ "x-amz-content-sha256", payload_hash };
  h[nh++] = (struct sigv4_kv){ "x-amz-date", amz_date };
  if (cr->session_token)
    h[nh++] = (struct sigv4_kv){ "x-amz-security-token", cr->session_token };
  if (rq->content_md5)
    h[nh++] = (struct sigv4_kv){ "Content-MD5", rq->content_md5 };
  if (rq->content_type)
    h[nh++] = (struct sigv4_kv){ "Content-Type", rq->content_type };
  if (rq->image_sha256)
    h[nh++] = (struct sigv4_kv){ S3_META_IMAGE_SHA256, rq->image_sha256 };
  sr = (struct sigv4_request){
    .method = rq->method,
    .path = url->path,
    .query = rq->query,
    .nr_query = rq->nr_query,
    .headers = h,
    .nr_headers = nh,
    .payload_hash = payload_hash,
    .region = region,
    .service = "s3",
    .amz_date = amz_date,
  };
  auth = sigv4_authorization (&sr, cr->access_key, cr->secret_key, ", ");
  if (auth == NULL)
    goto out;

  /* We set Host ourselves so that what is sent is what was signed. */
  for (size_t i = 0; i < nh; i++)
    if (add_header (list, i == 0 ? "Host" : h[i].name, h[i].value) == -1)
      goto out;
  if (add_header (list, "Authorization", auth) == -1)
    goto out;
  ret = 0;

out:
  if (auth) {
    explicit_bzero (auth, strlen (auth));
    free (auth);
  }
  creds_put (cr);
  return ret;
}

/* Fail the attempt on a setopt error (which only a libcurl that lacks
 * a feature would give).
 */
#define SETOPT(h, opt, val)                                                    \
  do {                                                                         \
    CURLcode _r = curl_easy_setopt (h, opt, val);                              \
    if (_r != CURLE_OK) {                                                      \
      report_error ("libcurl: cannot set %s: %s", #opt,                        \
                    curl_easy_strerror (_r));                                  \
      errno = EIO;                                                             \
      goto out;                                                                \
    }                                                                          \
  } while (0)

/* The URL to request: url's, followed by rq's query parameters, each
 * name and value encoded exactly as the signer encodes them.
 */
static char *
request_url (const struct s3_url *url, const struct s3_request *rq)
{
  char *r = NULL;
  size_t len = 0, i;
  FILE *fp;

  if (rq->nr_query > 0 && (!url->sign || strchr (url->url, '?'))) {
    report_error ("%s: query parameters need an s3:// URL", url->name);
    errno = EINVAL;
    return NULL;
  }
  fp = open_memstream (&r, &len);
  if (fp == NULL) {
    report_error ("open_memstream: %m");
    return NULL;
  }
  fputs (url->url, fp);
  for (i = 0; i < rq->nr_query; i++) {
    CLEANUP_FREE char *name = sigv4_uri_encode (rq->query[i].name, true);
    CLEANUP_FREE char *value = sigv4_uri_encode (rq->query[i].value, true);

    if (name == NULL || value == NULL) {
      fclose (fp);
      free (r);
      return NULL;
    }
    fprintf (fp, "%c%s=%s", i == 0 ? '?' : '&', name, value);
  }
  if (fclose (fp) == EOF) {
    report_error ("%s: building the request URL: %m", url->name);
    free (r);
    return NULL;
  }
  return r;
}

/* Method-specific options: how libcurl sends the request and counts
 * it.  Returns 0, or -1 after report_error.
 */
static int
set_method (CURL *h, const struct s3_request *rq, struct s3_response *rs,
            struct s3_counters *counters)
{
  _Atomic uint64_t *counter;

  if (strcmp (rq->method, "HEAD") == 0) {
    SETOPT (h, CURLOPT_NOBODY, 1L);
    counter = &counters->heads;
  }
  else if (strcmp (rq->method, "PUT") == 0) {
    SETOPT (h, CURLOPT_UPLOAD, 1L);
    SETOPT (h, CURLOPT_INFILESIZE_LARGE, (curl_off_t) rq->body_len);
    counter = &counters->puts;
  }
  else if (strcmp (rq->method, "POST") == 0) {
    SETOPT (h, CURLOPT_POST, 1L);
    SETOPT (h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) rq->body_len);
    counter = &counters->posts;
  }
  else if (strcmp (rq->method, "DELETE") == 0) {
    SETOPT (h, CURLOPT_CUSTOMREQUEST, "DELETE");
    counter = &counters->deletes;
  }
  else {
    SETOPT (h, CURLOPT_HTTPGET, 1L);
    counter = &counters->gets;
  }
  /* Always ours: libcurl's default would read stdin. */
  SETOPT (h, CURLOPT_READFUNCTION, read_cb);
  SETOPT (h, CURLOPT_READDATA, rs);
  SETOPT (h, CURLOPT_SEEKFUNCTION, seek_cb);
  SETOPT (h, CURLOPT_SEEKDATA, rs);
  atomic_fetch_add_explicit (&counters->requests, 1, memory_order_relaxed);
  atomic_fetch_add_explicit (counter, 1, memory_order_relaxed);
  return 0;

out:
  return -1;
}

/* NB: here, where each attempt reads it, rather than in s3.c (whose
 * retry loop reads it too): s3.c uses this file, not the reverse.
 */
static __thread uint64_t thread_deadline;

void
s3_set_thread_deadline (uint64_t ns)
{
  thread_deadline = ns;
}

uint64_t
s3_thread_deadline (void)
{
  return thread_deadline;
}

/* One attempt: sign, send, stream.  Judging is left to s3-check.c. */
int
s3_perform (struct http_pool *pool, struct creds_provider *creds,
            const char *region, const struct s3_url *url,
            const struct s3_request *rq, struct s3_response *rs,
            struct s3_counters *counters)
{
  CLEANUP_HTTP_CONN_PUT struct http_conn *conn = NULL;
  CLEANUP_FREE char *req_url = NULL;
  struct curl_slist *list = NULL;
  char range[64] = "", trace[160] = "", sent[48] = "";
  uint64_t t0;
  long ms;
  int ret = -1;

  rs->rq = rq;
  req_url = request_url (url, rq);
  if (req_url == NULL)
    goto out;
  /* Before taking a handle: getting credentials may mean a refresh. */
  if (url->sign && sign_request (creds, region, url, rq, &list, rs) == -1)
    goto out;
  if (rq->has_range) {
    snprintf (range, sizeof range, "bytes=%" PRIu64 "-%" PRIu64, rq->first,
              rq->last);
    if (add_header (&list, "Range", range) == -1)
      goto out;
    snprintf (trace, sizeof trace, " %s", range);
  }
  if (rq->if_match && add_header (&list, "If-Match", rq->if_match) == -1)
    goto out;
  /* Signed headers were added by sign_request; unsigned requests
   * (anonymous) still send them.
   */
  if (!rs->was_signed) {
    if (rq->content_md5 &&
        add_header (&list, "Content-MD5", rq->content_md5) == -1)
      goto out;
    if (rq->content_type &&
        add_header (&list, "Content-Type", rq->content_type) == -1)
      goto out;
    if (rq->image_sha256 &&
        add_header (&list, S3_META_IMAGE_SHA256, rq->image_sha256) == -1)
      goto out;
  }
  /* Waiting for "100 Continue" costs a round trip per part. */
  if (rq->body_len > 0 && add_header (&list, "Expect", "") == -1)
    goto out;
  if (rq->what)
    snprintf (trace + strlen (trace), sizeof trace - strlen (trace), " (%s)",
              rq->what);

  conn = http_conn_get (pool);
  if (conn == NULL)
    goto out;
  rs->curl = conn->curl;
  if (s3_thread_deadline () &&
      http_conn_deadline (conn, s3_thread_deadline ()) == -1) {
    report_error ("%s: not sent: no time left for it", url->name);
    errno = ETIMEDOUT;
    goto out;
  }
  SETOPT (conn->curl, CURLOPT_URL, req_url);
  SETOPT (conn->curl, CURLOPT_HTTPHEADER, list);
  SETOPT (conn->curl, CURLOPT_HEADERFUNCTION, s3_response_header);
  SETOPT (conn->curl, CURLOPT_HEADERDATA, rs);
  SETOPT (conn->curl, CURLOPT_WRITEFUNCTION, write_cb);
  SETOPT (conn->curl, CURLOPT_WRITEDATA, rs);
  if (set_method (conn->curl, rq, rs, counters) == -1)
    goto out;

  t0 = now_monotonic_ns ();
  rs->cc = curl_easy_perform (conn->curl);
  atomic_fetch_add_explicit (&counters->sent, rs->sent, memory_order_relaxed);
  curl_easy_getinfo (conn->curl, CURLINFO_RESPONSE_CODE, &rs->status);
  snprintf (rs->curl_error, sizeof rs->curl_error, "%s", conn->errbuf);

  ms = (now_monotonic_ns () - t0) / 1000000;
  if (rq->body_len > 0)
    snprintf (sent, sizeof sent, "%" PRIu64 " bytes sent, ", rs->sent);
  if (rs->cc == CURLE_OK)
    report_debug ("s3: %s %s%s: %ld, %s%" PRIu64 " bytes, %ld ms", rq->method,
                  url->name, trace, rs->status, sent, rs->got, ms);
  else
    report_debug ("s3: %s %s%s: %ld, %s, %ld ms", rq->method, url->name, trace,
                  rs->status, curl_easy_strerror (rs->cc), ms);
  ret = 0;

out:
  /* NB: the handle keeps a pointer to list until its next reset, but
   * it will not be used before then.
   */
  curl_slist_free_all (list);
  return ret;
}
