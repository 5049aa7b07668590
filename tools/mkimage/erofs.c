/* accel-mkimage: an erofs image with mkfs.erofs, reproducibly.
 *
 * mkfs.erofs (erofs-utils 1.5) sorts each directory by name (erofs
 * looks names up by binary search), visits the tree in that order,
 * finds hard links by (st_dev, st_ino) and counts links within the
 * tree, so the tree alone decides the layout.  What it would take from
 * elsewhere is fixed:
 *
 *   -T EPOCH              every timestamp (and the build time)
 *   -U UUID               the UUID, derived from the tree's shape as
 *                         for ext4 (see tree_uuid)
 *   --all-root            owners and groups are 0
 *   -x -1                 no extended attributes
 *   SOURCE_DATE_EPOCH     unset in its environment: it would make every
 *                         inode an extended one
 *
 * File data is stored uncompressed (no -z), and with -E noinline_data:
 * each regular file is whole blocks from a block boundary, one range of
 * the image, rather than blocks plus a tail packed after its inode;
 * so a file is one extent of the manifest's file map, as in the ext4
 * and squashfs images made here, and changing a file leaves the
 * metadata blocks alone unless its size changes.  Directories and
 * symbolic links stay inline.
 *
 * NB: mkfs.erofs stores every block, zeros included (erofs has holes
 * only in chunk-based files); the plugin never fetches all-zero chunks
 * anyway.  --chunksize is not used: in 1.5 it writes every file's data
 * through a temporary file in /tmp (whatever TMPDIR says) and places it
 * all after the metadata, so that any change in the metadata's size
 * moves every file (see the README on dedup between versions).
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

#include <openssl/evp.h>

#include "cleanup.h"
#include "report.h"
#include "mkimage.h"

/* NB: erofs allows names of 255 bytes, but mkfs.erofs 1.5 fails on
 * them with "Could not format the device: No such file or directory".
 */
#define MKFS_EROFS_NAME_MAX 254

/* The superblock: 1024 bytes in, magic at 0, inode count at 16. */
#define EROFS_SB_OFFSET 1024
#define EROFS_MAGIC "\xe2\xe1\xf5\xe0"

/* What the walk finds: for the summary, the inode check and the UUID. */
struct shape {
  const char *src, *real_src;
  struct tree_links *links;
  EVP_MD_CTX *digest;
  uint64_t file_bytes, nr_entries, nr_inodes;
};

/* One record of the digest: fields separated by NUL bytes. */
static void
digest_entry (struct shape *s, char type, const char *path, mode_t mode,
              const char *detail)
{
  char head[64];
  int n;

  n = snprintf (head, sizeof head, "%c %o", type, (unsigned) (mode & 07777));
  EVP_DigestUpdate (s->digest, head, n + 1);
  EVP_DigestUpdate (s->digest, path, strlen (path) + 1);
  EVP_DigestUpdate (s->digest, detail, strlen (detail) + 1);
}

/* tree_walk callback: check the name, count the entry and add it to
 * the digest.  Hard links after the first name their set by its number
 * in walk order.
 */
static int
shape_entry (void *opaque, const struct tree_node *n, uint64_t *handle)
{
  struct shape *s = opaque;
  mode_t m = n->st->st_mode;
  char detail[PATH_MAX + 1];
  int64_t first;
  ssize_t len;

  (void) handle;
  /* NB: mkfs.erofs 1.5 crashes on a path of PATH_MAX bytes or more. */
  if (tree_check_for_tool ("mkfs.erofs", s->src, s->real_src, n) == -1)
    return -1;
  if (strlen (n->name) > MKFS_EROFS_NAME_MAX) {
    report_error ("%s/%s: mkfs.erofs (erofs-utils 1.5) cannot store a name "
                  "longer than %d bytes",
                  s->src, n->path, MKFS_EROFS_NAME_MAX);
    return -1;
  }
  if (n->dirfd != -1)
    s->nr_entries++;
  if (n->st->st_nlink > 1 && !S_ISDIR (m)) {
    first = tree_links_find (s->links, n->st);
    if (first != 0) {
      snprintf (detail, sizeof detail, "link %" PRId64, first);
      digest_entry (s, 'h', n->path, m, detail);
      return 0;
    }
    if (tree_links_add (s->links, n->st, s->nr_inodes + 1) == -1)
      return -1;
  }
  s->nr_inodes++;
  if (S_ISDIR (m))
    digest_entry (s, 'd', n->path, m, "");
  else if (S_ISREG (m)) {
    s->file_bytes += n->st->st_size;
    snprintf (detail, sizeof detail, "%" PRIu64, (uint64_t) n->st->st_size);
    digest_entry (s, 'f', n->path, m, detail);
  }
  else if (S_ISLNK (m)) {
    len = readlinkat (n->dirfd, n->name, detail, sizeof detail - 1);
    if (len == -1) {
      report_error ("%s/%s: readlink: %m", s->src, n->path);
      return -1;
    }
    detail[len] = '\0';
    digest_entry (s, 'l', n->path, m, detail);
  }
  else {
    dev_t dev = S_ISCHR (m) || S_ISBLK (m) ? n->st->st_rdev : 0;

    snprintf (detail, sizeof detail, "%o dev %u:%u", (unsigned) (m & S_IFMT),
              major (dev), minor (dev));
    digest_entry (s, 'n', n->path, m, detail);
  }
  return 0;
}

/* Walk the tree once: counts, and the UUID as text.  Equal trees get
 * equal UUIDs, trees of different shapes (names, types, modes, sizes,
 * link targets, hard links) almost surely different ones; contents are
 * left out so that a new version of a dataset whose files changed in
 * place keeps its UUID, as ext4 images do (ext4-populate.c).
 */
static int
tree_shape (const char *src, struct shape *s, char uuid[37])
{
  unsigned char d[EVP_MAX_MD_SIZE];
  int r = -1;

  s->src = src;
  s->links = tree_links_new ();
  s->digest = EVP_MD_CTX_new ();
  if (s->links == NULL || s->digest == NULL ||
      !EVP_DigestInit_ex (s->digest, EVP_sha256 (), NULL)) {
    report_error ("erofs: out of memory");
    goto out;
  }
  if (tree_walk (src, &(struct tree_ops){ .visit = shape_entry }, s) == -1)
    goto out;
  EVP_DigestFinal_ex (s->digest, d, NULL);
  /* An RFC 9562 version 8 (custom) UUID. */
  d[6] = (d[6] & 0x0f) | 0x80;
  d[8] = (d[8] & 0x3f) | 0x80;
  snprintf (uuid, 37,
            "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
            "%02x%02x%02x%02x%02x%02x",
            d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10],
            d[11], d[12], d[13], d[14], d[15]);
  r = 0;

out:
  tree_links_free (s->links);
  EVP_MD_CTX_free (s->digest);
  return r;
}

/* The inode count in the superblock (le64 at 16). */
static int
read_inode_count (const char *image, uint64_t *count)
{
  unsigned char sb[24];
  ssize_t r;
  int fd, i;

  fd = open (image, O_RDONLY | O_CLOEXEC);
  if (fd == -1) {
    report_error ("%s: open: %m", image);
    return -1;
  }
  r = pread (fd, sb, sizeof sb, EROFS_SB_OFFSET);
  close (fd);
  if (r != (ssize_t) sizeof sb || memcmp (sb, EROFS_MAGIC, 4) != 0) {
    report_error ("%s: mkfs.erofs wrote no erofs superblock", image);
    return -1;
  }
  *count = 0;
  for (i = 7; i >= 0; --i)
    *count = *count << 8 | sb[16 + i];
  return 0;
}

/* One run of mkfs.erofs on src. */
static int
run_mkfs_erofs (const struct mkimage_options *o, const char *src,
                const char *image, const char *uuid)
{
  char epoch[24];
  const char *argv[20];
  const char *env[] = { "SOURCE_DATE_EPOCH", "LC_ALL=C", NULL };
  size_t n = 0;

  snprintf (epoch, sizeof epoch, "%" PRIu32, o->epoch);
  argv[n++] = "mkfs.erofs";
  argv[n++] = "-T";
  argv[n++] = epoch;
  argv[n++] = "-U";
  argv[n++] = uuid;
  argv[n++] = "--all-root";
  argv[n++] = "-x";
  argv[n++] = "-1";
  argv[n++] = "-E";
  argv[n++] = "noinline_data";
  argv[n++] = "--quiet";
  argv[n++] = image;
  argv[n++] = src;
  argv[n] = NULL;
  return run_program ("mkfs.erofs", argv, env, workdir_file ("mkfs.erofs.log"));
}

int
erofs_build (const struct mkimage_options *o, const char *image,
             struct build_result *r)
{
  CLEANUP_FREE char *src = realpath (o->src, NULL);
  struct shape s = { 0 };
  char uuid[37];
  struct stat st;
  uint64_t got;
  int ret;

  if (src == NULL) {
    report_error ("%s: %m", o->src);
    return -1;
  }
  s.real_src = src;
  if (tree_shape (o->src, &s, uuid) == -1)
    return -1;

  progress_start ("building erofs image", 0);
  ret = run_mkfs_erofs (o, src, image, uuid);
  progress_end ();
  if (ret == -1 || read_inode_count (image, &got) == -1)
    return -1;
  if (got != s.nr_inodes) {
    report_error ("%s: mkfs.erofs made %" PRIu64 " inodes for a tree of "
                  "%" PRIu64 ": files changed during the build",
                  o->src, got, s.nr_inodes);
    return -1;
  }
  r->attempts = 1;
  r->file_bytes = s.file_bytes;
  r->nr_entries = s.nr_entries;
  if (stat (image, &st) == -1) {
    report_error ("%s: stat: %m", image);
    return -1;
  }
  r->image_size = st.st_size;
  return 0;
}
