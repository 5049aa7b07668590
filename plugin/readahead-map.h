/* accel plugin: the manifest's file map as readahead follows it — every
 * file's extents laid end to end in one line, the "walk", so that a
 * reader of a file, or of file after file, is a sequential stream
 * there wherever the bytes lie in the image.
 */

#ifndef ACCEL_READAHEAD_MAP_H
#define ACCEL_READAHEAD_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest.h"

/* The largest map loaded (extents of all files): about 32 bytes each
 * in memory, so at most 32 MiB.  A larger one is not loaded, and
 * readahead follows image offsets as without a manifest.
 */
#define READAHEAD_MAP_MAX_EXTENTS (UINT64_C (1) << 20)

/* length bytes at image_offset are the walk's bytes at walk_offset. */
struct readahead_extent {
  uint64_t image_offset, walk_offset, length;
};

struct readahead_map {
  /* Files in the order of their first byte in the image, each file's
   * extents in file order; walk_offset is the sum of the lengths
   * before.
   */
  struct readahead_extent *ext;
  size_t nr_ext;
  uint32_t *by_image; /* indices into ext by image_offset, not overlapping */
  size_t nr_by_image;
  uint64_t *file_start; /* nr_files + 1 walk offsets: the last is the end */
  size_t nr_files;
  uint64_t walk_size;
};

/* One image range for a worker: count bytes at offset (readahead.h's
 * request, declared there).
 */
struct readahead_request;

/* Load m's file map.  0 with *out set, or with *out NULL if the map is
 * empty or larger than READAHEAD_MAP_MAX_EXTENTS; -1 (error reported).
 */
int readahead_map_load (struct manifest *m, struct readahead_map **out);
void readahead_map_free (struct readahead_map *map);

/* Where image byte offset lies in the walk.  True with *walk its walk
 * offset, *avail the bytes from there to the end of its extent, and
 * [*file_start, *file_end) its file's place in the walk; false if no
 * file holds it (metadata, free space).
 */
bool readahead_map_find (const struct readahead_map *map, uint64_t offset,
                         uint64_t *walk, uint64_t *avail, uint64_t *file_start,
                         uint64_t *file_end);

/* The image bytes of the walk's [from, until) as requests in out (at
 * most room): each widened to whole chunks (the image is image_size
 * bytes), ranges that touch merged, cut into chunk-aligned pieces of
 * at most piece bytes.  Returns how many; *reached is the walk offset
 * they cover up to (until, unless room ran out).
 */
size_t
readahead_map_ranges (const struct readahead_map *map, uint64_t from,
                      uint64_t until, uint32_t chunk_size, uint64_t image_size,
                      uint64_t piece, struct readahead_request *out,
                      size_t room, uint64_t *reached);

/* The image's [from, until) less the chunks that hold only file data,
 * as requests in out (at most room): runs of chunks that hold some
 * bytes outside every file (metadata: inode tables, directories,
 * extent blocks), cut into chunk-aligned pieces of at most piece
 * bytes.  Returns how many; *reached is the image offset they cover
 * up to (until, unless room ran out).
 */
size_t readahead_map_meta_ranges (const struct readahead_map *map,
                                  uint64_t from, uint64_t until,
                                  uint32_t chunk_size, uint64_t image_size,
                                  uint64_t piece, struct readahead_request *out,
                                  size_t room, uint64_t *reached);

#endif /* ACCEL_READAHEAD_MAP_H */
