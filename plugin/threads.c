/* accel plugin: starting and joining a group of worker threads.
 *
 * The background flusher and prefetch workers (background.c) and the
 * readahead workers (readahead.c) start and stop the same way.
 */

#include <errno.h>
#include <pthread.h>

#include "report.h"
#include "threads.h"

int
threads_start (pthread_t *t, unsigned *nr, unsigned want, void *(*fn) (void *) )
{
  int err;

  while (*nr < want) {
    err = pthread_create (&t[*nr], NULL, fn, NULL);
    if (err) {
      errno = err;
      report_error ("pthread_create: %m");
      return -1;
    }
    (*nr)++;
  }
  return 0;
}

void
threads_join (pthread_t *t, unsigned *nr)
{
  unsigned i;

  for (i = 0; i < *nr; i++)
    pthread_join (t[i], NULL);
  *nr = 0;
}
