/* accel-mkimage: an ext4 image of just the right size, reproducibly.
 *
 * 1. Size.  A walk of the tree (stat only) adds up what the file system
 *    will need: the blocks of every distinct regular file, directory
 *    blocks (packing entries as ext4-dir.c does), extent
 *    tree blocks, long symlink targets, inode tables, bitmaps and the
 *    superblock and descriptor copies.  This is an upper bound computed
 *    from names and sizes alone, never from how the source stores its
 *    files, so it is the same for equal trees.
 * 2. Make the empty file system with mke2fs, every choice pinned:
 *    our own mke2fs.conf (the host's must not matter), features listed,
 *    no journal (the image is only ever mounted read-only), no resize
 *    inode, 4 KiB blocks and 256-byte inodes (or 1 KiB blocks, 1 KiB
 *    inodes with small files inline, or both, when the image is at
 *    least LAYOUT_GAIN_PERCENT smaller so), exact inode count, no
 *    reserved blocks, a fixed UUID and hash seed (replaced at the end
 *    from the tree's digest), root owned by 0:0, E2FSPROGS_FAKE_TIME
 *    for every timestamp, the C locale.
 * 3. Fill it (ext4-populate.c).  If it turns out too small (sparse
 *    files, unusual layouts), grow it by 10% and start again from 2;
 *    the sequence of attempts depends only on the tree, so the result
 *    is still reproducible.
 * 4. Check it and index its directories with e2fsck -fD (ours: it
 *    must find nothing to fix).
 * 5. If more than 1% is left free (files with long runs of zeros:
 *    counted in full, stored as holes), build it again at the size of
 *    what the first build stored, with the inodes and metadata of that
 *    size (deterministic too: the first build is).  NB:
 *    not resize2fs -M, which is deterministic but leaves a lot free
 *    (29% in a test with a sparse 2 GiB file: its minimum keeps room
 *    for metadata of groups it removes).
 */

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ext2fs/ext2fs.h>

#include "cleanup.h"
#include "file-io.h"
#include "manifest.h"
#include "report.h"
#include "mkimage.h"
#include "ext4.h"

#define MAX_EXTENT_LEN 32768 /* blocks in one initialised extent */
/* Extents in a tree block of bs bytes: a 12-byte header, 12 each. */
#define EXTENTS_PER_BLOCK(bs) (((bs) -12) / 12)
#define IN_INODE_EXTENTS 4
#define DIR_TAIL 12 /* metadata_csum's tail in every directory block */
#define MAX_ATTEMPTS 8
#define MIN_BLOCKS 64

/* Build again at the size used if more than this fraction is free
 * (beyond the slack).
 */
#define SHRINK_FREE_PERCENT 1

/* A fresh layout leaves this much free for later versions: a
 * percentage of the blocks, at least this many chunks, and this many
 * inodes on top of 10% more.
 */
#define SLACK_PERCENT 10
#define SLACK_MIN_CHUNKS 4
#define SLACK_INODES 256

/* ... or, if more, as many inodes as take this share of the image in
 * the inode table (zeros while unused: free to nodes).
 */
#define SLACK_TABLE_PERCENT 1

/* A fresh layout stores small files inline, or has 1 KiB blocks, only
 * if that makes the image at least this much smaller.
 */
#define LAYOUT_GAIN_PERCENT 10

/* A base layout of which more than this would be left free (files
 * were deleted) gives way to a fresh, smaller one.
 */
#define BASE_MAX_FREE_PERCENT 40

/* A base grown by the sizing's count of a tree's blocks is built again
 * at the size of what it stored if more than this much of it was left
 * free (files of zeros: see ext4_build).
 */
#define BASE_SHRINK_FREE_PERCENT 25

/* A base too small for the tree grows to what the tree needs and this
 * much more.
 */
#define GROW_SLACK_PERCENT 2
/* Images of fewer chunks do not grow for less than a chunk of scattered
 * blocks (grow_more).
 */
#define CRAMPED_MIN_CHUNKS 20

/* A fresh layout's groups are a power of two bytes, at least this
 * many, and at most a sixteenth of the image or what one bitmap block
 * covers (group_cap).
 */
#define MIN_GROUP_BYTES (8 * 1024 * 1024)

/* Features of the image.  metadata_csum_seed lets the UUID be set last
 * (see ext4-populate.c).  No has_journal, resize_inode.  No backup
 * superblocks (sparse_super2, num_backup_sb=0): their free counts change
 * in every version, one chunk per backup group for a node to fetch,
 * and a read-only image verified by hash has no use for them.
 */
static const char mke2fs_conf[] =
    "# accel-mkimage: every default pinned, whatever the host's file says.\n"
    "[defaults]\n"
    "\tbase_features = sparse_super,large_file,filetype,dir_index,ext_attr\n"
    "\tblocksize = 4096\n"
    "\tinode_size = 256\n"
    "\tinode_ratio = 16384\n"
    "\treserved_ratio = 0\n"
    "\thash_alg = half_md4\n"
    "\tflex_bg_size = 16\n"
    "\tlazy_itable_init = false\n"
    "\tlazy_journal_init = false\n"
    "\tenable_periodic_fsck = false\n"
    "\tdefault_mntopts = acl,user_xattr\n"
    "\n"
    "[fs_types]\n"
    "\text4 = {\n"
    "\t\tfeatures = extent,huge_file,flex_bg,metadata_csum,"
    "metadata_csum_seed,64bit,dir_nlink,extra_isize\n"
    "\t}\n"
    "\t# The usage types mke2fs picks by size (empty ones count as missing).\n"
    "\tfloppy = {\n\t\tinode_size = 256\n\t}\n"
    "\tsmall = {\n\t\tinode_size = 256\n\t}\n"
    "\tdefault = {\n\t\tinode_size = 256\n\t}\n"
    "\tbig = {\n\t\tinode_size = 256\n\t}\n"
    "\thuge = {\n\t\tinode_size = 256\n\t}\n";

/* Fixed until set_identity replaces them. */
#define MKFS_UUID "4163636c-0000-8000-8000-000000000000"

/* One directory's blocks, filled in order as ext4-dir.c fills them. */
struct dir_sim {
  uint64_t nblocks;
  uint32_t off; /* bytes used in the last block */
};

/* What the sizing walk adds up (in blocks unless said otherwise). */
struct sizing {
  unsigned bs; /* the block size sized for */
  struct tree_links *links;
  struct dir_sim *dirs; /* indexed by tree_walk handle */
  size_t nr_dirs, cap_dirs;
  uint64_t inodes; /* inodes our entries use */
  uint64_t file_blocks;
  uint64_t tree_blocks; /* extent tree blocks of files */
  uint64_t symlink_blocks;
  uint64_t file_bytes;
  uint64_t nr_entries;
  uint64_t hole_blocks; /* of file_blocks, not allocated in the source */
  /* Of those, the files small enough to be stored inline in inodes of
   * EXT4_INLINE_INODE_SIZE bytes.
   */
  uint64_t inline_files, inline_blocks, inline_holes;
};

/* The first size to try for one block and inode size. */
struct estimate {
  unsigned block_size, inode_size;
  uint64_t blocks;
  uint64_t data; /* of blocks, those of files, directories, extent trees */
  uint64_t holes; /* of data, holes in the source's files */
};

/* The size of a directory entry for a name of len bytes. */
static uint32_t
rec_len (size_t len)
{
  return (8 + len + 3) & ~3u;
}

/* Add an entry of r bytes to a directory. */
static void
dir_sim_add (struct dir_sim *d, uint32_t r, unsigned bs)
{
  if (d->nblocks == 0 || d->off + r > bs - DIR_TAIL) {
    d->nblocks++;
    d->off = 0;
  }
  d->off += r;
}

/* Blocks for the extent tree of n extents beyond the inode's four. */
static uint64_t
tree_blocks (uint64_t extents, unsigned bs)
{
  uint64_t leaves, total = 0, per = EXTENTS_PER_BLOCK (bs);

  if (extents <= IN_INODE_EXTENTS)
    return 0;
  leaves = (extents + per - 1) / per;
  total = leaves;
  /* Index blocks, if the leaves do not fit in the inode. */
  while (leaves > IN_INODE_EXTENTS) {
    leaves = (leaves + per - 1) / per;
    total += leaves;
  }
  return total;
}

/* tree_walk callback for the sizing walk. */
static int
size_entry (void *opaque, const struct tree_node *n, uint64_t *handle)
{
  struct sizing *s = opaque;
  mode_t m = n->st->st_mode;

  if (S_ISDIR (m)) {
    struct dir_sim *d;

    if (s->nr_dirs == s->cap_dirs) {
      size_t cap = s->cap_dirs ? s->cap_dirs * 2 : 64;
      struct dir_sim *v = realloc (s->dirs, cap * sizeof *v);

      if (v == NULL) {
        report_error ("sizing: realloc: %m");
        return -1;
      }
      s->dirs = v;
      s->cap_dirs = cap;
    }
    d = &s->dirs[s->nr_dirs];
    memset (d, 0, sizeof *d);
    *handle = s->nr_dirs++;
    /* "." and "..", in a first block (mkdir). */
    dir_sim_add (d, 24, s->bs);
    if (n->dirfd == -1) /* the root: mke2fs adds lost+found */
      dir_sim_add (d, rec_len (10), s->bs);
  }
  if (n->dirfd == -1)
    return 0;

  s->nr_entries++;
  if (!(n->parent == 0 && strcmp (n->name, "lost+found") == 0))
    dir_sim_add (&s->dirs[n->parent], rec_len (strlen (n->name)), s->bs);
  if (S_ISDIR (m)) {
    s->inodes++;
    return 0;
  }
  if (n->st->st_nlink > 1) {
    if (tree_links_find (s->links, n->st) != 0)
      return 0; /* another name of an inode already counted */
    if (tree_links_add (s->links, n->st, 1) == -1)
      return -1;
  }
  s->inodes++;
  if (S_ISREG (m)) {
    uint64_t b = (n->st->st_size + s->bs - 1) / s->bs;
    uint64_t alloc = (uint64_t) n->st->st_blocks * 512 / s->bs;

    s->file_bytes += n->st->st_size;
    s->file_blocks += b;
    s->hole_blocks += alloc < b ? b - alloc : 0;
    if (n->st->st_size > 0 &&
        n->st->st_size <= EXT4_INLINE_MAX (EXT4_INLINE_INODE_SIZE)) {
      s->inline_files++;
      s->inline_blocks += b;
      s->inline_holes += alloc < b ? b - alloc : 0;
    }
    /* Contiguous runs are cut at 32768 blocks and at group metadata. */
    s->tree_blocks += tree_blocks (b ? 2 * (b / MAX_EXTENT_LEN) + 2 : 0, s->bs);
  }
  else if (S_ISLNK (m) && n->st->st_size >= 60)
    s->symlink_blocks++;
  return 0;
}

/* Is g a group with a superblock backup (sparse_super: 0, 1 and
 * powers of 3, 5 and 7)?
 */
static bool
has_super (uint64_t g)
{
  static const unsigned bases[] = { 3, 5, 7 };
  size_t i;

  if (g <= 1)
    return true;
  for (i = 0; i < 3; i++) {
    uint64_t p = bases[i];

    while (p < g)
      p *= bases[i];
    if (p == g)
      return true;
  }
  return false;
}

/* The blocks per group of a fresh layout of blocks blocks: a power of
 * two bytes, a sixteenth of the image or more, from MIN_GROUP_BYTES up
 * to what one bitmap block covers (8 MiB with 1 KiB blocks, 128 MiB
 * with 4 KiB).  Why not always the most: a later version that needs
 * more inodes than its base has gets them only from new groups, and
 * the base's partial last group must be made whole first.  With 128
 * MiB groups that grew a 34 MiB image to 129 MiB; with groups of at
 * most a sixteenth of the image (and 8 MiB), what it must grow by
 * stays near the data it adds.  Each group costs two bitmap blocks.
 */
static uint64_t
group_cap (uint64_t blocks, unsigned bs)
{
  uint64_t max = 8 * bs, bpg = MIN_GROUP_BYTES / bs;

  while (bpg * 2 <= max && bpg * 2 * 16 <= blocks)
    bpg *= 2;
  return bpg < max ? bpg : max;
}

/* The blocks per group mke2fs makes for a file system of blocks blocks
 * and inodes inodes (-N) asked for at most cap per group (-g; 8 * bs,
 * its default, in layouts made before group_cap): less 8 at a time
 * while a group would need more inodes than its bitmap covers (as
 * libext2fs's ext2fs_initialize does).  With 1 KiB inodes and small
 * files, groups are smaller than cap.
 */
static uint64_t
blocks_per_group (uint64_t blocks, uint64_t inodes, unsigned bs, uint64_t cap)
{
  uint64_t bpg = cap, groups;

  blocks -= bs == 1024; /* block 0 is the boot block's */
  for (;;) {
    groups = (blocks + bpg - 1) / bpg;
    if (groups == 0 || (inodes + groups - 1) / groups <= 8 * bs ||
        bpg < 256 + 8)
      return bpg;
    bpg -= 8;
  }
}

/* Blocks for a file system holding data blocks of content and inodes
 * inodes of inode_size bytes: content plus metadata, to a fixed point
 * of the group count.  *bpg is the blocks per group it will have.
 */
static uint64_t
fs_blocks (uint64_t data, uint64_t inodes, unsigned inode_size, unsigned bs,
           uint64_t *bpg)
{
  uint64_t total = data, groups = 0, prev;
  int i;

  *bpg = 8 * bs;
  for (i = 0; i < 20; i++) {
    uint64_t ipg, gdt, meta = 0, g, per_block = bs / inode_size;

    prev = groups;
    *bpg = blocks_per_group (total, inodes, bs, group_cap (total, bs));
    groups = (total + *bpg - 1) / *bpg;
    if (groups == 0)
      groups = 1;
    if (groups == prev)
      break;
    ipg = (inodes + groups - 1) / groups;
    ipg = (ipg + per_block - 1) / per_block * per_block; /* whole blocks */
    gdt = (groups * 64 + bs - 1) / bs;
    for (g = 0; g < groups; g++)
      if (has_super (g))
        meta += 1 + gdt;
    meta += 2 * groups; /* block and inode bitmaps */
    meta += groups * ipg * inode_size / bs;
    total = data + meta + (bs == 1024); /* the boot block */
    /* mke2fs refuses inode tables that leave a group no room ("too
     * many inodes", with 1 KiB inodes in 8 MiB groups): more groups.
     */
    if (ipg * inode_size / bs + gdt + 53 > *bpg) {
      uint64_t room = *bpg - gdt - 53;
      uint64_t need = (inodes * inode_size / bs + room - 1) / room;

      if (need * *bpg > total)
        total = need * *bpg;
    }
  }
  return total;
}

/* total rounded up to whole chunks: the image's last chunk is then
 * whole, and stays the same when a later version grows the file
 * system (a partial last chunk would not: its bytes end sooner).
 */
static uint64_t
whole_chunks (const struct mkimage_options *o, uint64_t total, unsigned bs)
{
  uint64_t cb = o->chunk_size / bs;

  return cb ? (total + cb - 1) / cb * cb : total;
}

/* mke2fs drops a last group too small for its own metadata (its inode
 * table counted, wherever flex_bg puts it), and with it the room a
 * size was given for: so a size is rounded up past that.
 */
static uint64_t
whole_last_group (uint64_t total, uint64_t inodes, unsigned inode_size,
                  unsigned bs)
{
  uint64_t bpg = blocks_per_group (total, inodes, bs, group_cap (total, bs));
  uint64_t rem = (total - (bs == 1024)) % bpg, groups, ipg, itb;

  if (total <= bpg || rem == 0)
    return total;
  groups = (total - (bs == 1024) + bpg - 1) / bpg;
  ipg = (inodes + groups - 1) / groups;
  itb = (ipg * inode_size + bs - 1) / bs;
  if (rem < 3 + itb + 50)
    total += 3 + itb + 50 - rem;
  return total;
}

/* A size that is whole chunks (see whole_chunks) and keeps its last
 * group (whole_last_group).
 */
static uint64_t
fresh_size (const struct mkimage_options *o, uint64_t total, uint64_t inodes,
            unsigned inode_size, unsigned bs)
{
  uint64_t t;

  do {
    t = total;
    total = whole_chunks (o, total, bs);
    total = whole_last_group (total, inodes, inode_size, bs);
  } while (total != t);
  return total;
}

/* The first size to try, for data blocks of bs bytes and inodes of
 * inode_size.
 */
static void
size_for (uint64_t data, uint64_t inodes, unsigned inode_size, unsigned bs,
          struct estimate *e)
{
  uint64_t total, bpg;

  total = fs_blocks (data, inodes, inode_size, bs, &bpg);
  /* A little room for what is not modelled (for trees of dense files
   * the model has been exact to the block): 0.05% and 16 blocks.
   */
  total += total / 2000 + 16;
  /* mke2fs wants 50 free blocks in a group (58 for an empty tree). */
  if (total < MIN_BLOCKS)
    total = MIN_BLOCKS;
  e->block_size = bs;
  e->inode_size = inode_size;
  e->data = data;
  e->blocks = whole_last_group (total, inodes, inode_size, bs);
}

/* Walk the tree and compute the first size to try and the inode
 * count, and how many of those blocks are holes in the source's files
 * (which the image may store as holes too: the size counts them).
 */
static int
estimate (const struct mkimage_options *o, unsigned bs, struct estimate e[2],
          uint64_t *inodes, struct build_result *r)
{
  struct sizing s = { .bs = bs };
  uint64_t dir_blocks = 0, data;
  size_t i;
  int ret = -1;

  s.links = tree_links_new ();
  if (s.links == NULL)
    return -1;
  if (tree_walk (o->src, &(struct tree_ops){ .visit = size_entry }, &s) == -1)
    goto out;

  for (i = 0; i < s.nr_dirs; i++) {
    uint64_t b = s.dirs[i].nblocks;

    /* The first block is made with the directory, the rest later in
     * one run.
     */
    dir_blocks +=
        b + tree_blocks (b > 1 ? 2 * (b / MAX_EXTENT_LEN) + 3 : 1, bs);
    /* e2fsck -D's index: a root block, a level of index blocks beyond
     * about 500 leaves, and 1% for leaves packed in hash order.
     */
    if (b > 1)
      dir_blocks += 1 + (b > 500 ? (b + 499) / 500 : 0) + b / 100;
  }
  /* + lost+found's blocks (mke2fs makes it 16 KiB). */
  data = s.file_blocks + s.tree_blocks + s.symlink_blocks + dir_blocks +
      16384 / bs;
  /* Inodes 1-11 are reserved or lost+found's. */
  *inodes = s.inodes + EXT2_GOOD_OLD_FIRST_INO + 1;
  size_for (data, *inodes, EXT4_INODE_SIZE, bs, &e[0]);
  e[0].holes = s.hole_blocks;
  size_for (data - s.inline_blocks, *inodes, EXT4_INLINE_INODE_SIZE, bs, &e[1]);
  e[1].holes = s.hole_blocks - s.inline_holes;

  r->file_bytes = s.file_bytes;
  r->nr_entries = s.nr_entries;
  report_debug ("sizing, %u-byte blocks: %" PRIu64 " entries, %" PRIu64
                " inodes, "
                "%" PRIu64 " file blocks, %" PRIu64 " extent tree blocks, "
                "%" PRIu64 " directory blocks, %" PRIu64 " symlink blocks: "
                "%" PRIu64 " blocks in all; with inline data (%" PRIu64
                " files of at most %d bytes): %" PRIu64,
                bs, s.nr_entries, *inodes, s.file_blocks, s.tree_blocks,
                dir_blocks, s.symlink_blocks, e[0].blocks, s.inline_files,
                EXT4_INLINE_MAX (EXT4_INLINE_INODE_SIZE), e[1].blocks);
  ret = 0;

out:
  free (s.dirs);
  tree_links_free (s.links);
  return ret;
}

/* Write a small file into the work directory. */
static const char *
write_conf (const char *name, const char *text)
{
  const char *path = workdir_file (name);
  size_t len = strlen (text);
  int fd;

  fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd == -1 || write_full (fd, text, len) == -1) {
    report_error ("%s: write: %m", path);
    if (fd != -1)
      close (fd);
    return NULL;
  }
  close (fd);
  return path;
}

/* The group geometry of a file system to make: blocks per group (-g)
 * and groups per flex group (-G), each 0 for mke2fs's own choice.
 */
struct groups {
  uint64_t bpg, flex;
};

/* Flex groups that hold every group's bitmaps and inode table together
 * at the start, as 16 groups of 128 MiB do for an image of up to 2
 * GiB: at least 16, a power of two.
 */
static uint64_t
flex_for (uint64_t blocks, uint64_t bpg, unsigned bs)
{
  uint64_t groups = (blocks - (bs == 1024) + bpg - 1) / bpg, f = 16;

  while (f < groups)
    f *= 2;
  return f;
}

/* A fresh layout's geometry (group_cap).  Images of 2 GiB and more with
 * 4 KiB blocks keep mke2fs's 16 groups per flex group.
 */
static struct groups
fresh_groups (uint64_t blocks, uint64_t inodes, unsigned bs)
{
  struct groups g;

  g.bpg = blocks_per_group (blocks, inodes, bs, group_cap (blocks, bs));
  g.flex = bs == 1024 || g.bpg < 8 * bs ? flex_for (blocks, g.bpg, bs) : 0;
  return g;
}

/* The base's blocks per group: recorded in its manifest, or, if it
 * predates that, what mke2fs made without -g at its mkfs size.
 */
static uint64_t
base_blocks_per_group (const struct manifest_fs_layout *l)
{
  return l->blocks_per_group
      ? l->blocks_per_group
      : blocks_per_group (l->mkfs_blocks, l->mkfs_inodes, l->block_size,
                          8 * l->block_size);
}

/* The base's geometry for mke2fs: as recorded, or, for a base that
 * predates the record, mke2fs's own groups (and the flex groups 1 KiB
 * blocks were given).
 */
static struct groups
base_mkfs_groups (const struct manifest_fs_layout *l)
{
  struct groups g = { 0, 0 };

  if (l->blocks_per_group) {
    g.bpg = l->blocks_per_group;
    g.flex = l->groups_per_flex;
  }
  else if (l->block_size == 1024)
    g.flex = flex_for (l->mkfs_blocks, base_blocks_per_group (l), 1024);
  return g;
}

/* Run mke2fs to make an empty file system of blocks blocks, with the
 * groups g.
 */
static int
make_fs (const struct mkimage_options *o, const char *image, uint64_t blocks,
         uint64_t inodes, unsigned inode_size, unsigned bs,
         const struct groups *g)
{
  char nr_blocks[32], nr_inodes[32], isize[16], bsize[16], flex[32], bpg[32];
  char fake_time[48], conf_env[4200];
  const char *conf = write_conf ("mke2fs.conf", mke2fs_conf);
  const char *argv[32];
  size_t n = 0;

  if (conf == NULL)
    return -1;
  if (unlink (image) == -1 && errno != ENOENT) {
    report_error ("%s: unlink: %m", image);
    return -1;
  }

  snprintf (nr_blocks, sizeof nr_blocks, "%" PRIu64, blocks);
  snprintf (nr_inodes, sizeof nr_inodes, "%" PRIu64, inodes);
  snprintf (isize, sizeof isize, "%u", inode_size);
  snprintf (bsize, sizeof bsize, "%u", bs);
  snprintf (fake_time, sizeof fake_time, "E2FSPROGS_FAKE_TIME=%" PRIu32,
            o->epoch);
  snprintf (conf_env, sizeof conf_env, "MKE2FS_CONFIG=%s", conf);
  argv[n++] = "mke2fs";
  argv[n++] = "-q";
  argv[n++] = "-F";
  argv[n++] = "-t";
  argv[n++] = "ext4";
  argv[n++] = "-b";
  argv[n++] = bsize;
  if (g->bpg) {
    snprintf (bpg, sizeof bpg, "%" PRIu64, g->bpg);
    argv[n++] = "-g";
    argv[n++] = bpg;
  }
  if (g->flex) {
    snprintf (flex, sizeof flex, "%" PRIu64, g->flex);
    argv[n++] = "-G";
    argv[n++] = flex;
  }
  argv[n++] = "-I";
  argv[n++] = isize;
  argv[n++] = "-N";
  argv[n++] = nr_inodes;
  argv[n++] = "-m";
  argv[n++] = "0";
  argv[n++] = "-O";
  argv[n++] = "^has_journal,^resize_inode,sparse_super2";
  argv[n++] = "-U";
  argv[n++] = MKFS_UUID;
  argv[n++] = "-E";
  argv[n++] = "root_owner=0:0,nodiscard,lazy_itable_init=0,"
              "num_backup_sb=0,hash_seed=" MKFS_UUID;
  if (o->label) {
    argv[n++] = "-L";
    argv[n++] = o->label;
  }
  argv[n++] = image;
  argv[n++] = nr_blocks;
  argv[n] = NULL;

  {
    /* Environment variables that change what mke2fs makes. */
    const char *env[] = {
      conf_env,
      fake_time,
      "LC_ALL=C",
      "MKE2FS_SYNC",
      "MKE2FS_FIRST_META_BG",
      "MKE2FS_DEVICE_SECTSIZE",
      "MKE2FS_DEVICE_PHYS_SECTSIZE",
      "E2FSPROGS_UNDO_DIR",
      NULL,
    };

    return run_program ("mke2fs", argv, env, workdir_file ("mke2fs.log"));
  }
}

/* True if the file at path contains s (a log: read at most 1 MiB). */
static bool
file_contains (const char *path, const char *s)
{
  char *buf = malloc (1024 * 1024 + 1);
  ssize_t n = -1;
  bool found = false;
  int fd;

  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (buf && fd != -1)
    n = read (fd, buf, 1024 * 1024);
  if (n >= 0) {
    buf[n] = '\0';
    found = strstr (buf, s) != NULL;
  }
  if (fd != -1)
    close (fd);
  free (buf);
  return found;
}

/* e2fsck -fD: check the image (exit status 0 means it found nothing to
 * fix, anything else is our bug and fails the build) and index every
 * directory of more than one block (htree), without which the kernel
 * scans a big directory from the start at every lookup.  NB: e2fsck's
 * default 20% slack in index leaves is for directories that grow; a
 * read-only image needs none, so our own e2fsck.conf sets 0.  Returns
 * 1 if there was no room for the index blocks.
 */
static int
index_dirs (const struct mkimage_options *o, const char *image)
{
  char fake_time[48], fsck_time[48], conf_env[4200];
  const char *argv[] = { "e2fsck", "-f", "-y", "-D", image, NULL };
  const char *env[] = {
    conf_env, fake_time, fsck_time, "LC_ALL=C", NULL,
  };
  const char *conf, *log = workdir_file ("e2fsck.log");

  conf = write_conf ("e2fsck.conf",
                     "[options]\n\tindexed_dir_slack_percentage = 0\n");
  if (conf == NULL)
    return -1;
  snprintf (conf_env, sizeof conf_env, "E2FSCK_CONFIG=%s", conf);
  snprintf (fake_time, sizeof fake_time, "E2FSPROGS_FAKE_TIME=%" PRIu32,
            o->epoch);
  snprintf (fsck_time, sizeof fsck_time, "E2FSCK_TIME=%" PRIu32, o->epoch);
  if (run_program ("e2fsck", argv, env, log) == -1)
    return -1;
  if (file_contains (log, "Failed to optimize")) {
    report_debug ("e2fsck -D: no room to index the directories");
    return 1;
  }
  return 0;
}

/* The block, inode and free block counts, read back from the
 * superblock.  0, or -1 (error reported).
 */
static int
read_counts (const char *image, uint64_t *blocks, uint64_t *inodes,
             uint64_t *free_blocks)
{
  ext2_filsys fs;
  errcode_t err;

  err = ext2fs_open (image, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs);
  if (err) {
    report_error ("%s: ext2fs_open: %s", image, ext4_strerror (err));
    return -1;
  }
  *blocks = ext2fs_blocks_count (fs->super);
  *inodes = fs->super->s_inodes_count;
  *free_blocks = ext2fs_free_blocks_count (fs->super);
  ext2fs_close_free (&fs);
  return 0;
}

/* Room left free in a fresh layout, for the versions after it: new
 * and grown files go there without a bigger file system (which would
 * move the metadata of every group: a fresh layout).  Free space is
 * all-zero chunks, which nodes never fetch or store.
 */
static uint64_t
slack_blocks (const struct mkimage_options *o, uint64_t blocks, unsigned bs)
{
  uint64_t chunks = (uint64_t) SLACK_MIN_CHUNKS * o->chunk_size / bs;
  uint64_t s = blocks * SLACK_PERCENT / 100;

  return s > chunks ? s : chunks;
}

/* The inodes of a fresh layout of blocks blocks for a tree of
 * est_inodes: 10% more and SLACK_INODES, or, if more, as many as fit in
 * the inode table's share of the image (SLACK_TABLE_PERCENT): only new
 * groups bring inodes to a later version, and a group's worth of
 * blocks comes with them.  NB: of the blocks the layout really has, not
 * of a first estimate that counted sparse files' holes (a 10 GiB
 * sparse file would have given the tree half a million inodes, and the
 * image groups enough to hold them).
 */
static uint64_t
fresh_inodes (uint64_t est_inodes, uint64_t blocks, unsigned bs,
              unsigned inode_size)
{
  uint64_t inodes = est_inodes + est_inodes / 10 + SLACK_INODES;
  uint64_t table =
      est_inodes + blocks * bs / 100 * SLACK_TABLE_PERCENT / inode_size;

  return inodes > table ? inodes : table;
}

/* Would a file system of blocks be more than BASE_MAX_FREE_PERCENT
 * free beyond the slack a fresh layout of est_blocks keeps?  That
 * slack is not waste: a small tree's image is mostly slack (at least
 * SLACK_MIN_CHUNKS), and a fresh layout of it would be no smaller.
 */
static bool
mostly_free (const struct mkimage_options *o, uint64_t est_blocks,
             uint64_t blocks, unsigned bs)
{
  uint64_t fresh = est_blocks + slack_blocks (o, est_blocks, bs);

  return fresh < blocks &&
      (blocks - fresh) * 100 > blocks * BASE_MAX_FREE_PERCENT;
}

/* The base's blocks and inodes per group. */
static void
base_groups (const struct mkimage_options *o, uint64_t *bpg, uint64_t *ipg)
{
  const struct manifest_fs_layout *l = ext4_base_layout (o->base);

  *bpg = base_blocks_per_group (l);
  *ipg = l->inodes / ((l->blocks + *bpg - 1) / *bpg);
}

/* The metadata blocks of the base's file system grown to total blocks:
 * the superblock and group descriptors (and the boot block of 1 KiB
 * blocks), and each group's bitmaps and inode table.  What is not
 * metadata is what the tree stored: the same count whatever size it
 * was stored at, so that sizes derived from it agree.
 */
static uint64_t
based_metadata (const struct mkimage_options *o, uint64_t total)
{
  const struct manifest_fs_layout *l = ext4_base_layout (o->base);
  unsigned bs = l->block_size;
  uint64_t bpg, ipg, groups;

  base_groups (o, &bpg, &ipg);
  groups = (total - (bs == 1024) + bpg - 1) / bpg;
  return (bs == 1024) + 1 + (groups * 64 + bs - 1) / bs +
      groups * (2 + (ipg * l->inode_size + bs - 1) / bs);
}

/* A size to grow the base's file system to, at least total: whole
 * chunks (whole_chunks), with a last group that resize2fs keeps (one
 * too small for its bitmaps, inode table and 50 blocks it drops).
 */
static uint64_t
grown_size (const struct mkimage_options *o, uint64_t total)
{
  const struct manifest_fs_layout *l = ext4_base_layout (o->base);
  unsigned bs = l->block_size;
  uint64_t bpg, ipg, rem, min, t;

  base_groups (o, &bpg, &ipg);
  min = 2 + (ipg * l->inode_size + bs - 1) / bs + 64;
  /* A group of less than that (inode tables of nearly a group) is
   * made whole: else no size would do, and this would never end.
   */
  if (min > bpg)
    min = bpg;
  do {
    t = total;
    total = whole_chunks (o, total, bs);
    rem = (total - (bs == 1024)) % bpg;
    if (rem && rem < min)
      total += min - rem;
  } while (total != t);
  return total;
}

/* What a fresh layout would count for a tree of data blocks and inodes
 * inodes on the base's block and inode sizes (for mostly_free): the
 * data and an inode table for the tree's inodes.
 */
static uint64_t
based_estimate (const struct mkimage_options *o, uint64_t data, uint64_t inodes)
{
  const struct manifest_fs_layout *l = ext4_base_layout (o->base);

  return data + inodes * l->inode_size / l->block_size;
}

/* The geometry of a build around the base: mke2fs makes the file
 * system at the size the base's was first made (so every group's
 * metadata is where it was), then resize2fs grows it to the base's
 * size, or beyond if the tree needs more blocks or inodes (new groups
 * at the end, the old ones untouched).  False (said on stderr) if the
 * base is a poor fit: more than BASE_MAX_FREE_PERCENT of it would be
 * free beyond the slack of a fresh layout.
 */
static bool
base_geometry (const struct mkimage_options *o, uint64_t data,
               uint64_t est_inodes, uint64_t *blocks)
{
  const struct manifest_fs_layout *l = ext4_base_layout (o->base);
  unsigned bs = l->block_size;
  uint64_t bpg, ipg, need, i;

  base_groups (o, &bpg, &ipg);

  *blocks = l->blocks;
  /* data is what the tree stores, without metadata (based_metadata),
   * and a little room for what the sizing does not model.  NB: grown,
   * plus a chunk: a large file added starts on a chunk boundary,
   * skipping up to a chunk (ext4-alloc.c, rule 2).  If that is not
   * enough, the build grows it again (grow_more).
   */
  if (data + data / 2000 + 16 + based_metadata (o, *blocks) > *blocks) {
    data += data * GROW_SLACK_PERCENT / 100 + o->chunk_size / bs;
    for (need = data + based_metadata (o, *blocks), i = 0; i < 4; i++)
      need = data + based_metadata (o, need);
    if (need > *blocks)
      *blocks = need;
  }
  if (est_inodes > l->inodes) {
    /* Only new groups bring inodes: ipg is fixed at mke2fs time.  The
     * last of them need not be whole (grown_size keeps it).
     */
    need = ((est_inodes + ipg - 1) / ipg - 1) * bpg + 1;
    if (need > *blocks)
      *blocks = need;
  }
  if (*blocks > l->blocks)
    *blocks = grown_size (o, *blocks);
  if (*blocks > l->blocks)
    report_debug ("growing the base's file system from %" PRIu64 " to "
                  "%" PRIu64 " blocks",
                  l->blocks, *blocks);
  if (mostly_free (o, based_estimate (o, data, est_inodes), *blocks, bs)) {
    report_warning ("%s: more than %d%% of the base's file system would be "
                    "free (files were deleted, or more inodes are needed "
                    "than it has, which only new groups bring): making a "
                    "fresh layout, "
                    "which nodes fetch again in full",
                    o->src, BASE_MAX_FREE_PERCENT);
    return false;
  }
  return true;
}

/* Free the backup superblocks and group descriptors resize2fs added
 * (sparse_super2: it puts them in group 1 and in the last group): the
 * file system is made with none, and they would change with every
 * version (free counts), each a chunk a node fetches again.  The
 * bitmaps must have been read.
 */
static errcode_t
drop_backup_supers (ext2_filsys fs)
{
  blk64_t super, old_desc, new_desc, b;
  blk_t used;
  errcode_t err;
  int i;

  if (!ext2fs_has_feature_sparse_super2 (fs->super))
    return 0;
  for (i = 0; i < 2; i++) {
    dgrp_t g = fs->super->s_backup_bgs[i];

    if (g == 0 || g >= fs->group_desc_count)
      continue;
    err =
        ext2fs_super_and_bgd_loc2 (fs, g, &super, &old_desc, &new_desc, &used);
    if (err)
      return err;
    fs->super->s_backup_bgs[i] = 0;
    if (super)
      ext2fs_block_alloc_stats2 (fs, super, -1);
    for (b = old_desc; old_desc && b < old_desc + fs->desc_blocks; b++)
      ext2fs_block_alloc_stats2 (fs, b, -1);
  }
  return 0;
}

/* Set the superblock's s_log_groups_per_flex to log, returning the
 * value it had in *was; or, with was NULL (after resize2fs), also drop
 * the backup superblocks.  0, or -1 (error reported).
 */
static int
set_log_groups_per_flex (const struct mkimage_options *o, const char *image,
                         unsigned log, unsigned *was)
{
  ext2_filsys fs;
  errcode_t err;

  err = ext2fs_open (image, EXT2_FLAG_64BITS | EXT2_FLAG_RW, 0, 0,
                     unix_io_manager, &fs);
  if (err) {
    report_error ("%s: ext2fs_open: %s", image, ext4_strerror (err));
    return -1;
  }
  fs->now = o->epoch; /* s_wtime, written at close (scrub_extent_slots) */
  if (was)
    *was = fs->super->s_log_groups_per_flex;
  fs->super->s_log_groups_per_flex = log;
  ext2fs_mark_super_dirty (fs);
  err = was ? 0 : ext2fs_read_bitmaps (fs);
  if (err == 0 && was == NULL)
    err = drop_backup_supers (fs);
  if (err) {
    report_error ("%s: backup superblocks: %s", image, ext4_strerror (err));
    ext2fs_close_free (&fs);
    return -1;
  }
  err = ext2fs_close_free (&fs);
  if (err) {
    report_error ("%s: ext2fs_close: %s", image, ext4_strerror (err));
    return -1;
  }
  return 0;
}

/* After a build on the base that did not fit (cramped 0) or placed
 * cramped new blocks outside their rule (struct ext4_alloc): the next
 * size to try, in *blocks (grown says whether *blocks is in use yet:
 * else the base's size was tried).  False if no larger size is allowed (more
 * than BASE_MAX_FREE_PERCENT free beyond the slack, as in
 * base_geometry).
 */
static bool
grow_more (const struct mkimage_options *o, uint64_t est_blocks, bool grown,
           uint64_t cramped, uint64_t *blocks)
{
  const struct manifest_fs_layout *l = ext4_base_layout (o->base);
  uint64_t chunk_blocks = o->chunk_size / l->block_size;
  uint64_t cur = grown ? *blocks : l->blocks, next, step;

  if (!grown && *blocks > cur)
    next = *blocks; /* base_geometry's size, not tried yet */
  else {
    /* What was scattered and a chunk (the gap before a chunk
     * boundary), at least a chunk; a tenth if the tree did not fit at
     * all.  If that is not enough, the next attempt grows it again.
     */
    step = cramped + chunk_blocks;
    if (cramped == 0)
      step = cur / 10;
    if (step < chunk_blocks)
      step = chunk_blocks;
    /* NB: growing for scattered blocks costs a chunk beyond them (the
     * gap before a boundary).  In an image of under 20 chunks that is
     * more than the 5 % it may outgrow its data by (issue 12): there,
     * less than a chunk of blocks stays scattered, in a few chunks of
     * an image that has few.
     */
    if (cramped && cramped < chunk_blocks &&
        cur < CRAMPED_MIN_CHUNKS * chunk_blocks)
      return false;
    next = grown_size (o, cur + step);
  }
  if (mostly_free (o, est_blocks, next, l->block_size))
    return false;
  *blocks = next;
  return true;
}

/* Grow the empty file system to blocks with resize2fs (deterministic:
 * the same sizes give the same bytes).
 *
 * NB: with flex_bg, resize2fs puts a new group's bitmaps and inode
 * table beside the first groups' (in the gaps mke2fs leaves for them,
 * and after the inode tables), where the base has files: those would
 * have to move.  So the flex group size is set to one while it runs,
 * which puts each new group's metadata in that group, past the base's
 * blocks, and restored after (flex_bg lets metadata lie anywhere).
 * Then the backup superblocks it adds are dropped (drop_backup_supers).
 */
static int
grow_fs (const struct mkimage_options *o, const char *image, uint64_t blocks)
{
  char nr_blocks[32], fake_time[48];
  const char *argv[] = { "resize2fs", "-f", image, nr_blocks, NULL };
  const char *env[] = { fake_time, "LC_ALL=C", NULL };
  unsigned log;

  snprintf (nr_blocks, sizeof nr_blocks, "%" PRIu64, blocks);
  snprintf (fake_time, sizeof fake_time, "E2FSPROGS_FAKE_TIME=%" PRIu32,
            o->epoch);
  if (set_log_groups_per_flex (o, image, 0, &log) == -1 ||
      run_program ("resize2fs", argv, env, workdir_file ("resize2fs.log")) ==
          -1 ||
      set_log_groups_per_flex (o, image, log, NULL) == -1)
    return -1;
  return 0;
}

/* Zero the unused extent slots in every inode: a directory that had
 * more extents than it ends with (e2fsck -D's rewrite, a run moved)
 * keeps the old entries past eh_entries, and what they say differs
 * from version to version, changing the inode's bytes and checksum,
 * so a chunk of the inode table, for nothing (the kernel never reads
 * them).  Inodes whose i_block holds data (inline, fast symbolic
 * links) have no extent flag.  0, or -1 (error reported).
 */
static int
scrub_extent_slots (const struct mkimage_options *o, const char *image)
{
  ext2_filsys fs = NULL;
  ext2_inode_scan scan = NULL;
  struct ext2_inode_large inode;
  struct ext3_extent_header *eh;
  static const char zeros[sizeof inode.i_block];
  uint64_t scrubbed = 0;
  ext2_ino_t ino;
  errcode_t err;
  size_t used;

  err = ext2fs_open (image, EXT2_FLAG_RW | EXT2_FLAG_64BITS, 0, 0,
                     unix_io_manager, &fs);
  /* Closing it writes the superblock: its s_wtime must be the fixed
   * epoch, not the clock (ext2fs_flush takes fs->now, else time()).
   */
  if (err == 0)
    fs->now = o->epoch;
  if (err == 0)
    err = ext2fs_open_inode_scan (fs, 0, &scan);
  while (err == 0) {
    err = ext2fs_get_next_inode_full (scan, &ino, (struct ext2_inode *) &inode,
                                      sizeof inode);
    if (err || ino == 0)
      break;
    if (inode.i_links_count == 0 || !(inode.i_flags & EXT4_EXTENTS_FL) ||
        (inode.i_flags & EXT4_INLINE_DATA_FL))
      continue;
    eh = (struct ext3_extent_header *) inode.i_block;
    if (ext2fs_le16_to_cpu (eh->eh_magic) != EXT3_EXT_MAGIC ||
        ext2fs_le16_to_cpu (eh->eh_entries) > 4)
      continue; /* not ours to judge: e2fsck passed it */
    used = sizeof *eh +
        ext2fs_le16_to_cpu (eh->eh_entries) * sizeof (struct ext3_extent);
    if (memcmp ((char *) inode.i_block + used, zeros,
                sizeof inode.i_block - used) == 0)
      continue;
    memset ((char *) inode.i_block + used, 0, sizeof inode.i_block - used);
    err = ext2fs_write_inode_full (fs, ino, (struct ext2_inode *) &inode,
                                   sizeof inode);
    scrubbed++;
  }
  if (scan)
    ext2fs_close_inode_scan (scan);
  if (err == 0)
    err = ext2fs_close_free (&fs);
  else if (fs)
    ext2fs_close_free (&fs);
  if (err) {
    report_error ("%s: clearing unused extent slots: %s", image,
                  ext4_strerror (err));
    return -1;
  }
  report_debug ("cleared unused extent slots in %" PRIu64 " inodes", scrubbed);
  return 0;
}

/* Punch out every free block of the image: e2fsck -D leaves the old
 * linear directory blocks it replaced behind in free space, where they
 * would cost chunks that no file needs.  Free space is then all zeros.
 */
static int
zero_free_blocks (const char *image)
{
  ext2_filsys fs;
  errcode_t err;
  blk64_t b, end, next_free, next_used;
  int fd = -1, ret = -1;
  uint64_t punched = 0;

  err = ext2fs_open (image, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs);
  if (err == 0)
    err = ext2fs_read_block_bitmap (fs);
  if (err) {
    report_error ("%s: reading the block bitmap: %s", image,
                  ext4_strerror (err));
    if (fs)
      ext2fs_close_free (&fs);
    return -1;
  }
  fd = open (image, O_RDWR | O_CLOEXEC);
  if (fd == -1) {
    report_error ("%s: open: %m", image);
    goto out;
  }
  end = ext2fs_blocks_count (fs->super) - 1;
  for (b = fs->super->s_first_data_block; b <= end; b = next_used) {
    if (ext2fs_find_first_zero_block_bitmap2 (fs->block_map, b, end,
                                              &next_free))
      break;
    if (ext2fs_find_first_set_block_bitmap2 (fs->block_map, next_free, end,
                                             &next_used))
      next_used = end + 1;
    if (fallocate (fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                   (off_t) next_free * fs->blocksize,
                   (off_t) (next_used - next_free) * fs->blocksize) == -1) {
      report_error ("%s: punching out free blocks: %m", image);
      goto out;
    }
    punched += next_used - next_free;
  }
  report_debug ("punched out %" PRIu64 " free blocks", punched);
  ret = 0;

out:
  if (fd != -1)
    close (fd);
  ext2fs_close_free (&fs);
  return ret;
}

int
ext4_build (const struct mkimage_options *o, const char *image,
            struct build_result *r)
{
  unsigned char digest[32];
  uint64_t blocks, inodes, used = 0, total = 0, unused, free_blocks;
  uint64_t est_blocks, est_inodes, based_blocks = 0;
  struct estimate e4[2], e1[2];
  uint64_t ref;
  const struct estimate *fresh, *layouts[4];
  struct ext4_base *base = NULL;
  bool resized = false, grow = false;
  uint64_t cramped, made_inodes, table, stored, bpg;
  uint64_t too_small = 0; /* on a base: the largest size that was */
  struct groups groups;
  unsigned inode_size = EXT4_INODE_SIZE, block_size = EXT4_BLOCK_SIZE;
  struct stat st;
  size_t i;
  int p = 1;

  if (estimate (o, EXT4_BLOCK_SIZE, e4, &est_inodes, r) == -1 ||
      estimate (o, EXT4_SMALL_BLOCK_SIZE, e1, &est_inodes, r) == -1)
    return -1;
  /* A fresh layout has 4 KiB blocks and 256-byte inodes, unless small
   * files inline (1 KiB inodes), 1 KiB blocks or both make the image
   * at least LAYOUT_GAIN_PERCENT smaller (then the smallest of those):
   * what a file takes in the image is also what adding one costs a
   * node.  A new version keeps its base's block and inode sizes.
   */
  layouts[0] = &e4[0];
  layouts[1] = &e4[1];
  layouts[2] = &e1[0];
  layouts[3] = &e1[1];
  /* The reference: 256-byte inodes, of --block-size if given. */
  fresh = o->block_size == EXT4_SMALL_BLOCK_SIZE ? layouts[2] : layouts[0];
  ref = fresh->blocks * fresh->block_size;
  for (i = 0; i < 4; i++)
    if ((o->block_size == 0 || layouts[i]->block_size == o->block_size) &&
        layouts[i]->blocks * layouts[i]->block_size * 100 <=
            ref * (100 - LAYOUT_GAIN_PERCENT) &&
        layouts[i]->blocks * layouts[i]->block_size <
            fresh->blocks * fresh->block_size)
      fresh = layouts[i];
  est_blocks = fresh->blocks;
  if (o->base) {
    const struct manifest_fs_layout *l = ext4_base_layout (o->base);
    const struct estimate *b = NULL;

    if (ext4_base_match (o->base, o->src) == -1)
      return -1;
    for (i = 0; i < 4; i++)
      if (layouts[i]->block_size == l->block_size &&
          layouts[i]->inode_size == l->inode_size)
        b = layouts[i];
    if (b == NULL)
      report_warning ("%s: the base's blocks and inodes are %u and %u bytes, "
                      "which accel-mkimage does not make: making a fresh "
                      "layout, which nodes fetch again in full",
                      o->src, l->block_size, l->inode_size);
    /* NB: without the holes of the tree's sparse files, which the
     * image does not store either: a base is grown (and judged mostly
     * free) for the blocks the tree needs, not for its files' sizes
     * (a 200 MiB sparse file would have grown a 30 MiB base to 237
     * MiB, all of it kept by every later version), and republishing
     * an unchanged tree with sparse files gives the same image.  If the
     * source's block counts say less than it holds (a compressing file
     * system), the build does not fit and grows step by step
     * (grow_more).
     */
    else if (base_geometry (o, b->data - b->holes, est_inodes, &based_blocks)) {
      base = o->base;
      inode_size = b->inode_size;
      block_size = b->block_size;
      est_blocks = based_estimate (o, b->data - b->holes, est_inodes);
    }
    grow = base && based_blocks > ext4_base_layout (base)->blocks;
  }
  for (r->attempts = 1; r->attempts <= MAX_ATTEMPTS; r->attempts++) {
    if (r->attempts == 1 || (base == NULL && p == 1 && r->based)) {
      /* The first attempt, or the first fresh one after the base's
       * geometry turned out too small.
       */
      r->based = base != NULL;
      if (base) {
        blocks = ext4_base_layout (base)->mkfs_blocks;
        inodes = ext4_base_layout (base)->mkfs_inodes;
      }
      else {
        inode_size = fresh->inode_size;
        block_size = fresh->block_size;
        blocks = fresh->blocks + slack_blocks (o, fresh->blocks, block_size);
        inodes = fresh_inodes (est_inodes, blocks, block_size, inode_size);
      }
    }
    if (base == NULL)
      blocks = fresh_size (o, blocks, inodes, inode_size, block_size);
    report_debug ("attempt %u: %" PRIu64 " blocks of %u bytes, %" PRIu64
                  " inodes of %u%s",
                  r->attempts, blocks, block_size, inodes, inode_size,
                  base ? " (the base's)" : "");
    groups = base ? base_mkfs_groups (ext4_base_layout (base))
                  : fresh_groups (blocks, inodes, block_size);
    if (make_fs (o, image, blocks, inodes, inode_size, block_size, &groups) ==
        -1)
      return -1;
    /* NB: mke2fs rounds the inodes up to whole inode table blocks; the
     * manifest records what it made, which it makes again when asked.
     */
    if (read_counts (image, &r->mkfs_blocks, &r->mkfs_inodes, &unused) == -1)
      return -1;
    if (base) {
      uint64_t to = grow ? based_blocks : ext4_base_layout (base)->blocks;

      if (to > blocks && grow_fs (o, image, to) == -1)
        return -1;
    }
    p = ext4_populate (o, image, r->file_bytes, base, digest, &cramped);
    if (p == 0)
      p = index_dirs (o, image);
    if (p == -1)
      return -1;
    /* On a base, a tree that did not fit, or large files that did not
     * find whole chunks to go to (their blocks scattered over chunks
     * that would not change otherwise), grow the file system, within
     * what base_geometry allows.
     */
    if (base && (p == 1 || cramped) && r->attempts < MAX_ATTEMPTS) {
      too_small = grow ? based_blocks : ext4_base_layout (base)->blocks;
      if (grow_more (o, est_blocks, grow, p == 1 ? 0 : cramped,
                     &based_blocks)) {
        report_debug ("%s: growing the file system to %" PRIu64 " blocks",
                      p == 1 ? "the tree did not fit"
                             : "new blocks found no free chunks",
                      based_blocks);
        grow = true;
        continue;
      }
    }
    if (p == 1 && base) {
      report_warning ("%s: the tree did not fit in the base's file system: "
                      "making a fresh layout, which nodes fetch again in "
                      "full",
                      o->src);
      base = NULL;
      continue;
    }
    if (p == 1) {
      /* Too small: 10% more, and again. */
      blocks += blocks / 10 > 256 ? blocks / 10 : 256;
      continue;
    }
    if (read_counts (image, &total, &made_inodes, &free_blocks) == -1)
      return -1;
    used = total - free_blocks;
    report_debug ("%" PRIu64 " of %" PRIu64 " blocks used", used, total);
    /* On a base grown for far more than the tree stored (runs of zeros
     * in files the source does not keep sparse: the sizing counts them,
     * the image stores holes), again at the size that what it stored
     * needs, as if the source had been sparse; or a fresh layout, if
     * that would leave the base mostly free.  Once.
     */
    if (base && !resized && total > ext4_base_layout (base)->blocks &&
        (total - used) * 100 > total * BASE_SHRINK_FREE_PERCENT &&
        total - used > 2 * slack_blocks (o, used, block_size) &&
        r->attempts + 2 < MAX_ATTEMPTS) {
      resized = true;
      stored = used - based_metadata (o, total);
      est_blocks = based_estimate (o, stored, est_inodes);
      if (!base_geometry (o, stored, est_inodes, &based_blocks)) {
        base = NULL;
        p = 1; /* so the next attempt starts a fresh layout */
        resized = false; /* which may shrink in turn */
        continue;
      }
      /* NB: never back to a size found too small or cramped: that
       * would replay the attempts that grew it.
       */
      if (based_blocks < total && based_blocks > too_small) {
        report_debug ("the tree stored %" PRIu64 " blocks: again at %" PRIu64,
                      used, based_blocks);
        grow = based_blocks > ext4_base_layout (base)->blocks;
        continue;
      }
    }
    if (base || resized ||
        total - used <= 64 + slack_blocks (o, used, block_size) ||
        (total - used) * 100 <= total * SHRINK_FREE_PERCENT +
                slack_blocks (o, used, block_size) * 100)
      break;
    /* Much too big (zeros counted as data): again, at the size of
     * what this attempt stored (less its inode table, which was sized
     * for its size too) with the metadata, margin and slack of that
     * size.  Deterministic: so is this attempt.
     */
    table = (made_inodes * inode_size + block_size - 1) / block_size;
    stored = used > table ? used - table : 0;
    inodes =
        fresh_inodes (est_inodes, stored + slack_blocks (o, stored, block_size),
                      block_size, inode_size);
    blocks = fs_blocks (stored, inodes, inode_size, block_size, &bpg);
    blocks += blocks / 2000 + 16 + slack_blocks (o, stored, block_size);
    resized = true;
  }
  if (p != 0 || r->attempts > MAX_ATTEMPTS) {
    report_error ("%s: the tree did not fit after %d attempts", o->src,
                  MAX_ATTEMPTS);
    return -1;
  }
  r->based = base != NULL;
  if (scrub_extent_slots (o, image) == -1 || zero_free_blocks (image) == -1)
    return -1;
  r->free_bytes = (total - used) * block_size;

  if (stat (image, &st) == -1) {
    report_error ("%s: stat: %m", image);
    return -1;
  }
  r->image_size = st.st_size;
  return 0;
}
