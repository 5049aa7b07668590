/* accel: unit test of plugin/fetch.c's run coalescing (fetch_run_length).
 *
 * A read's missing chunks are fetched in runs, one ranged GET each: the
 * chunks this read owns (others' fetches are joined, not repeated),
 * adjacent in the image, up to request-size bytes.  Each case lists the
 * missing chunks and whether the read owns them, and checks the GETs the
 * read path would issue, as "first+count" runs, against the exact list
 * wanted: the cap, gaps, chunks owned by others, a short last chunk, a
 * request-size below the chunk size.  Output: a line per failed check
 * and a final "plugin-fetch: N checks, N failed".
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch.h"

#include "test.h"

#define MiB (UINT64_C (1024) * 1024)

/* An image of size bytes in chunks of chunk bytes, no manifest: all
 * fetch_run_length asks of it is image_chunk_len.
 */
static struct image
image_of (uint64_t size, uint32_t chunk)
{
  return (struct image){ .size = size,
                         .chunk_size = chunk,
                         .nr_chunks = (size + chunk - 1) / chunk };
}

/* The GETs for misses, as the read path groups them (fetch_owned):
 * "first+count" for each run, space-separated, in order.
 */
static void
runs_of (const struct image *img, const struct fetch_miss *miss, size_t nr,
         uint32_t max_bytes, char *out, size_t out_size)
{
  size_t i, n, len = 0;

  out[0] = '\0';
  for (i = 0; i < nr; i += n) {
    n = fetch_run_length (img, &miss[i], nr - i, max_bytes);
    if (n == 0) {
      n = 1;
      continue;
    }
    len += snprintf (out + len, out_size - len, "%s%llu+%zu", len ? " " : "",
                     (unsigned long long) miss[i].idx, n);
  }
}

/* misses: "idx" for a chunk this read owns, "idx*" for one another
 * thread is fetching, space-separated.
 */
static size_t
parse_misses (const char *spec, struct fetch_miss *miss)
{
  size_t nr = 0;
  char *end;

  while (*spec) {
    miss[nr] =
        (struct fetch_miss){ .idx = strtoull (spec, &end, 10), .owner = true };
    if (*end == '*') {
      miss[nr].owner = false;
      end++;
    }
    nr++;
    spec = end;
    while (*spec == ' ')
      spec++;
  }
  return nr;
}

/* Check the runs for the misses in spec against want. */
static void
check_runs (const char *file, int line, const struct image *img,
            uint32_t max_bytes, const char *spec, const char *want)
{
  struct fetch_miss miss[64];
  char got[1024];
  size_t nr = parse_misses (spec, miss);

  runs_of (img, miss, nr, max_bytes, got, sizeof got);
  test_check (strcmp (got, want) == 0, file, line,
              "misses \"%s\", request %u: runs \"%s\", wanted \"%s\"", spec,
              max_bytes, got, want);
}
#define RUNS(img, max, spec, want)                                             \
  check_runs (__FILE__, __LINE__, img, max, spec, want)

static void
test_runs (void)
{
  struct image img = image_of (64 * MiB, MiB);
  struct image tail = image_of (3 * MiB + 512 * 1024, MiB);

  /* Adjacent owned chunks: one GET, up to request-size. */
  RUNS (&img, 8 * MiB, "0 1 2 3", "0+4");
  RUNS (&img, 8 * MiB, "5", "5+1");
  RUNS (&img, 4 * MiB, "0 1 2 3 4 5 6 7 8 9", "0+4 4+4 8+2");
  /* Exactly request-size fits; a byte less does not. */
  RUNS (&img, 3 * MiB, "10 11 12", "10+3");
  RUNS (&img, 3 * MiB - 1, "10 11 12", "10+2 12+1");
  /* A gap in the image ends a run. */
  RUNS (&img, 8 * MiB, "0 1 3 4", "0+2 3+2");
  RUNS (&img, 8 * MiB, "2 4 6", "2+1 4+1 6+1");
  /* Chunks another thread fetches are joined, not fetched, and end a
   * run even when adjacent.
   */
  RUNS (&img, 8 * MiB, "0 1* 2", "0+1 2+1");
  RUNS (&img, 8 * MiB, "0* 1 2 3*", "1+2");
  RUNS (&img, 8 * MiB, "0* 1* 2*", "");
  /* Always at least one chunk, even above request-size. */
  RUNS (&img, MiB / 2, "0 1 2", "0+1 1+1 2+1");
  /* The short last chunk counts its own length. */
  RUNS (&tail, 3 * MiB + 512 * 1024, "0 1 2 3", "0+4");
  RUNS (&tail, 3 * MiB + 512 * 1024 - 1, "0 1 2 3", "0+3 3+1");
  RUNS (&tail, MiB + 512 * 1024, "2 3", "2+2");
}

/* fetch_run_length itself, at the edges the grouping loop never shows. */
static void
test_run_length (void)
{
  struct image img = image_of (64 * MiB, MiB);
  struct fetch_miss miss[3] = {
    { .idx = 7, .owner = true },
    { .idx = 8, .owner = true },
    { .idx = 9, .owner = false },
  };

  CHECK (fetch_run_length (&img, miss, 0, 8 * MiB) == 0);
  CHECK (fetch_run_length (&img, miss, 1, 8 * MiB) == 1);
  CHECK (fetch_run_length (&img, miss, 2, 8 * MiB) == 2);
  CHECK (fetch_run_length (&img, miss, 3, 8 * MiB) == 2);
  CHECK (fetch_run_length (&img, &miss[2], 1, 8 * MiB) == 0);
  CHECK (fetch_run_length (&img, miss, 3, 0) == 1);
}

int
main (void)
{
  test_capture_errors (true);
  test_runs ();
  test_run_length ();
  EXPECT_ERRORS (0);
  return test_summary ("plugin-fetch");
}
