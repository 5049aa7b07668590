/* accel: a pool of libcurl handles shared by all threads.
 *
 * Every read of an uncached chunk is an HTTP request, from many threads
 * at once.  Opening a TCP (and TLS) connection per request would cost
 * more than the request, so, like nbdkit's curl plugin, we keep a fixed
 * number of easy handles, each holding a kept-alive connection.  A
 * thread takes a handle for one request and puts it back; if all are
 * busy it waits.  The number of handles is therefore also the limit on
 * concurrent requests to the server.
 *
 * A handle comes out of the pool reset and set up with the options
 * every request needs (no redirects, http/https only, timeouts, TLS
 * verification); the caller adds the URL, method and headers.
 */

#ifndef ACCEL_HTTP_H
#define ACCEL_HTTP_H

#include <stdbool.h>

#include <curl/curl.h>

#define HTTP_DEFAULT_CONNECTIONS 16
#define HTTP_MAX_CONNECTIONS 1024

struct http_pool_config {
  unsigned connections; /* handles in the pool; 0 = default (16) */
  unsigned connect_timeout; /* seconds to connect; 0 = default (10) */
  unsigned timeout; /* seconds for a whole request; 0 = none */
  unsigned stall_timeout; /* seconds without data; 0 = default (30) */
  bool tls_verify; /* verify the server's certificate and name */
  const char *cainfo; /* CA bundle file, or NULL for the default */
};

/* One handle of the pool, with its own error buffer. */
struct http_conn {
  CURL *curl;
  struct http_pool *pool;
  char errbuf[CURL_ERROR_SIZE];
};

/* Create a pool.  Returns NULL after report_error. */
extern struct http_pool *http_pool_new (const struct http_pool_config *cfg);

/* Free the pool and close its connections.  Every handle must have been
 * put back.
 */
extern void http_pool_free (struct http_pool *pool);

/* Take a handle, waiting until one is free.  Returns NULL after
 * report_error (only if resetting the handle fails).
 */
extern struct http_conn *http_conn_get (struct http_pool *pool);

/* End this handle's next transfer by deadline_ns (now_monotonic_ns
 * time) if that comes before the pool's timeout.  The handle forgets it
 * when it goes back to the pool.  Returns -1 if the deadline has passed.
 */
extern int http_conn_deadline (struct http_conn *conn, uint64_t deadline_ns);

/* Give a handle back to its pool.  conn may be NULL. */
extern void http_conn_put (struct http_conn *conn);

/* From now on every transfer of the pool is cut (CURLE_ABORTED_BY_CALLBACK)
 * within a second, and http_pool_aborted is true: for shutdown.
 */
extern void http_pool_abort (struct http_pool *pool);
extern bool http_pool_aborted (struct http_pool *pool);

/* Put a handle back at scope exit:
 *   CLEANUP_HTTP_CONN_PUT struct http_conn *conn = http_conn_get (pool);
 */
static inline void
cleanup_http_conn_put (struct http_conn **ptr)
{
  http_conn_put (*ptr);
}
#define CLEANUP_HTTP_CONN_PUT __attribute__ ((cleanup (cleanup_http_conn_put)))

#endif /* ACCEL_HTTP_H */
