/* accel plugin: the read path — serve a byte range from the cache, and
 * fetch what is missing from the origin once, however many threads want
 * it.
 */

#ifndef ACCEL_FETCH_H
#define ACCEL_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image.h"

/* Upper bounds (seconds) of the buckets of GET latencies; a last
 * bucket, +Inf, holds the rest.
 */
#define FETCH_LATENCY_BUCKETS 13
extern const double fetch_latency_bounds[FETCH_LATENCY_BUCKETS];

/* Counters of the read path (for debug output and metrics). */
struct fetch_stats {
  uint64_t chunk_fetches; /* chunks fetched from the origin */
  /* ... and their bytes: each chunk's real length (a short last chunk
   * counts what it holds), refetches included; not the manifest, not
   * chunks copied by dedup.  accel-inspect --diff predicts it.
   */
  uint64_t fetch_bytes;
  uint64_t requests; /* ranged GETs issued for them */
  uint64_t waits; /* reads that waited for another's fetch */
  uint64_t verify_failures; /* fetched chunks that did not match */
  uint64_t zero_reads; /* chunk reads answered from the manifest */
  uint64_t prefetch_chunks; /* chunks fetched by prefetch (prefetch=) */
  uint64_t prefetch_bytes; /* ... and their bytes */
  /* Client reads (not readahead or NBD_CMD_CACHE): a hit needs no chunk
   * that is missing from the cache (all-zero chunks count as cached).
   */
  uint64_t read_hits, read_misses;
  uint64_t hit_bytes, miss_bytes;
  /* Ranged GETs by duration (retries included): latency[i] counts those
   * within fetch_latency_bounds[i] and above the bound before; the last
   * one those above every bound.  Not cumulative.
   */
  uint64_t latency[FETCH_LATENCY_BUCKETS + 1];
  uint64_t latency_us; /* their total duration */
};

/* request_size caps one GET (adjacent missing chunks are coalesced up
 * to it).
 */
void fetch_init (uint32_t request_size);

/* Read count bytes at offset into buf.  buf == NULL only brings the range
 * into the cache (NBD_CMD_CACHE, readahead).  Returns 0, or -1 after
 * reporting the error, with errno set.
 */
int fetch_read (struct image *img, void *buf, uint32_t count, uint64_t offset);

/* The same as fetch_read with buf == NULL, for NBD_CMD_CACHE (a node
 * hydrating files, accel-prefetch): adjacent missing chunks go in GETs
 * of up to max_get bytes (or request_size, if larger).
 */
int fetch_cache (struct image *img, uint32_t count, uint64_t offset,
                 uint32_t max_get);

/* The same as fetch_read with buf == NULL, for prefetch: counted in
 * the prefetch stats and not as a foreground read.  The missing chunks
 * of the batch go in one GET, however large the batch (the plan caps
 * it at prefetch-request-size).
 */
int fetch_prefetch (struct image *img, uint32_t count, uint64_t offset);

/* How many foreground reads (demand reads, NBD_CMD_CACHE, readahead)
 * are fetching from the origin or waiting for a fetch right now.
 * Prefetch issues nothing while this is above zero.
 */
unsigned fetch_foreground_misses (void);

void fetch_get_stats (struct fetch_stats *out);

/* A chunk that a read found missing from the cache: the read path's
 * own bookkeeping, here for fetch_run_length and its unit test.
 */
struct fetch_miss {
  uint64_t idx;
  struct inflight *e; /* its entry in fetch.c's table of fetches */
  bool owner; /* this read fetches it (others wait for it) */
  bool handled; /* owner: its waiters have been told */
};

/* How many of the nr missing chunks from miss[0] on one GET fetches: a
 * run of chunks that this read owns and that are adjacent in the image,
 * of at most max_bytes (request-size) in all, but always at least one.
 * 0 if miss[0] is not this read's to fetch.
 */
size_t fetch_run_length (const struct image *img, const struct fetch_miss *miss,
                         size_t nr, uint32_t max_bytes);

#endif /* ACCEL_FETCH_H */
