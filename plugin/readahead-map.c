/* accel plugin: the file map as readahead follows it.
 *
 * The manifest maps each file to byte ranges of the image (extents).
 * Laid end to end, files in the order of their first byte in the image
 * and each file's extents in file order, they make the "walk": a
 * reader of one file, however fragmented, moves forward through the
 * walk, and so does a reader of file after file in that order.
 *
 * Why the order of the image: it is the order the image's builder
 * wrote the files in, and the one file walkers meet them in.
 * accel-mkimage's ext4 allocates inodes and blocks in its tree walk
 * (each directory's files sorted by name, then its subdirectories;
 * small files fill gaps before the free space), mksquashfs and
 * mkfs.erofs write data in their sorted directory order, which is also
 * the order readdir returns there, so `find`, `tar` and `cp -r` read
 * files in this order; in an ext4 directory large enough for a hash
 * index, readdir's order is the hash's, but those files still lie
 * together in the walk, close enough for a stream to hold them (see
 * readahead.c's "near").  Name order would follow `ls` instead, but
 * where it differs from the image's (small files placed in gaps), its
 * next file lies elsewhere and each piece of readahead would be a GET
 * of its own.
 *
 * Memory: 32 bytes an extent (plus 8 a file), loaded once at start;
 * maps above READAHEAD_MAP_MAX_EXTENTS are not loaded.  Hard links
 * (the same extents under two paths) appear once; where extents of
 * different files share image bytes (erofs deduplicated chunks), the
 * lookup by image offset sees only the first.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "grow.h"
#include "readahead-map.h"
#include "readahead.h"
#include "report.h"

/* One file while loading: its extents are ext[start .. start + n). */
struct load_file {
  uint64_t first; /* image offset of its first extent */
  uint64_t bytes; /* the sum of its extents' lengths */
  size_t start, n;
};

struct load {
  struct readahead_extent *ext; /* in path order, walk_offset unset */
  size_t nr_ext, alloc_ext;
  struct load_file *files;
  size_t nr_files, alloc_files;
  bool too_big;
};

/* manifest_file_extents_fn: note a file and copy its extents. */
static int
collect (void *opaque, const struct manifest_file *f,
         const struct manifest_extent *e, size_t n)
{
  struct load *l = opaque;
  struct load_file *lf;
  size_t i;

  (void) f;
  if (n == 0)
    return 0;
  if (l->nr_ext + n > READAHEAD_MAP_MAX_EXTENTS) {
    l->too_big = true;
    return -1;
  }
  if (grow_array (&l->files, &l->alloc_files, l->nr_files, sizeof *l->files,
                  1024) == -1)
    return -1;
  lf = &l->files[l->nr_files++];
  *lf = (struct load_file){ .first = e[0].image_offset,
                            .start = l->nr_ext,
                            .n = n };
  for (i = 0; i < n; i++) {
    if (grow_array (&l->ext, &l->alloc_ext, l->nr_ext, sizeof *l->ext, 4096) ==
        -1)
      return -1;
    l->ext[l->nr_ext++] =
        (struct readahead_extent){ .image_offset = e[i].image_offset,
                                   .length = e[i].length };
    lf->bytes += e[i].length;
  }
  return 0;
}

/* Files by their first byte in the image; ties by size, so that hard
 * links end up side by side.
 */
static int
cmp_file (const void *a, const void *b)
{
  const struct load_file *x = a, *y = b;

  if (x->first != y->first)
    return x->first < y->first ? -1 : 1;
  if (x->bytes != y->bytes)
    return x->bytes < y->bytes ? -1 : 1;
  return x->start < y->start ? -1 : x->start > y->start;
}

/* Extent indices by image offset (qsort_r, the map as argument). */
static int
cmp_by_image (const void *a, const void *b, void *arg)
{
  const struct readahead_extent *ext = arg;
  const struct readahead_extent *x = &ext[*(const uint32_t *) a];
  const struct readahead_extent *y = &ext[*(const uint32_t *) b];

  if (x->image_offset != y->image_offset)
    return x->image_offset < y->image_offset ? -1 : 1;
  return x->walk_offset < y->walk_offset ? -1 : 1;
}

/* True if files a and b hold the same extents (hard links). */
static bool
same_extents (const struct load *l, const struct load_file *a,
              const struct load_file *b)
{
  size_t i;

  if (a->n != b->n || a->bytes != b->bytes)
    return false;
  for (i = 0; i < a->n; i++)
    if (l->ext[a->start + i].image_offset !=
            l->ext[b->start + i].image_offset ||
        l->ext[a->start + i].length != l->ext[b->start + i].length)
      return false;
  return true;
}

/* Lay the loaded files end to end in map (its arrays allocated). */
static void
lay_out (struct load *l, struct readahead_map *map)
{
  uint64_t walk = 0;
  size_t i, j, k;

  qsort (l->files, l->nr_files, sizeof *l->files, cmp_file);
  for (i = 0; i < l->nr_files; i++) {
    const struct load_file *lf = &l->files[i];

    if (i > 0 && same_extents (l, &l->files[i - 1], lf))
      continue;
    map->file_start[map->nr_files++] = walk;
    for (j = 0; j < lf->n; j++) {
      map->ext[map->nr_ext] = l->ext[lf->start + j];
      map->ext[map->nr_ext].walk_offset = walk;
      walk += map->ext[map->nr_ext].length;
      map->nr_ext++;
    }
  }
  map->file_start[map->nr_files] = walk;
  map->walk_size = walk;

  /* The lookup by image offset keeps the first of overlapping extents. */
  for (k = 0; k < map->nr_ext; k++)
    map->by_image[k] = k;
  qsort_r (map->by_image, map->nr_ext, sizeof *map->by_image, cmp_by_image,
           map->ext);
  for (j = 0, k = 0; k < map->nr_ext; k++) {
    const struct readahead_extent *e = &map->ext[map->by_image[k]];

    if (j > 0) {
      const struct readahead_extent *p = &map->ext[map->by_image[j - 1]];

      if (e->image_offset < p->image_offset + p->length)
        continue;
    }
    map->by_image[j++] = map->by_image[k];
  }
  map->nr_by_image = j;
}

void
readahead_map_free (struct readahead_map *map)
{
  if (map == NULL)
    return;
  free (map->ext);
  free (map->by_image);
  free (map->file_start);
  free (map);
}

int
readahead_map_load (struct manifest *m, struct readahead_map **out)
{
  struct load l = { 0 };
  struct readahead_map *map = NULL;
  int r = manifest_foreach_file_extents (m, collect, &l);

  *out = NULL;
  if (r == -1 && !l.too_big)
    goto err;
  if (l.too_big || l.nr_ext == 0) {
    free (l.ext);
    free (l.files);
    return 0;
  }
  map = calloc (1, sizeof *map);
  if (map == NULL || (map->ext = calloc (l.nr_ext, sizeof *map->ext)) == NULL ||
      (map->by_image = calloc (l.nr_ext, sizeof *map->by_image)) == NULL ||
      (map->file_start = calloc (l.nr_files + 1, sizeof *map->file_start)) ==
          NULL) {
    report_error ("readahead: file map: calloc: %m");
    goto err;
  }
  lay_out (&l, map);
  free (l.ext);
  free (l.files);
  *out = map;
  return 0;

err:
  readahead_map_free (map);
  free (l.ext);
  free (l.files);
  return -1;
}

/* The last extent (in walk order) starting at or before walk offset w. */
static size_t
find_walk (const struct readahead_map *map, uint64_t w)
{
  size_t lo = 0, hi = map->nr_ext;

  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;

    if (map->ext[mid].walk_offset <= w)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

bool
readahead_map_find (const struct readahead_map *map, uint64_t offset,
                    uint64_t *walk, uint64_t *avail, uint64_t *file_start,
                    uint64_t *file_end)
{
  size_t lo = 0, hi = map->nr_by_image;
  const struct readahead_extent *e;

  /* The last extent starting at or before offset. */
  if (hi == 0 || map->ext[map->by_image[0]].image_offset > offset)
    return false;
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;

    if (map->ext[map->by_image[mid]].image_offset <= offset)
      lo = mid;
    else
      hi = mid;
  }
  e = &map->ext[map->by_image[lo]];
  if (offset - e->image_offset >= e->length)
    return false;
  *walk = e->walk_offset + (offset - e->image_offset);
  *avail = e->length - (offset - e->image_offset);

  /* Its file: the last one starting at or before it. */
  lo = 0;
  hi = map->nr_files;
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;

    if (map->file_start[mid] <= e->walk_offset)
      lo = mid;
    else
      hi = mid;
  }
  *file_start = map->file_start[lo];
  *file_end = map->file_start[lo + 1];
  return true;
}

/* Append chunk-aligned [*a, b) to out as pieces of at most piece
 * bytes; false if room ran out first, with *a where it stopped.
 */
static bool
cut (uint64_t *a, uint64_t b, uint64_t piece, struct readahead_request *out,
     size_t *n, size_t room)
{
  while (*a < b) {
    uint64_t len = b - *a < piece ? b - *a : piece;

    if (*n == room)
      return false;
    out[(*n)++] = (struct readahead_request){ .offset = *a, .count = len };
    *a += len;
  }
  return true;
}

/* A run of image ranges being built: [a, b) in whole chunks, for the
 * walk's [w0, w); linear if its bytes are the walk's in order from
 * image offset i0, so that a cut part way maps back to the walk.
 */
struct run {
  uint64_t a, b, w0, w, i0;
  bool linear;
};

/* Cut run r into out; false if room ran out, with *reached the walk
 * offset covered (the run's start, or where the cut stopped if the run
 * is linear).
 */
static bool
cut_run (const struct run *r, uint64_t piece, struct readahead_request *out,
         size_t *n, size_t room, uint64_t *reached)
{
  uint64_t a = r->a;

  if (cut (&a, r->b, piece, out, n, room)) {
    *reached = r->w;
    return true;
  }
  if (r->linear && a > r->i0)
    *reached = r->w0 + (a - r->i0);
  return false;
}

size_t
readahead_map_ranges (const struct readahead_map *map, uint64_t from,
                      uint64_t until, uint32_t chunk_size, uint64_t image_size,
                      uint64_t piece, struct readahead_request *out,
                      size_t room, uint64_t *reached)
{
  struct run r = { 0 };
  uint64_t w = from;
  size_t k, n = 0;

  *reached = from;
  if (from >= until || map->nr_ext == 0)
    return 0;
  for (k = find_walk (map, from); k < map->nr_ext && w < until; k++) {
    const struct readahead_extent *e = &map->ext[k];
    uint64_t skip = w > e->walk_offset ? w - e->walk_offset : 0, len, a, b;

    if (skip >= e->length)
      continue;
    len = e->length - skip;
    if (len > until - w)
      len = until - w;
    a = e->image_offset + skip;
    b = a + len;
    a -= a % chunk_size;
    b = b % chunk_size ? b + chunk_size - b % chunk_size : b;
    if (b > image_size)
      b = image_size;
    if (r.b > r.a && a <= r.b && b >= r.a) {
      /* Touches the run: one range (a chunk may be asked twice across
       * runs; the read path fetches it once).
       */
      r.linear = r.linear && e->image_offset + skip == r.i0 + (w - r.w0);
      r.a = a < r.a ? a : r.a;
      r.b = b > r.b ? b : r.b;
      w += len;
      r.w = w;
      continue;
    }
    if (r.b > r.a && !cut_run (&r, piece, out, &n, room, reached))
      return n;
    r = (struct run){ .a = a,
                      .b = b,
                      .w0 = w,
                      .w = w + len,
                      .i0 = e->image_offset + skip,
                      .linear = true };
    w += len;
  }
  if (r.b > r.a)
    cut_run (&r, piece, out, &n, room, reached);
  return n;
}

/* A file's last block is its own, though its bytes end before the
 * block does: extents' ends are taken up to this multiple in the image
 * when telling file data from metadata (4 KiB: ext4's usual block and
 * the page size; in a file system of smaller blocks, up to 3 KiB of
 * metadata after a file's end looks like file data, which costs that
 * metadata readahead, nothing else).
 */
#define FILE_BLOCK 4096

static uint64_t
block_end (const struct readahead_extent *e)
{
  uint64_t end = e->image_offset + e->length;

  return end % FILE_BLOCK ? end + FILE_BLOCK - end % FILE_BLOCK : end;
}

/* The first extent in by_image order whose block_end is after image
 * offset (by_image's extents do not overlap, so those ends rise).
 */
static size_t
find_block_end_after (const struct readahead_map *map, uint64_t offset)
{
  size_t lo = 0, hi = map->nr_by_image;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;

    if (block_end (&map->ext[map->by_image[mid]]) <= offset)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* True if [c, end) holds only file blocks; k is the first extent
 * (by_image) that may reach it, moved on as c rises.
 */
static bool
only_files (const struct readahead_map *map, size_t *k, uint64_t c,
            uint64_t end)
{
  uint64_t covered = c; /* [c, covered) is file blocks, so far */
  size_t j;

  while (*k < map->nr_by_image && block_end (&map->ext[map->by_image[*k]]) <= c)
    (*k)++;
  for (j = *k; j < map->nr_by_image && covered < end; j++) {
    const struct readahead_extent *e = &map->ext[map->by_image[j]];

    if (e->image_offset > covered)
      return false; /* a gap: not a file's */
    if (block_end (e) > covered)
      covered = block_end (e);
  }
  return covered >= end;
}

size_t
readahead_map_meta_ranges (const struct readahead_map *map, uint64_t from,
                           uint64_t until, uint32_t chunk_size,
                           uint64_t image_size, uint64_t piece,
                           struct readahead_request *out, size_t room,
                           uint64_t *reached)
{
  uint64_t c, run = 0; /* the run of chunks kept: [run, c) */
  bool in_run = false;
  size_t k, n = 0;

  from -= from % chunk_size;
  if (until > image_size)
    until = image_size;
  *reached = from;
  k = find_block_end_after (map, from);
  for (c = from; c < until; c += chunk_size) {
    uint64_t end = c + chunk_size < image_size ? c + chunk_size : image_size;

    if (!only_files (map, &k, c, end)) {
      if (!in_run)
        run = c;
      in_run = true;
      continue;
    }
    if (in_run && !cut (&run, c, piece, out, &n, room)) {
      *reached = run;
      return n;
    }
    in_run = false;
    *reached = end;
  }
  if (in_run &&
      !cut (&run, c < image_size ? c : image_size, piece, out, &n, room)) {
    *reached = run;
    return n;
  }
  *reached = until;
  return n;
}
