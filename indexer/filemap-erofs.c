/* accel-index: the file map of an erofs image, read directly.
 *
 * erofs (the kernel's fs/erofs; on-disk format in its erofs_fs.h) is
 * simple enough to read without a library, and no library for it is
 * packaged: a superblock 1024 bytes in, inodes of 32 (compact) or 64
 * (extended) bytes found by number (nid) at meta_blkaddr + 32 * nid,
 * and directories whose blocks hold sorted dirents followed by the
 * names.  A regular file's data is in one of these layouts:
 *
 *  - flat plain: ceil (size / block size) blocks from raw_blkaddr;
 *  - flat inline: the same for all but the last block, whose bytes
 *    (the tail) follow the inode and its inline xattrs in the
 *    metadata, within one block;
 *  - chunk based (mkfs.erofs --chunksize): the file is cut into chunks
 *    of block size << n, each at the block address in an array that
 *    follows the inode (4-byte addresses, or 8-byte indexes with a
 *    device id); the address ~0 is a hole.  Chunks may be shared
 *    between files (mkfs.erofs stores identical chunks once);
 *  - compressed (mkfs.erofs -z): counted as unmapped, as squashfs
 *    compressed blocks are.
 *
 * Everything read is checked before it is used, as the image is
 * untrusted: the superblock (magic, block size, checksum, features this
 * file knows, no extra devices, the file system inside the image),
 * every inode and data block inside the file system, directory blocks
 * well formed, a directory reached twice is an error (no loops), and
 * the number of chunk entries read in the whole image is capped.
 * Reads go through one window on the image, so that inodes, chunk
 * arrays and directory blocks near each other cost one pread.
 */

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

/* The superblock. */
#define SB_OFFSET 1024
#define SB_SIZE 128
#define SB_MAGIC UINT32_C (0xE0F5E1E2)
#define MIN_BLKBITS 9
#define MAX_BLKBITS 16

#define FEATURE_COMPAT_SB_CHKSUM 0x1

/* Incompatible features that change nothing this file reads, or only
 * compressed files (which are not mapped): zero padding (0x1), big
 * pclusters and compression configs (0x2), chunk-based files (0x4,
 * read here), the device table (0x8, but extra devices are refused),
 * tail packing of compressed files (0x10), fragments and dedupe of
 * compressed files (0x20), long xattr name prefixes (0x40).  Any other
 * bit may change the layout of inodes or data: refused, as the kernel
 * does.
 */
#define FEATURE_INCOMPAT_KNOWN 0x7f

/* Inodes: i_format bits 0 (version) and 1-3 (data layout). */
#define INODE_SLOT_SIZE 32
#define INODE_COMPACT_SIZE 32
#define INODE_EXTENDED_SIZE 64
#define INODE_FORMAT_KNOWN 0xf

enum {
  LAYOUT_FLAT_PLAIN = 0,
  LAYOUT_COMPRESSED_FULL = 1,
  LAYOUT_FLAT_INLINE = 2,
  LAYOUT_COMPRESSED_COMPACT = 3,
  LAYOUT_CHUNK_BASED = 4,
};

/* Chunk-based inodes: i_u holds a format word. */
#define CHUNK_FORMAT_BLKBITS_MASK 0x1f
#define CHUNK_FORMAT_INDEXES 0x20
#define CHUNK_FORMAT_KNOWN 0x3f
#define NULL_ADDR UINT32_C (0xffffffff)

/* Directory entries: nid (8), nameoff (2), file type, reserved. */
#define DIRENT_SIZE 12
#define NAME_LEN 255

/* The read window: large enough for the largest block twice over. */
#define WINDOW_SIZE (256 * 1024)

/* Chunk entries (4 or 8 bytes of metadata each) read in one image: at
 * 4 KiB chunks, 4 TiB of file data.
 */
#define MAX_CHUNK_ENTRIES (UINT64_C (1) << 30)

/* One walk of one file system. */
struct erofs_walk {
  struct filemap *fm;
  unsigned blkbits;
  uint64_t blksz;
  uint64_t fs_size; /* blocks << blkbits: every read lies below it */
  uint64_t meta_base; /* meta_blkaddr << blkbits: where nid 0 is */
  uint64_t root_nid;
  uint64_t nr_chunk_entries;
  struct filemap_table dirs_seen; /* nids of directories */
  unsigned char *window; /* WINDOW_SIZE bytes of the image */
  uint64_t window_start;
  size_t window_len;
  unsigned char *dir_block; /* the directory block being read */
};

/* What the walk needs of one inode. */
struct erofs_inode {
  uint64_t nid;
  uint64_t size;
  uint32_t mode, nlink;
  unsigned layout;
  uint32_t raw_blkaddr; /* flat layouts */
  uint16_t chunk_format; /* chunk-based layout */
  uint64_t inline_pos; /* just after the inode and its xattrs */
};

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

/* CRC-32C (Castagnoli, reflected) without the final inversion, as the
 * kernel's crc32c (~0, ...) computes the superblock checksum.  Bit by
 * bit: it runs over one block once.
 */
static uint32_t
crc32c (uint32_t crc, const unsigned char *p, size_t len)
{
  size_t i;
  int k;

  for (i = 0; i < len; ++i) {
    crc ^= p[i];
    for (k = 0; k < 8; ++k)
      crc = (crc >> 1) ^ (UINT32_C (0x82f63b78) & -(crc & 1));
  }
  return crc;
}

/* Exactly len bytes at offset into buf; -1 (error reported) on an
 * error or a short read.
 */
static int
read_exact (struct filemap *fm, void *buf, size_t len, uint64_t offset)
{
  size_t done = 0;
  ssize_t r;

  while (done < len) {
    r = pread (fm->fd, (char *) buf + done, len - done, offset + done);
    if (r == -1 && errno == EINTR)
      continue;
    if (r == -1) {
      report_error ("%s: erofs: read: %m", fm->image);
      return -1;
    }
    if (r == 0) {
      report_error ("%s: erofs: unexpected end of the image at byte "
                    "%" PRIu64 " (truncated image?)",
                    fm->image, offset + done);
      return -1;
    }
    done += r;
  }
  return 0;
}

/* True if len bytes at offset lie inside the file system. */
static bool
in_fs (const struct erofs_walk *wk, uint64_t offset, uint64_t len)
{
  return len <= wk->fs_size && offset <= wk->fs_size - len;
}

/* A pointer to len (at most WINDOW_SIZE / 2) bytes of the file system
 * at offset, valid until the next call; NULL (error reported, with
 * what) if they are not inside the file system.
 */
static const unsigned char *
read_meta (struct erofs_walk *wk, uint64_t offset, size_t len, const char *what)
{
  size_t n;

  if (!in_fs (wk, offset, len)) {
    filemap_error (wk->fm,
                   "%s (%zu bytes at %" PRIu64 ") lies outside the "
                   "file system of %" PRIu64 " bytes (corrupt file system?)",
                   what, len, offset, wk->fs_size);
    return NULL;
  }
  if (offset >= wk->window_start &&
      offset + len <= wk->window_start + wk->window_len)
    return wk->window + (offset - wk->window_start);
  n = wk->fs_size - offset < WINDOW_SIZE ? wk->fs_size - offset : WINDOW_SIZE;
  wk->window_len = 0;
  if (read_exact (wk->fm, wk->window, n, offset) == -1)
    return NULL;
  wk->window_start = offset;
  wk->window_len = n;
  return wk->window;
}

/* Check the superblock and set up the walk from it. */
static int
check_super (struct erofs_walk *wk)
{
  struct filemap *fm = wk->fm;
  unsigned char *sb;
  uint32_t incompat, blocks, meta_blkaddr, crc_len;
  int r = -1;

  if (fm->image_size < SB_OFFSET + SB_SIZE) {
    report_error ("%s: erofs: image too small for a superblock", fm->image);
    return -1;
  }
  /* The checksum covers up to one block from the superblock on. */
  sb = malloc ((size_t) 1 << MAX_BLKBITS);
  if (sb == NULL) {
    report_error ("%s: erofs: malloc: %m", fm->image);
    return -1;
  }
  if (read_exact (fm, sb, SB_SIZE, SB_OFFSET) == -1)
    goto out;
  wk->blkbits = sb[12];
  if (le32 (sb) != SB_MAGIC) {
    report_error ("%s: erofs: no erofs magic in the superblock", fm->image);
    goto out;
  }
  if (wk->blkbits < MIN_BLKBITS || wk->blkbits > MAX_BLKBITS) {
    report_error ("%s: erofs: unsupported block size 2^%u in the superblock",
                  fm->image, wk->blkbits);
    goto out;
  }
  wk->blksz = UINT64_C (1) << wk->blkbits;
  if (le32 (sb + 8) & FEATURE_COMPAT_SB_CHKSUM) {
    uint32_t want = le32 (sb + 4);

    crc_len = wk->blksz > SB_OFFSET ? wk->blksz - SB_OFFSET : wk->blksz;
    if (fm->image_size - SB_OFFSET < crc_len) {
      report_error ("%s: erofs: image too small for its first block "
                    "(truncated image?)",
                    fm->image);
      goto out;
    }
    if (read_exact (fm, sb, crc_len, SB_OFFSET) == -1)
      goto out;
    memset (sb + 4, 0, 4);
    if (crc32c (UINT32_MAX, sb, crc_len) != want) {
      report_error ("%s: erofs: superblock checksum does not match "
                    "(corrupt file system?)",
                    fm->image);
      goto out;
    }
  }
  incompat = le32 (sb + 80);
  if (incompat & ~FEATURE_INCOMPAT_KNOWN) {
    report_error ("%s: erofs: unsupported incompatible features %#" PRIx32
                  " (made by a newer mkfs.erofs?)",
                  fm->image, incompat & ~FEATURE_INCOMPAT_KNOWN);
    goto out;
  }
  if (le16 (sb + 86) != 0) {
    report_error ("%s: erofs: the file system has %u extra devices "
                  "(mkfs.erofs --blobdev): their data is not in this image",
                  fm->image, le16 (sb + 86));
    goto out;
  }
  if (sb[90] != 0) {
    report_error ("%s: erofs: unsupported directory block size (dirblkbits "
                  "%u)",
                  fm->image, sb[90]);
    goto out;
  }
  blocks = le32 (sb + 36);
  meta_blkaddr = le32 (sb + 40);
  wk->fs_size = (uint64_t) blocks << wk->blkbits;
  wk->meta_base = (uint64_t) meta_blkaddr << wk->blkbits;
  wk->root_nid = le16 (sb + 14);
  if (wk->fs_size > fm->image_size) {
    report_error ("%s: erofs: the file system (%" PRIu64 " bytes) is "
                  "larger than the image (%" PRIu64 " bytes): truncated "
                  "image?",
                  fm->image, wk->fs_size, fm->image_size);
    goto out;
  }
  if (wk->fs_size < SB_OFFSET + SB_SIZE || wk->meta_base >= wk->fs_size) {
    report_error ("%s: erofs: the superblock's block count (%" PRIu32 ") "
                  "or metadata address (%" PRIu32 ") is out of range "
                  "(corrupt file system?)",
                  fm->image, blocks, meta_blkaddr);
    goto out;
  }
  report_debug ("%s: erofs: %" PRIu64 "-byte blocks, %" PRIu32 " blocks, "
                "features compat %#" PRIx32 " incompat %#" PRIx32,
                fm->image, wk->blksz, blocks, le32 (sb + 8), incompat);
  r = 0;

out:
  free (sb);
  return r;
}

/* Read inode nid: its header, and where its inline data starts. */
static int
read_inode (struct erofs_walk *wk, uint64_t nid, struct erofs_inode *ino)
{
  const unsigned char *p;
  uint64_t pos;
  uint16_t format, icount;
  unsigned isize;

  if (nid > (wk->fs_size - wk->meta_base) / INODE_SLOT_SIZE) {
    filemap_error (wk->fm,
                   "inode number %" PRIu64 " points outside the image "
                   "(corrupt file system?)",
                   nid);
    return -1;
  }
  pos = wk->meta_base + nid * INODE_SLOT_SIZE;
  p = read_meta (wk, pos, INODE_COMPACT_SIZE, "an inode");
  if (p == NULL)
    return -1;
  format = le16 (p);
  if (format & ~INODE_FORMAT_KNOWN) {
    filemap_error (wk->fm,
                   "inode %" PRIu64 " has an unsupported format %#x "
                   "(corrupt file system?)",
                   nid, format);
    return -1;
  }
  isize = format & 1 ? INODE_EXTENDED_SIZE : INODE_COMPACT_SIZE;
  if (isize == INODE_EXTENDED_SIZE &&
      (p = read_meta (wk, pos, isize, "an inode")) == NULL)
    return -1;

  ino->nid = nid;
  ino->layout = format >> 1;
  icount = le16 (p + 2);
  ino->mode = le16 (p + 4);
  ino->raw_blkaddr = le32 (p + 16);
  ino->chunk_format = le16 (p + 16);
  if (isize == INODE_COMPACT_SIZE) {
    ino->nlink = le16 (p + 6);
    ino->size = le32 (p + 8);
  }
  else {
    ino->size = le64 (p + 8);
    ino->nlink = le32 (p + 44);
  }
  /* Inline xattrs: a 12-byte header and 4 bytes per further count. */
  ino->inline_pos = pos + isize + (icount ? 12 + 4 * (icount - 1) : 0);
  if (ino->layout > LAYOUT_CHUNK_BASED) {
    filemap_error (wk->fm,
                   "inode %" PRIu64 " has an unknown data layout %u "
                   "(corrupt file system?)",
                   nid, ino->layout);
    return -1;
  }
  return 0;
}

/* Where the bytes of ino from offset (< size) are: *len bytes at
 * *image_offset, or a hole of *len bytes (*hole).  Compressed layouts
 * are the caller's business.
 */
static int
map_range (struct erofs_walk *wk, const struct erofs_inode *ino,
           uint64_t offset, uint64_t *image_offset, uint64_t *len, bool *hole)
{
  uint64_t size = ino->size, nblocks, lastblk, tail;
  uint64_t fs_blocks = wk->fs_size >> wk->blkbits;

  *hole = false;
  if (ino->layout == LAYOUT_CHUNK_BASED) {
    bool indexes = ino->chunk_format & CHUNK_FORMAT_INDEXES;
    unsigned unit = indexes ? 8 : 4;
    unsigned chunkbits =
        wk->blkbits + (ino->chunk_format & CHUNK_FORMAT_BLKBITS_MASK);
    uint64_t chunk = offset >> chunkbits;
    uint64_t start = chunk << chunkbits, end;
    uint64_t array = (ino->inline_pos + unit - 1) / unit * unit;
    const unsigned char *p;
    uint32_t blkaddr;

    if (wk->nr_chunk_entries++ >= MAX_CHUNK_ENTRIES) {
      filemap_error (wk->fm, "more than %" PRIu64 " chunks in the image",
                     MAX_CHUNK_ENTRIES);
      return -1;
    }
    /* The array was checked to fit (check_chunks). */
    p = read_meta (wk, array + chunk * unit, unit, "a chunk index");
    if (p == NULL)
      return -1;
    /* NB: the device id of 8-byte indexes is masked away by the kernel
     * when there are no extra devices, which check_super made sure of.
     */
    blkaddr = le32 (p + (indexes ? 4 : 0));
    end = size - start > (UINT64_C (1) << chunkbits)
        ? start + (UINT64_C (1) << chunkbits)
        : size;
    *len = end - offset;
    if (blkaddr == NULL_ADDR) {
      *hole = true;
      return 0;
    }
    if (blkaddr >= fs_blocks ||
        (end - start + wk->blksz - 1) >> wk->blkbits > fs_blocks - blkaddr) {
      filemap_error (wk->fm,
                     "chunk %" PRIu64 " at block %" PRIu32 " lies outside "
                     "the file system (corrupt file system?)",
                     chunk, blkaddr);
      return -1;
    }
    *image_offset = ((uint64_t) blkaddr << wk->blkbits) + (offset - start);
    return 0;
  }

  /* Flat: whole blocks from raw_blkaddr, then maybe an inline tail. */
  nblocks = (size >> wk->blkbits) + ((size & (wk->blksz - 1)) != 0);
  lastblk = nblocks - (ino->layout == LAYOUT_FLAT_INLINE);
  if (offset >> wk->blkbits < lastblk) {
    if (ino->raw_blkaddr >= fs_blocks ||
        lastblk > fs_blocks - ino->raw_blkaddr) {
      filemap_error (wk->fm,
                     "%" PRIu64 " data blocks at block %" PRIu32 " lie "
                     "outside the file system (corrupt file system?)",
                     lastblk, ino->raw_blkaddr);
      return -1;
    }
    *image_offset = ((uint64_t) ino->raw_blkaddr << wk->blkbits) + offset;
    *len = (lastblk << wk->blkbits) - offset;
    return 0;
  }
  /* The tail: within one block, right after the inode. */
  tail = size - (lastblk << wk->blkbits);
  if ((ino->inline_pos & (wk->blksz - 1)) + tail > wk->blksz ||
      !in_fs (wk, ino->inline_pos, tail)) {
    filemap_error (wk->fm,
                   "inline data of inode %" PRIu64 " (%" PRIu64 " bytes) "
                   "crosses a block boundary or the end of the file "
                   "system (corrupt file system?)",
                   ino->nid, tail);
    return -1;
  }
  *image_offset = ino->inline_pos + (offset - (lastblk << wk->blkbits));
  *len = size - offset;
  return 0;
}

/* A chunk-based inode's chunk format is known and its array of chunk
 * entries lies inside the file system.
 */
static int
check_chunks (struct erofs_walk *wk, const struct erofs_inode *ino)
{
  unsigned unit = ino->chunk_format & CHUNK_FORMAT_INDEXES ? 8 : 4;
  unsigned chunkbits =
      wk->blkbits + (ino->chunk_format & CHUNK_FORMAT_BLKBITS_MASK);
  uint64_t nr_chunks, array;

  if (ino->chunk_format & ~CHUNK_FORMAT_KNOWN) {
    filemap_error (wk->fm,
                   "inode %" PRIu64 " has an unsupported chunk format "
                   "%#x (corrupt file system?)",
                   ino->nid, ino->chunk_format);
    return -1;
  }
  nr_chunks = (ino->size >> chunkbits) +
      ((ino->size & ((UINT64_C (1) << chunkbits) - 1)) != 0);
  array = (ino->inline_pos + unit - 1) / unit * unit;
  if (array > wk->fs_size || nr_chunks > (wk->fs_size - array) / unit) {
    filemap_error (wk->fm,
                   "the %" PRIu64 " chunk entries of inode %" PRIu64
                   " lie outside the file system (corrupt file system?)",
                   nr_chunks, ino->nid);
    return -1;
  }
  return 0;
}

/* One regular file at the current path. */
static int
map_file (struct erofs_walk *wk, const struct erofs_inode *ino)
{
  struct filemap *fm = wk->fm;
  bool linked = ino->nlink > 1, done, hole;
  uint64_t offset, image_offset, len;

  if (linked) {
    if (filemap_replay (fm, ino->nid, &done) == -1)
      return -1;
    if (done)
      return 0;
  }
  if (filemap_file_begin (fm, ino->size, ino->mode, linked, ino->nid) == -1)
    return -1;
  if (ino->layout == LAYOUT_COMPRESSED_FULL ||
      ino->layout == LAYOUT_COMPRESSED_COMPACT) {
    filemap_file_unmapped (fm, ino->size);
    return filemap_file_end (fm);
  }
  if (ino->layout == LAYOUT_CHUNK_BASED && check_chunks (wk, ino) == -1)
    return -1;
  for (offset = 0; offset < ino->size; offset += len) {
    if (map_range (wk, ino, offset, &image_offset, &len, &hole) == -1)
      return -1;
    if (!hole && filemap_file_run (fm, offset, image_offset, len) == -1)
      return -1;
  }
  return filemap_file_end (fm);
}

/* One entry of a directory being read (name at the current path). */
static int
visit_entry (struct erofs_walk *wk, struct filemap_subdirs *subdirs,
             uint64_t nid, const char *name, size_t len)
{
  struct erofs_inode ino;

  if (read_inode (wk, nid, &ino) == -1)
    return -1;
  if (S_ISREG (ino.mode))
    return map_file (wk, &ino);
  if (S_ISDIR (ino.mode))
    return filemap_subdirs_add (wk->fm, subdirs, nid, name, len);
  return 0;
}

/* The entries of one directory block of size bytes (in wk->dir_block).
 * The dirents come first; the first one's name offset says how many
 * there are; each name runs to the next one's, the last to the end of
 * the block or its first NUL.
 */
static int
read_dir_block (struct erofs_walk *wk, struct filemap_subdirs *subdirs,
                size_t size)
{
  struct filemap *fm = wk->fm;
  const unsigned char *b = wk->dir_block;
  size_t nr, i, names, start, end, saved;
  const char *name;

  names = size >= DIRENT_SIZE ? le16 (b + 8) : 0;
  if (names < DIRENT_SIZE || names > size || names % DIRENT_SIZE != 0) {
    filemap_error (fm,
                   "a directory block has a bad first name offset "
                   "(%zu of %zu bytes; corrupt file system?)",
                   names, size);
    return -1;
  }
  nr = names / DIRENT_SIZE;
  for (i = 0; i < nr; ++i) {
    const unsigned char *de = b + i * DIRENT_SIZE;

    start = le16 (de + 8);
    if (i + 1 < nr)
      end = le16 (de + DIRENT_SIZE + 8);
    else {
      end = start;
      while (end < size && b[end] != '\0')
        end++;
    }
    if (start < names || end < start || end > size || end - start == 0 ||
        end - start > NAME_LEN) {
      filemap_error (fm,
                     "directory entry %zu has a bad name (bytes %zu to "
                     "%zu of %zu; corrupt file system?)",
                     i, start, end, size);
      return -1;
    }
    name = (const char *) b + start;
    if ((end - start == 1 && name[0] == '.') ||
        (end - start == 2 && name[0] == '.' && name[1] == '.'))
      continue;
    if (filemap_count_entry (fm) == -1 ||
        filemap_enter (fm, name, end - start, NAME_LEN, &saved) == -1)
      return -1;
    if (visit_entry (wk, subdirs, le64 (de), name, end - start) == -1)
      return -1;
    filemap_leave (fm, saved);
  }
  return 0;
}

/* Read directory dir (at the current path) block by block, then visit
 * its subdirectories.  NB: recursion depth is bounded by the path
 * length cap; each level adds at least two bytes.
 */
static int
walk_dir (struct erofs_walk *wk, const struct erofs_inode *dir)
{
  struct filemap *fm = wk->fm;
  struct filemap_subdirs subdirs = { 0 };
  struct erofs_inode child;
  uint64_t offset, image_offset, len;
  const unsigned char *p;
  size_t i, saved, n;
  bool hole;
  int r = -1;

  if (filemap_table_find (&wk->dirs_seen, dir->nid) != NULL) {
    filemap_error (fm,
                   "the directory at inode %" PRIu64 " is reached twice "
                   "(a loop in the directory tree?)",
                   dir->nid);
    return -1;
  }
  if (filemap_table_insert (fm, &wk->dirs_seen, dir->nid, wk) == -1)
    return -1;
  if (dir->layout == LAYOUT_COMPRESSED_FULL ||
      dir->layout == LAYOUT_COMPRESSED_COMPACT) {
    filemap_error (fm, "compressed directories are not supported");
    return -1;
  }
  if (dir->size > wk->fs_size) {
    filemap_error (fm,
                   "the directory's size (%" PRIu64 " bytes) is larger "
                   "than the file system (corrupt file system?)",
                   dir->size);
    return -1;
  }
  if (dir->layout == LAYOUT_CHUNK_BASED && check_chunks (wk, dir) == -1)
    return -1;

  for (offset = 0; offset < dir->size; offset += n) {
    n = dir->size - offset < wk->blksz ? dir->size - offset : wk->blksz;
    /* A block is never split between mappings: chunks are whole
     * blocks, and an inline tail is one (partial) block.
     */
    if (map_range (wk, dir, offset, &image_offset, &len, &hole) == -1)
      goto out;
    if (hole || len < n) {
      filemap_error (fm,
                     "the directory's block at offset %" PRIu64 " is a "
                     "hole or split (corrupt file system?)",
                     offset);
      goto out;
    }
    p = read_meta (wk, image_offset, n, "a directory block");
    if (p == NULL)
      goto out;
    memcpy (wk->dir_block, p, n);
    if (read_dir_block (wk, &subdirs, n) == -1)
      goto out;
  }

  for (i = 0; i < subdirs.len; ++i) {
    const struct filemap_subdir *s = &subdirs.items[i];

    if (filemap_enter (fm, subdirs.names + s->name_offset, s->name_len,
                       NAME_LEN, &saved) == -1 ||
        read_inode (wk, s->key, &child) == -1 || walk_dir (wk, &child) == -1)
      goto out;
    filemap_leave (fm, saved);
  }
  r = 0;

out:
  filemap_subdirs_free (&subdirs);
  return r;
}

/* Check the superblock, walk from the root directory. */
int
filemap_erofs (struct filemap *fm)
{
  struct erofs_walk wk = { .fm = fm };
  struct erofs_inode root;
  int r = -1;

  if (check_super (&wk) == -1)
    return -1;
  wk.window = malloc (WINDOW_SIZE);
  wk.dir_block = malloc (wk.blksz);
  if (wk.window == NULL || wk.dir_block == NULL) {
    report_error ("%s: erofs: malloc: %m", fm->image);
    goto out;
  }
  if (read_inode (&wk, wk.root_nid, &root) == -1)
    goto out;
  if (!S_ISDIR (root.mode)) {
    report_error ("%s: erofs: the root inode is not a directory (corrupt "
                  "file system?)",
                  fm->image);
    goto out;
  }
  r = walk_dir (&wk, &root);

out:
  free (wk.window);
  free (wk.dir_block);
  filemap_table_free (&wk.dirs_seen, NULL);
  return r;
}
