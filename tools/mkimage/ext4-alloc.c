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
 *     block if that is free, else to a chunk boundary (rule 2 again):
 *     a large file that grew past a small file placed after it
 *     continues in chunks of its own.
 *  3. Anything else: libext2fs's own choice, the first free block from
 *     its goal (the block after the file's previous one, or the start
 *     of the inode's flex group), which fills holes left by deleted
 *     files before it uses the free space at the end.
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
 * goal if there is none.
 */
static blk64_t
aligned_goal (ext2_filsys fs, uint32_t chunk_blocks, blk64_t n, blk64_t goal)
{
  blk64_t b, total = ext2fs_blocks_count (fs->super);

  for (b = 0; b + n <= total; b += chunk_blocks)
    if (b >= fs->super->s_first_data_block &&
        ext2fs_test_block_bitmap_range2 (fs->block_map, b, n))
      return b;
  return goal;
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
      goal = aligned_goal (fs, a->chunk_blocks, a->chunk_blocks, goal);
    else if (ctx->ino == a->last_ino && ctx->lblk == a->last_lblk + 1) {
      if (next < ext2fs_blocks_count (fs->super) &&
          !ext2fs_test_block_bitmap2 (fs->block_map, next))
        goal = next;
      else
        goal = aligned_goal (fs, a->chunk_blocks,
                             left < a->chunk_blocks ? left : a->chunk_blocks,
                             goal);
    }
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
