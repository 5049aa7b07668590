/* accel: dedup by chunk hash — fill a missing chunk of one image with a
 * copy of a chunk with the same SHA-256 that the cache directory already
 * holds for any image (another version of a dataset, another dataset, or
 * another offset of the same image), instead of fetching it.
 *
 * Candidates come from an index in memory, built by scanning the maps of
 * every image in the directory (no file of its own: the maps are the
 * truth, and other processes add and evict chunks at any time).  It is
 * built at open and rebuilt when a lookup finds nothing usable, at most
 * once a second and at most 5% of the time (see docs/cache-format.md).
 *
 * A candidate is only a hint.  The donor's bytes are read under the
 * directory lock (so they cannot be evicted meanwhile) and must hash to
 * the hash the caller trusts (the manifest's) before anything is served
 * or written; then they are stored by the usual protocol, by
 * copy_file_range from the donor (a reflink on file systems that share
 * blocks) while the donor is unchanged, else from the verified buffer.
 * Any mismatch, eviction or error is just a miss: the caller fetches.
 *
 * Only callers with trusted hashes may use this: without a manifest the
 * hash of a chunk of the image is unknown, so there is no dedup.
 */

#ifndef ACCEL_CACHE_DEDUP_H
#define ACCEL_CACHE_DEDUP_H

#include <stdint.h>

#include "cache.h"

struct cache_dedup;

/* Counters, for debug output and metrics. */
struct cache_dedup_stats {
  uint64_t chunks, bytes; /* missing chunks filled by a local copy */
  uint64_t verify_failed; /* candidates whose bytes did not match */
  uint64_t scans; /* times the index was built */
  uint64_t entries; /* distinct chunks in the index now */
  uint64_t images; /* images whose maps were scanned last time */
  uint64_t scan_us; /* how long the last scan took */
};

/* Build the index for missing chunks of ci (which must outlive it).
 * NULL on error (reported).
 */
struct cache_dedup *cache_dedup_open (struct cache_image *ci);
void cache_dedup_close (struct cache_dedup *dd);

/* Chunk idx of the image is missing and must hash to sha256 (trusted).
 * If a chunk with that hash is cached, copy it: buf (the chunk's length)
 * gets its verified bytes, which are also stored in the cache unless it
 * is full.  Returns 1 if buf was filled, 0 if not (nothing usable: fetch
 * it), -1 on error (reported; the caller may still fetch).
 */
int cache_dedup_copy (struct cache_dedup *dd, uint64_t idx,
                      const unsigned char sha256[32], void *buf);

void cache_dedup_stats (struct cache_dedup *dd, struct cache_dedup_stats *out);

#endif /* ACCEL_CACHE_DEDUP_H */
