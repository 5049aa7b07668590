/* accel: reading objects from S3 (or any HTTP server) by range.
 *
 * The plugin's read path fetches chunks of an image with ranged GETs
 * from many threads at once; the publishing tools read whole small
 * objects (the manifest).  An s3_object is opened once, which pins the
 * object's size and ETag, and every later read sends If-Match with that
 * ETag, so that if the object is replaced we fail with ESTALE instead
 * of mixing bytes of two versions.
 *
 * Errors are reported once, here, naming the object and what to check;
 * functions then return -1 (or NULL) with errno set:
 *   ENOENT  no such bucket or object        EACCES  403 (credentials?)
 *   ESTALE  the object changed since open   ERANGE  read past the end
 *   EIO     server errors after retries, protocol violations, ...
 * Transient failures (5xx, reset connections, timeouts, short bodies)
 * are retried with full-jitter exponential backoff, `retries` times.
 * Throttle answers (503 SlowDown, 503 without a body, 429) are not
 * failures but back-pressure (throttle.h): the request waits for a slot
 * under a lower rate and is sent again, for up to `throttle_timeout`
 * seconds.
 *
 * Secrets (secret key, session token, Authorization header, presigned
 * query strings) never appear in any message at any level.
 */

#ifndef ACCEL_S3_H
#define ACCEL_S3_H

#include <stdbool.h>
#include <stdint.h>

#define S3_DEFAULT_RETRIES 6
#define S3_MAX_RETRIES 100
/* Seconds a request may be throttled before it fails: with the default
 * retries and a 60 s timeout it stays inside accel-mount's nbd timeout
 * (README, "Timeouts").
 */
#define S3_DEFAULT_THROTTLE_TIMEOUT 300

/* Who a request is for, which decides who waits when the origin
 * throttles: demand reads first, then readahead, then prefetch.
 */
enum s3_priority {
  S3_PRIORITY_DEMAND,
  S3_PRIORITY_READAHEAD,
  S3_PRIORITY_PREFETCH,
};

struct s3_config {
  /* "http[s]://HOST[:PORT]" (path-style); NULL = AWS_ENDPOINT_URL_S3,
   * AWS_ENDPOINT_URL, the profile's services section or endpoint_url
   * (endpoint.h), else AWS.
   */
  const char *endpoint;
  const char *region; /* NULL = creds_default_region (profile) */
  const char *profile; /* AWS profile for credentials, NULL = default */
  unsigned connections; /* concurrent requests; 0 = default (16) */
  unsigned retries; /* retries after the first attempt (6) */
  unsigned timeout; /* seconds for one request; 0 = no limit */
  unsigned throttle_timeout; /* seconds a request may be throttled (300) */
  bool tls_verify; /* verify certificates (normally true) */
  const char *cainfo; /* CA bundle, NULL = AWS_CA_BUNDLE, profile, system */
};

/* Set cfg to the defaults: all NULL, 16 connections, 6 retries, no
 * timeout, 300 s of throttling, TLS verification on.
 */
extern void s3_config_init (struct s3_config *cfg);

/* Create a client: a connection pool and a credentials provider.  The
 * strings in cfg are copied.  Returns NULL after report_error.
 */
extern struct s3_client *s3_client_new (const struct s3_config *cfg);

/* The endpoint the client uses (explicit or configured), NULL for
 * AWS's.  It belongs to the client.
 */
extern const char *s3_client_endpoint (const struct s3_client *c);

/* Back off together with every process that shares the throttle state
 * in the file path (e.g. CACHE_DIR/throttle, docs/cache-format.md):
 * created or rebuilt as needed.  Call before other threads use c.
 * Returns -1 if the file cannot be used (a debug message says why):
 * the client then keeps its own state.
 */
extern int s3_client_share_throttle (struct s3_client *c, const char *path);

/* The class of the calling thread's requests from now on (each thread
 * starts as S3_PRIORITY_DEMAND).  While the origin throttles, a
 * request of a lower class that would wait while one of a higher class
 * waits fails at once with errno EAGAIN and no message.
 */
extern void s3_set_thread_priority (enum s3_priority prio);
extern enum s3_priority s3_thread_priority (void);

/* The longest one request of c may take, retries and throttling
 * included: the longer of (retries+1) x timeout and throttle_timeout +
 * timeout (README, "Timeouts"), in ns; 0 if timeout is 0 (no bound).
 */
extern uint64_t s3_client_budget_ns (const struct s3_client *c);

/* Until cleared (0), the calling thread's requests end by this
 * now_monotonic_ns () time: an attempt is cut when it comes (ETIMEDOUT,
 * as a timeout), and none is started or retried after it.  For work
 * made of several requests that must fit one budget, e.g. a chunk
 * fetched again after a body that failed its hash.
 */
extern void s3_set_thread_deadline (uint64_t ns);

/* Free the client.  Every object must have been closed. */
extern void s3_client_free (struct s3_client *c);
/* Shutdown: cut the requests under way (within a second) and retry none. */
extern void s3_client_abort (struct s3_client *c);

/* Open url: s3://BUCKET/KEY, or an http:// or https:// URL (public or
 * presigned).  Makes one request to learn the size and ETag (HEAD, or
 * for a URL with a query string a GET of byte 0, since a presigned URL
 * is valid for one method only).  If missing_ok and the object does not
 * exist, returns NULL with errno = ENOENT and reports nothing.
 * Otherwise returns NULL after report_error on failure.
 */
extern struct s3_object *
s3_object_open (struct s3_client *c, const char *url, bool missing_ok);

extern void s3_object_close (struct s3_object *o);

extern uint64_t s3_object_size (const struct s3_object *o);

/* The version pinned at open (x-amz-version-id of a versioned bucket),
 * sent as versionId= on every read; NULL if none.
 */
extern const char *s3_object_version_id (const struct s3_object *o);

/* The ETag as the server sent it, quotes included. */
extern const char *s3_object_etag (const struct s3_object *o);

/* The user metadata accel-mkimage gives an image it publishes: the
 * SHA-256 of the image's bytes in hex, as its manifest records it.  It
 * lets a node tell that the manifest it fetched is another version's
 * (plugin/image-open.c), whatever else the manifest says.
 */
#define S3_META_IMAGE_SHA256 "x-amz-meta-accel-image-sha256"

/* The object's S3_META_IMAGE_SHA256 as 64 lowercase hex digits, or
 * NULL if it has none (or a value that is not a SHA-256: a warning
 * said so at open).
 */
extern const char *s3_object_image_sha256 (const struct s3_object *o);

/* For messages: "s3://bucket/key", or the URL without its query. */
extern const char *s3_object_name (const struct s3_object *o);

/* A stable string naming the object (endpoint, bucket and key, or the
 * URL without its query), e.g. to key a cache.
 */
extern const char *s3_object_identity (const struct s3_object *o);

/* Read exactly len bytes at offset into buf.  Thread-safe.  Returns 0,
 * or -1 after report_error (errno ESTALE if the object changed).
 */
extern int s3_object_get_range (struct s3_object *o, uint64_t offset,
                                uint64_t len, void *buf);

/* The same, telling progress->fn(progress->opaque, done) each time more
 * of buf is filled (bytes [0, done), whose headers said they are the
 * right range of the right version).  fn returns how many of them it
 * took (used, as final): those are never written again, even by a
 * retry; the rest may be, since a failed attempt's body may be wrong
 * (a Content-Encoding, a proxy's garbage) though its headers were
 * right.  It is called in the calling thread.  Set progress->done to 0
 * first.
 */
struct s3_progress {
  uint64_t (*fn) (void *opaque, uint64_t done);
  void *opaque;
  uint64_t done;
};
extern int s3_object_get_range_progress (struct s3_object *o, uint64_t offset,
                                         uint64_t len, void *buf,
                                         struct s3_progress *progress);

/* Write the whole object to fd (from its current offset), refusing it
 * if it is larger than max_size.  For retries fd should be a regular
 * file (it is truncated back to where it started).  Returns 0, or -1
 * after report_error.
 */
extern int s3_object_get_to_fd (struct s3_object *o, int fd, uint64_t max_size);

/* Counters, summed over all threads since the client was created. */
struct s3_stats {
  uint64_t requests; /* HTTP requests sent, retries included */
  uint64_t gets; /* ... of which GET */
  uint64_t heads; /* ... of which HEAD */
  uint64_t puts; /* ... of which PUT */
  uint64_t posts; /* ... of which POST */
  uint64_t deletes; /* ... of which DELETE */
  uint64_t bytes; /* body bytes received into callers' buffers/fds */
  uint64_t sent; /* request body bytes sent (uploads), retries included */
  uint64_t retries; /* requests that were a retry */
  uint64_t errors; /* operations that failed (after any retries) */
  uint64_t slowdowns; /* throttle answers (503 SlowDown, 429...) */
  uint64_t throttled_us; /* time requests waited for a slot */
  uint64_t throttle_rate; /* the node's rate now, requests/s x 1000, 0: none */
};

/* A snapshot of the counters. */
extern void s3_client_stats (struct s3_client *c, struct s3_stats *out);

#endif /* ACCEL_S3_H */
