/* accel: one image's cache — opening (creating) its directory, map and
 * data file, checking the map's header, and recovering after a crash.
 *
 * Every process serving the image holds a shared flock on serve.lock.  A
 * process that opens the image while nobody else serves it gets the lock
 * exclusively for a moment and uses it to clean up: bytes that a crashed
 * process wrote but never recorded are punched out, and a map of another
 * format or geometry is rebuilt.  All of this runs under the directory
 * lock, so two processes never open the same image at once.
 *
 * Servers hold a shared flock on the data file too, and the clean-up
 * needs it exclusively as well: serve.lock unlinked by hand (or by a tmp
 * cleaner) under a running server would otherwise let the next opener
 * punch the chunks that server has stored but not yet recorded, which it
 * would then record and serve as zeros.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "cache-internal.h"
#include "cleanup.h"
#include "hex.h"
#include "manifest.h"
#include "report.h"

/* Open or create a file in the image directory with mode 0600. */
static int
open_in (const char *dir, const char *name, int flags)
{
  char path[4096];
  int fd;

  if (snprintf (path, sizeof path, "%s/%s", dir, name) >= (int) sizeof path) {
    report_error ("cache: path too long: %s/%s", dir, name);
    return -1;
  }
  fd = open (path, flags | O_CLOEXEC, 0600);
  if (fd == -1)
    report_error ("cache: %s: %m", path);
  return fd;
}

/* DIR/data opened again for stores with O_DIRECT, or -1 (said once in
 * the debug log) where the file system cannot do it: stores then go
 * through the page cache and are dropped from it after cache_flush.
 */
static int
open_direct (const char *dir)
{
  char path[4096];
  int fd;

  if (snprintf (path, sizeof path, "%s/data", dir) >= (int) sizeof path)
    return -1;
  fd = open (path, O_RDWR | O_DIRECT | O_CLOEXEC);
  if (fd == -1)
    report_debug ("cache: %s: no O_DIRECT (%m): stores use the page cache",
                  path);
  return fd;
}

static bool
header_matches (const struct map_header *h, const struct cache_image *ci,
                const unsigned char id[32])
{
  return memcmp (h->magic, MAP_MAGIC, 8) == 0 &&
      h->version == CACHE_FORMAT_VERSION && h->header_size == MAP_HEADER_SIZE &&
      h->image_size == ci->image_size && h->chunk_size == ci->chunk_size &&
      h->entry_size == sizeof (struct map_entry) &&
      h->nr_chunks == ci->nr_chunks && memcmp (h->identity, id, 32) == 0;
}

/* Write a fresh, empty map (every chunk absent) and empty the data file. */
static int
init_map (struct cache_image *ci, const unsigned char id[32])
{
  struct map_header h;

  memset (&h, 0, sizeof h);
  memcpy (h.magic, MAP_MAGIC, 8);
  h.version = CACHE_FORMAT_VERSION;
  h.header_size = MAP_HEADER_SIZE;
  h.image_size = ci->image_size;
  h.chunk_size = ci->chunk_size;
  h.entry_size = sizeof (struct map_entry);
  h.nr_chunks = ci->nr_chunks;
  memcpy (h.identity, id, 32);

  /* The old tags go too (cache-tags.c): a map started anew may be of
   * another geometry, where they would not fit anyway.
   */
  {
    char tags[4096];

    if (snprintf (tags, sizeof tags, "%s/tags", ci->path) < (int) sizeof tags)
      unlink (tags);
  }
  /* NB: data first, so that no moment has a valid map over old bytes. */
  if (ftruncate (ci->data_fd, 0) == -1 || ftruncate (ci->map_fd, 0) == -1 ||
      ftruncate (ci->map_fd, ci->map_len) == -1) {
    report_error ("cache: %s: truncating: %m", ci->path);
    return -1;
  }
  if (pwrite (ci->map_fd, &h, sizeof h, 0) != (ssize_t) sizeof h ||
      fdatasync (ci->map_fd) == -1) {
    report_error ("cache: %s/map: writing header: %m", ci->path);
    return -1;
  }
  return 0;
}

/* Punch out every allocated range of the data file that no present
 * chunk covers: bytes written by a process that died before recording
 * them.  Uses SEEK_DATA so that it costs nothing on a sparse file.
 */
static int
recover_unrecorded (struct cache_image *ci)
{
  off_t pos = 0, end;
  uint64_t punched = 0;

  for (;;) {
    uint64_t first, last, i;

    pos = lseek (ci->data_fd, pos, SEEK_DATA);
    if (pos == -1)
      break; /* ENXIO: no more data */
    end = lseek (ci->data_fd, pos, SEEK_HOLE);
    if (end == -1)
      break;
    first = pos / ci->chunk_size;
    last = (end - 1) / ci->chunk_size;
    for (i = first; i <= last && i < ci->nr_chunks; i++) {
      uint32_t s = atomic_load (&ci->entries[i].state);
      if (!(s & STATE_PRESENT)) {
        uint64_t off = i * ci->chunk_size;
        uint64_t len = ci->chunk_size;
        if (off + len > ci->image_size)
          len = ci->image_size - off;
        if (cache_punch (ci->data_fd, off, len) == -1)
          return -1;
        punched++;
      }
    }
    pos = end;
  }
  if (punched > 0)
    report_debug ("cache: %s: punched %" PRIu64 " unrecorded chunks", ci->path,
                  punched);
  return 0;
}

/* Record the identity for people and tools (accel-cache). */
static void
write_info (struct cache_image *ci, const char *description)
{
  int fd = open_in (ci->path, "info", O_WRONLY | O_CREAT | O_TRUNC);
  FILE *fp;

  if (fd == -1)
    return;
  fp = fdopen (fd, "w");
  if (fp == NULL) {
    close (fd);
    return;
  }
  fprintf (fp,
           "identity: %s\ndescription: %s\nimage-size: %" PRIu64
           "\nchunk-size: %" PRIu32 "\n",
           ci->identity, description ? description : "", ci->image_size,
           ci->chunk_size);
  fclose (fp);
}

/* Create the image's directory and take its serve lock: exclusively if
 * no other process serves the image (*exclusive set), else not at all
 * for now (open_files_locked ends with a shared one).
 */
static int
open_serve_lock (struct cache_image *ci, bool *exclusive)
{
  *exclusive = false;
  if (mkdir (ci->path, 0700) == -1 && errno != EEXIST) {
    report_error ("cache: mkdir: %s: %m", ci->path);
    return -1;
  }
  ci->serve_fd = open_in (ci->path, "serve.lock", O_RDWR | O_CREAT);
  if (ci->serve_fd == -1)
    return -1;
  if (flock (ci->serve_fd, LOCK_EX | LOCK_NB) == 0)
    *exclusive = true;
  else if (errno != EWOULDBLOCK) {
    report_error ("cache: flock: %s/serve.lock: %m", ci->path);
    return -1;
  }
  return 0;
}

/* Check the map, and start it anew (with empty data) if it is not this
 * image's, which only the exclusive opener may do; then allocate all its
 * blocks.
 */
static int
check_map (struct cache_image *ci, const unsigned char id[32], bool exclusive)
{
  struct map_header h;
  struct stat st;
  ssize_t r;

  memset (&h, 0, sizeof h);
  r = pread (ci->map_fd, &h, sizeof h, 0);
  if (r == -1 || fstat (ci->map_fd, &st) == -1) {
    report_error ("cache: %s/map: %m", ci->path);
    return -1;
  }
  if (r != (ssize_t) sizeof h || !header_matches (&h, ci, id) ||
      (uint64_t) st.st_size != ci->map_len) {
    if (!exclusive) {
      report_error ("cache: %s/map: damaged or of another format, and "
                    "another process is serving this image: stop it, or "
                    "remove %s",
                    ci->path, ci->path);
      return -1;
    }
    if (r > 0)
      report_debug ("cache: %s/map: not a version %d map of this image: "
                    "starting it anew",
                    ci->path, CACHE_FORMAT_VERSION);
    if (init_map (ci, id) == -1)
      return -1;
  }

  /* NB: every page of the map gets its blocks now.  Touching a hole of
   * a shared mapping when the filesystem is full is a SIGBUS, not an
   * error (on tmpfs even reading one), and others may fill the
   * filesystem at any time.  40 bytes per chunk.
   */
  if (fallocate (ci->map_fd, 0, 0, ci->map_len) == -1 && errno != EOPNOTSUPP) {
    report_error ("cache: %s/map: allocating %zu bytes: %m", ci->path,
                  ci->map_len);
    return -1;
  }
  return 0;
}

/* Give the data file the image's size (sparse). */
static int
size_data (struct cache_image *ci)
{
  struct stat st;

  if (fstat (ci->data_fd, &st) == -1) {
    report_error ("cache: %s/data: %m", ci->path);
    return -1;
  }
  if ((uint64_t) st.st_size != ci->image_size &&
      ftruncate (ci->data_fd, ci->image_size) == -1) {
    report_error ("cache: %s/data: setting size: %m", ci->path);
    return -1;
  }
  return 0;
}

/* The part of open that runs under the directory lock. */
static int
open_files_locked (struct cache_image *ci, const char *description)
{
  unsigned char id[32];
  bool exclusive;

  SHA256 ((const unsigned char *) ci->identity, strlen (ci->identity), id);
  if (open_serve_lock (ci, &exclusive) == -1)
    return -1;
  ci->map_fd = open_in (ci->path, "map", O_RDWR | O_CREAT);
  ci->data_fd = open_in (ci->path, "data", O_RDWR | O_CREAT);
  if (ci->map_fd == -1 || ci->data_fd == -1)
    return -1;
  if (exclusive && flock (ci->data_fd, LOCK_EX | LOCK_NB) == -1) {
    if (errno != EWOULDBLOCK) {
      report_error ("cache: flock: %s/data: %m", ci->path);
      return -1;
    }
    report_warning ("cache: %s: served by another process, whose serve.lock "
                    "was removed: not recovering anything",
                    ci->path);
    exclusive = false;
  }
  if (check_map (ci, id, exclusive) == -1 || size_data (ci) == -1)
    return -1;
  ci->data_direct_fd = open_direct (ci->path);
  cache_no_readahead (ci->data_fd);
  ci->pages.fd = ci->data_fd;

  ci->map = mmap (NULL, ci->map_len, PROT_READ | PROT_WRITE, MAP_SHARED,
                  ci->map_fd, 0);
  if (ci->map == MAP_FAILED) {
    ci->map = NULL;
    report_error ("cache: %s/map: mmap: %m", ci->path);
    return -1;
  }
  ci->entries = (struct map_entry *) ((char *) ci->map + MAP_HEADER_SIZE);
  cache_tags_open (ci);

  /* The first server of the image describes it and recovers what a
   * crash left unrecorded.
   */
  if (exclusive) {
    write_info (ci, description);
    if (recover_unrecorded (ci) == -1)
      return -1;
  }
  /* NB: going from exclusive to shared is not atomic, but harmless: we
   * hold the directory lock, so no other opener can slip in between.
   */
  if (flock (ci->serve_fd, LOCK_SH) == -1) {
    report_error ("cache: flock: %s/serve.lock: %m", ci->path);
    return -1;
  }
  if (flock (ci->data_fd, LOCK_SH) == -1) {
    report_error ("cache: flock: %s/data: %m", ci->path);
    return -1;
  }
  return 0;
}

struct cache_image *
cache_image_open (struct cache_dir *d, const char *identity,
                  const char *description, uint64_t image_size,
                  uint32_t chunk_size, cache_expected_fn expected,
                  void *expected_opaque)
{
  struct cache_image *ci;
  unsigned char id[32];
  char hex[65];
  int r;

  if (image_size == 0 || !manifest_chunk_size_valid (chunk_size)) {
    report_error ("cache: invalid geometry: size %" PRIu64 ", chunk %" PRIu32,
                  image_size, chunk_size);
    return NULL;
  }

  ci = calloc (1, sizeof *ci);
  if (ci == NULL) {
    report_error ("calloc: %m");
    return NULL;
  }
  ci->dir = d;
  ci->data_fd = ci->data_direct_fd = ci->map_fd = ci->serve_fd = -1;
  ci->image_size = image_size;
  ci->chunk_size = chunk_size;
  ci->nr_chunks = (image_size + chunk_size - 1) / chunk_size;
  ci->map_len = MAP_HEADER_SIZE + ci->nr_chunks * sizeof (struct map_entry);
  ci->expected = expected;
  ci->expected_opaque = expected_opaque;
  pthread_mutex_init (&ci->pending_lock, NULL);
  pthread_mutex_init (&ci->flush_lock, NULL);
  pthread_mutex_init (&ci->verify_lock, NULL);
  pthread_cond_init (&ci->verify_done, NULL);
  cache_pages_init (&ci->pages, chunk_size);
  cache_resident_init (&ci->resident, chunk_size);

  ci->identity = strdup (identity);
  ci->local = calloc (ci->nr_chunks, sizeof *ci->local);
  ci->max_pending = 256;
  ci->pending = calloc (ci->max_pending, sizeof *ci->pending);
  if (ci->identity == NULL || ci->local == NULL || ci->pending == NULL) {
    report_error ("calloc: %m");
    goto err;
  }

  SHA256 ((const unsigned char *) identity, strlen (identity), id);
  hex_encode (id, 32, hex);
  if (asprintf (&ci->path, "%s/images/%s", d->path, hex) == -1) {
    ci->path = NULL;
    report_error ("asprintf: %m");
    goto err;
  }

  if (cache_dir_lock (d) == -1)
    goto err;
  r = open_files_locked (ci, description);
  cache_dir_unlock (d);
  if (r == -1)
    goto err;
  return ci;

err:
  cache_image_close (ci);
  return NULL;
}

void
cache_image_close (struct cache_image *ci)
{
  if (ci == NULL)
    return;
  if (ci->map)
    cache_flush (ci);
  cache_pages_destroy (&ci->pages);
  cache_resident_destroy (&ci->resident);
  cache_tags_close (ci);
  if (ci->map)
    munmap (ci->map, ci->map_len);
  if (ci->data_fd >= 0)
    close (ci->data_fd);
  if (ci->data_direct_fd >= 0)
    close (ci->data_direct_fd);
  if (ci->map_fd >= 0)
    close (ci->map_fd);
  if (ci->serve_fd >= 0)
    close (ci->serve_fd); /* releases the shared flock */
  pthread_mutex_destroy (&ci->pending_lock);
  pthread_mutex_destroy (&ci->flush_lock);
  pthread_mutex_destroy (&ci->verify_lock);
  pthread_cond_destroy (&ci->verify_done);
  free (ci->pending);
  free ((void *) ci->local);
  free (ci->identity);
  free (ci->path);
  free (ci);
}

const char *
cache_image_dir (const struct cache_image *ci)
{
  return ci->path;
}

void
cache_image_stats (struct cache_image *ci, struct cache_stats *out)
{
  out->hits = ci->stats.hits;
  out->misses = ci->stats.misses;
  out->stored = ci->stats.stored;
  out->store_skipped = ci->stats.store_skipped;
  out->verified = ci->stats.verified;
  out->verify_failed = ci->stats.verify_failed;
  out->verified_tag = ci->stats.verified_tag;
  out->loaded = ci->stats.loaded;
  out->part_reads = ci->stats.part_reads;
  out->evicted = ci->stats.evicted;
}

uint64_t
cache_image_cached_bytes (struct cache_image *ci)
{
  uint64_t i, bytes = 0, last = ci->nr_chunks - 1;

  for (i = 0; i < ci->nr_chunks; i++)
    if (atomic_load_explicit (&ci->entries[i].state, memory_order_relaxed) &
        STATE_PRESENT)
      bytes +=
          i < last ? ci->chunk_size : ci->image_size - last * ci->chunk_size;
  return bytes;
}
