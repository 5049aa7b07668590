/* accel-mkimage: copy the source tree into an empty ext4 file system
 * with libext2fs.
 *
 * Why not mke2fs -d: e2fsprogs 1.47.0 does visit directories in sorted
 * order, but through alphasort (the locale's collation), and it copies
 * from the source what must not leak into a reproducible image: atime,
 * mtime and ctime, owner and group, and every extended attribute
 * (security.selinux, user.*, ACLs), which no option turns off; and it
 * finds data with SEEK_DATA, whose answers depend on the source file
 * system.  Timestamps and owners could be rewritten afterwards, but a
 * removed xattr block leaves its allocation and bytes behind.  So the
 * tree is copied here, by the same library calls mke2fs uses, with
 * nothing taken from the source but names, types, permission bits,
 * contents, link targets, device numbers and hard links:
 *
 *   - entries in tree_walk's order (each directory's entries sorted
 *     by strcmp of their names, then its subdirectories), so inode
 *     numbers and blocks are allocated in an order that depends on the
 *     names alone; each directory's entries are written in one pass
 *     once all are made (ext4-dir.c);
 *   - every timestamp is the fixed epoch (fs->now, which libext2fs
 *     uses for new inodes), owner and group 0, no xattrs;
 *   - file data is read through and written block by block, every
 *     all-zero 4 KiB block left as a hole, aligned to the image's
 *     blocks whatever holes the source file has;
 *   - link counts are the links found within the tree.
 *
 * On the way it hashes the tree's shape (a SHA-256 over each entry's
 * path, type, mode, size and link target, in walk order, but not the
 * files' contents): the UUID and directory hash seed are derived from
 * that digest (see set_identity).
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <et/com_err.h>
#include <ext2fs/ext2_err.h>
#include <ext2fs/ext2fs.h>
#include <openssl/evp.h>

#include "cleanup.h"
#include "manifest.h"
#include "report.h"
#include "mkimage.h"
#include "ext4.h"

/* Source files are read this much at a time. */
#define READ_SIZE (1024 * 1024)

/* The state of one population run. */
struct populate {
  const struct mkimage_options *o;
  ext2_filsys fs;
  struct tree_links *links; /* source (dev, ino) -> image inode */
  struct ext4_dir dir; /* entries of the directory being filled */
  bool dir_open; /* dir has been initialised */
  EVP_MD_CTX *tree; /* the tree digest */
  unsigned char *buf; /* READ_SIZE bytes */
  uint64_t done; /* bytes of file data copied, for progress */
  bool full; /* the file system ran out of blocks or inodes */
  struct ext4_base *base; /* the base layout, or NULL */
  struct ext4_alloc alloc; /* where blocks go (ext4-alloc.c) */
  /* Regular files of 1 to inline_max bytes are stored in their inode
   * (0: none are); inlined counts them.
   */
  uint64_t inline_max, inlined;
};

const char *
ext4_strerror (long err)
{
  const struct error_table *t = &et_ext2_error_table;

  if (err > 0 && err < 4096)
    return strerror (err);
  if (err >= t->base && err < t->base + t->n_msgs)
    return t->msgs[err - t->base];
  return "unknown libext2fs error";
}

/* Out of space is not an error here: the caller grows the image and
 * tries again.  Anything else is reported with what and path.
 */
static int
fail (struct populate *p, errcode_t err, const char *what, const char *path)
{
  if (err == EXT2_ET_BLOCK_ALLOC_FAIL || err == EXT2_ET_INODE_ALLOC_FAIL ||
      err == ENOSPC) {
    report_debug ("%s: %s: %s: the image is full", what, path,
                  ext4_strerror (err));
    p->full = true;
    return -1;
  }
  report_error ("%s: %s: %s", what, *path ? path : "/", ext4_strerror (err));
  return -1;
}

/* One record of the tree digest: fields separated by NUL bytes. */
static void
digest_entry (struct populate *p, char type, const char *path, mode_t mode,
              const char *detail)
{
  char head[64];
  int n;

  n = snprintf (head, sizeof head, "%c %o", type, (unsigned) (mode & 07777));
  EVP_DigestUpdate (p->tree, head, n + 1);
  EVP_DigestUpdate (p->tree, path, strlen (path) + 1);
  EVP_DigestUpdate (p->tree, detail, strlen (detail) + 1);
}

/* The directory entry's file type for mode. */
static int
file_type (mode_t mode)
{
  switch (mode & S_IFMT) {
  case S_IFREG:
    return EXT2_FT_REG_FILE;
  case S_IFDIR:
    return EXT2_FT_DIR;
  case S_IFLNK:
    return EXT2_FT_SYMLINK;
  case S_IFCHR:
    return EXT2_FT_CHRDEV;
  case S_IFBLK:
    return EXT2_FT_BLKDEV;
  case S_IFIFO:
    return EXT2_FT_FIFO;
  case S_IFSOCK:
    return EXT2_FT_SOCK;
  default:
    return EXT2_FT_UNKNOWN;
  }
}

/* Start collecting the entries of n's parent at its first entry,
 * before anything is made in it.
 */
static int
open_parent (struct populate *p, const struct tree_node *n)
{
  errcode_t err;

  if (p->dir_open && p->dir.ino == n->parent)
    return 0;
  err = ext4_dir_init (p->fs, &p->dir, n->parent);
  if (err)
    return fail (p, err, "read directory", n->path);
  /* NB: not the root, whose first block mke2fs makes where it did in
   * the base, whatever the base says.
   */
  p->dir.movable = n->parent != EXT2_ROOT_INO &&
      !(p->base && ext4_base_has_blocks (p->base, n->parent));
  p->dir_open = true;
  return 0;
}

/* Add an entry to the directory being filled (n's parent). */
static int
add_entry (struct populate *p, const struct tree_node *n, ext2_ino_t ino,
           int type)
{
  errcode_t err = ext4_dir_add (&p->dir, n->name, ino, type);

  return err ? fail (p, err, "add entry", n->path) : 0;
}

/* tree_walk callback: every entry of directory handle is made. */
static int
populate_dir_done (void *opaque, uint64_t handle)
{
  struct populate *p = opaque;
  errcode_t err = 0;

  if (p->dir_open && p->dir.ino == handle)
    err = ext4_dir_write (p->fs, &p->dir);
  ext4_dir_clear (&p->dir);
  p->dir_open = false;
  return err ? fail (p, err, "write directory", "") : 0;
}

/* Set the permission bits of an existing directory (the root, or
 * lost+found made by mke2fs) to the source's.
 */
static int
set_dir_mode (struct populate *p, ext2_ino_t ino, mode_t mode, const char *path)
{
  struct ext2_inode inode;
  errcode_t err;

  err = ext2fs_read_inode (p->fs, ino, &inode);
  if (err == 0) {
    inode.i_mode = LINUX_S_IFDIR | (mode & 07777);
    err = ext2fs_write_inode (p->fs, ino, &inode);
  }
  return err ? fail (p, err, "set mode", path) : 0;
}

/* The inode for n: the one it had in the base layout if it is kept,
 * else the first free one libext2fs finds from its parent's group.
 */
static errcode_t
new_inode (struct populate *p, const struct tree_node *n, ext2_ino_t *ino)
{
  if (p->base) {
    *ino = ext4_base_claim_inode (p->base, p->fs, n->path, n->st);
    if (*ino)
      return 0;
  }
  return ext2fs_new_inode (p->fs, n->parent, n->st->st_mode & S_IFMT, 0, ino);
}

/* A directory: mkdir, then the source's permission bits. */
static int
add_dir (struct populate *p, const struct tree_node *n, uint64_t *handle)
{
  ext2_ino_t ino;
  errcode_t err;

  if (n->parent == EXT2_ROOT_INO && strcmp (n->name, "lost+found") == 0) {
    /* mke2fs made it (and linked it); the source's goes into it.  NB:
     * the root holds only mke2fs's entries until it is done, so this
     * lookup is cheap.
     */
    err = ext2fs_lookup (p->fs, EXT2_ROOT_INO, n->name, strlen (n->name), 0,
                         &ino);
    if (err)
      return fail (p, err, "lookup", n->path);
  }
  else {
    /* A NULL name: made and counted in the parent, not linked. */
    err = new_inode (p, n, &ino);
    if (err == 0) {
      p->alloc.mkdir_ino = ino;
      err = ext2fs_mkdir (p->fs, n->parent, ino, NULL);
      p->alloc.mkdir_ino = 0;
    }
    if (err)
      return fail (p, err, "mkdir", n->path);
    if (add_entry (p, n, ino, EXT2_FT_DIR) == -1)
      return -1;
  }
  *handle = ino;
  digest_entry (p, 'd', n->path, n->st->st_mode, "");
  return set_dir_mode (p, ino, n->st->st_mode, n->path);
}

/* True if len bytes at buf are all zero. */
static bool
is_zero (const unsigned char *buf, size_t len)
{
  return len == 0 || (buf[0] == 0 && memcmp (buf, buf + 1, len - 1) == 0);
}

/* Write the non-zero blocks of buf (len bytes of the file at offset
 * off, a multiple of the block size) to the image file.
 */
static errcode_t
write_blocks (ext2_file_t file, const unsigned char *buf, size_t len,
              uint64_t off, unsigned bs)
{
  size_t i = 0, j;
  unsigned int written;
  errcode_t err;

  while (i < len) {
    size_t blen = len - i < bs ? len - i : bs;

    if (is_zero (buf + i, blen)) {
      i += blen;
      continue;
    }
    /* A run of non-zero blocks, written in one call. */
    for (j = i + blen; j < len; j += blen) {
      blen = len - j < bs ? len - j : bs;
      if (is_zero (buf + j, blen))
        break;
    }
    err = ext2fs_file_llseek (file, off + i, EXT2_SEEK_SET, NULL);
    while (err == 0 && i < j) {
      err = ext2fs_file_write (file, buf + i, j - i, &written);
      if (err == 0 && written == 0)
        err = EXT2_ET_SHORT_WRITE;
      i += written;
    }
    if (err)
      return err;
  }
  return 0;
}

/* Store the contents of the source file fd (size bytes, at most
 * p->inline_max) in inode ino, made with EXT4_INLINE_DATA_FL.
 */
static int
copy_inline (struct populate *p, int fd, ext2_ino_t ino, uint64_t size,
             const char *path)
{
  size_t got = 0;
  errcode_t err;
  ssize_t r;

  /* One byte more than size: a file that grew is seen. */
  while (got <= size) {
    r = pread (fd, p->buf + got, size + 1 - got, got);
    if (r == -1 && errno == EINTR)
      continue;
    if (r == -1) {
      report_error ("%s/%s: read: %m", p->o->src, path);
      return -1;
    }
    if (r == 0)
      break;
    got += r;
  }
  if (got != size) {
    report_error ("%s/%s: the file %s while being copied", p->o->src, path,
                  got > size ? "grew" : "shrank");
    return -1;
  }
  err = ext2fs_inline_data_init (p->fs, ino);
  if (err == 0)
    err = ext2fs_inline_data_set (p->fs, ino, NULL, p->buf, size);
  if (err)
    return fail (p, err, "store inline", path);
  p->inlined++;
  p->done += size;
  progress_update (p->done);
  return 0;
}

/* Copy the contents of the source file fd (size bytes) into inode ino. */
static int
copy_data (struct populate *p, int fd, ext2_ino_t ino, uint64_t size,
           const char *path)
{
  ext2_file_t file;
  uint64_t off = 0;
  errcode_t err;
  ssize_t r;
  int ret = -1;

  err = ext2fs_file_open (p->fs, ino, EXT2_FILE_WRITE, &file);
  if (err)
    return fail (p, err, "open image file", path);
  for (;;) {
    size_t want = READ_SIZE, got = 0;

    /* Fill the buffer (short reads happen on some file systems). */
    while (got < want) {
      r = pread (fd, p->buf + got, want - got, off + got);
      if (r == -1 && errno == EINTR)
        continue;
      if (r == -1) {
        report_error ("%s/%s: read: %m", p->o->src, path);
        goto out;
      }
      if (r == 0)
        break;
      got += r;
    }
    if (got == 0)
      break;
    if (off + got > size) {
      report_error ("%s/%s: the file grew while being copied", p->o->src, path);
      goto out;
    }
    err = write_blocks (file, p->buf, got, off, p->fs->blocksize);
    if (err) {
      fail (p, err, "write", path);
      goto out;
    }
    off += got;
    p->done += got;
    progress_update (p->done);
    if (got < want)
      break;
  }
  if (off != size) {
    report_error ("%s/%s: the file shrank while being copied", p->o->src, path);
    goto out;
  }
  ret = 0;

out:
  err = ext2fs_file_close (file);
  if (err && ret == 0)
    ret = fail (p, err, "close image file", path);
  return ret;
}

/* A second (or later) name for an inode already in the image. */
static int
add_hard_link (struct populate *p, const struct tree_node *n, ext2_ino_t ino)
{
  struct ext2_inode inode;
  char detail[32];
  errcode_t err;

  err = ext2fs_read_inode (p->fs, ino, &inode);
  if (err)
    return fail (p, err, "read inode", n->path);
  if (add_entry (p, n, ino, file_type (inode.i_mode)) == -1)
    return -1;
  inode.i_links_count++;
  err = ext2fs_write_inode (p->fs, ino, &inode);
  if (err)
    return fail (p, err, "write inode", n->path);
  snprintf (detail, sizeof detail, "link %u", (unsigned) ino);
  digest_entry (p, 'h', n->path, n->st->st_mode, detail);
  return 0;
}

/* Is the regular file st stored in its inode? */
static bool
is_inline (const struct populate *p, const struct stat *st)
{
  return st->st_size > 0 && (uint64_t) st->st_size <= p->inline_max;
}

/* A new inode of n's type (not a directory or symlink), added to the
 * parent's entries: the inode is written, data is copied afterwards.
 */
static int
add_inode (struct populate *p, const struct tree_node *n, ext2_ino_t *inop)
{
  struct ext2_inode inode;
  ext2_extent_handle_t h;
  mode_t m = n->st->st_mode;
  ext2_ino_t ino;
  errcode_t err;

  err = new_inode (p, n, &ino);
  if (err)
    return fail (p, err, "create", n->path);
  ext2fs_inode_alloc_stats2 (p->fs, ino, +1, 0);
  if (add_entry (p, n, ino, file_type (m)) == -1)
    return -1;

  memset (&inode, 0, sizeof inode);
  inode.i_mode = (m & S_IFMT) | (m & 07777);
  inode.i_links_count = 1;
  if (S_ISREG (m)) {
    err = ext2fs_inode_size_set (p->fs, &inode, n->st->st_size);
    if (err)
      return fail (p, err, "set size", n->path);
    if (is_inline (p, n->st))
      inode.i_flags |= EXT4_INLINE_DATA_FL;
    else if (ext2fs_has_feature_extents (p->fs->super)) {
      /* Opening an extent handle on the in-memory inode initialises
       * its extent header; nothing is written yet.
       */
      inode.i_flags |= EXT4_EXTENTS_FL;
      err = ext2fs_extent_open2 (p->fs, ino, &inode, &h);
      if (err)
        return fail (p, err, "extents", n->path);
      ext2fs_extent_free (h);
    }
  }
  else if (S_ISCHR (m) || S_ISBLK (m)) {
    unsigned maj = major (n->st->st_rdev), min = minor (n->st->st_rdev);

    /* The kernel's old and new device number encodings. */
    if (maj < 256 && min < 256)
      inode.i_block[0] = maj * 256 + min;
    else
      inode.i_block[1] = (min & 0xff) | (maj << 8) | ((min & ~0xffu) << 12);
  }
  /* Times are left 0: ext2fs_write_new_inode sets them to fs->now. */
  err = ext2fs_write_new_inode (p->fs, ino, &inode);
  if (err)
    return fail (p, err, "write inode", n->path);
  *inop = ino;
  return 0;
}

/* A regular file, device, FIFO or socket; *inop is its inode. */
static int
add_file (struct populate *p, const struct tree_node *n, ext2_ino_t *inop)
{
  char detail[128];
  ext2_ino_t ino;
  struct stat st;
  int fd, r;

  if (!S_ISREG (n->st->st_mode)) {
    dev_t dev = S_ISCHR (n->st->st_mode) || S_ISBLK (n->st->st_mode)
        ? n->st->st_rdev
        : 0;

    if (add_inode (p, n, &ino) == -1)
      return -1;
    snprintf (detail, sizeof detail, "%o dev %u:%u",
              (unsigned) (n->st->st_mode & S_IFMT), major (dev), minor (dev));
    digest_entry (p, 'n', n->path, n->st->st_mode, detail);
    *inop = ino;
    return 0;
  }

  /* Open first, so that a file we cannot read leaves nothing behind. */
  fd = openat (n->dirfd, n->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd == -1) {
    report_error ("%s/%s: open: %m", p->o->src, n->path);
    return -1;
  }
  if (fstat (fd, &st) == -1 || st.st_ino != n->st->st_ino ||
      st.st_dev != n->st->st_dev || !S_ISREG (st.st_mode)) {
    report_error ("%s/%s: changed while the image was being built", p->o->src,
                  n->path);
    close (fd);
    return -1;
  }
  r = add_inode (p, n, &ino);
  if (r == 0 && is_inline (p, n->st))
    r = copy_inline (p, fd, ino, n->st->st_size, n->path);
  else if (r == 0)
    r = copy_data (p, fd, ino, n->st->st_size, n->path);
  close (fd);
  if (r == -1)
    return -1;

  snprintf (detail, sizeof detail, "%" PRIu64, (uint64_t) n->st->st_size);
  digest_entry (p, 'f', n->path, n->st->st_mode, detail);
  *inop = ino;
  return 0;
}

/* A symbolic link (the target is stored in the inode if short); *inop
 * is its inode.
 */
static int
add_symlink (struct populate *p, const struct tree_node *n, ext2_ino_t *inop)
{
  char target[PATH_MAX + 1];
  ext2_ino_t ino;
  errcode_t err;
  ssize_t len;

  len = readlinkat (n->dirfd, n->name, target, sizeof target);
  if (len == -1) {
    report_error ("%s/%s: readlink: %m", p->o->src, n->path);
    return -1;
  }
  if ((size_t) len >= p->fs->blocksize || (size_t) len >= sizeof target) {
    report_error ("%s/%s: symbolic link target too long for ext4", p->o->src,
                  n->path);
    return -1;
  }
  target[len] = '\0';
  err = new_inode (p, n, &ino);
  if (err == 0)
    err = ext2fs_symlink (p->fs, n->parent, ino, NULL, target);
  if (err)
    return fail (p, err, "symlink", n->path);
  if (add_entry (p, n, ino, EXT2_FT_SYMLINK) == -1)
    return -1;
  digest_entry (p, 'l', n->path, n->st->st_mode, target);
  *inop = ino;
  return 0;
}

/* tree_walk callback: one entry. */
static int
populate_entry (void *opaque, const struct tree_node *n, uint64_t *handle)
{
  struct populate *p = opaque;
  mode_t m = n->st->st_mode;
  int64_t first;
  ext2_ino_t ino;

  if (n->dirfd == -1) { /* the root */
    *handle = EXT2_ROOT_INO;
    digest_entry (p, 'd', "", m, "");
    return set_dir_mode (p, EXT2_ROOT_INO, m, "");
  }
  if (open_parent (p, n) == -1)
    return -1;
  if (S_ISDIR (m))
    return add_dir (p, n, handle);
  if (n->parent == EXT2_ROOT_INO && strcmp (n->name, "lost+found") == 0) {
    report_error ("%s/lost+found: not a directory, but ext4 keeps a "
                  "lost+found directory there",
                  p->o->src);
    return -1;
  }

  /* Hard links: the first name (in walk order) gets the inode. */
  if (n->st->st_nlink > 1) {
    first = tree_links_find (p->links, n->st);
    if (first > 0)
      return add_hard_link (p, n, first);
  }
  if (S_ISLNK (m) ? add_symlink (p, n, &ino) : add_file (p, n, &ino))
    return -1;
  if (n->st->st_nlink > 1)
    return tree_links_add (p->links, n->st, ino);
  return 0;
}

/* Give every inode the fixed times, owner and group, whatever
 * libext2fs did (a safety net: nothing above should leave a trace of
 * the clock).  Returns the number of inodes changed, or -1.
 */
static int64_t
fix_inodes (struct populate *p)
{
  ext2_inode_scan scan;
  struct ext2_inode_large inode;
  uint32_t t = p->fs->now;
  int64_t changed = 0;
  ext2_ino_t ino;
  errcode_t err;

  err = ext2fs_open_inode_scan (p->fs, 0, &scan);
  if (err)
    return fail (p, err, "inode scan", "");
  for (;;) {
    err = ext2fs_get_next_inode_full (scan, &ino, (struct ext2_inode *) &inode,
                                      sizeof inode);
    if (err || ino == 0)
      break;
    if (inode.i_links_count == 0)
      continue;
    if (inode.i_atime == t && inode.i_mtime == t && inode.i_ctime == t &&
        inode.i_uid == 0 && inode.i_gid == 0 &&
        inode.osd2.linux2.l_i_uid_high == 0 &&
        inode.osd2.linux2.l_i_gid_high == 0 &&
        (inode.i_extra_isize < 24 ||
         (inode.i_crtime == t && inode.i_atime_extra == 0 &&
          inode.i_mtime_extra == 0 && inode.i_ctime_extra == 0 &&
          inode.i_crtime_extra == 0)))
      continue;
    inode.i_atime = inode.i_mtime = inode.i_ctime = t;
    inode.i_uid = inode.i_gid = 0;
    inode.osd2.linux2.l_i_uid_high = inode.osd2.linux2.l_i_gid_high = 0;
    if (inode.i_extra_isize >= 24) {
      inode.i_crtime = t;
      inode.i_atime_extra = inode.i_mtime_extra = 0;
      inode.i_ctime_extra = inode.i_crtime_extra = 0;
    }
    err = ext2fs_write_inode_full (p->fs, ino, (struct ext2_inode *) &inode,
                                   sizeof inode);
    if (err)
      break;
    changed++;
  }
  ext2fs_close_inode_scan (scan);
  if (err)
    return fail (p, err, "fix inode times", "");
  return changed;
}

/* The UUID and directory hash seed, from the digest of the tree's
 * shape: equal trees get equal images, and trees of different shapes
 * (almost surely) different UUIDs, so that two datasets mounted on one
 * node are told apart.  File contents are left out on purpose: a new
 * version of a dataset whose files changed in place keeps the UUID, and
 * its image then differs from the old one only in those files' blocks,
 * which is what lets a node fetch just them (dedup by chunk hash).
 * NB: the image is made with metadata_csum_seed, so checksums do not
 * depend on the UUID and it can be changed now without rewriting them.
 */
static int
set_identity (ext2_filsys fs, const char *image, struct ext4_base *base,
              const unsigned char d[32])
{
  if (!ext2fs_has_feature_csum_seed (fs->super)) {
    report_error ("%s: made without metadata_csum_seed: cannot set the UUID",
                  image);
    return -1;
  }
  if (base) {
    /* A new version of the same dataset: the same identity, and
     * directory hashes that do not change unless names do.
     */
    memcpy (fs->super->s_uuid, ext4_base_layout (base)->uuid, 16);
    memcpy (fs->super->s_hash_seed, ext4_base_layout (base)->hash_seed, 16);
    ext2fs_mark_super_dirty (fs);
    return 0;
  }
  memcpy (fs->super->s_uuid, d, 16);
  /* An RFC 9562 version 8 (custom) UUID. */
  fs->super->s_uuid[6] = (fs->super->s_uuid[6] & 0x0f) | 0x80;
  fs->super->s_uuid[8] = (fs->super->s_uuid[8] & 0x3f) | 0x80;
  memcpy (fs->super->s_hash_seed, d + 16, 16);
  ext2fs_mark_super_dirty (fs);
  return 0;
}

/* Clear the INODE_UNINIT and BLOCK_UNINIT flags mke2fs set on empty
 * groups.  libext2fs's allocators take such a group as wholly free and
 * clear its bitmap the first time they look there, which would drop a
 * base's reservations made in it (ext4_base_reserve) and hand a kept
 * file's inode or blocks to a new one; and the bitmaps of groups
 * without the flags are written out (padding bits set), so a fresh
 * layout and the next version built on it write the same bitmap blocks
 * (with the flags in a fresh layout only, its groups of free inodes
 * would differ, a chunk fetched again).  The in-memory bitmaps are
 * right already, so the flags just go.
 */
static void
clear_uninit_flags (ext2_filsys fs)
{
  dgrp_t g;

  for (g = 0; g < fs->group_desc_count; g++) {
    if (!ext2fs_bg_flags_test (fs, g,
                               EXT2_BG_INODE_UNINIT | EXT2_BG_BLOCK_UNINIT))
      continue;
    ext2fs_bg_flags_clear (fs, g, EXT2_BG_INODE_UNINIT | EXT2_BG_BLOCK_UNINIT);
    ext2fs_group_desc_csum_set (fs, g);
  }
  ext2fs_mark_super_dirty (fs);
  ext2fs_mark_ib_dirty (fs);
  ext2fs_mark_bb_dirty (fs);
}

int
ext4_populate (const struct mkimage_options *o, const char *image,
               uint64_t file_bytes, struct ext4_base *base,
               unsigned char digest[32], uint64_t *cramped)
{
  struct populate p = { .o = o, .base = base };
  errcode_t err;
  int64_t fixed;
  int r = -1;

  err = ext2fs_open (image, EXT2_FLAG_RW | EXT2_FLAG_64BITS, 0, 0,
                     unix_io_manager, &p.fs);
  if (err) {
    report_error ("%s: ext2fs_open: %s", image, ext4_strerror (err));
    return -1;
  }
  /* Every timestamp libext2fs writes: new inodes, the superblock. */
  p.fs->now = o->epoch;
  p.fs->umask = 022;
  err = ext2fs_read_bitmaps (p.fs);
  if (err) {
    report_error ("%s: read bitmaps: %s", image, ext4_strerror (err));
    goto out;
  }
  /* NB: the inline_data feature is set only at the end, so that
   * libext2fs makes directories and symlinks in blocks as before
   * (ext4-dir.c writes directory blocks itself).
   */
  if (EXT2_INODE_SIZE (p.fs->super) == EXT4_INLINE_INODE_SIZE)
    p.inline_max = EXT4_INLINE_MAX (EXT4_INLINE_INODE_SIZE);
  clear_uninit_flags (p.fs);
  p.alloc.base = base;
  p.alloc.chunk_blocks = o->chunk_size / p.fs->blocksize;
  ext4_alloc_install (p.fs, &p.alloc);
  if (base && ext4_base_reserve (base, p.fs) == -1)
    goto out;
  p.links = tree_links_new ();
  p.tree = EVP_MD_CTX_new ();
  p.buf = malloc (READ_SIZE);
  if (p.links == NULL || p.tree == NULL || p.buf == NULL ||
      !EVP_DigestInit_ex (p.tree, EVP_sha256 (), NULL)) {
    report_error ("populate: out of memory");
    goto out;
  }

  progress_start ("building ext4 image", file_bytes);
  r = tree_walk (o->src,
                 &(struct tree_ops){ .visit = populate_entry,
                                     .dir_done = populate_dir_done },
                 &p);
  progress_end ();
  if (r == 0) {
    fixed = fix_inodes (&p);
    if (fixed == -1)
      r = -1;
    else if (fixed > 0)
      report_debug ("reset the times or owner of %" PRId64 " inodes", fixed);
  }
  if (r == 0 && p.inline_max) {
    ext2fs_set_feature_inline_data (p.fs->super);
    ext2fs_mark_super_dirty (p.fs);
    report_debug ("%" PRIu64 " files stored inline (at most %" PRIu64
                  " bytes each)",
                  p.inlined, p.inline_max);
  }
  if (r == 0) {
    EVP_DigestFinal_ex (p.tree, digest, NULL);
    r = set_identity (p.fs, image, o->base, digest);
  }

out:
  *cramped = p.alloc.cramped;
  /* Before the bitmaps are written: what was kept and not used. */
  if (base)
    ext4_base_release (base, p.fs);
  if (r == 0) {
    err = ext2fs_close_free (&p.fs);
    if (err) {
      report_error ("%s: ext2fs_close: %s", image, ext4_strerror (err));
      r = -1;
    }
  }
  else
    ext2fs_free (p.fs);
  tree_links_free (p.links);
  ext4_dir_clear (&p.dir);
  EVP_MD_CTX_free (p.tree);
  free (p.buf);
  if (r == -1 && p.full)
    return 1;
  return r;
}
