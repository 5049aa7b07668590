/* accel: the persistent, sparse, shared block cache.
 *
 * A cache directory holds the cached chunks of any number of images and
 * may be used by several processes at once (one nbdkit per dataset, plus
 * accel-cache).  Layout, format version 1 (see docs/cache-format.md):
 *
 *   DIR/accel-cache-v1        marker: refuses a directory of another format
 *   DIR/lock                  flock(LOCK_EX) while storing or evicting
 *   DIR/images/ID/            one per image identity (ID = SHA-256 of it)
 *   DIR/images/ID/info        the identity and a description, for people
 *   DIR/images/ID/map         header + one entry per chunk, mmap'd shared
 *   DIR/images/ID/data        sparse file, the image's bytes at their offsets
 *   DIR/images/ID/serve.lock  flock(LOCK_SH) by every process serving it
 *
 * A map entry says whether the chunk is present, its SHA-256 and its last
 * access time.  Its state word holds a present bit and a generation that
 * every eviction bumps, so a reader can check, after its pread, that the
 * chunk was not evicted underneath it (a seqlock): hits take no lock.
 *
 * Crash safety: a chunk's bytes are written, then made durable with one
 * fdatasync per batch, and only then marked present.  An eviction marks
 * chunks absent and msyncs the map before punching their holes.  So after
 * any crash the map can only forget chunks, never claim bytes that are
 * not on disk.  Bytes written but never recorded are punched out by the
 * next process that opens the image alone.
 *
 * Every chunk is hashed when stored; the first read of a chunk by a
 * process verifies it against its expected hash (the manifest's if the
 * caller gives one, else the hash recorded at store time), so bytes
 * damaged while the cache was at rest are refetched, never served.
 *
 * The whole directory obeys one cap (cache_dir_open's cap): before a
 * store would exceed it, the least recently used chunks of all images are
 * evicted by punching holes.  Usage is measured as the blocks the data
 * files really hold, so it is right even after a crash.
 */

#ifndef ACCEL_CACHE_H
#define ACCEL_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#define CACHE_FORMAT_VERSION 1

struct cache_dir;
struct cache_image;

/* Counters of one image's cache, for debug output and metrics. */
struct cache_stats {
  uint64_t hits, misses; /* chunk lookups */
  uint64_t stored, store_skipped; /* chunks written / not (full, disabled) */
  uint64_t verified, verify_failed;
  uint64_t evicted; /* chunks this process evicted */
};

/* Open (creating if needed, mode 0700) a cache directory.  cap is the most
 * bytes the whole directory may hold (0: no cap but the disk).
 */
struct cache_dir *cache_dir_open (const char *path, uint64_t cap);
void cache_dir_close (struct cache_dir *d);

/* Bytes held by all images' data files now. */
int cache_dir_usage (struct cache_dir *d, uint64_t *bytes);

/* Evict least recently used chunks of any image until the directory holds
 * at most target bytes.
 */
int cache_dir_evict_to (struct cache_dir *d, uint64_t target);

/* Expected hash of a chunk, or 0 = unknown (then the hash recorded at
 * store time is used).  Returns -1 on error.
 */
typedef int (*cache_expected_fn) (void *opaque, uint64_t idx,
                                  unsigned char sha256[32]);

/* Open the cache of one image.  identity is a string that names the
 * image's content for ever (a manifest digest, or object + ETag + size);
 * description is kept for people (the URL).  expected may be NULL.
 */
struct cache_image *
cache_image_open (struct cache_dir *d, const char *identity,
                  const char *description, uint64_t image_size,
                  uint32_t chunk_size, cache_expected_fn expected,
                  void *expected_opaque);
void cache_image_close (struct cache_image *ci);

/* The image's directory inside the cache (for files kept beside it). */
const char *cache_image_dir (const struct cache_image *ci);

/* Read len bytes at offset inside chunk idx from the cache.  Returns 1 if
 * served (buf filled, verified), 0 if the chunk is not cached (or was
 * found damaged and dropped), -1 on error.
 */
int cache_read (struct cache_image *ci, uint64_t idx, uint32_t offset,
                uint32_t len, void *buf);

/* True if chunk idx is in the cache (or about to be recorded). */
bool cache_contains (struct cache_image *ci, uint64_t idx);

/* Store the whole chunk idx (len bytes, already verified by the caller
 * when it has a manifest).  Returns 0 if written (it is recorded at the
 * next cache_flush), 1 if not stored (cache full of chunks in use, disk
 * full, caching disabled: the caller just serves its copy), -1 on error.
 */
int cache_store (struct cache_image *ci, uint64_t idx, const void *data,
                 uint32_t len);

/* Make written chunks durable (one fdatasync) and record them.  Called in
 * batches by a background thread and at close.
 */
int cache_flush (struct cache_image *ci);

/* Number of chunks written but not yet recorded. */
unsigned cache_pending (struct cache_image *ci);

void cache_image_stats (struct cache_image *ci, struct cache_stats *out);

/* Bytes of the image's chunks that the cache holds now (recorded by any
 * process).  Costs one load per chunk.
 */
uint64_t cache_image_cached_bytes (struct cache_image *ci);

#endif /* ACCEL_CACHE_H */
