/* accel-prefetch: from paths to chunks, through the manifest's file map.
 *
 * A path that is a file in the map selects that file; any other path
 * selects every file below it (the map lists regular files only, so a
 * directory is the prefix "PATH/" of its files' paths, and "/" is the
 * whole image).  Exact files are one indexed lookup each; directories
 * need one pass over the map, shared by all of them.  Each file's
 * extents select the chunks they touch, except all-zero chunks, which
 * the plugin never fetches.
 */

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "prefetch.h"
#include "report.h"

/* What the pass over the map needs. */
struct walk {
  struct manifest *m;
  struct selection *s;
  char *const *dirs; /* paths that are not files */
  bool *dir_hit;
  size_t nr_dirs;
  char *const *files; /* paths that are files, already selected */
  size_t nr_files;
  bool verbose;
};

/* Mark the chunks of one file. */
static void
select_extents (struct manifest *m, struct selection *s,
                const struct manifest_file *f, const struct manifest_extent *e,
                size_t n)
{
  uint32_t chunk_size = manifest_chunk_size (m);
  uint64_t mapped = 0, idx, last;
  size_t i;

  for (i = 0; i < n; i++) {
    mapped += e[i].length;
    last = (e[i].image_offset + e[i].length - 1) / chunk_size;
    for (idx = e[i].image_offset / chunk_size; idx <= last; idx++) {
      if (manifest_chunk_is_zero (m, idx) ||
          (s->chunks[idx / 8] & (1 << (idx % 8))))
        continue;
      s->chunks[idx / 8] |= 1 << (idx % 8);
      s->nr_selected++;
      s->bytes += idx == s->nr_chunks - 1
          ? manifest_image_size (m) - idx * chunk_size
          : chunk_size;
    }
  }
  s->nr_files++;
  s->file_bytes += f->size;
  s->unmapped_bytes += f->size - mapped;
}

/* Look up path and select it.  1 if it is not a file, 0 done, -1
 * error.
 */
static int
select_file (struct manifest *m, struct selection *s, const char *path,
             bool verbose)
{
  CLEANUP_FREE struct manifest_extent *e = NULL;
  struct manifest_file f;
  size_t n;
  int r;

  r = manifest_file_extents (m, path, &f, &e, &n);
  if (r != 0)
    return r;
  if (verbose) {
    char size[32];
    const char *p;

    /* NB: paths come from the image: no control characters to the
     * terminal.
     */
    fprintf (stderr, PROGNAME ": ");
    for (p = path; *p; p++)
      fputc ((unsigned char) *p < ' ' || *p == 0x7f ? '?' : *p, stderr);
    fprintf (stderr, " (%s, %zu extents)\n",
             human_size (f.size, size, sizeof size), n);
  }
  select_extents (m, s, &f, e, n);
  return 0;
}

/* True if path is dir or below it. */
static bool
is_under (const char *path, const char *dir)
{
  size_t len = strlen (dir);

  if (strcmp (dir, "/") == 0)
    return true;
  return strncmp (path, dir, len) == 0 && path[len] == '/';
}

/* manifest_foreach_file's fn: select files under any directory. */
static int
visit (void *opaque, const struct manifest_file *f)
{
  struct walk *w = opaque;
  bool hit = false;
  size_t i;

  for (i = 0; i < w->nr_dirs; i++) {
    if (is_under (f->path, w->dirs[i])) {
      w->dir_hit[i] = true;
      hit = true;
    }
  }
  if (!hit)
    return 0;
  /* Already selected by name. */
  for (i = 0; i < w->nr_files; i++)
    if (strcmp (f->path, w->files[i]) == 0)
      return 0;
  return select_file (w->m, w->s, f->path, w->verbose) == 0 ? 0 : -1;
}

int
select_chunks (struct manifest *m, char *const *paths, size_t n, bool verbose,
               struct selection *s)
{
  CLEANUP_FREE char **files = NULL, **dirs = NULL;
  CLEANUP_FREE bool *dir_hit = NULL;
  size_t nr_files = 0, nr_dirs = 0, i, j;
  struct walk w;
  int r;

  memset (s, 0, sizeof *s);
  s->nr_chunks = manifest_nr_chunks (m);
  s->chunks = calloc (s->nr_chunks / 8 + 1, 1);
  files = calloc (n, sizeof *files);
  dirs = calloc (n, sizeof *dirs);
  dir_hit = calloc (n, sizeof *dir_hit);
  if (s->chunks == NULL || files == NULL || dirs == NULL || dir_hit == NULL) {
    report_error ("calloc: %m");
    return -1;
  }
  for (i = 0; i < n; i++) {
    bool repeat = false;

    for (j = 0; j < i; j++)
      repeat |= strcmp (paths[i], paths[j]) == 0;
    if (repeat)
      continue;
    r = select_file (m, s, paths[i], verbose);
    if (r == -1)
      return -1;
    if (r == 0)
      files[nr_files++] = paths[i];
    else
      dirs[nr_dirs++] = paths[i];
  }
  if (nr_dirs == 0)
    return 0;

  w = (struct walk){ .m = m,
                     .s = s,
                     .dirs = dirs,
                     .dir_hit = dir_hit,
                     .nr_dirs = nr_dirs,
                     .files = files,
                     .nr_files = nr_files,
                     .verbose = verbose };
  if (manifest_foreach_file (m, visit, &w) == -1)
    return -1;
  for (i = 0; i < nr_dirs; i++) {
    if (!dir_hit[i]) {
      report_error ("%s: no such file or directory in the image's file map "
                    "(it lists regular files; empty directories, symbolic "
                    "links and devices have no data to warm)",
                    dirs[i]);
      return -1;
    }
  }
  return 0;
}

void
select_free (struct selection *s)
{
  free (s->chunks);
  s->chunks = NULL;
}
