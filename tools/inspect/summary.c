/* accel-inspect: the image's numbers and its file list.
 *
 * What an operator wants to know about a published image at a glance:
 * how big it is, how it is cut into chunks and how many of those are
 * zero (never fetched), the hash that identifies it, and what files it
 * holds.  Two walks over the file map: one for the totals printed above
 * the list, one for the list, so nothing grows with the number of
 * files.  --json prints the same as one JSON object.
 */

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "inspect.h"
#include "manifest.h"

/* The first walk's totals. */
struct totals {
  uint64_t nr_files, bytes;
};

/* The second walk's state. */
struct listing {
  FILE *fp;
  bool json;
  uint64_t n; /* files printed so far */
};

/* The first walk: count and add up. */
static int
add_file (void *opaque, const struct manifest_file *f)
{
  struct totals *t = opaque;

  t->nr_files++;
  t->bytes += f->size;
  return 0;
}

/* One line "mode size path", or one element of the JSON array. */
static int
list_file (void *opaque, const struct manifest_file *f)
{
  struct listing *l = opaque;
  char mode[16];

  format_mode (f->mode, mode, sizeof mode);
  if (l->json) {
    fprintf (l->fp, "%s\n    { \"path\": ", l->n ? "," : "");
    format_json_string (l->fp, f->path);
    fprintf (l->fp,
             ", \"size\": %" PRIu64 ", \"mode\": %" PRIu32
             ", \"mode_string\": \"%s\" }",
             f->size, f->mode, mode);
  }
  else {
    fprintf (l->fp, "%s %12" PRIu64 "  ", mode, f->size);
    format_text_string (l->fp, f->path);
    putc ('\n', l->fp);
  }
  l->n++;
  return 0;
}

/* Header first (totals need the first walk), then the list. */
int
summary_print (struct manifest *m, const char *name, bool json)
{
  struct totals t = { 0 };
  struct listing l = { .fp = stdout, .json = json };
  uint64_t size = manifest_image_size (m), nr = manifest_nr_chunks (m);
  uint64_t zero = manifest_nr_zero_chunks (m);
  uint32_t chunk_size = manifest_chunk_size (m);
  uint64_t *hot = NULL;
  size_t nr_hot = 0;
  char sha[65], pct[32], h1[32], h2[32], h3[32];

  if (manifest_hot_chunks (m, &hot, &nr_hot) == -1)
    return -1;
  free (hot);
  if (manifest_foreach_file (m, add_file, &t) == -1)
    return -1;
  hex_encode (manifest_image_sha256 (m), 32, sha);
  format_percent (zero, nr, pct, sizeof pct);

  if (json) {
    printf ("{\n  \"manifest\": ");
    format_json_string (stdout, name);
    printf (",\n  \"image_size\": %" PRIu64 ",\n"
            "  \"fs_type\": \"%s\",\n"
            "  \"chunk_size\": %" PRIu32 ",\n"
            "  \"nr_chunks\": %" PRIu64 ",\n"
            "  \"nr_zero_chunks\": %" PRIu64 ",\n"
            "  \"zero_chunks_percent\": %s,\n"
            "  \"nr_hot_chunks\": %zu,\n"
            "  \"image_sha256\": \"%s\",\n"
            "  \"nr_files\": %" PRIu64 ",\n"
            "  \"file_bytes\": %" PRIu64 ",\n"
            "  \"files\": [",
            size, manifest_fs_type (m), chunk_size, nr, zero, pct, nr_hot, sha,
            t.nr_files, t.bytes);
  }
  else {
    printf ("manifest:      ");
    format_text_string (stdout, name);
    printf ("\n"
            "image size:    %" PRIu64 " bytes (%s)\n"
            "file system:   %s\n"
            "chunk size:    %" PRIu32 " bytes (%s)\n"
            "chunks:        %" PRIu64 "\n"
            "zero chunks:   %" PRIu64 " (%s%%)\n"
            "hot chunks:    %zu\n"
            "image sha256:  %s\n"
            "files:         %" PRIu64 ", %" PRIu64 " bytes (%s)\n",
            size, format_size (size, h1, sizeof h1), manifest_fs_type (m),
            chunk_size, format_size (chunk_size, h2, sizeof h2), nr, zero, pct,
            nr_hot, sha, t.nr_files, t.bytes,
            format_size (t.bytes, h3, sizeof h3));
    if (t.nr_files == 0)
      printf ("\n(no file map: %s)\n",
              strcmp (manifest_fs_type (m), "raw") == 0
                  ? "a raw image has none"
                  : "the manifest lists no files");
    else
      printf ("\n%-10s %12s  %s\n", "mode", "size", "path");
  }

  if (manifest_foreach_file (m, list_file, &l) == -1)
    return -1;
  if (json)
    printf ("%s]\n}\n", l.n ? "\n  " : "");
  return 0;
}
