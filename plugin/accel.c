/* nbdkit-accel-plugin: serve a read-only disk image stored in S3, with a
 * persistent, verified, sparse local block cache.
 *
 *   nbdkit accel url=s3://bucket/datasets/genome.img cache-dir=/var/cache/accel
 *
 * This file is the nbdkit glue: configuration keys, the callbacks, and
 * the per-connection handle.  The work is done by image-open.c (opening
 * the object, manifest and cache; offline.c when the origin is
 * unreachable), fetch.c (the read path), readahead.c (sequential
 * streams), background.c (prefetch workers and flushing), prefetch.c
 * (what to prefetch, how fast) and trace.c (trace=).
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "background.h"
#include "fetch.h"
#include "image.h"
#include "prefetch.h"
#include "metrics.h"
#include "readahead.h"
#include "report.h"
#include "trace.h"

/* Debug flags: -D accel.stats=1 prints the counters at exit. */
NBDKIT_DLL_PUBLIC int accel_debug_stats = 0;

static struct image_config cfg = {
  .cache_dir = "/var/cache/accel",
  .dedup = true,
  .publish_wait = 60,
  .s3 = { .connections = 16,
          .retries = 6,
          .timeout = 60,
          .throttle_timeout = S3_DEFAULT_THROTTLE_TIMEOUT,
          .tls_verify = true },
};
static uint32_t request_size = 8 * 1024 * 1024;
static uint64_t readahead = 32 * 1024 * 1024;
static unsigned readahead_threads = 8;
static enum prefetch_mode prefetch = PREFETCH_DEFAULT;
/* 200 MiB/s (1.7 Gbit/s): a node's NIC (10-25 Gbit/s) keeps most of its
 * bandwidth for demand reads and other datasets, and 100 GB still
 * hydrates in under 10 minutes.
 */
static uint64_t prefetch_rate = 200 * 1024 * 1024;
static const char *trace_file;
/* The largest GET when hydrating (prefetch=, NBD_CMD_CACHE): runs of
 * missing chunks go in one GET each, so a node asks S3 for a gigabyte
 * in 128 GETs instead of the 1024 of chunk-sized demand reads, which
 * is what counts against S3's per-prefix request rate and bill.  8M:
 * the two prefetch workers then hold 16 of the read path's 32 MiB of
 * GET memory (fetch.c), so a demand miss never waits behind them for
 * memory; and at ~100 MB/s per connection and 20-50 ms to the first
 * byte, an 8 MiB GET already spends most of its time moving bytes.
 * 16M halves the GETs again, at the cost of that margin.
 */
static uint32_t prefetch_request_size = 8 * 1024 * 1024;
#define PREFETCH_REQUEST_SIZE_MAX (16 * 1024 * 1024)
/* Prefetch starts after a random 0 to this many seconds, so that a
 * fleet started at once does not send its first GETs in lockstep.
 */
static unsigned prefetch_jitter = 2;
#define PREFETCH_JITTER_MAX 600
static const char *metrics_file;
static unsigned metrics_interval = 5;
/* The largest request advertised to clients: the NBD protocol's limit
 * for a preferred block size, and what clients may send without asking
 * (nbdkit refuses more than 64M).
 */
#define BLOCK_SIZE_MAX (32 * 1024 * 1024)

static struct image *img;
static char *url_owned; /* url= read from a file */
/* The export's description: the image and its manifest's local copy,
 * which accel-prefetch and accel-mount read ("accel: NAME manifest=PATH",
 * the path last).
 */
static char *description;

static void
accel_load (void)
{
  report_set_handlers (nbdkit_verror, nbdkit_vdebug);
}

/* Parse a size that must fit in 32 bits and be a power of two. */
static int
parse_pow2 (const char *key, const char *value, uint32_t min, uint32_t max,
            uint32_t *out)
{
  int64_t r = nbdkit_parse_size (value);

  if (r == -1)
    return -1;
  if (r < min || r > max || (r & (r - 1)) != 0) {
    nbdkit_error ("%s: must be a power of two between %" PRIu32 " and %" PRIu32
                  " bytes",
                  key, min, max);
    return -1;
  }
  *out = r;
  return 0;
}

/* NB: sizes are read by nbdkit_parse_size, nbdkit's own API; the
 * tools' parse_size (common/utils/parse.h) takes the same suffixes, so
 * "64K" means the same in a key and in a tool's option.
 */
static int
accel_config (const char *key, const char *value)
{
  int64_t r;

  if (strcmp (key, "cache-dir") == 0)
    cfg.cache_dir = value;
  else if (strcmp (key, "cache-key") == 0)
    cfg.cache_key = value;
  else if (strcmp (key, "cache-size") == 0) {
    r = nbdkit_parse_size (value);
    if (r == -1)
      return -1;
    cfg.cache_size = r;
  }
  else if (strcmp (key, "cainfo") == 0)
    cfg.s3.cainfo = value;
  else if (strcmp (key, "chunk-size") == 0) {
    r = nbdkit_parse_size (value);
    if (r == -1)
      return -1;
    if (!manifest_chunk_size_valid (r)) {
      nbdkit_error ("chunk-size: must be " MANIFEST_CHUNK_SIZE_RULE);
      return -1;
    }
    cfg.chunk_size = r;
  }
  else if (strcmp (key, "connections") == 0) {
    if (nbdkit_parse_unsigned (key, value, &cfg.s3.connections) == -1)
      return -1;
    if (cfg.s3.connections < 1 || cfg.s3.connections > 1024) {
      nbdkit_error ("connections: must be between 1 and 1024");
      return -1;
    }
  }
  else if (strcmp (key, "dedup") == 0) {
    int b = nbdkit_parse_bool (value);
    if (b == -1)
      return -1;
    cfg.dedup = b;
  }
  else if (strcmp (key, "endpoint") == 0)
    cfg.s3.endpoint = value;
  else if (strcmp (key, "manifest") == 0)
    cfg.manifest = value;
  else if (strcmp (key, "manifest-sha256") == 0) {
    if (strlen (value) != 64 ||
        strspn (value, "0123456789abcdefABCDEF") != 64) {
      nbdkit_error ("manifest-sha256: must be 64 hex digits");
      return -1;
    }
    cfg.manifest_sha256 = value;
  }
  else if (strcmp (key, "prefetch") == 0) {
    if (strcmp (value, "hot") == 0)
      prefetch = PREFETCH_HOT;
    else if (strcmp (value, "all") == 0)
      prefetch = PREFETCH_ALL;
    else if (strcmp (value, "none") == 0)
      prefetch = PREFETCH_NONE;
    else {
      nbdkit_error ("prefetch=%s: must be hot, all or none", value);
      return -1;
    }
  }
  else if (strcmp (key, "prefetch-jitter") == 0) {
    if (nbdkit_parse_unsigned (key, value, &prefetch_jitter) == -1)
      return -1;
    if (prefetch_jitter > PREFETCH_JITTER_MAX) {
      nbdkit_error ("prefetch-jitter: must be between 0 and %d seconds",
                    PREFETCH_JITTER_MAX);
      return -1;
    }
  }
  else if (strcmp (key, "prefetch-rate") == 0) {
    r = nbdkit_parse_size (value);
    if (r == -1) {
      nbdkit_error ("prefetch-rate=%s: must be bytes per second, with an "
                    "optional k, M or G suffix (0: no cap)",
                    value);
      return -1;
    }
    prefetch_rate = r;
  }
  else if (strcmp (key, "prefetch-request-size") == 0)
    return parse_pow2 (key, value, MANIFEST_MIN_CHUNK_SIZE,
                       PREFETCH_REQUEST_SIZE_MAX, &prefetch_request_size);
  else if (strcmp (key, "metrics-file") == 0)
    metrics_file = value;
  else if (strcmp (key, "metrics-interval") == 0) {
    if (nbdkit_parse_unsigned (key, value, &metrics_interval) == -1)
      return -1;
    if (metrics_interval < 1 || metrics_interval > 3600) {
      nbdkit_error ("metrics-interval: must be between 1 and 3600 seconds");
      return -1;
    }
  }
  else if (strcmp (key, "profile") == 0)
    cfg.s3.profile = value;
  else if (strcmp (key, "publish-wait") == 0) {
    if (nbdkit_parse_unsigned (key, value, &cfg.publish_wait) == -1)
      return -1;
    /* NB: the systemd unit gives a start 10 minutes in all. */
    if (cfg.publish_wait > 600) {
      nbdkit_error ("publish-wait: must be between 0 and 600 seconds");
      return -1;
    }
  }
  else if (strcmp (key, "readahead") == 0) {
    r = nbdkit_parse_size (value);
    if (r == -1)
      return -1;
    readahead = r;
  }
  else if (strcmp (key, "region") == 0)
    cfg.s3.region = value;
  else if (strcmp (key, "request-size") == 0)
    return parse_pow2 (key, value, MANIFEST_MIN_CHUNK_SIZE, 256 << 20,
                       &request_size);
  else if (strcmp (key, "retries") == 0)
    return nbdkit_parse_unsigned (key, value, &cfg.s3.retries);
  else if (strcmp (key, "throttle-timeout") == 0)
    return nbdkit_parse_unsigned (key, value, &cfg.s3.throttle_timeout);
  else if (strcmp (key, "timeout") == 0)
    return nbdkit_parse_unsigned (key, value, &cfg.s3.timeout);
  else if (strcmp (key, "trace") == 0) {
    if (*value == '\0') {
      nbdkit_error ("trace=: needs a file name");
      return -1;
    }
    trace_file = value;
  }
  else if (strcmp (key, "tls-verify") == 0) {
    int b = nbdkit_parse_bool (value);
    if (b == -1)
      return -1;
    cfg.s3.tls_verify = b;
  }
  else if (strcmp (key, "url") == 0) {
    /* url=+FILE or url=- read it with nbdkit_read_password: a presigned
     * URL is a secret, and nbdkit -v logs every key=value it is given.
     */
    if (value[0] == '+' || value[0] == '-') {
      char *url;
      if (nbdkit_read_password (value, &url) == -1)
        return -1;
      free (url_owned);
      cfg.url = url_owned = url;
    }
    else
      cfg.url = value;
  }
  else {
    nbdkit_error ("unknown parameter '%s' (see nbdkit accel --help)", key);
    return -1;
  }
  return 0;
}

static int
accel_config_complete (void)
{
  if (cfg.url == NULL) {
    nbdkit_error ("url=s3://BUCKET/KEY (or an http(s) URL) is required");
    return -1;
  }
  if (cfg.cache_dir[0] != '/') {
    nbdkit_error ("cache-dir=%s: must be an absolute path (nbdkit changes "
                  "directory when it becomes a daemon)",
                  cfg.cache_dir);
    return -1;
  }
  if (cfg.cache_key && cfg.cache_key[0] != '/') {
    nbdkit_error ("cache-key=%s: must be an absolute path", cfg.cache_key);
    return -1;
  }
  if (cfg.chunk_size && request_size < cfg.chunk_size) {
    nbdkit_error ("request-size must be at least chunk-size");
    return -1;
  }
  if (cfg.s3.timeout == 0) {
    nbdkit_error ("timeout must be at least 1 second");
    return -1;
  }
  /* nbdkit changes directory when it becomes a daemon. */
  if (trace_file && trace_file[0] != '/') {
    nbdkit_error ("trace=%s: must be an absolute path", trace_file);
    return -1;
  }
  /* Said even without -v: anyone on the path can then serve other bytes,
   * and without a manifest nothing would notice.
   */
  if (!cfg.s3.tls_verify)
    report_warning ("tls-verify=false: TLS certificates are not "
                    "verified%s",
                    cfg.manifest && strcmp (cfg.manifest, "none") == 0
                        ? " and there is no manifest: nothing checks the bytes"
                        : "");
  if (metrics_file && metrics_file[0] != '/') {
    nbdkit_error ("metrics-file=%s: must be an absolute path (nbdkit "
                  "changes directory when it becomes a daemon)",
                  metrics_file);
    return -1;
  }
  return 0;
}

#define accel_config_help                                                      \
  "url=s3://BUCKET/KEY   (required) The image; or an http(s):// URL;\n"        \
  "                      url=+FILE reads it from FILE (presigned URLs).\n"     \
  "endpoint=URL          S3-compatible endpoint (path-style addressing);\n"    \
  "                      default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL,\n"    \
  "                      the profile's services section or endpoint_url,\n"    \
  "                      else AWS (AWS_IGNORE_CONFIGURED_ENDPOINT_URLS).\n"    \
  "region=REGION         Default: AWS_REGION, AWS_DEFAULT_REGION, profile, "   \
  "us-east-1.\n"                                                               \
  "profile=NAME          AWS profile (default: AWS_PROFILE or \"default\").\n" \
  "manifest=URL|FILE|none Default: URL.manifest if that object exists.\n"      \
  "manifest-sha256=HEX   Accept only the manifest with this SHA-256.\n"        \
  "publish-wait=SECS     Wait for the image's own manifest while a publish\n"  \
  "                      is under way (default 60).\n"                         \
  "metrics-file=PATH     Write Prometheus metrics there (node_exporter).\n"    \
  "metrics-interval=SECS How often to write them (default 5).\n"               \
  "cache-dir=DIR         Persistent cache (default /var/cache/accel).\n"       \
  "cache-key=FILE        Node key: a restart trusts its own chunks by a tag\n" \
  "                      (made 0600 if missing; not inside cache-dir).\n"      \
  "cache-size=SIZE       Cap on the bytes the cache dir holds (default: "      \
  "none).\n"                                                                   \
  "chunk-size=SIZE       Default: the manifest's, else 1M.\n"                  \
  "connections=N         HTTP connections to the origin (default 16).\n"       \
  "dedup=false           Do not copy chunks cached for other images.\n"        \
  "request-size=SIZE     Largest GET, for coalesced misses (default 8M).\n"    \
  "readahead=SIZE        Fetch ahead of sequential readers (default 32M, "     \
  "0=off),\n"                                                                  \
  "                      along the manifest's file map if there is one.\n"     \
  "prefetch=hot|all|none Fetch in the background from start-up: the "          \
  "hot list,\n"                                                                \
  "                      or all of it (default: hot if the manifest has "      \
  "one).\n"                                                                    \
  "prefetch-rate=SIZE    Cap on prefetch, bytes/s (default 200M, 0=none).\n"   \
  "prefetch-request-size=SIZE\n"                                               \
  "                      Largest GET of prefetch and NBD_CMD_CACHE\n"          \
  "                      (accel-prefetch), up to 16M (default 8M).\n"          \
  "prefetch-jitter=SECS  Start prefetch after a random 0-SECS s (default "     \
  "2).\n"                                                                      \
  "trace=FILE            Record the chunks clients read, for accel-index "     \
  "--hot.\n"                                                                   \
  "retries=N             Retries of a failed request (default 6).\n"           \
  "timeout=SECS          Stall timeout of a request (default 60).\n"           \
  "throttle-timeout=SECS How long a request may be throttled by the origin\n"  \
  "                      (503 SlowDown, 429) before it fails (default 300).\n" \
  "tls-verify=false      Do not verify TLS certificates (default true).\n"     \
  "cainfo=FILE           CA certificates for TLS (default: AWS_CA_BUNDLE,\n"   \
  "                      the profile's ca_bundle, the system's)."

/* The defaults of the keys accel-mount sizes nbd-client's -timeout from
 * (nbdkit --dump-plugin runs no .config, so these are the defaults).
 */
static void
accel_dump_plugin (void)
{
  printf ("accel_default_retries=%u\n", cfg.s3.retries);
  printf ("accel_default_timeout=%u\n", cfg.s3.timeout);
  printf ("accel_default_throttle_timeout=%u\n", cfg.s3.throttle_timeout);
}

/* Open the image before nbdkit forks, so that a bad URL, credentials or
 * manifest fail at start-up with a clear message.
 */
static int
accel_get_ready (void)
{
  if (request_size < MANIFEST_MIN_CHUNK_SIZE)
    request_size = MANIFEST_MIN_CHUNK_SIZE;
  img = image_open (&cfg);
  if (img == NULL)
    return -1;
  if (request_size < img->chunk_size)
    request_size = img->chunk_size;
  fetch_init (request_size);
  if (trace_file && trace_open (trace_file, img) == -1)
    return -1;
  if (img->manifest_path &&
      asprintf (&description, "accel: %s manifest=%s", img->name,
                img->manifest_path) == -1) {
    description = NULL;
    nbdkit_error ("asprintf: %m");
    return -1;
  }
  if (metrics_file && metrics_start (metrics_file, metrics_interval, img) == -1)
    return -1;
  return 0;
}

/* Prefetch runs in background threads, so it starts after the fork. */
static int
accel_after_fork (void)
{
  int r = prefetch_plan (img, prefetch, prefetch_rate, cfg.cache_size,
                         prefetch_request_size);

  if (r == -1)
    return -1;
  /* At most half of the pool: the rest is for demand reads. */
  if (r == 1)
    background_set_prefetch (cfg.s3.connections >= 4 ? 2 : 1,
                             prefetch_jitter * UINT64_C (1000000000));
  if (background_start (img) == -1)
    return -1;
  return readahead_start (img, readahead_threads, readahead);
}

static void
accel_cleanup (void)
{
  /* No client is left: what the workers still wait for from the origin
   * is wanted by nobody, so a stalled origin must not hold the exit.
   */
  if (img)
    s3_client_abort (img->s3);
  readahead_stop ();
  background_stop ();
  trace_close ();
  prefetch_free ();
  metrics_stop ();
  if (img && accel_debug_stats) {
    struct fetch_stats f;
    struct cache_stats c;
    struct cache_dedup_stats d = { 0 };
    struct s3_stats s;

    fetch_get_stats (&f);
    cache_image_stats (img->cache, &c);
    if (img->dedup)
      cache_dedup_stats (img->dedup, &d);
    s3_client_stats (img->s3, &s);
    nbdkit_debug (
        "stats: chunk fetches %" PRIu64 ", fetched bytes %" PRIu64
        ", GETs %" PRIu64 ", waits %" PRIu64 ", verify failures %" PRIu64
        ", cache hits %" PRIu64 ", misses %" PRIu64 ", stored %" PRIu64
        ", not stored %" PRIu64 ", verified %" PRIu64
        ", verified by tag %" PRIu64 ", damaged %" PRIu64 ", evicted %" PRIu64
        ", origin requests %" PRIu64 ", retries %" PRIu64 ", errors %" PRIu64
        ", origin bytes %" PRIu64 ", prefetched chunks %" PRIu64
        ", prefetched bytes %" PRIu64 ", read hits %" PRIu64
        ", read misses %" PRIu64 ", hit bytes %" PRIu64 ", miss bytes %" PRIu64
        ", dedup chunks %" PRIu64 ", dedup bytes %" PRIu64
        ", dedup mismatches %" PRIu64 ", dedup scans %" PRIu64
        ", dedup scan us %" PRIu64 ", slowdowns %" PRIu64
        ", throttled us %" PRIu64 ", loaded whole %" PRIu64
        ", part reads %" PRIu64,
        f.chunk_fetches, f.fetch_bytes, f.requests, f.waits, f.verify_failures,
        c.hits, c.misses, c.stored, c.store_skipped, c.verified, c.verified_tag,
        c.verify_failed, c.evicted, s.requests, s.retries, s.errors, s.bytes,
        f.prefetch_chunks, f.prefetch_bytes, f.read_hits, f.read_misses,
        f.hit_bytes, f.miss_bytes, d.chunks, d.bytes, d.verify_failed, d.scans,
        d.scan_us, s.slowdowns, s.throttled_us, c.loaded, c.part_reads);
  }
  image_close (img);
  img = NULL;
}

static void
accel_unload (void)
{
  free (url_owned);
  free (description);
}

/* Every connection serves the one image; nothing is kept per
 * connection (readahead finds streams across connections).
 */
static void *
accel_open (int readonly)
{
  (void) readonly;
  return NBDKIT_HANDLE_NOT_NEEDED;
}

static int64_t
accel_get_size (void *handle)
{
  (void) handle;
  return img->size;
}

static int
accel_can_write (void *handle)
{
  (void) handle;
  return 0;
}

static int
accel_can_multi_conn (void *handle)
{
  (void) handle;
  return 1;
}

static int
accel_can_cache (void *handle)
{
  (void) handle;
  return NBDKIT_CACHE_NATIVE;
}

static int
accel_can_extents (void *handle)
{
  (void) handle;
  return 1;
}

static int
accel_is_rotational (void *handle)
{
  (void) handle;
  return 0;
}

/* NBD can carry only a few errno values (nbdkit sends EINVAL for the
 * rest, which would mislead): whatever went wrong with the origin or the
 * image is an I/O error to the client.  The log has the real cause.
 */
static void
set_nbd_errno (void)
{
  switch (errno) {
  case EPERM:
  case EIO:
  case ENOMEM:
  case EINVAL:
  case ENOSPC:
  case EOVERFLOW:
  case ENOTSUP:
  case ESHUTDOWN:
    break;
  default:
    errno = EIO;
  }
}

/* Clients should read whole chunks (accel-mount sets the kernel's
 * read-ahead from the preferred size): a chunk is what one GET fetches
 * and one hash verifies, so a smaller read of a missing chunk costs as
 * much.  Any byte range can be read, so the minimum is 1.
 */
static int
accel_block_size (void *handle, uint32_t *minimum, uint32_t *preferred,
                  uint32_t *maximum)
{
  (void) handle;
  *minimum = 1;
  *preferred =
      img->chunk_size < BLOCK_SIZE_MAX ? img->chunk_size : BLOCK_SIZE_MAX;
  *maximum = BLOCK_SIZE_MAX;
  return 0;
}

static const char *
accel_export_description (void *handle)
{
  (void) handle;
  return description;
}

static int
accel_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
             uint32_t flags)
{
  (void) handle;
  (void) flags;
  trace_note (offset, count);
  /* First, so that readahead's GETs start along with this read's. */
  readahead_note_read (offset, count);
  if (fetch_read (img, buf, count, offset) == -1) {
    set_nbd_errno ();
    return -1;
  }
  return 0;
}

static int
accel_cache (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  (void) handle;
  (void) flags;
  if (fetch_cache (img, count, offset, prefetch_request_size) == -1) {
    set_nbd_errno ();
    return -1;
  }
  return 0;
}

/* Chunks the manifest marks all-zero are holes that read as zeros; the
 * rest is data.  Without a manifest everything is data.
 */
static int
accel_extents (void *handle, uint32_t count, uint64_t offset, uint32_t flags,
               struct nbdkit_extents *extents)
{
  uint64_t end = offset + count, pos = offset;

  (void) handle;
  while (pos < end) {
    uint64_t idx = pos / img->chunk_size;
    uint64_t next = (idx + 1) * img->chunk_size;
    uint32_t type = image_chunk_is_zero (img, idx)
        ? NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO
        : 0;

    if (next > img->size)
      next = img->size;
    if (nbdkit_add_extent (extents, pos, next - pos, type) == -1)
      return -1;
    pos = next;
    if (flags & NBDKIT_FLAG_REQ_ONE)
      break;
  }
  return 0;
}

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static struct nbdkit_plugin plugin = {
  .name = "accel",
  .longname = "accel: S3 images with a persistent verified block cache",
  .version = "0.1",
  .load = accel_load,
  .unload = accel_unload,
  .config = accel_config,
  .config_complete = accel_config_complete,
  .config_help = accel_config_help,
  .magic_config_key = "url",
  .dump_plugin = accel_dump_plugin,
  .get_ready = accel_get_ready,
  .after_fork = accel_after_fork,
  .cleanup = accel_cleanup,
  .open = accel_open,
  .get_size = accel_get_size,
  .can_write = accel_can_write,
  .can_multi_conn = accel_can_multi_conn,
  .can_cache = accel_can_cache,
  .can_extents = accel_can_extents,
  .is_rotational = accel_is_rotational,
  .export_description = accel_export_description,
  .block_size = accel_block_size,
  .pread = accel_pread,
  .cache = accel_cache,
  .extents = accel_extents,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN (plugin)
