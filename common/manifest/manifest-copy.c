/* accel: rewriting a manifest with a new hot list (accel-index
 * --update).
 *
 * A manifest is written once and never changed in place (readers open
 * it immutable), so changing its hot list means writing a new file.
 * The copy is made through the ordinary writer, with the rows added in
 * the order accel-index adds them when it indexes an image (files and
 * their extents in the order of their ids, then the ext4 layout if
 * there is one, then chunks, then the hot list), so that it is byte-identical to the manifest that indexing the
 * image with the same hot list gives, and everything is checked again
 * on the way.
 */

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "cleanup.h"
#include "manifest-internal.h"
#include "manifest.h"
#include "report.h"

/* Copy one file row and its extents.  NB: the ids of the copy are
 * assigned by the writer; they come out the same because files are
 * added in id order.
 */
static int
copy_file (struct manifest *m, struct manifest_writer *w, const char *path)
{
  CLEANUP_FREE struct manifest_extent *extents = NULL;
  struct manifest_file f;
  int64_t id;
  size_t n, i;
  int r;

  r = manifest_file_extents (m, path, &f, &extents, &n);
  if (r == 1)
    report_error ("manifest: %s: file %s vanished (was the file modified?)",
                  m->path, path);
  if (r != 0)
    return -1;
  if (manifest_writer_add_file (w, path, f.size, f.mode, &id) == -1)
    return -1;
  for (i = 0; i < n; i++)
    if (manifest_writer_add_extent (w, id, extents[i].file_offset,
                                    extents[i].image_offset,
                                    extents[i].length) == -1)
      return -1;
  return 0;
}

/* Every file in id order, which is the order they were added in. */
static int
copy_files (struct manifest *m, struct manifest_writer *w)
{
  sqlite3_stmt *stmt = NULL;
  int r, ret = -1;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);
    if (manifest_prepare (m, "SELECT path FROM files ORDER BY id",
                          "reading files", &stmt) == -1)
      return -1;
  }
  for (;;) {
    CLEANUP_FREE char *path = NULL;

    {
      ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);
      r = sqlite3_step (stmt);
      if (r == SQLITE_DONE) {
        ret = 0;
        break;
      }
      if (r != SQLITE_ROW) {
        manifest_report_sqlite (m->path, m->db, "reading files");
        break;
      }
      /* A path is checked at open: text, no NUL, at most 4096 bytes. */
      path = strndup ((const char *) sqlite3_column_text (stmt, 0),
                      MANIFEST_MAX_PATH_LEN);
      if (path == NULL) {
        report_error ("manifest: %s: strndup: %m", m->path);
        break;
      }
    }
    /* NB: outside the lock, which manifest_file_extents takes. */
    if (copy_file (m, w, path) == -1)
      break;
  }

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);
  sqlite3_finalize (stmt);
  return ret;
}

/* manifest_foreach_node and _blocks callbacks: into the writer. */
static int
copy_node (void *w, const struct manifest_node *n)
{
  return manifest_writer_add_node (w, n->path, n->ino, n->mode);
}

static int
copy_node_blocks (void *w, const struct manifest_node_blocks *b)
{
  return manifest_writer_add_node_blocks (w, b->ino, b->lblk, b->block,
                                          b->count);
}

/* The ext4 layout, if m has one. */
static int
copy_layout (struct manifest *m, struct manifest_writer *w)
{
  struct manifest_fs_layout l;
  int r = manifest_fs_layout (m, &l);

  if (r != 0)
    return r == 1 ? 0 : -1;
  if (manifest_writer_set_fs_layout (w, &l) == -1 ||
      manifest_foreach_node (m, copy_node, w) == -1 ||
      manifest_foreach_node_blocks (m, copy_node_blocks, w) == -1)
    return -1;
  return 0;
}

int
manifest_copy (struct manifest *m, const char *path, const uint64_t *hot,
               size_t nr_hot)
{
  struct manifest_writer *w;
  unsigned char sha256[32];
  uint64_t idx;
  size_t i;

  w = manifest_writer_create (path, m->image_size, m->chunk_size, m->fs_type);
  if (w == NULL)
    return -1;
  if (copy_files (m, w) == -1 || copy_layout (m, w) == -1)
    goto err;
  for (idx = 0; idx < m->nr_chunks; idx++)
    if (manifest_chunk_sha256 (m, idx, sha256) == -1 ||
        manifest_writer_add_chunk (w, idx, sha256,
                                   manifest_chunk_is_zero (m, idx)) == -1)
      goto err;
  for (i = 0; i < nr_hot; i++)
    if (manifest_writer_add_hot (w, i, hot[i]) == -1)
      goto err;
  return manifest_writer_finish (w, m->image_sha256);

err:
  manifest_writer_abort (w);
  return -1;
}
