/* accel: reading objects from S3 by range (see s3.h).
 *
 * This file owns clients and objects, and turns each request (a read
 * here, a step of an upload in s3-upload.c) into a loop of attempts.
 * One attempt (s3-request.c) takes a handle from the pool, signs the
 * request with the current credentials, streams the body straight
 * into the caller's buffer (bounded: a server that sends more than we
 * asked for is an error, never an overflow), and judges the response
 * against RFC 9110 and what we know of the object: done, retry
 * (transient: 5xx, 429, reset, timeout, short body) or fail, with a
 * message.  Only the loop here reports, once, after the last attempt,
 * so a retried hiccup leaves nothing but a debug line.
 *
 * Throttle answers (SlowDown) are back-pressure, not failures: every
 * attempt first waits for a slot of the throttle (throttle.h), which
 * such answers slow down, and they are sent again for as long as the
 * throttle budget lasts, without using up the retries.
 */

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cleanup.h"
#include "clock.h"
#include "creds.h"
#include "http-parse.h"
#include "http.h"
#include "report.h"
#include "s3-internal.h"
#include "s3-url.h"
#include "s3.h"
#include "sigv4.h"
#include "throttle.h"

/* Full-jitter exponential backoff between attempts. */
#define BACKOFF_BASE_MS 100
#define BACKOFF_CAP_MS 5000

struct s3_client {
  char *endpoint, *region, *profile;
  unsigned retries;
  uint64_t throttle_ns; /* throttle budget of one request */
  uint64_t budget_ns; /* s3_client_budget_ns */
  struct throttle *throttle;
  struct http_pool *pool;
  struct creds_provider *creds;
  struct s3_counters counters;
};

struct s3_object {
  struct s3_client *c;
  struct s3_url url;
  uint64_t size;
  char etag[HTTP_MAX_ETAG];

  /* The version pinned at open ("" if none: an unversioned bucket or a
   * presigned URL), sent as versionId= on every read so that the key
   * can be overwritten while we serve (see pin_version).
   */
  char version_id[HTTP_MAX_VERSION_ID];
  struct sigv4_kv version_query;

  char image_sha256[65]; /* S3_META_IMAGE_SHA256, lowercase; "" if none */
};

/* Defaults in one place, so that a zeroed config does not mean "no
 * TLS verification".
 */
void
s3_config_init (struct s3_config *cfg)
{
  memset (cfg, 0, sizeof *cfg);
  cfg->connections = HTTP_DEFAULT_CONNECTIONS;
  cfg->retries = S3_DEFAULT_RETRIES;
  cfg->throttle_timeout = S3_DEFAULT_THROTTLE_TIMEOUT;
  cfg->tls_verify = true;
}

/* strdup that accepts NULL (optional settings). */
static int
dup_opt (const char *s, char **out)
{
  *out = NULL;
  if (s && (*out = strdup (s)) == NULL) {
    report_error ("strdup: %m");
    return -1;
  }
  return 0;
}

/* A client is shared by all objects and threads: one pool of
 * connections, one source of credentials.  The endpoint and CA bundle
 * are chosen here, once, as the AWS CLI chooses them (endpoint.h).
 */
struct s3_client *
s3_client_new (const struct s3_config *cfg)
{
  struct s3_client *c;
  struct endpoint_setting ep = { 0 }, ca = { 0 };
  struct http_pool_config pc = {
    .connections = cfg->connections,
    .timeout = cfg->timeout,
    .tls_verify = cfg->tls_verify,
  };

  if (cfg->retries > S3_MAX_RETRIES) {
    report_error ("retries=%u: the most is %d", cfg->retries, S3_MAX_RETRIES);
    errno = EINVAL;
    return NULL;
  }
  if (cfg->region && !s3_region_valid (cfg->region)) {
    report_error ("region=%s: invalid region name", cfg->region);
    errno = EINVAL;
    return NULL;
  }

  c = calloc (1, sizeof *c);
  if (c == NULL) {
    report_error ("calloc: %m");
    return NULL;
  }
  c->retries = cfg->retries;
  c->throttle_ns = cfg->throttle_timeout * UINT64_C (1000000000);
  if (cfg->timeout > 0) {
    uint64_t t = cfg->timeout * UINT64_C (1000000000);
    uint64_t real = (cfg->retries + UINT64_C (1)) * t;

    c->budget_ns = real > c->throttle_ns + t ? real : c->throttle_ns + t;
  }
  c->throttle = throttle_new (cfg->connections ? cfg->connections
                                               : HTTP_DEFAULT_CONNECTIONS);
  if (c->throttle == NULL)
    goto err;
  if (dup_opt (cfg->profile, &c->profile) == -1)
    goto err;
  if (creds_endpoint (cfg->profile, "s3", cfg->endpoint, cfg->cainfo, &ep,
                      &ca) == -1)
    goto err;
  c->endpoint = ep.value; /* NULL: AWS */
  ep.value = NULL;
  pc.cainfo = ca.value;
  if (cfg->region) {
    if (dup_opt (cfg->region, &c->region) == -1)
      goto err;
  }
  else if ((c->region = creds_default_region (cfg->profile)) == NULL)
    goto err;

  /* The pool first: it initializes libcurl, which creds.h needs. */
  c->pool = http_pool_new (&pc);
  if (c->pool == NULL)
    goto err;
  c->creds = creds_provider_new (cfg->profile, cfg->cainfo);
  if (c->creds == NULL)
    goto err;
  endpoint_setting_free (&ep);
  endpoint_setting_free (&ca);
  return c;

err:
  endpoint_setting_free (&ep);
  endpoint_setting_free (&ca);
  s3_client_free (c);
  return NULL;
}

/* The endpoint chosen by s3_client_new, or NULL for AWS. */
const char *
s3_client_endpoint (const struct s3_client *c)
{
  return c->endpoint;
}

/* Shutdown: cut every request under way and retry none. */
void
s3_client_abort (struct s3_client *c)
{
  if (c)
    http_pool_abort (c->pool);
}

/* The node's throttle state, shared through a file. */
int
s3_client_share_throttle (struct s3_client *c, const char *path)
{
  return throttle_share (c->throttle, path);
}

/* Each thread's class; nbdkit's threads, which serve clients, keep the
 * first.
 */
static __thread enum s3_priority thread_priority = S3_PRIORITY_DEMAND;

void
s3_set_thread_priority (enum s3_priority prio)
{
  thread_priority = prio;
}

enum s3_priority
s3_thread_priority (void)
{
  return thread_priority;
}

uint64_t
s3_client_budget_ns (const struct s3_client *c)
{
  return c->budget_ns;
}

/* Free a client after its last object is closed. */
void
s3_client_free (struct s3_client *c)
{
  if (c == NULL)
    return;
  if (c->creds)
    creds_provider_free (c->creds);
  http_pool_free (c->pool);
  throttle_free (c->throttle);
  free (c->endpoint);
  free (c->region);
  free (c->profile);
  free (c);
}

/* Each counter is read on its own: the snapshot is not atomic as a
 * whole, which is fine for statistics.
 */
void
s3_counters_snapshot (struct s3_counters *k, struct s3_stats *out)
{
  out->requests = atomic_load_explicit (&k->requests, memory_order_relaxed);
  out->gets = atomic_load_explicit (&k->gets, memory_order_relaxed);
  out->heads = atomic_load_explicit (&k->heads, memory_order_relaxed);
  out->puts = atomic_load_explicit (&k->puts, memory_order_relaxed);
  out->posts = atomic_load_explicit (&k->posts, memory_order_relaxed);
  out->deletes = atomic_load_explicit (&k->deletes, memory_order_relaxed);
  out->bytes = atomic_load_explicit (&k->bytes, memory_order_relaxed);
  out->sent = atomic_load_explicit (&k->sent, memory_order_relaxed);
  out->retries = atomic_load_explicit (&k->retries, memory_order_relaxed);
  out->errors = atomic_load_explicit (&k->errors, memory_order_relaxed);
  out->slowdowns = atomic_load_explicit (&k->slowdowns, memory_order_relaxed);
  out->throttled_us =
      atomic_load_explicit (&k->throttled_us, memory_order_relaxed);
  out->throttle_rate = 0;
}

/* For --stats and debug output. */
void
s3_client_stats (struct s3_client *c, struct s3_stats *out)
{
  s3_counters_snapshot (&c->counters, out);
  out->throttle_rate = throttle_rate (c->throttle);
}

/* A random delay in [0, min (cap, base * 2^attempt)] ms.  Full jitter
 * (rather than equal or none) spreads the retries of many threads that
 * all failed at once, e.g. on SlowDown.
 */
static unsigned
backoff_ms (unsigned attempt)
{
  static __thread uint64_t state;
  uint64_t ceiling = BACKOFF_CAP_MS;

  if (attempt < 16 && ((uint64_t) BACKOFF_BASE_MS << attempt) < ceiling)
    ceiling = (uint64_t) BACKOFF_BASE_MS << attempt;

  /* xorshift64, seeded per thread from the clock and the thread. */
  if (state == 0)
    state = now_monotonic_ns () ^ (uint64_t) pthread_self () ^
        0x9e3779b97f4a7c15ULL;
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state % (ceiling + 1);
}

/* Sleep for ms milliseconds, carrying on after signals. */
static void
sleep_ms (unsigned ms)
{
  struct timespec ts = { .tv_sec = ms / 1000,
                         .tv_nsec = (long) (ms % 1000) * 1000000 };

  while (nanosleep (&ts, &ts) == -1 && errno == EINTR)
    ;
}

/* Put fd back where a whole-object download started, for a retry.
 * Returns false if it cannot be done (a pipe, say).
 */
static bool
rewind_fd (int fd, off_t start)
{
  if (start < 0)
    return false;
  return ftruncate (fd, start) == 0 && lseek (fd, start, SEEK_SET) == start;
}

/* A response to HEAD has no body, so a HEAD that failed with 4xx
 * tells only the status, while S3's <Code> (SignatureDoesNotMatch or
 * InvalidAccessKeyId, NoSuchBucket or NoSuchKey) is what says what to
 * fix.  Ask again with a GET of byte 0 and, if the status is the same,
 * use its message instead.  Only ever on the way to reporting an error.
 */
static void
explain_head_failure (struct s3_client *c, const struct s3_url *url,
                      long status, char *msg, size_t msglen, int *err)
{
  struct s3_request rq = { .purpose = S3_OPEN, .method = "GET", .fd = -1 };
  struct s3_response rs;
  enum s3_outcome outcome;
  char byte0, msg2[2048];
  int r, err2;

  if (status != 400 && status != 401 && status != 403 && status != 404)
    return;
  rq.has_range = true;
  rq.buf = &byte0;
  rq.len = 1;
  s3_response_init (&rs);
  r = s3_perform (c->pool, c->creds, c->region, url, &rq, &rs, &c->counters);
  if (r == 0 && rs.status == status) {
    outcome = s3_check_response (url, &rq, &rs, msg2, sizeof msg2, &err2);
    if (outcome != S3_OK) {
      snprintf (msg, msglen, "%s", msg2);
      *err = err2;
    }
  }
  s3_response_free (&rs);
}

/* Every s3:// URL of this client is made with its endpoint and region. */
int
s3_client_url (struct s3_client *c, const char *url, struct s3_url *out)
{
  return s3_url_parse (url, c->endpoint, c->region, out);
}

/* Time spent waiting for throttle slots, for the counters. */
static void
count_throttled (struct s3_client *c, uint64_t ns)
{
  atomic_fetch_add_explicit (&c->counters.throttled_us, ns / 1000,
                             memory_order_relaxed);
}

/* The message of a request not sent because the read's time
 * (s3_set_thread_deadline) is up.
 */
static void
out_of_time (char *msg, size_t len, bool held_back)
{
  snprintf (msg, len,
            "not sent: the read has used up its time (timeout= x "
            "(retries=+1), or throttle-timeout=) on earlier requests%s",
            held_back ? ", held back by the origin's throttling" : "");
}

/* Attempts until success, a permanent failure, the last retry or the
 * end of the throttle budget; then one message, reported or handed
 * back in errbuf.  Each attempt first waits for a throttle slot.
 */
int
s3_run (struct s3_client *c, const struct s3_url *url,
        const struct s3_request *rq, struct s3_response *out, char *errbuf,
        size_t errlen)
{
  off_t fd_start = -1;
  unsigned attempt = 0, throttled = 0;
  uint64_t deadline = now_monotonic_ns () + c->throttle_ns, waited_all = 0;
  uint64_t limit = s3_thread_deadline ();
  char line[2560], slow_msg[2048] = "";

  if (limit && limit < deadline)
    deadline = limit;

  if (rq->fd >= 0)
    fd_start = lseek (rq->fd, 0, SEEK_CUR);

  /* retry: this attempt is a retry after a real error. */
  for (bool retry = false;;) {
    struct s3_response rs;
    enum s3_outcome outcome;
    char msg[2048], gave_up[96] = "";
    int r, err = EIO;
    uint64_t waited = 0, sent;
    bool slow;
    unsigned ms;

    /* NB: before throttle_wait, which takes a slot that only
     * throttle_done gives back (past it, s3_perform sees the deadline).
     */
    if (limit && now_monotonic_ns () >= limit) {
      out_of_time (msg, sizeof msg, throttled || waited_all);
      err = ETIMEDOUT;
      outcome = S3_FAIL;
      goto fail;
    }
    if (throttle_wait (c->throttle, thread_priority, deadline, &waited) == -1) {
      count_throttled (c, waited);
      if (errno == EAGAIN) {
        report_debug ("s3: %s%s%s: throttled: yielding to reads of a higher "
                      "priority",
                      url->name, rq->what ? ": " : "",
                      rq->what ? rq->what : "");
        if (errbuf && errlen > 0)
          errbuf[0] = '\0';
        errno = EAGAIN;
        return -1;
      }
      /* NB: EBUSY, not ETIMEDOUT: the origin answered (it throttles),
       * so it is not unreachable (offline.c must not serve offline).
       */
      err = EBUSY;
      if (limit && now_monotonic_ns () >= limit) {
        out_of_time (msg, sizeof msg, true);
        err = ETIMEDOUT;
      }
      else if (throttled > 0) {
        snprintf (msg, sizeof msg, "%s", slow_msg);
        snprintf (
            gave_up, sizeof gave_up,
            " (throttled %u times: gave up after throttle-timeout=%" PRIu64
            " s)",
            throttled, c->throttle_ns / 1000000000);
      }
      else
        snprintf (msg, sizeof msg,
                  "the origin throttles this node: no slot for the request "
                  "within throttle-timeout=%" PRIu64 " s",
                  c->throttle_ns / 1000000000);
      outcome = S3_FAIL;
      goto fail;
    }
    count_throttled (c, waited);
    waited_all += waited;
    if (retry)
      atomic_fetch_add_explicit (&c->counters.retries, 1, memory_order_relaxed);
    retry = false;
    sent = now_monotonic_ns ();
    s3_response_init (&rs);
    r = s3_perform (c->pool, c->creds, c->region, url, rq, &rs, &c->counters);
    if (r == -1) {
      throttle_done (c->throttle, sent, false);
      s3_response_free (&rs);
      goto fail_reported;
    }
    outcome = s3_check_response (url, rq, &rs, msg, sizeof msg, &err);
    slow = outcome == S3_RETRY && s3_response_throttled (&rs);
    throttle_done (c->throttle, sent, slow);
    s3_response_free (&rs);

    if (outcome == S3_OK) {
      atomic_fetch_add_explicit (&c->counters.bytes, rs.got,
                                 memory_order_relaxed);
      if (out)
        *out = rs;
      return 0;
    }
    /* Back-pressure: sent again when the throttle gives a slot. */
    if (slow) {
      throttled++;
      snprintf (slow_msg, sizeof slow_msg, "%s", msg);
      atomic_fetch_add_explicit (&c->counters.slowdowns, 1,
                                 memory_order_relaxed);
      if (now_monotonic_ns () < deadline && !http_pool_aborted (c->pool)) {
        report_debug ("s3: %s%s%s: %s: throttled (%u), sending again at a "
                      "lower rate",
                      url->name, rq->what ? ": " : "", rq->what ? rq->what : "",
                      msg, throttled);
        continue;
      }
      if (limit && now_monotonic_ns () >= limit)
        snprintf (gave_up, sizeof gave_up,
                  " (throttled %u times: gave up when the read had used up "
                  "its time)",
                  throttled);
      else
        snprintf (
            gave_up, sizeof gave_up,
            " (throttled %u times: gave up after throttle-timeout=%" PRIu64
            " s)",
            throttled, c->throttle_ns / 1000000000);
    }
    /* NB: once throttled (or held back by the throttle), a request also
     * stops retrying real errors at the end of the throttle budget, so
     * that its time stays bounded (README, "Timeouts").
     */
    else if (outcome == S3_RETRY && attempt < c->retries &&
             !http_pool_aborted (c->pool) &&
             ((throttled == 0 && waited_all == 0) ||
              now_monotonic_ns () < deadline) &&
             (limit == 0 || now_monotonic_ns () < limit)) {
      if (rq->fd >= 0 && rs.got > 0 && !rewind_fd (rq->fd, fd_start)) {
        report_error ("%s: %s (cannot retry: the output cannot be "
                      "rewound: %m)",
                      url->name, msg);
        goto fail_reported;
      }
      ms = backoff_ms (attempt);
      report_debug ("s3: %s%s%s: %s: retry %u of %u in %u ms", url->name,
                    rq->what ? ": " : "", rq->what ? rq->what : "", msg,
                    attempt + 1, c->retries, ms);
      attempt++;
      retry = true;
      sleep_ms (ms);
      continue;
    }
    else if (outcome == S3_RETRY && limit && now_monotonic_ns () >= limit)
      snprintf (gave_up, sizeof gave_up,
                " (gave up after %u attempts: the read has used up its "
                "time)",
                attempt + 1);
    else if (outcome == S3_RETRY && attempt > 0)
      snprintf (gave_up, sizeof gave_up, " (gave up after %u attempts)",
                attempt + 1);

    if (rq->missing_ok && err == ENOENT) {
      errno = ENOENT;
      return -1;
    }
    /* Cut at shutdown (s3_client_abort): nobody waits for it. */
    if (http_pool_aborted (c->pool)) {
      report_debug ("s3: %s%s%s: %s: cut short, shutting down", url->name,
                    rq->what ? ": " : "", rq->what ? rq->what : "", msg);
      errno = ECANCELED;
      return -1;
    }
    if (strcmp (rq->method, "HEAD") == 0)
      explain_head_failure (c, url, rs.status, msg, sizeof msg, &err);
fail:
    snprintf (line, sizeof line, "%s%s%s: %s%s", url->name,
              rq->what ? ": " : "", rq->what ? rq->what : "", msg, gave_up);
    if (errbuf)
      snprintf (errbuf, errlen, "%s", line);
    else
      report_error ("%s", line);
    atomic_fetch_add_explicit (&c->counters.errors, 1, memory_order_relaxed);
    errno = err;
    return -1;
  }

fail_reported:
  if (errbuf && errlen > 0)
    errbuf[0] = '\0';
  atomic_fetch_add_explicit (&c->counters.errors, 1, memory_order_relaxed);
  if (errno == 0)
    errno = EIO;
  return -1;
}

/* Pin the version the open's response named, if any.  NB: a presigned
 * URL is signed without versionId= and cannot get one added, so it
 * stays unpinned (If-Match still fails its reads on a change).
 */
static int
pin_version (struct s3_object *o, const struct s3_response *rs)
{
  int r;

  if (rs->version_id.count > 1)
    r = -1;
  else
    r = http_parse_version_id (rs->version_id.value, o->version_id);
  if (r == -1) {
    report_error ("%s: the server sent an invalid x-amz-version-id header",
                  o->url.name);
    errno = EPROTO;
    return -1;
  }
  if (r == 1 && (!o->url.sign || strchr (o->url.url, '?'))) {
    report_debug ("s3: %s: version %s is not pinned: the URL cannot take "
                  "versionId=",
                  o->url.name, o->version_id);
    o->version_id[0] = '\0';
  }
  o->version_query = (struct sigv4_kv){ "versionId", o->version_id };
  return 0;
}

/* The query of every read: versionId= if a version is pinned. */
static void
set_version_query (const struct s3_object *o, struct s3_request *rq)
{
  if (o->version_id[0]) {
    rq->query = &o->version_query;
    rq->nr_query = 1;
  }
}

/* Keep the object's S3_META_IMAGE_SHA256 if it is one.  NB: a value
 * that is not a SHA-256 is not ours to refuse the object for (anyone
 * can set metadata): it is taken as none, with a warning.
 */
static void
learn_image_sha256 (struct s3_object *o, const struct s3_response *rs)
{
  const char *v = rs->image_sha256.value;
  size_t i;

  if (rs->image_sha256.count == 0)
    return;
  for (i = 0; i < 64 && isxdigit ((unsigned char) v[i]); i++)
    o->image_sha256[i] = tolower ((unsigned char) v[i]);
  if (rs->image_sha256.count == 1 && i == 64 && v[64] == '\0') {
    o->image_sha256[64] = '\0';
    return;
  }
  o->image_sha256[0] = '\0';
  report_warning ("%s: ignoring its %s header, which is not one SHA-256 "
                  "in hex",
                  o->url.name, S3_META_IMAGE_SHA256);
}

/* Pin the object's size, ETag and version, which every later read
 * relies on.
 */
struct s3_object *
s3_object_open (struct s3_client *c, const char *url, bool missing_ok)
{
  struct s3_object *o;
  struct s3_request rq = { .fd = -1, .purpose = S3_OPEN };
  struct s3_response rs;
  char byte0;
  int saved_errno;

  o = calloc (1, sizeof *o);
  if (o == NULL) {
    report_error ("calloc: %m");
    return NULL;
  }
  o->c = c;
  if (s3_client_url (c, url, &o->url) == -1)
    goto err;

  /* A presigned URL is signed for one method: probe it with a GET of
   * the first byte, which also tells the size (Content-Range).
   */
  if (o->url.presigned) {
    rq.method = "GET";
    rq.has_range = true;
    rq.first = rq.last = 0;
    rq.buf = &byte0;
    rq.len = 1;
  }
  else
    rq.method = "HEAD";
  rq.missing_ok = missing_ok;
  if (s3_run (c, &o->url, &rq, &rs, NULL, 0) == -1)
    goto err;
  o->size = rs.size;
  memcpy (o->etag, rs.learned_etag, sizeof o->etag);
  if (pin_version (o, &rs) == -1)
    goto err;
  learn_image_sha256 (o, &rs);
  report_debug ("s3: opened %s: size %" PRIu64 ", ETag %s, version %s",
                o->url.name, o->size, o->etag,
                o->version_id[0] ? o->version_id : "none");
  return o;

err:
  saved_errno = errno;
  s3_object_close (o);
  errno = saved_errno;
  return NULL;
}

/* Objects hold no connection: closing just frees memory. */
void
s3_object_close (struct s3_object *o)
{
  if (o == NULL)
    return;
  s3_url_free (&o->url);
  free (o);
}

/* Accessors: an object never changes after open. */
uint64_t
s3_object_size (const struct s3_object *o)
{
  return o->size;
}

/* Quotes included, as sent: the value of If-Match. */
const char *
s3_object_etag (const struct s3_object *o)
{
  return o->etag;
}

/* The version pinned at open, or NULL: then a change of the object
 * fails reads (If-Match) instead of being survived.
 */
const char *
s3_object_version_id (const struct s3_object *o)
{
  return o->version_id[0] ? o->version_id : NULL;
}

/* The SHA-256 its publisher gave it, or NULL. */
const char *
s3_object_image_sha256 (const struct s3_object *o)
{
  return o->image_sha256[0] ? o->image_sha256 : NULL;
}

/* What messages call the object (no secrets, no query string). */
const char *
s3_object_name (const struct s3_object *o)
{
  return o->url.name;
}

/* What a cache may key the object by. */
const char *
s3_object_identity (const struct s3_object *o)
{
  return o->url.identity;
}

/* The hot path: one ranged GET per call, from any thread, checked
 * against the size and ETag pinned at open.
 */
int
s3_object_get_range (struct s3_object *o, uint64_t offset, uint64_t len,
                     void *buf)
{
  return s3_object_get_range_progress (o, offset, len, buf, NULL);
}

int
s3_object_get_range_progress (struct s3_object *o, uint64_t offset,
                              uint64_t len, void *buf,
                              struct s3_progress *progress)
{
  struct s3_request rq = { .fd = -1, .purpose = S3_READ_RANGE };

  if (len == 0 && offset <= o->size)
    return 0;
  if (offset > o->size || len > o->size - offset) {
    report_error ("%s: read of %" PRIu64 " bytes at offset %" PRIu64
                  " is beyond the end of the object (%" PRIu64 " bytes)",
                  o->url.name, len, offset, o->size);
    errno = ERANGE;
    return -1;
  }
  rq.method = "GET";
  rq.has_range = true;
  rq.first = offset;
  rq.last = offset + len - 1;
  rq.buf = buf;
  rq.len = len;
  rq.if_match = o->etag;
  rq.size = o->size;
  rq.progress = progress;
  set_version_query (o, &rq);
  return s3_run (o->c, &o->url, &rq, NULL, NULL, 0);
}

/* Small whole objects (the manifest), streamed to a file with a cap. */
int
s3_object_get_to_fd (struct s3_object *o, int fd, uint64_t max_size)
{
  struct s3_request rq = { .fd = fd, .purpose = S3_READ_ALL };

  if (o->size > max_size) {
    report_error ("%s: the object is %" PRIu64 " bytes, more than the "
                  "%" PRIu64 " allowed",
                  o->url.name, o->size, max_size);
    errno = EFBIG;
    return -1;
  }
  rq.method = "GET";
  rq.len = o->size;
  rq.if_match = o->etag;
  rq.size = o->size;
  set_version_query (o, &rq);
  return s3_run (o->c, &o->url, &rq, NULL, NULL, 0);
}
