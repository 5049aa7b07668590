/* accel: test helper driving common/s3/creds.c (used by tests/test-creds.sh).
 *
 * One-shot mode resolves credentials once and prints where they came
 * from and the access key id, never a secret:
 *
 *   source=web-identity access_key=ASIA... session_token=yes expires_in=N
 *   anonymous
 *
 * With --check-issued FILE (lines "ACCESS_KEY SECRET TOKEN", as written
 * by tests/lib/fake-aws.py) it also compares the secret key and session
 * token with the ones issued for that access key and prints
 * "secret=ok token=ok" (or "MISMATCH"), so that parsing is verified
 * without the secrets appearing in any output.
 *
 * Loop mode (--loop SECONDS) shares one creds_provider between
 * --threads N threads that call creds_provider_get back to back, and
 * prints what a refresh that never stalls readers should look like:
 *
 *   calls=N errors=N anonymous=N slow_calls=N max_ms=N first_error_ms=N
 *   distinct_keys=N keys=K1,K2,...
 *
 * slow_calls counts calls slower than --slow-ms (default 200); only the
 * caller that performs a refresh may be slow.  Errors are printed only
 * for the first few, since an expired provider fails every call.
 *
 * Exit status: 0 on success (including anonymous), 1 on error, 2 on
 * usage errors.
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cleanup.h"
#include "creds.h"
#include "report.h"

#define PROGNAME "creds-get"
#define MAX_THREADS 64
#define MAX_KEYS 256
#define MAX_PRINTED_ERRORS 5

static bool verbose;

/* lock protects the loop's shared results below. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t calls, errors, anonymous, slow_calls;
static double max_ms, first_error_ms = -1;
static char *keys[MAX_KEYS];
static size_t nr_keys;
static unsigned nr_printed_errors;

/* Loop parameters, fixed before the threads start. */
static struct creds_provider *provider;
static double loop_start, loop_end, slow_ms = 200;

/* Seconds on the monotonic clock. */
static double
now_s (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Errors to stderr, at most MAX_PRINTED_ERRORS of them: in loop mode
 * every call fails once credentials have expired.
 */
static void
print_error (const char *fs, va_list args)
{
  int saved_errno = errno;
  char msg[4096];
  bool print;

  pthread_mutex_lock (&lock);
  print = nr_printed_errors++ < MAX_PRINTED_ERRORS;
  pthread_mutex_unlock (&lock);
  if (!print)
    return;
  errno = saved_errno;
  vsnprintf (msg, sizeof msg, fs, args);
  fprintf (stderr, PROGNAME ": %s\n", msg);
}

/* Debug messages with -v. */
static void
print_debug (const char *fs, va_list args)
{
  char msg[4096];

  if (!verbose)
    return;
  vsnprintf (msg, sizeof msg, fs, args);
  fprintf (stderr, PROGNAME ": debug: %s\n", msg);
}

static void __attribute__ ((noreturn)) usage (void)
{
  fprintf (stderr,
           "usage: " PROGNAME " [-v] [--profile NAME] [--region]\n"
           "                  [--check-issued FILE]\n"
           "       " PROGNAME " [-v] [--profile NAME] --loop SECONDS\n"
           "                  [--threads N] [--slow-ms MS]\n");
  exit (2);
}

/* Parse a positive number from the command line. */
static double
parse_number (const char *opt, const char *s, double max)
{
  char *end;
  double v;

  errno = 0;
  v = strtod (s, &end);
  if (errno || end == s || *end || !(v > 0) || v > max) {
    fprintf (stderr, PROGNAME ": %s: invalid value: %s\n", opt, s);
    exit (2);
  }
  return v;
}

/* Compare the secrets with the ones the fake server issued for this
 * access key, printing only "ok" or "MISMATCH".
 */
static int
check_issued (const char *file, const struct aws_creds *c)
{
  CLEANUP_FREE char *line = NULL;
  size_t n = 0;
  FILE *fp = fopen (file, "r");
  bool found = false, secret_ok = false, token_ok = false;

  if (fp == NULL) {
    fprintf (stderr, PROGNAME ": %s: %m\n", file);
    return -1;
  }
  while (getline (&line, &n, fp) != -1) {
    char *ak = line, *sk, *tok;

    line[strcspn (line, "\n")] = '\0';
    sk = strchr (ak, ' ');
    tok = sk ? strchr (sk + 1, ' ') : NULL;
    if (tok == NULL)
      continue;
    *sk++ = '\0';
    *tok++ = '\0';
    if (strcmp (ak, c->access_key) == 0) {
      found = true;
      secret_ok = strcmp (sk, c->secret_key) == 0;
      token_ok = c->session_token && strcmp (tok, c->session_token) == 0;
    }
  }
  fclose (fp);
  if (!found) {
    fprintf (stderr, PROGNAME ": %s was not issued\n", c->access_key);
    return -1;
  }
  printf ("secret=%s token=%s\n", secret_ok ? "ok" : "MISMATCH",
          token_ok ? "ok" : "MISMATCH");
  return secret_ok && token_ok ? 0 : -1;
}

/* Remember an access key if it is new. */
static void
record_key (const char *key)
{
  size_t i;

  for (i = 0; i < nr_keys; ++i)
    if (strcmp (keys[i], key) == 0)
      return;
  if (nr_keys < MAX_KEYS) {
    keys[nr_keys] = strdup (key);
    if (keys[nr_keys])
      nr_keys++;
  }
}

/* One loop thread: call, time, record, repeat until the end. */
static void *
loop_thread (void *arg)
{
  struct timespec pause = { .tv_nsec = 1000 * 1000 };

  (void) arg;
  while (now_s () < loop_end) {
    struct aws_creds *c = NULL;
    double t0 = now_s (), ms;
    int r = creds_provider_get (provider, &c);

    ms = (now_s () - t0) * 1000;
    pthread_mutex_lock (&lock);
    calls++;
    if (ms > max_ms)
      max_ms = ms;
    if (ms > slow_ms)
      slow_calls++;
    if (r == 0)
      record_key (c->access_key);
    else if (r == 1)
      anonymous++;
    else {
      errors++;
      if (first_error_ms < 0)
        first_error_ms = (t0 - loop_start) * 1000;
    }
    pthread_mutex_unlock (&lock);
    creds_put (c);
    nanosleep (&pause, NULL);
  }
  return NULL;
}

/* Loop mode; see the top of the file. */
static int
run_loop (const char *profile, double seconds, unsigned nr_threads)
{
  pthread_t threads[MAX_THREADS];
  struct aws_creds *c = NULL;
  double t0;
  unsigned i;
  int r;

  provider = creds_provider_new (profile, NULL);
  if (provider == NULL)
    return 1;
  /* The first resolution is the one call allowed to wait. */
  t0 = now_s ();
  r = creds_provider_get (provider, &c);
  printf ("first: r=%d ms=%.0f key=%s\n", r, (now_s () - t0) * 1000,
          c ? c->access_key : "-");
  creds_put (c);
  if (r == -1) {
    creds_provider_free (provider);
    return 1;
  }

  loop_start = now_s ();
  loop_end = loop_start + seconds;
  for (i = 0; i < nr_threads; ++i) {
    errno = pthread_create (&threads[i], NULL, loop_thread, NULL);
    if (errno) {
      fprintf (stderr, PROGNAME ": pthread_create: %m\n");
      exit (1);
    }
  }
  for (i = 0; i < nr_threads; ++i)
    pthread_join (threads[i], NULL);
  creds_provider_free (provider);

  printf ("calls=%" PRIu64 " errors=%" PRIu64 " anonymous=%" PRIu64
          " slow_calls=%" PRIu64 " max_ms=%.0f first_error_ms=%.0f"
          " distinct_keys=%zu keys=",
          calls, errors, anonymous, slow_calls, max_ms, first_error_ms,
          nr_keys);
  for (i = 0; i < nr_keys; ++i) {
    printf ("%s%s", i ? "," : "", keys[i]);
    free (keys[i]);
  }
  printf ("\n");
  return 0;
}

/* One-shot mode; see the top of the file. */
static int
run_once (const char *profile, bool region, const char *issued)
{
  struct aws_creds *c = NULL;
  int r, ret = 0;

  if (region) {
    CLEANUP_FREE char *name = creds_default_region (profile);

    if (name == NULL)
      return 1;
    printf ("region=%s\n", name);
  }
  r = creds_resolve (profile, NULL, &c);
  if (r == -1)
    return 1;
  if (r == 1) {
    printf ("anonymous\n");
    return 0;
  }
  printf ("source=%s access_key=%s session_token=%s", c->source, c->access_key,
          c->session_token ? "yes" : "no");
  if (c->expiration)
    printf (" expires_in=%lld", (long long) (c->expiration - time (NULL)));
  printf ("\n");
  if (issued && check_issued (issued, c) == -1)
    ret = 1;
  creds_put (c);
  return ret;
}

/* Parse options, route messages, run one of the two modes. */
int
main (int argc, char *argv[])
{
  static const struct option long_options[] = {
    { "check-issued", required_argument, NULL, 'c' },
    { "loop", required_argument, NULL, 'l' },
    { "profile", required_argument, NULL, 'p' },
    { "region", no_argument, NULL, 'r' },
    { "slow-ms", required_argument, NULL, 's' },
    { "threads", required_argument, NULL, 't' },
    { "verbose", no_argument, NULL, 'v' },
    { NULL },
  };
  const char *profile = NULL, *issued = NULL;
  double loop = 0;
  unsigned nr_threads = 4;
  bool region = false;
  int c, r;

  while ((c = getopt_long (argc, argv, "v", long_options, NULL)) != -1) {
    switch (c) {
    case 'c':
      issued = optarg;
      break;
    case 'l':
      loop = parse_number ("--loop", optarg, 3600);
      break;
    case 'p':
      profile = optarg;
      break;
    case 'r':
      region = true;
      break;
    case 's':
      slow_ms = parse_number ("--slow-ms", optarg, 60000);
      break;
    case 't':
      nr_threads = parse_number ("--threads", optarg, MAX_THREADS);
      break;
    case 'v':
      verbose = true;
      break;
    default:
      usage ();
    }
  }
  if (optind != argc)
    usage ();

  report_set_handlers (print_error, print_debug);
  curl_global_init (CURL_GLOBAL_DEFAULT);
  if (loop > 0)
    r = run_loop (profile, loop, nr_threads);
  else
    r = run_once (profile, region, issued);
  curl_global_cleanup ();
  return r;
}
