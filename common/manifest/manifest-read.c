/* accel: opening a manifest (format: manifest.h and
 * docs/manifest-format.md).
 *
 * The reader runs in the plugin, on a file that came from S3 or from an
 * operator, so it trusts nothing: the file's size and header are checked
 * here before sqlite sees it, sqlite runs read-only with its defensive
 * settings and tight limits, and manifest-check.c checks every rule of
 * the format before manifest_open returns.  Chunk hashes and the file
 * map stay on disk (a large image has millions of chunks and extents);
 * only a bitmap of the zero chunks, loaded here, is kept in memory.
 * The lookups on an open manifest are in manifest-query.c.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cleanup.h"
#include "manifest-internal.h"
#include "manifest.h"
#include "report.h"

/* The first 16 bytes of every sqlite3 database file. */
#define SQLITE_MAGIC "SQLite format 3"

/* Smallest possible sqlite database: one 512-byte page. */
#define MIN_FILE_SIZE 512

/* Reject what is obviously not a manifest before sqlite parses it: not a
 * regular file, too small or too large, or without the sqlite magic.
 * NB: the file could still be swapped before sqlite opens it; that only
 * means sqlite sees a different untrusted file, which it checks again.
 */
static int
check_file (const char *path, const char *name)
{
  char header[16];
  struct stat st;
  ssize_t r;
  int fd;

  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd == -1) {
    report_error ("manifest: %s: open: %m", name);
    return -1;
  }
  if (fstat (fd, &st) == -1) {
    report_error ("manifest: %s: fstat: %m", name);
    close (fd);
    return -1;
  }
  if (!S_ISREG (st.st_mode)) {
    report_error ("manifest: %s: not a regular file", name);
    close (fd);
    return -1;
  }
  if (st.st_size < MIN_FILE_SIZE) {
    report_error ("manifest: %s: only %jd bytes, too small to be a "
                  "manifest (truncated?)",
                  name, (intmax_t) st.st_size);
    close (fd);
    return -1;
  }
  if ((uint64_t) st.st_size > MANIFEST_MAX_FILE_SIZE) {
    report_error ("manifest: %s: %jd bytes, larger than the limit of "
                  "%" PRIu64,
                  name, (intmax_t) st.st_size, MANIFEST_MAX_FILE_SIZE);
    close (fd);
    return -1;
  }
  r = pread (fd, header, sizeof header, 0);
  if (r == -1) {
    report_error ("manifest: %s: read: %m", name);
    close (fd);
    return -1;
  }
  close (fd);
  if (r != (ssize_t) sizeof header ||
      memcmp (header, SQLITE_MAGIC, sizeof header) != 0) {
    report_error ("manifest: %s: not a sqlite3 database (bad header)", name);
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
    manifest_report_sqlite (m->path, m->db, "sqlite3_db_config");
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
open_db (struct manifest *m, const char *path)
{
  CLEANUP_FREE char *uri = make_uri (path);
  const int flags =
      SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX;
  int r;

  if (uri == NULL)
    return -1;
  r = sqlite3_open_v2 (uri, &m->db, flags, NULL);
  if (r != SQLITE_OK) {
    if (m->db)
      manifest_report_sqlite (m->path, m->db, "open");
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
    manifest_report_sqlite (m->path, m->db, "reading the schema");
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
  if (manifest_prepare (m, "SELECT idx FROM chunks WHERE zero = 1",
                        "reading chunks", &stmt) == -1)
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
    manifest_report_sqlite (m->path, m->db, "reading chunks");
    return -1;
  }
  return 0;
}

/* Every check happens here, once, so that the plugin can trust the
 * answers of manifest-query.c without checking them again.
 */
struct manifest *
manifest_open (const char *path)
{
  return manifest_open_as (path, path);
}

struct manifest *
manifest_open_as (const char *path, const char *name)
{
  struct manifest *m;
  int err;

  m = calloc (1, sizeof *m);
  if (m == NULL) {
    report_error ("manifest: %s: calloc: %m", name);
    return NULL;
  }
  err = pthread_mutex_init (&m->lock, NULL);
  if (err != 0) {
    errno = err;
    report_error ("manifest: %s: pthread_mutex_init: %m", name);
    free (m);
    return NULL;
  }
  m->path = strdup (name);
  if (m->path == NULL) {
    report_error ("manifest: %s: strdup: %m", name);
    goto err;
  }
  if (check_file (path, name) == -1 || open_db (m, path) == -1 ||
      manifest_check_contents (m) == -1 || load_zero_bitmap (m) == -1 ||
      manifest_prepare (m, "SELECT sha256 FROM chunks WHERE idx = ?1",
                        "reading chunks", &m->chunk_stmt) == -1 ||
      manifest_prepare (m,
                        "SELECT idx FROM chunks WHERE sha256 = ?1 "
                        "ORDER BY idx LIMIT 1",
                        "reading chunks", &m->find_stmt) == -1 ||
      manifest_prepare (m, "SELECT chunk_idx FROM hot ORDER BY rank",
                        "reading hot", &m->hot_stmt) == -1 ||
      manifest_prepare (m, "SELECT id, size, mode FROM files WHERE path = ?1",
                        "reading files", &m->file_stmt) == -1 ||
      manifest_prepare (m,
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
