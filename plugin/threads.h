/* accel plugin: starting and joining a group of worker threads. */

#ifndef ACCEL_THREADS_H
#define ACCEL_THREADS_H

#include <pthread.h>

/* Start threads running fn until *nr reaches want (t has room for
 * want).  On failure it says so and returns -1; the threads already
 * started are counted in *nr, for threads_join.
 */
extern int threads_start (pthread_t *t, unsigned *nr, unsigned want,
                          void *(*fn) (void *) );

/* Join the *nr threads in t (the caller has told them to stop) and set
 * *nr to 0.
 */
extern void threads_join (pthread_t *t, unsigned *nr);

#endif /* ACCEL_THREADS_H */
