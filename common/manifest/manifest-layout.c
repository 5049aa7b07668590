/* accel: reading an ext4 image's layout from its manifest (format:
 * manifest.h and docs/manifest-format.md, "layout").
 *
 * The layout is what accel-mkimage needs to build the next version of
 * an image around this one: the file system's identity and geometry
 * (seven meta keys), the inode of every path (nodes) and the blocks of
 * every directory (node_blocks).  It is optional and only accel-mkimage
 * reads it, so manifest_open does not check it: each value is checked
 * here as it is read, and a manifest whose layout is broken is refused
 * by these functions only, never by the plugin.
 */

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "cleanup.h"
#include "hex.h"
#include "manifest-internal.h"
#include "manifest.h"
#include "report.h"

/* One meta value of the layout: 0 found, 1 absent, -1 error.  A key
 * present twice is an error (the meta index is checked at open, so the
 * count is right).
 */
static int
layout_meta (struct manifest *m, const char *key, int type, int64_t *number,
             char *text, size_t text_size)
{
  CLEANUP_FINALIZE sqlite3_stmt *stmt = NULL;
  int r, n = 0;

  if (manifest_prepare (m, "SELECT value FROM meta WHERE key = ?1",
                        "reading meta", &stmt) == -1)
    return -1;
  if (sqlite3_bind_text (stmt, 1, key, -1, SQLITE_STATIC) != SQLITE_OK) {
    manifest_report_sqlite (m->path, m->db, "reading meta");
    return -1;
  }
  while ((r = sqlite3_step (stmt)) == SQLITE_ROW) {
    const unsigned char *t;

    if (++n > 1 || sqlite3_column_type (stmt, 0) != type) {
      report_error ("manifest: %s: meta: %s is repeated or of the wrong "
                    "type",
                    m->path, key);
      return -1;
    }
    if (type == SQLITE_INTEGER)
      *number = sqlite3_column_int64 (stmt, 0);
    else {
      t = sqlite3_column_text (stmt, 0);
      if (t == NULL || (size_t) sqlite3_column_bytes (stmt, 0) >= text_size) {
        report_error ("manifest: %s: meta: %s is too long", m->path, key);
        return -1;
      }
      memcpy (text, t, sqlite3_column_bytes (stmt, 0) + 1);
    }
  }
  if (r != SQLITE_DONE) {
    manifest_report_sqlite (m->path, m->db, "reading meta");
    return -1;
  }
  return n == 0 ? 1 : 0;
}

/* The nodes and node_blocks tables must be ordinary tables (not
 * virtual: their module could do anything).
 */
static int
layout_check_tables (struct manifest *m)
{
  CLEANUP_FINALIZE sqlite3_stmt *stmt = NULL;

  if (manifest_prepare (m,
                        "SELECT count (*) FROM sqlite_master WHERE type = "
                        "'table' AND name IN ('nodes', 'node_blocks') AND "
                        "sql NOT LIKE '%VIRTUAL%'",
                        "reading the schema", &stmt) == -1)
    return -1;
  if (sqlite3_step (stmt) != SQLITE_ROW || sqlite3_column_int (stmt, 0) != 2) {
    report_error ("manifest: %s: meta has a layout but the nodes or "
                  "node_blocks table is missing",
                  m->path);
    return -1;
  }
  return 0;
}

int
manifest_fs_layout (struct manifest *m, struct manifest_fs_layout *l)
{
  static const char *const ints[] = { "fs_blocks", "fs_inodes", "fs_block_size",
                                      "fs_mkfs_blocks", "fs_mkfs_inodes" };
  int64_t v[5];
  char uuid[40], seed[40];
  int r, i, present = 0;

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);
  r = layout_meta (m, "fs_uuid", SQLITE_TEXT, NULL, uuid, sizeof uuid);
  if (r == -1)
    return -1;
  present += r == 0;
  r = layout_meta (m, "fs_hash_seed", SQLITE_TEXT, NULL, seed, sizeof seed);
  if (r == -1)
    return -1;
  present += r == 0;
  for (i = 0; i < 5; i++) {
    r = layout_meta (m, ints[i], SQLITE_INTEGER, &v[i], NULL, 0);
    if (r == -1)
      return -1;
    present += r == 0;
  }
  if (present == 0)
    return 1;
  if (present != 7 || strlen (uuid) != 32 || strlen (seed) != 32 ||
      hex_decode (uuid, 16, l->uuid) == -1 ||
      hex_decode (seed, 16, l->hash_seed) == -1 || v[0] <= 0 || v[1] <= 0 ||
      v[1] > UINT32_MAX || v[2] < 1024 || v[2] > 65536 || (v[2] & (v[2] - 1)) ||
      (uint64_t) v[0] > m->image_size / v[2] || v[3] <= 0 || v[3] > v[0] ||
      v[4] <= 0 || v[4] > v[1]) {
    report_error ("manifest: %s: the file system layout in meta (fs_uuid, "
                  "fs_hash_seed, fs_blocks, fs_inodes, fs_block_size, "
                  "fs_mkfs_blocks, fs_mkfs_inodes) is "
                  "incomplete or out of range",
                  m->path);
    return -1;
  }
  l->blocks = v[0];
  l->inodes = v[1];
  l->block_size = v[2];
  l->mkfs_blocks = v[3];
  l->mkfs_inodes = v[4];
  /* Optional: manifests written before inline data had none. */
  r = layout_meta (m, "fs_inode_size", SQLITE_INTEGER, &v[0], NULL, 0);
  if (r == -1)
    return -1;
  if (r == 1)
    v[0] = 256;
  if (v[0] < 128 || v[0] > l->block_size || (v[0] & (v[0] - 1))) {
    report_error ("manifest: %s: fs_inode_size %" PRId64 " is out of range",
                  m->path, v[0]);
    return -1;
  }
  l->inode_size = v[0];
  /* Optional, both or neither: manifests written before them have
   * mke2fs's own geometry.
   */
  present = 0;
  r = layout_meta (m, "fs_blocks_per_group", SQLITE_INTEGER, &v[0], NULL, 0);
  if (r == -1)
    return -1;
  present += r == 0;
  r = layout_meta (m, "fs_groups_per_flex", SQLITE_INTEGER, &v[1], NULL, 0);
  if (r == -1)
    return -1;
  present += r == 0;
  if (present == 0)
    v[0] = v[1] = 0;
  if (present == 1 || v[0] < 0 || v[0] > UINT32_MAX || v[1] < 0 ||
      v[1] > UINT32_MAX ||
      !manifest_fs_groups_valid (l->block_size, v[0], v[1]) ||
      (present == 2 && v[0] == 0)) {
    report_error ("manifest: %s: fs_blocks_per_group and fs_groups_per_flex "
                  "are incomplete or out of range",
                  m->path);
    return -1;
  }
  l->blocks_per_group = v[0];
  l->groups_per_flex = v[1];
  return layout_check_tables (m);
}

bool
manifest_fs_groups_valid (uint32_t block_size, uint32_t blocks_per_group,
                          uint32_t groups_per_flex)
{
  if (blocks_per_group == 0)
    return groups_per_flex == 0;
  /* As the kernel requires: a group is what one bitmap block covers,
   * or less, in whole bytes of it.
   */
  return blocks_per_group % 8 == 0 && blocks_per_group >= 256 &&
      blocks_per_group <= 8 * block_size && groups_per_flex > 0 &&
      (groups_per_flex & (groups_per_flex - 1)) == 0;
}

/* Step stmt (prepared by the caller), checking each row with check and
 * calling fn outside the lock.  Shared by both foreach functions.
 */
typedef int (*row_fn) (struct manifest *m, sqlite3_stmt *stmt, void *row);
typedef int (*call_fn) (void *fn, void *opaque, void *row);

static int
foreach_row (struct manifest *m, const char *sql, const char *what,
             row_fn read_row, void *row, call_fn call, void *fn, void *opaque)
{
  sqlite3_stmt *stmt = NULL;
  int r, ret = -1;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);
    if (manifest_prepare (m, sql, what, &stmt) == -1)
      return -1;
  }
  for (;;) {
    {
      ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);
      r = sqlite3_step (stmt);
      if (r == SQLITE_DONE) {
        ret = 0;
        break;
      }
      if (r != SQLITE_ROW) {
        manifest_report_sqlite (m->path, m->db, what);
        break;
      }
      if (read_row (m, stmt, row) == -1)
        break;
    }
    /* NB: a node's path points into a buffer of the row, not sqlite's. */
    if (call (fn, opaque, row) == -1)
      break;
  }
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);
  sqlite3_finalize (stmt);
  return ret;
}

/* A node and the buffer its path is copied to. */
struct node_row {
  struct manifest_node n;
  char path[MANIFEST_MAX_PATH_LEN + 1];
};

static int
read_node (struct manifest *m, sqlite3_stmt *stmt, void *p)
{
  struct node_row *row = p;
  const unsigned char *t = sqlite3_column_text (stmt, 0);
  int len = sqlite3_column_bytes (stmt, 0);
  int64_t ino = sqlite3_column_int64 (stmt, 1);
  int64_t mode = sqlite3_column_int64 (stmt, 2);

  if (sqlite3_column_type (stmt, 0) != SQLITE_TEXT || t == NULL || len < 1 ||
      len > MANIFEST_MAX_PATH_LEN || t[0] != '/' ||
      memchr (t, '\0', len) != NULL ||
      sqlite3_column_type (stmt, 1) != SQLITE_INTEGER ||
      sqlite3_column_type (stmt, 2) != SQLITE_INTEGER || ino < 1 ||
      ino > UINT32_MAX || mode < 0 || mode > UINT32_MAX) {
    report_error ("manifest: %s: a row of nodes is out of range", m->path);
    return -1;
  }
  memcpy (row->path, t, len);
  row->path[len] = '\0';
  row->n.path = row->path;
  row->n.ino = ino;
  row->n.mode = mode;
  return 0;
}

static int
call_node (void *fn, void *opaque, void *row)
{
  return ((manifest_node_fn) fn) (opaque, &((struct node_row *) row)->n);
}

int
manifest_foreach_node (struct manifest *m, manifest_node_fn fn, void *opaque)
{
  struct node_row *row = malloc (sizeof *row);
  int r;

  if (row == NULL) {
    report_error ("manifest: %s: malloc: %m", m->path);
    return -1;
  }
  r = foreach_row (m, "SELECT path, ino, mode FROM nodes ORDER BY rowid",
                   "reading nodes", read_node, row, call_node, (void *) fn,
                   opaque);
  free (row);
  return r;
}

static int
read_node_blocks (struct manifest *m, sqlite3_stmt *stmt, void *p)
{
  struct manifest_node_blocks *b = p;
  int64_t v[4];
  int i;

  for (i = 0; i < 4; i++) {
    v[i] = sqlite3_column_int64 (stmt, i);
    if (sqlite3_column_type (stmt, i) != SQLITE_INTEGER || v[i] < 0 ||
        v[i] > UINT32_MAX * (int64_t) 65536) {
      report_error ("manifest: %s: a row of node_blocks is out of range",
                    m->path);
      return -1;
    }
  }
  if (v[0] == 0 || v[3] == 0) {
    report_error ("manifest: %s: a row of node_blocks is out of range",
                  m->path);
    return -1;
  }
  b->ino = v[0];
  b->lblk = v[1];
  b->block = v[2];
  b->count = v[3];
  return 0;
}

static int
call_node_blocks (void *fn, void *opaque, void *row)
{
  return ((manifest_node_blocks_fn) fn) (opaque, row);
}

int
manifest_foreach_node_blocks (struct manifest *m, manifest_node_blocks_fn fn,
                              void *opaque)
{
  struct manifest_node_blocks b;

  return foreach_row (m,
                      "SELECT ino, lblk, block, count FROM node_blocks "
                      "ORDER BY rowid",
                      "reading node_blocks", read_node_blocks, &b,
                      call_node_blocks, (void *) fn, opaque);
}
