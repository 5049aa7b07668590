/* accel: the rules of the manifest format, checked (format: manifest.h
 * and docs/manifest-format.md).
 *
 * manifest_check_contents runs once on every manifest the plugin opens,
 * which came from S3 or an operator and is trusted in nothing: sqlite's
 * own integrity check, then the schema and every rule of the format,
 * each with aggregate queries (one pass, no hashes or paths loaded) and
 * a message that names the file and the rule.  After that the lookups
 * in manifest-query.c can rely on what they read.
 *
 * The rules the writer must also obey (the file system types, the size
 * limits) are functions here that manifest-write.c calls, so that the
 * indexer cannot write a manifest the plugin would refuse; so is the
 * one way both report sqlite's errors.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sqlite3.h>

#include "hex.h"
#include "manifest-internal.h"
#include "manifest.h"
#include "parse.h"
#include "report.h"

#define MAX_CREATED_BY_LEN 256

/* Shared with the writer. */

/* One list of file system types, so that the indexer cannot write a
 * manifest the plugin would refuse.
 */
bool
manifest_valid_fs_type (const char *s)
{
  return strcmp (s, "ext4") == 0 || strcmp (s, "squashfs") == 0 ||
      strcmp (s, "erofs") == 0 || strcmp (s, "raw") == 0;
}

bool
manifest_chunk_size_valid (uint64_t n)
{
  return n >= MANIFEST_MIN_CHUNK_SIZE && n <= MANIFEST_MAX_CHUNK_SIZE &&
      (n & (n - 1)) == 0;
}

int
manifest_parse_chunk_size (const char *arg, uint32_t *out)
{
  uint64_t n;

  if (parse_size (arg, &n) == -1 || !manifest_chunk_size_valid (n))
    return -1;
  *out = n;
  return 0;
}

/* The size rules, shared by reader and writer for the same reason.  On
 * success *nr_chunks is set.  NB: the chunk limit keeps both the zero
 * bitmap and the manifest file (~90 bytes a chunk) under their caps.
 */
int
manifest_check_geometry (const char *path, uint64_t image_size,
                         uint64_t chunk_size, uint64_t *nr_chunks)
{
  uint64_t n;

  if (!manifest_chunk_size_valid (chunk_size)) {
    report_error ("manifest: %s: chunk_size %" PRIu64
                  " is not " MANIFEST_CHUNK_SIZE_RULE,
                  path, chunk_size);
    return -1;
  }
  if (image_size == 0 || image_size > MANIFEST_MAX_IMAGE_SIZE) {
    report_error ("manifest: %s: image_size %" PRIu64 " is not between 1 "
                  "and %" PRIu64,
                  path, image_size, MANIFEST_MAX_IMAGE_SIZE);
    return -1;
  }
  n = image_size / chunk_size + (image_size % chunk_size != 0);
  if (n > MANIFEST_MAX_CHUNKS) {
    report_error ("manifest: %s: an image of %" PRIu64 " bytes has %" PRIu64
                  " chunks of %" PRIu64 " bytes, more than the limit of "
                  "%" PRIu64 ": use a larger chunk size",
                  path, image_size, n, chunk_size, MANIFEST_MAX_CHUNKS);
    return -1;
  }
  *nr_chunks = n;
  return 0;
}

/* The checks of a manifest being opened. */

/* Run a one-row query, leaving *stmt on the row for the caller to read
 * and finalize (with CLEANUP_FINALIZE).  An optional text parameter ?1.
 */
static int
query_row (struct manifest *m, const char *sql, const char *param,
           const char *what, sqlite3_stmt **stmt)
{
  if (manifest_prepare (m, sql, what, stmt) == -1)
    return -1;
  if (param &&
      sqlite3_bind_text (*stmt, 1, param, -1, SQLITE_STATIC) != SQLITE_OK) {
    manifest_report_sqlite (m->path, m->db, what);
    return -1;
  }
  if (sqlite3_step (*stmt) != SQLITE_ROW) {
    manifest_report_sqlite (m->path, m->db, what);
    return -1;
  }
  return 0;
}

/* Run one of sqlite's integrity pragmas: anything but "ok" in its
 * first row fails the open, quoting sqlite's report.
 */
static int
run_integrity_pragma (struct manifest *m, const char *sql)
{
  CLEANUP_FINALIZE sqlite3_stmt *stmt = NULL;
  const char *result;

  if (manifest_prepare (m, sql, "integrity check", &stmt) == -1)
    return -1;
  if (sqlite3_step (stmt) != SQLITE_ROW) {
    manifest_report_sqlite (m->path, m->db, "integrity check");
    return -1;
  }
  result = (const char *) sqlite3_column_text (stmt, 0);
  if (result == NULL || strcmp (result, "ok") != 0) {
    char msg[256];
    size_t i;

    /* sqlite's report spans lines and may quote names from the file. */
    snprintf (msg, sizeof msg, "%s", result ? result : "no result");
    for (i = 0; msg[i]; ++i)
      if ((unsigned char) msg[i] < ' ' || msg[i] == 0x7f)
        msg[i] = ' ';
    report_error ("manifest: %s: corrupt or truncated file: integrity "
                  "check: %s",
                  m->path, msg);
    return -1;
  }
  return 0;
}

/* A truncated or damaged file fails here with a message that says so,
 * rather than later with a confusing one (or with wrong answers).
 * quick_check is linear in the file size, which is capped.  NB: it does
 * not compare indexes with their tables: see check_indexes.
 */
static int
check_integrity (struct manifest *m)
{
  CLEANUP_FINALIZE sqlite3_stmt *stmt = NULL;
  int64_t app_id;

  if (run_integrity_pragma (m, "PRAGMA quick_check (1)") == -1)
    return -1;
  if (query_row (m, "PRAGMA application_id", NULL, "reading application_id",
                 &stmt) == -1)
    return -1;
  app_id = sqlite3_column_int64 (stmt, 0);
  if (app_id != 0 && app_id != MANIFEST_APPLICATION_ID) {
    report_error ("manifest: %s: not an accel manifest (sqlite "
                  "application_id is 0x%" PRIx64 ")",
                  m->path, (uint64_t) app_id);
    return -1;
  }
  return 0;
}

/* A table we query must be a real table: not a view (disabled anyway) or
 * a virtual table, whose module could do anything.  sqlite stores the
 * statement with its leading keywords normalized to "CREATE TABLE".
 */
static int
check_table (struct manifest *m, const char *table)
{
  CLEANUP_FINALIZE sqlite3_stmt *stmt = NULL;
  const char *sql;
  int r;

  if (manifest_prepare (m,
                        "SELECT sql FROM sqlite_master "
                        "WHERE type = 'table' AND name = ?1",
                        "reading the schema", &stmt) == -1)
    return -1;
  if (sqlite3_bind_text (stmt, 1, table, -1, SQLITE_STATIC) != SQLITE_OK) {
    manifest_report_sqlite (m->path, m->db, "reading the schema");
    return -1;
  }
  r = sqlite3_step (stmt);
  if (r == SQLITE_DONE) {
    report_error ("manifest: %s: no table %s (not an accel manifest?)", m->path,
                  table);
    return -1;
  }
  if (r != SQLITE_ROW) {
    manifest_report_sqlite (m->path, m->db, "reading the schema");
    return -1;
  }
  sql = (const char *) sqlite3_column_text (stmt, 0);
  if (sql == NULL || strncasecmp (sql, "CREATE TABLE", 12) != 0) {
    report_error ("manifest: %s: %s is not an ordinary table", m->path, table);
    return -1;
  }
  return 0;
}

/* Check that table has the columns we read (by preparing a query naming
 * them) and, if pk is not NULL, that pk alone is its primary key, which
 * makes its values unique.
 */
static int
check_columns (struct manifest *m, const char *table, const char *columns,
               const char *pk)
{
  CLEANUP_FINALIZE sqlite3_stmt *stmt = NULL;
  char sql[256];
  const char *name;

  if (check_table (m, table) == -1)
    return -1;
  snprintf (sql, sizeof sql, "SELECT %s FROM %s LIMIT 0", columns, table);
  if (sqlite3_prepare_v2 (m->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
    report_error ("manifest: %s: table %s lacks columns (%s): %s", m->path,
                  table, columns, sqlite3_errmsg (m->db));
    return -1;
  }
  sqlite3_finalize (stmt);
  stmt = NULL;
  if (pk == NULL)
    return 0;

  if (query_row (m,
                 "SELECT count (*), max (name) FROM pragma_table_info (?1) "
                 "WHERE pk > 0",
                 table, "reading the schema", &stmt) == -1)
    return -1;
  name = (const char *) sqlite3_column_text (stmt, 1);
  if (sqlite3_column_int64 (stmt, 0) != 1 || name == NULL ||
      strcmp (name, pk) != 0) {
    report_error ("manifest: %s: %s.%s is not the table's primary key, so "
                  "its values could repeat",
                  m->path, table, pk);
    return -1;
  }
  return 0;
}

/* The indexes of table must hold exactly its rows.  Lookups in meta
 * and files, the uniqueness of their keys, the order of files and the
 * overlap check of extents all go through an index, and an index that
 * disagrees with its table (which quick_check does not notice) would
 * make them lie: a path listed twice, or listed but not found.
 * integrity_check compares them, in time O(rows log rows).  NB: not
 * for chunks, the table that grows with the image: the only query that
 * uses its index, manifest_find_chunk, confirms the answer instead.
 */
static int
check_indexes (struct manifest *m, const char *table)
{
  char sql[64];

  snprintf (sql, sizeof sql, "PRAGMA integrity_check (%s)", table);
  return run_integrity_pragma (m, sql);
}

/* Look up a meta key, which must be present exactly once, and check the
 * type of its value.  The statement is left on the row for the caller.
 */
static int
meta_find (struct manifest *m, sqlite3_stmt *stmt, const char *key, int type)
{
  int r;

  sqlite3_reset (stmt);
  if (sqlite3_bind_text (stmt, 1, key, -1, SQLITE_STATIC) != SQLITE_OK) {
    manifest_report_sqlite (m->path, m->db, "reading meta");
    return -1;
  }
  r = sqlite3_step (stmt);
  if (r == SQLITE_DONE) {
    report_error ("manifest: %s: meta: %s is missing", m->path, key);
    return -1;
  }
  if (r != SQLITE_ROW) {
    manifest_report_sqlite (m->path, m->db, "reading meta");
    return -1;
  }
  if (sqlite3_column_type (stmt, 0) != type) {
    report_error ("manifest: %s: meta: %s is not %s", m->path, key,
                  type == SQLITE_INTEGER ? "an integer" : "text");
    return -1;
  }
  return 0;
}

/* After the value is read: a second row would make the key ambiguous. */
static int
meta_check_unique (struct manifest *m, sqlite3_stmt *stmt, const char *key)
{
  int r = sqlite3_step (stmt);

  if (r == SQLITE_ROW) {
    report_error ("manifest: %s: meta: %s appears more than once", m->path,
                  key);
    return -1;
  }
  if (r != SQLITE_DONE) {
    manifest_report_sqlite (m->path, m->db, "reading meta");
    return -1;
  }
  return 0;
}

/* A non-negative integer meta value. */
static int
meta_get_int (struct manifest *m, sqlite3_stmt *stmt, const char *key,
              uint64_t *value)
{
  int64_t v;

  if (meta_find (m, stmt, key, SQLITE_INTEGER) == -1)
    return -1;
  v = sqlite3_column_int64 (stmt, 0);
  if (meta_check_unique (m, stmt, key) == -1)
    return -1;
  if (v < 0) {
    report_error ("manifest: %s: meta: %s is negative (%" PRId64 ")", m->path,
                  key, v);
    return -1;
  }
  *value = v;
  return 0;
}

/* A text meta value that fits in buf (with its NUL) and has no NULs. */
static int
meta_get_text (struct manifest *m, sqlite3_stmt *stmt, const char *key,
               char *buf, size_t size)
{
  const unsigned char *text;
  int len;

  if (meta_find (m, stmt, key, SQLITE_TEXT) == -1)
    return -1;
  text = sqlite3_column_text (stmt, 0);
  len = sqlite3_column_bytes (stmt, 0);
  if (text == NULL || len < 0 || (size_t) len >= size ||
      memchr (text, 0, len) != NULL) {
    report_error ("manifest: %s: meta: %s is longer than %zu bytes or "
                  "contains NUL",
                  m->path, key, size - 1);
    return -1;
  }
  memcpy (buf, text, len);
  buf[len] = '\0';
  return meta_check_unique (m, stmt, key);
}

/* Read and check every meta value.  format_version comes first: a newer
 * format may break any other rule, and its message is the useful one.
 */
static int
read_meta (struct manifest *m)
{
  CLEANUP_FINALIZE sqlite3_stmt *stmt = NULL;
  char hex[65], creator[MAX_CREATED_BY_LEN + 1];
  uint64_t version, image_size, chunk_size;

  if (check_columns (m, "meta", "key, value", NULL) == -1 ||
      check_indexes (m, "meta") == -1 ||
      manifest_prepare (m, "SELECT value FROM meta WHERE key = ?1",
                        "reading meta", &stmt) == -1 ||
      meta_get_int (m, stmt, "format_version", &version) == -1)
    return -1;
  if (version > MANIFEST_FORMAT_VERSION) {
    report_error ("manifest: %s: manifest format %" PRIu64 " is newer than "
                  "this accel supports (%d)",
                  m->path, version, MANIFEST_FORMAT_VERSION);
    return -1;
  }
  if (version < 1) {
    report_error ("manifest: %s: format_version %" PRIu64 " is not valid",
                  m->path, version);
    return -1;
  }

  if (meta_get_int (m, stmt, "image_size", &image_size) == -1 ||
      meta_get_int (m, stmt, "chunk_size", &chunk_size) == -1 ||
      manifest_check_geometry (m->path, image_size, chunk_size,
                               &m->nr_chunks) == -1)
    return -1;
  m->image_size = image_size;
  m->chunk_size = chunk_size;

  if (meta_get_text (m, stmt, "fs_type", m->fs_type, sizeof m->fs_type) == -1)
    return -1;
  if (!manifest_valid_fs_type (m->fs_type)) {
    report_error ("manifest: %s: meta: fs_type \"%s\" is not ext4, "
                  "squashfs, erofs or raw",
                  m->path, m->fs_type);
    return -1;
  }

  if (meta_get_text (m, stmt, "image_sha256", hex, sizeof hex) == -1)
    return -1;
  if (hex_decode (hex, 32, m->image_sha256) == -1 || hex[64] != '\0') {
    report_error ("manifest: %s: meta: image_sha256 is not 64 hex digits",
                  m->path);
    return -1;
  }

  if (meta_get_text (m, stmt, "created_by", creator, sizeof creator) == -1)
    return -1;
  report_debug ("manifest: %s: format %" PRIu64 ", %" PRIu64 " bytes, "
                "%" PRIu64 " chunks of %" PRIu32 ", %s, created by %s",
                m->path, version, m->image_size, m->nr_chunks, m->chunk_size,
                m->fs_type, creator);
  return 0;
}

/* The chunk table must hold exactly idx 0 .. nr_chunks-1, each with a
 * 32-byte hash and a 0/1 zero flag.  idx is the sole primary key, so its
 * values are distinct; with the right count, minimum and maximum they
 * are exactly the set wanted.  One aggregate pass, no hashes loaded.
 */
static int
check_chunks (struct manifest *m)
{
  CLEANUP_FINALIZE sqlite3_stmt *stmt = NULL;
  int64_t count, lo, hi;

  if (check_columns (m, "chunks", "idx, sha256, zero", "idx") == -1)
    return -1;
  if (query_row (m,
                 "SELECT count (*), min (idx), max (idx),"
                 " total (typeof (idx) <> 'integer'),"
                 " min (CASE WHEN typeof (sha256) <> 'blob'"
                 "   OR length (sha256) <> 32 THEN idx END),"
                 " min (CASE WHEN typeof (zero) <> 'integer'"
                 "   OR zero NOT IN (0, 1) THEN idx END)"
                 " FROM chunks",
                 NULL, "checking chunks", &stmt) == -1)
    return -1;
  if (sqlite3_column_double (stmt, 3) != 0) {
    report_error ("manifest: %s: chunks: some idx values are not integers",
                  m->path);
    return -1;
  }
  count = sqlite3_column_int64 (stmt, 0);
  lo = sqlite3_column_int64 (stmt, 1);
  hi = sqlite3_column_int64 (stmt, 2);
  if (count < 0 || (uint64_t) count != m->nr_chunks) {
    report_error ("manifest: %s: chunks: %" PRId64 " rows, but image_size "
                  "and chunk_size need %" PRIu64,
                  m->path, count, m->nr_chunks);
    return -1;
  }
  if (lo != 0 || hi < 0 || (uint64_t) hi != m->nr_chunks - 1) {
    report_error ("manifest: %s: chunks: idx runs from %" PRId64 " to %" PRId64
                  ", not 0 to %" PRIu64,
                  m->path, lo, hi, m->nr_chunks - 1);
    return -1;
  }
  if (sqlite3_column_type (stmt, 4) != SQLITE_NULL) {
    report_error ("manifest: %s: chunks: chunk %" PRId64 ": sha256 is not "
                  "a 32-byte blob",
                  m->path, (int64_t) sqlite3_column_int64 (stmt, 4));
    return -1;
  }
  if (sqlite3_column_type (stmt, 5) != SQLITE_NULL) {
    report_error ("manifest: %s: chunks: chunk %" PRId64 ": zero is not "
                  "0 or 1",
                  m->path, (int64_t) sqlite3_column_int64 (stmt, 5));
    return -1;
  }
  sqlite3_finalize (stmt);
  stmt = NULL;

  /* Without this index finding a chunk by hash is a full scan. */
  if (query_row (m,
                 "SELECT count (*) FROM pragma_index_list ('chunks') AS l"
                 " JOIN pragma_index_info (l.name) AS i"
                 " WHERE l.partial = 0 AND i.seqno = 0"
                 " AND i.name = 'sha256'",
                 NULL, "reading the schema", &stmt) == -1)
    return -1;
  if (sqlite3_column_int64 (stmt, 0) < 1) {
    report_error ("manifest: %s: chunks: no index on sha256", m->path);
    return -1;
  }
  return 0;
}

/* The other tables must exist even when empty; the hot list must name
 * real chunks and cannot be longer than the chunk list.
 */
static int
check_other_tables (struct manifest *m)
{
  CLEANUP_FINALIZE sqlite3_stmt *stmt = NULL;
  char sql[128];
  int64_t count;

  if (check_columns (m, "files", "id, path, size, mode", "id") == -1 ||
      check_indexes (m, "files") == -1 ||
      check_columns (m, "extents", "file_id, file_offset, image_offset, length",
                     NULL) == -1 ||
      check_indexes (m, "extents") == -1 ||
      check_columns (m, "hot", "rank, chunk_idx", "rank") == -1)
    return -1;
  snprintf (sql, sizeof sql,
            "SELECT count (*), total (typeof (chunk_idx) <> 'integer'"
            " OR chunk_idx < 0 OR chunk_idx >= %" PRIu64 ") FROM hot",
            m->nr_chunks);
  if (query_row (m, sql, NULL, "checking hot", &stmt) == -1)
    return -1;
  count = sqlite3_column_int64 (stmt, 0);
  if (count < 0 || (uint64_t) count > m->nr_chunks) {
    report_error ("manifest: %s: hot: %" PRId64 " entries, more than the "
                  "%" PRIu64 " chunks",
                  m->path, count, m->nr_chunks);
    return -1;
  }
  if (sqlite3_column_double (stmt, 1) != 0) {
    report_error ("manifest: %s: hot: entries whose chunk_idx is not an "
                  "integer between 0 and %" PRIu64 ": %.0f",
                  m->path, m->nr_chunks - 1, sqlite3_column_double (stmt, 1));
    return -1;
  }
  return 0;
}

/* The files table: each path absolute text of 1 to MANIFEST_MAX_PATH_LEN
 * bytes without NULs, each size in range, each mode in range and a
 * regular file's (S_IFREG: the rows are regular files), and (when there are
 * files) a plain unique index on path alone, which makes paths unique
 * and lookups fast.  Sets m->nr_files.
 */
static int
check_files (struct manifest *m)
{
  CLEANUP_FINALIZE sqlite3_stmt *stmt = NULL;
  char sql[1024];
  int64_t count;

  snprintf (sql, sizeof sql,
            "SELECT count (*), total (typeof (id) <> 'integer'),"
            " min (CASE WHEN typeof (path) <> 'text'"
            "   OR length (CAST (path AS BLOB)) NOT BETWEEN 1 AND %d"
            "   OR substr (path, 1, 1) <> '/'"
            "   OR instr (CAST (path AS BLOB), x'00') > 0 THEN id END),"
            " min (CASE WHEN typeof (size) <> 'integer' OR size < 0"
            "   THEN id END),"
            " min (CASE WHEN typeof (mode) <> 'integer' OR mode < 0"
            "   OR mode > 4294967295 OR (mode & 61440) <> 32768 THEN id END)"
            " FROM files",
            MANIFEST_MAX_PATH_LEN);
  if (query_row (m, sql, NULL, "checking files", &stmt) == -1)
    return -1;
  count = sqlite3_column_int64 (stmt, 0);
  if (sqlite3_column_double (stmt, 1) != 0) {
    report_error ("manifest: %s: files: some ids are not integers", m->path);
    return -1;
  }
  if (sqlite3_column_type (stmt, 2) != SQLITE_NULL) {
    report_error ("manifest: %s: files: file %" PRId64 ": path is not "
                  "text of 1 to %d bytes starting with '/' (without NUL)",
                  m->path, (int64_t) sqlite3_column_int64 (stmt, 2),
                  MANIFEST_MAX_PATH_LEN);
    return -1;
  }
  if (sqlite3_column_type (stmt, 3) != SQLITE_NULL) {
    report_error ("manifest: %s: files: file %" PRId64 ": size is not a "
                  "non-negative integer",
                  m->path, (int64_t) sqlite3_column_int64 (stmt, 3));
    return -1;
  }
  if (sqlite3_column_type (stmt, 4) != SQLITE_NULL) {
    report_error ("manifest: %s: files: file %" PRId64 ": mode is not an "
                  "integer between 0 and 2^32-1 with the type bits of a "
                  "regular file (0100000)",
                  m->path, (int64_t) sqlite3_column_int64 (stmt, 4));
    return -1;
  }
  m->nr_files = count;
  if (count == 0)
    return 0;
  sqlite3_finalize (stmt);
  stmt = NULL;

  if (query_row (m,
                 "SELECT count (*) FROM pragma_index_list ('files') AS l"
                 " WHERE l.\"unique\" = 1 AND l.partial = 0"
                 " AND (SELECT count (*) FROM pragma_index_info (l.name)) = 1"
                 " AND (SELECT name FROM pragma_index_info (l.name)) = 'path'"
                 " AND (SELECT coll FROM pragma_index_xinfo (l.name)"
                 "      WHERE key = 1) = 'BINARY'",
                 NULL, "reading the schema", &stmt) == -1)
    return -1;
  if (sqlite3_column_int64 (stmt, 0) < 1) {
    report_error ("manifest: %s: files: no unique index on path, so paths "
                  "could repeat",
                  m->path);
    return -1;
  }
  return 0;
}

/* The extents table, in two aggregate passes: every value an integer,
 * every extent of an existing file, inside the image and inside the
 * file; then, in (file_id, file_offset) order through the index (which
 * must exist when there are extents), no extent overlapping the one
 * before it and no file with more than MANIFEST_MAX_FILE_EXTENTS.
 * Runs after check_files, so sizes are known to be integers.
 */
static int
check_extents (struct manifest *m)
{
  CLEANUP_FINALIZE sqlite3_stmt *stmt = NULL;
  char sql[1024];

  snprintf (sql, sizeof sql,
            "SELECT count (*),"
            " total (typeof (e.file_id) <> 'integer'"
            "   OR typeof (e.file_offset) <> 'integer'"
            "   OR typeof (e.image_offset) <> 'integer'"
            "   OR typeof (e.length) <> 'integer'),"
            " min (CASE WHEN f.id IS NULL THEN e.file_id END),"
            " min (CASE WHEN e.length < 1 OR e.image_offset < 0"
            "   OR e.length > %" PRIu64 " OR e.image_offset > %" PRIu64
            "   - e.length THEN e.file_id END),"
            " min (CASE WHEN e.file_offset < 0 OR e.length > f.size"
            "   OR e.file_offset > f.size - e.length THEN e.file_id END)"
            " FROM extents AS e LEFT JOIN files AS f ON f.id = e.file_id",
            m->image_size, m->image_size);
  if (query_row (m, sql, NULL, "checking extents", &stmt) == -1)
    return -1;
  if (sqlite3_column_int64 (stmt, 0) == 0)
    return 0;
  if (sqlite3_column_double (stmt, 1) != 0) {
    report_error ("manifest: %s: extents: some values are not integers",
                  m->path);
    return -1;
  }
  if (sqlite3_column_type (stmt, 2) != SQLITE_NULL) {
    report_error ("manifest: %s: extents: file %" PRId64 " does not exist",
                  m->path, (int64_t) sqlite3_column_int64 (stmt, 2));
    return -1;
  }
  if (sqlite3_column_type (stmt, 3) != SQLITE_NULL) {
    report_error ("manifest: %s: extents: file %" PRId64 ": an extent is "
                  "empty or not inside the image (%" PRIu64 " bytes)",
                  m->path, (int64_t) sqlite3_column_int64 (stmt, 3),
                  m->image_size);
    return -1;
  }
  if (sqlite3_column_type (stmt, 4) != SQLITE_NULL) {
    report_error ("manifest: %s: extents: file %" PRId64 ": an extent "
                  "ends beyond the file's size",
                  m->path, (int64_t) sqlite3_column_int64 (stmt, 4));
    return -1;
  }
  sqlite3_finalize (stmt);
  stmt = NULL;

  /* Without this index every lookup of a file's extents is a full scan,
   * and the pass below a sort.
   */
  if (query_row (m,
                 "SELECT count (*) FROM pragma_index_list ('extents') AS l"
                 " WHERE l.partial = 0"
                 " AND (SELECT name FROM pragma_index_info (l.name)"
                 "      WHERE seqno = 0) = 'file_id'"
                 " AND (SELECT name FROM pragma_index_info (l.name)"
                 "      WHERE seqno = 1) = 'file_offset'",
                 NULL, "reading the schema", &stmt) == -1)
    return -1;
  if (sqlite3_column_int64 (stmt, 0) < 1) {
    report_error ("manifest: %s: extents: no index on (file_id, "
                  "file_offset)",
                  m->path);
    return -1;
  }
  sqlite3_finalize (stmt);
  stmt = NULL;

  if (query_row (m,
                 "SELECT min (CASE WHEN prev_end > file_offset"
                 "   THEN file_id END), max (n) FROM"
                 " (SELECT file_id, file_offset,"
                 "  lag (file_offset + length) OVER w AS prev_end,"
                 "  row_number () OVER w AS n FROM extents"
                 "  WINDOW w AS (PARTITION BY file_id ORDER BY file_offset))",
                 NULL, "checking extents", &stmt) == -1)
    return -1;
  if (sqlite3_column_type (stmt, 0) != SQLITE_NULL) {
    report_error ("manifest: %s: extents: file %" PRId64 ": extents "
                  "overlap",
                  m->path, (int64_t) sqlite3_column_int64 (stmt, 0));
    return -1;
  }
  if ((uint64_t) sqlite3_column_int64 (stmt, 1) > MANIFEST_MAX_FILE_EXTENTS) {
    report_error ("manifest: %s: extents: a file has more than the limit "
                  "of %" PRIu64 " extents",
                  m->path, MANIFEST_MAX_FILE_EXTENTS);
    return -1;
  }
  return 0;
}

/* In an order where each check can rely on those before it: a sound
 * sqlite file, then meta (format_version first), chunks, other tables,
 * and files before extents.
 */
int
manifest_check_contents (struct manifest *m)
{
  if (check_integrity (m) == -1 || read_meta (m) == -1 ||
      check_chunks (m) == -1 || check_other_tables (m) == -1 ||
      check_files (m) == -1 || check_extents (m) == -1)
    return -1;
  return 0;
}
