/* accel: a pool of libcurl handles (see http.h).
 *
 * The handles are created up front and kept on a free stack; taking
 * one pops it (waiting on a condition variable while the stack is
 * empty) and putting it back pushes it and wakes one waiter.  Nothing
 * is held locked during a transfer: owning a handle is what lets a
 * thread use it, and only the stack itself is locked, briefly.
 *
 * Handles also share libcurl's DNS cache and TLS session cache through
 * a share object, so that N connections to one host resolve it once
 * and resume one TLS session instead of doing N full handshakes.
 */

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cleanup.h"
#include "clock.h"
#include "http.h"
#include "report.h"

#define DEFAULT_CONNECT_TIMEOUT 10
#define DEFAULT_STALL_TIMEOUT 30

struct http_pool {
  unsigned connect_timeout, timeout, stall_timeout;
  bool tls_verify;
  char *cainfo;
  _Atomic bool aborted; /* http_pool_abort */

  CURLSH *share;
  /* Each protects libcurl's shared data of one kind (DNS cache, TLS
   * sessions, ...) inside share; libcurl locks them via share_lock.
   */
  pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

  struct http_conn *conns; /* all nr_conns handles */
  size_t nr_conns;

  /* lock protects free_stack and nr_free; free_cond is signalled
   * whenever a handle is pushed onto free_stack.
   */
  pthread_mutex_t lock;
  pthread_cond_t free_cond;
  struct http_conn **free_stack;
  size_t nr_free;
};

/* curl_global_init is not thread-safe in older libcurl: run it once,
 * whoever creates the first pool.
 */
static pthread_once_t global_init_once = PTHREAD_ONCE_INIT;
static CURLcode global_init_result;

/* Run by pthread_once. */
static void
global_init (void)
{
  global_init_result = curl_global_init (CURL_GLOBAL_DEFAULT);
}

/* libcurl calls this to lock one kind of shared data (DNS cache, TLS
 * sessions) while a handle reads or updates it.
 */
static void
share_lock (CURL *handle, curl_lock_data data, curl_lock_access access,
            void *userptr)
{
  struct http_pool *pool = userptr;

  (void) handle;
  (void) access;
  if (data >= 0 && data < CURL_LOCK_DATA_LAST)
    pthread_mutex_lock (&pool->share_locks[data]);
}

/* ... and this to unlock it. */
static void
share_unlock (CURL *handle, curl_lock_data data, void *userptr)
{
  struct http_pool *pool = userptr;

  (void) handle;
  if (data >= 0 && data < CURL_LOCK_DATA_LAST)
    pthread_mutex_unlock (&pool->share_locks[data]);
}

/* Report a failed curl_easy_setopt/curl_share_setopt and fail. */
#define SETOPT(fn, h, opt, val)                                                \
  do {                                                                         \
    int _r = fn (h, opt, val);                                                 \
    if (_r != 0) {                                                             \
      report_error ("libcurl: cannot set %s: error %d", #opt, _r);             \
      errno = EINVAL;                                                          \
      return -1;                                                               \
    }                                                                          \
  } while (0)

/* Set up the share object: DNS and TLS sessions, not connections (each
 * handle keeps its own, which is the point of the pool).
 */
static int
share_setup (struct http_pool *pool)
{
  SETOPT (curl_share_setopt, pool->share, CURLSHOPT_LOCKFUNC, share_lock);
  SETOPT (curl_share_setopt, pool->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
  SETOPT (curl_share_setopt, pool->share, CURLSHOPT_USERDATA, pool);
  SETOPT (curl_share_setopt, pool->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  SETOPT (curl_share_setopt, pool->share, CURLSHOPT_SHARE,
          CURL_LOCK_DATA_SSL_SESSION);
  return 0;
}

/* libcurl calls this at least once a second during a transfer. */
static int
xferinfo_cb (void *opaque, curl_off_t dltotal, curl_off_t dlnow,
             curl_off_t ultotal, curl_off_t ulnow)
{
  struct http_pool *pool = opaque;

  (void) dltotal, (void) dlnow, (void) ultotal, (void) ulnow;
  return atomic_load (&pool->aborted) ? 1 : 0;
}

void
http_pool_abort (struct http_pool *pool)
{
  if (pool)
    atomic_store (&pool->aborted, true);
}

bool
http_pool_aborted (struct http_pool *pool)
{
  return pool && atomic_load (&pool->aborted);
}

/* The options that every request needs, applied after each reset so
 * that nothing one request set (method, range, headers) leaks into the
 * next.  NB: curl_easy_reset keeps the handle's live connection.
 */
static int
conn_setup (struct http_pool *pool, struct http_conn *conn)
{
  CURL *h = conn->curl;

  conn->errbuf[0] = '\0';
  SETOPT (curl_easy_setopt, h, CURLOPT_ERRORBUFFER, conn->errbuf);
  SETOPT (curl_easy_setopt, h, CURLOPT_SHARE, pool->share);
  /* Many threads, and signals belong to nbdkit. */
  SETOPT (curl_easy_setopt, h, CURLOPT_NOSIGNAL, 1L);
  /* Shutdown (http_pool_abort) cuts transfers under way. */
  SETOPT (curl_easy_setopt, h, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
  SETOPT (curl_easy_setopt, h, CURLOPT_XFERINFODATA, pool);
  SETOPT (curl_easy_setopt, h, CURLOPT_NOPROGRESS, 0L);

  /* A redirect would take signed requests somewhere else; S3 uses
   * 301/307 to say "wrong region", which we report instead.
   */
  SETOPT (curl_easy_setopt, h, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85.0 */
  SETOPT (curl_easy_setopt, h, CURLOPT_PROTOCOLS_STR, "http,https");
  SETOPT (curl_easy_setopt, h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
  SETOPT (curl_easy_setopt, h, CURLOPT_PROTOCOLS,
          (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
  SETOPT (curl_easy_setopt, h, CURLOPT_REDIR_PROTOCOLS,
          (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  /* S3 keys may contain "/../" or "/./": send the path as signed. */
  SETOPT (curl_easy_setopt, h, CURLOPT_PATH_AS_IS, 1L);
  SETOPT (curl_easy_setopt, h, CURLOPT_USERAGENT, "accel");

  /* Keep idle connections alive through NATs and notice dead peers. */
  SETOPT (curl_easy_setopt, h, CURLOPT_TCP_KEEPALIVE, 1L);
  SETOPT (curl_easy_setopt, h, CURLOPT_TCP_KEEPIDLE, 30L);
  SETOPT (curl_easy_setopt, h, CURLOPT_TCP_KEEPINTVL, 15L);

  SETOPT (curl_easy_setopt, h, CURLOPT_CONNECTTIMEOUT,
          (long) pool->connect_timeout);
  SETOPT (curl_easy_setopt, h, CURLOPT_TIMEOUT, (long) pool->timeout);
  /* A stalled transfer: less than 1 byte/s for stall_timeout seconds. */
  SETOPT (curl_easy_setopt, h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  SETOPT (curl_easy_setopt, h, CURLOPT_LOW_SPEED_TIME,
          (long) pool->stall_timeout);

  SETOPT (curl_easy_setopt, h, CURLOPT_SSL_VERIFYPEER,
          pool->tls_verify ? 1L : 0L);
  SETOPT (curl_easy_setopt, h, CURLOPT_SSL_VERIFYHOST,
          pool->tls_verify ? 2L : 0L);
  if (pool->cainfo)
    SETOPT (curl_easy_setopt, h, CURLOPT_CAINFO, pool->cainfo);
  return 0;
}

/* Copy the configuration into pool, with defaults for what is 0. */
static int
pool_configure (struct http_pool *pool, const struct http_pool_config *cfg)
{
  pool->nr_conns =
      cfg->connections ? cfg->connections : HTTP_DEFAULT_CONNECTIONS;
  pool->connect_timeout =
      cfg->connect_timeout ? cfg->connect_timeout : DEFAULT_CONNECT_TIMEOUT;
  pool->timeout = cfg->timeout;
  pool->stall_timeout =
      cfg->stall_timeout ? cfg->stall_timeout : DEFAULT_STALL_TIMEOUT;
  pool->tls_verify = cfg->tls_verify;
  if (cfg->cainfo) {
    pool->cainfo = strdup (cfg->cainfo);
    if (pool->cainfo == NULL) {
      report_error ("strdup: %m");
      return -1;
    }
  }
  return 0;
}

/* Initialise the pool's locks.  On failure none is left initialised. */
static int
pool_locks_init (struct http_pool *pool)
{
  int n;

  for (n = 0; n < CURL_LOCK_DATA_LAST; n++)
    if (pthread_mutex_init (&pool->share_locks[n], NULL) != 0)
      goto err;
  if (pthread_mutex_init (&pool->lock, NULL) != 0)
    goto err;
  if (pthread_cond_init (&pool->free_cond, NULL) != 0) {
    pthread_mutex_destroy (&pool->lock);
    goto err;
  }
  return 0;

err:
  report_error ("pthread_mutex_init: failed");
  while (n > 0)
    pthread_mutex_destroy (&pool->share_locks[--n]);
  return -1;
}

static void
pool_locks_destroy (struct http_pool *pool)
{
  int n;

  pthread_cond_destroy (&pool->free_cond);
  pthread_mutex_destroy (&pool->lock);
  for (n = 0; n < CURL_LOCK_DATA_LAST; n++)
    pthread_mutex_destroy (&pool->share_locks[n]);
}

/* The share object and one handle per connection, all free.  On
 * failure the caller frees what was made with pool_handles_free.
 */
static int
pool_handles_new (struct http_pool *pool)
{
  size_t i;

  pool->share = curl_share_init ();
  if (pool->share == NULL) {
    report_error ("curl_share_init: failed");
    return -1;
  }
  if (share_setup (pool) == -1)
    return -1;

  pool->conns = calloc (pool->nr_conns, sizeof *pool->conns);
  pool->free_stack = calloc (pool->nr_conns, sizeof *pool->free_stack);
  if (pool->conns == NULL || pool->free_stack == NULL) {
    report_error ("calloc: %m");
    return -1;
  }
  for (i = 0; i < pool->nr_conns; i++) {
    pool->conns[i].pool = pool;
    pool->conns[i].curl = curl_easy_init ();
    if (pool->conns[i].curl == NULL) {
      report_error ("curl_easy_init: failed");
      return -1;
    }
    pool->free_stack[pool->nr_free++] = &pool->conns[i];
  }
  return 0;
}

/* Free the handles, then the share object they refer to. */
static void
pool_handles_free (struct http_pool *pool)
{
  size_t i;

  if (pool->conns)
    for (i = 0; i < pool->nr_conns; i++)
      if (pool->conns[i].curl)
        curl_easy_cleanup (pool->conns[i].curl);
  if (pool->share)
    curl_share_cleanup (pool->share);
  free (pool->conns);
  free (pool->free_stack);
}

/* All handles are made up front, so that taking one never allocates
 * and the limit on concurrent requests is exact.
 */
struct http_pool *
http_pool_new (const struct http_pool_config *cfg)
{
  struct http_pool *pool;

  pthread_once (&global_init_once, global_init);
  if (global_init_result != CURLE_OK) {
    report_error ("libcurl: initialization failed: %s",
                  curl_easy_strerror (global_init_result));
    return NULL;
  }
  if (cfg->connections > HTTP_MAX_CONNECTIONS) {
    report_error ("connections=%u: the most is %d", cfg->connections,
                  HTTP_MAX_CONNECTIONS);
    errno = EINVAL;
    return NULL;
  }

  pool = calloc (1, sizeof *pool);
  if (pool == NULL) {
    report_error ("calloc: %m");
    return NULL;
  }
  if (pool_configure (pool, cfg) == -1 || pool_locks_init (pool) == -1)
    goto err;
  if (pool_handles_new (pool) == -1) {
    pool_handles_free (pool);
    pool_locks_destroy (pool);
    goto err;
  }
  return pool;

err:
  free (pool->cainfo);
  free (pool);
  return NULL;
}

/* Close every connection; called once, after all users are gone. */
void
http_pool_free (struct http_pool *pool)
{
  if (pool == NULL)
    return;
  pool_handles_free (pool);
  pool_locks_destroy (pool);
  free (pool->cainfo);
  free (pool);
}

/* Take the most recently used free handle (its connection is the
 * likeliest to be still alive), waiting if all are busy.
 */
struct http_conn *
http_conn_get (struct http_pool *pool)
{
  struct http_conn *conn;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&pool->lock);
    while (pool->nr_free == 0)
      pthread_cond_wait (&pool->free_cond, &pool->lock);
    conn = pool->free_stack[--pool->nr_free];
  }

  /* Outside the lock: resetting touches only this handle. */
  curl_easy_reset (conn->curl);
  if (conn_setup (pool, conn) == -1) {
    http_conn_put (conn);
    return NULL;
  }
  return conn;
}

int
http_conn_deadline (struct http_conn *conn, uint64_t deadline_ns)
{
  uint64_t now = now_monotonic_ns (), ms;

  if (now >= deadline_ns)
    return -1;
  ms = (deadline_ns - now + 999999) / 1000000;
  if (conn->pool->timeout > 0 && ms >= conn->pool->timeout * UINT64_C (1000))
    return 0;
  /* NB: set on every get (conn_setup), so this lasts one transfer. */
  if (curl_easy_setopt (conn->curl, CURLOPT_TIMEOUT_MS, (long) ms) !=
      CURLE_OK) {
    report_error ("curl_easy_setopt: CURLOPT_TIMEOUT_MS failed");
    return -1;
  }
  return 0;
}

/* Return a handle and wake one waiter. */
void
http_conn_put (struct http_conn *conn)
{
  struct http_pool *pool;

  if (conn == NULL)
    return;
  pool = conn->pool;
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&pool->lock);
  pool->free_stack[pool->nr_free++] = conn;
  pthread_cond_signal (&pool->free_cond);
}
