/* accel-inspect --file PATH: where one file's bytes are in the image.
 *
 * Prints the file's size and mode, its extents (runs of the file at
 * runs of the image, from the manifest's file map) and the chunks that
 * hold them with how many of each chunk's bytes are the file's: what a
 * reader of that file makes the plugin fetch, and so what to prefetch or
 * warm for it.  Chunk i covers image bytes i * chunk_size up to the next
 * chunk; an extent can span several chunks and a chunk can hold pieces
 * of several extents, so the image ranges are sorted, merged and then
 * walked once.
 */

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "inspect.h"
#include "manifest.h"
#include "report.h"

/* Called once per chunk that holds bytes of the file, in chunk order. */
typedef void (*chunk_fn) (void *opaque, uint64_t idx, uint64_t bytes);

/* What print_chunk needs. */
struct chunk_printer {
  struct manifest *m;
  bool json;
  uint64_t n; /* chunks printed so far */
};

/* qsort order for merge_ranges. */
static int
compare_image_offset (const void *a, const void *b)
{
  const struct manifest_extent *x = a, *y = b;

  if (x->image_offset < y->image_offset)
    return -1;
  return x->image_offset > y->image_offset;
}

/* Sort the image ranges of e and merge those that overlap or touch, in
 * place; only image_offset and length are meaningful afterwards.  The
 * new count is returned.  NB: the reader forbids extents that overlap
 * in the file, not ones that overlap in the image; merging keeps a hostile manifest
 * (a million extents on the same bytes) from making the walk below
 * longer than the image, and means that a chunk's count is of its own
 * bytes, each counted once.
 */
static size_t
merge_ranges (struct manifest_extent *e, size_t n)
{
  size_t i, out = 0;

  qsort (e, n, sizeof *e, compare_image_offset);
  for (i = 0; i < n; i++) {
    struct manifest_extent *last = out > 0 ? &e[out - 1] : NULL;
    uint64_t end = e[i].image_offset + e[i].length;

    if (last && e[i].image_offset <= last->image_offset + last->length) {
      if (end > last->image_offset + last->length)
        last->length = end - last->image_offset;
    }
    else
      e[out++] = e[i];
  }
  return out;
}

/* Call fn for every chunk that the ranges (sorted, disjoint) touch,
 * with the number of its bytes they cover.  NB: the manifest reader has
 * checked that every extent lies inside the image.
 */
static void
walk_chunks (const struct manifest_extent *e, size_t n, uint32_t chunk_size,
             chunk_fn fn, void *opaque)
{
  uint64_t cur = UINT64_MAX, bytes = 0;
  size_t i;

  for (i = 0; i < n; i++) {
    uint64_t off = e[i].image_offset, end = off + e[i].length;

    while (off < end) {
      uint64_t idx = off / chunk_size;
      uint64_t chunk_end = (idx + 1) * chunk_size;
      uint64_t len = (end < chunk_end ? end : chunk_end) - off;

      if (idx != cur) {
        if (cur != UINT64_MAX)
          fn (opaque, cur, bytes);
        cur = idx;
        bytes = 0;
      }
      bytes += len;
      off += len;
    }
  }
  if (cur != UINT64_MAX)
    fn (opaque, cur, bytes);
}

/* The first walk: how many chunks, for the header. */
static void
count_chunk (void *opaque, uint64_t idx, uint64_t bytes)
{
  uint64_t *count = opaque;

  (void) idx;
  (void) bytes;
  (*count)++;
}

/* The second walk: one line (or JSON element) per chunk. */
static void
print_chunk (void *opaque, uint64_t idx, uint64_t bytes)
{
  struct chunk_printer *p = opaque;
  bool zero = manifest_chunk_is_zero (p->m, idx);

  if (p->json)
    printf ("%s\n    { \"index\": %" PRIu64 ", \"bytes\": %" PRIu64
            ", \"zero\": %s }",
            p->n ? "," : "", idx, bytes, zero ? "true" : "false");
  else
    printf ("  %10" PRIu64 "  %12" PRIu64 "%s\n", idx, bytes,
            zero ? "  (zero)" : "");
  p->n++;
}

/* The extents, in file order as the manifest has them. */
static void
print_extents (const struct manifest_extent *e, size_t n, bool json)
{
  size_t i;

  for (i = 0; i < n; i++) {
    if (json)
      printf ("%s\n    { \"file_offset\": %" PRIu64
              ", \"image_offset\": %" PRIu64 ", \"length\": %" PRIu64 " }",
              i ? "," : "", e[i].file_offset, e[i].image_offset, e[i].length);
    else
      printf ("  %12" PRIu64 "  %12" PRIu64 "  %12" PRIu64 "\n",
              e[i].file_offset, e[i].image_offset, e[i].length);
  }
}

/* Look the file up, then print the header, extents and chunks. */
int
file_print (struct manifest *m, const char *name, const char *path, bool json)
{
  CLEANUP_FREE char *abs = NULL;
  CLEANUP_FREE struct manifest_extent *extents = NULL;
  CLEANUP_FREE struct manifest_extent *sorted = NULL;
  struct chunk_printer p = { .m = m, .json = json };
  struct manifest_file f;
  uint32_t chunk_size = manifest_chunk_size (m);
  uint64_t mapped = 0, nr_chunks = 0;
  size_t n = 0, nr_ranges = 0, i;
  char mode[16], h1[32], h2[32];
  int r;

  /* Paths in the map are absolute; let the user leave out the '/'. */
  if (path[0] != '/') {
    if (asprintf (&abs, "/%s", path) == -1) {
      abs = NULL;
      report_error ("%s: malloc: %m", path);
      return -1;
    }
    path = abs;
  }
  r = manifest_file_extents (m, path, &f, &extents, &n);
  if (r == -1)
    return -1;
  if (r == 1) {
    report_error ("%s: %s: no such file in the image's file map", name, path);
    return -1;
  }

  for (i = 0; i < n; i++)
    mapped += extents[i].length;
  if (n > 0) {
    sorted = malloc (n * sizeof *sorted);
    if (sorted == NULL) {
      report_error ("%s: malloc: %m", path);
      return -1;
    }
    memcpy (sorted, extents, n * sizeof *sorted);
    nr_ranges = merge_ranges (sorted, n);
  }
  walk_chunks (sorted, nr_ranges, chunk_size, count_chunk, &nr_chunks);
  format_mode (f.mode, mode, sizeof mode);

  if (json) {
    printf ("{\n  \"manifest\": ");
    format_json_string (stdout, name);
    printf (",\n  \"chunk_size\": %" PRIu32 ",\n  \"path\": ", chunk_size);
    format_json_string (stdout, path);
    printf (",\n  \"size\": %" PRIu64 ",\n"
            "  \"mode\": %" PRIu32 ",\n"
            "  \"mode_string\": \"%s\",\n"
            "  \"mapped_bytes\": %" PRIu64 ",\n"
            "  \"nr_chunks\": %" PRIu64 ",\n"
            "  \"extents\": [",
            f.size, f.mode, mode, mapped, nr_chunks);
    print_extents (extents, n, true);
    printf ("%s],\n  \"chunks\": [", n ? "\n  " : "");
    walk_chunks (sorted, nr_ranges, chunk_size, print_chunk, &p);
    printf ("%s]\n}\n", p.n ? "\n  " : "");
    return 0;
  }

  printf ("file:          ");
  format_text_string (stdout, path);
  printf ("\n"
          "size:          %" PRIu64 " bytes (%s)\n"
          "mode:          %s (%06" PRIo32 ")\n"
          "mapped:        %" PRIu64 " bytes in %zu extent%s\n",
          f.size, format_size (f.size, h1, sizeof h1), mode, f.mode, mapped, n,
          n == 1 ? "" : "s");
  if (mapped < f.size)
    printf ("unmapped:      %" PRIu64 " bytes (holes, or data not stored "
            "byte for byte)\n",
            f.size - mapped);
  printf ("chunk size:    %" PRIu32 " bytes (%s)\n"
          "chunks:        %" PRIu64 "\n",
          chunk_size, format_size (chunk_size, h2, sizeof h2), nr_chunks);
  if (n == 0)
    return 0;
  printf ("\n  %12s  %12s  %12s\n", "file offset", "image offset", "length");
  print_extents (extents, n, false);
  printf ("\n  %10s  %12s\n", "chunk", "file bytes");
  walk_chunks (sorted, nr_ranges, chunk_size, print_chunk, &p);
  return 0;
}
