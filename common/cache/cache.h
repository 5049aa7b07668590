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
 * store would exceed it, chunks are evicted by punching holes: those of
 * images nobody serves first, then of served ones, least recently used
 * first in each.  Usage is measured as the blocks the data
 * files really hold, so it is right even after a crash.
 *
 * Every read is counted (hit or miss, reads and bytes) in the map's
 * header, shared by the processes serving the image, and the cap is
 * recorded in the directory: accel-cache shows both.  The administration
 * functions at the end (listing, evicting, verifying) are safe while
 * other processes serve: they evict exactly as a store making room does.
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
  uint64_t verified_tag; /* of verified: by their at-rest tag */
  uint64_t evicted; /* chunks this process evicted */
  uint64_t loaded; /* chunks read whole into memory (cache-resident.c) */
  uint64_t part_reads; /* reads of only the part asked for */
};

/* Open (creating if needed, mode 0700) a cache directory.  cap is the most
 * bytes the whole directory may hold (0: no cap but the disk).
 */
struct cache_dir *cache_dir_open (const char *path, uint64_t cap);
void cache_dir_close (struct cache_dir *d);

/* Give the directory the node's secret key (32 bytes), before any
 * image is opened: chunks stored from then on get an at-rest tag, and a
 * chunk whose tag fits is trusted without hashing it (cache-tags.c).
 */
int cache_dir_set_key (struct cache_dir *d, const unsigned char key[32]);

/* Read the key file at path (64 hex digits), making it (0600, random)
 * if it does not exist.  It must be a regular file of ours that others
 * cannot read, outside the cache directory cache_dir.  0, or -1 (error
 * reported).
 */
int
cache_key_load (const char *path, const char *cache_dir, unsigned char key[32]);

/* Bytes held by all images' data files now. */
int cache_dir_usage (struct cache_dir *d, uint64_t *bytes);

/* Evict chunks of any image (of images nobody serves first, least
 * recently used first) until the directory holds at most target bytes.
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

/* The same, not counted in the image's hit and miss counters: for the
 * read path's own second look at a chunk that a client read already
 * counted.
 */
int cache_read_uncounted (struct cache_image *ci, uint64_t idx, uint32_t offset,
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

/* cache_store of bytes whose SHA-256 the caller has just computed (the
 * read path's check against the manifest): the same, without hashing
 * them again.
 */
int cache_store_hashed (struct cache_image *ci, uint64_t idx, const void *data,
                        uint32_t len, const unsigned char sha256[32]);

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

/* ---- Administration (accel-cache), safe while others serve ---------- */

/* Open an existing cache directory to look at or tidy it.  Unlike
 * cache_dir_open it creates nothing, records no cap, and says why a
 * directory is refused: missing, not a cache, a cache of another format
 * version, no permission.
 */
struct cache_dir *cache_dir_open_existing (const char *path);

/* The directory's path, as it was opened. */
const char *cache_dir_path (const struct cache_dir *d);

/* The cap (cache-size=) that the last process to open the directory for
 * serving gave, 0 meaning none.  1 if one is recorded, 0 if not, -1 on
 * error.
 */
int cache_dir_recorded_cap (struct cache_dir *d, uint64_t *cap);

/* What the cache holds of one image. */
struct cache_image_info {
  char id[65]; /* its directory in DIR/images: SHA-256 of the identity */
  char *identity, *description; /* from its info file; NULL if unknown */
  bool valid; /* false: no readable map (the numbers below are 0) */
  bool serving; /* a process serves it now */
  uint64_t image_size;
  uint32_t chunk_size;
  uint64_t nr_chunks;
  uint64_t cached_chunks, cached_bytes; /* present chunks, their bytes */
  uint64_t disk_bytes; /* blocks of its data file (what the cap counts) */
  uint64_t hit_reads, hit_bytes; /* reads served from the cache */
  uint64_t miss_reads, miss_bytes; /* reads that had to fetch */
  uint32_t last_use; /* latest access of any chunk (0: none) */
};

/* Every image in the directory, sorted by description then id, in a
 * malloc'd array.  0, or -1 (error reported).
 */
int cache_dir_list (struct cache_dir *d, struct cache_image_info **images,
                    size_t *n);
void cache_image_info_free (struct cache_image_info *images, size_t n);

/* What an eviction or a gc did. */
struct cache_evict_result {
  uint64_t chunks, bytes; /* chunks evicted and their bytes */
  uint64_t usage_before, usage_after; /* the directory's usage */
  unsigned removed; /* image directories removed (nobody served them) */
  unsigned busy; /* images kept: a process serves them */
};

/* Evict chunks of any image (of images nobody serves first, least
 * recently used first) until the directory holds at most target bytes
 * (accel-cache gc).  0, or -1.
 */
int cache_dir_gc (struct cache_dir *d, uint64_t target,
                  struct cache_evict_result *res);

/* Evict every chunk of image id.  If nobody serves it, its directory is
 * removed too; if a process does, it stays and the server fetches again
 * what it reads.  0, or -1.
 */
int cache_dir_evict_image (struct cache_dir *d, const char *id,
                           struct cache_evict_result *res);

/* Evict every chunk last used before `before` (seconds since the
 * epoch), and remove the directories of images that nobody serves, that
 * hold nothing any more and that were not used since.  0, or -1.
 */
int cache_dir_evict_older (struct cache_dir *d, uint32_t before,
                           struct cache_evict_result *res);

/* What a verification found. */
struct cache_verify_result {
  uint64_t checked; /* present chunks hashed */
  uint64_t bad; /* of which damaged or short: dropped */
  uint64_t changed; /* evicted or replaced while being read: skipped */
};

/* Hash every present chunk of image id against expected (the manifest;
 * NULL or a 0 answer: the hash recorded in the map when it was stored)
 * and drop the bad ones as eviction does, so that servers fetch them
 * again.  0 (whatever was found), or -1 on error.
 */
int cache_dir_verify_image (struct cache_dir *d, const char *id,
                            cache_expected_fn expected, void *opaque,
                            struct cache_verify_result *res);

/* The local copies of manifests (DIR/manifests/), by the SHA-256 that
 * names the image they describe ("manifest:HEX" identities).
 */
struct cache_manifests;

/* Hash every manifest copy in the directory.  NULL on error. */
struct cache_manifests *cache_manifests_open (struct cache_dir *d);
void cache_manifests_close (struct cache_manifests *ms);

/* The path of the copy of the manifest an identity names, or NULL. */
const char *
cache_manifests_find (const struct cache_manifests *ms, const char *identity);

#endif /* ACCEL_CACHE_H */
