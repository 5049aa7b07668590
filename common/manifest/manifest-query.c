/* accel: lookups on an open manifest (format: manifest.h and
 * docs/manifest-format.md).
 *
 * Everything here runs on a manifest that manifest_open has fully
 * checked, from any number of the plugin's threads at once.  Fields fixed
 * at open are read without a lock; chunk hashes, the hot list and the
 * file map stay on disk and are read through statements prepared at
 * open, under the manifest's lock.  Values that bound memory or become
 * offsets are checked again as they are read, in case the file was
 * modified under us.
 */

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "cleanup.h"
#include "manifest-internal.h"
#include "manifest.h"
#include "report.h"

/* The accessors below read fields fixed at open: no lock. */
uint64_t
manifest_image_size (const struct manifest *m)
{
  return m->image_size;
}

/* A power of two, checked at open. */
uint32_t
manifest_chunk_size (const struct manifest *m)
{
  return m->chunk_size;
}

/* Computed at open from image_size and chunk_size. */
uint64_t
manifest_nr_chunks (const struct manifest *m)
{
  return m->nr_chunks;
}

/* The last chunk ends at the end of the image. */
uint32_t
manifest_chunk_len (const struct manifest *m, uint64_t idx)
{
  uint64_t off;

  if (idx >= m->nr_chunks)
    return 0;
  off = idx * m->chunk_size;
  return m->image_size - off < m->chunk_size ? m->image_size - off
                                             : m->chunk_size;
}

/* Parsed from hex at open. */
const unsigned char *
manifest_image_sha256 (const struct manifest *m)
{
  return m->image_sha256;
}

/* One of the names manifest_valid_fs_type accepts. */
const char *
manifest_fs_type (const struct manifest *m)
{
  return m->fs_type;
}

/* Counted while loading the zero bitmap. */
uint64_t
manifest_nr_zero_chunks (const struct manifest *m)
{
  return m->nr_zero_chunks;
}

/* Counted while checking the files table. */
uint64_t
manifest_nr_files (const struct manifest *m)
{
  return m->nr_files;
}

/* Called on every read, so answered from the bitmap, not sqlite. */
bool
manifest_chunk_is_zero (const struct manifest *m, uint64_t idx)
{
  if (idx >= m->nr_chunks)
    return false;
  return m->zero_bitmap[idx / 8] & (1 << (idx % 8));
}

/* The body of manifest_chunk_sha256, for callers holding m->lock. */
static int
lookup_chunk_sha256 (struct manifest *m, uint64_t idx, unsigned char out[32])
{
  sqlite3_stmt *stmt = m->chunk_stmt;
  int r, ret = -1;

  if (sqlite3_bind_int64 (stmt, 1, idx) != SQLITE_OK) {
    manifest_report_sqlite (m->path, m->db, "reading chunks");
    return -1;
  }
  r = sqlite3_step (stmt);
  if (r == SQLITE_ROW && sqlite3_column_type (stmt, 0) == SQLITE_BLOB &&
      sqlite3_column_bytes (stmt, 0) == 32) {
    memcpy (out, sqlite3_column_blob (stmt, 0), 32);
    ret = 0;
  }
  else if (r == SQLITE_ROW || r == SQLITE_DONE)
    /* Checked at open, so the file changed under us. */
    report_error ("manifest: %s: chunk %" PRIu64 ": row missing or bad "
                  "(was the file modified?)",
                  m->path, idx);
  else
    manifest_report_sqlite (m->path, m->db, "reading chunks");
  sqlite3_reset (stmt);
  return ret;
}

/* One indexed lookup per chunk verified, so hashes need no memory. */
int
manifest_chunk_sha256 (struct manifest *m, uint64_t idx, unsigned char out[32])
{
  if (idx >= m->nr_chunks) {
    report_error ("manifest: %s: chunk %" PRIu64 " out of range (%" PRIu64
                  " chunks)",
                  m->path, idx, m->nr_chunks);
    return -1;
  }
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);
  return lookup_chunk_sha256 (m, idx, out);
}

/* NB: quick_check does not compare an index with its table, so the
 * answer from the index is confirmed against the table row.
 */
int
manifest_find_chunk (struct manifest *m, const unsigned char sha256[32],
                     uint64_t *idx)
{
  sqlite3_stmt *stmt = m->find_stmt;
  unsigned char check[32];
  int64_t found = -1;
  int r;

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);
  if (sqlite3_bind_blob (stmt, 1, sha256, 32, SQLITE_STATIC) != SQLITE_OK) {
    manifest_report_sqlite (m->path, m->db, "finding a chunk");
    return -1;
  }
  r = sqlite3_step (stmt);
  if (r == SQLITE_ROW)
    found = sqlite3_column_int64 (stmt, 0);
  sqlite3_reset (stmt);
  if (r == SQLITE_DONE)
    return 1;
  if (r != SQLITE_ROW) {
    manifest_report_sqlite (m->path, m->db, "finding a chunk");
    return -1;
  }
  if (found >= 0 && (uint64_t) found < m->nr_chunks &&
      lookup_chunk_sha256 (m, found, check) == -1)
    return -1;
  if (found < 0 || (uint64_t) found >= m->nr_chunks ||
      memcmp (check, sha256, 32) != 0) {
    report_error ("manifest: %s: index chunks_sha256 does not match the "
                  "chunks table",
                  m->path);
    return -1;
  }
  *idx = found;
  return 0;
}

/* Read at most once per open, so copied out rather than iterated. */
int
manifest_hot_chunks (struct manifest *m, uint64_t **chunks, size_t *n)
{
  sqlite3_stmt *stmt = m->hot_stmt;
  uint64_t *list = NULL;
  size_t len = 0, alloc = 0;
  int r;

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);
  while ((r = sqlite3_step (stmt)) == SQLITE_ROW) {
    int64_t idx = sqlite3_column_int64 (stmt, 0);

    /* Both checked at open; checked again as they bound memory. */
    if (idx < 0 || (uint64_t) idx >= m->nr_chunks || len >= m->nr_chunks) {
      report_error ("manifest: %s: hot: bad entry (was the file modified?)",
                    m->path);
      goto err;
    }
    if (len == alloc) {
      size_t new_alloc = alloc ? alloc * 2 : 64;
      uint64_t *p = reallocarray (list, new_alloc, sizeof *list);

      if (p == NULL) {
        report_error ("manifest: %s: hot: realloc: %m", m->path);
        goto err;
      }
      list = p;
      alloc = new_alloc;
    }
    list[len++] = idx;
  }
  if (r != SQLITE_DONE) {
    manifest_report_sqlite (m->path, m->db, "reading hot");
    goto err;
  }
  sqlite3_reset (stmt);
  *chunks = list;
  *n = len;
  return 0;

err:
  sqlite3_reset (stmt);
  free (list);
  return -1;
}

/* Read the current row of a files query (id, path, size, mode in
 * columns first..first+3, path optional) into *f, checking again what
 * was checked at open: the values bound memory and loops in callers.
 * f->path points into the statement's row.
 */
static int
read_file_row (struct manifest *m, sqlite3_stmt *stmt, bool with_path,
               struct manifest_file *f)
{
  int64_t id, size, mode;
  const char *path = NULL;
  int col = 0;

  id = sqlite3_column_int64 (stmt, col++);
  if (with_path) {
    path = (const char *) sqlite3_column_text (stmt, col);
    if (path == NULL ||
        strlen (path) != (size_t) sqlite3_column_bytes (stmt, col) ||
        path[0] != '/') {
      report_error ("manifest: %s: files: file %" PRId64 ": bad path (was "
                    "the file modified?)",
                    m->path, id);
      return -1;
    }
    col++;
  }
  size = sqlite3_column_int64 (stmt, col++);
  mode = sqlite3_column_int64 (stmt, col++);
  if (size < 0 || mode < 0 || mode > UINT32_MAX) {
    report_error ("manifest: %s: files: file %" PRId64 ": bad size or mode "
                  "(was the file modified?)",
                  m->path, id);
    return -1;
  }
  f->id = id;
  f->path = path;
  f->size = size;
  f->mode = mode;
  return 0;
}

static int read_extents (struct manifest *m, const char *path,
                         const struct manifest_file *f,
                         struct manifest_extent **list, size_t *len);

/* The walk behind manifest_foreach_file and
 * manifest_foreach_file_extents: a statement of its own, stepped under
 * the lock with the callback called outside it, so that it may use m
 * and several walks may run at once.  With efn, each file's extents are
 * read (through the shared extents statement, under the lock) before
 * it is called.  NB: a row's text stays valid until its statement is
 * stepped again, which only this function does.
 */
static int
walk_files (struct manifest *m, manifest_file_fn fn,
            manifest_file_extents_fn efn, void *opaque)
{
  sqlite3_stmt *stmt = NULL;
  struct manifest_file f;
  int r, ret = -1;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);
    if (manifest_prepare (
            m, "SELECT id, path, size, mode FROM files ORDER BY path",
            "reading files", &stmt) == -1)
      return -1;
  }
  for (;;) {
    CLEANUP_FREE struct manifest_extent *ext = NULL;
    size_t n = 0;

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
      if (read_file_row (m, stmt, true, &f) == -1)
        break;
      if (efn && read_extents (m, f.path, &f, &ext, &n) == -1)
        break;
    }
    if (efn ? efn (opaque, &f, ext, n) == -1 : fn (opaque, &f) == -1)
      break;
  }

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);
  sqlite3_finalize (stmt);
  return ret;
}

int
manifest_foreach_file (struct manifest *m, manifest_file_fn fn, void *opaque)
{
  return walk_files (m, fn, NULL, opaque);
}

/* One indexed range of the extents table per file, and no lookup by
 * path: the whole map in one pass (the plugin's readahead loads it).
 */
int
manifest_foreach_file_extents (struct manifest *m, manifest_file_extents_fn fn,
                               void *opaque)
{
  return walk_files (m, NULL, fn, opaque);
}

/* Append one extent to a growing array (doubling), within the cap. */
static int
append_extent (struct manifest *m, const char *path,
               struct manifest_extent **list, size_t *len, size_t *alloc,
               const struct manifest_extent *e)
{
  if (*len >= MANIFEST_MAX_FILE_EXTENTS) {
    report_error ("manifest: %s: file %s has more than %" PRIu64 " extents",
                  m->path, path, MANIFEST_MAX_FILE_EXTENTS);
    return -1;
  }
  if (*len == *alloc) {
    size_t new_alloc = *alloc ? *alloc * 2 : 16;
    struct manifest_extent *p = reallocarray (*list, new_alloc, sizeof **list);

    if (p == NULL) {
      report_error ("manifest: %s: extents: realloc: %m", m->path);
      return -1;
    }
    *list = p;
    *alloc = new_alloc;
  }
  (*list)[(*len)++] = *e;
  return 0;
}

/* The body of manifest_file_extents, under m->lock: the extents of file
 * f, checked again as they are read (in the image, in the file, in
 * order) since callers will use them as offsets.
 */
static int
read_extents (struct manifest *m, const char *path,
              const struct manifest_file *f, struct manifest_extent **list,
              size_t *len)
{
  sqlite3_stmt *stmt = m->extents_stmt;
  size_t alloc = 0;
  uint64_t end = 0;
  int r;

  if (sqlite3_bind_int64 (stmt, 1, f->id) != SQLITE_OK) {
    manifest_report_sqlite (m->path, m->db, "reading extents");
    return -1;
  }
  while ((r = sqlite3_step (stmt)) == SQLITE_ROW) {
    struct manifest_extent e;
    int64_t fo = sqlite3_column_int64 (stmt, 0);
    int64_t io = sqlite3_column_int64 (stmt, 1);
    int64_t len64 = sqlite3_column_int64 (stmt, 2);

    if (fo < 0 || io < 0 || len64 < 1 || (uint64_t) fo < end ||
        (uint64_t) len64 > f->size || (uint64_t) fo > f->size - len64 ||
        (uint64_t) len64 > m->image_size ||
        (uint64_t) io > m->image_size - len64) {
      report_error ("manifest: %s: file %s: bad extent (was the file "
                    "modified?)",
                    m->path, path);
      sqlite3_reset (stmt);
      return -1;
    }
    e.file_offset = fo;
    e.image_offset = io;
    e.length = len64;
    end = e.file_offset + e.length;
    if (append_extent (m, path, list, len, &alloc, &e) == -1) {
      sqlite3_reset (stmt);
      return -1;
    }
  }
  sqlite3_reset (stmt);
  if (r != SQLITE_DONE) {
    manifest_report_sqlite (m->path, m->db, "reading extents");
    return -1;
  }
  return 0;
}

/* Two indexed lookups: the file by path, its extents by file_id. */
int
manifest_file_extents (struct manifest *m, const char *path,
                       struct manifest_file *f,
                       struct manifest_extent **extents, size_t *n)
{
  sqlite3_stmt *stmt = m->file_stmt;
  struct manifest_extent *list = NULL;
  size_t len = 0;
  int r;

  /* Nothing longer can be in the map (and sqlite would refuse it). */
  if (strlen (path) > MANIFEST_MAX_PATH_LEN)
    return 1;

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);
  if (sqlite3_bind_text (stmt, 1, path, -1, SQLITE_STATIC) != SQLITE_OK) {
    manifest_report_sqlite (m->path, m->db, "reading files");
    return -1;
  }
  r = sqlite3_step (stmt);
  if (r == SQLITE_DONE) {
    sqlite3_reset (stmt);
    return 1;
  }
  if (r != SQLITE_ROW) {
    manifest_report_sqlite (m->path, m->db, "reading files");
    sqlite3_reset (stmt);
    return -1;
  }
  r = read_file_row (m, stmt, false, f);
  sqlite3_reset (stmt);
  if (r == -1)
    return -1;
  f->path = path;

  if (read_extents (m, path, f, &list, &len) == -1) {
    free (list);
    return -1;
  }
  *extents = list;
  *n = len;
  return 0;
}
