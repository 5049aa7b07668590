/* accel: s3-get, a small driver of common/s3/s3.c for integration tests.
 *
 *   s3-get [OPTIONS] URL OFFSET LENGTH   write those bytes to stdout
 *   s3-get [OPTIONS] --whole MAX URL     the whole object (s3_object_get_to_fd)
 *   s3-get [OPTIONS] --info URL          print size, ETag, name, identity
 *   s3-get [OPTIONS] --random COUNT --threads N --compare FILE URL
 *                                        COUNT random ranges from N threads,
 *                                        each checked against FILE
 *   s3-get [OPTIONS] --presign SECONDS s3://BUCKET/KEY
 *                                        print a presigned GET URL (made
 *                                        with sigv4.h, to test http URLs)
 *
 * --ready FILE creates FILE once the object is open, and --wait-for FILE
 * then waits for FILE to exist before reading, so that a test can change
 * the object in between.  --stats prints the client's counters to stderr.
 * --progress reads a range through s3_object_get_range_progress and
 * checks its promise (see get_range_checked).
 * Credentials come from the usual places (creds.h).  Exit status: 0 ok,
 * 1 failure, 2 usage, 3 (with --missing-ok) no such object.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
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

#include "cleanup.h"
#include "creds.h"
#include "report.h"
#include "s3-url.h"
#include "s3.h"
#include "sigv4.h"

#define PROG "s3-get"
#define MAX_LENGTH (1024ULL * 1024 * 1024)

static struct s3_object *obj;
static int compare_fd = -1;
static uint64_t random_count, max_read = 1024 * 1024, seed;
static atomic_uint_fast64_t next_read, mismatches, failed_reads;

/* Wrong arguments: print the synopsis, exit 2. */
static void
usage (void)
{
  fprintf (stderr,
           "usage: " PROG " [--endpoint URL] [--region R] [--profile P]\n"
           "         [--connections N] [--retries N] [--timeout S]\n"
           "         [--throttle-timeout S]\n"
           "         [--no-tls-verify] [--cainfo FILE] [--stats] [--verbose]\n"
           "         [--ready FILE] [--wait-for FILE] [--missing-ok]\n"
           "         URL OFFSET LENGTH | --whole MAX URL | --info URL |\n"
           "         --random COUNT [--threads N] [--max-length L] [--seed S]\n"
           "         --compare FILE URL | --presign SECONDS URL\n");
  exit (2);
}

/* A decimal number, strictly (no atoi). */
static uint64_t
parse_num (const char *what, const char *s)
{
  uint64_t v = 0;
  const char *p = s;

  if (*p == '\0')
    goto bad;
  for (; *p; p++) {
    if (*p < '0' || *p > '9' || v > (UINT64_MAX - (*p - '0')) / 10)
      goto bad;
    v = v * 10 + (*p - '0');
  }
  return v;
bad:
  fprintf (stderr, PROG ": %s: not a number: %s\n", what, s);
  exit (2);
}

/* Wait (up to 5 minutes) until path exists. */
static void
wait_for (const char *path)
{
  int i;

  for (i = 0; i < 3000; i++) {
    if (access (path, F_OK) == 0)
      return;
    usleep (100000);
  }
  fprintf (stderr, PROG ": timed out waiting for %s\n", path);
  exit (1);
}

/* xorshift64: reproducible random reads from --seed. */
static uint64_t
next_random (uint64_t *state)
{
  *state ^= *state << 13;
  *state ^= *state >> 7;
  *state ^= *state << 17;
  return *state;
}

/* One thread of --random: claim reads until COUNT are done. */
static int get_range_checked (struct s3_object *o, uint64_t offset,
                              uint64_t length, unsigned char *buf);

static void *
random_reader (void *arg)
{
  uint64_t state = seed ^ ((uintptr_t) arg * 0x9e3779b97f4a7c15ULL) ^ 1;
  uint64_t size = s3_object_size (obj);
  char *buf = malloc (max_read), *want = malloc (max_read);

  if (buf == NULL || want == NULL) {
    perror ("malloc");
    exit (1);
  }
  while (atomic_fetch_add (&next_read, 1) < random_count) {
    uint64_t r = next_random (&state);
    uint64_t off, len;

    /* A quarter of reads hit the ends, where off-by-ones live. */
    switch (r % 8) {
    case 0:
      off = 0;
      break;
    case 1:
      off =
          size - 1 - next_random (&state) % (size < max_read ? size : max_read);
      break;
    default:
      off = next_random (&state) % size;
    }
    len = 1 + next_random (&state) % max_read;
    if (len > size - off)
      len = size - off;

    if (get_range_checked (obj, off, len, (unsigned char *) buf) == -1) {
      atomic_fetch_add (&failed_reads, 1);
      continue;
    }
    if (pread (compare_fd, want, len, off) != (ssize_t) len) {
      perror ("pread");
      exit (1);
    }
    if (memcmp (buf, want, len) != 0) {
      fprintf (stderr,
               PROG ": MISMATCH at offset %" PRIu64 " length %" PRIu64 "\n",
               off, len);
      atomic_fetch_add (&mismatches, 1);
    }
  }
  free (buf);
  free (want);
  return NULL;
}

/* --random: the reads, then a one-line summary. */
static int
run_random (unsigned threads)
{
  pthread_t *tids = calloc (threads, sizeof *tids);
  struct timespec t0, t1;
  unsigned i;
  off_t fsize = lseek (compare_fd, 0, SEEK_END);

  if (tids == NULL) {
    perror ("calloc");
    return 1;
  }
  if (fsize != (off_t) s3_object_size (obj) || fsize == 0) {
    fprintf (stderr, PROG ": --compare file is %jd bytes, object %" PRIu64 "\n",
             (intmax_t) fsize, s3_object_size (obj));
    free (tids);
    return 1;
  }
  clock_gettime (CLOCK_MONOTONIC, &t0);
  for (i = 0; i < threads; i++)
    if (pthread_create (&tids[i], NULL, random_reader,
                        (void *) (uintptr_t) i) != 0) {
      perror ("pthread_create");
      exit (1);
    }
  for (i = 0; i < threads; i++)
    pthread_join (tids[i], NULL);
  clock_gettime (CLOCK_MONOTONIC, &t1);
  free (tids);
  fprintf (stderr,
           PROG ": %" PRIu64 " random reads (seed %" PRIu64 ") from %u "
                "threads in %.2f s: %" PRIu64 " mismatches, %" PRIu64
                " failed\n",
           random_count, seed, threads,
           (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
           (uint64_t) mismatches, (uint64_t) failed_reads);
  return mismatches || failed_reads ? 1 : 0;
}

/* --progress: the read goes through s3_object_get_range_progress, and
 * its promise is checked: done only grows, ends at the length, and the
 * bytes before it never change once handed over (each callback copies
 * the new ones to a shadow, compared with the result at the end).
 */
static bool use_progress;

struct progress_check {
  const unsigned char *buf;
  unsigned char *shadow;
  uint64_t seen;
  bool bad;
};

static uint64_t
progress_cb (void *opaque, uint64_t done)
{
  struct progress_check *pc = opaque;

  if (done <= pc->seen) {
    fprintf (stderr, PROG ": progress went from %" PRIu64 " to %" PRIu64 "\n",
             pc->seen, done);
    pc->bad = true;
    return done;
  }
  memcpy (pc->shadow + pc->seen, pc->buf + pc->seen, done - pc->seen);
  pc->seen = done;
  return done;
}

static int
get_range_checked (struct s3_object *o, uint64_t offset, uint64_t length,
                   unsigned char *buf)
{
  struct progress_check pc = { .buf = buf };
  struct s3_progress p = { .fn = progress_cb, .opaque = &pc };
  int r;

  if (!use_progress)
    return s3_object_get_range (o, offset, length, buf);
  pc.shadow = malloc (length ? length : 1);
  if (pc.shadow == NULL) {
    perror ("malloc");
    exit (1);
  }
  r = s3_object_get_range_progress (o, offset, length, buf, &p);
  if (r == 0 &&
      (pc.bad || pc.seen != length || memcmp (pc.shadow, buf, length) != 0)) {
    fprintf (
        stderr,
        PROG ": --progress: broken promise (ended at %" PRIu64 " of %" PRIu64
             ", bytes changed after being handed over: %s)\n",
        pc.seen, length,
        pc.seen == length && memcmp (pc.shadow, buf, length) ? "yes" : "no");
    exit (1);
  }
  free (pc.shadow);
  return r;
}

/* URL OFFSET LENGTH: one read to stdout. */
static int
run_range (uint64_t offset, uint64_t length)
{
  unsigned char *buf;
  int r = 0;

  if (length > MAX_LENGTH) {
    fprintf (stderr, PROG ": LENGTH is more than %llu\n", MAX_LENGTH);
    return 2;
  }
  buf = malloc (length ? length : 1);
  if (buf == NULL) {
    perror ("malloc");
    return 1;
  }
  if (get_range_checked (obj, offset, length, buf) == -1)
    r = 1;
  else if (fwrite (buf, 1, length, stdout) != length || fflush (stdout) != 0) {
    perror ("write");
    r = 1;
  }
  free (buf);
  return r;
}

/* --presign: a presigned GET URL for an s3:// URL, signed with the
 * credentials creds.h finds.
 */
static int
run_presign (const struct s3_config *cfg, const char *url, unsigned expires)
{
  CLEANUP_FREE char *region = NULL;
  CLEANUP_FREE char *query = NULL;
  struct aws_creds *cr = NULL;
  struct s3_url u;
  char amz_date[17];
  int r = 1;

  region =
      cfg->region ? strdup (cfg->region) : creds_default_region (cfg->profile);
  if (region == NULL)
    return 1;
  if (s3_url_parse (url, cfg->endpoint, region, &u) == -1)
    return 1;
  if (!u.sign) {
    fprintf (stderr, PROG ": --presign needs an s3:// URL\n");
    goto out;
  }
  if (creds_resolve (cfg->profile, cfg->cainfo, &cr) != 0) {
    fprintf (stderr, PROG ": --presign: no credentials\n");
    goto out;
  }
  if (sigv4_format_date (time (NULL), amz_date) == -1)
    goto out;
  {
    struct sigv4_kv h[] = { { "host", u.host } };
    struct sigv4_request sr = {
      .method = "GET",
      .path = u.path,
      .headers = h,
      .nr_headers = 1,
      .payload_hash = "UNSIGNED-PAYLOAD",
      .region = region,
      .service = "s3",
      .amz_date = amz_date,
    };

    query = sigv4_presign_query (&sr, cr->access_key, cr->secret_key,
                                 cr->session_token, expires);
  }
  if (query == NULL)
    goto out;
  printf ("%s?%s\n", u.url, query);
  r = 0;
out:
  if (cr)
    creds_put (cr);
  s3_url_free (&u);
  return r;
}

/* Parse options, open the object, run the chosen mode. */
int
main (int argc, char *argv[])
{
  enum {
    OPT_ENDPOINT = 256,
    OPT_REGION,
    OPT_PROFILE,
    OPT_CONNECTIONS,
    OPT_RETRIES,
    OPT_TIMEOUT,
    OPT_NO_TLS_VERIFY,
    OPT_CAINFO,
    OPT_STATS,
    OPT_THREADS,
    OPT_RANDOM,
    OPT_COMPARE,
    OPT_MAX_LENGTH,
    OPT_SEED,
    OPT_WHOLE,
    OPT_INFO,
    OPT_READY,
    OPT_WAIT_FOR,
    OPT_MISSING_OK,
    OPT_PRESIGN,
    OPT_PROGRESS,
    OPT_THROTTLE_TIMEOUT
  };
  static const struct option long_options[] = {
    { "endpoint", required_argument, NULL, OPT_ENDPOINT },
    { "region", required_argument, NULL, OPT_REGION },
    { "profile", required_argument, NULL, OPT_PROFILE },
    { "connections", required_argument, NULL, OPT_CONNECTIONS },
    { "retries", required_argument, NULL, OPT_RETRIES },
    { "timeout", required_argument, NULL, OPT_TIMEOUT },
    { "throttle-timeout", required_argument, NULL, OPT_THROTTLE_TIMEOUT },
    { "no-tls-verify", no_argument, NULL, OPT_NO_TLS_VERIFY },
    { "cainfo", required_argument, NULL, OPT_CAINFO },
    { "stats", no_argument, NULL, OPT_STATS },
    { "threads", required_argument, NULL, OPT_THREADS },
    { "random", required_argument, NULL, OPT_RANDOM },
    { "compare", required_argument, NULL, OPT_COMPARE },
    { "max-length", required_argument, NULL, OPT_MAX_LENGTH },
    { "seed", required_argument, NULL, OPT_SEED },
    { "whole", required_argument, NULL, OPT_WHOLE },
    { "info", no_argument, NULL, OPT_INFO },
    { "ready", required_argument, NULL, OPT_READY },
    { "wait-for", required_argument, NULL, OPT_WAIT_FOR },
    { "missing-ok", no_argument, NULL, OPT_MISSING_OK },
    { "presign", required_argument, NULL, OPT_PRESIGN },
    { "progress", no_argument, NULL, OPT_PROGRESS },
    { "verbose", no_argument, NULL, 'v' },
    { NULL, 0, NULL, 0 },
  };
  struct s3_config cfg;
  struct s3_client *client;
  struct s3_stats st;
  bool stats = false, verbose = false, info = false, missing_ok = false;
  bool whole = false;
  uint64_t whole_max = 0, threads = 1, presign = 0;
  const char *compare = NULL, *ready = NULL, *wait_file = NULL;
  int c, r;

  s3_config_init (&cfg);
  seed = (uint64_t) time (NULL);
  while ((c = getopt_long (argc, argv, "v", long_options, NULL)) != -1) {
    switch (c) {
    case OPT_ENDPOINT:
      cfg.endpoint = optarg;
      break;
    case OPT_REGION:
      cfg.region = optarg;
      break;
    case OPT_PROFILE:
      cfg.profile = optarg;
      break;
    case OPT_CONNECTIONS:
      cfg.connections = parse_num ("--connections", optarg);
      break;
    case OPT_RETRIES:
      cfg.retries = parse_num ("--retries", optarg);
      break;
    case OPT_TIMEOUT:
      cfg.timeout = parse_num ("--timeout", optarg);
      break;
    case OPT_THROTTLE_TIMEOUT:
      cfg.throttle_timeout = parse_num ("--throttle-timeout", optarg);
      break;
    case OPT_NO_TLS_VERIFY:
      cfg.tls_verify = false;
      break;
    case OPT_CAINFO:
      cfg.cainfo = optarg;
      break;
    case OPT_STATS:
      stats = true;
      break;
    case OPT_THREADS:
      threads = parse_num ("--threads", optarg);
      break;
    case OPT_RANDOM:
      random_count = parse_num ("--random", optarg);
      break;
    case OPT_COMPARE:
      compare = optarg;
      break;
    case OPT_MAX_LENGTH:
      max_read = parse_num ("--max-length", optarg);
      break;
    case OPT_SEED:
      seed = parse_num ("--seed", optarg);
      break;
    case OPT_WHOLE:
      whole = true;
      whole_max = parse_num ("--whole", optarg);
      break;
    case OPT_INFO:
      info = true;
      break;
    case OPT_READY:
      ready = optarg;
      break;
    case OPT_WAIT_FOR:
      wait_file = optarg;
      break;
    case OPT_MISSING_OK:
      missing_ok = true;
      break;
    case OPT_PRESIGN:
      presign = parse_num ("--presign", optarg);
      break;
    case OPT_PROGRESS:
      use_progress = true;
      break;
    case 'v':
      verbose = true;
      break;
    default:
      usage ();
    }
  }
  if (threads < 1 || threads > 1024 || max_read < 1 || max_read > MAX_LENGTH)
    usage ();
  if (random_count > 0 && compare == NULL)
    usage ();
  if (optind >= argc ||
      argc - optind != (random_count || whole || info || presign ? 1 : 3))
    usage ();
  if (compare) {
    compare_fd = open (compare, O_RDONLY | O_CLOEXEC);
    if (compare_fd == -1) {
      perror (compare);
      return 1;
    }
  }

  report_set_tool (PROG, verbose);
  if (presign) {
    /* creds.h needs libcurl initialized; a client does that. */
    client = s3_client_new (&cfg);
    if (client == NULL)
      return 1;
    r = run_presign (&cfg, argv[optind], presign);
    s3_client_free (client);
    return r;
  }
  client = s3_client_new (&cfg);
  if (client == NULL)
    return 1;
  obj = s3_object_open (client, argv[optind], missing_ok);
  if (obj == NULL) {
    r = missing_ok && errno == ENOENT ? 3 : 1;
    goto out;
  }
  if (ready) {
    int fd = open (ready, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

    if (fd == -1) {
      perror (ready);
      exit (1);
    }
    close (fd);
  }
  if (wait_file)
    wait_for (wait_file);

  if (info) {
    printf ("size %" PRIu64 "\netag %s\nname %s\nidentity %s\n",
            s3_object_size (obj), s3_object_etag (obj), s3_object_name (obj),
            s3_object_identity (obj));
    r = 0;
  }
  else if (random_count)
    r = run_random (threads);
  else if (whole)
    r = s3_object_get_to_fd (obj, 1, whole_max) == -1 ? 1 : 0;
  else
    r = run_range (parse_num ("OFFSET", argv[optind + 1]),
                   parse_num ("LENGTH", argv[optind + 2]));
  s3_object_close (obj);

out:
  if (stats) {
    s3_client_stats (client, &st);
    fprintf (stderr,
             "stats: requests %" PRIu64 " gets %" PRIu64 " heads %" PRIu64
             " bytes %" PRIu64 " retries %" PRIu64 " errors %" PRIu64
             " slowdowns %" PRIu64 "\n",
             st.requests, st.gets, st.heads, st.bytes, st.retries, st.errors,
             st.slowdowns);
  }
  s3_client_free (client);
  if (compare_fd >= 0)
    close (compare_fd);
  return r;
}
