/* accel-mkimage: where new blocks go.
 *
 * libext2fs asks a callback for every block it allocates, with the
 * inode and logical block it is for (struct blk_alloc_ctx).  Ours
 * decides in this order:
 *
 *  1. A block of a kept file or directory at a logical block it had in
 *     the base layout gets the block it had (ext4-base.c).
 *  2. The first block of a regular file of at least one chunk (the
 *     manifest's chunk size) goes to the first chunk boundary after
 *     which a whole chunk is free, and the rest of the file follows.
 *     Such a file then fills chunks of its own: in the next version
 *     its chunks are the same wherever it is, and a file added or
 *     moved costs its own chunks only.  The gap left before the
 *     boundary is filled by small files later.
 *  2b. A later block of such a file goes after the file's previous
 *     block if that is free (or past the bitmaps and inode table at
 *     the start of a group there), else to a chunk boundary (rule 2
 *     again): a large file that grew past a small file placed after
 *     it continues in chunks of its own.
 *  3. Anything else: libext2fs's own choice, the first free block from
 *     its goal (the block after the file's previous one, or the start
 *     of the inode's flex group).
 *  3b. But with a base, a new or grown small file's or directory's
 *     blocks go first to blocks the base used and this version frees
 *     (deleted, renamed or shrunk files: a renamed directory's files
 *     land where they were, in the same order), then from the first
 *     chunk boundary of the free space at the end of the file system,
 *     one after another: what a version adds then fills chunks of its
 *     own, instead of a block here and there in space that was free in
 *     the base, each in a chunk that would otherwise not change.  That
 *     space (and the part of a chunk skipped to reach a boundary) is
 *     used once the end is full, since the search for a free block
 *     wraps around.
 *
 * Directories' first blocks come from ext2fs_mkdir, which asks without
 * a context: for a kept directory the caller names it in
 * alloc->mkdir_ino around the call.
 */

#include <stdint.h>

#include <ext2fs/ext2fs.h>

#include "mkimage.h"
#include "ext4.h"

/* Rule 2: the first chunk boundary from which n blocks are free, or
 * goal if there is none (counted in a->cramped: left blocks of the
 * file go elsewhere).
 */
static blk64_t
aligned_goal (ext2_filsys fs, struct ext4_alloc *a, blk64_t n, blk64_t left,
              blk64_t goal)
{
  blk64_t b, total = ext2fs_blocks_count (fs->super);

  for (b = 0; b + n <= total; b += a->chunk_blocks)
    if (b >= fs->super->s_first_data_block &&
        ext2fs_test_block_bitmap_range2 (fs->block_map, b, n))
      return b;
  /* NB: once per file: its later blocks are in left already. */
  if (a->cramped_ino != a->cur_ino) {
    a->cramped += left;
    a->cramped_ino = a->cur_ino;
  }
  return goal;
}

/* The block after the inode table (and bitmaps) at the start of the
 * group holding b, if b lies in them (a group resize2fs added: grow_fs
 * in ext4.c), or b.  Rules 2b and 3b see through them: a large file
 * goes on past them (their chunk changes anyway when the file's blocks
 * are marked in that group's bitmap, and a file that skipped to the
 * next chunk boundary would leave most of a chunk to be filled by later
 * blocks here and there), and the free space at the end runs through
 * them.
 */
static blk64_t
past_group_metadata (ext2_filsys fs, blk64_t b)
{
  dgrp_t g;
  blk64_t first, it, end;

  if (b >= ext2fs_blocks_count (fs->super))
    return b;
  g = ext2fs_group_of_blk2 (fs, b);
  first = ext2fs_group_first_block2 (fs, g);
  it = ext2fs_inode_table_loc (fs, g);
  end = it + fs->inode_blocks_per_group;
  /* NB: the last group resize2fs adds has a backup superblock and
   * descriptors first (sparse_super2), which drop_backup_supers freed:
   * its bitmaps and inode table follow them.
   */
  if (g == 0 || it < first ||
      (it > first + 2 && it != first + 1 + fs->desc_blocks + 2) || b < first ||
      b >= end)
    return b;
  return end;
}

/* Rule 3b: the first chunk boundary after the last block in use (or
 * that block's successor if no boundary is left).
 */
static blk64_t
tail_goal (ext2_filsys fs, uint32_t chunk_blocks)
{
  blk64_t end = ext2fs_blocks_count (fs->super) - 1, b, used, m;
  blk64_t free_at = fs->super->s_first_data_block;

  /* From run to run: used blocks, then free ones.  NB: the metadata at
   * the start of groups that resize2fs added is not "in use" here: the
   * free space at the end runs through it.
   */
  for (b = fs->super->s_first_data_block; b <= end; b = free_at) {
    if (ext2fs_find_first_set_block_bitmap2 (fs->block_map, b, end, &used))
      break;
    for (m = past_group_metadata (fs, used); m != used && m <= end;
         m = past_group_metadata (fs, used))
      if (ext2fs_find_first_set_block_bitmap2 (fs->block_map, m, end, &used))
        goto done;
    if (ext2fs_find_first_zero_block_bitmap2 (fs->block_map, used, end,
                                              &free_at))
      return 0; /* in use to the end */
  }
done:
  b = (free_at + chunk_blocks - 1) / chunk_blocks * chunk_blocks;
  return b <= end ? b : free_at <= end ? free_at : 0;
}

/* The callback (get_alloc_block2). */
static errcode_t
alloc_block (ext2_filsys fs, blk64_t goal, blk64_t *ret,
             struct blk_alloc_ctx *ctx)
{
  struct ext4_alloc *a = fs->priv_data;
  blk64_t blk = 0;

  errcode_t err;

  if (a->base) {
    if (ctx && ctx->ino && ctx->flags != BLOCK_ALLOC_METADATA)
      blk = ext4_base_claim_block (a->base, fs, ctx->ino, ctx->lblk);
    else if (ctx == NULL && a->mkdir_ino)
      blk = ext4_base_claim_block (a->base, fs, a->mkdir_ino, 0);
    if (blk) {
      *ret = blk;
      goto out;
    }
  }
  a->cur_ino = ctx ? ctx->ino : 0;
  if (ctx && ctx->ino && ctx->inode && ctx->flags != BLOCK_ALLOC_METADATA &&
      LINUX_S_ISREG (ctx->inode->i_mode) &&
      EXT2_I_SIZE (ctx->inode) >= (uint64_t) a->chunk_blocks * fs->blocksize) {
    uint64_t left =
        (EXT2_I_SIZE (ctx->inode) + fs->blocksize - 1) / fs->blocksize -
        ctx->lblk;
    blk64_t next = a->last_blk + 1;

    /* Rule 2 for the file's first block, and rule 2b for a later block
     * that cannot follow the file's previous one (taken by a small
     * file that filled the gap after it, or by group metadata): a
     * grown part of a large file starts on a chunk boundary too, so
     * that appending to it costs the appended chunks and not holes
     * scattered over others.
     */
    if (ctx->lblk == 0)
      goal = aligned_goal (fs, a, a->chunk_blocks, left, goal);
    else if (ctx->ino == a->last_ino && ctx->lblk == a->last_lblk + 1) {
      next = past_group_metadata (fs, next);
      if (next < ext2fs_blocks_count (fs->super) &&
          !ext2fs_test_block_bitmap2 (fs->block_map, next))
        goal = next;
      else
        goal = aligned_goal (
            fs, a, left < a->chunk_blocks ? left : a->chunk_blocks, left, goal);
    }
  }
  else if (a->base && ctx && ctx->ino && ctx->flags != BLOCK_ALLOC_METADATA) {
    /* Rule 3b: freed blocks, else the end (0 once it is full). */
    if (!a->tail_known) {
      a->tail_next = tail_goal (fs, a->chunk_blocks);
      a->tail_known = true;
    }
    blk = ext4_base_freed_block (a->base, fs, goal);
    if (blk == 0)
      blk = a->tail_next;
    if (blk == 0)
      a->cramped++; /* the end is full: into the base's holes */
    if (blk)
      goal = blk;
  }
  /* NB: with a map, ext2fs_new_block3 does not call us back. */
  err = ext2fs_new_block3 (fs, goal, fs->block_map, ret, ctx);
  if (err)
    return err;

out:
  if (ctx && ctx->ino && ctx->flags != BLOCK_ALLOC_METADATA) {
    a->last_ino = ctx->ino;
    a->last_lblk = ctx->lblk;
    a->last_blk = *ret;
    /* NB: once the end is full (0), it stays so: the rest wraps. */
    if (a->tail_next && *ret >= a->tail_next)
      a->tail_next = *ret + 1 < ext2fs_blocks_count (fs->super) ? *ret + 1 : 0;
  }
  return 0;
}

/* The same for callers that give no context (ext2fs_new_block2 with no
 * map, as ext2fs_mkdir does).
 */
static errcode_t
alloc_block_old (ext2_filsys fs, blk64_t goal, blk64_t *ret)
{
  return alloc_block (fs, goal, ret, NULL);
}

void
ext4_alloc_install (ext2_filsys fs, struct ext4_alloc *a)
{
  fs->priv_data = a;
  fs->get_alloc_block = alloc_block_old;
  fs->get_alloc_block2 = alloc_block;
}
