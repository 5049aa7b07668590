/* accel-cache: stat and ls — what a node's cache holds, at a glance.
 *
 * stat prints the directory's usage against its cap, then a block per
 * image: what it is, how much of it is cached, how well the cache
 * serves its readers (hits and misses as counted by every process that
 * served it, persisted in its map), when it was last used and whether a
 * process serves it now.  --json prints the same numbers, unrounded, as
 * one object.  ls prints one line per image.
 *
 * "Cached" is measured against what can be cached: chunks that the
 * manifest says are all zeros are served without being fetched or
 * stored, so an image is fully cached without them.
 */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "format.h"
#include "tool.h"

const char *
short_id (const char *id, char buf[13])
{
  snprintf (buf, 13, "%.12s", id);
  return buf;
}

void
print_name (const struct cache_image_info *info)
{
  if (info->description && info->description[0])
    format_text_string (stdout, info->description);
  else
    fputs ("(no description)", stdout);
}

/* Bytes of the image that can be cached (without its zero chunks). */
static uint64_t
cacheable (const struct listing *l, size_t i)
{
  const struct cache_image_info *info = &l->images[i];

  if (l->zero_bytes[i] != UINT64_MAX && l->zero_bytes[i] <= info->image_size)
    return info->image_size - l->zero_bytes[i];
  return info->image_size;
}

/* Share of part in whole, in percent; 100 when whole is 0 (nothing to
 * cache is all cached).  NB: in floating point, since read counters
 * may grow past what part * 1000 can hold.
 */
static double
percent (uint64_t part, uint64_t whole)
{
  return whole ? 100.0 * (double) part / (double) whole : 100.0;
}

/* "2026-11-21 16:30:06 UTC", local time. */
static const char *
format_time (uint32_t t, char *buf, size_t len)
{
  time_t tt = t;
  struct tm tm;

  if (t == 0 || localtime_r (&tt, &tm) == NULL ||
      strftime (buf, len, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
    snprintf (buf, len, "never");
  return buf;
}

/* "12 s ago", "3 h ago", "5 d ago". */
static const char *
format_ago (uint32_t t, char *buf, size_t len)
{
  time_t now = now_wall_seconds ();
  uint64_t s = now > (time_t) t ? (uint64_t) (now - t) : 0;

  if (s < 120)
    snprintf (buf, len, "%" PRIu64 " s ago", s);
  else if (s < 7200)
    snprintf (buf, len, "%" PRIu64 " min ago", s / 60);
  else if (s < 172800)
    snprintf (buf, len, "%" PRIu64 " h ago", s / 3600);
  else
    snprintf (buf, len, "%" PRIu64 " d ago", s / 86400);
  return buf;
}

/* One image's block of stat. */
static void
stat_text_image (const struct listing *l, size_t i)
{
  const struct cache_image_info *info = &l->images[i];
  char h1[32], h2[32], h3[32], t[64], ago[32];
  uint64_t reads = info->hit_bytes + info->miss_bytes;

  print_name (info);
  printf ("\n  id        %s\n", info->id);
  if (info->identity) {
    fputs ("  identity  ", stdout);
    format_text_string (stdout, info->identity);
    putchar ('\n');
  }
  if (!info->valid) {
    printf ("  map       missing or not a format %d map: nothing cached "
            "(%s on disk)\n",
            CACHE_FORMAT_VERSION,
            format_size (info->disk_bytes, h1, sizeof h1));
    printf ("  state     %s\n", info->serving ? "being served" : "idle");
    return;
  }
  printf ("  size      %s, %" PRIu64 " chunks of %s",
          format_size (info->image_size, h1, sizeof h1), info->nr_chunks,
          format_size (info->chunk_size, h2, sizeof h2));
  if (l->zero_bytes[i] != UINT64_MAX)
    printf (" (%s all zeros, never cached)",
            format_size (l->zero_bytes[i], h3, sizeof h3));
  putchar ('\n');
  printf ("  cached    %s of %s (%.1f%%), %" PRIu64 " chunk%s; %s on disk\n",
          format_size (info->cached_bytes, h1, sizeof h1),
          format_size (cacheable (l, i), h2, sizeof h2),
          percent (info->cached_bytes, cacheable (l, i)), info->cached_chunks,
          info->cached_chunks == 1 ? "" : "s",
          format_size (info->disk_bytes, h3, sizeof h3));
  if (reads == 0)
    printf ("  reads     none counted\n");
  else
    printf ("  hits      %.1f%% of %s read: %s from the cache, %s fetched "
            "(%" PRIu64 " reads, %" PRIu64 " missed)\n",
            percent (info->hit_bytes, reads),
            format_size (reads, h1, sizeof h1),
            format_size (info->hit_bytes, h2, sizeof h2),
            format_size (info->miss_bytes, h3, sizeof h3),
            info->hit_reads + info->miss_reads, info->miss_reads);
  if (info->last_use)
    printf ("  last use  %s (%s)\n", format_time (info->last_use, t, sizeof t),
            format_ago (info->last_use, ago, sizeof ago));
  else
    printf ("  last use  never\n");
  printf ("  state     %s\n", info->serving ? "being served" : "idle");
}

/* The text of stat: the directory, then a block per image. */
static int
stat_text (const struct listing *l, const char *path, uint64_t usage,
           uint64_t cap, const char *cap_source)
{
  char h1[32], h2[32];
  size_t i, nr = 0, serving = 0;

  for (i = 0; i < l->n; i++) {
    nr += l->selected[i];
    serving += l->selected[i] && l->images[i].serving;
  }
  fputs ("cache     ", stdout);
  format_text_string (stdout, path);
  printf (" (format %d)\n", CACHE_FORMAT_VERSION);
  if (cap)
    printf ("usage     %s of %s (%.1f%%); the cap is %s\n",
            format_size (usage, h1, sizeof h1),
            format_size (cap, h2, sizeof h2), percent (usage, cap),
            strcmp (cap_source, "--cap") == 0
                ? "--cap"
                : "the cache-size= of the last nbdkit to open the cache");
  else
    printf ("usage     %s; no cap%s\n", format_size (usage, h1, sizeof h1),
            cap_source == NULL ? " recorded (give --cap SIZE to compare)"
                : strcmp (cap_source, "--cap") == 0
                ? " (--cap 0)"
                : " (the last nbdkit to open the cache had no cache-size=)");
  printf ("images    %zu, %zu being served\n", nr, serving);
  for (i = 0; i < l->n; i++) {
    if (!l->selected[i])
      continue;
    putchar ('\n');
    stat_text_image (l, i);
  }
  return 0;
}

/* A JSON member "key": string or null. */
static void
json_string_or_null (const char *key, const char *s)
{
  printf ("\"%s\": ", key);
  if (s)
    format_json_string (stdout, s);
  else
    fputs ("null", stdout);
}

/* One image's object in stat --json. */
static void
stat_json_image (const struct listing *l, size_t i)
{
  const struct cache_image_info *info = &l->images[i];
  uint64_t reads = info->hit_bytes + info->miss_bytes;

  printf ("    { \"id\": \"%s\", ", info->id);
  json_string_or_null ("identity", info->identity);
  fputs (", ", stdout);
  json_string_or_null ("url", info->description);
  fputs (",\n      ", stdout);
  json_string_or_null ("manifest", l->manifest[i]);
  printf (", \"valid\": %s, \"serving\": %s,\n", info->valid ? "true" : "false",
          info->serving ? "true" : "false");
  printf ("      \"image_size\": %" PRIu64 ", \"chunk_size\": %" PRIu32
          ", \"nr_chunks\": %" PRIu64 ", \"zero_bytes\": ",
          info->image_size, info->chunk_size, info->nr_chunks);
  if (l->zero_bytes[i] == UINT64_MAX)
    fputs ("null", stdout);
  else
    printf ("%" PRIu64, l->zero_bytes[i]);
  printf (",\n      \"cached_chunks\": %" PRIu64 ", \"cached_bytes\": %" PRIu64
          ", \"cached_percent\": %.2f, \"disk_bytes\": %" PRIu64 ",\n",
          info->cached_chunks, info->cached_bytes,
          info->valid ? percent (info->cached_bytes, cacheable (l, i)) : 0.0,
          info->disk_bytes);
  printf ("      \"hit_reads\": %" PRIu64 ", \"hit_bytes\": %" PRIu64
          ", \"miss_reads\": %" PRIu64 ", \"miss_bytes\": %" PRIu64
          ", \"hit_ratio\": ",
          info->hit_reads, info->hit_bytes, info->miss_reads, info->miss_bytes);
  if (reads)
    printf ("%.4f", (double) info->hit_bytes / (double) reads);
  else
    fputs ("null", stdout);
  fputs (", \"last_use\": ", stdout);
  if (info->last_use)
    printf ("%" PRIu32, info->last_use);
  else
    fputs ("null", stdout);
  fputs (" }", stdout);
}

/* stat --json: one object (see docs/accel-cache.md). */
static int
stat_json (const struct listing *l, const char *path, uint64_t usage,
           uint64_t cap, const char *cap_source)
{
  size_t i, n = 0;

  fputs ("{\n  \"cache_dir\": ", stdout);
  format_json_string (stdout, path);
  printf (", \"format\": %d,\n  \"usage_bytes\": %" PRIu64 ", \"cap_bytes\": ",
          CACHE_FORMAT_VERSION, usage);
  if (cap)
    printf ("%" PRIu64, cap);
  else
    fputs ("null", stdout);
  fputs (", ", stdout);
  json_string_or_null ("cap_source", cap_source);
  fputs (",\n  \"images\": [", stdout);
  for (i = 0; i < l->n; i++) {
    if (!l->selected[i])
      continue;
    fputs (n++ ? ",\n" : "\n", stdout);
    stat_json_image (l, i);
  }
  fputs (n ? "\n  ]\n}\n" : "]\n}\n", stdout);
  return 0;
}

int
show_stat (struct cache_dir *d, const struct listing *l, uint64_t cap,
           const char *cap_source, bool json)
{
  uint64_t usage;

  if (cache_dir_usage (d, &usage) == -1)
    return -1;
  if (json)
    return stat_json (l, cache_dir_path (d), usage, cap, cap_source);
  return stat_text (l, cache_dir_path (d), usage, cap, cap_source);
}

int
show_ls (const struct listing *l)
{
  char id[13], h1[32], t[64], pct[16], hits[16];
  size_t i;

  printf ("%-12s  %10s  %7s  %6s  %-23s  %-7s  %s\n", "ID", "SIZE", "CACHED",
          "HITS", "LAST USE", "STATE", "IMAGE");
  for (i = 0; i < l->n; i++) {
    const struct cache_image_info *info = &l->images[i];
    uint64_t reads = info->hit_bytes + info->miss_bytes;

    if (!l->selected[i])
      continue;
    if (info->valid)
      snprintf (pct, sizeof pct, "%.1f%%",
                percent (info->cached_bytes, cacheable (l, i)));
    else
      snprintf (pct, sizeof pct, "-");
    if (reads)
      snprintf (hits, sizeof hits, "%.1f%%", percent (info->hit_bytes, reads));
    else
      snprintf (hits, sizeof hits, "-");
    printf ("%-12s  %10s  %7s  %6s  %-23s  %-7s  ", short_id (info->id, id),
            info->valid ? format_size (info->image_size, h1, sizeof h1) : "-",
            pct, hits, format_time (info->last_use, t, sizeof t),
            info->serving ? "serving" : "idle");
    print_name (info);
    putchar ('\n');
  }
  return 0;
}
