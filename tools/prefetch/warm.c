/* accel-prefetch: NBD_CMD_CACHE for the selected chunks.
 *
 * One NBD connection to the plugin's socket (nbdkit serves any number
 * besides the kernel's), with several requests in flight through
 * libnbd's asynchronous API.  Each request covers a run of adjacent
 * selected chunks, chunk-aligned and at most batch bytes, so that the
 * plugin turns it into one GET of missing chunks (its
 * prefetch-request-size=, 8M by default, is the batch's default too).
 * The plugin answers a cache request once the chunks are in its cache,
 * so the bytes done are bytes cached.  A random delay (--jitter) comes
 * first.
 *
 * Progress: on a terminal, a bar redrawn at most ten times a second;
 * otherwise a summary line at the end.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <libnbd.h>

#include "clock.h"
#include "prefetch.h"
#include "format.h"
#include "report.h"

#define BAR_WIDTH 30

static struct nbd_handle *nbd;

/* The state of a run, shared with the completion callback. */
struct run {
  uint64_t total, done;
  unsigned in_flight;
  unsigned failed;
  uint64_t first_failed; /* offset of the first failed request */
  int first_errno;
  double last_answer; /* when nbdkit last answered (or the run began) */
};

/* Whether the connection to nbdkit is gone (nbdkit exited or was
 * killed): then requests fail without nbdkit having tried them.
 */
static bool
connection_lost (void)
{
  return nbd_aio_is_dead (nbd) == 1 || nbd_aio_is_closed (nbd) == 1;
}

/* One request, for its completion callback. */
struct request {
  struct run *run;
  uint64_t offset;
  uint32_t count;
};

/* Pull the manifest's path out of "accel: NAME manifest=PATH" (the
 * plugin puts the path last, so the last " manifest=" starts it).
 */
static char *
manifest_from_description (const char *desc)
{
  const char *p, *found = NULL;

  if (strncmp (desc, "accel: ", 7) != 0)
    return NULL;
  for (p = desc; (p = strstr (p, " manifest=")) != NULL; p++)
    found = p + strlen (" manifest=");
  return found && *found ? strdup (found) : NULL;
}

/* NB: asynchronous, so that a stopped or stuck nbdkit (whose socket
 * still accepts: the kernel does that) cannot hang us for ever.
 */
static int
connect_within (const char *socket, unsigned timeout)
{
  double start = now_monotonic_seconds ();

  if (nbd_aio_connect_unix (nbd, socket) == -1) {
    report_error ("%s: %s", socket, nbd_get_error ());
    return -1;
  }
  while (nbd_aio_is_connecting (nbd) == 1) {
    if (nbd_poll (nbd, 1000) == -1)
      break;
    if (timeout && now_monotonic_seconds () - start >= timeout) {
      report_error ("%s: nbdkit accepted the connection but did not answer "
                    "within %u s (--timeout): is it stopped or stuck?",
                    socket, timeout);
      return -1;
    }
  }
  if (nbd_aio_is_ready (nbd) != 1) {
    const char *e = nbd_get_error ();

    report_error ("%s: %s", socket,
                  e ? e : "the connection failed (did nbdkit exit?)");
    return -1;
  }
  return 0;
}

int
warm_connect (struct target *t, unsigned timeout)
{
  nbd = nbd_create ();
  if (nbd == NULL) {
    report_error ("libnbd: %s", nbd_get_error ());
    return -1;
  }
  if (t->manifest == NULL && nbd_set_full_info (nbd, true) == -1) {
    report_error ("libnbd: %s", nbd_get_error ());
    return -1;
  }
  if (connect_within (t->socket, timeout) == -1)
    return -1;
  if (nbd_can_cache (nbd) != 1) {
    report_error ("%s: the server does not support NBD_CMD_CACHE (is it "
                  "nbdkit with the accel plugin?)",
                  t->socket);
    return -1;
  }
  if (t->manifest == NULL) {
    char *desc = nbd_get_export_description (nbd);

    if (desc)
      t->manifest = manifest_from_description (desc);
    free (desc);
    if (t->manifest == NULL) {
      report_error ("%s: the export names no manifest (served with "
                    "manifest=none?): give one with --manifest",
                    t->socket);
      return -1;
    }
    report_debug ("manifest %s (from the export's description)", t->manifest);
  }
  return 0;
}

int
warm_check (struct manifest *m)
{
  int64_t size = nbd_get_size (nbd);

  if (size == -1) {
    report_error ("libnbd: %s", nbd_get_error ());
    return -1;
  }
  if ((uint64_t) size != manifest_image_size (m)) {
    report_error ("the manifest describes an image of %" PRIu64 " bytes, "
                  "but the export has %" PRId64 ": it is not this "
                  "export's manifest",
                  manifest_image_size (m), size);
    return -1;
  }
  return 0;
}

/* libnbd calls this when a request is answered. */
static int
request_done (void *user_data, int *error)
{
  struct request *rq = user_data;
  struct run *run = rq->run;

  run->in_flight--;
  run->last_answer = now_monotonic_seconds ();
  if (*error) {
    if (run->failed++ == 0) {
      run->first_failed = rq->offset;
      run->first_errno = *error;
    }
  }
  else
    run->done += rq->count;
  return 1; /* retire the command */
}

/* libnbd calls this once it no longer needs the request: after
 * request_done, or at nbd_close for one never answered (--timeout).
 */
static void
request_free (void *user_data)
{
  free (user_data);
}

/* The progress bar, at most every 0.1 s (and always when final). */
static void
show_progress (const struct run *run, double start, bool final)
{
  static double last;
  char d[32], t[32], r[32], bar[BAR_WIDTH + 1];
  double secs = now_monotonic_seconds () - start;
  int fill, pct;

  if (!final && now_monotonic_seconds () - last < 0.1)
    return;
  last = now_monotonic_seconds ();
  pct = run->total ? (int) (run->done * 100 / run->total) : 100;
  fill = run->total ? (int) (run->done * BAR_WIDTH / run->total) : BAR_WIDTH;
  memset (bar, '#', fill);
  memset (bar + fill, '.', BAR_WIDTH - fill);
  bar[BAR_WIDTH] = '\0';
  fprintf (stderr, "\r\033[K[%s] %3d%%  %s / %s  %s/s", bar, pct,
           format_size (run->done, d, sizeof d),
           format_size (run->total, t, sizeof t),
           format_size (secs > 0 ? run->done / secs : 0, r, sizeof r));
  if (final)
    fprintf (stderr, "\n");
}

/* The next run of selected chunks from *idx: offset and length. */
static bool
next_batch (struct manifest *m, const struct selection *s, uint32_t batch,
            uint64_t *idx, uint64_t *offset, uint32_t *count)
{
  uint32_t chunk_size = manifest_chunk_size (m);
  uint64_t size = manifest_image_size (m), end;

  while (*idx < s->nr_chunks && !(s->chunks[*idx / 8] & (1 << (*idx % 8))))
    (*idx)++;
  if (*idx >= s->nr_chunks)
    return false;
  *offset = *idx * chunk_size;
  end = *offset;
  while (*idx < s->nr_chunks && (s->chunks[*idx / 8] & (1 << (*idx % 8))) &&
         end - *offset + chunk_size <= batch) {
    end += chunk_size;
    (*idx)++;
  }
  if (end > size)
    end = size;
  *count = end - *offset;
  return true;
}

/* Sleep a random 0 to secs seconds (the kernel's random pool differs
 * on every node, even when clocks and pids do not).
 */
static void
jitter_sleep (unsigned secs)
{
  uint64_t r, ns;
  struct timespec ts;

  if (secs == 0)
    return;
  if (getrandom (&r, sizeof r, GRND_NONBLOCK) != sizeof r)
    r = (uint64_t) time (NULL) ^ ((uint64_t) getpid () << 32);
  ns = r % (secs * UINT64_C (1000000000) + 1);
  report_debug ("starting in %.2f s (--jitter %u)", ns / 1e9, secs);
  ts.tv_sec = ns / 1000000000;
  ts.tv_nsec = ns % 1000000000;
  while (nanosleep (&ts, &ts) == -1 && errno == EINTR)
    ;
}

int
warm_run (struct manifest *m, const struct selection *s,
          const struct warm_options *o)
{
  /* NB: static, since libnbd may still call request_done for requests
   * in flight when an error makes us return early.
   */
  static struct run run;
  double start = now_monotonic_seconds (), secs;
  uint64_t idx = 0, offset;
  uint32_t count;
  bool more = true;
  char d[32], r[32];

  run = (struct run){ .total = s->bytes };
  if (s->nr_selected > 0)
    jitter_sleep (o->jitter);
  start = run.last_answer = now_monotonic_seconds ();

  while (more || run.in_flight > 0) {
    while (more && run.in_flight < o->requests) {
      struct request *rq;

      more = next_batch (m, s, o->batch, &idx, &offset, &count);
      if (!more)
        break;
      rq = malloc (sizeof *rq);
      if (rq == NULL) {
        report_error ("malloc: %m");
        return -1;
      }
      *rq = (struct request){ .run = &run, .offset = offset, .count = count };
      /* NB: libnbd frees rq (request_free), also if this fails. */
      if (nbd_aio_cache (nbd, count, offset,
                         (nbd_completion_callback){ .callback = request_done,
                                                    .user_data = rq,
                                                    .free = request_free },
                         0) == -1) {
        if (connection_lost ())
          goto lost;
        report_error ("NBD_CMD_CACHE: %s", nbd_get_error ());
        return -1;
      }
      run.in_flight++;
    }
    if (run.in_flight > 0 && nbd_poll (nbd, 100) == -1) {
      if (connection_lost ())
        goto lost;
      report_error ("libnbd: %s", nbd_get_error ());
      return -1;
    }
    if (o->progress)
      show_progress (&run, start, false);
    /* NB: the plugin may take its own budget for one request (retries,
     * throttling: README, "Timeouts") before it answers, so the
     * default is longer than that.
     */
    if (o->timeout && run.in_flight > 0 &&
        now_monotonic_seconds () - run.last_answer >= o->timeout) {
      if (o->progress)
        fprintf (stderr, "\n");
      report_error ("nbdkit answered none of the %u requests in flight for "
                    "%u s (--timeout): is it stopped or stuck?  %s of %s "
                    "were cached",
                    run.in_flight, o->timeout,
                    format_size (run.done, d, sizeof d),
                    format_size (run.total, r, sizeof r));
      return -1;
    }
  }
  if (o->progress)
    show_progress (&run, start, true);

  if (run.failed && connection_lost ())
    goto lost;
  if (run.failed) {
    errno = run.first_errno;
    report_error ("%u of the requests failed, the first at byte %" PRIu64
                  ": %m (the nbdkit log says why)",
                  run.failed, run.first_failed);
    return -1;
  }
  secs = now_monotonic_seconds () - start;
  if (!o->quiet)
    fprintf (stderr,
             PROGNAME ": warmed %" PRIu64 " files: %" PRIu64 " chunks, %s "
                      "in %.1f s (%s/s)\n",
             s->nr_files, s->nr_selected, format_size (run.done, d, sizeof d),
             secs, format_size (secs > 0 ? run.done / secs : 0, r, sizeof r));
  return 0;

lost:
  if (o->progress)
    fprintf (stderr, "\n");
  report_error ("lost the connection to nbdkit after %s of %s were cached: "
                "did nbdkit exit? (its log says why)",
                format_size (run.done, d, sizeof d),
                format_size (run.total, r, sizeof r));
  return -1;
}

void
warm_disconnect (void)
{
  if (nbd) {
    /* NB: a clean shutdown waits for nbdkit to answer every request in
     * flight, which after an error (--timeout) may be never: then the
     * connection is just closed.
     */
    if (nbd_aio_in_flight (nbd) == 0)
      nbd_shutdown (nbd, 0);
    nbd_close (nbd);
    nbd = NULL;
  }
}
