/* accel-index: the file map, shared part (see filemap.h and
 * filemap-internal.h).
 *
 * The back ends only walk their file system; everything that turns what
 * they find into manifest rows is here, once: the path being visited,
 * merging of runs that are contiguous in the file and in the image
 * (ext4 splits long runs into extents of 32768 blocks, squashfs into
 * blocks of at most 1 MiB), clipping to the file's size, the check that
 * every run lies inside the image, the hard-link cache and the caps.
 * Everything here treats what the back ends pass as coming from an
 * untrusted image.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filemap-internal.h"
#include "report.h"

/* The current path with control characters (from the image) shown as
 * '?', so that no message carries terminal escapes.
 */
static void
safe_path (const struct filemap *fm, char *out)
{
  size_t i;

  for (i = 0; i < fm->path_len; ++i) {
    unsigned char c = fm->path[i];

    out[i] = c < ' ' || c == 0x7f ? '?' : c;
  }
  if (i == 0)
    out[i++] = '/';
  out[i] = '\0';
}

/* One message with the image, the file system and the path in it. */
void
filemap_error (struct filemap *fm, const char *fs, ...)
{
  char msg[1024], path[MANIFEST_MAX_PATH_LEN + 2];
  va_list args;

  va_start (args, fs);
  vsnprintf (msg, sizeof msg, fs, args);
  va_end (args);
  safe_path (fm, path);
  /* NB: a line holds 4096 bytes: keep the reason, shorten the path. */
  if (strlen (path) > 1024)
    report_error ("%s: %s: ...%s: %s", fm->image, fm->fs_type,
                  path + strlen (path) - 1000, msg);
  else
    report_error ("%s: %s: %s: %s", fm->image, fm->fs_type, path, msg);
}

/* The same for accel-index -v. */
void
filemap_debug (struct filemap *fm, const char *fs, ...)
{
  char msg[1024], path[MANIFEST_MAX_PATH_LEN + 2];
  va_list args;

  va_start (args, fs);
  vsnprintf (msg, sizeof msg, fs, args);
  va_end (args);
  safe_path (fm, path);
  report_debug ("%s: %s: %s: %s", fm->image, fm->fs_type, path, msg);
}

/* A hostile image may hold millions of entries in few bytes (squashfs
 * metadata compresses well); real ones stay far below the cap.
 */
int
filemap_count_entry (struct filemap *fm)
{
  if (++fm->nr_entries > FILEMAP_MAX_ENTRIES) {
    filemap_error (fm, "more than %" PRIu64 " directory entries",
                   FILEMAP_MAX_ENTRIES);
    return -1;
  }
  return 0;
}

/* A name with '/' or NUL would make two different files one path. */
int
filemap_enter (struct filemap *fm, const char *name, size_t len, size_t max_len,
               size_t *saved)
{
  if (len == 0 || len > max_len || memchr (name, '/', len) != NULL ||
      memchr (name, '\0', len) != NULL) {
    filemap_error (fm,
                   "a name in this directory is empty, longer than "
                   "%zu bytes or contains '/' or NUL",
                   max_len);
    return -1;
  }
  if (len > MANIFEST_MAX_PATH_LEN - 1 - fm->path_len) {
    filemap_error (fm, "a path in this directory is longer than %d bytes",
                   MANIFEST_MAX_PATH_LEN);
    return -1;
  }
  *saved = fm->path_len;
  fm->path[fm->path_len++] = '/';
  memcpy (fm->path + fm->path_len, name, len);
  fm->path_len += len;
  fm->path[fm->path_len] = '\0';
  return 0;
}

/* Back to the parent's path. */
void
filemap_leave (struct filemap *fm, size_t saved)
{
  fm->path_len = saved;
  fm->path[saved] = '\0';
}

/* Slot index of key, or of the empty slot where it would go.  The
 * table is never full (it grows at half), so this ends.
 */
static size_t
table_slot (const struct filemap_table *t, uint64_t key)
{
  size_t mask = t->nr_slots - 1;
  /* Fibonacci hashing spreads consecutive inode numbers. */
  size_t i = ((key * UINT64_C (0x9e3779b97f4a7c15)) >> 20) & mask;

  while (t->slots[i].value != NULL && t->slots[i].key != key)
    i = (i + 1) & mask;
  return i;
}

/* An empty table has no slots at all. */
void *
filemap_table_find (const struct filemap_table *t, uint64_t key)
{
  if (t->nr_slots == 0)
    return NULL;
  return t->slots[table_slot (t, key)].value;
}

/* Doubles the table whenever it would become half full. */
int
filemap_table_insert (struct filemap *fm, struct filemap_table *t, uint64_t key,
                      void *value)
{
  size_t i;

  if (2 * (t->nr_used + 1) > t->nr_slots) {
    struct filemap_table bigger;

    bigger.nr_slots = t->nr_slots ? 2 * t->nr_slots : 256;
    bigger.nr_used = t->nr_used;
    bigger.slots = calloc (bigger.nr_slots, sizeof *bigger.slots);
    if (bigger.slots == NULL) {
      filemap_error (fm, "calloc: %m");
      return -1;
    }
    for (i = 0; i < t->nr_slots; ++i)
      if (t->slots[i].value != NULL)
        bigger.slots[table_slot (&bigger, t->slots[i].key)] = t->slots[i];
    free (t->slots);
    *t = bigger;
  }
  i = table_slot (t, key);
  t->slots[i].key = key;
  t->slots[i].value = value;
  t->nr_used++;
  return 0;
}

/* Leaves an empty table, ready for reuse. */
void
filemap_table_free (struct filemap_table *t, void (*free_value) (void *))
{
  size_t i;

  if (free_value)
    for (i = 0; i < t->nr_slots; ++i)
      if (t->slots[i].value != NULL)
        free_value (t->slots[i].value);
  free (t->slots);
  t->slots = NULL;
  t->nr_slots = t->nr_used = 0;
}

/* Grow an array of n items of size bytes to hold one more. */
static int
grow (struct filemap *fm, void **array, size_t *alloc, size_t n, size_t size)
{
  size_t new_alloc;
  void *p;

  if (n < *alloc)
    return 0;
  new_alloc = *alloc ? *alloc * 2 : 16;
  p = reallocarray (*array, new_alloc, size);
  if (p == NULL) {
    filemap_error (fm, "realloc: %m");
    return -1;
  }
  *array = p;
  *alloc = new_alloc;
  return 0;
}

/* Names are copied: the back end's buffer is reused for the next entry. */
int
filemap_subdirs_add (struct filemap *fm, struct filemap_subdirs *s,
                     uint64_t key, const char *name, size_t len)
{
  struct filemap_subdir *d;

  while (s->names_alloc - s->names_len < len) {
    size_t new_alloc = s->names_alloc ? s->names_alloc * 2 : 4096;
    char *p = realloc (s->names, new_alloc);

    if (p == NULL) {
      filemap_error (fm, "realloc: %m");
      return -1;
    }
    s->names = p;
    s->names_alloc = new_alloc;
  }
  if (grow (fm, (void **) &s->items, &s->alloc, s->len, sizeof *s->items) == -1)
    return -1;
  d = &s->items[s->len++];
  d->key = key;
  d->name_offset = s->names_len;
  d->name_len = len;
  memcpy (s->names + s->names_len, name, len);
  s->names_len += len;
  return 0;
}

/* The list itself is the caller's (on its stack). */
void
filemap_subdirs_free (struct filemap_subdirs *s)
{
  free (s->items);
  free (s->names);
}

/* For filemap_table_free. */
static void
free_link (void *p)
{
  struct filemap_link *l = p;

  free (l->runs);
  free (l);
}

/* Write one extent row (and keep it for the file's other paths). */
static int
write_run (struct filemap *fm, const struct filemap_run *r)
{
  struct filemap_link *l = fm->recording;

  if (fm->stats->nr_extents >= FILEMAP_MAX_EXTENTS) {
    filemap_error (fm, "more than %" PRIu64 " extents in the image",
                   FILEMAP_MAX_EXTENTS);
    return -1;
  }
  if (manifest_writer_add_extent (fm->w, fm->file_id, r->file_offset,
                                  r->image_offset, r->length) == -1)
    return -1;
  fm->stats->nr_extents++;
  if (l) {
    if (grow (fm, (void **) &l->runs, &l->alloc, l->nr_runs, sizeof *l->runs) ==
        -1)
      return -1;
    l->runs[l->nr_runs++] = *r;
  }
  return 0;
}

/* Count a new files row against the cap and write it. */
static int
write_file (struct filemap *fm, uint64_t size, uint32_t mode)
{
  if (fm->stats->nr_files >= FILEMAP_MAX_FILES) {
    filemap_error (fm, "more than %" PRIu64 " files in the image",
                   FILEMAP_MAX_FILES);
    return -1;
  }
  if (manifest_writer_add_file (fm->w, fm->path, size, mode, &fm->file_id) ==
      -1)
    return -1;
  fm->stats->nr_files++;
  return 0;
}

/* Mapping a hard-linked file once is also what bounds the work a
 * hostile image can cause by linking one huge file many times.
 */
int
filemap_replay (struct filemap *fm, uint64_t key, bool *done)
{
  struct filemap_link *l = filemap_table_find (&fm->links, key);
  size_t i;

  *done = false;
  if (l == NULL)
    return 0;
  if (write_file (fm, l->size, l->mode) == -1)
    return -1;
  fm->recording = NULL;
  for (i = 0; i < l->nr_runs; ++i) {
    if (write_run (fm, &l->runs[i]) == -1)
      return -1;
    fm->stats->mapped_bytes += l->runs[i].length;
  }
  fm->stats->unmapped_bytes += l->unmapped_bytes;
  *done = true;
  return 0;
}

/* The row is written first: extents must follow their file. */
int
filemap_file_begin (struct filemap *fm, uint64_t size, uint32_t mode,
                    bool linked, uint64_t key)
{
  if (size > INT64_MAX) {
    filemap_error (fm, "size %" PRIu64 " is out of range", size);
    return -1;
  }
  if (write_file (fm, size, mode) == -1)
    return -1;
  fm->file_size = size;
  fm->file_end = fm->file_mapped = fm->file_unmapped = 0;
  fm->have_run = false;
  fm->recording = NULL;
  if (linked) {
    struct filemap_link *l = calloc (1, sizeof *l);

    if (l == NULL) {
      filemap_error (fm, "calloc: %m");
      return -1;
    }
    l->size = size;
    l->mode = mode;
    if (filemap_table_insert (fm, &fm->links, key, l) == -1) {
      free_link (l);
      return -1;
    }
    fm->recording = l;
  }
  return 0;
}

/* The order check is what makes a loop in the image's block map an
 * error rather than an endless list.
 */
int
filemap_file_run (struct filemap *fm, uint64_t file_offset,
                  uint64_t image_offset, uint64_t length)
{
  struct filemap_run *r = &fm->run;

  if (length == 0)
    return 0;
  if (file_offset < fm->file_end) {
    filemap_error (fm,
                   "data at file offset %" PRIu64 " is out of order "
                   "or overlaps the previous run (corrupt file system?)",
                   file_offset);
    return -1;
  }
  if (file_offset >= fm->file_size)
    return 0;
  if (length > fm->file_size - file_offset)
    length = fm->file_size - file_offset;
  if (length > fm->image_size || image_offset > fm->image_size - length) {
    filemap_error (fm,
                   "data at file offset %" PRIu64 " lies beyond the "
                   "end of the image (image offset %" PRIu64 ", length %" PRIu64
                   "; truncated image?)",
                   file_offset, image_offset, length);
    return -1;
  }
  fm->file_end = file_offset + length;
  fm->file_mapped += length;

  if (fm->have_run && r->file_offset + r->length == file_offset &&
      r->image_offset + r->length == image_offset) {
    r->length += length;
    return 0;
  }
  if (fm->have_run && write_run (fm, r) == -1)
    return -1;
  r->file_offset = file_offset;
  r->image_offset = image_offset;
  r->length = length;
  fm->have_run = true;
  return 0;
}

/* Only counted, for the summary (and the hint to rebuild the image). */
void
filemap_file_unmapped (struct filemap *fm, uint64_t bytes)
{
  fm->file_unmapped += bytes;
}

/* The pending run is written only now: it could have grown until here. */
int
filemap_file_end (struct filemap *fm)
{
  if (fm->have_run && write_run (fm, &fm->run) == -1)
    return -1;
  fm->have_run = false;
  fm->stats->mapped_bytes += fm->file_mapped;
  fm->stats->unmapped_bytes += fm->file_unmapped;
  if (fm->recording)
    fm->recording->unmapped_bytes = fm->file_unmapped;
  fm->recording = NULL;
  return 0;
}

/* Free fm and the runs it kept for hard links. */
void
filemap_free (struct filemap *fm)
{
  filemap_table_free (&fm->links, free_link);
  free (fm);
}
