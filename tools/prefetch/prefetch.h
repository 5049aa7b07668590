/* accel-prefetch: what the files of the tool share.
 *
 * prefetch.c parses the command line and runs the steps: find the
 * export and its manifest (target.c: from accel-mount's state
 * directory, or --socket and --manifest), turn the paths given into
 * the set of chunks that hold those files (select.c, through the
 * manifest's file map), and ask the plugin to fetch them into its
 * cache with NBD_CMD_CACHE, several requests at a time, showing
 * progress (warm.c).
 */

#ifndef ACCEL_PREFETCH_TOOL_H
#define ACCEL_PREFETCH_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "manifest.h"

#define PROGNAME "accel-prefetch"

/* target.c */

/* Where the export is: a Unix socket, and the local manifest's path
 * (NULL if not known yet: warm.c asks the plugin).  Strings malloc'd.
 */
struct target {
  char *socket;
  char *manifest;
  char *mountpoint; /* MOUNT, resolved; NULL with --socket */
};

/* Find the accel-mount state of mountpoint in the run directory
 * (ACCEL_RUN_DIR, default /run/accel) and fill t.  0, or -1 (error
 * reported).
 */
int target_from_mount (const char *mountpoint, struct target *t);

/* The path inside the image that arg names: relative to the mount (or
 * to the image's root with --socket), or absolute under the mount.
 * Lexically normalised ("//", ".", ".."), never going above the root.
 * Returns a malloc'd "/a/b" ("/" for the root), or NULL (error
 * reported).
 */
char *target_image_path (const struct target *t, const char *arg);

void target_free (struct target *t);

/* select.c: the chunks to warm. */

struct selection {
  uint64_t nr_chunks; /* of the image */
  uint8_t *chunks; /* bit idx: chunk idx holds bytes of a selected file */
  uint64_t nr_selected; /* bits set */
  uint64_t bytes; /* bytes of the chunks selected */
  uint64_t nr_files; /* distinct paths matched */
  uint64_t file_bytes; /* their sizes */
  uint64_t unmapped_bytes; /* of their bytes, with no extent */
};

/* Select the chunks of every file at or under each of paths[0..n-1]
 * (image paths, from target_image_path).  A path that matches nothing
 * is an error.  Chunks the manifest marks all-zero are never selected
 * (the plugin does not fetch them).  verbose: list each file.  0, or
 * -1 (error reported).
 */
int select_chunks (struct manifest *m, char *const *paths, size_t n,
                   bool verbose, struct selection *s);

void select_free (struct selection *s);

/* warm.c */

struct warm_options {
  unsigned requests; /* NBD_CMD_CACHE requests in flight */
  uint32_t batch; /* largest request, a multiple of the chunk size */
  bool progress; /* a progress bar on stderr */
  bool quiet; /* no summary either */
  unsigned jitter; /* start after a random 0 to jitter seconds */
  unsigned timeout; /* give up after this many seconds without an answer */
};

/* Connect to t->socket, giving up after timeout seconds without an
 * answer (0: never); if t->manifest is NULL, learn it from the plugin's
 * export description.  The handle is kept for warm_run.  0, or -1
 * (error reported).
 */
int warm_connect (struct target *t, unsigned timeout);

/* Check that m describes the export (its size). */
int warm_check (struct manifest *m);

/* Send NBD_CMD_CACHE for every selected chunk, in runs of adjacent
 * chunks of at most o->batch bytes.  0, or -1 (error reported) if any
 * request failed.
 */
int warm_run (struct manifest *m, const struct selection *s,
              const struct warm_options *o);

void warm_disconnect (void);

#endif /* ACCEL_PREFETCH_TOOL_H */
