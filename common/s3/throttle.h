/* accel: back-pressure from the origin — S3's 503 SlowDown, a 503
 * without a body, 429 — turned into a lower request rate and
 * concurrency instead of errors.
 *
 * S3 serves one key prefix at about 5,500 GET/s and answers SlowDown
 * above that; a fleet of nodes starting one job reaches that at once.
 * A throttle answer is not a failure: the request waits for a slot
 * under a rate limit and is sent again, for as long as the client's
 * throttle budget (s3_config.throttle_timeout) allows, while real
 * errors keep their own count of retries.
 *
 * The limit is additive-increase / multiplicative-decrease, as TCP's
 * congestion window: unlimited until the first throttle answer, then a
 * rate (requests per second, kept as a GCRA "next free slot") that
 * halves on a throttle answer to a request sent after the last
 * decrease (so one burst of answers halves it once), and grows on each
 * success by max (1, rate/8)/rate, i.e. by max (1, rate/8) requests/s
 * each second, until THROTTLE_RECOVER_NS without a throttle answer
 * lift it.  The concurrency window of the process (requests in flight)
 * follows the same rules in whole requests.  Waits get jitter, so
 * that nodes do not move in step.
 *
 * The rate is a node's: the state is a small file, DIR/throttle in the
 * cache directory (docs/cache-format.md), mapped shared by every
 * process on the node and changed only with atomics, so several
 * plugins back off together.  Without it, the state is the process's.
 *
 * Priorities: a demand read never waits behind readahead or prefetch.
 * While the rate is limited, a request of a lower class that would
 * have to wait while one of a higher class waits (in this process, or
 * a demand read anywhere on the node in the last THROTTLE_DEMAND_NS)
 * gives up with EAGAIN instead: readahead is a hint, prefetch comes
 * back later.
 */

#ifndef ACCEL_THROTTLE_H
#define ACCEL_THROTTLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "s3.h"

#define THROTTLE_MAGIC "ACCELTHR"
#define THROTTLE_VERSION 1
#define THROTTLE_FILE_SIZE 128

/* Rates are in thousandths of a request per second. */
#define THROTTLE_MIN_RATE 500 /* 0.5 request/s */
#define THROTTLE_MAX_RATE (100000 * UINT64_C (1000))
/* A minute without a throttle answer: back to no limit. */
#define THROTTLE_RECOVER_NS (60 * UINT64_C (1000000000))
/* A demand read waited this recently on the node: lower classes yield. */
#define THROTTLE_DEMAND_NS (200 * UINT64_C (1000000))

/* The shared state: the layout of DIR/throttle (little-endian on the
 * machines we run on; it never leaves the node).  Times are
 * CLOCK_MONOTONIC nanoseconds, which every process of a boot shares.
 */
struct throttle_state {
  char magic[8]; /* THROTTLE_MAGIC */
  uint32_t version; /* THROTTLE_VERSION */
  uint32_t size; /* THROTTLE_FILE_SIZE */
  _Atomic uint64_t rate; /* 0: no limit */
  _Atomic uint64_t next_slot_ns; /* GCRA: the next request's slot */
  _Atomic uint64_t decrease_ns; /* the last multiplicative decrease */
  _Atomic uint64_t slowdown_ns; /* the last throttle answer */
  _Atomic uint64_t demand_ns; /* a demand request last waited */
  _Atomic uint64_t slowdowns; /* throttle answers, node total */
  _Atomic uint64_t sent_sec; /* second (monotonic) of sent_count */
  _Atomic uint64_t sent_count; /* requests sent in that second */
  _Atomic uint64_t sent_prev; /* ... and in the second before */
  uint8_t reserved[THROTTLE_FILE_SIZE - 88];
};

/* Make s a new state (no limit). */
extern void throttle_state_init (struct throttle_state *s);

/* Is s a state this version can use, at time now?  A state from an
 * earlier boot has times in the future.
 */
extern bool throttle_state_valid (const struct throttle_state *s, uint64_t now);

/* Take a slot for a request at time now.  Returns 0 if it may go now,
 * else how many nanoseconds until the next slot (nothing is taken).
 */
extern uint64_t throttle_state_admit (struct throttle_state *s, uint64_t now);

/* A request sent at sent_ns was answered at now with a throttle answer
 * (throttled) or a success.
 */
extern void throttle_state_result (struct throttle_state *s, uint64_t sent_ns,
                                   uint64_t now, bool throttled);

/* The concurrency window of one process (protected by struct
 * throttle's lock): requests in flight while limited.
 */
struct throttle_window {
  unsigned size; /* requests allowed in flight */
  unsigned acked; /* successes since size last grew */
  unsigned max; /* the pool's connections */
  uint64_t decrease_ns;
};

extern void throttle_window_result (struct throttle_window *w, uint64_t sent_ns,
                                    uint64_t now, bool throttled);

/* A process's throttle: the state (shared or its own) and its window. */
struct throttle;

/* A private throttle for a client of max_in_flight connections.
 * NULL after report_error.
 */
extern struct throttle *throttle_new (unsigned max_in_flight);
extern void throttle_free (struct throttle *t);

/* Use the node's state in the file path (created 0600 if missing, and
 * rebuilt if it is not a valid state).  Call before other threads use
 * t.  -1 (with a debug message): t keeps its own state.
 */
extern int throttle_share (struct throttle *t, const char *path);

/* Wait for a slot for a request of class prio: 0 (then call
 * throttle_done after the attempt), or -1 with errno EAGAIN (a lower
 * class yielding) or ETIMEDOUT (deadline_ns passed while waiting).
 * *waited_ns grows by the time spent waiting.
 */
extern int throttle_wait (struct throttle *t, enum s3_priority prio,
                          uint64_t deadline_ns, uint64_t *waited_ns);

/* The attempt that throttle_wait let go at sent_ns is over. */
extern void
throttle_done (struct throttle *t, uint64_t sent_ns, bool throttled);

/* The node's current rate (thousandths of a request/s, 0: no limit)
 * and throttle answers, for metrics.
 */
extern uint64_t throttle_rate (struct throttle *t);

#endif /* ACCEL_THROTTLE_H */
