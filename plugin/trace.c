/* accel plugin: trace=FILE (format: common/manifest/trace-file.h).
 *
 * The trace is a by-product of serving, so it must cost the read path
 * next to nothing: a read tests one bit per chunk (an atomic or, no
 * lock) and only the first read of a chunk takes a short lock to append
 * its index to an in-memory list.  The flusher thread writes the list
 * out every 100 ms (trace_flush), and cleanup writes the rest.
 *
 * Only demand reads are traced (accel_pread), not readahead, prefetch
 * or NBD_CMD_CACHE: the trace is what the workload needed.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "file-io.h"
#include "report.h"
#include "trace-file.h"
#include "trace.h"

/* Set by trace_open, read-only afterwards. */
static int fd = -1;
static const char *trace_path;
static uint32_t chunk_size;
static uint64_t image_size, nr_chunks;
static _Atomic uint8_t *seen; /* bit idx: chunk idx was noted */

/* lock protects the list of chunks noted but not written yet, and
 * failed.  write_lock makes writes to fd one at a time (the flusher
 * and cleanup); it is never taken by readers.
 */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t *list;
static size_t len, alloc;
static bool failed; /* an entry was lost: the trace is incomplete */
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;

int
trace_open (const char *path, struct image *img)
{
  char header[TRACE_MAX_HEADER];
  size_t n;

  if (img->manifest == NULL) {
    report_error ("trace=%s: needs the image's manifest (a trace names its "
                  "image by the SHA-256 the manifest records)",
                  path);
    return -1;
  }
  seen = calloc (img->nr_chunks / 8 + 1, 1);
  if (seen == NULL) {
    report_error ("calloc: %m");
    return -1;
  }
  /* One trace per run: an old trace at path is replaced. */
  fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd == -1) {
    report_error ("trace=%s: %m", path);
    return -1;
  }
  trace_path = path;
  chunk_size = img->chunk_size;
  image_size = img->size;
  nr_chunks = img->nr_chunks;
  n = trace_format_header (header, manifest_image_sha256 (img->manifest),
                           img->size, img->chunk_size);
  if (write_full (fd, header, n) == -1) {
    report_error ("trace=%s: write: %m", path);
    close (fd);
    fd = -1;
    return -1;
  }
  report_debug ("tracing first reads to %s", path);
  return 0;
}

/* First read of chunk idx: append it.  NB: the list only grows between
 * flushes (100 ms), so it stays small.
 */
static void
note_chunk (uint64_t idx)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
  if (len == alloc) {
    size_t new_alloc = alloc ? alloc * 2 : 1024;
    uint64_t *p = reallocarray (list, new_alloc, sizeof *list);

    if (p == NULL) {
      failed = true;
      return;
    }
    list = p;
    alloc = new_alloc;
  }
  list[len++] = idx;
}

void
trace_note (uint64_t offset, uint32_t count)
{
  uint64_t idx, last;

  if (fd == -1 || count == 0 || offset >= image_size)
    return;
  last = (offset + count - 1) / chunk_size;
  if (last >= nr_chunks)
    last = nr_chunks - 1;
  for (idx = offset / chunk_size; idx <= last; idx++) {
    uint8_t bit = 1 << (idx % 8);

    if (atomic_load_explicit (&seen[idx / 8], memory_order_relaxed) & bit)
      continue;
    /* Only the thread that sets the bit appends the chunk. */
    if (atomic_fetch_or (&seen[idx / 8], bit) & bit)
      continue;
    note_chunk (idx);
  }
}

void
trace_flush (void)
{
  CLEANUP_FREE uint64_t *batch = NULL;
  CLEANUP_FREE char *text = NULL;
  size_t n, i, pos = 0;
  bool lost;

  if (fd == -1)
    return;
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&write_lock);
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
    batch = list;
    n = len;
    lost = failed;
    list = NULL;
    len = alloc = 0;
    failed = false;
  }
  if (lost)
    report_warning ("trace=%s: out of memory: some first reads are "
                    "missing from the trace",
                    trace_path);
  if (n == 0)
    return;
  /* At most 20 digits and a newline per chunk, and the last NUL. */
  text = malloc (n * 21 + 1);
  if (text == NULL) {
    report_warning ("trace=%s: malloc: %m: %zu first reads are "
                    "missing from the trace",
                    trace_path, n);
    return;
  }
  for (i = 0; i < n; i++)
    pos += snprintf (text + pos, 22, "%" PRIu64 "\n", batch[i]);
  if (write_full (fd, text, pos) == -1)
    report_warning ("trace=%s: write: %m: the trace is incomplete", trace_path);
}

void
trace_close (void)
{
  if (fd == -1)
    return;
  trace_flush ();
  if (close (fd) == -1)
    report_warning ("trace=%s: close: %m", trace_path);
  fd = -1;
  free ((void *) seen);
  seen = NULL;
  free (list);
  list = NULL;
  len = alloc = 0;
}
