/* accel: which files differ between two versions of an image, from
 * their manifests (accel-inspect --diff).
 *
 * The manifests say, for each file, its path, size and mode and which
 * image bytes hold it, but not a hash of its contents.  So a file is
 * classified by what the manifests can prove:
 *
 *  - added, removed: its path is only in NEW, or only in OLD;
 *  - renamed: a removed and an added file that provably hold the same
 *    bytes: the same size and mode, and each extent at the same offset
 *    within chunks of the same contents (see fingerprint).  A renamed
 *    file whose chunks also hold something that changed (in ext4, a
 *    directory block beside it) cannot be proved, and is listed as
 *    removed and added;
 *  - modified: the same path, another size or mode;
 *  - fetched: the same path, size and mode, but some of its bytes are
 *    in chunks NEW has and OLD lacks: edited in place, moved to other
 *    offsets, or sharing a chunk with a change (the manifests cannot
 *    tell these apart);
 *  - unchanged: none of those (counted, not listed).
 *
 * Every entry carries the bytes of the file that lie in chunks to fetch
 * (manifest_diff_needed).  OLD's files are held in memory (path, size,
 * mode), NEW's are walked once; the entries are collected, then handed
 * over in path order.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "grow.h"
#include "manifest.h"
#include "report.h"

/* A file of OLD, or an added file of NEW (a rename candidate). */
struct file_rec {
  char *path;
  uint64_t size, fetch;
  uint32_t mode;
  bool seen; /* OLD: NEW has this path.  NEW: paired as a rename. */
  bool provable; /* fingerprint is set */
  unsigned char fingerprint[32];
};

struct file_list {
  struct file_rec *f;
  size_t n, alloc;
};

/* The walk over NEW's files. */
struct walk {
  struct manifest *old, *new;
  const struct manifest_diff *d;
  struct file_list old_files, added;
  struct manifest_file_change *out; /* entries to hand over */
  size_t nr_out, alloc_out;
  struct manifest_file_counts *counts;
};

/* Append a file (its path copied).  0, or -1 (error reported). */
static int
list_add (struct file_list *l, const char *path, uint64_t size, uint32_t mode)
{
  if (grow_array (&l->f, &l->alloc, l->n, sizeof *l->f, 1024) == -1)
    return -1;
  memset (&l->f[l->n], 0, sizeof l->f[l->n]);
  l->f[l->n].path = strdup (path);
  if (l->f[l->n].path == NULL) {
    report_error ("strdup: %m");
    return -1;
  }
  l->f[l->n].size = size;
  l->f[l->n].mode = mode;
  l->n++;
  return 0;
}

/* Free a list and the paths it holds. */
static void
list_free (struct file_list *l)
{
  size_t i;

  for (i = 0; i < l->n; i++)
    free (l->f[i].path);
  free (l->f);
}

/* Queue one entry.  The strings belong to the walk's lists. */
static int
emit (struct walk *w, const char *change, const char *path,
      const char *old_path, uint64_t size, uint64_t fetch)
{
  if (grow_array (&w->out, &w->alloc_out, w->nr_out, sizeof *w->out, 256) == -1)
    return -1;
  w->out[w->nr_out++] = (struct manifest_file_change){
    .change = change,
    .path = path,
    .old_path = old_path,
    .size = size,
    .fetch = fetch,
  };
  return 0;
}

/* Whether a file's bytes are all in its extents: ext4 holes read as
 * zeros; elsewhere an unmapped byte may be compressed data.
 */
static bool
fully_mapped (struct manifest *m, uint64_t size, uint64_t mapped)
{
  return mapped == size || strcmp (manifest_fs_type (m), "ext4") == 0;
}

/* Look at one file of m: the bytes of it in chunks to fetch (if d is
 * not NULL) and its fingerprint: SHA-256 over its size and mode, then
 * for each extent its file offset, length, offset within its first
 * chunk and the hashes of the chunks it spans.  Equal fingerprints from
 * two manifests with one chunk size mean equal bytes (where every byte
 * is mapped).  0, or -1 (error reported).
 */
static int
look_at_file (struct manifest *m, const struct manifest_diff *d,
              struct file_rec *r)
{
  uint64_t cs = manifest_chunk_size (m), mapped = 0, idx;
  struct manifest_extent *ext = NULL;
  struct manifest_file f;
  unsigned char h[32];
  EVP_MD_CTX *ctx = NULL;
  size_t n, i;
  int ret = -1;

  switch (manifest_file_extents (m, r->path, &f, &ext, &n)) {
  case -1:
    return -1;
  case 1:
    report_error ("%s: listed but not found", r->path);
    return -1;
  }
  ctx = EVP_MD_CTX_new ();
  if (ctx == NULL || EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL) != 1) {
    report_error ("%s: SHA-256 failed", r->path);
    goto out;
  }
  EVP_DigestUpdate (ctx, &f.size, sizeof f.size);
  EVP_DigestUpdate (ctx, &f.mode, sizeof f.mode);
  for (i = 0; i < n; i++) {
    uint64_t start = ext[i].image_offset, end = start + ext[i].length;
    uint64_t within = start % cs;

    EVP_DigestUpdate (ctx, &ext[i].file_offset, sizeof ext[i].file_offset);
    EVP_DigestUpdate (ctx, &ext[i].length, sizeof ext[i].length);
    EVP_DigestUpdate (ctx, &within, sizeof within);
    mapped += ext[i].length;
    for (idx = start / cs; idx * cs < end; idx++) {
      uint64_t lo = idx * cs > start ? idx * cs : start;
      uint64_t hi = (idx + 1) * cs < end ? (idx + 1) * cs : end;

      if (manifest_chunk_sha256 (m, idx, h) == -1)
        goto out;
      EVP_DigestUpdate (ctx, h, sizeof h);
      if (d && manifest_diff_needed (d, idx))
        r->fetch += hi - lo;
    }
  }
  if (EVP_DigestFinal_ex (ctx, r->fingerprint, NULL) != 1) {
    report_error ("%s: SHA-256 failed", r->path);
    goto out;
  }
  r->provable = fully_mapped (m, f.size, mapped);
  ret = 0;
out:
  EVP_MD_CTX_free (ctx);
  free (ext);
  return ret;
}

/* manifest_file_fn: keep one file of OLD (OLD's walk is in path order,
 * so the list is sorted for compare_path).
 */
static int
collect_old (void *opaque, const struct manifest_file *f)
{
  struct walk *w = opaque;

  return list_add (&w->old_files, f->path, f->size, f->mode);
}

/* bsearch over OLD's files by path (bytewise, as the walk orders). */
static int
compare_path (const void *key, const void *elem)
{
  return strcmp (key, ((const struct file_rec *) elem)->path);
}

/* One file of NEW against OLD's file of the same path. */
static int
compare_file (void *opaque, const struct manifest_file *f)
{
  struct walk *w = opaque;
  struct file_rec *o, *a;

  o = bsearch (f->path, w->old_files.f, w->old_files.n, sizeof *o,
               compare_path);
  if (o == NULL) {
    /* Added, or the new name of a rename: decided after the walk. */
    if (list_add (&w->added, f->path, f->size, f->mode) == -1)
      return -1;
    a = &w->added.f[w->added.n - 1];
    return look_at_file (w->new, w->d, a);
  }
  o->seen = true;
  /* o->fetch and o->provable now describe the file in NEW. */
  if (look_at_file (w->new, w->d, o) == -1)
    return -1;
  if (o->size != f->size || o->mode != f->mode) {
    w->counts->modified++;
    return emit (w, "modified", o->path, NULL, f->size, o->fetch);
  }
  if (o->fetch > 0) {
    w->counts->fetched++;
    return emit (w, "fetched", o->path, NULL, f->size, o->fetch);
  }
  w->counts->unchanged++;
  return 0;
}

/* Order of rename candidates: by fingerprint, then path. */
static int
compare_fingerprint (const void *a, const void *b)
{
  const struct file_rec *x = *(struct file_rec *const *) a;
  const struct file_rec *y = *(struct file_rec *const *) b;
  int c = memcmp (x->fingerprint, y->fingerprint, sizeof x->fingerprint);

  return c ? c : strcmp (x->path, y->path);
}

/* The first removed file (in path order) with a's fingerprint that is
 * not paired yet, or NULL.  cand is sorted by compare_fingerprint.
 */
static struct file_rec *
find_rename (struct file_rec **cand, size_t n, const struct file_rec *a)
{
  size_t lo = 0, hi = n, i;

  while (lo < hi) { /* the first candidate not below a's fingerprint */
    size_t mid = lo + (hi - lo) / 2;

    if (memcmp (cand[mid]->fingerprint, a->fingerprint, 32) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  for (i = lo; i < n && memcmp (cand[i]->fingerprint, a->fingerprint, 32) == 0;
       i++)
    if (!cand[i]->seen)
      return cand[i];
  return NULL;
}

/* Pair each added file with a removed one that provably has its bytes
 * (renamed); the rest are added and removed.  Chunk sizes that differ
 * prove nothing.
 */
static int
pair_renames (struct walk *w)
{
  struct file_rec **cand = NULL;
  size_t nr_cand = 0, i;
  int r = -1;

  if (!w->d->chunk_size_mismatch && w->added.n > 0) {
    cand = malloc ((w->old_files.n + 1) * sizeof *cand);
    if (cand == NULL) {
      report_error ("malloc: %m");
      return -1;
    }
    for (i = 0; i < w->old_files.n; i++) {
      struct file_rec *o = &w->old_files.f[i];

      if (o->seen)
        continue;
      o->fetch = 0;
      if (look_at_file (w->old, NULL, o) == -1)
        goto out;
      if (o->provable)
        cand[nr_cand++] = o;
    }
    if (nr_cand > 0)
      qsort (cand, nr_cand, sizeof *cand, compare_fingerprint);
  }

  for (i = 0; i < w->added.n; i++) {
    struct file_rec *a = &w->added.f[i];
    struct file_rec *o = a->provable ? find_rename (cand, nr_cand, a) : NULL;

    if (o) {
      o->seen = true;
      w->counts->renamed++;
    }
    else
      w->counts->added++;
    if (emit (w, o ? "renamed" : "added", a->path, o ? o->path : NULL, a->size,
              a->fetch) == -1)
      goto out;
  }
  for (i = 0; i < w->old_files.n; i++) {
    struct file_rec *o = &w->old_files.f[i];

    if (o->seen)
      continue;
    w->counts->removed++;
    if (emit (w, "removed", o->path, NULL, o->size, 0) == -1)
      goto out;
  }
  r = 0;
out:
  free (cand);
  return r;
}

/* The order entries are handed over in: by path, bytewise. */
static int
compare_entry (const void *a, const void *b)
{
  return strcmp (((const struct manifest_file_change *) a)->path,
                 ((const struct manifest_file_change *) b)->path);
}

/* Collect the changes while walking both maps, pair the renames, then
 * hand them over sorted.
 */
int
manifest_diff_files (struct manifest *old, struct manifest *new,
                     const struct manifest_diff *d, manifest_file_change_fn fn,
                     void *opaque, struct manifest_file_counts *counts)
{
  struct walk w = { .old = old, .new = new, .d = d, .counts = counts };
  size_t i;
  int r = -1;

  memset (counts, 0, sizeof *counts);
  if (manifest_foreach_file (old, collect_old, &w) == -1 ||
      manifest_foreach_file (new, compare_file, &w) == -1 ||
      pair_renames (&w) == -1)
    goto out;
  if (w.nr_out > 0)
    qsort (w.out, w.nr_out, sizeof *w.out, compare_entry);
  for (i = 0; i < w.nr_out; i++)
    fn (opaque, &w.out[i]);
  r = 0;
out:
  free (w.out);
  list_free (&w.added);
  list_free (&w.old_files);
  return r;
}
