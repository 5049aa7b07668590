/* accel-index: the manifest's hot list, from trace files (--hot).
 *
 * A trace records the chunks one run of a workload read first (the
 * plugin's trace=FILE).  Several runs can be merged; the merged order
 * is "first appearance": a chunk is ranked where it first appears in
 * the first trace that lists it, so the first trace given decides most
 * of the order and later ones only add what it missed.  That makes the
 * hot list, and so the manifest, depend only on the traces and their
 * order on the command line.
 *
 * A trace is only meaningful for the image it was recorded on: chunk 7
 * of another image is other bytes.  Each trace names its image by
 * SHA-256 and geometry, and both are checked against the image indexed
 * (or the manifest updated).
 */

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "hot.h"
#include "report.h"
#include "trace-file.h"

struct hot_trace {
  const char *path;
  struct trace_info info;
  uint64_t *chunks;
  size_t n;
};

struct hot_traces {
  struct hot_trace *traces;
  size_t n;
};

struct hot_traces *
hot_load (char *const *paths, size_t n)
{
  struct hot_traces *h;
  size_t i;

  h = calloc (1, sizeof *h);
  if (h == NULL ||
      (h->traces = calloc (n ? n : 1, sizeof *h->traces)) == NULL) {
    report_error ("calloc: %m");
    free (h);
    return NULL;
  }
  for (i = 0; i < n; i++) {
    struct hot_trace *t = &h->traces[i];

    t->path = paths[i];
    if (trace_read (t->path, &t->info, &t->chunks, &t->n) == -1) {
      hot_free (h);
      return NULL;
    }
    h->n++;
    report_debug ("%s: %zu chunks", t->path, t->n);
  }
  return h;
}

void
hot_free (struct hot_traces *h)
{
  size_t i;

  if (h == NULL)
    return;
  for (i = 0; i < h->n; i++)
    free (h->traces[i].chunks);
  free (h->traces);
  free (h);
}

int
hot_check (const struct hot_traces *h, const char *image, uint64_t image_size,
           uint32_t chunk_size, const unsigned char *image_sha256)
{
  size_t i;

  for (i = 0; i < h->n; i++) {
    const struct hot_trace *t = &h->traces[i];

    if (t->info.image_size != image_size || t->info.chunk_size != chunk_size) {
      report_error ("%s: recorded on an image of %" PRIu64 " bytes in chunks "
                    "of %" PRIu32 ", but %s has %" PRIu64 " bytes in chunks "
                    "of %" PRIu32 ": a trace belongs to the image it was "
                    "recorded on",
                    t->path, t->info.image_size, t->info.chunk_size, image,
                    image_size, chunk_size);
      return -1;
    }
    if (image_sha256 && memcmp (t->info.image_sha256, image_sha256, 32) != 0) {
      char want[13], got[13];

      /* The first 12 hex digits tell images apart in a message. */
      hex_encode (t->info.image_sha256, 6, got);
      hex_encode (image_sha256, 6, want);
      report_error ("%s: recorded on the image with SHA-256 %s..., but %s "
                    "has SHA-256 %s...: a trace belongs to the image it was "
                    "recorded on",
                    t->path, got, image, want);
      return -1;
    }
  }
  return 0;
}

int
hot_merge (const struct hot_traces *h,
           bool (*is_zero) (void *opaque, uint64_t idx), void *opaque,
           uint64_t **list, size_t *n)
{
  uint64_t nr_chunks, *out = NULL;
  uint8_t *seen = NULL;
  size_t len = 0, total = 0, i, j;

  *list = NULL;
  *n = 0;
  if (h->n == 0)
    return 0;
  /* hot_check made every trace's geometry the same. */
  nr_chunks = h->traces[0].info.nr_chunks;
  for (i = 0; i < h->n; i++)
    total += h->traces[i].n;
  if (total > nr_chunks)
    total = nr_chunks;
  seen = calloc (nr_chunks / 8 + 1, 1);
  out = malloc ((total ? total : 1) * sizeof *out);
  if (seen == NULL || out == NULL) {
    report_error ("malloc: %m");
    free (seen);
    free (out);
    return -1;
  }
  for (i = 0; i < h->n; i++) {
    for (j = 0; j < h->traces[i].n; j++) {
      uint64_t idx = h->traces[i].chunks[j];

      if (seen[idx / 8] & (1 << (idx % 8)))
        continue;
      seen[idx / 8] |= 1 << (idx % 8);
      if (!is_zero (opaque, idx))
        out[len++] = idx;
    }
  }
  free (seen);
  if (len == 0) {
    free (out);
    out = NULL;
  }
  *list = out;
  *n = len;
  return 0;
}
