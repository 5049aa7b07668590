/* accel: scoped cleanup helpers.
 *
 * Like nbdkit's common/utils/cleanup.h: a variable declared with one of
 * these attributes is released when it goes out of scope, so early
 * returns on error paths cannot leak.
 */

#ifndef ACCEL_CLEANUP_H
#define ACCEL_CLEANUP_H

#include <pthread.h>
#include <stdlib.h>

/* free(*ptr) at scope exit. */
static inline void
cleanup_free (void *ptr)
{
  free (*(void **) ptr);
}
#define CLEANUP_FREE __attribute__ ((cleanup (cleanup_free)))

/* Unlock a mutex at scope exit: ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock). */
static inline void
cleanup_mutex_unlock (pthread_mutex_t **ptr)
{
  pthread_mutex_unlock (*ptr);
}
#define ACCEL_UNIQUE_NAME2(a, b) a##b
#define ACCEL_UNIQUE_NAME1(a, b) ACCEL_UNIQUE_NAME2 (a, b)
#define ACQUIRE_LOCK_FOR_CURRENT_SCOPE(mutex)                                  \
  pthread_mutex_t *ACCEL_UNIQUE_NAME1 (_lock, __LINE__)                        \
      __attribute__ ((cleanup (cleanup_mutex_unlock))) = (mutex);              \
  pthread_mutex_lock (ACCEL_UNIQUE_NAME1 (_lock, __LINE__))

#endif /* ACCEL_CLEANUP_H */
