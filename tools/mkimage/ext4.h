/* accel-mkimage: what ext4.c and ext4-populate.c share. */

#ifndef ACCEL_MKIMAGE_EXT4_H
#define ACCEL_MKIMAGE_EXT4_H

/* The image's block size: mke2fs -b, and the granularity of holes. */
#define EXT4_BLOCK_SIZE 4096

/* The block size of an image of many files of a few KiB, which ext4.c
 * picks when that makes the image smaller: a file takes whole blocks,
 * and with 4 KiB ones a tree of such files is mostly the unused ends
 * of blocks, which adding files costs a node too.
 */
#define EXT4_SMALL_BLOCK_SIZE 1024

/* The inode size: mke2fs -I (room for nanosecond and creation times). */
#define EXT4_INODE_SIZE 256

/* The inode size of an image whose small files are stored inline (the
 * inline_data feature: a file's bytes in its inode, no data block),
 * which ext4.c picks when that makes the image smaller.  A 4 KiB block
 * per file of a few hundred bytes is most of such a tree, and most of
 * what adding files to it costs a node.
 */
#define EXT4_INLINE_INODE_SIZE 1024

/* The largest file stored inline in an inode of inode_size bytes: the
 * 60 bytes of i_block, and the value of the system.data attribute in
 * the space after the inode's 128 + 32 (i_extra_isize) bytes, less the
 * attribute area's 4-byte magic, the entry (16 bytes + "data") and the
 * 4-byte end of the entries.  ext4-populate.c checks every file it
 * stores inline against what libext2fs finds room for.
 */
#define EXT4_INLINE_MAX(inode_size) (60 + (inode_size) -128 - 32 - 4 - 20 - 4)

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include <ext2fs/ext2fs.h>

/* ext4-dir.c: the entries of one directory, collected in walk order
 * and written in one pass by ext4_dir_write.
 */
struct ext4_dir_entry {
  char *name;
  ext2_ino_t ino;
  int type; /* EXT2_FT_* */
};

struct ext4_dir {
  ext2_ino_t ino; /* the directory */
  struct ext4_dir_entry *v;
  size_t len, cap;
  unsigned nsubdirs; /* entries that are directories */
  unsigned links_at_start; /* its link count before they were made */
  /* Its first block may move (not a block kept from the base). */
  bool movable;
};

/* Start collecting the entries of directory ino. */
extern errcode_t
ext4_dir_init (ext2_filsys fs, struct ext4_dir *d, ext2_ino_t ino);

/* Add an entry (name is copied). */
extern errcode_t
ext4_dir_add (struct ext4_dir *d, const char *name, ext2_ino_t ino, int type);

/* Write every entry into the directory, after those it has. */
extern errcode_t ext4_dir_write (ext2_filsys fs, struct ext4_dir *d);

/* Free the entries. */
extern void ext4_dir_clear (struct ext4_dir *d);

/* ext4-base.c: the base layout (an earlier version's manifest). */
struct ext4_base;
struct manifest_fs_layout;

/* Load and check the layout in the manifest at path.  NULL (error
 * reported) if it cannot be read, is not ext4 or has no layout.
 */
extern struct ext4_base *ext4_base_load (const char *path);
extern void ext4_base_free (struct ext4_base *b);
extern const struct manifest_fs_layout *
ext4_base_layout (const struct ext4_base *b);
extern uint32_t ext4_base_chunk_size (const struct ext4_base *b);

/* Find which of the base's paths the tree at src still has, with the
 * same type.  0, or -1 (error reported).
 */
extern int ext4_base_match (struct ext4_base *b, const char *src);

/* Mark the kept inodes and blocks in use in fs's bitmaps (uncounted),
 * before anything is made.  0, or -1 (error reported).
 */
extern int ext4_base_reserve (struct ext4_base *b, ext2_filsys fs);

/* The base's inode of a kept path of st's type (or of a kept other
 * name of st's file), now free for the caller to allocate, or 0.
 */
extern ext2_ino_t
ext4_base_claim_inode (struct ext4_base *b, ext2_filsys fs, const char *path,
                       const struct stat *st);

/* The base's block for logical block lblk of kept inode ino, now free
 * for the caller to allocate, or 0.
 */
extern blk64_t ext4_base_claim_block (struct ext4_base *b, ext2_filsys fs,
                                      ext2_ino_t ino, blk64_t lblk);

/* The first block from goal on (then from the start) that the base
 * used and this version freed and that is still free, or 0.
 */
extern blk64_t
ext4_base_freed_block (struct ext4_base *b, ext2_filsys fs, blk64_t goal);

/* Does the base have blocks for inode ino (a kept directory's)? */
extern bool ext4_base_has_blocks (const struct ext4_base *b, ext2_ino_t ino);

/* How many logical blocks of inode ino from lblk on, one after another,
 * have a block in the base that is reserved and not claimed yet: what
 * ext4_base_claim_block would give them.
 */
extern uint64_t ext4_base_reserved_run (const struct ext4_base *b,
                                        ext2_ino_t ino, blk64_t lblk);

/* Unmark what was reserved and never claimed; free the reservation. */
extern void ext4_base_release (struct ext4_base *b, ext2_filsys fs);

/* ext4-renames.c: directories a version renamed or moved. */
struct path_entry {
  const char *path; /* relative, "" for the root */
  uint32_t mode;
  uint64_t size; /* of a regular file, else 0 */
  bool linked; /* a regular file with other names (hard links) */
};
struct ext4_rename {
  const char *from, *to; /* into the lists' paths */
};

/* The directories of old (the base) that new (the tree) renamed or
 * moved, each holding (most of) the same names, types and sizes as
 * before, none inside another:
 * in *renames (free it), n of them.  Both lists sorted by strcmp of
 * path.  0, or -1 (error reported).
 */
extern int ext4_find_renames (const struct path_entry *old, size_t nr_old,
                              const struct path_entry *new, size_t nr_new,
                              struct ext4_rename **renames, size_t *n);

/* The regular files of old (the base) that new (the tree) moved or
 * renamed, paired by size (ext4-renames.c): in *renames (n of them,
 * malloc'd, NULL if none), from and to pointing into the lists' paths.
 * Both lists sorted by path.  0, or -1 (error reported).
 */
extern int ext4_find_moved_files (const struct path_entry *old, size_t nr_old,
                                  const struct path_entry *new, size_t nr_new,
                                  struct ext4_rename **renames, size_t *n);

/* The entries below directory dir in e (sorted): [*lo, *hi). */
extern void ext4_paths_below (const struct path_entry *e, size_t n,
                              const char *dir, size_t *lo, size_t *hi);

/* ext4-alloc.c: the block allocation policy (see there). */
struct ext4_alloc {
  struct ext4_base *base; /* or NULL */
  uint32_t chunk_blocks; /* the manifest's chunk size in blocks */
  ext2_ino_t mkdir_ino; /* a kept directory being made, or 0 */
  /* The last data block given out: files are written in order, so a
   * file's next block follows it if it can.
   */
  ext2_ino_t last_ino;
  blk64_t last_lblk, last_blk;
  /* With a base: where the next new small block goes (rule 3b), once
   * known.
   */
  blk64_t tail_next;
  bool tail_known;
  /* Blocks of large files that found no free chunk to start or go on
   * in (rule 2), and new blocks on a base that found the free space
   * at the end full (rule 3b): they went wherever they could, into
   * chunks that would not change otherwise, so the build on a base
   * grows the file system and tries again (ext4.c).
   */
  uint64_t cramped;
  ext2_ino_t cur_ino, cramped_ino; /* the inode asking, the last counted */
};

/* Make a the policy of fs's allocations (fs->priv_data). */
extern void ext4_alloc_install (ext2_filsys fs, struct ext4_alloc *a);

/* A libext2fs error code (errcode_t) or errno value as text.  NB:
 * error_message would need libcom_err, which we do not link; the
 * table it would use is exported by libext2fs itself.
 */
extern const char *ext4_strerror (long err);

#endif /* ACCEL_MKIMAGE_EXT4_H */
