/* accel-cache: what the files of the tool share.
 *
 * cache.c parses the command line and runs one command; select.c turns
 * the IMAGE arguments into images of the directory and parses sizes and
 * durations; show.c prints stat and ls; tidy.c runs verify, evict and
 * gc.  The cache logic itself is in common/cache-*.c (cache.h's
 * administration part), shared with the plugin: eviction here is the
 * plugin's own.
 *
 * Strings from a cache directory (URLs, identities) are printed only
 * through format_text_string or format_json_string.
 */

#ifndef ACCEL_CACHE_TOOL_H
#define ACCEL_CACHE_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"

#define PROGNAME "accel-cache"

/* The images of the directory, what their manifests say, and the IMAGE
 * arguments given.
 */
struct listing {
  struct cache_image_info *images;
  size_t n;
  bool *selected; /* one per image */
  /* Per image: the bytes of all-zero chunks, which are never cached,
   * if its manifest is in the directory (UINT64_MAX: not known), and
   * the manifest's path (NULL: none).
   */
  uint64_t *zero_bytes;
  const char **manifest;
  struct cache_manifests *manifests;
};

/* select.c */

/* List the images and select those the IMAGE arguments name (all of
 * them if there are none).  An IMAGE is an image's id, a prefix of it
 * (at least 4 hex digits, naming one image), or its URL (every version
 * cached).  0, or -1 (error reported: no such image, ambiguous).
 */
int listing_open (struct cache_dir *d, char **args, size_t nr_args,
                  bool with_manifests, struct listing *l);
void listing_close (struct listing *l);

/* "7d", "12h", "30m", "45s", "2w", or seconds.  0, or -1. */
int parse_duration (const char *arg, uint64_t *seconds);

/* show.c */

/* cap: the cap to compare usage with, 0 if none; cap_source says where
 * it comes from ("--cap", "recorded") or is NULL.
 */
int show_stat (struct cache_dir *d, const struct listing *l, uint64_t cap,
               const char *cap_source, bool json);
int show_ls (const struct listing *l);

/* "0f3c9a1b2c3d" (the first 12 hex digits of the id). */
const char *short_id (const char *id, char buf[13]);

/* The image's URL, or "(no description)", for text output. */
void print_name (const struct cache_image_info *info);

/* tidy.c: each returns the exit status. */
int do_verify (struct cache_dir *d, const struct listing *l);
int do_evict_images (struct cache_dir *d, const struct listing *l);
int do_evict_older (struct cache_dir *d, uint64_t seconds);
int do_gc (struct cache_dir *d, uint64_t target);

#endif /* ACCEL_CACHE_TOOL_H */
