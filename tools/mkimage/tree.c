/* accel-mkimage: walk the source tree in an order that depends only on
 * its names.
 *
 * The same tree must give the same image whatever file system it sits
 * on and in whatever order its files were created, so nothing may
 * depend on readdir order: each directory is read whole and its names
 * are sorted with strcmp (bytes, not the locale's collation, which
 * differs between machines).  Then all its entries are visited, the
 * directory is declared done, and its subdirectories are walked the
 * same way, in that order.  Visiting a whole directory before going
 * down lets a visitor write each directory's entries in one go (see
 * ext4-dir.c).  Symbolic links are never followed; every entry is
 * described by lstat.
 *
 * Hard links are recognised by (st_dev, st_ino) in a tsearch tree, so
 * that the first path of a set (in walk order) owns the data and the
 * others link to it.  Links leading outside the tree do not count.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <search.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "manifest.h"
#include "report.h"
#include "mkimage.h"

/* Names in one directory, sorted. */
struct names {
  char **v;
  size_t len, cap;
};

static void
names_free (struct names *n)
{
  size_t i;

  for (i = 0; i < n->len; i++)
    free (n->v[i]);
  free (n->v);
  n->v = NULL;
  n->len = n->cap = 0;
}

static int
compare_names (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* Read every name of the directory open as fd except "." and "..",
 * sorted.  NB: fdopendir takes fd over, so it reads from a duplicate
 * and fd stays usable for openat.  0, or -1 (error reported).
 */
static int
read_names (int fd, const char *path, struct names *n)
{
  struct dirent *d;
  DIR *dir;
  int dup_fd;

  dup_fd = fcntl (fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd == -1) {
    report_error ("%s: dup: %m", path);
    return -1;
  }
  dir = fdopendir (dup_fd);
  if (dir == NULL) {
    report_error ("%s: fdopendir: %m", path);
    close (dup_fd);
    return -1;
  }
  for (;;) {
    errno = 0;
    d = readdir (dir);
    if (d == NULL)
      break;
    if (strcmp (d->d_name, ".") == 0 || strcmp (d->d_name, "..") == 0)
      continue;
    if (n->len == n->cap) {
      size_t cap = n->cap ? n->cap * 2 : 64;
      char **v = realloc (n->v, cap * sizeof *v);

      if (v == NULL)
        goto nomem;
      n->v = v;
      n->cap = cap;
    }
    n->v[n->len] = strdup (d->d_name);
    if (n->v[n->len] == NULL)
      goto nomem;
    n->len++;
  }
  if (errno != 0) {
    report_error ("%s: readdir: %m", path);
    goto err;
  }
  closedir (dir);
  if (n->len > 0)
    qsort (n->v, n->len, sizeof n->v[0], compare_names);
  return 0;

nomem:
  report_error ("%s: reading the directory: %m", path);
err:
  closedir (dir);
  names_free (n);
  return -1;
}

/* "dir/name", or "name" below the root. */
static char *
join_path (const char *dir, const char *name)
{
  char *p;

  if (asprintf (&p, "%s%s%s", dir, *dir ? "/" : "", name) == -1) {
    report_error ("%s: asprintf: %m", name);
    return NULL;
  }
  return p;
}

/* Visit the children of the directory open as fd (path relative to
 * src, handle what visit stored for the directory itself), call done,
 * then descend into the subdirectories.  NB: recursion depth is the
 * depth of the tree, one open fd per level.
 */
static int
walk_dir (const char *src, int fd, const char *path, uint64_t handle,
          const struct tree_ops *ops, void *opaque)
{
  struct names n = { 0 };
  uint64_t *handles = NULL;
  unsigned char *is_dir = NULL;
  size_t i;
  int r = -1;

  if (read_names (fd, *path ? path : src, &n) == -1)
    return -1;
  handles = calloc (n.len + 1, sizeof *handles);
  is_dir = calloc (n.len + 1, 1);
  if (handles == NULL || is_dir == NULL) {
    report_error ("%s/%s: calloc: %m", src, path);
    goto out;
  }

  for (i = 0; i < n.len; i++) {
    CLEANUP_FREE char *child = join_path (path, n.v[i]);
    struct tree_node node;
    struct stat st;

    if (child == NULL)
      goto out;
    /* The manifest stores "/" + path (the ext4 layout every path). */
    if (strlen (child) + 1 > MANIFEST_MAX_PATH_LEN) {
      report_error ("%s/%.200s...: a path in the tree is longer than %d "
                    "bytes, the manifest's limit",
                    src, child, MANIFEST_MAX_PATH_LEN - 1);
      goto out;
    }
    if (fstatat (fd, n.v[i], &st, AT_SYMLINK_NOFOLLOW) == -1) {
      report_error ("%s/%s: stat: %m", src, child);
      goto out;
    }
    node.path = child;
    node.name = n.v[i];
    node.dirfd = fd;
    node.st = &st;
    node.parent = handle;
    if (ops->visit (opaque, &node, &handles[i]) == -1)
      goto out;
    is_dir[i] = S_ISDIR (st.st_mode);
  }
  if (ops->dir_done && ops->dir_done (opaque, handle) == -1)
    goto out;

  for (i = 0; i < n.len; i++) {
    CLEANUP_FREE char *child = NULL;
    int child_fd;

    if (!is_dir[i])
      continue;
    child = join_path (path, n.v[i]);
    if (child == NULL)
      goto out;
    child_fd =
        openat (fd, n.v[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (child_fd == -1) {
      report_error ("%s/%s: open: %m", src, child);
      goto out;
    }
    r = walk_dir (src, child_fd, child, handles[i], ops, opaque);
    close (child_fd);
    if (r == -1)
      goto out;
    r = -1;
  }
  r = 0;

out:
  free (handles);
  free (is_dir);
  names_free (&n);
  return r;
}

int
tree_walk (const char *src, const struct tree_ops *ops, void *opaque)
{
  struct tree_node root;
  uint64_t handle = 0;
  struct stat st;
  int fd, r;

  /* NB: the root may be a symbolic link to a directory: that is how a
   * user names it, so it is followed; nothing below it is.
   */
  fd = open (src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd == -1) {
    if (errno == ENOTDIR)
      report_error ("%s: not a directory", src);
    else
      report_error ("%s: open: %m", src);
    return -1;
  }
  if (fstat (fd, &st) == -1) {
    report_error ("%s: stat: %m", src);
    close (fd);
    return -1;
  }
  root.path = "";
  root.name = "";
  root.dirfd = -1;
  root.st = &st;
  root.parent = 0;
  r = ops->visit (opaque, &root, &handle);
  if (r == 0)
    r = walk_dir (src, fd, "", handle, ops, opaque);
  close (fd);
  return r;
}

/* The hard link set: a tsearch tree of these. */
struct link_key {
  dev_t dev;
  ino_t ino;
  int64_t value;
};

struct tree_links {
  void *root;
};

static int
compare_links (const void *a, const void *b)
{
  const struct link_key *x = a, *y = b;

  if (x->dev != y->dev)
    return x->dev < y->dev ? -1 : 1;
  if (x->ino != y->ino)
    return x->ino < y->ino ? -1 : 1;
  return 0;
}

struct tree_links *
tree_links_new (void)
{
  struct tree_links *l = calloc (1, sizeof *l);

  if (l == NULL)
    report_error ("hard links: calloc: %m");
  return l;
}

void
tree_links_free (struct tree_links *l)
{
  if (l == NULL)
    return;
  tdestroy (l->root, free);
  free (l);
}

/* Find st's entry: NULL if there is none. */
static struct link_key *
find_link (struct tree_links *l, const struct stat *st)
{
  struct link_key k = { .dev = st->st_dev, .ino = st->st_ino };
  struct link_key **found = tfind (&k, &l->root, compare_links);

  return found ? *found : NULL;
}

int64_t
tree_links_find (struct tree_links *l, const struct stat *st)
{
  struct link_key *k = find_link (l, st);

  return k ? k->value : 0;
}

int
tree_links_add (struct tree_links *l, const struct stat *st, int64_t value)
{
  struct link_key *k = malloc (sizeof *k);

  if (k == NULL) {
    report_error ("hard links: malloc: %m");
    return -1;
  }
  k->dev = st->st_dev;
  k->ino = st->st_ino;
  k->value = value;
  if (tsearch (k, &l->root, compare_links) == NULL) {
    report_error ("hard links: tsearch: %m");
    free (k);
    return -1;
  }
  return 0;
}

int
tree_check_for_tool (const char *tool, const char *src, const char *real_src,
                     const struct tree_node *n)
{
  int fd;

  if (n->dirfd == -1)
    return 0;
  if (strlen (real_src) + 1 + strlen (n->path) >= PATH_MAX) {
    report_error ("%s/%.200s...: %s cannot read a path of %d bytes or more "
                  "(with SRC_DIR resolved to %s)",
                  src, n->path, tool, PATH_MAX, real_src);
    return -1;
  }
  if (!S_ISREG (n->st->st_mode))
    return 0;
  fd = openat (n->dirfd, n->name,
               O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd == -1) {
    report_error ("%s/%s: open: %m", src, n->path);
    return -1;
  }
  close (fd);
  return 0;
}
