/* accel: unit test of plugin/prefetch.c's pacing (prefetch_pacer_reserve)
 * and failure count (prefetch_tally_result).
 *
 * prefetch-rate= caps prefetch's bandwidth with a virtual clock: each
 * batch reserves count / rate seconds after the end of the last
 * reservation, or from now if that is past, so an idle period earns no
 * credit for a burst.  The cases drive the clock with made-up times and
 * check the exact waits.  A failed batch pauses the workers for 2 s,
 * and 5 failures in a row stop the prefetch; a success starts the count
 * again.  Output: a line per failed check and a final
 * "plugin-prefetch: N checks, N failed".
 */

#include <stdio.h>
#include <stdlib.h>

#include "prefetch.h"

#include "test.h"

#define MiB (UINT64_C (1024) * 1024)
#define MS (UINT64_C (1000000))
#define SEC (UINT64_C (1000000000))

static void
test_no_cap (void)
{
  struct prefetch_pacer p = { .rate = 0, .next_slot_ns = 5 * SEC };

  CHECK (prefetch_pacer_reserve (&p, 4 * MiB, 1 * SEC) == 0);
  CHECK (prefetch_pacer_reserve (&p, 4 * MiB, 1 * SEC) == 0);
  CHECK (p.next_slot_ns == 5 * SEC);
}

static void
test_pace (void)
{
  /* 100 MB/s: a 1 MB batch takes 10 ms of the cap. */
  struct prefetch_pacer p = { .rate = 100000000, .next_slot_ns = 1 * SEC };

  CHECK (prefetch_pacer_reserve (&p, 1000000, 1 * SEC) == 0);
  CHECK (p.next_slot_ns == 1 * SEC + 10 * MS);
  /* Two workers at once: the second waits for the first's slot. */
  CHECK (prefetch_pacer_reserve (&p, 1000000, 1 * SEC) == 10 * MS);
  CHECK (p.next_slot_ns == 1 * SEC + 20 * MS);
  /* Later, but before the slot: the rest of the wait. */
  CHECK (prefetch_pacer_reserve (&p, 1000000, 1 * SEC + 5 * MS) == 15 * MS);
  CHECK (p.next_slot_ns == 1 * SEC + 30 * MS);
  /* Exactly at the slot: no wait. */
  CHECK (prefetch_pacer_reserve (&p, 500000, 1 * SEC + 30 * MS) == 0);
  CHECK (p.next_slot_ns == 1 * SEC + 35 * MS);

  /* Idle for 10 s earns no credit: the next batch goes at once, the
   * one after it still waits its 10 ms.
   */
  CHECK (prefetch_pacer_reserve (&p, 1000000, 11 * SEC) == 0);
  CHECK (prefetch_pacer_reserve (&p, 1000000, 11 * SEC) == 10 * MS);
  CHECK (p.next_slot_ns == 11 * SEC + 20 * MS);

  /* Over a second: 100 batches of 1 MB at 100 MB/s take 1 s. */
  {
    struct prefetch_pacer q = { .rate = 100000000, .next_slot_ns = 0 };
    uint64_t wait = 0;
    unsigned i;

    for (i = 0; i < 100; i++)
      wait = prefetch_pacer_reserve (&q, 1000000, 3 * SEC);
    CHECK (wait == 990 * MS);
    CHECK (q.next_slot_ns == 4 * SEC);
  }
}

static void
test_rates (void)
{
  /* The default cap, 200 MiB/s, and prefetch's 4 MiB batches: 20 ms. */
  struct prefetch_pacer p = { .rate = 200 * MiB, .next_slot_ns = 0 };

  CHECK (prefetch_pacer_reserve (&p, 4 * MiB, 7 * SEC) == 0);
  CHECK (p.next_slot_ns == 7 * SEC + 20 * MS);

  /* A rate that does not divide: the slot is rounded down. */
  p = (struct prefetch_pacer){ .rate = 3, .next_slot_ns = 0 };
  CHECK (prefetch_pacer_reserve (&p, 1, 0) == 0);
  CHECK (p.next_slot_ns == 333333333);
  CHECK (prefetch_pacer_reserve (&p, 1, 0) == 333333333);
  CHECK (p.next_slot_ns == 666666666);

  /* A slow cap: 1 MiB/s, a 4 MiB batch, 4 s. */
  p = (struct prefetch_pacer){ .rate = MiB, .next_slot_ns = 0 };
  CHECK (prefetch_pacer_reserve (&p, 4 * MiB, SEC) == 0);
  CHECK (prefetch_pacer_reserve (&p, 4 * MiB, SEC) == 4 * SEC);
}

static void
test_failures (void)
{
  struct prefetch_tally t = { 0 };
  struct prefetch_batch b = { .offset = 0, .count = 3 * MiB, .nr_chunks = 3 };
  bool give_up = true;
  unsigned i;

  CHECK (prefetch_tally_result (&t, &b, 0, &give_up) == 0);
  CHECK (!give_up);
  CHECK (t.chunks == 3 && t.bytes == 3 * MiB && t.failed == 0);

  /* Four failures pause; the fifth in a row gives up. */
  for (i = 1; i < PREFETCH_MAX_FAILURES; i++) {
    CHECK (prefetch_tally_result (&t, &b, -1, &give_up) == 2 * SEC);
    CHECK (!give_up);
  }
  CHECK (t.failures_in_a_row == 4 && t.failed == 12);
  CHECK (prefetch_tally_result (&t, &b, -1, &give_up) == 2 * SEC);
  CHECK (give_up);
  CHECK (prefetch_tally_result (&t, &b, -1, &give_up) == 2 * SEC);
  CHECK (give_up);
  CHECK (t.failed == 18 && t.chunks == 3);

  /* A success in between starts the count again. */
  t = (struct prefetch_tally){ 0 };
  for (i = 0; i < 4; i++)
    prefetch_tally_result (&t, &b, -1, &give_up);
  CHECK (prefetch_tally_result (&t, &b, 0, &give_up) == 0);
  CHECK (!give_up && t.failures_in_a_row == 0);
  for (i = 0; i < 4; i++) {
    prefetch_tally_result (&t, &b, -1, &give_up);
    CHECK (!give_up);
  }
  CHECK (t.chunks == 3 && t.bytes == 3 * MiB && t.failed == 24);
}

int
main (void)
{
  test_capture_errors (true);
  test_no_cap ();
  test_pace ();
  test_rates ();
  test_failures ();
  EXPECT_ERRORS (0);
  return test_summary ("plugin-prefetch");
}
