/* accel-inspect --diff OLD NEW: what a node that holds OLD fetches when
 * it moves to NEW, and which files changed.
 *
 * The cost is manifest_diff's (common/manifest/manifest-diff.c, which
 * spells out the rule: the cache's own dedup by chunk hash), so that
 * the figure printed here is the one the plugin's "fetched bytes"
 * counter shows after serving NEW from a cache that holds OLD.  The
 * files are manifest_diff_files's (manifest-diff-files.c).  Text for people, or --json: one object
 * with the same numbers.
 */

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "inspect.h"
#include "manifest.h"
#include "report.h"

/* The list's state. */
struct listing {
  bool json;
  uint64_t n; /* entries printed so far */
};

/* One line (or JSON element) of the file list. */
static void
list_file (void *opaque, const struct manifest_file_change *e)
{
  struct listing *l = opaque;

  if (l->json) {
    printf ("%s\n    { \"change\": \"%s\", \"path\": ", l->n ? "," : "",
            e->change);
    format_json_string (stdout, e->path);
    if (e->old_path) {
      printf (", \"old_path\": ");
      format_json_string (stdout, e->old_path);
    }
    printf (", \"size\": %" PRIu64 ", \"fetch_bytes\": %" PRIu64 " }", e->size,
            e->fetch);
  }
  else {
    printf ("%-9s %12" PRIu64 " %12" PRIu64 "  ", e->change, e->size, e->fetch);
    format_text_string (stdout, e->path);
    if (e->old_path) {
      printf (" (was ");
      format_text_string (stdout, e->old_path);
      putchar (')');
    }
    putchar ('\n');
  }
  l->n++;
}

/* The totals, above the list. */
static void
print_totals (struct manifest *old, struct manifest *new, const char *old_name,
              const char *new_name, const struct manifest_diff *d, bool json)
{
  char pct[32], h1[32], h2[32], h3[32];

  format_percent (d->fetch_bytes, d->data_bytes, pct, sizeof pct);
  if (json) {
    printf ("{\n  \"old\": ");
    format_json_string (stdout, old_name);
    printf (",\n  \"new\": ");
    format_json_string (stdout, new_name);
    printf (",\n  \"image_size\": %" PRIu64 ",\n"
            "  \"chunk_size\": %" PRIu32 ",\n"
            "  \"old_chunk_size\": %" PRIu32 ",\n"
            "  \"chunk_size_mismatch\": %s,\n"
            "  \"nr_chunks\": %" PRIu64 ",\n"
            "  \"nr_zero_chunks\": %" PRIu64 ",\n"
            "  \"data_bytes\": %" PRIu64 ",\n"
            "  \"fetch_chunks\": %" PRIu64 ",\n"
            "  \"fetch_bytes\": %" PRIu64 ",\n"
            "  \"fetch_percent\": %s,\n"
            "  \"distinct_fetch_chunks\": %" PRIu64 ",\n"
            "  \"distinct_fetch_bytes\": %" PRIu64 ",\n"
            "  \"files\": [",
            manifest_image_size (new), manifest_chunk_size (new),
            manifest_chunk_size (old),
            d->chunk_size_mismatch ? "true" : "false", d->nr_chunks,
            d->nr_zero_chunks, d->data_bytes, d->fetch_chunks, d->fetch_bytes,
            pct, d->distinct_chunks, d->distinct_bytes);
    return;
  }
  printf ("old:         ");
  format_text_string (stdout, old_name);
  printf ("\nnew:         ");
  format_text_string (stdout, new_name);
  printf ("\nnew image:   %" PRIu64 " bytes, %" PRIu64 " chunks of %s, %" PRIu64
          " all zeros (never fetched)\n",
          manifest_image_size (new), d->nr_chunks,
          format_size (manifest_chunk_size (new), h1, sizeof h1),
          d->nr_zero_chunks);
  printf ("to fetch:    %" PRIu64 " chunks, %" PRIu64 " bytes (%s): %s%% of "
          "the %" PRIu64 " bytes (%s) of the other chunks\n",
          d->fetch_chunks, d->fetch_bytes,
          format_size (d->fetch_bytes, h2, sizeof h2), pct, d->data_bytes,
          format_size (d->data_bytes, h3, sizeof h3));
  if (d->distinct_chunks != d->fetch_chunks)
    printf ("             (%" PRIu64 " chunks, %" PRIu64 " bytes if each "
            "repeated chunk is fetched once)\n",
            d->distinct_chunks, d->distinct_bytes);
  if (d->chunk_size_mismatch)
    printf ("warning:     the chunk sizes differ (old %s, new %s): nothing of "
            "the old version is reused\n",
            format_size (manifest_chunk_size (old), h1, sizeof h1),
            format_size (manifest_chunk_size (new), h2, sizeof h2));
}

int
diff_print (struct manifest *old, struct manifest *new, const char *old_name,
            const char *new_name, bool json)
{
  struct listing l = { .json = json };
  struct manifest_file_counts c;
  struct manifest_diff d;
  int r;

  if (manifest_diff (old, new, &d) == -1)
    return -1;
  /* NB: the cache dedups only between images of one chunk size, by the
   * hash of a whole chunk: said on stderr too, since it is what the
   * numbers mean.
   */
  if (d.chunk_size_mismatch)
    report_warning ("%s has %" PRIu32 "-byte chunks, %s %" PRIu32 "-byte "
                    "chunks: the cache dedups by chunk hash, so a node "
                    "holding the old version fetches every non-zero chunk "
                    "of the new one",
                    old_name, manifest_chunk_size (old), new_name,
                    manifest_chunk_size (new));

  print_totals (old, new, old_name, new_name, &d, json);
  if (!json)
    printf ("\n%-9s %12s %12s  %s\n", "change", "size", "to fetch", "path");
  r = manifest_diff_files (old, new, &d, list_file, &l, &c);
  manifest_diff_free (&d);
  if (r == -1)
    return -1;

  if (json)
    printf ("%s],\n  \"nr_added\": %" PRIu64 ",\n  \"nr_removed\": %" PRIu64
            ",\n  \"nr_renamed\": %" PRIu64 ",\n  \"nr_modified\": %" PRIu64
            ",\n  \"nr_fetched\": %" PRIu64 ",\n  \"nr_unchanged\": %" PRIu64
            "\n}\n",
            l.n ? "\n  " : "", c.added, c.removed, c.renamed, c.modified,
            c.fetched, c.unchanged);
  else
    printf ("\nfiles:       %" PRIu64 " added, %" PRIu64 " removed, %" PRIu64
            " renamed, %" PRIu64 " modified, %" PRIu64 " fetched, %" PRIu64
            " unchanged\n",
            c.added, c.removed, c.renamed, c.modified, c.fetched, c.unchanged);
  return 0;
}
