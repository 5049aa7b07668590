/* accel plugin: metrics in Prometheus' text format (version 0.0.4).
 *
 * With metrics-file=PATH the flusher thread (background.c) rewrites PATH
 * every metrics-interval seconds, and accel.c once more at close.  Each
 * write goes to a new file beside PATH that is then renamed over it, so
 * a reader (node_exporter's textfile collector reads *.prom) never sees
 * a partial file; the temporary name, PATH.XXXXXX, does not end in
 * .prom.
 *
 * The numbers are the read path's, the cache's, dedup's and the S3
 * client's own counters, the same that -D accel.stats=1 prints, read
 * when the file is written.  Every series has the labels image="NAME"
 * (s3://bucket/key, or the URL without its query: a presigned URL's
 * query is a credential) and metrics_file="BASENAME" (see labels).
 * Names and meanings are in the README.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "clock.h"
#include "fetch.h"
#include "metrics.h"
#include "report.h"

/* Set by metrics_start, then used only by the one thread that writes
 * (the flusher, then .cleanup after it has stopped): no lock.
 */
static char *path;
static unsigned interval;
static struct image *image;
static char *label; /* the labels every series has, escaped */
static char *version; /* the pinned S3 version, escaped ("" if none) */
static uint64_t zero_bytes; /* bytes of all-zero chunks (never cached) */
static uint64_t next_write; /* CLOCK_MONOTONIC seconds */
static bool failing; /* the last write failed (and was reported) */

/* A label value: backslash, double quote and newline escaped. */
static char *
escape_label (const char *s)
{
  char *out = malloc (strlen (s) * 2 + 1), *p = out;

  if (out == NULL)
    return NULL;
  for (; *s; s++) {
    if (*s == '\\' || *s == '"') {
      *p++ = '\\';
      *p++ = *s;
    }
    else if (*s == '\n') {
      *p++ = '\\';
      *p++ = 'n';
    }
    else
      *p++ = *s;
  }
  *p = '\0';
  return out;
}

/* The labels every series has: image="NAME",metrics_file="BASENAME".
 * The file's name tells apart two nbdkits serving one image (a mount
 * and its update on a versioned key, two mounts of one dataset): as
 * files of one textfile directory their names differ, where equal
 * series in two files would be dropped by node_exporter as duplicates.
 */
static char *
labels (const char *image_name, const char *file)
{
  const char *base = strrchr (file, '/');
  CLEANUP_FREE char *i = escape_label (image_name);
  CLEANUP_FREE char *f = escape_label (base ? base + 1 : file);
  char *out;

  if (i == NULL || f == NULL ||
      asprintf (&out, "image=\"%s\",metrics_file=\"%s\"", i, f) == -1)
    return NULL;
  return out;
}

static void
family (FILE *fp, const char *name, const char *type, const char *help)
{
  fprintf (fp, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
counter (FILE *fp, const char *name, const char *help, uint64_t v)
{
  family (fp, name, "counter", help);
  fprintf (fp, "%s{%s} %" PRIu64 "\n", name, label, v);
}

static void
gauge (FILE *fp, const char *name, const char *help, double v)
{
  family (fp, name, "gauge", help);
  fprintf (fp, "%s{%s} %.6g\n", name, label, v);
}

/* A gauge of bytes, printed exactly. */
static void
gauge_bytes (FILE *fp, const char *name, const char *help, uint64_t v)
{
  family (fp, name, "gauge", help);
  fprintf (fp, "%s{%s} %" PRIu64 "\n", name, label, v);
}

static void
latency_histogram (FILE *fp, const struct fetch_stats *f)
{
  const char *name = "accel_fetch_latency_seconds";
  uint64_t cumulative = 0;
  size_t i;

  family (fp, name, "histogram",
          "Duration of each ranged GET of chunks from the origin, retries "
          "included.");
  for (i = 0; i <= FETCH_LATENCY_BUCKETS; i++) {
    cumulative += f->latency[i];
    if (i < FETCH_LATENCY_BUCKETS)
      fprintf (fp, "%s_bucket{%s,le=\"%g\"} %" PRIu64 "\n", name, label,
               fetch_latency_bounds[i], cumulative);
    else
      fprintf (fp, "%s_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n", name, label,
               cumulative);
  }
  fprintf (fp, "%s_sum{%s} %.6f\n", name, label, f->latency_us / 1e6);
  fprintf (fp, "%s_count{%s} %" PRIu64 "\n", name, label, cumulative);
}

/* The whole file. */
static void
render (FILE *fp)
{
  struct fetch_stats f;
  struct cache_stats c;
  struct cache_dedup_stats dd = { 0 };
  struct s3_stats s;
  uint64_t cached, read_bytes, dir_bytes, cap;
  const char *vf = "accel_verify_failures_total";

  fetch_get_stats (&f);
  cache_image_stats (image->cache, &c);
  if (image->dedup)
    cache_dedup_stats (image->dedup, &dd);
  s3_client_stats (image->s3, &s);
  cached = cache_image_cached_bytes (image->cache);
  read_bytes = f.hit_bytes + f.miss_bytes;

  counter (fp, "accel_cache_hits_total",
           "Client reads served without the origin (every chunk cached or "
           "all zeros).",
           f.read_hits);
  counter (fp, "accel_cache_misses_total",
           "Client reads that needed a chunk missing from the cache.",
           f.read_misses);
  counter (fp, "accel_cache_hit_bytes_total",
           "Bytes of client reads served from the cache or all-zero chunks.",
           f.hit_bytes);
  counter (fp, "accel_cache_miss_bytes_total",
           "Bytes of client reads in chunks missing from the cache.",
           f.miss_bytes);
  gauge (fp, "accel_cache_hit_ratio",
         "Hit bytes over all bytes of client reads since start (0 before "
         "any read).",
         read_bytes ? (double) f.hit_bytes / read_bytes : 0);
  counter (fp, "accel_origin_requests_total",
           "HTTP requests sent to the origin, retries included.", s.requests);
  counter (fp, "accel_origin_gets_total",
           "GET requests sent to the origin, retries included.", s.gets);
  counter (fp, "accel_origin_bytes_total",
           "Body bytes received from the origin.", s.bytes);
  counter (fp, "accel_origin_retries_total",
           "Requests to the origin that were retries.", s.retries);
  counter (fp, "accel_origin_errors_total",
           "Origin operations that failed after every retry.", s.errors);
  counter (fp, "accel_origin_slowdowns_total",
           "Throttle answers from the origin (503 SlowDown, 503 without a "
           "body, 429): back-pressure, sent again at a lower rate.",
           s.slowdowns);
  family (fp, "accel_origin_throttled_seconds_total", "counter",
          "Time requests to the origin waited for a slot under the "
          "throttle's rate (summed over requests).");
  fprintf (fp, "accel_origin_throttled_seconds_total{%s} %.6f\n", label,
           s.throttled_us / 1e6);
  gauge (fp, "accel_origin_throttle_rate",
         "The node's request rate limit after throttle answers, requests "
         "per second (0: no limit).",
         s.throttle_rate / 1000.0);
  counter (fp, "accel_chunk_fetches_total", "Chunks fetched from the origin.",
           f.chunk_fetches);
  family (fp, vf, "counter",
          "Chunks whose bytes did not match their hash: fetched from the "
          "origin, found in the cache, or offered by dedup.");
  fprintf (fp, "%s{%s,where=\"origin\"} %" PRIu64 "\n", vf, label,
           f.verify_failures);
  fprintf (fp, "%s{%s,where=\"cache\"} %" PRIu64 "\n", vf, label,
           c.verify_failed);
  fprintf (fp, "%s{%s,where=\"dedup\"} %" PRIu64 "\n", vf, label,
           dd.verify_failed);
  latency_histogram (fp, &f);
  counter (fp, "accel_dedup_chunks_total",
           "Missing chunks copied from a chunk cached for another image or "
           "offset instead of fetched.",
           dd.chunks);
  counter (fp, "accel_dedup_bytes_total",
           "Bytes of the chunks counted by accel_dedup_chunks_total.",
           dd.bytes);
  counter (fp, "accel_cache_stored_chunks_total",
           "Chunks this process wrote into the cache.", c.stored);
  counter (fp, "accel_evictions_total",
           "Chunks (of any image) this process evicted to stay under "
           "cache-size.",
           c.evicted);
  gauge_bytes (fp, "accel_cache_bytes",
               "Bytes of this image's chunks held by the cache.", cached);
  gauge (fp, "accel_hydration_ratio",
         "Fraction of the image readable without the origin: cached bytes "
         "plus all-zero chunks, over the image size.",
         (double) (cached + zero_bytes) / image->size);
  gauge_bytes (fp, "accel_image_bytes", "Size of the image.", image->size);
  /* Which version of the key this process serves, so that a node still
   * on v1 after a republish can be told from one on v2.
   */
  family (fp, "accel_image_info", "gauge",
          "Always 1; version is the S3 versionId served (\"\" if the "
          "object is not pinned to a version).");
  fprintf (fp, "accel_image_info{%s,version=\"%s\"} 1\n", label, version);
  if (cache_dir_usage (image->dir, &dir_bytes) == 0)
    gauge_bytes (fp, "accel_cache_dir_bytes",
                 "Bytes held by the whole cache directory (every image).",
                 dir_bytes);
  /* The cap that accel-cache stat shows (the directory's record of the
   * last cache-size=), so that usage can be put against it.  Absent when
   * there is none.
   */
  if (cache_dir_recorded_cap (image->dir, &cap) == 1 && cap > 0)
    gauge_bytes (fp, "accel_cache_dir_cap_bytes",
                 "The cache directory's cap (cache-size= of the last "
                 "process to open it).",
                 cap);
}

/* Write the file: a temporary beside it, renamed over it.  0, or -1
 * with errno set and *what naming the step that failed.
 */
static int
write_file (const char **what)
{
  CLEANUP_FREE char *text = NULL, *tmp = NULL;
  size_t len = 0, done;
  FILE *fp;
  int fd, err;

  *what = "formatting";
  fp = open_memstream (&text, &len);
  if (fp == NULL)
    return -1;
  render (fp);
  if (fclose (fp) == EOF)
    return -1;

  *what = "creating a temporary file beside it";
  if (asprintf (&tmp, "%s.XXXXXX", path) == -1) {
    tmp = NULL;
    return -1;
  }
  fd = mkostemp (tmp, O_CLOEXEC);
  if (fd == -1)
    return -1;
  /* node_exporter usually runs as another user. */
  *what = "writing";
  if (fchmod (fd, 0644) == -1)
    goto err;
  for (done = 0; done < len;) {
    ssize_t w = write (fd, text + done, len - done);
    if (w == -1 && errno == EINTR)
      continue;
    if (w <= 0) {
      if (w == 0)
        errno = EIO;
      goto err;
    }
    done += w;
  }
  if (close (fd) == -1) {
    fd = -1;
    goto err;
  }
  fd = -1;
  *what = "renaming the new file over it";
  if (rename (tmp, path) == -1)
    goto err;
  return 0;

err:
  err = errno;
  if (fd >= 0)
    close (fd);
  unlink (tmp);
  errno = err;
  return -1;
}

/* Write now; report a failure unless the last one was reported. */
static int
write_now (void)
{
  const char *what;

  if (write_file (&what) == -1) {
    if (!failing)
      report_error ("metrics-file: %s: %s: %m", path, what);
    failing = true;
    return -1;
  }
  failing = false;
  return 0;
}

int
metrics_start (const char *p, unsigned secs, struct image *img)
{
  uint64_t i;

  path = strdup (p);
  label = labels (img->name, p); /* img->obj is NULL offline */
  version = escape_label (img->obj && s3_object_version_id (img->obj)
                              ? s3_object_version_id (img->obj)
                              : "");
  if (path == NULL || label == NULL || version == NULL) {
    report_error ("strdup: %m");
    metrics_stop ();
    return -1;
  }
  image = img;
  interval = secs;
  zero_bytes = 0;
  for (i = 0; i < img->nr_chunks; i++)
    if (image_chunk_is_zero (img, i))
      zero_bytes += image_chunk_len (img, i);
  if (write_now () == -1) {
    image = NULL; /* nothing more to write */
    metrics_stop ();
    return -1;
  }
  next_write = now_monotonic_ns () / 1000000000 + interval;
  return 0;
}

void
metrics_tick (void)
{
  uint64_t now;

  if (image == NULL)
    return;
  now = now_monotonic_ns () / 1000000000;
  if (now < next_write)
    return;
  next_write = now + interval;
  write_now ();
}

void
metrics_stop (void)
{
  if (image)
    write_now ();
  image = NULL;
  free (path);
  free (label);
  free (version);
  path = label = version = NULL;
}
