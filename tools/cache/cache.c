/* accel-cache: look at and tidy a node's cache directory, while nbdkit
 * serves from it.
 *
 *   accel-cache [-d DIR] stat [--json] [--cap SIZE] [IMAGE...]
 *   accel-cache [-d DIR] ls [IMAGE...]
 *   accel-cache [-d DIR] verify [IMAGE...]
 *   accel-cache [-d DIR] evict IMAGE... | --older-than DURATION
 *   accel-cache [-d DIR] gc --to SIZE
 *
 * Everything it changes, it changes as the plugin does: under the cache
 * directory's lock, through the plugin's own eviction code, so that a
 * running nbdkit sees dropped chunks as evicted ones and fetches them
 * again (docs/accel-cache.md, docs/cache-format.md).
 *
 * Exit status: 0 done, 1 error (or verify found damaged chunks), 2 bad
 * usage.
 */

#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "report.h"
#include "tool.h"

/* The Makefile may pass the real version with -DACCEL_VERSION=... */
#ifndef ACCEL_VERSION
#define ACCEL_VERSION "0.1"
#endif

#define EXIT_USAGE 2

#define DEFAULT_CACHE_DIR "/var/cache/accel"

enum {
  HELP_OPTION = CHAR_MAX + 1,
  VERSION_OPTION,
  CAP_OPTION,
  JSON_OPTION,
  OLDER_THAN_OPTION,
  TO_OPTION,
};

static const char short_options[] = "d:v";
static const struct option long_options[] = {
  { "cache-dir", required_argument, NULL, 'd' },
  { "cap", required_argument, NULL, CAP_OPTION },
  { "help", no_argument, NULL, HELP_OPTION },
  { "json", no_argument, NULL, JSON_OPTION },
  { "older-than", required_argument, NULL, OLDER_THAN_OPTION },
  { "to", required_argument, NULL, TO_OPTION },
  { "verbose", no_argument, NULL, 'v' },
  { "version", no_argument, NULL, VERSION_OPTION },
  { NULL, 0, NULL, 0 },
};

/* --help: a short manual page (the long one: docs/accel-cache.md). */
static void
usage (void)
{
  printf (
      "Usage: " PROGNAME " [-d DIR] COMMAND [OPTIONS] [IMAGE...]\n"
      "\n"
      "Look at and tidy the cache directory of accel's nbdkit plugin.  Safe\n"
      "to run while nbdkit serves from the same directory: changes are made\n"
      "under the directory's lock, by the plugin's own eviction code, and a\n"
      "server whose chunks are dropped fetches them again when they are read.\n"
      "\n"
      "Commands:\n"
      "  stat [--json] [--cap SIZE] [IMAGE...]\n"
      "        the cache's usage against its cap, then for each image: its\n"
      "        URL, id and identity, size, how much is cached (of what can\n"
      "        be: all-zero chunks never are), the hit ratio of its reads\n"
      "        (bytes served from the cache, counted by every nbdkit that\n"
      "        served it), its last use and whether it is being served\n"
      "  ls [IMAGE...]\n"
      "        one line per image: id, size, %% cached, %% hits, last use,\n"
      "        state, URL\n"
      "  verify [IMAGE...]\n"
      "        hash every cached chunk against the image's manifest (if its\n"
      "        copy is in the cache; else against the hash recorded when it\n"
      "        was cached) and drop the damaged ones; exit 1 if any were,\n"
      "        or if an image nobody serves has data but no valid map\n"
      "  evict IMAGE...\n"
      "        drop every cached chunk of the images; the directory of an\n"
      "        image that no nbdkit serves is removed too, one being served\n"
      "        stays and its nbdkit fetches again what it reads\n"
      "  evict --older-than DURATION\n"
      "        drop every chunk not used for DURATION (30s, 15m, 12h, 7d,\n"
      "        2w; a bare number is seconds), and remove the images nobody\n"
      "        used for that long and nobody serves\n"
      "  gc --to SIZE\n"
      "        drop chunks until the cache holds at most SIZE (4096, 100K,\n"
      "        512M, 8G, 1T: binary units): those of images nobody serves\n"
      "        first, then of served ones, least recently used first;\n"
      "        images nobody serves whose map is missing or damaged go\n"
      "        before all\n"
      "\n"
      "IMAGE is an image's URL (every cached version of it), its id, or\n"
      "the beginning of its id (4 hex digits or more), as ls shows them.\n"
      "Without IMAGE, stat, ls and verify are about every image.\n"
      "\n"
      "Options:\n"
      "  -d, --cache-dir DIR  the cache directory (default " DEFAULT_CACHE_DIR
      ")\n"
      "  --cap SIZE           (stat) compare usage with SIZE; default: the\n"
      "                       cache-size= of the last nbdkit that opened the\n"
      "                       directory, which it records there\n"
      "  --json               (stat) print one JSON object: cache_dir,\n"
      "                       format, usage_bytes, cap_bytes, cap_source,\n"
      "                       images[] (id, identity, url, manifest, valid,\n"
      "                       serving, image_size, chunk_size, nr_chunks,\n"
      "                       zero_bytes, cached_chunks, cached_bytes,\n"
      "                       cached_percent, disk_bytes, hit_reads,\n"
      "                       hit_bytes, miss_reads, miss_bytes, hit_ratio,\n"
      "                       last_use); unknown values are null\n"
      "  --older-than DURATION  (evict) see above\n"
      "  --to SIZE            (gc) see above\n"
      "  -v, --verbose        say more on stderr (each chunk dropped)\n"
      "  --help               print this help\n"
      "  --version            print the version\n"
      "\n"
      "Usage counts the blocks of the cached chunks, as the cap does; the\n"
      "chunk maps and manifest copies (about 90 bytes per chunk) are not\n"
      "counted.  Hits and misses count the bytes clients read (not zero\n"
      "chunks, not readahead), in every process that served the image.\n"
      "\n"
      "Examples:\n"
      "  " PROGNAME " stat\n"
      "  " PROGNAME
      " -d /var/cache/accel stat --json | jq '.images[].hit_ratio'\n"
      "  " PROGNAME " verify s3://bucket/datasets/genome.img\n"
      "  " PROGNAME " evict --older-than 14d\n"
      "  " PROGNAME " gc --to 100G\n"
      "\n"
      "Exit status: 0 on success, 1 on error or if verify found damaged\n"
      "chunks, 2 on bad usage.\n");
}

/* The command line, once parsed. */
struct options {
  const char *dir;
  const char *command;
  char **images;
  size_t nr_images;
  bool json;
  bool have_cap, have_older, have_to;
  uint64_t cap, older_than, to;
};

/* Options that belong to other commands are mistakes, not no-ops. */
static void
check_options (const struct options *o)
{
  const char *c = o->command;
  bool is_stat = strcmp (c, "stat") == 0, is_evict = strcmp (c, "evict") == 0;

  if (!is_stat && strcmp (c, "ls") != 0 && strcmp (c, "verify") != 0 &&
      !is_evict && strcmp (c, "gc") != 0)
    report_usage_error ("unknown command '%s'", c);
  if (o->json && !is_stat)
    report_usage_error ("--json is an option of stat");
  if (o->have_cap && !is_stat)
    report_usage_error ("--cap is an option of stat");
  if (o->have_older && !is_evict)
    report_usage_error ("--older-than is an option of evict");
  if (o->have_to && strcmp (c, "gc") != 0)
    report_usage_error ("--to is an option of gc");
  if (is_evict && o->have_older == (o->nr_images > 0))
    report_usage_error ("evict needs either IMAGE... or --older-than DURATION");
  if (strcmp (c, "gc") == 0) {
    if (!o->have_to)
      report_usage_error ("gc needs --to SIZE");
    if (o->nr_images > 0)
      report_usage_error ("gc takes no IMAGE (it evicts from every image)");
  }
}

/* Run the command.  Its exit status. */
static int
run (const struct options *o)
{
  struct cache_dir *d;
  struct listing l;
  const char *c = o->command;
  bool is_stat = strcmp (c, "stat") == 0;
  const char *cap_source = NULL;
  uint64_t cap = 0;
  int status = EXIT_SUCCESS;

  d = cache_dir_open_existing (o->dir);
  if (d == NULL)
    return EXIT_FAILURE;

  if (strcmp (c, "gc") == 0)
    status = do_gc (d, o->to);
  else if (strcmp (c, "evict") == 0 && o->have_older)
    status = do_evict_older (d, o->older_than);
  else if (listing_open (d, o->images, o->nr_images,
                         is_stat || strcmp (c, "ls") == 0 ||
                             strcmp (c, "verify") == 0,
                         &l) == -1)
    status = EXIT_FAILURE;
  else {
    if (is_stat) {
      if (o->have_cap) {
        cap = o->cap;
        cap_source = "--cap";
      }
      else {
        int r = cache_dir_recorded_cap (d, &cap);

        if (r == 1)
          cap_source = "recorded";
        else if (r == -1)
          status = EXIT_FAILURE;
      }
      if (status == EXIT_SUCCESS &&
          show_stat (d, &l, cap, cap_source, o->json) == -1)
        status = EXIT_FAILURE;
    }
    else if (strcmp (c, "ls") == 0)
      show_ls (&l);
    else if (strcmp (c, "verify") == 0)
      status = do_verify (d, &l);
    else
      status = do_evict_images (d, &l);
    listing_close (&l);
  }
  cache_dir_close (d);

  if (fflush (stdout) == EOF || ferror (stdout)) {
    report_error ("standard output: write: %m");
    status = EXIT_FAILURE;
  }
  return status;
}

/* Options anywhere (bad usage exits 2 before any work), then one run. */
int
main (int argc, char *argv[])
{
  struct options o = { .dir = DEFAULT_CACHE_DIR };
  bool verbose = false;
  int c;

  report_set_tool (PROGNAME, false);
  for (;;) {
    c = getopt_long (argc, argv, short_options, long_options, NULL);
    if (c == -1)
      break;
    switch (c) {
    case 'd':
      if (*optarg == '\0')
        report_usage_error ("--cache-dir: empty path");
      o.dir = optarg;
      break;
    case 'v':
      verbose = true;
      break;
    case CAP_OPTION:
      if (parse_size (optarg, &o.cap) == -1)
        report_usage_error ("--cap: '%s' is not a size (such as 8G)", optarg);
      o.have_cap = true;
      break;
    case JSON_OPTION:
      o.json = true;
      break;
    case OLDER_THAN_OPTION:
      if (parse_duration (optarg, &o.older_than) == -1)
        report_usage_error ("--older-than: '%s' is not a duration (such as 7d)",
                            optarg);
      o.have_older = true;
      break;
    case TO_OPTION:
      if (parse_size (optarg, &o.to) == -1)
        report_usage_error ("--to: '%s' is not a size (such as 8G)", optarg);
      o.have_to = true;
      break;
    case HELP_OPTION:
      usage ();
      exit (EXIT_SUCCESS);
    case VERSION_OPTION:
      printf (PROGNAME " " ACCEL_VERSION " (cache format %d)\n",
              CACHE_FORMAT_VERSION);
      exit (EXIT_SUCCESS);
    default:
      /* getopt_long has printed the reason. */
      fprintf (stderr, "Try '" PROGNAME " --help' for more information.\n");
      exit (EXIT_USAGE);
    }
  }
  if (optind == argc)
    report_usage_error ("no COMMAND given (stat, ls, verify, evict or gc)");
  o.command = argv[optind];
  o.images = &argv[optind + 1];
  o.nr_images = argc - optind - 1;
  check_options (&o);
  report_set_tool (PROGNAME, verbose);

  return run (&o);
}
