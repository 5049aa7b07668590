/* accel-mkimage: directories and files a new version renamed or moved
 * (files: ext4_find_moved_files, at the end).
 *
 * The base keeps what it has by path (ext4-base.c).  A renamed
 * directory has new paths for all it holds, so without this its files
 * would all be new ones: new inodes, and blocks wherever the allocator
 * puts them (the base's freed blocks, in order, which gets most of
 * them back but not all, and every inode slot changes).
 *
 * So a directory the base has and the new tree lacks is paired with
 * one the new tree has and the base lacks, both parents being in both
 * trees, when they hold the same entries: first those that hold
 * exactly the same (in path order if several do: deterministic, and
 * any pairing keeps a valid layout), then, best first, those that
 * share more than half of the larger one's entries (a file added or a
 * subdirectory renamed along with it).  An entry is the same if its
 * name, type and (regular files) size are: datasets often repeat names
 * in many directories (shard-0000...), and a directory paired with the
 * wrong one would keep its files' blocks for other contents, costing
 * their chunks.  The base's paths below a paired directory are then
 * renamed to the new ones, so every file in it is kept where it was;
 * renames inside it show up in the next pass, once it matches.
 */

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "report.h"
#include "mkimage.h"
#include "ext4.h"

/* Candidates weighed against each other when names differ (pass 2 of
 * ext4_find_renames): beyond this many pairs, only exact matches.
 */
#define MAX_SIMILAR_PAIRS 65536

/* A directory that may have been renamed: its path and a hash of the
 * names and types it holds.
 */
struct candidate {
  const char *path;
  uint64_t sig;
  bool paired;
};

/* The first entry whose path is >= key (entries sorted by strcmp). */
static size_t
lower_bound (const struct path_entry *e, size_t n, const char *key)
{
  size_t lo = 0, hi = n;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;

    if (strcmp (e[mid].path, key) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* The entry of path, or NULL. */
static const struct path_entry *
find (const struct path_entry *e, size_t n, const char *path)
{
  size_t i = lower_bound (e, n, path);

  return i < n && strcmp (e[i].path, path) == 0 ? &e[i] : NULL;
}

static bool
is_dir (const struct path_entry *e)
{
  return e && S_ISDIR (e->mode);
}

/* Whether path's parent is a directory in e ("" is the root's). */
static bool
parent_is_dir (const struct path_entry *e, size_t n, const char *path)
{
  const char *slash = strrchr (path, '/');
  char parent[PATH_MAX];
  size_t len;

  if (slash == NULL)
    return is_dir (find (e, n, ""));
  len = slash - path;
  if (len >= sizeof parent)
    return false;
  memcpy (parent, path, len);
  parent[len] = '\0';
  return is_dir (find (e, n, parent));
}

/* Index of dir's first child (or later descendant) in e, and through
 * *prefix_len the length of "dir/".  Everything below dir follows from
 * there, as long as the path starts with "dir/".
 */
static size_t
below (const struct path_entry *e, size_t n, const char *dir,
       size_t *prefix_len)
{
  char key[PATH_MAX];
  size_t len = strlen (dir);

  if (len + 2 > sizeof key) {
    *prefix_len = 0;
    return n;
  }
  memcpy (key, dir, len);
  key[len] = '/';
  key[len + 1] = '\0';
  *prefix_len = len + 1;
  return lower_bound (e, n, key);
}

/* Entry i is a child of the directory whose "dir/" is its first
 * prefix_len bytes (else a deeper descendant).
 */
static bool
is_child (const struct path_entry *e, size_t i, size_t prefix_len)
{
  return strchr (e[i].path + prefix_len, '/') == NULL;
}

static bool
is_below (const struct path_entry *e, size_t n, size_t i, const char *dir,
          size_t prefix_len)
{
  return i < n && strncmp (e[i].path, dir, prefix_len - 1) == 0 &&
      e[i].path[prefix_len - 1] == '/';
}

/* FNV-1a over the names, types and sizes of dir's children; 0 if it has none
 * (an empty directory has nothing to keep but itself: not matched).
 */
static uint64_t
signature (const struct path_entry *e, size_t n, const char *dir)
{
  uint64_t h = 14695981039346656037ULL;
  size_t plen, i = below (e, n, dir, &plen);
  bool any = false;
  const char *p;

  for (; is_below (e, n, i, dir, plen); i++) {
    if (!is_child (e, i, plen))
      continue;
    any = true;
    for (p = e[i].path + plen;; p++) {
      h = (h ^ (unsigned char) *p) * 1099511628211ULL;
      if (*p == '\0')
        break;
    }
    h = (h ^ ((e[i].mode & S_IFMT) >> 12)) * 1099511628211ULL;
    h = (h ^ e[i].size) * 1099511628211ULL;
  }
  return any ? h : 0;
}

/* How many names (of the same type and size) a's children in ea and
 * b's in eb share; *ca and *cb are how many each has.  Children come in name
 * order (entries are sorted by path, and a child's path is its
 * directory's and its name).
 */
static size_t
shared_children (const struct path_entry *ea, size_t na, const char *a,
                 const struct path_entry *eb, size_t nb, const char *b,
                 size_t *ca, size_t *cb)
{
  size_t pa, pb, i = below (ea, na, a, &pa), j = below (eb, nb, b, &pb);
  size_t shared = 0;
  int c;

  *ca = *cb = 0;
  for (;;) {
    while (is_below (ea, na, i, a, pa) && !is_child (ea, i, pa))
      i++;
    while (is_below (eb, nb, j, b, pb) && !is_child (eb, j, pb))
      j++;
    if (!is_below (ea, na, i, a, pa)) {
      for (; is_below (eb, nb, j, b, pb); j++)
        *cb += is_child (eb, j, pb);
      return shared;
    }
    if (!is_below (eb, nb, j, b, pb)) {
      for (; is_below (ea, na, i, a, pa); i++)
        *ca += is_child (ea, i, pa);
      return shared;
    }
    c = strcmp (ea[i].path + pa, eb[j].path + pb);
    if (c == 0 && (ea[i].mode & S_IFMT) == (eb[j].mode & S_IFMT) &&
        ea[i].size == eb[j].size)
      shared++;
    if (c <= 0) {
      (*ca)++;
      i++;
    }
    if (c >= 0) {
      (*cb)++;
      j++;
    }
  }
}

/* The directories of from that to lacks (as any type), whose parent
 * both have, holding anything: in *out (n of them), unsorted.
 */
static int
candidates (const struct path_entry *from, size_t nf,
            const struct path_entry *to, size_t nt, struct candidate **out,
            size_t *n)
{
  size_t i;

  *out = NULL;
  *n = 0;
  for (i = 0; i < nf; i++) {
    uint64_t sig;

    if (!S_ISDIR (from[i].mode) || from[i].path[0] == '\0' ||
        find (to, nt, from[i].path) || !parent_is_dir (to, nt, from[i].path) ||
        !parent_is_dir (from, nf, from[i].path))
      continue;
    sig = signature (from, nf, from[i].path);
    if (sig == 0)
      continue;
    if (*out == NULL) {
      *out = calloc (nf, sizeof **out);
      if (*out == NULL) {
        report_error ("calloc: %m");
        return -1;
      }
    }
    (*out)[(*n)++] = (struct candidate){ from[i].path, sig, false };
  }
  return 0;
}

static int
cmp_candidate (const void *a, const void *b)
{
  const struct candidate *x = a, *y = b;

  if (x->sig != y->sig)
    return x->sig < y->sig ? -1 : 1;
  return strcmp (x->path, y->path);
}

/* A possible pairing of the second pass: how many names are shared. */
struct similar {
  size_t shared, i, j;
};

static int
cmp_similar (const void *a, const void *b)
{
  const struct similar *x = a, *y = b;

  if (x->shared != y->shared)
    return x->shared > y->shared ? -1 : 1;
  if (x->i != y->i)
    return x->i < y->i ? -1 : 1;
  return x->j < y->j ? -1 : x->j > y->j;
}

static int
add_rename (struct ext4_rename **renames, size_t *n, size_t cap,
            const char *from, const char *to)
{
  if (*renames == NULL) {
    *renames = calloc (cap, sizeof **renames);
    if (*renames == NULL) {
      report_error ("calloc: %m");
      return -1;
    }
  }
  (*renames)[(*n)++] = (struct ext4_rename){ from, to };
  return 0;
}

int
ext4_find_renames (const struct path_entry *old, size_t nr_old,
                   const struct path_entry *new, size_t nr_new,
                   struct ext4_rename **renames, size_t *nr_renames)
{
  struct candidate *a = NULL, *b = NULL;
  struct similar *sim = NULL;
  size_t na = 0, nb = 0, i = 0, j = 0, ca, cb, shared, ns = 0, cap, k;
  int r = -1;

  *renames = NULL;
  *nr_renames = 0;
  if (candidates (old, nr_old, new, nr_new, &a, &na) == -1 ||
      candidates (new, nr_new, old, nr_old, &b, &nb) == -1)
    goto out;
  cap = na < nb ? na : nb;
  if (na == 0 || nb == 0)
    goto done; /* NB: also keeps NULL from qsort */
  qsort (a, na, sizeof *a, cmp_candidate);
  qsort (b, nb, sizeof *b, cmp_candidate);
  /* 1. The same names: equal signatures, in path order. */
  while (i < na && j < nb) {
    if (a[i].sig != b[j].sig) {
      if (a[i].sig < b[j].sig)
        i++;
      else
        j++;
      continue;
    }
    shared = shared_children (old, nr_old, a[i].path, new, nr_new, b[j].path,
                              &ca, &cb);
    if (shared == ca && shared == cb) {
      if (add_rename (renames, nr_renames, cap, a[i].path, b[j].path) == -1)
        goto out;
      a[i].paired = b[j].paired = true;
    }
    i++;
    j++;
  }
  /* 2. Most of the names (more than half of the larger directory's):
   * a rename inside a renamed directory changes its names too, and so
   * does a file added or deleted along with the rename.  Best first,
   * as long as there are few enough pairs to weigh.
   */
  if (na * nb > MAX_SIMILAR_PAIRS || *nr_renames == cap)
    goto done;
  sim = calloc (na * nb + 1, sizeof *sim);
  if (sim == NULL) {
    report_error ("calloc: %m");
    goto out;
  }
  for (i = 0; i < na; i++)
    for (j = 0; !a[i].paired && j < nb; j++) {
      if (b[j].paired)
        continue;
      shared = shared_children (old, nr_old, a[i].path, new, nr_new, b[j].path,
                                &ca, &cb);
      if (2 * shared > (ca > cb ? ca : cb))
        sim[ns++] = (struct similar){ shared, i, j };
    }
  qsort (sim, ns, sizeof *sim, cmp_similar);
  for (k = 0; k < ns; k++) {
    if (a[sim[k].i].paired || b[sim[k].j].paired)
      continue;
    if (add_rename (renames, nr_renames, cap, a[sim[k].i].path,
                    b[sim[k].j].path) == -1)
      goto out;
    a[sim[k].i].paired = b[sim[k].j].paired = true;
  }
done:
  r = 0;

out:
  free (sim);
  free (a);
  free (b);
  if (r == -1) {
    free (*renames);
    *renames = NULL;
    *nr_renames = 0;
  }
  return r;
}

/* ---- moved files ---- */

/* A regular file only one side has. */
struct lone_file {
  uint64_t size;
  const char *path;
};

static int
cmp_lone_file (const void *a, const void *b)
{
  const struct lone_file *x = a, *y = b;

  if (x->size != y->size)
    return x->size < y->size ? -1 : 1;
  return strcmp (x->path, y->path);
}

/* The regular files of from that to lacks (as any type), not empty and
 * with no other names, sorted by size: in *out (n of them).
 */
static int
lone_files (const struct path_entry *from, size_t nf,
            const struct path_entry *to, size_t nt, struct lone_file **out,
            size_t *n)
{
  size_t i;

  *n = 0;
  *out = calloc (nf ? nf : 1, sizeof **out);
  if (*out == NULL) {
    report_error ("calloc: %m");
    return -1;
  }
  for (i = 0; i < nf; i++)
    if (S_ISREG (from[i].mode) && from[i].size > 0 && !from[i].linked &&
        find (to, nt, from[i].path) == NULL)
      (*out)[(*n)++] = (struct lone_file){ from[i].size, from[i].path };
  qsort (*out, *n, sizeof **out, cmp_lone_file);
  return 0;
}

/* A file moved or renamed has a path the base lacks and a size that a
 * file the new tree lacks had.  Without the old contents (the base is
 * a manifest) a pair is made by size alone, where each side has only
 * one such file of that size: then it is the moved file, most likely,
 * and it keeps its inode and blocks (the new tree's bytes are written
 * into them, so they only change if it is not).  If it is a file
 * deleted and another added, the new one goes into the old one's
 * blocks, which it fits exactly: no dearer than anywhere else, and the
 * old blocks change anyway.
 */
int
ext4_find_moved_files (const struct path_entry *old, size_t nr_old,
                       const struct path_entry *new, size_t nr_new,
                       struct ext4_rename **renames, size_t *nr_renames)
{
  struct lone_file *a = NULL, *b = NULL;
  size_t na, nb, i = 0, j = 0, ei, ej, cap;
  int r = -1;

  *renames = NULL;
  *nr_renames = 0;
  if (lone_files (old, nr_old, new, nr_new, &a, &na) == -1 ||
      lone_files (new, nr_new, old, nr_old, &b, &nb) == -1)
    goto out;
  cap = na < nb ? na : nb;
  while (i < na && j < nb) {
    if (a[i].size != b[j].size) {
      if (a[i].size < b[j].size)
        i++;
      else
        j++;
      continue;
    }
    for (ei = i; ei < na && a[ei].size == a[i].size; ei++)
      ;
    for (ej = j; ej < nb && b[ej].size == b[j].size; ej++)
      ;
    if (ei - i == 1 && ej - j == 1 &&
        add_rename (renames, nr_renames, cap, a[i].path, b[j].path) == -1)
      goto out;
    i = ei;
    j = ej;
  }
  r = 0;

out:
  free (a);
  free (b);
  if (r == -1) {
    free (*renames);
    *renames = NULL;
    *nr_renames = 0;
  }
  return r;
}

void
ext4_paths_below (const struct path_entry *e, size_t n, const char *dir,
                  size_t *lo, size_t *hi)
{
  size_t plen, i = below (e, n, dir, &plen);

  *lo = i;
  while (plen && is_below (e, n, i, dir, plen))
    i++;
  *hi = plen ? i : *lo;
}
