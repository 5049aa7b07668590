/* accel-mkimage: the base layout, an earlier version's manifest that
 * the new image is built around.
 *
 * A node holding version 1 of a dataset fetches only those chunks of
 * version 2 whose hashes version 1 lacks, so what did not change must
 * stay where it was, to the byte.  With the same file system geometry
 * (ext4.c makes the empty file system with the base's block and inode
 * counts, UUID and hash seed), the metadata areas are where they were,
 * and this file keeps the rest in place:
 *
 *   - every path of the new tree that the base has, with the same file
 *     type, keeps its inode number (so its slot in the inode table);
 *   - a regular file keeps the blocks its first bytes had (as far as it
 *     is still long), a directory the blocks it had;
 *   - everything else is free for new and grown files (ext4-alloc.c),
 *     so space left by deleted files is reused.
 *
 * The base is only its manifest (the layout that accel-index records:
 * manifest.h, struct manifest_fs_layout), never the old image.  Before
 * the tree is copied in, the kept inodes and blocks are marked in use
 * in the file system's bitmaps (without counting them, so that
 * libext2fs's allocators pass them over); when the copy reaches a kept
 * entry, its inode and then each of its blocks are claimed (unmarked,
 * then allocated as usual), and whatever was never claimed is unmarked
 * at the end.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <ext2fs/ext2fs.h>

#include "manifest.h"
#include "report.h"
#include "mkimage.h"
#include "ext4.h"

/* Levels of renames inside renamed directories that are followed. */
#define MAX_RENAME_PASSES 32

/* A path of the base.  path is relative, as tree_walk gives it ("" for
 * the root).
 */
struct base_node {
  char *path;
  uint32_t ino, mode;
  uint64_t size; /* a regular file's in the base (0 for others) */
  uint64_t new_size; /* the new tree's size of a kept regular file */
  bool kept; /* the new tree has this path, of the same type */
};

/* count blocks of inode ino from its logical block lblk are at block. */
struct base_run {
  uint32_t ino;
  uint64_t lblk, block, count;
};

struct ext4_base {
  const char *path; /* of the manifest, for messages */
  struct manifest_fs_layout layout;
  uint32_t chunk_size;
  struct base_node *nodes; /* sorted by path */
  size_t nr_nodes, cap_nodes;
  struct base_run *runs; /* sorted by (ino, lblk) */
  size_t nr_runs, cap_runs;
  uint64_t nr_new; /* entries of the new tree the base does not have */
  ext2_ino_t new_from; /* new inodes from here on (place_new_inodes) */
  bool renames_followed; /* paths renamed as the new tree has them */
  /* Source files with several names, to the kept node (index + 1) that
   * one of them has: a name added to a kept file takes its inode even
   * if the copy reaches the new name first.
   */
  struct tree_links *links;
  /* During the copy: what is reserved and not claimed yet. */
  ext2fs_block_bitmap resv_blocks;
  /* Blocks the base used that this version frees (deleted, renamed
   * and shrunk files): new small files go there first (ext4-alloc.c).
   */
  ext2fs_block_bitmap freed_blocks;
  ext2fs_inode_bitmap resv_inodes;
};

/* manifest_foreach_node callback: keep every path. */
static int
load_node (void *opaque, const struct manifest_node *n)
{
  struct ext4_base *b = opaque;
  struct base_node *v;

  if (n->ino > b->layout.inodes) {
    report_error ("%s: inode %" PRIu64 " of %s is beyond the file system's "
                  "%" PRIu64 " inodes",
                  b->path, n->ino, n->path, b->layout.inodes);
    return -1;
  }
  if (b->nr_nodes == b->cap_nodes) {
    size_t cap = b->cap_nodes ? b->cap_nodes * 2 : 256;

    v = reallocarray (b->nodes, cap, sizeof *v);
    if (v == NULL) {
      report_error ("%s: realloc: %m", b->path);
      return -1;
    }
    b->nodes = v;
    b->cap_nodes = cap;
  }
  v = &b->nodes[b->nr_nodes];
  v->path = strdup (n->path + 1); /* without the leading '/' */
  if (v->path == NULL) {
    report_error ("%s: strdup: %m", b->path);
    return -1;
  }
  v->ino = n->ino;
  v->mode = n->mode;
  v->size = v->new_size = 0;
  v->kept = false;
  b->nr_nodes++;
  return 0;
}

/* Add a run (block numbers checked against the geometry). */
static int
add_run (struct ext4_base *b, uint64_t ino, uint64_t lblk, uint64_t block,
         uint64_t count)
{
  if (ino == 0 || ino > b->layout.inodes || count == 0 ||
      block >= b->layout.blocks || count > b->layout.blocks - block) {
    report_error ("%s: blocks of inode %" PRIu64 " lie outside the file "
                  "system",
                  b->path, ino);
    return -1;
  }
  if (b->nr_runs == b->cap_runs) {
    size_t cap = b->cap_runs ? b->cap_runs * 2 : 256;
    struct base_run *v = reallocarray (b->runs, cap, sizeof *v);

    if (v == NULL) {
      report_error ("%s: realloc: %m", b->path);
      return -1;
    }
    b->runs = v;
    b->cap_runs = cap;
  }
  b->runs[b->nr_runs++] = (struct base_run){ ino, lblk, block, count };
  return 0;
}

static int
load_node_blocks (void *opaque, const struct manifest_node_blocks *r)
{
  return add_run (opaque, r->ino, r->lblk, r->block, r->count);
}

static int
cmp_node (const void *a, const void *b)
{
  return strcmp (((const struct base_node *) a)->path,
                 ((const struct base_node *) b)->path);
}

static int
cmp_run (const void *a, const void *b)
{
  const struct base_run *x = a, *y = b;

  if (x->ino != y->ino)
    return x->ino < y->ino ? -1 : 1;
  return x->lblk < y->lblk ? -1 : x->lblk > y->lblk;
}

/* The node of a relative path, or NULL. */
static struct base_node *
find_node (const struct ext4_base *b, const char *path)
{
  struct base_node key = { .path = (char *) path };

  return bsearch (&key, b->nodes, b->nr_nodes, sizeof key, cmp_node);
}

/* manifest_foreach_file callback: a regular file's extents become runs
 * of its inode (once per inode: hard links share them).
 */
struct load_files {
  struct ext4_base *b;
  struct manifest *m;
};

static int
load_file (void *opaque, const struct manifest_file *f)
{
  struct load_files *lf = opaque;
  struct ext4_base *b = lf->b;
  uint64_t bs = b->layout.block_size;
  struct manifest_extent *e = NULL;
  struct manifest_file row;
  struct base_node *n;
  size_t nr = 0, i;
  int r = 0;

  n = find_node (b, f->path + 1);
  if (n == NULL)
    return 0; /* no inode known: nothing to keep */
  n->size = f->size;
  /* A file stored inline is mapped inside its inode: no blocks. */
  if (b->layout.inode_size == EXT4_INLINE_INODE_SIZE && f->size > 0 &&
      f->size <= EXT4_INLINE_MAX (EXT4_INLINE_INODE_SIZE))
    return 0;
  if (manifest_file_extents (lf->m, f->path, &row, &e, &nr) != 0) {
    free (e);
    return -1;
  }
  for (i = 0; r == 0 && i < nr; i++) {
    if (e[i].file_offset % bs || e[i].image_offset % bs) {
      report_error ("%s: %s: an extent is not on a block boundary", b->path,
                    f->path);
      r = -1;
      break;
    }
    r = add_run (b, n->ino, e[i].file_offset / bs, e[i].image_offset / bs,
                 (e[i].length + bs - 1) / bs);
  }
  free (e);
  return r;
}

/* Sort the runs and drop the copies hard links made. */
static void
sort_runs (struct ext4_base *b)
{
  size_t i, j = 0;

  qsort (b->runs, b->nr_runs, sizeof *b->runs, cmp_run);
  for (i = 0; i < b->nr_runs; i++)
    if (j == 0 || b->runs[j - 1].ino != b->runs[i].ino ||
        b->runs[j - 1].lblk != b->runs[i].lblk)
      b->runs[j++] = b->runs[i];
  b->nr_runs = j;
}

struct ext4_base *
ext4_base_load (const char *path)
{
  struct ext4_base *b = calloc (1, sizeof *b);
  struct manifest *m = NULL;
  struct load_files lf;
  size_t i;
  int r;

  if (b == NULL) {
    report_error ("calloc: %m");
    return NULL;
  }
  b->path = path;
  m = manifest_open (path);
  if (m == NULL)
    goto err;
  if (strcmp (manifest_fs_type (m), "ext4") != 0) {
    report_error ("%s: the base is an image of %s, not ext4 (use --no-base for "
                  "a fresh layout)",
                  path, manifest_fs_type (m));
    goto err;
  }
  r = manifest_fs_layout (m, &b->layout);
  if (r == 1)
    report_error ("%s: the base manifest has no layout (made by an older "
                  "accel-index?): index its image again, or use --no-base",
                  path);
  if (r != 0)
    goto err;
  if (b->layout.block_size != EXT4_BLOCK_SIZE &&
      b->layout.block_size != EXT4_SMALL_BLOCK_SIZE) {
    report_error ("%s: the base has %" PRIu32 "-byte blocks, not %d or %d",
                  path, b->layout.block_size, EXT4_BLOCK_SIZE,
                  EXT4_SMALL_BLOCK_SIZE);
    goto err;
  }
  b->chunk_size = manifest_chunk_size (m);
  if (manifest_foreach_node (m, load_node, b) == -1)
    goto err;
  qsort (b->nodes, b->nr_nodes, sizeof *b->nodes, cmp_node);
  for (i = 1; i < b->nr_nodes; i++)
    if (strcmp (b->nodes[i - 1].path, b->nodes[i].path) == 0) {
      report_error ("%s: path /%s is listed twice", path, b->nodes[i].path);
      goto err;
    }
  lf = (struct load_files){ b, m };
  if (manifest_foreach_node_blocks (m, load_node_blocks, b) == -1 ||
      manifest_foreach_file (m, load_file, &lf) == -1)
    goto err;
  sort_runs (b);
  manifest_close (m);
  report_debug ("base %s: %zu paths, %zu runs of blocks, %" PRIu64
                " blocks, %" PRIu64 " inodes",
                path, b->nr_nodes, b->nr_runs, b->layout.blocks,
                b->layout.inodes);
  return b;

err:
  if (m)
    manifest_close (m);
  ext4_base_free (b);
  return NULL;
}

void
ext4_base_free (struct ext4_base *b)
{
  size_t i;

  if (b == NULL)
    return;
  for (i = 0; i < b->nr_nodes; i++)
    free (b->nodes[i].path);
  free (b->nodes);
  free (b->runs);
  tree_links_free (b->links);
  free (b);
}

const struct manifest_fs_layout *
ext4_base_layout (const struct ext4_base *b)
{
  return &b->layout;
}

uint32_t
ext4_base_chunk_size (const struct ext4_base *b)
{
  return b->chunk_size;
}

/* tree_walk callback for ext4_base_match. */
static int
match_entry (void *opaque, const struct tree_node *tn, uint64_t *handle)
{
  struct ext4_base *b = opaque;
  struct base_node *n = find_node (b, tn->path);

  (void) handle;
  if (tn->dirfd != -1 &&
      !(n && (n->mode & S_IFMT) == (tn->st->st_mode & S_IFMT)))
    b->nr_new++;
  if (n && (n->mode & S_IFMT) == (tn->st->st_mode & S_IFMT)) {
    n->kept = true;
    n->new_size = S_ISREG (tn->st->st_mode) ? tn->st->st_size : 0;
    if (S_ISREG (tn->st->st_mode) && tn->st->st_nlink > 1 &&
        tree_links_find (b->links, tn->st) == 0 &&
        tree_links_add (b->links, tn->st, n - b->nodes + 1) == -1)
      return -1;
  }
  return 0;
}

/* ---- renamed directories (ext4-renames.c) ---- */

/* The new tree's paths, for follow_renames. */
struct tree_paths {
  struct path_entry *v;
  size_t n, cap;
};

static int
collect_path (void *opaque, const struct tree_node *tn, uint64_t *handle)
{
  struct tree_paths *t = opaque;
  char *path;

  (void) handle;
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 256;
    struct path_entry *v = reallocarray (t->v, cap, sizeof *v);

    if (v == NULL) {
      report_error ("realloc: %m");
      return -1;
    }
    t->v = v;
    t->cap = cap;
  }
  path = strdup (tn->path);
  if (path == NULL) {
    report_error ("strdup: %m");
    return -1;
  }
  t->v[t->n++] =
      (struct path_entry){ path, tn->st->st_mode,
                           S_ISREG (tn->st->st_mode) ? tn->st->st_size : 0,
                           S_ISREG (tn->st->st_mode) && tn->st->st_nlink > 1 };
  return 0;
}

static int
cmp_path_entry (const void *a, const void *b)
{
  return strcmp (((const struct path_entry *) a)->path,
                 ((const struct path_entry *) b)->path);
}

/* One rename of a pass: the directory's node, the nodes below it
 * (lo..hi), the length of its old path and its new path.
 */
struct node_rename {
  size_t dir, lo, hi, from_len;
  const char *to;
};

/* Give the nodes of r the names they have under r->to. */
static int
rename_nodes (struct ext4_base *b, const struct node_rename *r)
{
  size_t i;
  char *p;

  for (i = r->lo; i < r->hi; i++) {
    if (asprintf (&p, "%s%s", r->to, b->nodes[i].path + r->from_len) == -1) {
      report_error ("asprintf: %m");
      return -1;
    }
    free (b->nodes[i].path);
    b->nodes[i].path = p;
  }
  p = strdup (r->to);
  if (p == NULL) {
    report_error ("strdup: %m");
    return -1;
  }
  free (b->nodes[r->dir].path);
  b->nodes[r->dir].path = p;
  return 0;
}

static int
cmp_ino (const void *a, const void *b)
{
  uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

  return x < y ? -1 : x > y;
}

/* The base's nodes as path entries, for ext4-renames.c: in old (as many
 * as nodes), a regular file linked if its inode has other names (inos:
 * the regular files' inodes, sorted).
 */
static void
base_entries (const struct ext4_base *b, const uint32_t *inos, size_t nr_inos,
              struct path_entry *old)
{
  size_t i;

  for (i = 0; i < b->nr_nodes; i++) {
    const struct base_node *n = &b->nodes[i];
    const uint32_t *f = NULL;

    if (S_ISREG (n->mode))
      f = bsearch (&n->ino, inos, nr_inos, sizeof *inos, cmp_ino);
    /* NB: bsearch finds any of equal ones: look both ways. */
    old[i] =
        (struct path_entry){ n->path, n->mode, n->size,
                             f &&
                                 ((f > inos && f[-1] == n->ino) ||
                                  (f + 1 < inos + nr_inos && f[1] == n->ino)) };
  }
}

/* Give the base's nodes the new paths of rn (directories with all
 * below them, or single files), then sort them again.  All are looked
 * up first: renaming frees the old paths (which rn and old point to)
 * and unsorts the nodes.  The pairs are disjoint.
 */
static int
apply_renames (struct ext4_base *b, const struct path_entry *old,
               const struct ext4_rename *rn, size_t nrn)
{
  struct node_rename *nr;
  size_t i, k;
  int r = -1;

  if (nrn == 0)
    return 0; /* the nodes are sorted already */
  nr = calloc (nrn, sizeof *nr);
  if (nr == NULL) {
    report_error ("calloc: %m");
    return -1;
  }
  for (k = 0; k < nrn; k++) {
    struct base_node *d = find_node (b, rn[k].from);

    if (d == NULL) {
      report_error ("%s: renamed /%s not found", b->path, rn[k].from);
      goto out;
    }
    report_debug ("base: /%s is /%s now: %s kept", rn[k].from, rn[k].to,
                  S_ISDIR (d->mode) ? "what it holds is" : "it is");
    nr[k].dir = d - b->nodes;
    nr[k].from_len = strlen (rn[k].from);
    nr[k].to = rn[k].to;
    if (S_ISDIR (d->mode))
      ext4_paths_below (old, b->nr_nodes, rn[k].from, &nr[k].lo, &nr[k].hi);
  }
  for (k = 0; k < nrn; k++)
    if (rename_nodes (b, &nr[k]) == -1)
      goto out;
  qsort (b->nodes, b->nr_nodes, sizeof *b->nodes, cmp_node);
  for (i = 1; i < b->nr_nodes; i++)
    if (strcmp (b->nodes[i - 1].path, b->nodes[i].path) == 0) {
      report_error ("%s: renaming gave path /%s twice", b->path,
                    b->nodes[i].path);
      goto out;
    }
  r = 0;

out:
  free (nr);
  return r;
}

/* Find the directories the tree at src renamed or moved, and give the
 * base's paths in them their new names, so that what they hold is kept
 * (ext4-renames.c).  One pass per level of renames inside renamed
 * directories.  Then the same for files moved or renamed on their own.
 * 0, or -1 (error reported).
 */
static int
follow_renames (struct ext4_base *b, const char *src)
{
  struct tree_paths t = { 0 };
  struct path_entry *old = NULL;
  struct ext4_rename *rn = NULL;
  uint32_t *inos = NULL;
  size_t nrn = 0, i, total = 0, nr_inos = 0;
  int pass, r = -1;

  if (tree_walk (src, &(struct tree_ops){ .visit = collect_path }, &t) == -1)
    goto out;
  qsort (t.v, t.n, sizeof *t.v, cmp_path_entry);
  old = calloc (b->nr_nodes ? b->nr_nodes : 1, sizeof *old);
  inos = calloc (b->nr_nodes ? b->nr_nodes : 1, sizeof *inos);
  if (old == NULL || inos == NULL) {
    report_error ("calloc: %m");
    goto out;
  }
  for (i = 0; i < b->nr_nodes; i++)
    if (S_ISREG (b->nodes[i].mode))
      inos[nr_inos++] = b->nodes[i].ino;
  qsort (inos, nr_inos, sizeof *inos, cmp_ino);
  for (pass = 0; pass < MAX_RENAME_PASSES; pass++) {
    base_entries (b, inos, nr_inos, old);
    free (rn);
    if (ext4_find_renames (old, b->nr_nodes, t.v, t.n, &rn, &nrn) == -1)
      goto out;
    if (nrn == 0)
      break;
    if (apply_renames (b, old, rn, nrn) == -1)
      goto out;
    total += nrn;
  }
  if (total)
    report_debug ("%zu director%s renamed or moved: kept in place", total,
                  total == 1 ? "y" : "ies");
  base_entries (b, inos, nr_inos, old);
  free (rn);
  if (ext4_find_moved_files (old, b->nr_nodes, t.v, t.n, &rn, &nrn) == -1 ||
      apply_renames (b, old, rn, nrn) == -1)
    goto out;
  if (nrn)
    report_debug ("%zu file%s moved or renamed: kept in place", nrn,
                  nrn == 1 ? "" : "s");
  r = 0;

out:
  free (rn);
  free (inos);
  free (old);
  for (i = 0; i < t.n; i++)
    free ((char *) t.v[i].path);
  free (t.v);
  return r;
}

int
ext4_base_match (struct ext4_base *b, const char *src)
{
  size_t i, kept = 0;

  if (!b->renames_followed) {
    if (follow_renames (b, src) == -1)
      return -1;
    b->renames_followed = true;
  }
  b->nr_new = 0;
  if (b->links == NULL && (b->links = tree_links_new ()) == NULL)
    return -1;
  if (tree_walk (src, &(struct tree_ops){ .visit = match_entry }, b) == -1)
    return -1;
  for (i = 0; i < b->nr_nodes; i++)
    kept += b->nodes[i].kept;
  report_debug ("base: %zu of %zu paths are kept", kept, b->nr_nodes);
  return 0;
}

/* The runs of inode ino: index of the first, and how many. */
static size_t
find_runs (const struct ext4_base *b, uint32_t ino, size_t *n)
{
  size_t lo = 0, hi = b->nr_runs, first;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;

    if (b->runs[mid].ino < ino)
      lo = mid + 1;
    else
      hi = mid;
  }
  first = lo;
  while (lo < b->nr_runs && b->runs[lo].ino == ino)
    lo++;
  *n = lo - first;
  return first;
}

/* Reserve block blk unless something (mke2fs's metadata, the root's
 * block) already has it.
 */
static void
reserve_block (struct ext4_base *b, ext2_filsys fs, blk64_t blk)
{
  if (blk < fs->super->s_first_data_block ||
      blk >= ext2fs_blocks_count (fs->super) ||
      ext2fs_test_block_bitmap2 (fs->block_map, blk))
    return;
  ext2fs_mark_block_bitmap2 (fs->block_map, blk);
  ext2fs_mark_block_bitmap2 (b->resv_blocks, blk);
}

/* Reserve inode ino, free in fs's bitmap. */
static void
reserve_inode (struct ext4_base *b, ext2_filsys fs, ext2_ino_t ino)
{
  ext2fs_mark_inode_bitmap2 (fs->inode_map, ino);
  ext2fs_mark_inode_bitmap2 (b->resv_inodes, ino);
}

/* Where inode ino lies in the image, in bytes. */
static uint64_t
inode_offset (ext2_filsys fs, ext2_ino_t ino)
{
  uint32_t ipg = fs->super->s_inodes_per_group;

  return (uint64_t) ext2fs_inode_table_loc (fs, (ino - 1) / ipg) *
      fs->blocksize +
      (uint64_t) ((ino - 1) % ipg) * EXT2_INODE_SIZE (fs->super);
}

/* Chunks that len bytes from off touch. */
static uint64_t
chunks_touched (uint64_t off, uint64_t len, uint64_t chunk)
{
  return len ? (off + len - 1) / chunk - off / chunk + 1 : 0;
}

/* A version's new inodes would be made from the first free one on (the
 * inodes after the base's last, or those of deleted files), so their
 * slots in the inode table would cross a chunk boundary wherever the
 * base ended, and a few would land in holes left by deleted files, each
 * in a chunk of its own: a hundred new files cost three chunks of the
 * inode table where one holds them all.  So they are placed as one run
 * of free slots, contiguous in the image, that touches the fewest
 * chunks: a free run's start or a chunk boundary inside it, the lowest
 * such inode of the least cost (holes are reused when the new inodes
 * fit them).  The new inodes are handed out from there on
 * (ext4_base_claim_inode); the free ones before it stay free for a
 * later version, and for libext2fs's order once none is left after it
 * (as when no run is big enough).
 */
static void
place_new_inodes (struct ext4_base *b, ext2_filsys fs)
{
  uint64_t isize = EXT2_INODE_SIZE (fs->super), chunk = b->chunk_size;
  uint64_t len = b->nr_new * isize, off = 0, cost, best_cost = UINT64_MAX;
  uint64_t least, s, re;
  ext2_ino_t last = fs->super->s_inodes_count, rs, set, ino, best = 0;

  if (b->nr_new == 0 || b->nr_new > last || chunk % isize)
    return;
  least = (len + chunk - 1) / chunk;
  /* Each free run [rs, re). */
  for (ino = EXT2_FIRST_INO (fs->super); best_cost > least; ino = re) {
    if (ext2fs_find_first_zero_inode_bitmap2 (fs->inode_map, ino, last, &rs))
      break;
    if (ext2fs_find_first_set_inode_bitmap2 (fs->inode_map, rs, last, &set))
      re = (uint64_t) last + 1;
    else
      re = set;
    /* Its start, then each chunk boundary in it. */
    for (s = rs; s + b->nr_new <= re && best_cost > least;
         s += ((off / chunk + 1) * chunk - off) / isize) {
      off = inode_offset (fs, s);
      /* NB: the slots must follow each other in the image (one flex
       * group's inode tables).
       */
      if (inode_offset (fs, s + b->nr_new - 1) == off + len - isize) {
        cost = chunks_touched (off, len, chunk);
        if (cost < best_cost) {
          best_cost = cost;
          best = s;
        }
      }
    }
    if (re > last)
      break;
  }
  if (best == 0)
    return;
  b->new_from = best;
  report_debug ("base: %" PRIu64 " new inodes from inode %u, touching %" PRIu64
                " chunks of the inode table",
                b->nr_new, (unsigned) best, best_cost);
}

int
ext4_base_reserve (struct ext4_base *b, ext2_filsys fs)
{
  uint64_t nr_inodes = 0, nr_blocks = 0;
  errcode_t err;
  size_t i, j, first, n;

  /* NB: the groups' UNINIT flags are gone (ext4_populate). */
  err = ext2fs_allocate_block_bitmap (fs, "reserved blocks", &b->resv_blocks);
  if (err == 0)
    err = ext2fs_allocate_inode_bitmap (fs, "reserved inodes", &b->resv_inodes);
  if (err) {
    report_error ("base: allocating bitmaps: %s", ext4_strerror (err));
    return -1;
  }
  for (i = 0; i < b->nr_nodes; i++) {
    const struct base_node *nd = &b->nodes[i];
    uint64_t limit = UINT64_MAX;

    /* The root and lost+found are made by mke2fs where they were. */
    if (!nd->kept || nd->ino < EXT2_FIRST_INO (fs->super) ||
        nd->ino > fs->super->s_inodes_count)
      continue;
    if (!ext2fs_test_inode_bitmap2 (fs->inode_map, nd->ino)) {
      reserve_inode (b, fs, nd->ino);
      nr_inodes++;
    }
    if (S_ISREG (nd->mode))
      limit = (nd->new_size + fs->blocksize - 1) / fs->blocksize;
    first = find_runs (b, nd->ino, &n);
    for (j = first; j < first + n; j++) {
      const struct base_run *r = &b->runs[j];
      uint64_t k;

      for (k = 0; k < r->count && r->lblk + k < limit; k++) {
        reserve_block (b, fs, r->block + k);
        nr_blocks++;
      }
    }
  }
  /* The root's blocks after mke2fs's first one, for big roots. */
  first = find_runs (b, EXT2_ROOT_INO, &n);
  for (j = first; j < first + n; j++)
    for (i = 0; i < b->runs[j].count; i++)
      reserve_block (b, fs, b->runs[j].block + i);
  report_debug ("base: reserved %" PRIu64 " inodes and %" PRIu64 " blocks",
                nr_inodes, nr_blocks);
  place_new_inodes (b, fs);

  err = ext2fs_allocate_block_bitmap (fs, "freed blocks", &b->freed_blocks);
  if (err) {
    report_error ("base: allocating bitmaps: %s", ext4_strerror (err));
    return -1;
  }
  for (j = 0; j < b->nr_runs; j++)
    for (i = 0; i < b->runs[j].count; i++) {
      blk64_t blk = b->runs[j].block + i;

      if (blk >= fs->super->s_first_data_block &&
          blk < ext2fs_blocks_count (fs->super) &&
          !ext2fs_test_block_bitmap2 (fs->block_map, blk))
        ext2fs_mark_block_bitmap2 (b->freed_blocks, blk);
    }
  return 0;
}

blk64_t
ext4_base_freed_block (struct ext4_base *b, ext2_filsys fs, blk64_t goal)
{
  blk64_t end = ext2fs_blocks_count (fs->super) - 1, from = goal, blk;
  int pass;

  if (b->freed_blocks == NULL)
    return 0;
  if (from < fs->super->s_first_data_block || from > end)
    from = fs->super->s_first_data_block;
  for (pass = 0; pass < 2; pass++) {
    while (from <= end &&
           ext2fs_find_first_set_block_bitmap2 (b->freed_blocks, from, end,
                                                &blk) == 0) {
      if (!ext2fs_test_block_bitmap2 (fs->block_map, blk))
        return blk; /* still marked: the next call finds it used */
      ext2fs_unmark_block_bitmap2 (b->freed_blocks, blk);
      from = blk + 1;
    }
    from = fs->super->s_first_data_block;
  }
  return 0;
}

bool
ext4_base_has_blocks (const struct ext4_base *b, ext2_ino_t ino)
{
  size_t n;

  find_runs (b, ino, &n);
  return n > 0;
}

uint64_t
ext4_base_reserved_run (const struct ext4_base *b, ext2_ino_t ino, blk64_t lblk)
{
  uint64_t count = 0, k;
  size_t first, n, j;

  if (b->resv_blocks == NULL)
    return 0;
  first = find_runs (b, ino, &n);
  for (j = first; j < first + n; j++) {
    const struct base_run *r = &b->runs[j];

    if (r->lblk + r->count <= lblk + count)
      continue;
    if (r->lblk > lblk + count)
      break; /* a hole */
    for (k = lblk + count - r->lblk; k < r->count; k++) {
      if (!ext2fs_test_block_bitmap2 (b->resv_blocks, r->block + k))
        return count;
      count++;
    }
  }
  return count;
}

/* The next of the new inodes placed by place_new_inodes (the first free
 * one from there: those handed out are in use by now), or 0.
 */
static ext2_ino_t
new_inode_placed (struct ext4_base *b, ext2_filsys fs)
{
  ext2_ino_t ino;

  if (b->new_from == 0 ||
      ext2fs_find_first_zero_inode_bitmap2 (fs->inode_map, b->new_from,
                                            fs->super->s_inodes_count, &ino))
    return 0;
  b->new_from = ino;
  return ino;
}

ext2_ino_t
ext4_base_claim_inode (struct ext4_base *b, ext2_filsys fs, const char *path,
                       const struct stat *st)
{
  const struct base_node *n = find_node (b, path);
  int64_t other;

  /* A new name of a kept file (a hard link added): the kept name's. */
  if ((n == NULL || !n->kept) && S_ISREG (st->st_mode) && st->st_nlink > 1 &&
      b->links && (other = tree_links_find (b->links, st)) > 0)
    n = &b->nodes[other - 1];
  if (n == NULL || !n->kept || (n->mode & S_IFMT) != (st->st_mode & S_IFMT) ||
      n->ino > fs->super->s_inodes_count ||
      !ext2fs_test_inode_bitmap2 (b->resv_inodes, n->ino))
    return new_inode_placed (b, fs);
  ext2fs_unmark_inode_bitmap2 (b->resv_inodes, n->ino);
  ext2fs_unmark_inode_bitmap2 (fs->inode_map, n->ino);
  return n->ino;
}

blk64_t
ext4_base_claim_block (struct ext4_base *b, ext2_filsys fs, ext2_ino_t ino,
                       blk64_t lblk)
{
  size_t first, n, lo, hi;
  blk64_t blk;

  first = find_runs (b, ino, &n);
  lo = first;
  hi = first + n;
  /* The last run starting at or before lblk. */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;

    if (b->runs[mid].lblk <= lblk)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == first)
    return 0;
  if (lblk >= b->runs[lo - 1].lblk + b->runs[lo - 1].count)
    return 0;
  blk = b->runs[lo - 1].block + (lblk - b->runs[lo - 1].lblk);
  if (!ext2fs_test_block_bitmap2 (b->resv_blocks, blk))
    return 0;
  ext2fs_unmark_block_bitmap2 (b->resv_blocks, blk);
  ext2fs_unmark_block_bitmap2 (fs->block_map, blk);
  return blk;
}

void
ext4_base_release (struct ext4_base *b, ext2_filsys fs)
{
  blk64_t blk, end = ext2fs_blocks_count (fs->super) - 1, next;
  uint64_t released = 0;
  ext2_ino_t ino;

  if (b->resv_blocks == NULL)
    return;
  for (blk = fs->super->s_first_data_block; blk <= end; blk = next + 1) {
    if (ext2fs_find_first_set_block_bitmap2 (b->resv_blocks, blk, end, &next))
      break;
    ext2fs_unmark_block_bitmap2 (b->resv_blocks, next);
    ext2fs_unmark_block_bitmap2 (fs->block_map, next);
    released++;
  }
  for (ino = 1; ino <= fs->super->s_inodes_count; ino++)
    if (ext2fs_test_inode_bitmap2 (b->resv_inodes, ino)) {
      ext2fs_unmark_inode_bitmap2 (b->resv_inodes, ino);
      ext2fs_unmark_inode_bitmap2 (fs->inode_map, ino);
    }
  report_debug ("base: %" PRIu64 " reserved blocks were not used", released);
  ext2fs_free_block_bitmap (b->resv_blocks);
  if (b->freed_blocks)
    ext2fs_free_block_bitmap (b->freed_blocks);
  b->freed_blocks = NULL;
  ext2fs_free_inode_bitmap (b->resv_inodes);
  b->resv_blocks = NULL;
  b->resv_inodes = NULL;
}
