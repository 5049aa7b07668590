/* accel-cache: which images a command is about, and the numbers users
 * type (sizes, durations).
 *
 * Users know an image by its URL; the cache knows it by its identity
 * (the manifest's SHA-256, or object + ETag + size), so one URL may
 * have several versions cached, and an IMAGE that is a URL names all of
 * them.  Ids (as ls shows them) name exactly one.
 */

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"
#include "parse.h"
#include "report.h"
#include "tool.h"

/* Shortest id prefix accepted. */
#define MIN_PREFIX 4

/* Could be the beginning of an id. */
static bool
is_hex_prefix (const char *s)
{
  size_t i;

  for (i = 0; s[i]; i++)
    if (!isxdigit ((unsigned char) s[i]))
      return false;
  return i >= MIN_PREFIX && i <= 64;
}

/* Select the images one argument names.  0, or -1 (reported). */
static int
select_arg (struct listing *l, const char *arg)
{
  size_t i, found = 0, match = 0;

  /* A URL: every version of it. */
  for (i = 0; i < l->n; i++) {
    if (l->images[i].description &&
        strcmp (l->images[i].description, arg) == 0) {
      l->selected[i] = true;
      found++;
    }
  }
  if (found > 0)
    return 0;

  if (is_hex_prefix (arg)) {
    for (i = 0; i < l->n; i++) {
      if (strncasecmp (l->images[i].id, arg, strlen (arg)) == 0) {
        match = i;
        found++;
      }
    }
    if (found == 1) {
      l->selected[match] = true;
      return 0;
    }
    if (found > 1) {
      report_error ("'%s' is the beginning of %zu image ids: give more of "
                    "it (see " PROGNAME " ls)",
                    arg, found);
      return -1;
    }
  }
  report_error ("no image '%s' in the cache (give an id or a URL, as "
                "shown by " PROGNAME " ls)",
                arg);
  return -1;
}

/* What the image's manifest, if the directory holds it, says about the
 * zero chunks: they are never cached, so "fully cached" is without
 * them.
 */
static void
read_manifest (struct listing *l, size_t i)
{
  const struct cache_image_info *info = &l->images[i];
  const char *path = cache_manifests_find (l->manifests, info->identity);
  struct manifest *m;
  uint64_t zero, last;

  l->zero_bytes[i] = UINT64_MAX;
  l->manifest[i] = path;
  if (path == NULL || !info->valid)
    return;
  m = manifest_open (path);
  if (m == NULL)
    return; /* reported; the numbers without it still stand */
  if (manifest_image_size (m) == info->image_size &&
      manifest_chunk_size (m) == info->chunk_size) {
    zero = manifest_nr_zero_chunks (m) * info->chunk_size;
    last = info->nr_chunks - 1;
    /* The last chunk may be short. */
    if (manifest_chunk_is_zero (m, last))
      zero -= (uint64_t) info->chunk_size -
          (info->image_size - last * info->chunk_size);
    l->zero_bytes[i] = zero;
  }
  manifest_close (m);
}

int
listing_open (struct cache_dir *d, char **args, size_t nr_args,
              bool with_manifests, struct listing *l)
{
  size_t i;

  memset (l, 0, sizeof *l);
  if (cache_dir_list (d, &l->images, &l->n) == -1)
    return -1;
  l->selected = calloc (l->n + 1, sizeof *l->selected);
  l->zero_bytes = calloc (l->n + 1, sizeof *l->zero_bytes);
  l->manifest = calloc (l->n + 1, sizeof *l->manifest);
  if (l->selected == NULL || l->zero_bytes == NULL || l->manifest == NULL) {
    report_error ("calloc: %m");
    goto err;
  }
  for (i = 0; i < nr_args; i++)
    if (select_arg (l, args[i]) == -1)
      goto err;
  for (i = 0; i < l->n; i++) {
    if (nr_args == 0)
      l->selected[i] = true;
    l->zero_bytes[i] = UINT64_MAX;
  }

  if (with_manifests) {
    l->manifests = cache_manifests_open (d);
    if (l->manifests == NULL)
      goto err;
    for (i = 0; i < l->n; i++)
      if (l->selected[i])
        read_manifest (l, i);
  }
  return 0;

err:
  listing_close (l);
  return -1;
}

void
listing_close (struct listing *l)
{
  cache_image_info_free (l->images, l->n);
  free (l->selected);
  free (l->zero_bytes);
  free (l->manifest);
  cache_manifests_close (l->manifests);
  memset (l, 0, sizeof *l);
}

int
parse_duration (const char *arg, uint64_t *seconds)
{
  static const uint64_t m[] = { 1, 60, 3600, 86400, 7 * 86400 };

  return parse_scaled (arg, "smhdw", m, seconds);
}
