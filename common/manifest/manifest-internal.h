/* accel: what the manifest's files share.  In layers, each using only
 * those above it: manifest-sqlite.c prepares statements and reports
 * sqlite's errors, manifest-check.c checks every rule of the format
 * (some of them for the writer too), manifest-read.c opens a manifest
 * and closes it, manifest-query.c answers lookups on an open manifest,
 * manifest-write.c writes one and manifest-copy.c rewrites one; beside
 * them, trace-file.c reads and writes trace files.  Not for users of
 * the manifest: they see manifest.h.
 */

#ifndef ACCEL_MANIFEST_INTERNAL_H
#define ACCEL_MANIFEST_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

#include "manifest.h"

/* PRAGMA application_id of our manifests, "accl".  Files made by hand
 * may leave it 0; any other value is some other program's database.
 */
#define MANIFEST_APPLICATION_ID 0x6163636c

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

/* Finalize a statement at scope exit. */
static inline void
cleanup_finalize (sqlite3_stmt **stmt)
{
  sqlite3_finalize (*stmt);
}
#define CLEANUP_FINALIZE __attribute__ ((cleanup (cleanup_finalize)))

/* manifest-check.c: the rules the writer shares with the reader, so
 * that the indexer cannot write a manifest the plugin would refuse.
 * manifest_check_geometry sets *nr_chunks on success.
 */
bool manifest_valid_fs_type (const char *s);
int manifest_check_geometry (const char *path, uint64_t image_size,
                             uint64_t chunk_size, uint64_t *nr_chunks);

/* manifest-sqlite.c: report the last sqlite error on db, naming the file
 * path and what we were doing.
 */
void manifest_report_sqlite (const char *path, sqlite3 *db, const char *what);

/* manifest-check.c: check every rule of the format on m, just opened
 * by manifest-read.c, and fill in the fields that come from meta and
 * the counts (all but the zero bitmap).  0, or -1 (error reported).
 */
int manifest_check_contents (struct manifest *m);

/* manifest-sqlite.c: prepare sql on m's database, reporting a failure as
 * "what: sqlite's reason".
 */
int manifest_prepare (struct manifest *m, const char *sql, const char *what,
                      sqlite3_stmt **stmt);

#endif /* ACCEL_MANIFEST_INTERNAL_H */
