/* accel: the manifest's two ways into sqlite, shared by every file of
 * the library: preparing a statement and reporting sqlite's error once,
 * naming the file.  The bottom layer of the manifest library.
 */

#include <sqlite3.h>

#include "manifest-internal.h"
#include "report.h"

/* Report the last sqlite error on db once, with what we were doing.
 * Damage can surface at any query, so it is named as such wherever.
 */
void
manifest_report_sqlite (const char *path, sqlite3 *db, const char *what)
{
  int code = sqlite3_errcode (db) & 0xff;

  if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB)
    report_error ("manifest: %s: corrupt or truncated file: %s: %s", path, what,
                  sqlite3_errmsg (db));
  else
    report_error ("manifest: %s: %s: %s", path, what, sqlite3_errmsg (db));
}

/* Prepare sql, reporting a failure as "what: sqlite's reason". */
int
manifest_prepare (struct manifest *m, const char *sql, const char *what,
                  sqlite3_stmt **stmt)
{
  if (sqlite3_prepare_v3 (m->db, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt,
                          NULL) != SQLITE_OK) {
    manifest_report_sqlite (m->path, m->db, what);
    return -1;
  }
  return 0;
}
