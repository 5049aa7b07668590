/* accel: structures shared by the cache's modules (cache-dir.c,
 * cache-image.c, cache-io.c, cache-evict.c).  Not for users of the cache:
 * they see cache.h.
 */

#ifndef ACCEL_CACHE_INTERNAL_H
#define ACCEL_CACHE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "cache.h"

#define CACHE_MARKER "accel-cache-v1"
#define MAP_MAGIC "ACCELMAP"
#define MAP_HEADER_SIZE 4096

/* The map file's header (little-endian, as written by x86-64 and arm64;
 * the version field guards any change).
 */
struct map_header {
  char magic[8]; /* MAP_MAGIC */
  uint32_t version; /* CACHE_FORMAT_VERSION */
  uint32_t header_size; /* MAP_HEADER_SIZE */
  uint64_t image_size;
  uint32_t chunk_size;
  uint32_t entry_size; /* sizeof (struct map_entry) */
  uint64_t nr_chunks;
  unsigned char identity[32]; /* SHA-256 of the identity string */
};

/* One chunk's entry.  state: bit 0 = present, bits 1-31 = generation,
 * bumped by every eviction.  NB: the fields are accessed with atomics by
 * several processes through a shared mapping.
 */
struct map_entry {
  _Atomic uint32_t state;
  _Atomic uint32_t atime; /* last access, seconds since the epoch */
  /* Hash of the stored bytes.  NB: read without a lock (a seqlock, see
   * read_verify), so accessed with relaxed atomics.
   */
  _Atomic unsigned char sha256[32];
};

#define STATE_PRESENT 1u
#define STATE_NEXT_GEN(s) (((s) + 2u) & ~STATE_PRESENT)

/* Per-process flags of a chunk (struct cache_image.local).  Bits 2-31
 * hold the map state seen when a pending chunk was written, so a read of
 * a pending chunk can tell whether an eviction happened since.
 */
#define LOCAL_VERIFIED 1u
#define LOCAL_PENDING 2u
#define LOCAL_GEN_SHIFT 2

/* A chunk written but not yet durable and recorded. */
struct pending {
  uint64_t idx;
  uint32_t state; /* map state when its bytes were written */
};

struct cache_dir {
  char *path;
  uint64_t cap; /* 0 = no cap */
  int lock_fd; /* DIR/lock */

  /* store_lock serialises, within this process, everything done under
   * the directory's flock: writing chunk bytes, measuring usage,
   * evicting.  Readers of cached data never take it.
   */
  pthread_mutex_t store_lock;

  /* Set when a write failed for lack of space: caching is off until
   * then (seconds since the epoch).  Protected by store_lock.
   */
  time_t store_disabled_until;
  bool warned_full;
};

struct cache_image {
  struct cache_dir *dir;
  char *path; /* DIR/images/ID */
  char *identity;
  uint64_t image_size;
  uint32_t chunk_size;
  uint64_t nr_chunks;
  int data_fd, map_fd, serve_fd;
  struct map_header *map; /* mmap of the whole map file */
  size_t map_len;
  struct map_entry *entries; /* inside map */
  _Atomic uint32_t *local; /* LOCAL_* flags, one per chunk */

  cache_expected_fn expected;
  void *expected_opaque;

  /* pending_lock protects the pending array: chunks written by this
   * process and waiting for cache_flush.  flush_lock makes flushes one
   * at a time (held over fdatasync, which readers never wait for).
   */
  pthread_mutex_t pending_lock;
  struct pending *pending;
  size_t nr_pending, max_pending;
  pthread_mutex_t flush_lock;

  struct {
    _Atomic uint64_t hits, misses, stored, store_skipped;
    _Atomic uint64_t verified, verify_failed, evicted;
  } stats;
};

/* cache-dir.c */
int cache_dir_lock (struct cache_dir *d);
void cache_dir_unlock (struct cache_dir *d);
int cache_dir_usage_locked (struct cache_dir *d, uint64_t *bytes);

/* cache-evict.c: with the directory locked, evict least recently used
 * chunks until usage is at most target.  Adds the number of chunks
 * evicted to *nr_evicted if it is not NULL.
 */
int cache_evict_locked (struct cache_dir *d, uint64_t usage, uint64_t target,
                        uint64_t *nr_evicted);

/* cache-image.c: drop one chunk of an image (found damaged) under the
 * directory lock.
 */
int cache_image_drop (struct cache_image *ci, uint64_t idx, uint32_t state);

/* cache-io.c: store chunk idx (len bytes hashing to sha256, which the
 * caller has verified) by following rule 1 of docs/cache-format.md;
 * write_fn puts the bytes at offset of the data file, with the
 * directory lock held.  It returns 0, or -1 with errno set (a failed
 * write: caching is turned off for a while, as for any store).
 * Returns as cache_store.
 */
typedef int (*cache_write_fn) (void *opaque, int data_fd, uint64_t offset,
                               uint32_t len);
int cache_store_with (struct cache_image *ci, uint64_t idx, uint32_t len,
                      const unsigned char sha256[32], cache_write_fn write_fn,
                      void *opaque);

/* cache_write_fn that writes the buffer opaque (what cache_store uses). */
int
cache_write_buffer (void *opaque, int data_fd, uint64_t offset, uint32_t len);

/* Helpers. */
int cache_punch (int fd, uint64_t offset, uint64_t len);
uint32_t cache_now (void);

#endif /* ACCEL_CACHE_INTERNAL_H */
