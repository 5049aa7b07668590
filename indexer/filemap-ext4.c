/* accel-index: the file map of an ext2, ext3 or ext4 image (libext2fs).
 *
 * The image is opened read-only with libext2fs's unix I/O manager and
 * walked from the root directory.  A regular file's data runs come from
 * its extent tree (ext2fs_extent_get) or, for files from ext2/ext3 days,
 * its block map (ext2fs_block_iterate3); uninitialized extents and
 * holes read as zeros and get no extent.  What is left out, and why:
 *
 *  - files with inline data (the inline_data feature: up to a few
 *    hundred bytes kept inside the inode) are mapped where their bytes
 *    lie in the inode table (map_inline);
 *  - encrypted files and directories (fscrypt): their bytes in the image
 *    are ciphertext and their names are not names;
 *  - directories, symlinks, devices, fifos and sockets: not regular files.
 *
 * The image is untrusted: checksums are verified (metadata_csum), the
 * file system must fit in the image and its group descriptors must be
 * sane (ext2fs_check_desc) before anything else is read, a directory
 * reached twice is an error (no loops), every block number is checked
 * against the file system, extents must come in order, and each extent
 * tree or indirect block may be used once in the whole image, which
 * bounds the work to the image's size.  A file system with a journal
 * that needs recovery is refused: its metadata on disk is not what a
 * mount would see.
 */

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ext2fs/ext2fs.h>

#include "filemap-internal.h"
#include "report.h"

/* NB: error_message is in libcom_err, which libext2fs is linked with but
 * this program is not (the Makefile asks pkg-config for ext2fs only).  A
 * weak reference binds to it at run time, since libext2fs always loads
 * it, and is NULL otherwise.
 */
extern const char *error_message (errcode_t) __attribute__ ((weak));

/* One walk of one file system. */
struct ext4_walk {
  struct filemap *fm;
  ext2_filsys fs;
  unsigned blocksize;
  blk64_t first_data_block, blocks_count;
  ext2fs_inode_bitmap dirs_seen; /* directories visited */
  ext2fs_block_bitmap nodes_seen; /* extent tree and indirect blocks */
  char *dir_buf; /* for ext2fs_dir_iterate2 */
  char *block_buf; /* for ext2fs_block_iterate3 */
  unsigned char *inode_buf; /* one whole inode, for map_inline */
};

/* One directory being read. */
struct ext4_dir {
  struct ext4_walk *wk;
  struct filemap_subdirs subdirs;
  bool failed; /* error reported; the iteration was aborted */
};

/* libext2fs's message for err. */
static const char *
ext4_strerror (errcode_t err)
{
  if (error_message)
    return error_message (err);
  return "libext2fs error (no message: libcom_err is not loaded)";
}

/* A block number from the image that libext2fs does not check itself:
 * inside the file system, past the boot block.
 */
static bool
valid_blocks (const struct ext4_walk *wk, blk64_t blk, uint64_t count)
{
  return blk >= wk->first_data_block && blk < wk->blocks_count &&
      count <= wk->blocks_count - blk;
}

/* An extent tree or indirect block belongs to one file, once.  Using it
 * twice would let a small image describe an enormous file map.
 */
static int
claim_node (struct ext4_walk *wk, blk64_t blk)
{
  if (!valid_blocks (wk, blk, 1)) {
    filemap_error (wk->fm,
                   "block map block %llu is outside the file "
                   "system (corrupt file system?)",
                   (unsigned long long) blk);
    return -1;
  }
  if (ext2fs_test_block_bitmap2 (wk->nodes_seen, blk)) {
    filemap_error (wk->fm,
                   "block map block %llu is used twice (corrupt "
                   "file system?)",
                   (unsigned long long) blk);
    return -1;
  }
  ext2fs_mark_block_bitmap2 (wk->nodes_seen, blk);
  return 0;
}

/* Walk the extent tree of an extent-mapped file.  Leaves are in logical
 * order, so the walk stops at the first one beyond the file's end.
 */
static int
map_extents (struct ext4_walk *wk, ext2_ino_t ino, struct ext2_inode *inode,
             uint64_t nr_blocks)
{
  struct filemap *fm = wk->fm;
  ext2_extent_handle_t handle;
  struct ext2fs_extent e;
  uint64_t next_lblk = 0, bs = wk->blocksize;
  int op = EXT2_EXTENT_ROOT, r = -1;
  errcode_t err;

  err = ext2fs_extent_open2 (wk->fs, ino, inode, &handle);
  if (err) {
    filemap_error (fm, "extent tree: %s", ext4_strerror (err));
    return -1;
  }
  for (;;) {
    err = ext2fs_extent_get (handle, op, &e);
    op = EXT2_EXTENT_NEXT;
    if (err == EXT2_ET_EXTENT_NO_NEXT)
      break;
    if (err) {
      filemap_error (fm, "extent tree: %s", ext4_strerror (err));
      goto out;
    }
    if (!(e.e_flags & EXT2_EXTENT_FLAGS_LEAF)) {
      /* An index entry, seen on the way down (claim its child node)
       * and again on the way back up.
       */
      if (!(e.e_flags & EXT2_EXTENT_FLAGS_SECOND_VISIT) &&
          claim_node (wk, e.e_pblk) == -1)
        goto out;
      continue;
    }
    if (e.e_lblk >= nr_blocks)
      break;
    if (e.e_len == 0 || e.e_lblk < next_lblk ||
        !valid_blocks (wk, e.e_pblk, e.e_len)) {
      filemap_error (fm,
                     "extent at block %llu (%u blocks at %llu) is "
                     "empty, out of order or outside the file system "
                     "(corrupt file system?)",
                     (unsigned long long) e.e_lblk, e.e_len,
                     (unsigned long long) e.e_pblk);
      goto out;
    }
    next_lblk = e.e_lblk + e.e_len;
    /* Allocated but never written: reads as zeros, like a hole. */
    if (e.e_flags & EXT2_EXTENT_FLAGS_UNINIT)
      continue;
    if (filemap_file_run (fm, e.e_lblk * bs, e.e_pblk * bs, e.e_len * bs) == -1)
      goto out;
  }
  r = 0;

out:
  ext2fs_extent_free (handle);
  return r;
}

/* What map_blocks' callback needs. */
struct ext4_blocks {
  struct ext4_walk *wk;
  uint64_t nr_blocks;
  bool failed;
};

/* ext2fs_block_iterate3's callback: indirect blocks (blockcnt < 0) are
 * claimed, data blocks become runs.  Data comes in logical order, so
 * the first block beyond the file's end ends the walk.
 */
static int
map_block (ext2_filsys fs, blk64_t *blocknr, e2_blkcnt_t blockcnt,
           blk64_t ref_blk, int ref_offset, void *priv)
{
  struct ext4_blocks *b = priv;
  struct ext4_walk *wk = b->wk;
  uint64_t bs = wk->blocksize;

  (void) fs;
  (void) ref_blk;
  (void) ref_offset;
  if (blockcnt < 0) {
    /* Called for holes in the map too. */
    if (*blocknr != 0 && claim_node (wk, *blocknr) == -1) {
      b->failed = true;
      return BLOCK_ABORT;
    }
    return 0;
  }
  if ((uint64_t) blockcnt >= b->nr_blocks)
    return BLOCK_ABORT;
  if (!valid_blocks (wk, *blocknr, 1)) {
    filemap_error (wk->fm,
                   "block %lld is at %llu, outside the file system "
                   "(corrupt file system?)",
                   (long long) blockcnt, (unsigned long long) *blocknr);
    b->failed = true;
    return BLOCK_ABORT;
  }
  if (filemap_file_run (wk->fm, blockcnt * bs, *blocknr * bs, bs) == -1) {
    b->failed = true;
    return BLOCK_ABORT;
  }
  return 0;
}

/* A file with the classic block map (direct and indirect blocks). */
static int
map_blocks (struct ext4_walk *wk, ext2_ino_t ino, uint64_t nr_blocks)
{
  struct ext4_blocks b = { .wk = wk, .nr_blocks = nr_blocks };
  errcode_t err;

  err = ext2fs_block_iterate3 (wk->fs, ino, BLOCK_FLAG_READ_ONLY, wk->block_buf,
                               map_block, &b);
  if (b.failed)
    return -1;
  if (err) {
    filemap_error (wk->fm, "block map: %s", ext4_strerror (err));
    return -1;
  }
  return 0;
}

/* Little-endian fields of the in-inode attribute area. */
static uint32_t
get_le16 (const unsigned char *p)
{
  return p[0] | (uint32_t) p[1] << 8;
}

static uint32_t
get_le32 (const unsigned char *p)
{
  return get_le16 (p) | get_le16 (p + 2) << 16;
}

/* A file whose bytes are in its inode (EXT4_INLINE_DATA_FL): the first
 * 60 in i_block, the rest in the value of its system.data attribute,
 * in the inode's space after its i_extra_isize bytes.  Both runs are
 * mapped where they lie in the inode table, so that a version's diff
 * and readahead see these files like any other.  The inode is
 * untrusted: the attribute must lie inside it and hold exactly the
 * bytes the file's size leaves after i_block.
 */
static int
map_inline (struct ext4_walk *wk, ext2_ino_t ino, uint64_t size)
{
  struct filemap *fm = wk->fm;
  ext2_filsys fs = wk->fs;
  unsigned isize = EXT2_INODE_SIZE (fs->super), extra, pos, start;
  uint32_t ipg = fs->super->s_inodes_per_group;
  blk64_t table = ext2fs_inode_table_loc (fs, (ino - 1) / ipg);
  uint64_t at,
      head =
          size < EXT4_MIN_INLINE_DATA_SIZE ? size : EXT4_MIN_INLINE_DATA_SIZE;
  const unsigned char *raw = wk->inode_buf;
  errcode_t err;

  if (!valid_blocks (wk, table, fs->inode_blocks_per_group)) {
    filemap_error (fm,
                   "the inode table of inode %u is outside the file "
                   "system (corrupt file system?)",
                   ino);
    return -1;
  }
  at = table * wk->blocksize + (uint64_t) ((ino - 1) % ipg) * isize;
  if (filemap_file_run (fm, 0, at + offsetof (struct ext2_inode, i_block),
                        head) == -1)
    return -1;
  if (size <= EXT4_MIN_INLINE_DATA_SIZE)
    return 0;

  err = ext2fs_read_inode_full (fs, ino, (struct ext2_inode *) wk->inode_buf,
                                isize);
  if (err) {
    filemap_error (fm, "inode %u: %s", ino, ext4_strerror (err));
    return -1;
  }
  extra = isize > EXT2_GOOD_OLD_INODE_SIZE
      ? ((struct ext2_inode_large *) wk->inode_buf)->i_extra_isize
      : 0;
  start = EXT2_GOOD_OLD_INODE_SIZE + extra + 4; /* after the magic */
  if (start <= isize && get_le32 (raw + start - 4) == EXT2_EXT_ATTR_MAGIC) {
    for (pos = start; pos + 16 <= isize && get_le32 (raw + pos) != 0;) {
      unsigned name_len = raw[pos], len = (16 + name_len + 3) & ~3u;
      uint32_t offs = get_le16 (raw + pos + 2), value_size;

      if (pos + len > isize)
        break;
      value_size = get_le32 (raw + pos + 8);
      if (raw[pos + 1] == 7 /* system. */ && name_len == 4 &&
          memcmp (raw + pos + 16, "data", 4) == 0) {
        if (get_le32 (raw + pos + 4) != 0 /* not in an EA inode */ ||
            value_size != size - EXT4_MIN_INLINE_DATA_SIZE ||
            (uint64_t) start + offs + value_size > isize)
          break;
        return filemap_file_run (fm, EXT4_MIN_INLINE_DATA_SIZE,
                                 at + start + offs, value_size);
      }
      pos += len;
    }
  }
  filemap_error (fm,
                 "inode %u: inline data of %" PRIu64 " bytes without "
                 "an attribute that holds them (corrupt file system?)",
                 ino, size);
  return -1;
}

/* One regular file at the current path. */
static int
map_file (struct ext4_walk *wk, ext2_ino_t ino, struct ext2_inode *inode)
{
  struct filemap *fm = wk->fm;
  uint64_t size = EXT2_I_SIZE (inode), nr_blocks;
  bool linked = inode->i_links_count > 1, done;
  int r = 0;

  if (inode->i_flags & EXT4_ENCRYPT_FL) {
    filemap_debug (fm, "left out (encrypted)");
    fm->stats->nr_skipped++;
    return 0;
  }
  if (linked) {
    if (filemap_replay (fm, ino, &done) == -1)
      return -1;
    if (done)
      return 0;
  }
  if (filemap_file_begin (fm, size, inode->i_mode, linked, ino) == -1)
    return -1;
  nr_blocks = size / wk->blocksize + (size % wk->blocksize != 0);
  if (inode->i_flags & EXT4_INLINE_DATA_FL)
    r = map_inline (wk, ino, size);
  else if (nr_blocks > 0 && (inode->i_flags & EXT4_EXTENTS_FL))
    r = map_extents (wk, ino, inode, nr_blocks);
  else if (nr_blocks > 0 && ext2fs_inode_has_valid_blocks2 (wk->fs, inode))
    r = map_blocks (wk, ino, nr_blocks);
  if (r == -1)
    return -1;
  return filemap_file_end (fm);
}

/* ext2fs_dir_iterate2's callback: map regular files now, keep
 * subdirectories for after the iteration, skip the rest.
 */
static int
dir_entry (ext2_ino_t dir, int entry, struct ext2_dir_entry *dirent, int offset,
           int blocksize, char *buf, void *priv)
{
  struct ext4_dir *d = priv;
  struct ext4_walk *wk = d->wk;
  struct filemap *fm = wk->fm;
  const char *name = dirent->name;
  size_t len = ext2fs_dirent_name_len (dirent), saved;
  struct ext2_inode inode;
  errcode_t err;
  int r = 0;

  (void) dir;
  (void) entry;
  (void) offset;
  (void) blocksize;
  (void) buf;
  if ((len == 1 && name[0] == '.') ||
      (len == 2 && name[0] == '.' && name[1] == '.'))
    return 0;
  if (filemap_count_entry (fm) == -1 ||
      filemap_enter (fm, name, len, EXT2_NAME_LEN, &saved) == -1)
    goto err;
  err = ext2fs_read_inode (wk->fs, dirent->inode, &inode);
  if (err) {
    filemap_error (fm, "inode %u: %s", dirent->inode, ext4_strerror (err));
    r = -1;
  }
  else if (LINUX_S_ISREG (inode.i_mode))
    r = map_file (wk, dirent->inode, &inode);
  else if (LINUX_S_ISDIR (inode.i_mode) && (inode.i_flags & EXT4_ENCRYPT_FL)) {
    filemap_debug (fm, "encrypted directory left out");
    fm->stats->nr_skipped++;
  }
  else if (LINUX_S_ISDIR (inode.i_mode))
    r = filemap_subdirs_add (fm, &d->subdirs, dirent->inode, name, len);
  filemap_leave (fm, saved);
  if (r == 0)
    return 0;

err:
  d->failed = true;
  return DIRENT_ABORT;
}

/* Read directory ino (at the current path), then visit its
 * subdirectories.  NB: recursion depth is bounded by the path length
 * cap; each level adds at least two bytes.
 */
static int
walk_dir (struct ext4_walk *wk, ext2_ino_t ino)
{
  struct filemap *fm = wk->fm;
  struct ext4_dir d = { .wk = wk };
  errcode_t err;
  size_t i, saved;
  int r = -1;

  if (ext2fs_test_inode_bitmap2 (wk->dirs_seen, ino)) {
    filemap_error (fm,
                   "directory inode %u is reached twice (a loop in "
                   "the directory tree?)",
                   ino);
    return -1;
  }
  ext2fs_mark_inode_bitmap2 (wk->dirs_seen, ino);
  err = ext2fs_dir_iterate2 (wk->fs, ino, 0, wk->dir_buf, dir_entry, &d);
  if (d.failed)
    goto out;
  if (err) {
    filemap_error (fm, "reading the directory: %s", ext4_strerror (err));
    goto out;
  }
  for (i = 0; i < d.subdirs.len; ++i) {
    const struct filemap_subdir *s = &d.subdirs.items[i];

    if (filemap_enter (fm, d.subdirs.names + s->name_offset, s->name_len,
                       EXT2_NAME_LEN, &saved) == -1)
      goto out;
    if (walk_dir (wk, s->key) == -1)
      goto out;
    filemap_leave (fm, saved);
  }
  r = 0;

out:
  filemap_subdirs_free (&d.subdirs);
  return r;
}

/* Everything that can be checked before the walk: the file system fits
 * in the image (truncation shows here) and is clean, its group
 * descriptors are sane.  NB: the size check also bounds the bitmaps
 * allocated after it.
 */
static int
check_fs (struct ext4_walk *wk)
{
  struct filemap *fm = wk->fm;
  struct ext2_super_block *sb = wk->fs->super;
  errcode_t err;

  wk->blocksize = wk->fs->blocksize;
  wk->blocks_count = ext2fs_blocks_count (sb);
  wk->first_data_block = sb->s_first_data_block;
  if (wk->blocks_count > fm->image_size / wk->blocksize) {
    report_error ("%s: ext4: the file system (%llu blocks of %u bytes) is "
                  "larger than the image (%" PRIu64 " bytes): truncated "
                  "image?",
                  fm->image, (unsigned long long) wk->blocks_count,
                  wk->blocksize, fm->image_size);
    return -1;
  }
  if (ext2fs_has_feature_journal_needs_recovery (sb)) {
    report_error ("%s: ext4: the journal needs recovery (the file system "
                  "was not unmounted cleanly): run e2fsck on the image "
                  "first",
                  fm->image);
    return -1;
  }
  err = ext2fs_check_desc (wk->fs);
  if (err) {
    report_error ("%s: ext4: group descriptors: %s", fm->image,
                  ext4_strerror (err));
    return -1;
  }
  return 0;
}

/* Allocate what the walk needs; libext2fs sizes the bitmaps from the
 * superblock, already checked against the image.  Block granularity
 * (subcluster) even with bigalloc: nodes are blocks.
 */
static int
alloc_walk (struct ext4_walk *wk)
{
  errcode_t err;

  err = ext2fs_allocate_inode_bitmap (wk->fs, "directories", &wk->dirs_seen);
  if (!err)
    err = ext2fs_allocate_subcluster_bitmap (wk->fs, "block map blocks",
                                             &wk->nodes_seen);
  if (err) {
    report_error ("%s: ext4: allocating bitmaps: %s", wk->fm->image,
                  ext4_strerror (err));
    return -1;
  }
  wk->dir_buf = malloc (wk->blocksize);
  wk->block_buf = malloc (3 * (size_t) wk->blocksize);
  wk->inode_buf = malloc (EXT2_INODE_SIZE (wk->fs->super));
  if (wk->dir_buf == NULL || wk->block_buf == NULL || wk->inode_buf == NULL) {
    report_error ("%s: ext4: malloc: %m", wk->fm->image);
    return -1;
  }
  return 0;
}

/* Open read-only (no EXT2_FLAG_RW: libext2fs then never writes), walk
 * from the root, close.
 */
int
filemap_ext4 (struct filemap *fm)
{
  struct ext4_walk wk = { .fm = fm };
  struct ext2_inode root;
  errcode_t err;
  int r = -1;

  initialize_ext2_error_table ();
  err = ext2fs_open2 (fm->image, NULL, EXT2_FLAG_64BITS, 0, 0, unix_io_manager,
                      &wk.fs);
  if (err) {
    report_error ("%s: ext4: cannot open the file system: %s", fm->image,
                  ext4_strerror (err));
    return -1;
  }
  if (check_fs (&wk) == -1 || alloc_walk (&wk) == -1)
    goto out;
  err = ext2fs_read_inode (wk.fs, EXT2_ROOT_INO, &root);
  if (err) {
    report_error ("%s: ext4: root directory: %s", fm->image,
                  ext4_strerror (err));
    goto out;
  }
  if (!LINUX_S_ISDIR (root.i_mode)) {
    report_error ("%s: ext4: the root inode is not a directory (corrupt "
                  "file system?)",
                  fm->image);
    goto out;
  }
  r = walk_dir (&wk, EXT2_ROOT_INO);

out:
  free (wk.dir_buf);
  free (wk.block_buf);
  free (wk.inode_buf);
  if (wk.dirs_seen)
    ext2fs_free_inode_bitmap (wk.dirs_seen);
  if (wk.nodes_seen)
    ext2fs_free_block_bitmap (wk.nodes_seen);
  ext2fs_close_free (&wk.fs);
  return r;
}
