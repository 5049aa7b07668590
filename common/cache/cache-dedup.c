/* accel: dedup by chunk hash (see cache-dedup.h for what and why).
 *
 * The index maps the first 8 bytes of a chunk's SHA-256 to one place
 * that held it when the maps were scanned: an image (its directory's
 * name) and a chunk number.  Open addressing with linear probing, at most
 * half full, one place per hash: any copy will do, and a stale one only
 * costs a rebuild.  16 bytes a slot, so 32 to 64 bytes per distinct
 * cached chunk; MAX_SLOTS bounds it (2 million distinct chunks, 2 TiB of
 * 1 MiB chunks) and chunks beyond that are simply not indexed.
 *
 * The scan reads the maps with pread, never mmap: a map may be rebuilt
 * (truncated) by its opener at any time, which would be a SIGBUS through
 * a mapping.  What it reads may be stale or torn; that is fine, because
 * every candidate is checked again under the directory lock, and its
 * bytes against the trusted hash, before it is used.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "cache-dedup.h"
#include "cache-internal.h"
#include "cleanup.h"
#include "clock.h"
#include "file-io.h"
#include "report.h"

/* Bounds of one index (see above), and of the images scanned. */
#define MIN_SLOTS 1024
#define MAX_SLOTS (UINT64_C (1) << 22)

/* Map entries read by one pread while scanning. */
#define SCAN_BATCH 4096

/* A rebuild waits at least REBUILD_MIN_US after the last one, and at
 * least REBUILD_FACTOR times as long as that one took, so that scanning
 * a big cache never takes more than 1/REBUILD_FACTOR of a thread.
 */
#define REBUILD_MIN_US 1000000
#define REBUILD_FACTOR 20

/* Length of an image directory's name: a SHA-256 in hex. */
#define ID_LEN 64

struct slot {
  uint64_t key; /* first 8 bytes of the hash; 0 = empty slot */
  uint32_t image; /* index into images[] */
  uint32_t idx; /* chunk number */
};

struct dedup_index {
  struct slot *slots;
  size_t nr_slots; /* a power of two */
  size_t nr_entries;
  char (*images)[ID_LEN + 1]; /* directory names under DIR/images */
  size_t nr_images, max_images;
};

struct cache_dedup {
  struct cache_image *ci;
  char *images_path; /* DIR/images */

  /* index_lock protects the index pointer: lookups hold it shared while
   * they probe; a rebuild holds it exclusively only to swap in the new
   * index (built without it).
   */
  pthread_rwlock_t index_lock;
  struct dedup_index *index;

  /* rebuild_lock makes rebuilds one at a time (others do not wait for
   * it) and protects next_rebuild (CLOCK_MONOTONIC microseconds).
   */
  pthread_mutex_t rebuild_lock;
  uint64_t next_rebuild;

  struct {
    _Atomic uint64_t chunks, bytes, verify_failed, scans, entries, images;
    _Atomic uint64_t scan_us;
  } stats;
};

/* A candidate being copied: where it is and what it must be. */
struct donor {
  int map_fd, data_fd;
  uint64_t idx;
  uint32_t len, chunk_size;
  uint32_t state; /* its map state when its bytes were read */
  const unsigned char *sha256; /* trusted hash */
  const void *buf; /* its verified bytes */
};

/* The index key of a hash (0 marks an empty slot, so it is avoided). */
static uint64_t
hash_key (const unsigned char *sha256)
{
  uint64_t k;

  memcpy (&k, sha256, sizeof k);
  return k ? k : 1;
}

static void
index_free (struct dedup_index *x)
{
  if (x == NULL)
    return;
  free (x->slots);
  free (x->images);
  free (x);
}

/* Put key at its place in slots (of nr_slots) unless it is there. */
static bool
slots_put (struct slot *slots, size_t nr_slots, const struct slot *s)
{
  size_t mask = nr_slots - 1, i;

  for (i = s->key & mask; slots[i].key != 0; i = (i + 1) & mask)
    if (slots[i].key == s->key)
      return false;
  slots[i] = *s;
  return true;
}

/* Add a place for key, keeping the table at most half full.  0, or -1
 * on error (reported).  A full index (MAX_SLOTS) ignores the rest.
 */
static int
index_add (struct dedup_index *x, uint64_t key, uint32_t image, uint32_t idx)
{
  struct slot s = { .key = key, .image = image, .idx = idx };

  if ((x->nr_entries + 1) * 2 > x->nr_slots) {
    size_t n = x->nr_slots * 2, i;
    struct slot *bigger;

    if (n > MAX_SLOTS)
      return 0;
    bigger = calloc (n, sizeof *bigger);
    if (bigger == NULL) {
      report_error ("calloc: %m");
      return -1;
    }
    for (i = 0; i < x->nr_slots; i++)
      if (x->slots[i].key != 0)
        slots_put (bigger, n, &x->slots[i]);
    free (x->slots);
    x->slots = bigger;
    x->nr_slots = n;
  }
  if (slots_put (x->slots, x->nr_slots, &s))
    x->nr_entries++;
  return 0;
}

static const struct slot *
index_find (const struct dedup_index *x, const unsigned char sha256[32])
{
  uint64_t key = hash_key (sha256);
  size_t mask = x->nr_slots - 1, i;

  for (i = key & mask; x->slots[i].key != 0; i = (i + 1) & mask)
    if (x->slots[i].key == key)
      return &x->slots[i];
  return NULL;
}

/* A map header we can use: valid, with our chunk size, and a file long
 * enough for its entries.
 */
static bool
header_usable (const struct map_header *h, uint64_t file_size,
               uint32_t chunk_size)
{
  return memcmp (h->magic, MAP_MAGIC, 8) == 0 &&
      h->version == CACHE_FORMAT_VERSION && h->header_size == MAP_HEADER_SIZE &&
      h->entry_size == sizeof (struct map_entry) &&
      h->chunk_size == chunk_size && h->image_size > 0 &&
      h->nr_chunks == (h->image_size + chunk_size - 1) / chunk_size &&
      h->nr_chunks <= (file_size - MAP_HEADER_SIZE) / h->entry_size;
}

/* Bytes of chunk idx of an image of size bytes. */
static uint32_t
chunk_bytes (uint64_t size, uint32_t chunk_size, uint64_t idx)
{
  uint64_t off = idx * chunk_size;

  return off + chunk_size > size ? size - off : chunk_size;
}

/* Index the present chunks of one image.  Images we cannot read or use
 * are skipped: they only mean fewer candidates.  0, or -1 on error.
 */
static int
scan_image (struct dedup_index *x, int images_fd, const char *name,
            uint32_t chunk_size, unsigned char *buf)
{
  const size_t es = sizeof (struct map_entry);
  struct map_header h;
  struct stat st;
  char path[ID_LEN + 8];
  uint64_t i;
  uint32_t image;
  int fd, r = 0;

  snprintf (path, sizeof path, "%s/map", name);
  fd = openat (images_fd, path, O_RDONLY | O_CLOEXEC);
  if (fd == -1)
    return 0;
  if (fstat (fd, &st) == -1 || (uint64_t) st.st_size < MAP_HEADER_SIZE ||
      pread (fd, &h, sizeof h, 0) != (ssize_t) sizeof h ||
      !header_usable (&h, st.st_size, chunk_size))
    goto out;

  if (x->nr_images == x->max_images) {
    size_t m = x->max_images ? x->max_images * 2 : 16;
    char (*p)[ID_LEN + 1] = realloc (x->images, m * sizeof *p);

    if (p == NULL) {
      report_error ("realloc: %m");
      r = -1;
      goto out;
    }
    x->images = p;
    x->max_images = m;
  }
  image = x->nr_images++;
  memcpy (x->images[image], name, ID_LEN + 1);

  for (i = 0; i < h.nr_chunks && i <= UINT32_MAX;) {
    uint64_t n = h.nr_chunks - i, k;
    ssize_t got;

    if (n > SCAN_BATCH)
      n = SCAN_BATCH;
    got = pread (fd, buf, n * es, MAP_HEADER_SIZE + i * es);
    if (got < (ssize_t) es)
      break; /* truncated meanwhile: what we have will do */
    n = got / es;
    for (k = 0; k < n && i + k <= UINT32_MAX; k++) {
      const unsigned char *e = buf + k * es;
      uint32_t state;

      memcpy (&state, e + offsetof (struct map_entry, state), sizeof state);
      if ((state & STATE_PRESENT) &&
          index_add (x, hash_key (e + offsetof (struct map_entry, sha256)),
                     image, i + k) == -1) {
        r = -1;
        goto out;
      }
    }
    i += n;
  }

out:
  close (fd);
  return r;
}

/* Scan every image's map into a new index.  NULL on error (reported). */
static struct dedup_index *
index_build (struct cache_dedup *dd)
{
  uint64_t start = now_monotonic_us (), took;
  CLEANUP_FREE unsigned char *buf = NULL;
  struct dedup_index *x;
  struct dirent *ent;
  DIR *dir;

  x = calloc (1, sizeof *x);
  buf = malloc (SCAN_BATCH * sizeof (struct map_entry));
  if (x == NULL || buf == NULL ||
      (x->slots = calloc (MIN_SLOTS, sizeof *x->slots)) == NULL) {
    report_error ("calloc: %m");
    index_free (x);
    return NULL;
  }
  x->nr_slots = MIN_SLOTS;

  dir = opendir (dd->images_path);
  if (dir == NULL) {
    report_error ("cache: dedup: %s: %m", dd->images_path);
    index_free (x);
    return NULL;
  }
  while ((ent = readdir (dir)) != NULL && x->nr_images < CACHE_MAX_IMAGES) {
    if (strlen (ent->d_name) != ID_LEN)
      continue; /* ".", "..", anything not an image */
    if (scan_image (x, dirfd (dir), ent->d_name, dd->ci->chunk_size, buf) ==
        -1) {
      closedir (dir);
      index_free (x);
      return NULL;
    }
  }
  closedir (dir);

  took = now_monotonic_us () - start;
  dd->stats.scans++;
  dd->stats.entries = x->nr_entries;
  dd->stats.images = x->nr_images;
  dd->stats.scan_us = took;
  dd->next_rebuild = start + took +
      (took * REBUILD_FACTOR > REBUILD_MIN_US ? took * REBUILD_FACTOR
                                              : REBUILD_MIN_US);
  report_debug ("cache: dedup: indexed %zu chunks of %zu images in %" PRIu64
                " us",
                x->nr_entries, x->nr_images, took);
  return x;
}

/* Rebuild the index if it is due and nobody else is at it.  True if a
 * new index is in place.
 */
static bool
maybe_rebuild (struct cache_dedup *dd)
{
  struct dedup_index *x, *old;

  if (pthread_mutex_trylock (&dd->rebuild_lock) != 0)
    return false;
  if (now_monotonic_us () < dd->next_rebuild) {
    pthread_mutex_unlock (&dd->rebuild_lock);
    return false;
  }
  x = index_build (dd);
  if (x == NULL) {
    /* Keep the old one; try again a second later, not at once. */
    dd->next_rebuild = now_monotonic_us () + REBUILD_MIN_US;
    pthread_mutex_unlock (&dd->rebuild_lock);
    return false;
  }
  pthread_rwlock_wrlock (&dd->index_lock);
  old = dd->index;
  dd->index = x;
  pthread_rwlock_unlock (&dd->index_lock);
  pthread_mutex_unlock (&dd->rebuild_lock);
  index_free (old);
  return true;
}

struct cache_dedup *
cache_dedup_open (struct cache_image *ci)
{
  struct cache_dedup *dd = calloc (1, sizeof *dd);

  if (dd == NULL) {
    report_error ("calloc: %m");
    return NULL;
  }
  dd->ci = ci;
  pthread_rwlock_init (&dd->index_lock, NULL);
  pthread_mutex_init (&dd->rebuild_lock, NULL);
  if (asprintf (&dd->images_path, "%s/images", ci->dir->path) == -1) {
    dd->images_path = NULL;
    report_error ("asprintf: %m");
    cache_dedup_close (dd);
    return NULL;
  }
  dd->index = index_build (dd);
  if (dd->index == NULL) {
    cache_dedup_close (dd);
    return NULL;
  }
  return dd;
}

void
cache_dedup_close (struct cache_dedup *dd)
{
  if (dd == NULL)
    return;
  index_free (dd->index);
  pthread_rwlock_destroy (&dd->index_lock);
  pthread_mutex_destroy (&dd->rebuild_lock);
  free (dd->images_path);
  free (dd);
}

/* With the directory lock held: is the donor's chunk present, of the
 * right length and recorded with the trusted hash?  Sets *state.  NB:
 * under the lock nobody can evict it, so its bytes stay as they are
 * until we let go (rule 2 of docs/cache-format.md).
 */
static bool
donor_usable_locked (const struct donor *dn, uint32_t *state)
{
  unsigned char e[sizeof (struct map_entry)];
  struct map_header h;
  struct stat st;
  uint64_t pos = MAP_HEADER_SIZE + dn->idx * sizeof e;

  if (fstat (dn->map_fd, &st) == -1 || (uint64_t) st.st_size < pos + sizeof e ||
      pread (dn->map_fd, &h, sizeof h, 0) != (ssize_t) sizeof h ||
      !header_usable (&h, st.st_size, dn->chunk_size) ||
      dn->idx >= h.nr_chunks ||
      chunk_bytes (h.image_size, h.chunk_size, dn->idx) != dn->len)
    return false;
  if (pread (dn->map_fd, e, sizeof e, pos) != (ssize_t) sizeof e)
    return false;
  memcpy (state, e + offsetof (struct map_entry, state), sizeof *state);
  return (*state & STATE_PRESENT) &&
      memcmp (e + offsetof (struct map_entry, sha256), dn->sha256, 32) == 0;
}

/* cache_write_fn: copy the donor's chunk in the kernel (or share its
 * blocks) if it is unchanged since its bytes were verified, else write
 * the verified bytes.  Runs with the directory lock held.
 */
static int
write_from_donor (void *opaque, struct cache_image *ci, uint64_t offset,
                  uint32_t len)
{
  struct donor *dn = opaque;
  off64_t in = dn->idx * dn->chunk_size, out = offset;
  uint32_t state, left = len;

  if (donor_usable_locked (dn, &state) && state == dn->state) {
    while (left > 0) {
      ssize_t n =
          copy_file_range (dn->data_fd, &in, ci->data_fd, &out, left, 0);
      if (n == -1 && errno == EINTR)
        continue;
      if (n <= 0)
        break; /* EXDEV, EOPNOTSUPP, ...: write it instead */
      left -= n;
    }
    cache_drop_pages (dn->data_fd, dn->idx * dn->chunk_size, len);
    if (left == 0)
      return 0;
  }
  return cache_write_buffer ((void *) dn->buf, ci, offset, len);
}

/* Try one candidate.  1 copied (buf verified), 0 not usable, -1 error. */
static int
copy_candidate (struct cache_dedup *dd, const char *name, uint64_t donor_idx,
                uint64_t idx, uint32_t len, const unsigned char sha256[32],
                void *buf)
{
  struct cache_image *ci = dd->ci;
  struct donor dn = {
    .map_fd = -1,
    .data_fd = -1,
    .idx = donor_idx,
    .len = len,
    .chunk_size = ci->chunk_size,
    .sha256 = sha256,
    .buf = buf,
  };
  unsigned char got[32];
  char path[4096];
  bool ok;
  int r = 0;

  if (snprintf (path, sizeof path, "%s/%s/map", dd->images_path, name) <
      (int) sizeof path)
    dn.map_fd = open (path, O_RDONLY | O_CLOEXEC);
  if (snprintf (path, sizeof path, "%s/%s/data", dd->images_path, name) <
      (int) sizeof path)
    dn.data_fd = open (path, O_RDONLY | O_CLOEXEC);
  if (dn.map_fd == -1 || dn.data_fd == -1)
    goto out; /* removed meanwhile */
  cache_no_readahead (dn.data_fd);

  if (cache_dir_lock (ci->dir) == -1) {
    r = -1;
    goto out;
  }
  ok = donor_usable_locked (&dn, &dn.state) &&
      pread_full (dn.data_fd, buf, len, donor_idx * ci->chunk_size) ==
          (ssize_t) len;
  cache_dir_unlock (ci->dir);
  cache_drop_pages (dn.data_fd, donor_idx * ci->chunk_size, len);
  if (!ok)
    goto out;

  /* The guarantee: nothing is served or written unless it hashes to the
   * trusted hash.  A mismatch is damage at rest in the donor (its own
   * reader will find and drop it); we fetch instead.
   */
  SHA256 (buf, len, got);
  if (memcmp (got, sha256, 32) != 0) {
    dd->stats.verify_failed++;
    report_debug ("cache: dedup: chunk %" PRIu64 " of image %s does not "
                  "match its hash: not using it",
                  donor_idx, name);
    goto out;
  }

  /* Served from buf in any case; stored unless the cache is full.  A
   * store error is reported there and only costs the cache.
   */
  if (cache_store_with (ci, idx, len, sha256, write_from_donor, &dn) == 0)
    cache_tag_chunk (ci, idx, buf, len); /* the bytes checked above */
  dd->stats.chunks++;
  dd->stats.bytes += len;
  r = 1;

out:
  if (dn.map_fd >= 0)
    close (dn.map_fd);
  if (dn.data_fd >= 0)
    close (dn.data_fd);
  return r;
}

int
cache_dedup_copy (struct cache_dedup *dd, uint64_t idx,
                  const unsigned char sha256[32], void *buf)
{
  struct cache_image *ci = dd->ci;
  uint32_t len;
  int attempt, r;

  if (idx >= ci->nr_chunks) {
    report_error ("cache: dedup: chunk %" PRIu64 " out of range", idx);
    return -1;
  }
  len = chunk_bytes (ci->image_size, ci->chunk_size, idx);

  /* Look in the index; if nothing there is usable and the index is due
   * a rebuild, rebuild it and look once more.
   */
  for (attempt = 0; attempt < 2; attempt++) {
    char name[ID_LEN + 1];
    uint64_t donor_idx = 0;
    bool found = false;

    pthread_rwlock_rdlock (&dd->index_lock);
    {
      const struct slot *s = index_find (dd->index, sha256);
      if (s) {
        memcpy (name, dd->index->images[s->image], sizeof name);
        donor_idx = s->idx;
        found = true;
      }
    }
    pthread_rwlock_unlock (&dd->index_lock);

    if (found) {
      r = copy_candidate (dd, name, donor_idx, idx, len, sha256, buf);
      if (r != 0)
        return r;
    }
    if (attempt == 0 && !maybe_rebuild (dd))
      break;
  }
  return 0;
}

void
cache_dedup_stats (struct cache_dedup *dd, struct cache_dedup_stats *out)
{
  out->chunks = dd->stats.chunks;
  out->bytes = dd->stats.bytes;
  out->verify_failed = dd->stats.verify_failed;
  out->scans = dd->stats.scans;
  out->entries = dd->stats.entries;
  out->images = dd->stats.images;
  out->scan_us = dd->stats.scan_us;
}
