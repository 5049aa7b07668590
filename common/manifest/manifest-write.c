/* accel: writing a manifest (format: manifest.h and
 * docs/manifest-format.md).
 *
 * The writer runs in accel-index.  It builds the whole file inside one
 * transaction with no journal, creates the sha256 and extents indexes
 * last (a sorted build is faster and denser than growing them row by
 * row) and renames the finished file into place, so that the same inputs
 * always give the same bytes and no reader ever sees half a manifest.
 * Every rule the reader checks (manifest-check.c) is checked here as
 * rows are added, so that the writer cannot produce a manifest the
 * reader would refuse.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cleanup.h"
#include "hex.h"
#include "manifest-internal.h"
#include "manifest.h"
#include "report.h"

struct manifest_writer {
  char *path, *tmp_path;
  bool tmp_created; /* so abort removes only a file it made */
  uint64_t image_size, nr_chunks;
  uint64_t next_chunk; /* chunks arrive in order; this one is next */
  uint32_t chunk_size;
  /* The last file added, the only one that may get extents, and where
   * its extents have reached (they must come in order).
   */
  int64_t file_id;
  uint64_t file_size, file_end, file_extents;
  sqlite3 *db;
  sqlite3_stmt *meta_stmt, *chunk_stmt, *file_stmt, *extent_stmt, *hot_stmt;
  sqlite3_stmt *node_stmt, *node_blocks_stmt;
  /* The ext4 layout, once set: nodes and blocks are checked against it. */
  bool have_layout;
  uint64_t layout_blocks, layout_inodes;
};

/* Run SQL that returns no values we need. */
static int
writer_exec (struct manifest_writer *w, const char *sql, const char *what)
{
  if (sqlite3_exec (w->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
    manifest_report_sqlite (w->path, w->db, what);
    return -1;
  }
  return 0;
}

/* Run an INSERT whose parameters are bound, then reset it for reuse. */
static int
writer_step (struct manifest_writer *w, sqlite3_stmt *stmt, const char *what)
{
  int r = sqlite3_step (stmt);

  sqlite3_reset (stmt);
  sqlite3_clear_bindings (stmt);
  if (r != SQLITE_DONE) {
    manifest_report_sqlite (w->path, w->db, what);
    return -1;
  }
  return 0;
}

/* Add one meta row; value is text if text is not NULL, else number. */
static int
writer_meta (struct manifest_writer *w, const char *key, const char *text,
             int64_t number)
{
  sqlite3_stmt *stmt = w->meta_stmt;

  if (sqlite3_bind_text (stmt, 1, key, -1, SQLITE_STATIC) != SQLITE_OK ||
      (text ? sqlite3_bind_text (stmt, 2, text, -1, SQLITE_TRANSIENT)
            : sqlite3_bind_int64 (stmt, 2, number)) != SQLITE_OK) {
    manifest_report_sqlite (w->path, w->db, "writing meta");
    return -1;
  }
  return writer_step (w, stmt, "writing meta");
}

/* Prepare one of the writer's statements. */
static int
writer_prepare (struct manifest_writer *w, const char *sql, sqlite3_stmt **stmt)
{
  if (sqlite3_prepare_v3 (w->db, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt,
                          NULL) != SQLITE_OK) {
    manifest_report_sqlite (w->path, w->db, "preparing statements");
    return -1;
  }
  return 0;
}

/* Close the database; false if sqlite could not flush or close it. */
static bool
writer_close_db (struct manifest_writer *w)
{
  bool ok;

  sqlite3_finalize (w->meta_stmt);
  sqlite3_finalize (w->chunk_stmt);
  sqlite3_finalize (w->file_stmt);
  sqlite3_finalize (w->extent_stmt);
  sqlite3_finalize (w->hot_stmt);
  sqlite3_finalize (w->node_stmt);
  sqlite3_finalize (w->node_blocks_stmt);
  w->meta_stmt = w->chunk_stmt = w->file_stmt = NULL;
  w->extent_stmt = w->hot_stmt = NULL;
  w->node_stmt = w->node_blocks_stmt = NULL;
  ok = sqlite3_close (w->db) == SQLITE_OK;
  if (!ok)
    manifest_report_sqlite (w->path, w->db, "close");
  w->db = NULL;
  return ok;
}

/* Free w and everything it holds, without touching the files. */
static void
writer_free (struct manifest_writer *w)
{
  if (w->db)
    writer_close_db (w);
  free (w->path);
  free (w->tmp_path);
  free (w);
}

/* Create the temporary file (removing one a killed run left) and open
 * it as an empty database.
 */
static int
writer_open_tmp (struct manifest_writer *w)
{
  const int flags =
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  int fd;

  /* Left over from a run that was killed. */
  if (unlink (w->tmp_path) == -1 && errno != ENOENT) {
    report_error ("manifest: %s: unlink: %m", w->tmp_path);
    return -1;
  }
  /* Created here for a clear errno; sqlite takes an empty file as an
   * empty database.
   */
  fd = open (w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd == -1) {
    report_error ("manifest: %s: create: %m", w->tmp_path);
    return -1;
  }
  close (fd);
  w->tmp_created = true;
  if (sqlite3_open_v2 (w->tmp_path, &w->db, flags, NULL) != SQLITE_OK) {
    if (w->db)
      manifest_report_sqlite (w->tmp_path, w->db, "open");
    else
      report_error ("manifest: %s: open: out of memory", w->tmp_path);
    return -1;
  }
  return 0;
}

/* The tables, and the statements that fill them. */
static int
writer_create_schema (struct manifest_writer *w)
{
  /* page_size must be set before the first table.  No journal: on
   * failure the temporary file is deleted, not rolled back.
   * application_id 1633903468 is MANIFEST_APPLICATION_ID.
   */
  if (writer_exec (w,
                   "PRAGMA page_size = 4096;"
                   "PRAGMA journal_mode = OFF;"
                   "PRAGMA synchronous = OFF;"
                   "PRAGMA cache_size = -65536;"
                   "PRAGMA application_id = 1633903468;"
                   "BEGIN;"
                   "CREATE TABLE meta (key TEXT PRIMARY KEY, value NOT NULL);"
                   "CREATE TABLE chunks (idx INTEGER PRIMARY KEY,"
                   " sha256 BLOB NOT NULL, zero INTEGER NOT NULL);"
                   "CREATE TABLE files (id INTEGER PRIMARY KEY,"
                   " path TEXT NOT NULL UNIQUE, size INTEGER NOT NULL,"
                   " mode INTEGER NOT NULL);"
                   "CREATE TABLE extents (file_id INTEGER NOT NULL,"
                   " file_offset INTEGER NOT NULL,"
                   " image_offset INTEGER NOT NULL,"
                   " length INTEGER NOT NULL);"
                   "CREATE TABLE hot (rank INTEGER PRIMARY KEY,"
                   " chunk_idx INTEGER NOT NULL);"
                   "CREATE TABLE nodes (path TEXT PRIMARY KEY,"
                   " ino INTEGER NOT NULL, mode INTEGER NOT NULL);"
                   "CREATE TABLE node_blocks (ino INTEGER NOT NULL,"
                   " lblk INTEGER NOT NULL, block INTEGER NOT NULL,"
                   " count INTEGER NOT NULL);",
                   "creating tables") == -1 ||
      writer_prepare (w, "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                      &w->meta_stmt) == -1 ||
      writer_prepare (w,
                      "INSERT INTO chunks (idx, sha256, zero) "
                      "VALUES (?1, ?2, ?3)",
                      &w->chunk_stmt) == -1 ||
      writer_prepare (w,
                      "INSERT INTO files (path, size, mode) "
                      "VALUES (?1, ?2, ?3)",
                      &w->file_stmt) == -1 ||
      writer_prepare (w,
                      "INSERT INTO extents (file_id, file_offset,"
                      " image_offset, length) VALUES (?1, ?2, ?3, ?4)",
                      &w->extent_stmt) == -1 ||
      writer_prepare (w, "INSERT INTO hot (rank, chunk_idx) VALUES (?1, ?2)",
                      &w->hot_stmt) == -1 ||
      writer_prepare (w,
                      "INSERT INTO nodes (path, ino, mode) "
                      "VALUES (?1, ?2, ?3)",
                      &w->node_stmt) == -1 ||
      writer_prepare (w,
                      "INSERT INTO node_blocks (ino, lblk, block, count) "
                      "VALUES (?1, ?2, ?3, ?4)",
                      &w->node_blocks_stmt) == -1)
    return -1;
  return 0;
}

/* Every meta value but image_sha256, which comes at the end. */
static int
writer_write_meta (struct manifest_writer *w, const char *fs_type)
{
  char created_by[64];

  snprintf (created_by, sizeof created_by, "accel (sqlite %s)",
            sqlite3_libversion ());
  if (writer_meta (w, "format_version", NULL, MANIFEST_FORMAT_VERSION) == -1 ||
      writer_meta (w, "image_size", NULL, w->image_size) == -1 ||
      writer_meta (w, "chunk_size", NULL, w->chunk_size) == -1 ||
      writer_meta (w, "fs_type", fs_type, 0) == -1 ||
      writer_meta (w, "created_by", created_by, 0) == -1)
    return -1;
  return 0;
}

/* Everything that does not depend on the image's bytes is checked and
 * written here, so a bad argument fails before a long scan starts.
 */
struct manifest_writer *
manifest_writer_create (const char *path, uint64_t image_size,
                        uint32_t chunk_size, const char *fs_type)
{
  struct manifest_writer *w;
  uint64_t nr_chunks;
  size_t len = strlen (path);

  if (len == 0 || len > MANIFEST_MAX_PATH_LEN - 4) {
    report_error ("manifest: path length %zu is not between 1 and %d", len,
                  MANIFEST_MAX_PATH_LEN - 4);
    return NULL;
  }
  if (!manifest_valid_fs_type (fs_type)) {
    report_error ("manifest: %s: fs_type \"%s\" is not ext4, squashfs, "
                  "erofs or raw",
                  path, fs_type);
    return NULL;
  }
  if (manifest_check_geometry (path, image_size, chunk_size, &nr_chunks) == -1)
    return NULL;

  w = calloc (1, sizeof *w);
  if (w == NULL) {
    report_error ("manifest: %s: calloc: %m", path);
    return NULL;
  }
  w->image_size = image_size;
  w->chunk_size = chunk_size;
  w->nr_chunks = nr_chunks;
  w->path = strdup (path);
  if (w->path == NULL || asprintf (&w->tmp_path, "%s.tmp", path) == -1) {
    w->tmp_path = NULL;
    report_error ("manifest: %s: malloc: %m", path);
    goto err;
  }
  if (writer_open_tmp (w) == -1 || writer_create_schema (w) == -1 ||
      writer_write_meta (w, fs_type) == -1)
    goto err;
  return w;

err:
  manifest_writer_abort (w);
  return NULL;
}

/* In order only: the reader needs every idx, and the file's bytes
 * depend on the insertion order.
 */
int
manifest_writer_add_chunk (struct manifest_writer *w, uint64_t idx,
                           const unsigned char sha256[32], bool zero)
{
  sqlite3_stmt *stmt = w->chunk_stmt;

  if (idx != w->next_chunk || idx >= w->nr_chunks) {
    report_error ("manifest: %s: chunk %" PRIu64 " added out of order or "
                  "out of range (expected %" PRIu64 " of %" PRIu64 ")",
                  w->path, idx, w->next_chunk, w->nr_chunks);
    return -1;
  }
  if (sqlite3_bind_int64 (stmt, 1, idx) != SQLITE_OK ||
      sqlite3_bind_blob (stmt, 2, sha256, 32, SQLITE_STATIC) != SQLITE_OK ||
      sqlite3_bind_int (stmt, 3, zero) != SQLITE_OK) {
    manifest_report_sqlite (w->path, w->db, "writing chunks");
    return -1;
  }
  if (writer_step (w, stmt, "writing chunks") == -1)
    return -1;
  w->next_chunk++;
  return 0;
}

/* A repeated path is refused by sqlite (the UNIQUE constraint).  Paths
 * come from images: messages show control characters as '?'.
 */
int
manifest_writer_add_file (struct manifest_writer *w, const char *path,
                          uint64_t size, uint32_t mode, int64_t *file_id)
{
  sqlite3_stmt *stmt = w->file_stmt;
  size_t len = strlen (path), i;
  char what[MANIFEST_MAX_PATH_LEN + 32];
  int n;

  n = snprintf (what, sizeof what, "writing file %s", path);
  for (i = sizeof "writing file"; n > 0 && i < (size_t) n && what[i]; ++i)
    if ((unsigned char) what[i] < ' ' || what[i] == 0x7f)
      what[i] = '?';
  if (len == 0 || len > MANIFEST_MAX_PATH_LEN || path[0] != '/' ||
      size > INT64_MAX) {
    report_error ("manifest: %s: %s: path not absolute, path length or size "
                  "out of range",
                  w->path, what);
    return -1;
  }
  if (!S_ISREG (mode)) {
    report_error ("manifest: %s: %s: mode %#o is not a regular file's", w->path,
                  what, (unsigned) mode);
    return -1;
  }
  if (sqlite3_bind_text (stmt, 1, path, len, SQLITE_STATIC) != SQLITE_OK ||
      sqlite3_bind_int64 (stmt, 2, size) != SQLITE_OK ||
      sqlite3_bind_int64 (stmt, 3, mode) != SQLITE_OK) {
    manifest_report_sqlite (w->path, w->db, what);
    return -1;
  }
  if (writer_step (w, stmt, what) == -1)
    return -1;
  *file_id = sqlite3_last_insert_rowid (w->db);
  w->file_id = *file_id;
  w->file_size = size;
  w->file_end = 0;
  w->file_extents = 0;
  return 0;
}

/* Every rule the reader checks, checked here one extent at a time: the
 * extent lies inside the image and inside its file (the last one
 * added), after the file's previous extent.
 */
int
manifest_writer_add_extent (struct manifest_writer *w, int64_t file_id,
                            uint64_t file_offset, uint64_t image_offset,
                            uint64_t length)
{
  sqlite3_stmt *stmt = w->extent_stmt;

  if (file_id < 1 || length == 0 || length > w->image_size ||
      image_offset > w->image_size - length) {
    report_error ("manifest: %s: extent of file %" PRId64
                  " (file offset %" PRIu64 ", image offset %" PRIu64
                  ", length %" PRIu64 ") is outside the image",
                  w->path, file_id, file_offset, image_offset, length);
    return -1;
  }
  if (file_id != w->file_id) {
    report_error ("manifest: %s: extent of file %" PRId64 " added after "
                  "another file (%" PRId64 ")",
                  w->path, file_id, w->file_id);
    return -1;
  }
  if (length > w->file_size || file_offset > w->file_size - length) {
    report_error ("manifest: %s: extent of file %" PRId64
                  " (file offset %" PRIu64 ", length %" PRIu64 ") ends "
                  "beyond the file's size %" PRIu64,
                  w->path, file_id, file_offset, length, w->file_size);
    return -1;
  }
  if (file_offset < w->file_end) {
    report_error ("manifest: %s: extent of file %" PRId64
                  " (file offset %" PRIu64 ") out of order or overlapping "
                  "the previous one (which ends at %" PRIu64 ")",
                  w->path, file_id, file_offset, w->file_end);
    return -1;
  }
  if (w->file_extents >= MANIFEST_MAX_FILE_EXTENTS) {
    report_error ("manifest: %s: file %" PRId64 " has more than %" PRIu64
                  " extents",
                  w->path, file_id, MANIFEST_MAX_FILE_EXTENTS);
    return -1;
  }
  if (sqlite3_bind_int64 (stmt, 1, file_id) != SQLITE_OK ||
      sqlite3_bind_int64 (stmt, 2, file_offset) != SQLITE_OK ||
      sqlite3_bind_int64 (stmt, 3, image_offset) != SQLITE_OK ||
      sqlite3_bind_int64 (stmt, 4, length) != SQLITE_OK) {
    manifest_report_sqlite (w->path, w->db, "writing extents");
    return -1;
  }
  if (writer_step (w, stmt, "writing extents") == -1)
    return -1;
  w->file_end = file_offset + length;
  w->file_extents++;
  return 0;
}

/* A hot entry must name a real chunk; a repeated rank is refused by
 * sqlite (rank is the primary key).
 */
int
manifest_writer_add_hot (struct manifest_writer *w, uint64_t rank,
                         uint64_t chunk_idx)
{
  sqlite3_stmt *stmt = w->hot_stmt;

  if (rank > INT64_MAX || chunk_idx >= w->nr_chunks) {
    report_error ("manifest: %s: hot entry %" PRIu64 ": chunk %" PRIu64
                  " out of range (%" PRIu64 " chunks)",
                  w->path, rank, chunk_idx, w->nr_chunks);
    return -1;
  }
  if (sqlite3_bind_int64 (stmt, 1, rank) != SQLITE_OK ||
      sqlite3_bind_int64 (stmt, 2, chunk_idx) != SQLITE_OK) {
    manifest_report_sqlite (w->path, w->db, "writing hot");
    return -1;
  }
  return writer_step (w, stmt, "writing hot");
}

/* fsync a file or directory by name. */
static int
fsync_path (const char *path)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);

  if (fd == -1) {
    report_error ("manifest: %s: open: %m", path);
    return -1;
  }
  if (fsync (fd) == -1) {
    report_error ("manifest: %s: fsync: %m", path);
    close (fd);
    return -1;
  }
  close (fd);
  return 0;
}

/* The rename is only durable once the directory holding path is synced. */
static int
fsync_parent (const char *path)
{
  const char *slash = strrchr (path, '/');
  CLEANUP_FREE char *dir = NULL;

  if (slash == NULL)
    return fsync_path (".");
  if (slash == path)
    return fsync_path ("/");
  dir = strndup (path, slash - path);
  if (dir == NULL) {
    report_error ("manifest: %s: strndup: %m", path);
    return -1;
  }
  return fsync_path (dir);
}

/* The reader refuses a file above MANIFEST_MAX_FILE_SIZE; so does the
 * writer, rather than publish what nobody can open.
 */
static int
check_file_size (struct manifest_writer *w)
{
  struct stat st;

  if (stat (w->tmp_path, &st) == -1) {
    report_error ("manifest: %s: stat: %m", w->tmp_path);
    return -1;
  }
  if ((uint64_t) st.st_size > MANIFEST_MAX_FILE_SIZE) {
    report_error ("manifest: %s: the manifest would be %jd bytes, more than "
                  "the limit of %" PRIu64 " (too many chunks or files: use "
                  "a larger chunk size)",
                  w->path, (intmax_t) st.st_size, MANIFEST_MAX_FILE_SIZE);
    return -1;
  }
  return 0;
}

/* Eight meta keys, all or none, and two more (docs/manifest-format.md,
 * "layout").
 */
int
manifest_writer_set_fs_layout (struct manifest_writer *w,
                               const struct manifest_fs_layout *l)
{
  char uuid[33], seed[33];

  if (w->have_layout || l->blocks == 0 || l->blocks > INT64_MAX ||
      l->inodes == 0 || l->inodes > UINT32_MAX || l->mkfs_blocks == 0 ||
      l->mkfs_blocks > l->blocks || l->mkfs_inodes == 0 ||
      l->mkfs_inodes > l->inodes || l->block_size < 1024 ||
      l->block_size > 65536 || (l->block_size & (l->block_size - 1)) ||
      l->inode_size < 128 || l->inode_size > l->block_size ||
      (l->inode_size & (l->inode_size - 1)) ||
      !manifest_fs_groups_valid (l->block_size, l->blocks_per_group,
                                 l->groups_per_flex)) {
    report_error ("manifest: %s: file system layout set twice or out of "
                  "range",
                  w->path);
    return -1;
  }
  hex_encode (l->uuid, 16, uuid);
  hex_encode (l->hash_seed, 16, seed);
  if (writer_meta (w, "fs_uuid", uuid, 0) == -1 ||
      writer_meta (w, "fs_hash_seed", seed, 0) == -1 ||
      writer_meta (w, "fs_blocks", NULL, l->blocks) == -1 ||
      writer_meta (w, "fs_inodes", NULL, l->inodes) == -1 ||
      writer_meta (w, "fs_block_size", NULL, l->block_size) == -1 ||
      writer_meta (w, "fs_mkfs_blocks", NULL, l->mkfs_blocks) == -1 ||
      writer_meta (w, "fs_mkfs_inodes", NULL, l->mkfs_inodes) == -1 ||
      writer_meta (w, "fs_inode_size", NULL, l->inode_size) == -1)
    return -1;
  /* Absent in a copy of a manifest that predates them. */
  if (l->blocks_per_group &&
      (writer_meta (w, "fs_blocks_per_group", NULL, l->blocks_per_group) ==
           -1 ||
       writer_meta (w, "fs_groups_per_flex", NULL, l->groups_per_flex) == -1))
    return -1;
  w->have_layout = true;
  w->layout_blocks = l->blocks;
  w->layout_inodes = l->inodes;
  return 0;
}

/* A repeated path is refused by sqlite (the primary key). */
int
manifest_writer_add_node (struct manifest_writer *w, const char *path,
                          uint64_t ino, uint32_t mode)
{
  sqlite3_stmt *stmt = w->node_stmt;
  size_t len = strlen (path);

  if (!w->have_layout || len == 0 || len > MANIFEST_MAX_PATH_LEN ||
      path[0] != '/' || ino == 0 || ino > w->layout_inodes) {
    report_error ("manifest: %s: node (inode %" PRIu64 "): no layout, path "
                  "not absolute or inode out of range",
                  w->path, ino);
    return -1;
  }
  if (sqlite3_bind_text (stmt, 1, path, len, SQLITE_STATIC) != SQLITE_OK ||
      sqlite3_bind_int64 (stmt, 2, ino) != SQLITE_OK ||
      sqlite3_bind_int64 (stmt, 3, mode) != SQLITE_OK) {
    manifest_report_sqlite (w->path, w->db, "writing nodes");
    return -1;
  }
  return writer_step (w, stmt, "writing nodes");
}

/* Blocks must lie inside the file system. */
int
manifest_writer_add_node_blocks (struct manifest_writer *w, uint64_t ino,
                                 uint64_t lblk, uint64_t block, uint64_t count)
{
  sqlite3_stmt *stmt = w->node_blocks_stmt;

  if (!w->have_layout || ino == 0 || ino > w->layout_inodes || count == 0 ||
      count > w->layout_blocks || block > w->layout_blocks - count ||
      lblk > UINT32_MAX) {
    report_error ("manifest: %s: blocks of inode %" PRIu64 " (%" PRIu64
                  " at %" PRIu64 "): no layout or out of range",
                  w->path, ino, count, block);
    return -1;
  }
  if (sqlite3_bind_int64 (stmt, 1, ino) != SQLITE_OK ||
      sqlite3_bind_int64 (stmt, 2, lblk) != SQLITE_OK ||
      sqlite3_bind_int64 (stmt, 3, block) != SQLITE_OK ||
      sqlite3_bind_int64 (stmt, 4, count) != SQLITE_OK) {
    manifest_report_sqlite (w->path, w->db, "writing node_blocks");
    return -1;
  }
  return writer_step (w, stmt, "writing node_blocks");
}

/* Only a complete manifest is ever renamed into place. */
int
manifest_writer_finish (struct manifest_writer *w,
                        const unsigned char image_sha256[32])
{
  char hex[65];

  if (w->next_chunk != w->nr_chunks) {
    report_error ("manifest: %s: only %" PRIu64 " of %" PRIu64 " chunks "
                  "were added",
                  w->path, w->next_chunk, w->nr_chunks);
    goto err;
  }
  hex_encode (image_sha256, 32, hex);
  if (writer_meta (w, "image_sha256", hex, 0) == -1 ||
      writer_exec (w, "CREATE INDEX chunks_sha256 ON chunks (sha256);",
                   "creating the sha256 index") == -1 ||
      writer_exec (w,
                   "CREATE INDEX extents_file ON extents"
                   " (file_id, file_offset, image_offset, length);",
                   "creating the extents index") == -1 ||
      writer_exec (w, "COMMIT;", "commit") == -1 || !writer_close_db (w) ||
      check_file_size (w) == -1 || fsync_path (w->tmp_path) == -1)
    goto err;
  if (rename (w->tmp_path, w->path) == -1) {
    report_error ("manifest: %s: rename from %s: %m", w->path, w->tmp_path);
    goto err;
  }
  if (fsync_parent (w->path) == -1) {
    /* The manifest is in place; only its durability is in doubt. */
    writer_free (w);
    return -1;
  }
  writer_free (w);
  return 0;

err:
  manifest_writer_abort (w);
  return -1;
}

/* For any failure between create and finish. */
void
manifest_writer_abort (struct manifest_writer *w)
{
  if (w == NULL)
    return;
  if (w->db)
    writer_close_db (w);
  if (w->tmp_created)
    unlink (w->tmp_path);
  writer_free (w);
}
