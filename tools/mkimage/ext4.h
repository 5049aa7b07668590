/* accel-mkimage: what ext4.c and ext4-populate.c share. */

#ifndef ACCEL_MKIMAGE_EXT4_H
#define ACCEL_MKIMAGE_EXT4_H

/* The image's block size: mke2fs -b, and the granularity of holes. */
#define EXT4_BLOCK_SIZE 4096

/* The inode size: mke2fs -I (room for nanosecond and creation times). */
#define EXT4_INODE_SIZE 256

#include <stdint.h>

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

/* A libext2fs error code (errcode_t) or errno value as text.  NB:
 * error_message would need libcom_err, which we do not link; the
 * table it would use is exported by libext2fs itself.
 */
extern const char *ext4_strerror (long err);

#endif /* ACCEL_MKIMAGE_EXT4_H */
