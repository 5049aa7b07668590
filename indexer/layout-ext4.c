/* accel-index: the layout of an ext4 image, for its next version.
 *
 * accel-mkimage builds version 2 of a dataset around version 1 so that
 * what did not change keeps its place (tools/mkimage/ext4-base.c), and
 * it has only version 1's manifest to go by, not its image.  So the
 * manifest carries what the file map lacks (docs/manifest-format.md,
 * "layout"): the file system's UUID, hash seed, block and inode counts,
 * the inode number of every path (directories, symlinks and devices as
 * well as regular files) and where every directory's blocks are.  This
 * is a second walk of the tree, after the file map's (filemap-ext4.c),
 * which has already refused a malformed image; the checks here guard
 * only against what that walk does not look at.  Nodes are written in
 * the walk's order, a directory before its entries.
 */

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ext2fs/ext2fs.h>

#include "filemap-internal.h"
#include "report.h"

/* One walk. */
struct layout_walk {
  struct filemap *fm;
  ext2_filsys fs;
  ext2fs_inode_bitmap dirs_seen;
  char *dir_buf;
};

/* The entries of one directory, kept so that libext2fs is never
 * re-entered from its own callback.
 */
struct layout_dir {
  struct layout_walk *wk;
  struct filemap_subdirs entries; /* key: inode number */
};

/* A run of a directory's blocks being merged. */
struct layout_run {
  struct layout_walk *wk;
  ext2_ino_t ino;
  uint64_t lblk, block, count;
  bool failed;
};

/* Write the run so far (if any). */
static int
flush_run (struct layout_run *r)
{
  if (r->count == 0)
    return 0;
  if (manifest_writer_add_node_blocks (r->wk->fm->w, r->ino, r->lblk, r->block,
                                       r->count) == -1)
    return -1;
  r->count = 0;
  return 0;
}

/* ext2fs_block_iterate3's callback: data blocks of a directory in
 * logical order, merged into runs.
 */
static int
dir_block (ext2_filsys fs, blk64_t *blocknr, e2_blkcnt_t blockcnt,
           blk64_t ref_blk, int ref_offset, void *priv)
{
  struct layout_run *r = priv;

  (void) ref_blk;
  (void) ref_offset;
  if (blockcnt < 0)
    return 0;
  if (*blocknr >= ext2fs_blocks_count (fs->super)) {
    filemap_error (r->wk->fm,
                   "directory block %llu is outside the file "
                   "system",
                   (unsigned long long) *blocknr);
    r->failed = true;
    return BLOCK_ABORT;
  }
  if (r->count > 0 && (uint64_t) blockcnt == r->lblk + r->count &&
      *blocknr == r->block + r->count) {
    r->count++;
    return 0;
  }
  if (flush_run (r) == -1) {
    r->failed = true;
    return BLOCK_ABORT;
  }
  r->lblk = blockcnt;
  r->block = *blocknr;
  r->count = 1;
  return 0;
}

/* The blocks of directory ino. */
static int
dir_blocks (struct layout_walk *wk, ext2_ino_t ino)
{
  struct layout_run r = { .wk = wk, .ino = ino };
  errcode_t err;

  err = ext2fs_block_iterate3 (wk->fs, ino,
                               BLOCK_FLAG_READ_ONLY | BLOCK_FLAG_DATA_ONLY,
                               NULL, dir_block, &r);
  if (r.failed)
    return -1;
  if (err) {
    filemap_error (wk->fm, "directory blocks: %s", "libext2fs error");
    return -1;
  }
  return flush_run (&r);
}

/* ext2fs_dir_iterate2's callback: keep every entry but . and .. */
static int
dir_entry (ext2_ino_t dir, int entry, struct ext2_dir_entry *dirent, int offset,
           int blocksize, char *buf, void *priv)
{
  struct layout_dir *d = priv;
  size_t len = ext2fs_dirent_name_len (dirent);

  (void) dir;
  (void) entry;
  (void) offset;
  (void) blocksize;
  (void) buf;
  if ((len == 1 && dirent->name[0] == '.') ||
      (len == 2 && dirent->name[0] == '.' && dirent->name[1] == '.'))
    return 0;
  if (filemap_subdirs_add (d->wk->fm, &d->entries, dirent->inode, dirent->name,
                           len) == -1)
    return DIRENT_ABORT;
  return 0;
}

/* The node at the current path (inode ino), and if it is a directory,
 * its blocks and everything below it.
 */
static int
walk_node (struct layout_walk *wk, ext2_ino_t ino)
{
  struct filemap *fm = wk->fm;
  struct layout_dir d = { .wk = wk };
  struct ext2_inode inode;
  size_t i, saved;
  errcode_t err;
  int r = -1;

  err = ext2fs_read_inode (wk->fs, ino, &inode);
  if (err) {
    filemap_error (fm, "inode %u: cannot read it", ino);
    return -1;
  }
  if (manifest_writer_add_node (fm->w, fm->path_len ? fm->path : "/", ino,
                                inode.i_mode) == -1)
    return -1;
  if (!LINUX_S_ISDIR (inode.i_mode) || (inode.i_flags & EXT4_ENCRYPT_FL))
    return 0;
  if (ext2fs_test_inode_bitmap2 (wk->dirs_seen, ino)) {
    filemap_error (fm, "directory inode %u is reached twice", ino);
    return -1;
  }
  ext2fs_mark_inode_bitmap2 (wk->dirs_seen, ino);
  if (!(inode.i_flags & EXT4_INLINE_DATA_FL) && dir_blocks (wk, ino) == -1)
    return -1;
  err = ext2fs_dir_iterate2 (wk->fs, ino, 0, wk->dir_buf, dir_entry, &d);
  if (err) {
    filemap_error (fm, "reading the directory for its layout");
    goto out;
  }
  for (i = 0; i < d.entries.len; i++) {
    const struct filemap_subdir *e = &d.entries.items[i];

    if (filemap_enter (fm, d.entries.names + e->name_offset, e->name_len,
                       EXT2_NAME_LEN, &saved) == -1 ||
        walk_node (wk, e->key) == -1)
      goto out;
    filemap_leave (fm, saved);
  }
  r = 0;

out:
  filemap_subdirs_free (&d.entries);
  return r;
}

int
layout_ext4 (struct filemap *fm)
{
  struct layout_walk wk = { .fm = fm };
  struct manifest_fs_layout l;
  errcode_t err;
  int r = -1;

  err = ext2fs_open2 (fm->image, NULL, EXT2_FLAG_64BITS, 0, 0, unix_io_manager,
                      &wk.fs);
  if (err) {
    report_error ("%s: ext4: cannot open the file system", fm->image);
    return -1;
  }
  memcpy (l.uuid, wk.fs->super->s_uuid, 16);
  memcpy (l.hash_seed, wk.fs->super->s_hash_seed, 16);
  l.blocks = ext2fs_blocks_count (wk.fs->super);
  l.inodes = wk.fs->super->s_inodes_count;
  l.block_size = wk.fs->blocksize;
  l.inode_size = EXT2_INODE_SIZE (wk.fs->super);
  l.mkfs_blocks = fm->origin.mkfs_blocks ? fm->origin.mkfs_blocks : l.blocks;
  l.mkfs_inodes = fm->origin.mkfs_inodes ? fm->origin.mkfs_inodes : l.inodes;
  l.blocks_per_group = wk.fs->super->s_blocks_per_group;
  l.groups_per_flex = 1;
  if (ext2fs_has_feature_flex_bg (wk.fs->super) &&
      wk.fs->super->s_log_groups_per_flex < 32)
    l.groups_per_flex <<= wk.fs->super->s_log_groups_per_flex;
  /* An image made elsewhere (bigalloc's groups are clusters) may have
   * a geometry accel-mkimage never makes: then none is recorded, and a
   * base of it is judged as one that predates the record.
   */
  if (!manifest_fs_groups_valid (l.block_size, l.blocks_per_group,
                                 l.groups_per_flex))
    l.blocks_per_group = l.groups_per_flex = 0;
  err = ext2fs_allocate_inode_bitmap (wk.fs, "directories", &wk.dirs_seen);
  wk.dir_buf = malloc (wk.fs->blocksize);
  if (err || wk.dir_buf == NULL) {
    report_error ("%s: ext4: layout: out of memory", fm->image);
    goto out;
  }
  fm->path[0] = '\0';
  fm->path_len = 0;
  if (manifest_writer_set_fs_layout (fm->w, &l) == -1)
    goto out;
  r = walk_node (&wk, EXT2_ROOT_INO);

out:
  free (wk.dir_buf);
  if (wk.dirs_seen)
    ext2fs_free_inode_bitmap (wk.dirs_seen);
  ext2fs_close_free (&wk.fs);
  return r;
}
