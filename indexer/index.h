/* accel: the indexer as a library: write the manifest of an image, or
 * give an existing manifest a new hot list.
 *
 * accel-index is the command line around these functions; accel-mkimage
 * calls index_image on the image it has just built, in its own process,
 * so that it needs no accel-index program.  Errors go through
 * report_error, so they carry the calling tool's name.
 */

#ifndef ACCEL_INDEX_H
#define ACCEL_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "filemap.h"

/* The chunk size when none is given (--chunk-size). */
#define INDEX_DEFAULT_CHUNK_SIZE (UINT32_C (1024) * 1024)

/* What the caller decides. */
struct index_options {
  /* A power of two from MANIFEST_MIN_CHUNK_SIZE to MANIFEST_MAX_CHUNK_SIZE
   * (manifest_parse_chunk_size checks user input).  Not used by
   * index_update_hot, which keeps the manifest's.
   */
  uint32_t chunk_size;
  /* Trace files (the plugin's trace=FILE) merged into the hot list, in
   * this order (hot.h).  nr_traces may be 0 for index_image: then the
   * manifest has no hot list.
   */
  char *const *traces;
  size_t nr_traces;
  /* ext4: the size mke2fs made the image before it was grown (0s: the
   * superblock's), recorded in the manifest's layout.
   */
  struct filemap_origin origin;
};

/* What index_image did, for index_print_summary. */
struct index_stats {
  uint64_t image_size; /* bytes */
  uint64_t nr_chunks;
  uint64_t nr_zero; /* all-zero chunks */
  const char *fs_type; /* "ext4", "squashfs", "erofs" or "raw" (static) */
  struct filemap_stats filemap; /* all 0 for "raw" */
  double secs; /* the whole run */
  double filemap_secs; /* the file map's part of it */
  bool has_hot; /* a hot list was written (traces were given) */
  size_t nr_hot; /* chunks in it */
};

/* Write the manifest of image (a regular file or a block device) to
 * manifest: the file map (ext4, squashfs, erofs), the SHA-256 and zero
 * flag of every chunk, the SHA-256 of the whole image and, with traces,
 * the hot list.  The traces are read and checked first and the file map
 * before the long scan, so that bad input fails early.  The manifest is
 * written as manifest.tmp and renamed into place when complete; on
 * failure nothing is left.  Progress details go to report_debug.
 * stats may be NULL.  0, or -1 (error reported).
 */
int index_image (const char *image, const char *manifest,
                 const struct index_options *o, struct index_stats *stats);

/* Write manifest, with its hot list replaced by the one merged from
 * o->traces (at least one), to output (which may be manifest itself).
 * The result is the same file that index_image with those traces
 * gives.  *nr_hot (may be NULL) receives the length of the hot list.
 * 0, or -1 (error reported).
 */
int index_update_hot (const char *manifest, const char *output,
                      const struct index_options *o, size_t *nr_hot);

/* The summary of a run, "PROGNAME: indexed ..." and, for file system
 * images, the file map's line (and a hint for squashfs and erofs images
 * whose files are not all mapped), then the hot list's line if there is one.
 */
void index_print_summary (FILE *fp, const char *progname,
                          const struct index_stats *st);

#endif /* ACCEL_INDEX_H */
