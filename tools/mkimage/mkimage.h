/* accel-mkimage: what the parts of the tool share.
 *
 * mkimage.c parses the command line and runs the steps in order: build
 * the image (ext4.c, ext4-populate.c and ext4-dir.c, squashfs.c or
 * erofs.c),
 * index it (the indexer library, indexer/index.h), publish it
 * (publish-dir.c or publish-s3.c).  The
 * other files are services for those steps: a sorted walk of the
 * source tree (tree.c), the private temporary directory and its
 * removal on every exit path (workdir.c), and the progress line
 * (progress.c).
 */

#ifndef ACCEL_MKIMAGE_H
#define ACCEL_MKIMAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "format.h"

struct ext4_base;

#define PROGNAME "accel-mkimage"

/* Everything the command line decides. */
struct mkimage_options {
  const char *src; /* SRC_DIR */
  const char *dest; /* s3://BUCKET[/PREFIX] or a local directory */
  const char *name; /* image name: NAME.img, NAME.img.manifest */
  const char *fs; /* "ext4", "squashfs" or "erofs" */
  uint32_t chunk_size; /* of the manifest, in bytes */
  bool chunk_size_given; /* --chunk-size (else the base's, or 1 MiB) */
  const char *label; /* file system label / volume name, or NULL */
  unsigned block_size; /* ext4: --block-size of a fresh layout, 0: auto */
  const char *endpoint; /* S3-compatible endpoint, or NULL for AWS */
  char *endpoint_used; /* what the S3 client found (--endpoint, the
                        * environment, the profile), NULL for AWS */
  const char *keep_image; /* keep the built image here, or NULL */
  char **hot; /* --hot traces for the hot list (nr_hot of them) */
  size_t nr_hot;
  bool compress; /* squashfs: compress data blocks */
  bool verbose;
  uint32_t epoch; /* every timestamp in the image */
  const char *base_path; /* --base MANIFEST, or DEST's manifest, or NULL */
  bool base_default; /* base_path is DEST's: a missing file is no error */
  struct ext4_base *base; /* loaded from base_path, or NULL */
};

/* What the build step reports, for the summary. */
struct build_result {
  uint64_t image_size; /* bytes */
  uint64_t free_bytes; /* ext4: bytes of unused blocks (0 for squashfs) */
  uint64_t file_bytes; /* sum of the sizes of distinct regular files */
  uint64_t nr_entries; /* files, directories, links, ... below the root */
  unsigned attempts; /* builds until everything fitted (ext4) or the
                       hard links held (squashfs) */
  bool based; /* ext4: built around the base layout */
  uint64_t mkfs_blocks, mkfs_inodes; /* ext4: mke2fs's size, before growing */
};

/* tree.c: a walk of the source tree in a fixed order. */

/* One entry of the tree, as tree_walk presents it. */
struct tree_node {
  const char *path; /* relative to the source, "" for the root */
  const char *name; /* last component of path, "" for the root */
  int dirfd; /* the parent directory (for openat), -1 for the root */
  const struct stat *st; /* lstat of the entry */
  uint64_t parent; /* what visit set *handle to for the parent */
};

/* What tree_walk calls.  Both return 0 to go on, -1 (error reported)
 * to stop.
 */
struct tree_ops {
  /* Every entry, the root first.  For a directory, whatever is stored
   * in *handle is passed to its children as node->parent.
   */
  int (*visit) (void *opaque, const struct tree_node *node, uint64_t *handle);
  /* After every entry of the directory handle has been visited, before
   * its subdirectories are walked.  May be NULL.
   */
  int (*dir_done) (void *opaque, uint64_t handle);
};

/* Walk src: visit the root, then for each directory (the root first)
 * visit its entries sorted by strcmp of their names (bytes, whatever
 * the locale), call dir_done, and walk its subdirectories in the same
 * order.  Symbolic links are not followed.  The order depends only on
 * the names, never on the order the source file system returns them
 * in.  0, or -1 (error reported).
 */
extern int
tree_walk (const char *src, const struct tree_ops *ops, void *opaque);

/* A set of (st_dev, st_ino) for finding hard links within the tree. */
struct tree_links;
extern struct tree_links *tree_links_new (void);
extern void tree_links_free (struct tree_links *l);

/* The value stored with st's (st_dev, st_ino), or 0 if none is.
 * Only entries with st_nlink > 1 need to be looked up.
 */
extern int64_t tree_links_find (struct tree_links *l, const struct stat *st);

/* Store value (not 0) for st's (st_dev, st_ino), which tree_links_find
 * did not find.  0, or -1 (error reported).
 */
extern int
tree_links_add (struct tree_links *l, const struct stat *st, int64_t value);

/* For the builders that hand SRC_DIR to another program (mksquashfs,
 * mkfs.erofs), which opens entries by absolute path and may skip what
 * it cannot read: real_src is SRC_DIR resolved.  Fails (error reported)
 * when real_src/path reaches PATH_MAX or a regular file cannot be
 * opened for reading.  0, or -1.
 */
extern int
tree_check_for_tool (const char *tool, const char *src, const char *real_src,
                     const struct tree_node *n);

/* ext4.c: size, make, fill, check and index an ext4 image.  0 or -1
 * (error reported).
 */
extern int ext4_build (const struct mkimage_options *o, const char *image,
                       struct build_result *r);

/* ext4-populate.c: copy the tree into the empty file system made by
 * mke2fs.  Returns 0, -1 on an error (reported), or 1 if the file
 * system is too small (nothing reported: the caller grows it).  digest
 * receives a SHA-256 over the whole tree (names, types, modes, sizes,
 * contents, link targets), from which the UUID is derived.  *cramped
 * receives the blocks of large files that found no free chunk to go
 * to (struct ext4_alloc).
 */
extern int ext4_populate (const struct mkimage_options *o, const char *image,
                          uint64_t file_bytes, struct ext4_base *base,
                          unsigned char digest[32], uint64_t *cramped);

/* squashfs.c: make a squashfs image with mksquashfs. */
extern int squashfs_build (const struct mkimage_options *o, const char *image,
                           struct build_result *r);

/* erofs.c: make an erofs image with mkfs.erofs. */
extern int erofs_build (const struct mkimage_options *o, const char *image,
                        struct build_result *r);

/* run.c: child programs. */

/* Run argv (argv[0] looked up in PATH, then /usr/sbin and /sbin) with env applied on top of our
 * environment ("NAME=VALUE" sets, "NAME" unsets), stdin from
 * /dev/null, stdout and stderr to log.  A failure is reported with
 * what and the end of the log.  0, or -1 (error reported).
 */
extern int run_program (const char *what, const char *const argv[],
                        const char *const env[], const char *log);

/* workdir.c: the private temporary directory. */

/* Make it in $TMPDIR (or /tmp) and arrange for it, everything in it and
 * every registered file to be removed at exit and on SIGINT, SIGTERM
 * and SIGHUP.  0, or -1 (error reported).
 */
extern int workdir_create (void);

/* The path of name inside the work directory (removed at exit).  The
 * string lives until exit.
 */
extern const char *workdir_file (const char *name);

/* The work directory itself (after workdir_create). */
extern const char *workdir_dir (void);

/* Remove path at exit unless workdir_forget is called first (for
 * temporary files outside the work directory).  0, or -1 (error
 * reported) if too many are registered.
 */
extern int workdir_register (const char *path);
extern void workdir_forget (const char *path);

/* The child process a signal must also stop (0 for none). */
extern void workdir_set_child (pid_t pid);

/* progress.c: one updating line on a terminal, nothing otherwise. */

/* Decide once whether lines are shown (stderr is a terminal); then
 * each step starts its line (total 0: no percentage), updates it with
 * the bytes done, and ends it.
 */
extern void progress_init (void);
extern void progress_start (const char *what, uint64_t total);
extern void progress_update (uint64_t done);
extern void progress_end (void);

/* publish-dir.c: copy path to dest atomically (temporary file in the
 * same directory, fsync, rename, fsync of the directory).  what is for
 * the progress line.  0, or -1 (error reported).
 */
extern int
copy_file_atomic (const char *path, const char *dest, const char *what);

/* Publish NAME.img and then NAME.img.manifest into a local directory.
 * 0, or -1 (error reported).
 */
extern int publish_dir (const struct mkimage_options *o, const char *image,
                        const char *manifest);

/* publish-s3.c: check that DEST can be reached with the credentials
 * we have (before the build), and set o->endpoint_used.  0, or -1
 * (error reported).
 */
extern int publish_s3_check (struct mkimage_options *o);

/* The same as publish_dir, to s3://BUCKET/PREFIX/NAME.img(.manifest).
 * Adds the bytes actually sent to *uploaded.  0, or -1 (error
 * reported).
 */
extern int publish_s3 (const struct mkimage_options *o, const char *image,
                       const char *manifest, uint64_t *uploaded);

/* Download the manifest at url (s3://, http(s)://) to path, for a base
 * layout.  0; 1 if missing_ok and there is no such object (nothing
 * reported); or -1 (error reported).
 */
extern int publish_s3_fetch (const struct mkimage_options *o, const char *url,
                             const char *path, bool missing_ok);

#endif /* ACCEL_MKIMAGE_H */
