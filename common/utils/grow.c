/* accel: arrays that grow as items are appended (see grow.h).
 *
 * Doubling keeps appends amortised O(1); the size is checked for
 * overflow, since lengths may come from untrusted input (a manifest).
 */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "report.h"

int
grow_array (void *items, size_t *alloc, size_t n, size_t size, size_t first)
{
  void *p;
  size_t want;

  if (n < *alloc)
    return 0;
  want = *alloc ? *alloc * 2 : first;
  if (want <= n || want > SIZE_MAX / size) {
    errno = ENOMEM;
    report_error ("grow array: %zu items of %zu bytes: %m", n + 1, size);
    return -1;
  }
  memcpy (&p, items, sizeof p);
  p = realloc (p, want * size);
  if (p == NULL) {
    report_error ("grow array: %zu items of %zu bytes: %m", want, size);
    return -1;
  }
  memcpy (items, &p, sizeof p);
  *alloc = want;
  return 0;
}
