/* accel-index: what the file map's back ends share (filemap.c).
 *
 * A back end (filemap-ext4.c, filemap-squashfs.c, filemap-erofs.c) walks its file system
 * from the root and, for each regular file, calls filemap_file_begin,
 * filemap_file_run for each run of data in increasing file order, and
 * filemap_file_end.  filemap.c keeps the path, merges runs that are
 * contiguous in both the file and the image, clips them to the file's
 * size, checks them against the image, replays the runs of hard-linked
 * files for their other paths, and enforces the caps below.
 */

#ifndef ACCEL_FILEMAP_INTERNAL_H
#define ACCEL_FILEMAP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "filemap.h"
#include "manifest.h"

/* Caps on what one image may put in the file map.  A real image far
 * below them; a hostile one fails with a clear error instead of using
 * unbounded time, memory or manifest space.  Directory depth is bounded
 * by MANIFEST_MAX_PATH_LEN (each level adds at least 2 bytes).
 */
#define FILEMAP_MAX_ENTRIES (UINT64_C (1) << 26) /* directory entries */
#define FILEMAP_MAX_FILES (UINT64_C (1) << 24) /* files rows */
#define FILEMAP_MAX_EXTENTS (UINT64_C (1) << 26) /* extents rows */

struct filemap_run {
  uint64_t file_offset, image_offset, length;
};

/* The runs of a file with more than one link (path), kept for the
 * paths after the first.
 */
struct filemap_link {
  uint64_t size;
  uint32_t mode;
  uint64_t unmapped_bytes;
  struct filemap_run *runs;
  size_t nr_runs, alloc;
};

/* A map from 64-bit keys (inode numbers, squashfs inode references) to
 * pointers, with open addressing.
 */
struct filemap_table_slot {
  uint64_t key;
  void *value; /* NULL: slot unused */
};
struct filemap_table {
  struct filemap_table_slot *slots;
  size_t nr_slots, nr_used;
};

/* A directory's subdirectories, collected while it is read and visited
 * after (so the file system library is never re-entered from its own
 * callback).  Names are stored one after another in names.
 */
struct filemap_subdir {
  uint64_t key; /* how the back end finds the directory */
  size_t name_offset, name_len;
};
struct filemap_subdirs {
  struct filemap_subdir *items;
  size_t len, alloc;
  char *names;
  size_t names_len, names_alloc;
};

struct filemap {
  const char *image, *fs_type; /* for messages */
  int fd;
  uint64_t image_size;
  struct manifest_writer *w;
  struct filemap_stats *stats;
  struct filemap_origin origin; /* 0s: the superblock's */

  /* The path of the entry being visited: "" for the root, else
   * "/a/b", without NUL or empty components.
   */
  char path[MANIFEST_MAX_PATH_LEN + 1];
  size_t path_len;
  uint64_t nr_entries;

  /* The file being mapped, between filemap_file_begin and _end. */
  int64_t file_id;
  uint64_t file_size, file_end, file_mapped, file_unmapped;
  bool have_run;
  struct filemap_run run; /* not written yet: it may grow */
  struct filemap_link *recording; /* also gets the runs, or NULL */

  /* Hard-linked files seen so far: key -> struct filemap_link. */
  struct filemap_table links;
};

/* The back ends.  0, or -1 (error reported). */
extern int filemap_ext4 (struct filemap *fm);
extern int filemap_squashfs (struct filemap *fm);
extern int filemap_erofs (struct filemap *fm);

/* layout-ext4.c: after filemap_ext4, the layout of the image (its
 * identity, every path's inode, the directories' blocks) for building
 * its next version.  0, or -1 (error reported).
 */
extern int layout_ext4 (struct filemap *fm);

/* Report an error about the entry being visited, as
 * "IMAGE: FS_TYPE: PATH: message" (control characters in the path are
 * shown as '?').
 */
extern void filemap_error (struct filemap *fm, const char *fs, ...)
    __attribute__ ((format (printf, 2, 3)));
/* The same as a debug message (accel-index -v). */
extern void filemap_debug (struct filemap *fm, const char *fs, ...)
    __attribute__ ((format (printf, 2, 3)));

/* Count one directory entry against FILEMAP_MAX_ENTRIES. */
extern int filemap_count_entry (struct filemap *fm);

/* Check a name from a directory and append "/name" to the path; *saved
 * is what filemap_leave restores.  "." and ".." must be skipped by the
 * caller; any other name that is empty, longer than max_len or contains
 * '/' or NUL is an error.
 */
extern int filemap_enter (struct filemap *fm, const char *name, size_t len,
                          size_t max_len, size_t *saved);
extern void filemap_leave (struct filemap *fm, size_t saved);

/* A file with more than one link: if key was mapped before, write this
 * path with the same runs and set *done.
 */
extern int filemap_replay (struct filemap *fm, uint64_t key, bool *done);

/* Start the file at the current path.  If linked, its runs are kept
 * under key for filemap_replay.
 */
extern int filemap_file_begin (struct filemap *fm, uint64_t size, uint32_t mode,
                               bool linked, uint64_t key);

/* Add a run of data, after the previous one in the file (an error
 * otherwise).  Runs at or beyond the file's size are dropped, a run
 * crossing it is clipped; the run must lie inside the image.
 */
extern int filemap_file_run (struct filemap *fm, uint64_t file_offset,
                             uint64_t image_offset, uint64_t length);

/* Count bytes of the file that hold data but cannot be mapped. */
extern void filemap_file_unmapped (struct filemap *fm, uint64_t bytes);

/* Write the last run of the file. */
extern int filemap_file_end (struct filemap *fm);

/* The key table.  NULL if key is not there. */
extern void *filemap_table_find (const struct filemap_table *t, uint64_t key);
/* value must not be NULL; key must not be there yet. */
extern int filemap_table_insert (struct filemap *fm, struct filemap_table *t,
                                 uint64_t key, void *value);
/* Free the table, calling free_value (if not NULL) on each value. */
extern void
filemap_table_free (struct filemap_table *t, void (*free_value) (void *));

/* Subdirectory lists. */
extern int filemap_subdirs_add (struct filemap *fm, struct filemap_subdirs *s,
                                uint64_t key, const char *name, size_t len);
extern void filemap_subdirs_free (struct filemap_subdirs *s);

/* Free fm (allocated by filemap_write) and the runs it kept. */
extern void filemap_free (struct filemap *fm);

#endif /* ACCEL_FILEMAP_INTERNAL_H */
