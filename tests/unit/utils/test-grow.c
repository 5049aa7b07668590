/* accel: unit test of common/utils/grow.c: appending to an array that
 * doubles, and refusing a size that would overflow.
 */

#include <stdint.h>
#include <stdlib.h>

#include "grow.h"

#include "test.h"

int
main (void)
{
  uint64_t *a = NULL;
  size_t alloc = 0, n;
  bool ok = true;

  test_capture_errors (false);

  /* 1000 appends: the first allocation holds 16, then it doubles. */
  for (n = 0; n < 1000; n++) {
    if (grow_array (&a, &alloc, n, sizeof *a, 16) == -1) {
      ok = false;
      break;
    }
    a[n] = n * 3;
    if (n == 0 && alloc != 16)
      ok = false;
  }
  CHECK (ok);
  CHECK (alloc == 1024);
  for (n = 0; n < 1000; n++)
    ok = ok && a[n] == n * 3;
  CHECK (ok);
  /* Room left: nothing changes. */
  CHECK (grow_array (&a, &alloc, 1000, sizeof *a, 16) == 0 && alloc == 1024);
  EXPECT_ERRORS (0);

  /* A doubling that would overflow size_t is refused, the array kept. */
  alloc = SIZE_MAX / 8 / 2 + 1;
  CHECK (grow_array (&a, &alloc, alloc, 8, 16) == -1);
  CHECK (test_error_says ("grow array", "items of 8 bytes"));
  CHECK (alloc == SIZE_MAX / 8 / 2 + 1);
  free (a);

  return test_summary ("grow");
}
