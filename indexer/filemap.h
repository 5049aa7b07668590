/* accel-index: the file map, which bytes of the image hold which file.
 *
 * For ext4, squashfs and erofs images accel-index records every
 * regular file (one row per path, hard links included) and the runs of
 * image bytes that hold its data, in the manifest's files and extents
 * tables.  Holes, and data that cannot be read byte for byte from the
 * image (squashfs compressed blocks and fragments, erofs compressed
 * files), get no extent.  Raw images have no file map.
 */

#ifndef ACCEL_FILEMAP_H
#define ACCEL_FILEMAP_H

#include <stdint.h>

#include "manifest.h"

/* What the file map holds, for the summary. */
struct filemap_stats {
  uint64_t nr_files; /* files rows (paths) */
  uint64_t nr_extents; /* extents rows */
  uint64_t mapped_bytes; /* file bytes covered by extents */
  uint64_t unmapped_bytes; /* file bytes neither mapped nor holes */
  uint64_t nr_skipped; /* files (or encrypted dirs) left out: ext4 */
};

/* For an ext4 image: the size mke2fs made it before it was grown
 * (accel-mkimage knows; see struct manifest_fs_layout).  NULL or 0s:
 * the superblock's sizes, right for a file system never grown.
 */
struct filemap_origin {
  uint64_t mkfs_blocks, mkfs_inodes;
};

/* Write the file map of image (open as fd, image_size bytes, of type
 * fs_type as fstype_detect says) through w.  Nothing is written for
 * "raw".  0, or -1 (error reported, naming the image and the path in
 * it) on a malformed image or a failed write.
 */
int filemap_write (const char *image, int fd, uint64_t image_size,
                   const char *fs_type, struct manifest_writer *w,
                   const struct filemap_origin *origin,
                   struct filemap_stats *stats);

#endif /* ACCEL_FILEMAP_H */
