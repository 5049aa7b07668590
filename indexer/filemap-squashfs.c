/* accel-index: the file map of a squashfs image (libsquashfuse).
 *
 * squashfs stores a regular file as a list of data blocks (each
 * compressed or stored as is, or sparse: all zeros, not stored) and an
 * optional fragment holding its tail together with other files' tails.
 * Only blocks stored uncompressed are bytes of the file in the image,
 * so only they get extents; sparse blocks are holes; compressed blocks
 * and fragments are counted as unmapped.  An image meant for file-level
 * prefetch should be built with uncompressed data and no fragments:
 *
 *   mksquashfs SRC IMAGE -noappend -noD -no-fragments
 *
 * (metadata may stay compressed).  Blocks that do not compress are
 * stored as is even without -noD, so any image gets some extents.
 *
 * libsquashfuse (Debian 12 ships 0.1.105) reads the metadata, but it
 * trusts the image: a reference to an offset beyond its metadata block,
 * a name longer than its buffer or a table index past its table makes
 * it read or write out of bounds.  So this file checks, before each
 * call, what the library would trust: the superblock's tables lie
 * inside the image (read here directly: 96 + 16 bytes), every metadata
 * reference points inside its table and its block, names get a 64 KiB
 * buffer and are then limited to 256 bytes, and the fragment table is
 * never used (a fragment is not mapped anyway).  Data block runs are
 * checked to lie between the superblock and the inode table, a
 * directory reached twice is an error, and the number of block list
 * entries read in the whole image is capped.
 */

/* NB: first, since its config.h defines _POSIX_C_SOURCE, which glibc's
 * features.h then raises to what _GNU_SOURCE wants.
 */
#include <squashfuse.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "filemap-internal.h"
#include "report.h"

/* The superblock and the table that leads to the xattr table. */
#define SB_SIZE 96
#define XATTR_ID_TABLE_SIZE 16

/* Both optional tables are absent when their start is all ones. */
#define NO_TABLE UINT64_MAX

/* sqfs_dir_next copies a name of up to 65536 bytes (a 16-bit size + 1)
 * into the caller's buffer, whatever SQUASHFS_NAME_LEN says.
 */
#define NAME_BUF_SIZE (65536 + 8)

/* Block list entries (4 bytes of metadata each) read in one image: at
 * 4 KiB blocks, 4 TiB of file data.
 */
#define MAX_BLOCK_ENTRIES (UINT64_C (1) << 30)

/* One walk of one file system. */
struct sqfs_walk {
  struct filemap *fm;
  sqfs fs;
  bool fs_open; /* sqfs_init succeeded */
  uint64_t bytes_used, block_size;
  uint64_t inode_table, dir_table; /* where the tables start */
  uint64_t root; /* root directory's inode reference */
  uint64_t nr_block_entries;
  struct filemap_table dirs_seen; /* inode references of directories */
  char *name_buf;
};

/* Little-endian fields of the on-disk superblock. */
static uint16_t
le16 (const unsigned char *p)
{
  return p[0] | p[1] << 8;
}

static uint32_t
le32 (const unsigned char *p)
{
  return (uint32_t) le16 (p) | (uint32_t) le16 (p + 2) << 16;
}

static uint64_t
le64 (const unsigned char *p)
{
  return (uint64_t) le32 (p) | (uint64_t) le32 (p + 4) << 32;
}

/* Read exactly len bytes at offset; -1 (error reported) on a short read. */
static int
read_at (struct filemap *fm, void *buf, size_t len, uint64_t offset)
{
  ssize_t r;

  do
    r = pread (fm->fd, buf, len, offset);
  while (r == -1 && errno == EINTR);
  if (r == -1) {
    report_error ("%s: squashfs: read: %m", fm->image);
    return -1;
  }
  if ((size_t) r != len) {
    report_error ("%s: squashfs: the superblock points beyond the end of "
                  "the image (truncated image?)",
                  fm->image);
    return -1;
  }
  return 0;
}

/* sqfs_init reads the index of a table of count entries of size bytes
 * (one 8-byte pointer per 8 KiB metadata block) at start: it must be in
 * the file system.
 */
static bool
table_fits (const struct sqfs_walk *wk, uint64_t start, uint64_t count,
            uint64_t size)
{
  uint64_t index =
      (count * size + SQUASHFS_METADATA_SIZE - 1) / SQUASHFS_METADATA_SIZE * 8;

  return count == 0 ||
      (start <= wk->bytes_used && index <= wk->bytes_used - start);
}

/* Check the superblock before libsquashfuse sees it: version, block
 * size, compression, and every table it reads at sqfs_init inside the
 * file system, and the file system inside the image.
 */
static int
check_super (struct sqfs_walk *wk)
{
  struct filemap *fm = wk->fm;
  unsigned char sb[SB_SIZE], xt[XATTR_ID_TABLE_SIZE];
  uint32_t block_size, fragments, inodes;
  uint16_t compression, block_log, no_ids;
  uint64_t id_table, xattr_table, frag_table, lookup_table;

  if (fm->image_size < SB_SIZE) {
    report_error ("%s: squashfs: image too small for a superblock", fm->image);
    return -1;
  }
  if (read_at (fm, sb, SB_SIZE, 0) == -1)
    return -1;
  inodes = le32 (sb + 4);
  block_size = le32 (sb + 12);
  fragments = le32 (sb + 16);
  compression = le16 (sb + 20);
  block_log = le16 (sb + 22);
  no_ids = le16 (sb + 26);
  wk->root = le64 (sb + 32);
  wk->bytes_used = le64 (sb + 40);
  id_table = le64 (sb + 48);
  xattr_table = le64 (sb + 56);
  wk->inode_table = le64 (sb + 64);
  wk->dir_table = le64 (sb + 72);
  frag_table = le64 (sb + 80);
  lookup_table = le64 (sb + 88);
  wk->block_size = block_size;

  if (le32 (sb) != SQUASHFS_MAGIC || le16 (sb + 28) != 4 ||
      le16 (sb + 30) != 0) {
    report_error ("%s: squashfs: not a squashfs 4.0 file system (version "
                  "%u.%u)",
                  fm->image, le16 (sb + 28), le16 (sb + 30));
    return -1;
  }
  if (block_size < 4096 || block_size > SQUASHFS_FILE_MAX_SIZE ||
      (block_size & (block_size - 1)) != 0 || block_log >= 32 ||
      UINT32_C (1) << block_log != block_size ||
      compression < ZLIB_COMPRESSION || compression > ZSTD_COMPRESSION) {
    report_error ("%s: squashfs: bad block size (%" PRIu32 ", log %u) or "
                  "compression (%u) in the superblock",
                  fm->image, block_size, block_log, compression);
    return -1;
  }
  if (wk->bytes_used > fm->image_size) {
    report_error ("%s: squashfs: the file system (%" PRIu64 " bytes) is "
                  "larger than the image (%" PRIu64 " bytes): truncated "
                  "image?",
                  fm->image, wk->bytes_used, fm->image_size);
    return -1;
  }
  if (wk->inode_table < SB_SIZE || wk->inode_table >= wk->dir_table ||
      wk->dir_table > wk->bytes_used || !table_fits (wk, id_table, no_ids, 4) ||
      !table_fits (wk, frag_table, fragments, 16) ||
      (lookup_table != NO_TABLE && !table_fits (wk, lookup_table, inodes, 8)) ||
      (xattr_table != NO_TABLE &&
       (xattr_table > wk->bytes_used ||
        XATTR_ID_TABLE_SIZE > wk->bytes_used - xattr_table))) {
    report_error ("%s: squashfs: the superblock's tables are out of order "
                  "or beyond the end of the file system",
                  fm->image);
    return -1;
  }
  /* The xattr table's own header gives the size of its index. */
  if (xattr_table != NO_TABLE) {
    if (read_at (fm, xt, sizeof xt, xattr_table) == -1)
      return -1;
    if (!table_fits (wk, xattr_table + XATTR_ID_TABLE_SIZE, le32 (xt + 8),
                     16)) {
      report_error ("%s: squashfs: the xattr table is beyond the end of the "
                    "file system",
                    fm->image);
      return -1;
    }
  }
  return 0;
}

/* A reference into a metadata table starting at table (inode or
 * directory table, which ends at end): the metadata block at byte block
 * of the table must start inside it and offset must be inside that
 * block once decompressed.  NB: libsquashfuse checks neither, and its
 * block cache takes position 0 for an empty slot, which table >=
 * SB_SIZE rules out.
 */
static int
check_ref (struct sqfs_walk *wk, uint64_t table, uint64_t end, uint64_t block,
           uint64_t offset, const char *what)
{
  sqfs_off_t pos;
  sqfs_block *b;

  if (block >= end - table) {
    filemap_error (wk->fm,
                   "%s reference (block %" PRIu64 ") is outside "
                   "its table (corrupt file system?)",
                   what, block);
    return -1;
  }
  pos = table + block;
  if (sqfs_md_cache (&wk->fs, &pos, &b) != SQFS_OK) {
    filemap_error (wk->fm,
                   "cannot read or decompress the metadata block "
                   "at %" PRIu64 " (corrupt file system?)",
                   table + block);
    return -1;
  }
  if (offset >= b->size) {
    filemap_error (wk->fm,
                   "%s reference (offset %" PRIu64 ") is outside "
                   "its metadata block of %zu bytes (corrupt file system?)",
                   what, offset, b->size);
    return -1;
  }
  return 0;
}

/* Read the inode with reference id (in the inode table, checked). */
static int
get_inode (struct sqfs_walk *wk, uint64_t id, sqfs_inode *inode)
{
  if (check_ref (wk, wk->inode_table, wk->dir_table, id >> 16, id & 0xffff,
                 "inode") == -1)
    return -1;
  if (sqfs_inode_get (&wk->fs, inode, id) != SQFS_OK) {
    filemap_error (wk->fm,
                   "cannot read the inode at reference %#" PRIx64
                   " (corrupt file system?)",
                   id);
    return -1;
  }
  return 0;
}

/* Check one entry of a file's block list and map it.  pos is the
 * block's offset in the file, start and stored where and how it is
 * stored in the image.
 */
static int
map_block (struct sqfs_walk *wk, uint64_t size, uint64_t pos, uint64_t start,
           uint32_t header)
{
  struct filemap *fm = wk->fm;
  bool compressed = !(header & SQUASHFS_COMPRESSED_BIT_BLOCK);
  uint64_t stored = header & ~SQUASHFS_COMPRESSED_BIT_BLOCK;
  uint64_t want = size - pos < wk->block_size ? size - pos : wk->block_size;

  if (stored > wk->block_size || start < SB_SIZE || start > wk->inode_table ||
      stored > wk->inode_table - start) {
    filemap_error (fm,
                   "data block at file offset %" PRIu64 " (%" PRIu64
                   " bytes at %" PRIu64 ") is larger than a block or "
                   "outside the data area (corrupt file system?)",
                   pos, stored, start);
    return -1;
  }
  /* Sparse: all zeros, not stored. */
  if (stored == 0)
    return 0;
  if (compressed) {
    filemap_file_unmapped (fm, want);
    return 0;
  }
  if (stored != want) {
    filemap_error (fm,
                   "uncompressed data block at file offset %" PRIu64
                   " has %" PRIu64 " bytes, not %" PRIu64 " (corrupt file "
                   "system?)",
                   pos, stored, want);
    return -1;
  }
  return filemap_file_run (fm, pos, start, stored);
}

/* One regular file at the current path: its data blocks, then the tail
 * in a fragment if it has one.
 */
static int
map_file (struct sqfs_walk *wk, uint64_t id, sqfs_inode *inode)
{
  struct filemap *fm = wk->fm;
  uint64_t size = inode->xtra.reg.file_size, nr_blocks;
  bool linked = inode->nlink > 1, done;
  sqfs_blocklist bl;

  if (linked) {
    if (filemap_replay (fm, id, &done) == -1)
      return -1;
    if (done)
      return 0;
  }
  if (filemap_file_begin (fm, size, inode->base.mode, linked, id) == -1)
    return -1;
  nr_blocks = sqfs_blocklist_count (&wk->fs, inode);
  if (nr_blocks > MAX_BLOCK_ENTRIES - wk->nr_block_entries) {
    filemap_error (fm, "more than %" PRIu64 " data blocks in the image",
                   MAX_BLOCK_ENTRIES);
    return -1;
  }
  wk->nr_block_entries += nr_blocks;
  sqfs_blocklist_init (&wk->fs, inode, &bl);
  while (bl.remain > 0) {
    if (sqfs_blocklist_next (&bl) != SQFS_OK) {
      filemap_error (fm,
                     "cannot read the block list (corrupt file "
                     "system?)");
      return -1;
    }
    if (map_block (wk, size, bl.pos, bl.block, bl.header) == -1)
      return -1;
  }
  if (inode->xtra.reg.frag_idx != SQUASHFS_INVALID_FRAG)
    filemap_file_unmapped (fm, size % wk->block_size);
  return filemap_file_end (fm);
}

/* One entry of a directory being read (name at the current path). */
static int
visit_entry (struct sqfs_walk *wk, struct filemap_subdirs *subdirs,
             const sqfs_dir_entry *entry)
{
  struct filemap *fm = wk->fm;
  uint64_t id = entry->inode;
  sqfs_inode inode;

  if (get_inode (wk, id, &inode) == -1)
    return -1;
  if (S_ISREG (inode.base.mode))
    return map_file (wk, id, &inode);
  if (S_ISDIR (inode.base.mode))
    return filemap_subdirs_add (fm, subdirs, id, entry->name, entry->name_size);
  return 0;
}

/* Read directory dir (reference id, at the current path), then visit
 * its subdirectories.  NB: recursion depth is bounded by the path
 * length cap; each level adds at least two bytes.
 */
static int
walk_dir (struct sqfs_walk *wk, uint64_t id, sqfs_inode *dir)
{
  struct filemap *fm = wk->fm;
  struct filemap_subdirs subdirs = { 0 };
  sqfs_dir_entry entry;
  sqfs_inode child;
  sqfs_dir d;
  sqfs_err err;
  size_t i, saved;
  int r = -1;

  if (filemap_table_find (&wk->dirs_seen, id) != NULL) {
    filemap_error (fm,
                   "the directory at inode reference %#" PRIx64
                   " is reached twice (a loop in the directory tree?)",
                   id);
    return -1;
  }
  if (filemap_table_insert (fm, &wk->dirs_seen, id, wk) == -1)
    return -1;
  /* sqfs_dir_next reads nothing from a directory of 3 bytes or less. */
  if (dir->xtra.dir.dir_size > 3 &&
      check_ref (wk, wk->dir_table, wk->bytes_used, dir->xtra.dir.start_block,
                 dir->xtra.dir.offset, "directory") == -1)
    return -1;
  if (sqfs_dir_open (&wk->fs, dir, &d, 0) != SQFS_OK) {
    filemap_error (fm, "cannot open the directory (corrupt file system?)");
    return -1;
  }
  sqfs_dentry_init (&entry, wk->name_buf);
  while (sqfs_dir_next (&wk->fs, &d, &entry, &err)) {
    const char *name = entry.name;
    size_t len = entry.name_size;

    if (d.offset > d.total) {
      filemap_error (fm,
                     "directory entries run past the directory's size "
                     "(corrupt file system?)");
      goto out;
    }
    if ((len == 1 && name[0] == '.') ||
        (len == 2 && name[0] == '.' && name[1] == '.'))
      continue;
    if (filemap_count_entry (fm) == -1 ||
        filemap_enter (fm, name, len, SQUASHFS_NAME_LEN, &saved) == -1)
      goto out;
    if (visit_entry (wk, &subdirs, &entry) == -1)
      goto out;
    filemap_leave (fm, saved);
  }
  if (err != SQFS_OK) {
    filemap_error (fm, "cannot read the directory (corrupt file system?)");
    goto out;
  }
  for (i = 0; i < subdirs.len; ++i) {
    const struct filemap_subdir *s = &subdirs.items[i];

    if (filemap_enter (fm, subdirs.names + s->name_offset, s->name_len,
                       SQUASHFS_NAME_LEN, &saved) == -1 ||
        get_inode (wk, s->key, &child) == -1 ||
        walk_dir (wk, s->key, &child) == -1)
      goto out;
    filemap_leave (fm, saved);
  }
  r = 0;

out:
  filemap_subdirs_free (&subdirs);
  return r;
}

/* Check the superblock, let libsquashfuse read it too (on our fd), walk
 * from the root.
 */
int
filemap_squashfs (struct filemap *fm)
{
  struct sqfs_walk wk = { .fm = fm };
  sqfs_inode root;
  sqfs_err err;
  int r = -1;

  if (check_super (&wk) == -1)
    return -1;
  err = sqfs_init (&wk.fs, fm->fd, 0);
  if (err != SQFS_OK) {
    report_error ("%s: squashfs: cannot open the file system: %s", fm->image,
                  err == SQFS_BADCOMP
                      ? "unsupported compression"
                      : "unreadable superblock or tables (corrupt file "
                        "system?)");
    return -1;
  }
  wk.fs_open = true;
  report_debug (
      "%s: squashfs: %" PRIu64 "-byte blocks, data %s, %s", fm->image,
      wk.block_size,
      wk.fs.sb.flags & (1 << SQUASHFS_NOD) ? "uncompressed" : "compressed",
      wk.fs.sb.flags & (1 << SQUASHFS_NO_FRAG) ? "no fragments" : "fragments");
  wk.name_buf = malloc (NAME_BUF_SIZE);
  if (wk.name_buf == NULL) {
    report_error ("%s: squashfs: malloc: %m", fm->image);
    goto out;
  }
  if (get_inode (&wk, wk.root, &root) == -1)
    goto out;
  if (!S_ISDIR (root.base.mode)) {
    report_error ("%s: squashfs: the root inode is not a directory (corrupt "
                  "file system?)",
                  fm->image);
    goto out;
  }
  r = walk_dir (&wk, wk.root, &root);

out:
  free (wk.name_buf);
  filemap_table_free (&wk.dirs_seen, NULL);
  if (wk.fs_open)
    sqfs_destroy (&wk.fs);
  return r;
}
