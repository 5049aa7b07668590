/* accel: unit test of common/s3/throttle.c and of which answers are
 * throttle answers (s3_response_throttled).
 *
 * The AIMD state is driven with made-up times: the first throttle
 * answer halves what the node sent in the last second, later ones
 * halve the rate once per round trip (only answers to requests sent
 * after the last decrease count), successes add max (1, rate/8)
 * requests/s per second, a quiet minute lifts the limit, and the GCRA
 * slots space requests 1/rate apart with one request of credit.  The
 * concurrency window halves and grows the same way.  Then the shared
 * file: created, shared by two throttles, rebuilt when it is garbage,
 * short or from an earlier boot; and throttle_wait's priorities and
 * deadline with the real clock.  Output: a line per failed check and a
 * final "throttle: N checks, N failed".
 */

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "s3-internal.h"
#include "throttle.h"
#include "test.h"

#define MS (UINT64_C (1000000))
#define SEC (UINT64_C (1000000000))

/* Send n requests at time t (rate unlimited or slots free). */
static void
send_n (struct throttle_state *s, unsigned n, uint64_t t)
{
  unsigned i;

  for (i = 0; i < n; i++)
    CHECK (throttle_state_admit (s, t) == 0);
}

static void
test_valid (void)
{
  struct throttle_state s;
  uint64_t now = 1000 * SEC;

  throttle_state_init (&s);
  CHECK (throttle_state_valid (&s, now));
  CHECK (atomic_load (&s.rate) == 0);

  s.magic[0] = 'X';
  CHECK (!throttle_state_valid (&s, now));
  throttle_state_init (&s);
  s.version = 2;
  CHECK (!throttle_state_valid (&s, now));
  throttle_state_init (&s);
  atomic_store (&s.rate, 1); /* below the floor: garbage */
  CHECK (!throttle_state_valid (&s, now));
  atomic_store (&s.rate, THROTTLE_MAX_RATE + 1);
  CHECK (!throttle_state_valid (&s, now));
  atomic_store (&s.rate, 5000);
  CHECK (throttle_state_valid (&s, now));
  /* Written in an earlier boot: times after now. */
  atomic_store (&s.slowdown_ns, now + SEC);
  CHECK (!throttle_state_valid (&s, now));
  throttle_state_init (&s);
  atomic_store (&s.next_slot_ns, now + 10 * SEC);
  CHECK (!throttle_state_valid (&s, now));
}

static void
test_aimd (void)
{
  struct throttle_state s;
  uint64_t t = 100 * SEC, r;

  throttle_state_init (&s);
  /* Unlimited: every request goes, and is counted by the second. */
  send_n (&s, 30, t);
  send_n (&s, 20, t + SEC);
  CHECK (atomic_load (&s.sent_prev) == 30);
  CHECK (atomic_load (&s.sent_count) == 20);

  /* The first throttle answer: half of the last second's 30 a second. */
  throttle_state_result (&s, t + SEC, t + SEC + 5 * MS, true);
  CHECK (atomic_load (&s.rate) == 15000);
  CHECK (atomic_load (&s.slowdowns) == 1);
  /* The rest of that burst was sent before the decrease: no change. */
  throttle_state_result (&s, t + SEC, t + SEC + 6 * MS, true);
  throttle_state_result (&s, t + SEC + 5 * MS, t + SEC + 7 * MS, true);
  CHECK (atomic_load (&s.rate) == 15000);
  CHECK (atomic_load (&s.slowdowns) == 3);
  /* An answer to a request sent after it halves again. */
  throttle_state_result (&s, t + SEC + 8 * MS, t + SEC + 9 * MS, true);
  CHECK (atomic_load (&s.rate) == 7500);

  /* Never below the floor. */
  for (int i = 0; i < 20; i++)
    throttle_state_result (&s, t + 2 * SEC + i * 10 * MS,
                           t + 2 * SEC + i * 10 * MS + 1, true);
  CHECK (atomic_load (&s.rate) == THROTTLE_MIN_RATE);

  /* Additive increase: at 2.5/s a success adds 0.4/s, so a second's
   * successes add 1/s.
   */
  atomic_store (&s.rate, 2500);
  throttle_state_result (&s, t + 3 * SEC, t + 3 * SEC, false);
  CHECK (atomic_load (&s.rate) == 2900);
  /* Above 8/s the growth is rate/8 a second: at 80/s, 10/s a second,
   * 0.125/s per success.
   */
  atomic_store (&s.rate, 80000);
  throttle_state_result (&s, t + 3 * SEC, t + 3 * SEC, false);
  CHECK (atomic_load (&s.rate) == 80125);
  /* Grown for a second from 16/s: 2/s more, about. */
  atomic_store (&s.rate, 16000);
  for (int i = 0; i < 16; i++)
    throttle_state_result (&s, t + 3 * SEC, t + 3 * SEC, false);
  r = atomic_load (&s.rate);
  CHECK (r > 17900 && r < 18100);

  /* A quiet minute after the last throttle answer lifts the limit. */
  throttle_state_result (&s, t + 4 * SEC, t + 4 * SEC, true);
  throttle_state_result (&s, t + 5 * SEC, t + 4 * SEC + THROTTLE_RECOVER_NS,
                         false);
  CHECK (atomic_load (&s.rate) != 0);
  throttle_state_result (&s, t + 5 * SEC, t + 4 * SEC + THROTTLE_RECOVER_NS + 1,
                         false);
  CHECK (atomic_load (&s.rate) == 0);
}

static void
test_slots (void)
{
  struct throttle_state s;
  uint64_t t = 50 * SEC;

  throttle_state_init (&s);
  atomic_store (&s.rate, 10000); /* 10/s: a slot every 100 ms */
  atomic_store (&s.next_slot_ns, t);
  CHECK (throttle_state_admit (&s, t) == 0);
  CHECK (throttle_state_admit (&s, t) == 100 * MS);
  CHECK (throttle_state_admit (&s, t + 40 * MS) == 60 * MS);
  CHECK (throttle_state_admit (&s, t + 100 * MS) == 0);
  /* Late by 30 ms: the next slot keeps the pace (+100 ms), no drift. */
  CHECK (throttle_state_admit (&s, t + 230 * MS) == 0);
  CHECK (throttle_state_admit (&s, t + 230 * MS) == 70 * MS);
  /* Idle for 10 s: one request of credit, not a burst. */
  CHECK (throttle_state_admit (&s, t + 10 * SEC) == 0);
  CHECK (throttle_state_admit (&s, t + 10 * SEC) == 0);
  CHECK (throttle_state_admit (&s, t + 10 * SEC) == 100 * MS);
  /* A slot far ahead is garbage (or an old rate): start from now. */
  atomic_store (&s.next_slot_ns, t + 1000 * SEC);
  CHECK (throttle_state_admit (&s, t + 20 * SEC) == 0);
  /* A rate out of bounds (a damaged file) is clamped. */
  atomic_store (&s.rate, 1);
  atomic_store (&s.next_slot_ns, 0);
  CHECK (throttle_state_admit (&s, t + 30 * SEC) == 0);
  CHECK (throttle_state_admit (&s, t + 30 * SEC) == 0);
  CHECK (throttle_state_admit (&s, t + 30 * SEC) ==
         SEC * 1000 / THROTTLE_MIN_RATE);
}

static void
test_window (void)
{
  struct throttle_window w = { .size = 16, .max = 16 };
  uint64_t t = 10 * SEC;

  throttle_window_result (&w, t, t + MS, true);
  CHECK (w.size == 8);
  throttle_window_result (&w, t, t + 2 * MS, true); /* same round trip */
  CHECK (w.size == 8);
  throttle_window_result (&w, t + 3 * MS, t + 4 * MS, true);
  CHECK (w.size == 4);
  for (int i = 1; i <= 10; i++)
    throttle_window_result (&w, t + 10 * MS * i, t + 10 * MS * i + 1, true);
  CHECK (w.size == 1);
  /* A window's worth of successes grows it by one. */
  throttle_window_result (&w, t + SEC, t + SEC, false);
  CHECK (w.size == 2);
  throttle_window_result (&w, t + SEC, t + SEC, false);
  CHECK (w.size == 2);
  throttle_window_result (&w, t + SEC, t + SEC, false);
  CHECK (w.size == 3);
  for (int i = 0; i < 1000; i++)
    throttle_window_result (&w, t + SEC, t + SEC, false);
  CHECK (w.size == 16);
}

/* The file as another process (or a crash, or a bad disk) left it. */
static void
write_garbage (const char *path, size_t len)
{
  char buf[256];

  memset (buf, 0x5a, sizeof buf);
  test_write_file (path, buf, len);
}

static void
test_shared_file (void)
{
  char *path = test_tmp_path ("throttle");
  struct throttle *a = throttle_new (4), *b = throttle_new (4);
  uint64_t waited = 0;
  struct stat st;

  /* Created, valid, and one state for both. */
  CHECK (throttle_share (a, path) == 0);
  CHECK (stat (path, &st) == 0 && st.st_size == THROTTLE_FILE_SIZE &&
         (st.st_mode & 0777) == 0600);
  CHECK (throttle_share (b, path) == 0);
  CHECK (throttle_rate (a) == 0 && throttle_rate (b) == 0);
  CHECK (throttle_wait (a, S3_PRIORITY_DEMAND, 0, &waited) == 0);
  throttle_done (a, now_monotonic_ns (), true); /* a throttle answer */
  CHECK (throttle_rate (a) == THROTTLE_MIN_RATE);
  CHECK (throttle_rate (b) == THROTTLE_MIN_RATE);
  throttle_free (a);
  throttle_free (b);

  /* A valid state survives a restart. */
  a = throttle_new (4);
  CHECK (throttle_share (a, path) == 0);
  CHECK (throttle_rate (a) == THROTTLE_MIN_RATE);
  throttle_free (a);

  /* Garbage, a short file, an empty one: rebuilt, no limit. */
  write_garbage (path, THROTTLE_FILE_SIZE);
  a = throttle_new (4);
  CHECK (throttle_share (a, path) == 0);
  CHECK (throttle_rate (a) == 0);
  throttle_free (a);
  write_garbage (path, 20);
  a = throttle_new (4);
  CHECK (throttle_share (a, path) == 0);
  CHECK (throttle_rate (a) == 0);
  CHECK (stat (path, &st) == 0 && st.st_size == THROTTLE_FILE_SIZE);
  throttle_free (a);

  /* A file that cannot be used: the throttle stays the process's. */
  a = throttle_new (4);
  CHECK (throttle_share (a, "/nonexistent/dir/throttle") == -1);
  CHECK (throttle_rate (a) == 0);
  throttle_free (a);
  free (path);
}

static void
test_wait (void)
{
  struct throttle *t = throttle_new (2);
  uint64_t waited = 0, now;

  /* No limit: nothing waits. */
  CHECK (throttle_wait (t, S3_PRIORITY_PREFETCH, 0, &waited) == 0);
  throttle_done (t, now_monotonic_ns (), false);
  CHECK (waited == 0);

  /* Limited to 1/s (half the 2 requests sent this second): the next
   * request goes, the one after would wait 1 s.  With its deadline now
   * it fails with ETIMEDOUT at once; readahead and prefetch yield
   * (EAGAIN) once a demand read waited on the node.
   */
  CHECK (throttle_wait (t, S3_PRIORITY_DEMAND, 0, &waited) == 0);
  throttle_done (t, now_monotonic_ns (), true);
  CHECK (throttle_rate (t) == 1000);
  now = now_monotonic_ns ();
  CHECK (throttle_wait (t, S3_PRIORITY_DEMAND, now + SEC, &waited) == 0);
  throttle_done (t, now_monotonic_ns (), false);
  errno = 0;
  CHECK (throttle_wait (t, S3_PRIORITY_DEMAND, now_monotonic_ns (), &waited) ==
             -1 &&
         errno == ETIMEDOUT);
  errno = 0;
  CHECK (throttle_wait (t, S3_PRIORITY_READAHEAD, now + 10 * SEC, &waited) ==
             -1 &&
         errno == EAGAIN);
  CHECK (throttle_wait (t, S3_PRIORITY_PREFETCH, now + 10 * SEC, &waited) ==
             -1 &&
         errno == EAGAIN);
  /* A demand read that waits for a slot gets one, after ~1 s. */
  waited = 0;
  CHECK (throttle_wait (t, S3_PRIORITY_DEMAND, now + 10 * SEC, &waited) == 0);
  CHECK (waited > 500 * MS && waited < 2 * SEC);
  throttle_done (t, now_monotonic_ns (), false);
  throttle_free (t);
}

/* Which answers are back-pressure. */
static void
test_throttled_answers (void)
{
  static const struct {
    long status;
    const char *body;
    bool throttled;
  } cases[] = {
    { 429, "", true },
    { 503, "", true },
    { 503,
      "<Error><Code>SlowDown</Code><Message>Please reduce your request "
      "rate.</Message></Error>",
      true },
    { 503, "<Error><Code>ServiceUnavailable</Code></Error>", false },
    { 503, "<html>busy</html>", false },
    { 500, "<Error><Code>SlowDown</Code></Error>", false },
    { 500, "", false },
    { 200, "", false },
  };
  size_t i;

  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct s3_response rs;
    char what[64];

    memset (&rs, 0, sizeof rs);
    rs.status = cases[i].status;
    rs.err_body = (char *) cases[i].body;
    rs.err_len = rs.err_total = strlen (cases[i].body);
    snprintf (what, sizeof what, "%ld %s", cases[i].status, cases[i].body);
    CHECK_INPUT (s3_response_throttled (&rs) == cases[i].throttled, "throttled",
                 what);
  }
}

int
main (void)
{
  test_capture_errors (false);
  test_make_tmpdir ("test-throttle");
  test_valid ();
  test_aimd ();
  test_slots ();
  test_window ();
  test_shared_file ();
  test_wait ();
  test_throttled_answers ();
  return test_summary ("throttle");
}
