/* accel: running an upload's part jobs (hashing, sending) on parallel
 * threads, and counting its progress.  The bottom of the upload files:
 * s3-upload-multipart.c and s3-upload.c use it.
 */

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "report.h"
#include "s3-upload-internal.h"

/* Remember the first failure of a parallel run; later ones (often the
 * same problem seen by another thread) are only debug messages.
 */
static void
record_failure (struct upload *up, int err, const char *msg)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&up->lock);
  if (up->err == 0) {
    up->err = err ? err : EIO;
    snprintf (up->msg, sizeof up->msg, "%s", msg);
  }
  else if (msg[0])
    report_debug ("s3: also: %s", msg);
  atomic_store (&up->stop, true);
}

/* One worker: claim parts until none is left or something failed. */
static void *
worker (void *arg)
{
  struct upload *up = arg;
  char msg[sizeof up->msg];
  size_t i;

  while (!atomic_load (&up->stop) &&
         (i = atomic_fetch_add (&up->next, 1)) < up->nparts) {
    msg[0] = '\0';
    if (up->job (up, i, msg, sizeof msg) == -1)
      record_failure (up, errno, msg);
  }
  return NULL;
}

/* Threads are made per run: a run is minutes of I/O, a thread costs
 * microseconds.
 */
int
upload_run_parallel (struct upload *up, part_job job)
{
  pthread_t tids[S3_MAX_PARALLEL];
  size_t want = up->parallel < up->nparts ? up->parallel : up->nparts;
  size_t started = 0, i;
  int r;

  up->job = job;
  up->err = 0;
  up->msg[0] = '\0';
  atomic_store (&up->next, 0);
  atomic_store (&up->stop, false);
  for (; started + 1 < want; started++) {
    r = pthread_create (&tids[started], NULL, worker, up);
    if (r != 0) {
      errno = r;
      report_debug ("s3: pthread_create: %m: going on with %zu threads",
                    started + 1);
      break;
    }
  }
  worker (up);
  for (i = 0; i < started; i++)
    pthread_join (tids[i], NULL);
  if (up->err) {
    errno = up->err;
    return -1;
  }
  return 0;
}

/* The lock makes the progress calls one at a time. */
void
upload_progress_add (struct upload *up, uint64_t bytes)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&up->lock);
  up->done += bytes;
  if (up->opts.progress)
    up->opts.progress (up->opts.opaque, up->done, up->size);
}
