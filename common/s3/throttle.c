/* accel: back-pressure from the origin (see throttle.h).
 *
 * The state is a handful of 64-bit words changed only with atomics, so
 * that it can live in a file mapped by every process on the node (a
 * process may die at any point: no lock is ever held in it).  Each
 * process adds its own lock for its concurrency window and for the
 * waiters of each class, which is what decides who yields.
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "clock.h"
#include "report.h"
#include "throttle.h"

#define SEC UINT64_C (1000000000)

/* A waiter looks again at least this often (a slot may be freed by
 * another process, which cannot wake it).
 */
#define POLL_NS (50 * UINT64_C (1000000))

/* A waiter for a free place in the window looks again after this. */
#define WINDOW_POLL_NS (10 * UINT64_C (1000000))

_Static_assert(sizeof (struct throttle_state) == THROTTLE_FILE_SIZE,
               "the throttle file's layout");

struct throttle {
  struct throttle_state *s; /* own, or the node's (mapped) */
  struct throttle_state own;
  bool mapped;

  /* lock protects window, in_flight and waiting; waiters sleep on
   * cond, which throttle_done signals.
   */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  struct throttle_window window;
  unsigned in_flight;
  unsigned waiting[S3_PRIORITY_PREFETCH + 1];
};

void
throttle_state_init (struct throttle_state *s)
{
  memset (s->reserved, 0, sizeof s->reserved);
  atomic_store (&s->rate, 0);
  atomic_store (&s->next_slot_ns, 0);
  atomic_store (&s->decrease_ns, 0);
  atomic_store (&s->slowdown_ns, 0);
  atomic_store (&s->demand_ns, 0);
  atomic_store (&s->slowdowns, 0);
  atomic_store (&s->sent_sec, 0);
  atomic_store (&s->sent_count, 0);
  atomic_store (&s->sent_prev, 0);
  s->version = THROTTLE_VERSION;
  s->size = THROTTLE_FILE_SIZE;
  memcpy (s->magic, THROTTLE_MAGIC, sizeof s->magic);
}

/* NB: a state written in an earlier boot has monotonic times after
 * now (the clock started again); its slot may be up to one interval
 * at the slowest rate ahead.
 */
bool
throttle_state_valid (const struct throttle_state *s, uint64_t now)
{
  uint64_t rate = atomic_load (&s->rate);

  if (memcmp (s->magic, THROTTLE_MAGIC, sizeof s->magic) != 0 ||
      s->version != THROTTLE_VERSION || s->size != THROTTLE_FILE_SIZE)
    return false;
  if (rate != 0 && (rate < THROTTLE_MIN_RATE || rate > THROTTLE_MAX_RATE))
    return false;
  return atomic_load (&s->next_slot_ns) <= now + 3 * SEC &&
      atomic_load (&s->decrease_ns) <= now &&
      atomic_load (&s->slowdown_ns) <= now &&
      atomic_load (&s->demand_ns) <= now &&
      atomic_load (&s->sent_sec) <= now / SEC;
}

/* A rate within bounds, whatever the file says. */
static uint64_t
clamp_rate (uint64_t r)
{
  if (r < THROTTLE_MIN_RATE)
    return THROTTLE_MIN_RATE;
  if (r > THROTTLE_MAX_RATE)
    return THROTTLE_MAX_RATE;
  return r;
}

/* Count a request sent at now, by the second: what the node was
 * sending when the first throttle answer came sets the first limit.
 * Approximate under races, which is all it needs to be.
 */
static void
count_sent (struct throttle_state *s, uint64_t now)
{
  uint64_t sec = now / SEC, cur = atomic_load (&s->sent_sec), n;

  if (cur != sec && atomic_compare_exchange_strong (&s->sent_sec, &cur, sec)) {
    n = atomic_exchange (&s->sent_count, 0);
    atomic_store (&s->sent_prev, cur + 1 == sec ? n : 0);
  }
  atomic_fetch_add (&s->sent_count, 1);
}

/* GCRA with a tolerance of one interval: the slot of the next request
 * moves on by 1/rate per request, and an idle period earns at most one
 * request of credit, so the node never bursts above its rate.
 */
uint64_t
throttle_state_admit (struct throttle_state *s, uint64_t now)
{
  uint64_t rate = atomic_load (&s->rate), interval, next, base;

  if (rate == 0) {
    count_sent (s, now);
    return 0;
  }
  interval = SEC * 1000 / clamp_rate (rate);
  next = atomic_load (&s->next_slot_ns);
  for (;;) {
    if (next > now + 2 * interval) {
      /* Garbage, or a rate raised since: start again from now. */
      if (!atomic_compare_exchange_weak (&s->next_slot_ns, &next, now))
        continue;
      next = now;
    }
    if (next > now)
      return next - now;
    base = now - next > interval ? now - interval : next;
    if (atomic_compare_exchange_weak (&s->next_slot_ns, &next, base + interval))
      break;
  }
  count_sent (s, now);
  return 0;
}

/* Multiplicative decrease, once per round trip: only an answer to a
 * request sent after the last decrease counts (the others were sent at
 * the old rate).  The first decrease halves what the node sent in the
 * last second.
 */
static void
decrease (struct throttle_state *s, uint64_t sent_ns, uint64_t now)
{
  uint64_t d = atomic_load (&s->decrease_ns), r, sent;

  if (sent_ns <= d ||
      !atomic_compare_exchange_strong (&s->decrease_ns, &d, now))
    return;
  r = atomic_load (&s->rate);
  if (r == 0) {
    sent = atomic_load (&s->sent_prev);
    if (atomic_load (&s->sent_count) > sent)
      sent = atomic_load (&s->sent_count);
    r = sent * 1000;
    atomic_store (&s->next_slot_ns, now);
  }
  atomic_store (&s->rate, clamp_rate (r / 2));
}

/* Additive increase: max (1, rate/8) requests/s more each second, as
 * each of the rate's successes adds its share.  Lifted after a quiet
 * THROTTLE_RECOVER_NS.
 */
static void
increase (struct throttle_state *s, uint64_t now)
{
  uint64_t r = atomic_load (&s->rate), g, inc, next;

  if (r == 0)
    return;
  if (now - atomic_load (&s->slowdown_ns) > THROTTLE_RECOVER_NS) {
    atomic_store (&s->rate, 0);
    return;
  }
  r = clamp_rate (r);
  g = r / 8 > 1000 ? r / 8 : 1000;
  inc = g * 1000 / r;
  next = r + (inc ? inc : 1);
  if (next > THROTTLE_MAX_RATE)
    next = THROTTLE_MAX_RATE;
  /* NB: a lost race loses one success's share, nothing more. */
  atomic_compare_exchange_strong (&s->rate, &r, next);
}

void
throttle_state_result (struct throttle_state *s, uint64_t sent_ns, uint64_t now,
                       bool throttled)
{
  if (throttled) {
    atomic_fetch_add (&s->slowdowns, 1);
    atomic_store (&s->slowdown_ns, now);
    decrease (s, sent_ns, now);
  }
  else
    increase (s, now);
}

/* The window in whole requests: halved once per round trip, grown by
 * one after a window's worth of successes.
 */
void
throttle_window_result (struct throttle_window *w, uint64_t sent_ns,
                        uint64_t now, bool throttled)
{
  if (throttled) {
    if (sent_ns > w->decrease_ns) {
      w->size = w->size > 1 ? w->size / 2 : 1;
      w->acked = 0;
      w->decrease_ns = now;
    }
  }
  else if (++w->acked >= w->size) {
    w->acked = 0;
    if (w->size < w->max)
      w->size++;
  }
}

struct throttle *
throttle_new (unsigned max_in_flight)
{
  struct throttle *t = calloc (1, sizeof *t);
  pthread_condattr_t attr;

  if (t == NULL) {
    report_error ("calloc: %m");
    return NULL;
  }
  throttle_state_init (&t->own);
  t->s = &t->own;
  pthread_mutex_init (&t->lock, NULL);
  pthread_condattr_init (&attr);
  pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
  pthread_cond_init (&t->cond, &attr);
  pthread_condattr_destroy (&attr);
  t->window.max = max_in_flight ? max_in_flight : 1;
  t->window.size = t->window.max;
  return t;
}

void
throttle_free (struct throttle *t)
{
  if (t == NULL)
    return;
  if (t->mapped)
    munmap (t->s, THROTTLE_FILE_SIZE);
  pthread_cond_destroy (&t->cond);
  pthread_mutex_destroy (&t->lock);
  free (t);
}

/* The file is checked and, if need be, rebuilt under its own flock,
 * so that two processes starting together agree on one state.  It is
 * never shrunk: another process may have it mapped.
 */
int
throttle_share (struct throttle *t, const char *path)
{
  struct throttle_state *s;
  struct stat st;
  int fd;

  fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd == -1) {
    report_debug ("throttle: %s: %m: the throttle is this process's", path);
    return -1;
  }
  /* NB: allocated, not sparse (as the cache's tags): a store into a
   * hole of a shared mapping on a full disk is SIGBUS (on tmpfs, so is
   * reading one).  posix_fallocate returns the error, not -1.
   */
  if (flock (fd, LOCK_EX) == -1 || fstat (fd, &st) == -1 ||
      (st.st_size < THROTTLE_FILE_SIZE &&
       ftruncate (fd, THROTTLE_FILE_SIZE) == -1) ||
      (errno = posix_fallocate (fd, 0, THROTTLE_FILE_SIZE)) != 0) {
    report_debug ("throttle: %s: %m: the throttle is this process's", path);
    close (fd);
    return -1;
  }
  s = mmap (NULL, THROTTLE_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
            0);
  if (s == MAP_FAILED) {
    report_debug ("throttle: %s: mmap: %m: the throttle is this process's",
                  path);
    flock (fd, LOCK_UN);
    close (fd);
    return -1;
  }
  if (!throttle_state_valid (s, now_monotonic_ns ())) {
    if (st.st_size > 0)
      report_debug ("throttle: %s: not a valid state: rebuilt", path);
    throttle_state_init (s);
  }
  /* NB: the mapping holds the open file, so closing fd would not
   * release the flock.
   */
  flock (fd, LOCK_UN);
  close (fd);
  if (t->mapped)
    munmap (t->s, THROTTLE_FILE_SIZE);
  t->s = s;
  t->mapped = true;
  return 0;
}

/* Per-thread xorshift64 for jitter. */
static uint64_t
jitter (uint64_t range)
{
  static __thread uint64_t state;

  if (range == 0)
    return 0;
  if (state == 0)
    state = now_monotonic_ns () ^ (uint64_t) pthread_self () ^
        0x9e3779b97f4a7c15ULL;
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state % range;
}

/* With t->lock held: is a request of a higher class than prio waiting,
 * here or (a demand read) elsewhere on the node?
 */
static bool
higher_waiting_locked (struct throttle *t, enum s3_priority prio, uint64_t now)
{
  uint64_t d;
  int p;

  for (p = S3_PRIORITY_DEMAND; p < (int) prio; p++)
    if (t->waiting[p] > 0)
      return true;
  d = atomic_load (&t->s->demand_ns);
  return prio > S3_PRIORITY_DEMAND && d != 0 && d <= now &&
      now - d < THROTTLE_DEMAND_NS;
}

/* With t->lock held: sleep until now + ns (monotonic) or a signal. */
static void
sleep_locked (struct throttle *t, uint64_t now, uint64_t ns)
{
  struct timespec ts;
  uint64_t until = now + ns;

  ts.tv_sec = until / SEC;
  ts.tv_nsec = until % SEC;
  pthread_cond_timedwait (&t->cond, &t->lock, &ts);
}

int
throttle_wait (struct throttle *t, enum s3_priority prio, uint64_t deadline_ns,
               uint64_t *waited_ns)
{
  uint64_t start = now_monotonic_ns (), now, wait;
  int err = 0;

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&t->lock);
  for (now = start;; now = now_monotonic_ns ()) {
    if (atomic_load (&t->s->rate) == 0) {
      throttle_state_admit (t->s, now); /* counts it */
      break;
    }
    if (higher_waiting_locked (t, prio, now)) {
      err = EAGAIN;
      break;
    }
    if (t->in_flight < t->window.size) {
      wait = throttle_state_admit (t->s, now);
      if (wait == 0)
        break;
      /* Jitter: processes that woke together do not ask together. */
      wait += jitter (wait / 4 + 1000000);
    }
    else
      wait = WINDOW_POLL_NS;
    if (prio == S3_PRIORITY_DEMAND)
      atomic_store (&t->s->demand_ns, now);
    if (now >= deadline_ns) {
      err = ETIMEDOUT;
      break;
    }
    if (wait > POLL_NS)
      wait = POLL_NS;
    if (wait > deadline_ns - now)
      wait = deadline_ns - now;
    t->waiting[prio]++;
    sleep_locked (t, now, wait);
    t->waiting[prio]--;
  }
  if (now > start)
    *waited_ns += now - start;
  if (err) {
    /* A lower class that gave up may be what a higher one waits for. */
    pthread_cond_broadcast (&t->cond);
    errno = err;
    return -1;
  }
  t->in_flight++;
  return 0;
}

void
throttle_done (struct throttle *t, uint64_t sent_ns, bool throttled)
{
  uint64_t now = now_monotonic_ns ();

  throttle_state_result (t->s, sent_ns, now, throttled);
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&t->lock);
  if (t->in_flight > 0)
    t->in_flight--;
  if (atomic_load (&t->s->rate) == 0 && !throttled) {
    t->window.size = t->window.max;
    t->window.acked = 0;
  }
  else
    throttle_window_result (&t->window, sent_ns, now, throttled);
  pthread_cond_broadcast (&t->cond);
}

uint64_t
throttle_rate (struct throttle *t)
{
  return atomic_load (&t->s->rate);
}
