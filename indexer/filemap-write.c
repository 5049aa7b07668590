/* accel-index: writing an image's file map — the entry point of the
 * file map, which picks the back end (filemap-ext4.c,
 * filemap-squashfs.c, filemap-erofs.c) by file system type.  The top of the file map's
 * files: the back ends use filemap.c, and this uses them.
 */

#include <stdlib.h>
#include <string.h>

#include "filemap-internal.h"
#include "report.h"

/* One walk of the image's file system; the back end is chosen by the
 * fs_type that fstype_detect gave.
 */
int
filemap_write (const char *image, int fd, uint64_t image_size,
               const char *fs_type, struct manifest_writer *w,
               const struct filemap_origin *origin, struct filemap_stats *stats)
{
  struct filemap *fm;
  int r;

  memset (stats, 0, sizeof *stats);
  if (strcmp (fs_type, "ext4") != 0 && strcmp (fs_type, "squashfs") != 0 &&
      strcmp (fs_type, "erofs") != 0)
    return 0;

  /* 4 KiB of path: not on the stack of a recursive walk. */
  fm = calloc (1, sizeof *fm);
  if (fm == NULL) {
    report_error ("%s: calloc: %m", image);
    return -1;
  }
  fm->image = image;
  fm->fs_type = fs_type;
  fm->fd = fd;
  fm->image_size = image_size;
  fm->w = w;
  fm->stats = stats;
  if (origin)
    fm->origin = *origin;
  if (strcmp (fs_type, "ext4") == 0) {
    r = filemap_ext4 (fm);
    if (r == 0)
      r = layout_ext4 (fm);
  }
  else if (strcmp (fs_type, "squashfs") == 0)
    r = filemap_squashfs (fm);
  else
    r = filemap_erofs (fm);
  filemap_free (fm);
  return r;
}
