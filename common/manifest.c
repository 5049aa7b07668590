/* accel: reading and writing manifests (format: manifest.h and
 * docs/manifest-format.md).
 *
 * The reader runs in the plugin, on a file that came from S3 or from an
 * operator, so it trusts nothing: the file's size and header are checked
 * before sqlite sees it, sqlite runs read-only with its defensive
 * settings and tight limits, and every rule of the format is checked with
 * aggregate queries before manifest_open returns.  Chunk hashes and the
 * file map stay on disk (a large image has millions of chunks and
 * extents); only a bitmap of the zero chunks is kept in memory.
 *
 * The writer runs in accel-index.  It builds the whole file inside one
 * transaction with no journal, creates the sha256 and extents indexes
 * last (a sorted build is faster and denser than growing them row by
 * row) and renames the finished file into place, so that the same inputs
 * always give the same bytes and no reader ever sees half a manifest.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cleanup.h"
#include "manifest.h"
#include "report.h"

/* The first 16 bytes of every sqlite3 database file. */
#define SQLITE_MAGIC "SQLite format 3"

/* PRAGMA application_id of our manifests, "accl".  Files made by hand
 * may leave it 0; any other value is some other program's database.
 */
#define MANIFEST_APPLICATION_ID 0x6163636c

/* Smallest possible sqlite database: one 512-byte page. */
#define MIN_FILE_SIZE 512

#define MAX_CREATED_BY_LEN 256
#define FS_TYPE_SIZE 16

struct manifest {
  char *path; /* for messages */
  uint64_t image_size, nr_chunks, nr_zero_chunks, nr_files;
  uint32_t chunk_size;
  unsigned char image_sha256[32];
  char fs_type[FS_TYPE_SIZE];
  uint8_t *zero_bitmap; /* bit idx set if chunk idx is all zero */

  /* lock protects db and the statements below: a connection opened with
   * SQLITE_OPEN_NOMUTEX must be used by one thread at a time.  Everything
   * above is read-only after manifest_open and needs no lock.
   */
  pthread_mutex_t lock;
  sqlite3 *db;
  sqlite3_stmt *chunk_stmt, *find_stmt, *hot_stmt;
  sqlite3_stmt *file_stmt, *extents_stmt;
};

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
};

/* Shared rules. */

/* One list of file system types, so that the indexer cannot write a
 * manifest the plugin would refuse.
 */
static bool
valid_fs_type (const char *s)
{
  return strcmp (s, "ext4") == 0 || strcmp (s, "squashfs") == 0 ||
      strcmp (s, "raw") == 0;
}

/* The size rules, shared by reader and writer for the same reason.  On
 * success *nr_chunks is set.  NB: the chunk limit keeps both the zero
 * bitmap and the manifest file (~90 bytes a chunk) under their caps.
 */
static int
check_geometry (const char *path, uint64_t image_size, uint64_t chunk_size,
                uint64_t *nr_chunks)
{
  uint64_t n;

  if (chunk_size < MANIFEST_MIN_CHUNK_SIZE ||
      chunk_size > MANIFEST_MAX_CHUNK_SIZE ||
      (chunk_size & (chunk_size - 1)) != 0) {
    report_error ("manifest: %s: chunk_size %" PRIu64 " is not a power of "
                  "two between %" PRIu32 " and %" PRIu32,
                  path, chunk_size, MANIFEST_MIN_CHUNK_SIZE,
                  MANIFEST_MAX_CHUNK_SIZE);
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

/* Report the last sqlite error on db once, with what we were doing.
 * Damage can surface at any query, so it is named as such wherever.
 */
static void
report_sqlite (const char *path, sqlite3 *db, const char *what)
{
  int code = sqlite3_errcode (db) & 0xff;

  if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB)
    report_error ("manifest: %s: corrupt or truncated file: %s: %s", path, what,
                  sqlite3_errmsg (db));
  else
    report_error ("manifest: %s: %s: %s", path, what, sqlite3_errmsg (db));
}

/* Reader. */

/* Reject what is obviously not a manifest before sqlite parses it: not a
 * regular file, too small or too large, or without the sqlite magic.
 * NB: the file could still be swapped before sqlite opens it; that only
 * means sqlite sees a different untrusted file, which it checks again.
 */
static int
check_file (const char *path)
{
  char header[16];
  struct stat st;
  ssize_t r;
  int fd;

  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd == -1) {
    report_error ("manifest: %s: open: %m", path);
    return -1;
  }
  if (fstat (fd, &st) == -1) {
    report_error ("manifest: %s: fstat: %m", path);
    close (fd);
    return -1;
  }
  if (!S_ISREG (st.st_mode)) {
    report_error ("manifest: %s: not a regular file", path);
    close (fd);
    return -1;
  }
  if (st.st_size < MIN_FILE_SIZE) {
    report_error ("manifest: %s: only %jd bytes, too small to be a "
                  "manifest (truncated?)",
                  path, (intmax_t) st.st_size);
    close (fd);
    return -1;
  }
  if ((uint64_t) st.st_size > MANIFEST_MAX_FILE_SIZE) {
    report_error ("manifest: %s: %jd bytes, larger than the limit of "
                  "%" PRIu64,
                  path, (intmax_t) st.st_size, MANIFEST_MAX_FILE_SIZE);
    close (fd);
    return -1;
  }
  r = pread (fd, header, sizeof header, 0);
  if (r == -1) {
    report_error ("manifest: %s: read: %m", path);
    close (fd);
    return -1;
  }
  close (fd);
  if (r != (ssize_t) sizeof header ||
      memcmp (header, SQLITE_MAGIC, sizeof header) != 0) {
    report_error ("manifest: %s: not a sqlite3 database (bad header)", path);
    return -1;
  }
  return 0;
}

/* sqlite needs a URI to be told the file is immutable.  Percent-encode
 * everything but unreserved characters and '/', so no '?', '#' or '%' in
 * the path can change its meaning.  Returns malloc'd string or NULL.
 */
static char *
make_uri (const char *path)
{
  static const char hex[] = "0123456789ABCDEF";
  static const char query[] = "?immutable=1";
  size_t len = strlen (path), i, j;
  char *uri;

  if (len == 0 || len > MANIFEST_MAX_PATH_LEN) {
    report_error ("manifest: path length %zu is not between 1 and %d", len,
                  MANIFEST_MAX_PATH_LEN);
    return NULL;
  }
  /* "file://" + 3 bytes per character + query + NUL. */
  uri = malloc (7 + 3 * len + sizeof query);
  if (uri == NULL) {
    report_error ("manifest: %s: malloc: %m", path);
    return NULL;
  }
  /* An absolute path gets an empty authority: file:///abs/path. */
  j = path[0] == '/' ? 7 : 5;
  memcpy (uri, "file://", j);
  for (i = 0; i < len; ++i) {
    unsigned char c = path[i];

    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
        c == '~' || c == '/')
      uri[j++] = c;
    else {
      uri[j++] = '%';
      uri[j++] = hex[c >> 4];
      uri[j++] = hex[c & 15];
    }
  }
  memcpy (uri + j, query, sizeof query);
  return uri;
}

/* One of the on/off settings open_db makes before sqlite reads the file. */
static int
set_db_config (struct manifest *m, int op, int value)
{
  if (sqlite3_db_config (m->db, op, value, NULL) != SQLITE_OK) {
    report_sqlite (m->path, m->db, "sqlite3_db_config");
    return -1;
  }
  return 0;
}

/* Open read-only and lock sqlite down before it reads the schema:
 * defensive mode, no triggers, views or untrusted schema functions,
 * small limits.  immutable=1 is safe because manifests are only ever
 * replaced by rename, never changed in place; it also means no locks and
 * no journal are looked for.
 */
static int
open_db (struct manifest *m)
{
  CLEANUP_FREE char *uri = make_uri (m->path);
  const int flags =
      SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX;
  int r;

  if (uri == NULL)
    return -1;
  r = sqlite3_open_v2 (uri, &m->db, flags, NULL);
  if (r != SQLITE_OK) {
    if (m->db)
      report_sqlite (m->path, m->db, "open");
    else
      report_error ("manifest: %s: open: out of memory", m->path);
    return -1;
  }
  sqlite3_extended_result_codes (m->db, 1);
  if (set_db_config (m, SQLITE_DBCONFIG_DEFENSIVE, 1) == -1 ||
      set_db_config (m, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0) == -1 ||
      set_db_config (m, SQLITE_DBCONFIG_ENABLE_VIEW, 0) == -1 ||
      set_db_config (m, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0) == -1)
    return -1;
  /* Our own statements are short and our values small (paths are the
   * longest); anything bigger in the file is an attack or corruption.
   */
  sqlite3_limit (m->db, SQLITE_LIMIT_LENGTH, 64 * 1024);
  sqlite3_limit (m->db, SQLITE_LIMIT_SQL_LENGTH, 16 * 1024);
  sqlite3_limit (m->db, SQLITE_LIMIT_COLUMN, 64);
  sqlite3_limit (m->db, SQLITE_LIMIT_EXPR_DEPTH, 32);
  sqlite3_limit (m->db, SQLITE_LIMIT_COMPOUND_SELECT, 4);
  sqlite3_limit (m->db, SQLITE_LIMIT_FUNCTION_ARG, 8);
  sqlite3_limit (m->db, SQLITE_LIMIT_ATTACHED, 0);
  sqlite3_limit (m->db, SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 64);
  sqlite3_limit (m->db, SQLITE_LIMIT_VARIABLE_NUMBER, 8);
  sqlite3_limit (m->db, SQLITE_LIMIT_TRIGGER_DEPTH, 1);
  sqlite3_limit (m->db, SQLITE_LIMIT_WORKER_THREADS, 0);
  if (sqlite3_exec (m->db,
                    "PRAGMA trusted_schema = OFF;"
                    "PRAGMA query_only = ON;"
                    "PRAGMA cache_size = -2048;",
                    NULL, NULL, NULL) != SQLITE_OK) {
    report_sqlite (m->path, m->db, "reading the schema");
    return -1;
  }
  return 0;
}

/* Prepare sql, reporting a failure as "what: sqlite's reason". */
static int
prepare (struct manifest *m, const char *sql, const char *what,
         sqlite3_stmt **stmt)
{
  if (sqlite3_prepare_v3 (m->db, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt,
                          NULL) != SQLITE_OK) {
    report_sqlite (m->path, m->db, what);
    return -1;
  }
  return 0;
}

/* Run a one-row query, leaving *stmt on the row for the caller to read
 * and finalize (with CLEANUP_FINALIZE).  An optional text parameter ?1.
 */
static int
query_row (struct manifest *m, const char *sql, const char *param,
           const char *what, sqlite3_stmt **stmt)
{
  if (prepare (m, sql, what, stmt) == -1)
    return -1;
  if (param &&
      sqlite3_bind_text (*stmt, 1, param, -1, SQLITE_STATIC) != SQLITE_OK) {
    report_sqlite (m->path, m->db, what);
    return -1;
  }
  if (sqlite3_step (*stmt) != SQLITE_ROW) {
    report_sqlite (m->path, m->db, what);
    return -1;
  }
  return 0;
}

/* Finalize a statement at scope exit. */
static void
cleanup_finalize (sqlite3_stmt **stmt)
{
  sqlite3_finalize (*stmt);
}
#define CLEANUP_FINALIZE __attribute__ ((cleanup (cleanup_finalize)))

/* A truncated or damaged file fails here with a message that says so,
 * rather than later with a confusing one (or with wrong answers).
 * quick_check is linear in the file size, which is capped.
 */
static int
check_integrity (struct manifest *m)
{
  CLEANUP_FINALIZE sqlite3_stmt *stmt = NULL;
  const char *result;
  int64_t app_id;

  if (prepare (m, "PRAGMA quick_check (1)", "integrity check", &stmt) == -1)
    return -1;
  if (sqlite3_step (stmt) != SQLITE_ROW) {
    report_sqlite (m->path, m->db, "integrity check");
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
  sqlite3_finalize (stmt);
  stmt = NULL;

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

  if (prepare (m,
               "SELECT sql FROM sqlite_master "
               "WHERE type = 'table' AND name = ?1",
               "reading the schema", &stmt) == -1)
    return -1;
  if (sqlite3_bind_text (stmt, 1, table, -1, SQLITE_STATIC) != SQLITE_OK) {
    report_sqlite (m->path, m->db, "reading the schema");
    return -1;
  }
  r = sqlite3_step (stmt);
  if (r == SQLITE_DONE) {
    report_error ("manifest: %s: no table %s (not an accel manifest?)", m->path,
                  table);
    return -1;
  }
  if (r != SQLITE_ROW) {
    report_sqlite (m->path, m->db, "reading the schema");
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

/* Look up a meta key, which must be present exactly once, and check the
 * type of its value.  The statement is left on the row for the caller.
 */
static int
meta_find (struct manifest *m, sqlite3_stmt *stmt, const char *key, int type)
{
  int r;

  sqlite3_reset (stmt);
  if (sqlite3_bind_text (stmt, 1, key, -1, SQLITE_STATIC) != SQLITE_OK) {
    report_sqlite (m->path, m->db, "reading meta");
    return -1;
  }
  r = sqlite3_step (stmt);
  if (r == SQLITE_DONE) {
    report_error ("manifest: %s: meta: %s is missing", m->path, key);
    return -1;
  }
  if (r != SQLITE_ROW) {
    report_sqlite (m->path, m->db, "reading meta");
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
    report_sqlite (m->path, m->db, "reading meta");
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

/* The value of one hex digit, or -1. */
static int
hex_digit (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
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
  size_t i;

  if (check_columns (m, "meta", "key, value", NULL) == -1 ||
      prepare (m, "SELECT value FROM meta WHERE key = ?1", "reading meta",
               &stmt) == -1 ||
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
      check_geometry (m->path, image_size, chunk_size, &m->nr_chunks) == -1)
    return -1;
  m->image_size = image_size;
  m->chunk_size = chunk_size;

  if (meta_get_text (m, stmt, "fs_type", m->fs_type, sizeof m->fs_type) == -1)
    return -1;
  if (!valid_fs_type (m->fs_type)) {
    report_error ("manifest: %s: meta: fs_type \"%s\" is not ext4, "
                  "squashfs or raw",
                  m->path, m->fs_type);
    return -1;
  }

  if (meta_get_text (m, stmt, "image_sha256", hex, sizeof hex) == -1)
    return -1;
  for (i = 0; i < 32; ++i) {
    int hi = hex_digit (hex[2 * i]),
        lo = hi >= 0 ? hex_digit (hex[2 * i + 1]) : -1;

    if (hi < 0 || lo < 0)
      break;
    m->image_sha256[i] = hi << 4 | lo;
  }
  if (i < 32 || hex[64] != '\0') {
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
      check_columns (m, "extents", "file_id, file_offset, image_offset, length",
                     NULL) == -1 ||
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
 * bytes without NULs, each size and mode in range, and (when there are
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
            "   OR mode > 4294967295 THEN id END)"
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
                  "integer between 0 and 2^32-1",
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

/* The zero flags are needed on every read, so they live in memory: one
 * bit a chunk, at most MANIFEST_MAX_CHUNKS / 8 bytes.
 */
static int
load_zero_bitmap (struct manifest *m)
{
  CLEANUP_FINALIZE sqlite3_stmt *stmt = NULL;
  int r;

  m->zero_bitmap = calloc (m->nr_chunks / 8 + 1, 1);
  if (m->zero_bitmap == NULL) {
    report_error ("manifest: %s: calloc: %m", m->path);
    return -1;
  }
  if (prepare (m, "SELECT idx FROM chunks WHERE zero = 1", "reading chunks",
               &stmt) == -1)
    return -1;
  while ((r = sqlite3_step (stmt)) == SQLITE_ROW) {
    int64_t idx = sqlite3_column_int64 (stmt, 0);

    if (idx < 0 || (uint64_t) idx >= m->nr_chunks) {
      report_error ("manifest: %s: chunks: idx %" PRId64 " out of range",
                    m->path, idx);
      return -1;
    }
    m->zero_bitmap[idx / 8] |= 1 << (idx % 8);
    m->nr_zero_chunks++;
  }
  if (r != SQLITE_DONE) {
    report_sqlite (m->path, m->db, "reading chunks");
    return -1;
  }
  return 0;
}

/* Every check happens here, once, so that the plugin can trust the
 * answers of the functions below without checking them again.
 */
struct manifest *
manifest_open (const char *path)
{
  struct manifest *m;
  int err;

  m = calloc (1, sizeof *m);
  if (m == NULL) {
    report_error ("manifest: %s: calloc: %m", path);
    return NULL;
  }
  err = pthread_mutex_init (&m->lock, NULL);
  if (err != 0) {
    errno = err;
    report_error ("manifest: %s: pthread_mutex_init: %m", path);
    free (m);
    return NULL;
  }
  m->path = strdup (path);
  if (m->path == NULL) {
    report_error ("manifest: %s: strdup: %m", path);
    goto err;
  }
  if (check_file (path) == -1 || open_db (m) == -1 ||
      check_integrity (m) == -1 || read_meta (m) == -1 ||
      check_chunks (m) == -1 || check_other_tables (m) == -1 ||
      check_files (m) == -1 || check_extents (m) == -1 ||
      load_zero_bitmap (m) == -1 ||
      prepare (m, "SELECT sha256 FROM chunks WHERE idx = ?1", "reading chunks",
               &m->chunk_stmt) == -1 ||
      prepare (m,
               "SELECT idx FROM chunks WHERE sha256 = ?1 "
               "ORDER BY idx LIMIT 1",
               "reading chunks", &m->find_stmt) == -1 ||
      prepare (m, "SELECT chunk_idx FROM hot ORDER BY rank", "reading hot",
               &m->hot_stmt) == -1 ||
      prepare (m, "SELECT id, size, mode FROM files WHERE path = ?1",
               "reading files", &m->file_stmt) == -1 ||
      prepare (m,
               "SELECT file_offset, image_offset, length FROM extents "
               "WHERE file_id = ?1 ORDER BY file_offset",
               "reading extents", &m->extents_stmt) == -1)
    goto err;
  return m;

err:
  manifest_close (m);
  return NULL;
}

/* Also frees a manifest that manifest_open built only in part. */
void
manifest_close (struct manifest *m)
{
  if (m == NULL)
    return;
  sqlite3_finalize (m->chunk_stmt);
  sqlite3_finalize (m->find_stmt);
  sqlite3_finalize (m->hot_stmt);
  sqlite3_finalize (m->file_stmt);
  sqlite3_finalize (m->extents_stmt);
  sqlite3_close (m->db);
  pthread_mutex_destroy (&m->lock);
  free (m->zero_bitmap);
  free (m->path);
  free (m);
}

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

/* Parsed from hex at open. */
const unsigned char *
manifest_image_sha256 (const struct manifest *m)
{
  return m->image_sha256;
}

/* One of the names valid_fs_type accepts. */
const char *
manifest_fs_type (const struct manifest *m)
{
  return m->fs_type;
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
    report_sqlite (m->path, m->db, "reading chunks");
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
    report_sqlite (m->path, m->db, "reading chunks");
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
    report_sqlite (m->path, m->db, "finding a chunk");
    return -1;
  }
  r = sqlite3_step (stmt);
  if (r == SQLITE_ROW)
    found = sqlite3_column_int64 (stmt, 0);
  sqlite3_reset (stmt);
  if (r == SQLITE_DONE)
    return 1;
  if (r != SQLITE_ROW) {
    report_sqlite (m->path, m->db, "finding a chunk");
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
    report_sqlite (m->path, m->db, "reading hot");
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

/* A statement of its own, stepped under the lock with fn called outside
 * it, so that fn may use m and several walks may run at once.  NB: a
 * row's text stays valid until its statement is stepped again, which
 * only this function does.
 */
int
manifest_foreach_file (struct manifest *m, manifest_file_fn fn, void *opaque)
{
  sqlite3_stmt *stmt = NULL;
  struct manifest_file f;
  int r, ret = -1;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);
    if (prepare (m, "SELECT id, path, size, mode FROM files ORDER BY path",
                 "reading files", &stmt) == -1)
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
        report_sqlite (m->path, m->db, "reading files");
        break;
      }
      if (read_file_row (m, stmt, true, &f) == -1)
        break;
    }
    if (fn (opaque, &f) == -1)
      break;
  }

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);
  sqlite3_finalize (stmt);
  return ret;
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
    report_sqlite (m->path, m->db, "reading extents");
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
    report_sqlite (m->path, m->db, "reading extents");
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
    report_sqlite (m->path, m->db, "reading files");
    return -1;
  }
  r = sqlite3_step (stmt);
  if (r == SQLITE_DONE) {
    sqlite3_reset (stmt);
    return 1;
  }
  if (r != SQLITE_ROW) {
    report_sqlite (m->path, m->db, "reading files");
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

/* Writer. */

/* Run SQL that returns no values we need. */
static int
writer_exec (struct manifest_writer *w, const char *sql, const char *what)
{
  if (sqlite3_exec (w->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
    report_sqlite (w->path, w->db, what);
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
    report_sqlite (w->path, w->db, what);
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
    report_sqlite (w->path, w->db, "writing meta");
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
    report_sqlite (w->path, w->db, "preparing statements");
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
  w->meta_stmt = w->chunk_stmt = w->file_stmt = NULL;
  w->extent_stmt = w->hot_stmt = NULL;
  ok = sqlite3_close (w->db) == SQLITE_OK;
  if (!ok)
    report_sqlite (w->path, w->db, "close");
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

/* Everything that does not depend on the image's bytes is checked and
 * written here, so a bad argument fails before a long scan starts.
 */
struct manifest_writer *
manifest_writer_create (const char *path, uint64_t image_size,
                        uint32_t chunk_size, const char *fs_type)
{
  struct manifest_writer *w;
  char created_by[64];
  uint64_t nr_chunks;
  const int flags =
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  size_t len = strlen (path);
  int fd;

  if (len == 0 || len > MANIFEST_MAX_PATH_LEN - 4) {
    report_error ("manifest: path length %zu is not between 1 and %d", len,
                  MANIFEST_MAX_PATH_LEN - 4);
    return NULL;
  }
  if (!valid_fs_type (fs_type)) {
    report_error ("manifest: %s: fs_type \"%s\" is not ext4, squashfs or "
                  "raw",
                  path, fs_type);
    return NULL;
  }
  if (check_geometry (path, image_size, chunk_size, &nr_chunks) == -1)
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
  /* Left over from a run that was killed. */
  if (unlink (w->tmp_path) == -1 && errno != ENOENT) {
    report_error ("manifest: %s: unlink: %m", w->tmp_path);
    goto err;
  }
  /* Created here for a clear errno; sqlite takes an empty file as an
   * empty database.
   */
  fd = open (w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd == -1) {
    report_error ("manifest: %s: create: %m", w->tmp_path);
    goto err;
  }
  close (fd);
  w->tmp_created = true;
  if (sqlite3_open_v2 (w->tmp_path, &w->db, flags, NULL) != SQLITE_OK) {
    if (w->db)
      report_sqlite (w->tmp_path, w->db, "open");
    else
      report_error ("manifest: %s: open: out of memory", w->tmp_path);
    goto err;
  }
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
                   " chunk_idx INTEGER NOT NULL);",
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
                      &w->hot_stmt) == -1)
    goto err;

  snprintf (created_by, sizeof created_by, "accel (sqlite %s)",
            sqlite3_libversion ());
  if (writer_meta (w, "format_version", NULL, MANIFEST_FORMAT_VERSION) == -1 ||
      writer_meta (w, "image_size", NULL, image_size) == -1 ||
      writer_meta (w, "chunk_size", NULL, chunk_size) == -1 ||
      writer_meta (w, "fs_type", fs_type, 0) == -1 ||
      writer_meta (w, "created_by", created_by, 0) == -1)
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
    report_sqlite (w->path, w->db, "writing chunks");
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
  if (sqlite3_bind_text (stmt, 1, path, len, SQLITE_STATIC) != SQLITE_OK ||
      sqlite3_bind_int64 (stmt, 2, size) != SQLITE_OK ||
      sqlite3_bind_int64 (stmt, 3, mode) != SQLITE_OK) {
    report_sqlite (w->path, w->db, what);
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
    report_sqlite (w->path, w->db, "writing extents");
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
    report_sqlite (w->path, w->db, "writing hot");
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

/* Only a complete manifest is ever renamed into place. */
int
manifest_writer_finish (struct manifest_writer *w,
                        const unsigned char image_sha256[32])
{
  static const char hex_digits[] = "0123456789abcdef";
  char hex[65];
  size_t i;

  if (w->next_chunk != w->nr_chunks) {
    report_error ("manifest: %s: only %" PRIu64 " of %" PRIu64 " chunks "
                  "were added",
                  w->path, w->next_chunk, w->nr_chunks);
    goto err;
  }
  for (i = 0; i < 32; ++i) {
    hex[2 * i] = hex_digits[image_sha256[i] >> 4];
    hex[2 * i + 1] = hex_digits[image_sha256[i] & 15];
  }
  hex[64] = '\0';
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
