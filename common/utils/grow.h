/* accel: arrays that grow as items are appended (lists whose length is
 * known only at the end: manifest diffs, file lists).
 */

#ifndef ACCEL_GROW_H
#define ACCEL_GROW_H

#include <stddef.h>

/* Make room for item n of the array *items (void **: the address of the
 * caller's pointer) of *alloc items of size bytes each: if n == *alloc,
 * double it (to first items the first time).  0, or -1 (error
 * reported; the array is left as it was).
 */
extern int
grow_array (void *items, size_t *alloc, size_t n, size_t size, size_t first);

#endif /* ACCEL_GROW_H */
