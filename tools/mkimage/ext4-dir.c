/* accel-mkimage: write a directory's entries in one pass.
 *
 * ext2fs_link (and ext2fs_mkdir and ext2fs_symlink, which look the name
 * up first) read the whole directory for every entry they add: a
 * directory of n entries costs O(n^2) block reads, hours for the
 * million-file directories of some ML data sets (mke2fs -d has the same
 * problem).  Instead the populating code creates each entry's inode
 * without linking it, collects (name, inode, type) here in walk order,
 * and once the directory's last entry is known, ext4_dir_write packs
 * them into blocks in that order: the directory's existing blocks
 * first (mkdir's block with "." and "..", lost+found's empty ones),
 * then new ones allocated one after another, so that a big directory
 * is contiguous.  The last entry of each block stretches to its end
 * (or to the checksum tail, with metadata_csum), as ext4 requires.
 *
 * The result is the linear (unindexed) layout ext2fs_link would make
 * with the same order, minus the scattering of its blocks.
 *
 * A directory of more than one block is made in one run: its first
 * block (mkdir's, made among its siblings' when its parent was filled)
 * moves to just after its files, the rest follows, and one empty block
 * more is added for e2fsck -D, whose index root takes a block (else it
 * would allocate that block wherever it finds one).  Adding names to
 * an indexed directory rewrites all its blocks (they are sorted by
 * name hash), so in the next version such a directory costs the chunk
 * its run is in, not three scattered ones.  A kept directory's blocks
 * are the base's and do not move.
 */

#include <stdlib.h>
#include <string.h>

#include <ext2fs/ext2_err.h>
#include <ext2fs/ext2fs.h>

#include "report.h"
#include "mkimage.h"
#include "ext4.h"

/* The link count ext4 allows a directory before dir_nlink's "1". */
#define EXT4_LINK_MAX 65000

errcode_t
ext4_dir_init (ext2_filsys fs, struct ext4_dir *d, ext2_ino_t ino)
{
  struct ext2_inode inode;
  errcode_t err;

  memset (d, 0, sizeof *d);
  d->ino = ino;
  err = ext2fs_read_inode (fs, ino, &inode);
  if (err == 0)
    d->links_at_start = inode.i_links_count;
  return err;
}

void
ext4_dir_clear (struct ext4_dir *d)
{
  size_t i;

  for (i = 0; i < d->len; i++)
    free (d->v[i].name);
  free (d->v);
  memset (d, 0, sizeof *d);
}

errcode_t
ext4_dir_add (struct ext4_dir *d, const char *name, ext2_ino_t ino, int type)
{
  if (strlen (name) > EXT2_NAME_LEN)
    return EXT2_ET_INVALID_ARGUMENT;
  if (d->len == d->cap) {
    size_t cap = d->cap ? d->cap * 2 : 64;
    struct ext4_dir_entry *v = realloc (d->v, cap * sizeof *v);

    if (v == NULL)
      return EXT2_ET_NO_MEMORY;
    d->v = v;
    d->cap = cap;
  }
  d->v[d->len].name = strdup (name);
  if (d->v[d->len].name == NULL)
    return EXT2_ET_NO_MEMORY;
  d->v[d->len].ino = ino;
  d->v[d->len].type = type;
  d->len++;
  if (type == EXT2_FT_DIR)
    d->nsubdirs++;
  return 0;
}

/* Where the next entry of an existing block goes: after its last
 * entry, or at 0 if the block holds only an empty entry.  *last is set
 * to the last entry's offset, or -1.
 */
static errcode_t
block_end (ext2_filsys fs, char *buf, unsigned limit, unsigned *off, int *last)
{
  unsigned pos = 0, rec_len;
  struct ext2_dir_entry *e;
  errcode_t err;

  for (;;) {
    e = (struct ext2_dir_entry *) (buf + pos);
    err = ext2fs_get_rec_len (fs, e, &rec_len);
    if (err)
      return err;
    if (rec_len < 8 || pos + rec_len > limit)
      return EXT2_ET_DIR_CORRUPTED;
    if (pos + rec_len == limit)
      break;
    pos += rec_len;
  }
  if (pos == 0 && e->inode == 0) {
    *off = 0;
    *last = -1;
  }
  else {
    *off = pos + EXT2_DIR_REC_LEN (ext2fs_dirent_name_len (e));
    *last = pos;
  }
  return 0;
}

/* Block lblk of the directory: read if it exists, else allocated
 * (after the previous one) and zeroed.  Sets *pblk, *off and *last.
 */
static errcode_t
load_block (ext2_filsys fs, ext2_ino_t dir, blk64_t lblk, blk64_t existing,
            char *buf, unsigned limit, blk64_t *pblk, unsigned *off, int *last)
{
  errcode_t err;

  *pblk = 0;
  if (lblk < existing) {
    err = ext2fs_bmap2 (fs, dir, NULL, NULL, 0, lblk, NULL, pblk);
    if (err == 0 && *pblk == 0)
      err = EXT2_ET_DIR_CORRUPTED;
    if (err == 0)
      err = ext2fs_read_dir_block4 (fs, *pblk, buf, 0, dir);
    if (err == 0)
      err = block_end (fs, buf, limit, off, last);
    return err;
  }
  err = ext2fs_bmap2 (fs, dir, NULL, NULL, BMAP_ALLOC, lblk, NULL, pblk);
  if (err)
    return err;
  memset (buf, 0, fs->blocksize);
  *off = 0;
  *last = -1;
  return 0;
}

/* The blocks d's entries take after "." and "..", packed in order,
 * plus one for e2fsck -D's index root.
 */
static blk64_t
blocks_needed (const struct ext4_dir *d, unsigned limit)
{
  unsigned used = EXT2_DIR_REC_LEN (1) + EXT2_DIR_REC_LEN (2), rec;
  blk64_t n = 1;
  size_t i;

  for (i = 0; i < d->len; i++) {
    rec = EXT2_DIR_REC_LEN (strlen (d->v[i].name));
    if (used + rec > limit) {
      n++;
      used = 0;
    }
    used += rec;
  }
  return n + 1;
}

/* Move the directory's only block to the first free block from the
 * last data block given out (ext4-alloc.c): after the files just
 * written into it.  A run of n blocks that fits in a chunk but would
 * straddle two starts at the next chunk boundary instead, if the run
 * is free there: the next version that adds names rewrites it all.
 */
static errcode_t
move_first_block (ext2_filsys fs, ext2_ino_t dir, char *buf, blk64_t n)
{
  const struct ext4_alloc *a = fs->priv_data;
  blk64_t old = 0, new, next;
  errcode_t err;

  err = ext2fs_bmap2 (fs, dir, NULL, NULL, 0, 0, NULL, &old);
  if (err == 0 && old == 0)
    err = EXT2_ET_DIR_CORRUPTED;
  if (err == 0)
    err = ext2fs_read_dir_block4 (fs, old, buf, 0, dir);
  if (err == 0)
    err = ext2fs_new_block2 (fs, a->last_blk ? a->last_blk + 1 : 0, NULL, &new);
  if (err)
    return err;
  if (a->chunk_blocks && n <= a->chunk_blocks &&
      new / a->chunk_blocks != (new + n - 1) / a->chunk_blocks) {
    next = (new / a->chunk_blocks + 1) * a->chunk_blocks;
    if (next + n <= ext2fs_blocks_count (fs->super) &&
        ext2fs_test_block_bitmap_range2 (fs->block_map, next, n))
      new = next;
  }
  ext2fs_block_alloc_stats2 (fs, new, +1);
  err = ext2fs_bmap2 (fs, dir, NULL, NULL, BMAP_SET, 0, NULL, &new);
  if (err == 0)
    err = ext2fs_write_dir_block4 (fs, new, buf, 0, dir);
  if (err == 0)
    ext2fs_block_alloc_stats2 (fs, old, -1);
  return err;
}

/* Write the block, with its checksum tail. */
static errcode_t
store_block (ext2_filsys fs, ext2_ino_t dir, blk64_t pblk, char *buf, bool csum)
{
  if (csum)
    ext2fs_initialize_dirent_tail (fs, EXT2_DIRENT_TAIL (buf, fs->blocksize));
  return ext2fs_write_dir_block4 (fs, pblk, buf, 0, dir);
}

/* Block lblk of the directory, empty (one entry of inode 0 that spans
 * it, if it has none yet).
 */
static errcode_t
empty_block (ext2_filsys fs, ext2_ino_t dir, blk64_t lblk, blk64_t existing,
             char *buf, unsigned limit, bool csum)
{
  blk64_t pblk;
  unsigned off;
  int last;
  errcode_t err;

  err = load_block (fs, dir, lblk, existing, buf, limit, &pblk, &off, &last);
  if (err == 0 && last == -1)
    err = ext2fs_set_rec_len (fs, limit, (struct ext2_dir_entry *) buf);
  if (err == 0)
    err = store_block (fs, dir, pblk, buf, csum);
  return err;
}

errcode_t
ext4_dir_write (ext2_filsys fs, struct ext4_dir *d)
{
  bool csum = ext2fs_has_feature_metadata_csum (fs->super);
  unsigned limit =
      fs->blocksize - (csum ? sizeof (struct ext2_dir_entry_tail) : 0);
  struct ext2_inode inode;
  const struct ext4_alloc *a = fs->priv_data;
  blk64_t existing, lblk = 0, pblk, n;
  uint64_t pad;
  unsigned off;
  int last;
  char *buf;
  size_t i;
  errcode_t err;

  err = ext2fs_read_inode (fs, d->ino, &inode);
  if (err)
    return err;
  existing = EXT2_I_SIZE (&inode) / fs->blocksize;
  err = ext2fs_get_mem (fs->blocksize, &buf);
  if (err)
    return err;
  n = blocks_needed (d, limit);
  if (d->movable && existing == 1 && n > 2)
    err = move_first_block (fs, d->ino, buf, n);
  if (err == 0)
    err =
        load_block (fs, d->ino, lblk, existing, buf, limit, &pblk, &off, &last);

  for (i = 0; err == 0 && i < d->len; i++) {
    unsigned len = strlen (d->v[i].name);
    unsigned rec = EXT2_DIR_REC_LEN (len);
    struct ext2_dir_entry *e;

    if (off + rec > limit) {
      err = store_block (fs, d->ino, pblk, buf, csum);
      if (err == 0)
        err = load_block (fs, d->ino, ++lblk, existing, buf, limit, &pblk, &off,
                          &last);
      if (err)
        break;
    }
    /* The previous last entry ends where this one starts. */
    if (last >= 0)
      err = ext2fs_set_rec_len (fs, off - last,
                                (struct ext2_dir_entry *) (buf + last));
    e = (struct ext2_dir_entry *) (buf + off);
    if (err == 0)
      err = ext2fs_set_rec_len (fs, limit - off, e);
    if (err)
      break;
    e->inode = d->v[i].ino;
    ext2fs_dirent_set_name_len (e, len);
    ext2fs_dirent_set_file_type (e, d->v[i].type);
    memcpy (e->name, d->v[i].name, len);
    last = off;
    off += rec;
  }
  if (err == 0)
    err = store_block (fs, d->ino, pblk, buf, csum);
  /* The block for e2fsck -D's index root, if the directory will be
   * indexed.  A kept directory gets the rest of its blocks in the base
   * too: e2fsck -D then writes the index into the same blocks as last
   * time and frees those it does not need, where with fewer it would
   * take the first free block it finds (one the base left free between
   * them, say), and a directory that did not change would move.
   */
  if (err == 0 && lblk > 0) {
    pad =
        1 + (a->base ? ext4_base_reserved_run (a->base, d->ino, lblk + 2) : 0);
    while (err == 0 && pad-- > 0)
      err = empty_block (fs, d->ino, ++lblk, existing, buf, limit, csum);
  }
  ext2fs_free_mem (&buf);
  if (err)
    return err;

  /* bmap has updated the block count; size and link count are ours. */
  err = ext2fs_read_inode (fs, d->ino, &inode);
  if (err)
    return err;
  if (lblk + 1 > existing)
    err = ext2fs_inode_size_set (fs, &inode, (lblk + 1) * fs->blocksize);
  if (err)
    return err;
  /* ext2fs_mkdir counted each subdirectory in a 16-bit field: past
   * the limit, dir_nlink says 1.
   */
  if (d->links_at_start + d->nsubdirs > EXT4_LINK_MAX)
    inode.i_links_count = 1;
  return ext2fs_write_inode (fs, d->ino, &inode);
}
