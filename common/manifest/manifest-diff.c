/* accel: what a new version of an image costs a node that holds the old
 * one, from the two manifests alone (accel-inspect --diff, the version
 * tests).
 *
 * The rule is the cache's (common/cache/cache-dedup.c): a missing chunk
 * is copied from any cached chunk with the same SHA-256, and fetched
 * otherwise.  So for a node whose cache holds every chunk of OLD:
 *
 *  - an all-zero chunk of NEW costs nothing: the plugin never fetches
 *    or stores one;
 *  - any other chunk of NEW costs nothing if its SHA-256 is that of a
 *    chunk of OLD, at any index;
 *  - every other chunk is fetched, and costs its real length: the last
 *    chunk of an image is usually short, and the plugin's GET for it
 *    asks only for the bytes up to the end of the image.  The manifest's
 *    own download is not counted (it is not a chunk).
 *
 * NB: dedup only looks at images cached with the same chunk size (the
 * cache's index skips the others), so if the two chunk sizes differ
 * nothing matches and every non-zero chunk of NEW is fetched.
 *
 * A hash that NEW needs at several indexes is counted at each: the
 * plugin finds a chunk it stored itself only once its dedup index has
 * been rebuilt (at most once a second), and a GET of adjacent chunks
 * fetches them all.  The count with each such hash once (the "distinct"
 * figures) is the least a slow reader may fetch.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "manifest.h"
#include "report.h"

#define HASH_LEN 32

/* A chunk of NEW that OLD lacks, for the distinct figures: the first 8
 * bytes of its hash (the key the cache's dedup index uses too) and its
 * length.
 */
struct needed_chunk {
  uint64_t key;
  uint32_t len;
};

/* The needed chunks, growing as they are found. */
struct needed_list {
  struct needed_chunk *c;
  size_t n, alloc;
};

/* qsort order of needed chunks: by key. */
static int
compare_key (const void *a, const void *b)
{
  const struct needed_chunk *x = a, *y = b;

  return x->key < y->key ? -1 : x->key > y->key;
}

/* Append one; 0, or -1 (error reported). */
static int
needed_add (struct needed_list *l, const unsigned char sha256[HASH_LEN],
            uint32_t len)
{
  if (grow_array (&l->c, &l->alloc, l->n, sizeof *l->c, 1024) == -1)
    return -1;
  memcpy (&l->c[l->n].key, sha256, sizeof l->c[l->n].key);
  l->c[l->n].len = len;
  l->n++;
  return 0;
}

/* Whether OLD has a chunk with this hash.  The caller's chunk is not
 * all zeros, so the match cannot be one of OLD's zero chunks (which the
 * cache never holds).  1 yes, 0 no, -1 error (reported).
 */
static int
old_has (struct manifest *old, const unsigned char sha256[HASH_LEN])
{
  uint64_t idx;

  switch (manifest_find_chunk (old, sha256, &idx)) {
  case 0:
    return 1;
  case 1:
    return 0;
  default:
    return -1;
  }
}

/* The distinct figures: sort the needed chunks, count each key once. */
static void
count_distinct (struct needed_list *l, struct manifest_diff *out)
{
  size_t i;

  if (l->n > 0)
    qsort (l->c, l->n, sizeof *l->c, compare_key);
  for (i = 0; i < l->n; i++) {
    if (i > 0 && l->c[i].key == l->c[i - 1].key)
      continue;
    out->distinct_chunks++;
    out->distinct_bytes += l->c[i].len;
  }
}

/* One pass over NEW's chunks, one indexed lookup in OLD for each. */
int
manifest_diff (struct manifest *old, struct manifest *new,
               struct manifest_diff *out)
{
  uint64_t nr = manifest_nr_chunks (new), idx;
  struct needed_list need = { 0 };
  unsigned char sha256[HASH_LEN];
  uint32_t len;
  int has;

  memset (out, 0, sizeof *out);
  out->nr_chunks = nr;
  out->chunk_size_mismatch =
      manifest_chunk_size (old) != manifest_chunk_size (new);
  out->needed = calloc (nr / 8 + 1, 1); /* nr <= 2^24: at most 2 MiB */
  if (out->needed == NULL) {
    report_error ("manifest diff: calloc: %m");
    return -1;
  }

  for (idx = 0; idx < nr; idx++) {
    if (manifest_chunk_is_zero (new, idx)) {
      out->nr_zero_chunks++;
      continue;
    }
    len = manifest_chunk_len (new, idx);
    out->data_bytes += len;
    if (manifest_chunk_sha256 (new, idx, sha256) == -1)
      goto err;
    has = out->chunk_size_mismatch ? 0 : old_has (old, sha256);
    if (has == -1)
      goto err;
    if (has)
      continue;
    if (needed_add (&need, sha256, len) == -1)
      goto err;
    out->needed[idx / 8] |= 1 << (idx % 8);
    out->fetch_chunks++;
    out->fetch_bytes += len;
  }
  count_distinct (&need, out);
  free (need.c);
  return 0;

err:
  free (need.c);
  manifest_diff_free (out);
  return -1;
}

/* Only the bitmap is allocated. */
void
manifest_diff_free (struct manifest_diff *d)
{
  free (d->needed);
  d->needed = NULL;
}

/* Out of range is "no", like manifest_chunk_is_zero. */
bool
manifest_diff_needed (const struct manifest_diff *d, uint64_t idx)
{
  return idx < d->nr_chunks && (d->needed[idx / 8] >> (idx % 8)) & 1;
}
