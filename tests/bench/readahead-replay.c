/* readahead-replay: a workload's reads, as nbdkit's log filter traced
 * them, through the plugin's readahead detector (plugin/readahead.c),
 * to count what a cold run would wait on.
 *
 *   readahead-replay MANIFEST TRACE [WINDOW]
 *
 * Each read of TRACE (the "Read ... offset=0x... count=0x..." lines of
 * --filter=log) is noted as the plugin notes it (readahead_detect_read,
 * along MANIFEST's file map if it has one), with a window of
 * WINDOW bytes (default 32 MiB, the plugin's readahead=).  A read
 * "waits" if one of its chunks was neither asked for by an earlier
 * read's readahead nor read before: on a cold cache that read waits
 * for a GET of its own.  No timing is modelled (a chunk asked is taken
 * as there by the next read), so this is the detector's part of a cold
 * run, not the origin's.  Prints one line:
 *   ra_reads=N ra_waits=N ra_meta_waits=N ra_unread_chunks=N
 * reads, reads that wait, those of them outside every file, and chunks
 * asked for that no read touched (bytes fetched for nothing).
 * For make bench (tests/bench/lib.sh's trace_pass) and for tuning the
 * detector on a recorded workload.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "manifest.h"
#include "parse.h"
#include "readahead-map.h"
#include "readahead.h"

/* What became of each chunk so far. */
enum chunk_state { UNTOUCHED, ASKED, READ };

/* The detector's room per read: the plugin's queue length. */
#define ROOM 64

/* Offset and count of a traced read, or false for any other line. */
static bool
parse_read (const char *line, uint64_t *offset, uint64_t *count)
{
  const char *o, *c;

  if (strstr (line, " Read id=") == NULL)
    return false;
  o = strstr (line, " offset=");
  c = strstr (line, " count=");
  if (o == NULL || c == NULL)
    return false;
  *offset = strtoull (o + 8, NULL, 0);
  *count = strtoull (c + 7, NULL, 0);
  return *count > 0;
}

int
main (int argc, char *argv[])
{
  static struct readahead_state ra;
  struct readahead_request out[ROOM];
  struct readahead_geometry g;
  struct readahead_map *map = NULL;
  struct manifest *m;
  CLEANUP_FREE char *line = NULL;
  CLEANUP_FREE unsigned char *state = NULL;
  size_t line_len = 0;
  uint64_t nr_chunks, c, reads = 0, waits = 0, meta_waits = 0, unread = 0;
  uint64_t window = UINT64_C (32) << 20;
  FILE *fp;

  if (argc == 2 && strcmp (argv[1], "--help") == 0) {
    printf ("usage: readahead-replay MANIFEST TRACE [WINDOW]\n");
    return EXIT_SUCCESS;
  }
  if (argc < 3 || argc > 4) {
    fprintf (stderr, "usage: readahead-replay MANIFEST TRACE [WINDOW]\n");
    return 2;
  }
  if (argc == 4 && (parse_size (argv[3], &window) == -1 || window == 0)) {
    fprintf (stderr, "readahead-replay: bad window: %s\n", argv[3]);
    return 2;
  }
  m = manifest_open (argv[1]);
  if (m == NULL)
    return EXIT_FAILURE; /* (reported) */
  if (readahead_map_load (m, &map) == -1)
    return EXIT_FAILURE;
  g = (struct readahead_geometry){ .window = window,
                                   .chunk_size = manifest_chunk_size (m),
                                   .image_size = manifest_image_size (m) };
  nr_chunks = (g.image_size + g.chunk_size - 1) / g.chunk_size;
  state = calloc (nr_chunks ? nr_chunks : 1, 1);
  fp = fopen (argv[2], "r");
  if (state == NULL || fp == NULL) {
    fprintf (stderr, "readahead-replay: %s: %m\n", argv[2]);
    return EXIT_FAILURE;
  }

  while (getline (&line, &line_len, fp) != -1) {
    uint64_t offset, count, last;
    bool in_file, waited = false;
    size_t n, i;

    if (!parse_read (line, &offset, &count) || offset >= g.image_size)
      continue;
    if (count > g.image_size - offset)
      count = g.image_size - offset;
    reads++;
    /* Noted before it is served, as accel_pread does. */
    n = readahead_detect_read (&ra, &g, map, offset, count, out, ROOM,
                               &in_file);
    last = (offset + count - 1) / g.chunk_size;
    for (c = offset / g.chunk_size; c <= last; c++) {
      waited |= state[c] == UNTOUCHED && !manifest_chunk_is_zero (m, c);
      state[c] = READ;
    }
    if (waited) {
      waits++;
      meta_waits += !in_file;
    }
    for (i = 0; i < n; i++) {
      last = (out[i].offset + out[i].count - 1) / g.chunk_size;
      for (c = out[i].offset / g.chunk_size; c <= last && c < nr_chunks; c++)
        if (state[c] == UNTOUCHED && !manifest_chunk_is_zero (m, c))
          state[c] = ASKED;
    }
  }
  fclose (fp);
  for (c = 0; c < nr_chunks; c++)
    unread += state[c] == ASKED;
  printf ("ra_reads=%" PRIu64 " ra_waits=%" PRIu64 " ra_meta_waits=%" PRIu64
          " ra_unread_chunks=%" PRIu64 "\n",
          reads, waits, meta_waits, unread);
  readahead_map_free (map);
  manifest_close (m);
  return EXIT_SUCCESS;
}
