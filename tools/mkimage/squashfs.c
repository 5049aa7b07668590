/* accel-mkimage: a squashfs image with mksquashfs, reproducibly.
 *
 * mksquashfs (squashfs-tools 4.5.1) already sorts each directory by
 * name and builds reproducibly by default, even with several threads;
 * what it takes from the source beyond the tree itself is turned off:
 *
 *   -all-root             owners and groups are 0
 *   -all-time, -mkfs-time every timestamp is the fixed epoch
 *   -no-xattrs            no extended attributes
 *   -no-sparse            all-zero blocks are stored like any other:
 *                         otherwise mksquashfs records them as holes
 *                         only if the source file has holes (st_blocks),
 *                         so a sparse and a dense copy of the same file
 *                         would give different inodes.  The plugin never
 *                         fetches all-zero chunks anyway, and every
 *                         file's bytes stay one range of the image.
 *   -noappend             never added to an existing file
 *   SOURCE_DATE_EPOCH     unset in its environment (4.5 refuses it
 *                         together with the two time options)
 *
 * File data is stored uncompressed and without fragments by default
 * (-noD -noF -no-fragments), so that every file's bytes sit in the
 * image as they are, block after block, where the manifest's file map
 * can point at them; inodes and directories stay compressed (small).
 * --compress turns compression and fragments back on (smaller, but a
 * file's bytes are then no longer a range of the image).
 *
 * NB: mksquashfs takes two names for one inode only if lstat gives
 * identical struct stats for both, atime included, and it reads each
 * symbolic link between the two lstats: on a file system mounted
 * relatime with a link's atime older than its mtime (a copied tree),
 * that read changes the atime and the hard link silently becomes two
 * inodes.  So our own walk reads every symbolic link first (after
 * which relatime leaves atime alone for a day), and the inode count
 * of the result is checked against the tree's; on a mismatch the build
 * is repeated, and if it persists (strictatime, files in use, or an
 * mtime in the future, which relatime takes as a reason to update atime
 * at every read) it fails rather than publish an image that depends on
 * timing.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "report.h"
#include "mkimage.h"

#define MAX_ATTEMPTS 3

/* What the walk counts: for the summary and the inode check. */
struct counts {
  const char *src, *real_src;
  struct tree_links *links;
  uint64_t file_bytes, nr_entries, nr_inodes;
};

/* tree_walk callback: count, and read symbolic links (see above). */
static int
count_entry (void *opaque, const struct tree_node *n, uint64_t *handle)
{
  struct counts *c = opaque;
  char target[PATH_MAX];

  (void) handle;
  /* NB: mksquashfs skips a path it cannot stat (PATH_MAX) and stores a
   * file it cannot read as an empty file, with only a warning.
   */
  if (tree_check_for_tool ("mksquashfs", c->src, c->real_src, n) == -1)
    return -1;
  if (n->dirfd != -1)
    c->nr_entries++;
  if (n->st->st_nlink > 1 && !S_ISDIR (n->st->st_mode)) {
    if (tree_links_find (c->links, n->st) != 0)
      return 0;
    if (tree_links_add (c->links, n->st, 1) == -1)
      return -1;
  }
  c->nr_inodes++;
  if (S_ISREG (n->st->st_mode))
    c->file_bytes += n->st->st_size;
  else if (S_ISLNK (n->st->st_mode) &&
           readlinkat (n->dirfd, n->name, target, sizeof target) == -1) {
    report_error ("%s/%s: readlink: %m", c->src, n->path);
    return -1;
  }
  return 0;
}

/* The inode count in the superblock (le32 at offset 4). */
static int
read_inode_count (const char *image, uint32_t *count)
{
  unsigned char sb[8];
  ssize_t r;
  int fd;

  fd = open (image, O_RDONLY | O_CLOEXEC);
  if (fd == -1) {
    report_error ("%s: open: %m", image);
    return -1;
  }
  r = pread (fd, sb, sizeof sb, 0);
  close (fd);
  if (r != (ssize_t) sizeof sb || memcmp (sb, "hsqs", 4) != 0) {
    report_error ("%s: mksquashfs wrote no squashfs superblock", image);
    return -1;
  }
  *count = sb[4] | sb[5] << 8 | sb[6] << 16 | (uint32_t) sb[7] << 24;
  return 0;
}

/* One run of mksquashfs on src (resolved: mksquashfs would store a
 * symbolic link to SRC_DIR as a link).
 */
static int
run_mksquashfs (const struct mkimage_options *o, const char *src,
                const char *image, const char *root_mode)
{
  char epoch[24];
  const char *argv[40];
  const char *env[] = { "SOURCE_DATE_EPOCH", "LC_ALL=C", NULL };
  size_t n = 0;

  if (unlink (image) == -1 && errno != ENOENT) {
    report_error ("%s: unlink: %m", image);
    return -1;
  }
  snprintf (epoch, sizeof epoch, "%" PRIu32, o->epoch);
  argv[n++] = "mksquashfs";
  argv[n++] = src;
  argv[n++] = image;
  argv[n++] = "-noappend";
  argv[n++] = "-reproducible";
  argv[n++] = "-all-root";
  argv[n++] = "-all-time";
  argv[n++] = epoch;
  argv[n++] = "-mkfs-time";
  argv[n++] = epoch;
  argv[n++] = "-root-mode";
  argv[n++] = root_mode;
  argv[n++] = "-no-xattrs";
  argv[n++] = "-no-sparse";
  argv[n++] = "-no-recovery";
  argv[n++] = "-no-progress";
  argv[n++] = "-quiet";
  if (!o->compress) {
    argv[n++] = "-noD";
    argv[n++] = "-noF";
    argv[n++] = "-no-fragments";
  }
  argv[n] = NULL;
  return run_program ("mksquashfs", argv, env, workdir_file ("mksquashfs.log"));
}

int
squashfs_build (const struct mkimage_options *o, const char *image,
                struct build_result *r)
{
  CLEANUP_FREE char *src = realpath (o->src, NULL);
  struct counts c = { .src = o->src, .real_src = src };
  char root_mode[16];
  struct stat st;
  uint32_t got = 0;
  int ret;

  if (src == NULL || stat (src, &st) == -1) {
    report_error ("%s: %m", o->src);
    return -1;
  }
  /* mksquashfs would take it from the source too; say it. */
  snprintf (root_mode, sizeof root_mode, "%o", (unsigned) (st.st_mode & 07777));

  for (r->attempts = 1; r->attempts <= MAX_ATTEMPTS; r->attempts++) {
    c.links = tree_links_new ();
    if (c.links == NULL)
      return -1;
    c.file_bytes = c.nr_entries = c.nr_inodes = 0;
    ret = tree_walk (o->src, &(struct tree_ops){ .visit = count_entry }, &c);
    tree_links_free (c.links);
    if (ret == -1)
      return -1;

    progress_start ("building squashfs image", 0);
    ret = run_mksquashfs (o, src, image, root_mode);
    progress_end ();
    if (ret == -1 || read_inode_count (image, &got) == -1)
      return -1;
    if (got == c.nr_inodes)
      break;
    report_debug ("mksquashfs made %" PRIu32 " inodes for %" PRIu64
                  ": a hard link was split, trying again",
                  got, c.nr_inodes);
  }
  if (got != c.nr_inodes) {
    report_error ("%s: mksquashfs made %" PRIu32 " inodes for a tree of "
                  "%" PRIu64 ": files changed during the build (or "
                  "their access times did: the source is mounted "
                  "strictatime, or hard-linked files or symbolic links "
                  "have modification times in the future, so that every "
                  "read updates their atime; mksquashfs takes that for a "
                  "change and splits hard links)",
                  o->src, got, c.nr_inodes);
    return -1;
  }
  r->file_bytes = c.file_bytes;
  r->nr_entries = c.nr_entries;
  if (stat (image, &st) == -1) {
    report_error ("%s: stat: %m", image);
    return -1;
  }
  r->image_size = st.st_size;
  return 0;
}
