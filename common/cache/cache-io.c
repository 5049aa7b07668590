/* accel: reading and storing chunks in an image's cache.
 *
 * The read path takes no lock: it checks a chunk's state word, preads the
 * bytes and checks the state again (a seqlock against eviction by any
 * process).  The first read of a chunk by this process reads the whole
 * chunk and verifies its hash.  Stores write under the directory lock
 * (so the cap holds across processes) and are recorded in batches by
 * cache_flush after one fdatasync.
 *
 * The data file stays out of the page cache: stores from aligned
 * buffers use O_DIRECT (no copy into the page cache at all), others are
 * dropped from it once cache_flush has made them durable; chunks read
 * whole (to verify them, or asked for whole) are read with O_DIRECT
 * into memory of their own (cache-resident.c), and what any other read
 * brought in is dropped right after it, but for a few chunks being read
 * again and again (cache-pages.c).  The page cache above the NBD device
 * holds the hot bytes; a second copy here would only halve what fits in
 * RAM.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "cache-internal.h"
#include "cleanup.h"
#include "clock.h"
#include "file-io.h"
#include "report.h"

/* Seconds caching stays off after a write failed for lack of space. */
#define STORE_RETRY_SECONDS 30

/* Alignment of O_DIRECT writes: the page size, which covers the logical
 * block size of the disks we meet (512 or 4096).
 */
#define DIRECT_ALIGN 4096

static uint32_t
chunk_len (const struct cache_image *ci, uint64_t idx)
{
  uint64_t off = idx * ci->chunk_size;

  if (off + ci->chunk_size > ci->image_size)
    return ci->image_size - off;
  return ci->chunk_size;
}

/* Generation bits of a map state as kept in a local word. */
static uint32_t
local_gen (uint32_t state)
{
  return (state >> 1) << LOCAL_GEN_SHIFT;
}

static void
touch (struct map_entry *e)
{
  uint32_t now = cache_now ();

  if (atomic_load_explicit (&e->atime, memory_order_relaxed) != now)
    atomic_store_explicit (&e->atime, now, memory_order_relaxed);
}

static void
hash_store (_Atomic unsigned char *hash, const unsigned char *in)
{
  size_t i;

  for (i = 0; i < 32; i++)
    atomic_store_explicit (&hash[i], in[i], memory_order_relaxed);
}

/* Count a read, in this process's stats and in the map's header, where
 * accel-cache stat finds the sum over every process serving the image.
 * Relaxed atomics: nothing is ordered by them.
 */
static void
count_read (struct cache_image *ci, bool hit, uint32_t len)
{
  struct map_header *h = ci->map;

  if (hit) {
    ci->stats.hits++;
    atomic_fetch_add_explicit (&h->hit_reads, 1, memory_order_relaxed);
    atomic_fetch_add_explicit (&h->hit_bytes, len, memory_order_relaxed);
  }
  else {
    ci->stats.misses++;
    atomic_fetch_add_explicit (&h->miss_reads, 1, memory_order_relaxed);
    atomic_fetch_add_explicit (&h->miss_bytes, len, memory_order_relaxed);
  }
}

/* Read chunk idx (clen bytes) whole into dst, a resident slot's
 * buffer: with O_DIRECT, so that the bytes go from the disk straight
 * into it, else through the page cache, dropped after.  The bytes read
 * (fewer if the data file is short), or -1 (error reported).
 */
static int64_t
load_whole (struct cache_image *ci, uint64_t idx, uint32_t clen,
            unsigned char *dst)
{
  uint64_t base = idx * ci->chunk_size;
  /* NB: at most chunk_size, a multiple of DIRECT_ALIGN; past the end of
   * the data file the read is short.
   */
  uint32_t n = (clen + DIRECT_ALIGN - 1) / DIRECT_ALIGN * DIRECT_ALIGN;
  ssize_t r;

  if (ci->data_direct_fd >= 0) {
    r = pread_full (ci->data_direct_fd, dst, n, base);
    if (r >= 0)
      return r < clen ? r : clen;
    if (errno != EINVAL) {
      report_error ("cache: %s/data: read: %m", ci->path);
      return -1;
    }
    /* A disk with larger blocks: read it through the page cache. */
  }
  r = pread_full (ci->data_fd, dst, clen, base);
  if (r == -1) {
    report_error ("cache: %s/data: read: %m", ci->path);
    return -1;
  }
  cache_drop_pages (ci->data_fd, base, clen);
  return r;
}

/* Claim a resident slot for chunk idx and load the chunk into it: the
 * slot (*n the bytes loaded, fewer if the data file is short), or NULL
 * with *n 0 (no slot free: read it otherwise) or -1 (error reported).
 */
static struct cache_resident_slot *
load_slot (struct cache_image *ci, uint64_t idx, uint32_t clen, int64_t *n)
{
  struct cache_resident_slot *slot;

  *n = 0;
  slot = cache_resident_claim (&ci->resident, idx);
  if (slot == NULL)
    return NULL;
  *n = load_whole (ci, idx, clen, slot->buf);
  ci->stats.loaded++;
  if (*n == -1) {
    cache_resident_loaded (&ci->resident, slot, false, 0, 0);
    return NULL;
  }
  return slot;
}

/* First read of a present chunk by this process: read it whole, check
 * it, and only then serve from it.  As a rule it is loaded into a
 * resident slot (cache-resident.c), checked there, and the reads that
 * follow copy out of it while it is there.  When no slot is free, it is
 * read through the page cache and kept there (cache-pages.c): the part
 * asked for straight into the caller's buffer and checked there, the
 * rest through a small buffer, so that verifying costs no chunk-sized
 * buffer per thread.  The check is the chunk's at-rest tag if it has
 * one that fits (cache-tags.c), else its hash.
 */
#define VERIFY_PIECE 65536

/* Largest read into the caller's buffer at once: it is checked right
 * after, while still in the CPU's cache.
 */
#define VERIFY_DIRECT_PIECE (256 * 1024)

/* Where read_verify's bytes are: the chunk loaded whole (bytes of it
 * in whole), or, if whole is NULL, the data file.
 */
struct verify_source {
  const unsigned char *whole;
  int64_t bytes;
};

/* One pass of read_verify over chunk idx (clen bytes), feeding each
 * piece to md and mac (either may be NULL).  From the data file, pieces
 * end where the part asked for, [offset, offset + len), begins and
 * ends, so each lies wholly inside it (read into buf: a sequential
 * reader asks for whole chunks, which then cost no copy) or wholly
 * outside.  The bytes read (fewer if the data file is short), or -1
 * (error reported).
 */
static int64_t
verify_pass (struct cache_image *ci, uint64_t idx, uint32_t clen,
             uint32_t offset, uint32_t len, void *buf,
             const struct verify_source *src, EVP_MD_CTX *md, EVP_MAC_CTX *mac)
{
  uint64_t base = idx * ci->chunk_size;
  unsigned char piece[VERIFY_PIECE];
  uint32_t done = 0, n;
  unsigned char *to;
  ssize_t r;

  if (src->whole) {
    if (md)
      EVP_DigestUpdate (md, src->whole, src->bytes);
    if (mac)
      EVP_MAC_update (mac, src->whole, src->bytes);
    return src->bytes;
  }
  while (done < clen) {
    if (done >= offset && done < offset + len) {
      to = (unsigned char *) buf + (done - offset);
      n = offset + len - done;
      if (n > VERIFY_DIRECT_PIECE)
        n = VERIFY_DIRECT_PIECE;
    }
    else {
      to = piece;
      n = clen - done;
      if (done < offset && offset - done < n)
        n = offset - done;
      if (n > VERIFY_PIECE)
        n = VERIFY_PIECE;
    }
    r = pread_full (ci->data_fd, to, n, base + done);
    if (r == -1) {
      report_error ("cache: %s/data: read: %m", ci->path);
      return -1;
    }
    if (md)
      EVP_DigestUpdate (md, to, r);
    if (mac)
      EVP_MAC_update (mac, to, r);
    done += r;
    if ((uint32_t) r < n)
      break; /* the data file is short */
  }
  return done;
}

/* read_verify's check by the chunk's tag: 1 if the bytes are those
 * tagged (buf filled), 0 if there is no tag or it does not fit, -1.
 */
static int
verify_by_tag (struct cache_image *ci, uint64_t idx, uint32_t clen,
               uint32_t offset, uint32_t len, void *buf,
               const struct verify_source *src)
{
  unsigned char tag[CACHE_TAG_SIZE];
  EVP_MAC_CTX *mac;
  int64_t done;

  if (!cache_tag_recorded (ci, idx))
    return 0;
  mac = cache_tag_begin (ci, idx);
  if (mac == NULL)
    return 0;
  done = verify_pass (ci, idx, clen, offset, len, buf, src, NULL, mac);
  if (done == -1) {
    EVP_MAC_CTX_free (mac);
    return -1;
  }
  if (cache_tag_end (mac, tag) == -1 || done != clen ||
      !cache_tag_matches (ci, idx, tag)) {
    report_debug ("cache: %s: chunk %" PRIu64 ": its tag does not fit: "
                  "hashing it",
                  ci->path, idx);
    return 0;
  }
  return 1;
}

/* read_verify's check of the bytes in src: 1 if they are chunk idx's
 * (counted, the chunk marked verified), 0 if not (the chunk evicted, or
 * found evicted meanwhile), -1.
 */
static int
check_chunk (struct cache_image *ci, uint64_t idx, uint32_t s1, uint32_t offset,
             uint32_t len, void *buf, const struct verify_source *src)
{
  struct map_entry *e = &ci->entries[idx];
  uint32_t clen = chunk_len (ci, idx);
  unsigned char want[32], got[32], tag[CACHE_TAG_SIZE];
  EVP_MAC_CTX *mac = NULL;
  EVP_MD_CTX *ctx;
  int64_t done;
  int have, r;

  r = verify_by_tag (ci, idx, clen, offset, len, buf, src);
  if (r == -1)
    return -1;
  if (r == 1) {
    if (atomic_load_explicit (&e->state, memory_order_acquire) != s1)
      return 0; /* evicted meanwhile: a miss */
    ci->stats.verified++;
    ci->stats.verified_tag++;
    atomic_fetch_or (&ci->local[idx], LOCAL_VERIFIED);
    touch (e);
    return 1;
  }

  ctx = EVP_MD_CTX_new ();
  if (ctx == NULL || !EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL)) {
    EVP_MD_CTX_free (ctx);
    report_error ("cache: SHA-256: out of memory");
    return -1;
  }
  /* With a key, the same pass makes the tag, recorded if the hash is
   * right: the next process need not hash the chunk.
   */
  mac = cache_tag_begin (ci, idx);
  done = verify_pass (ci, idx, clen, offset, len, buf, src, ctx, mac);
  EVP_DigestFinal_ex (ctx, got, NULL);
  EVP_MD_CTX_free (ctx);
  if (mac && cache_tag_end (mac, tag) == -1)
    mac = NULL;
  if (done == -1)
    return -1;

  have = 0;
  if (ci->expected) {
    have = ci->expected (ci->expected_opaque, idx, want);
    if (have == -1)
      return -1;
  }
  /* NB: the hash, like the bytes, is read before the state is checked
   * again: if the chunk was evicted meanwhile (and maybe stored again,
   * its hash rewritten), neither is used.
   */
  if (!have)
    cache_hash_load (want, e->sha256);
  if (atomic_load_explicit (&e->state, memory_order_acquire) != s1)
    return 0; /* evicted meanwhile: a miss */

  if (done != clen || memcmp (want, got, 32) != 0) {
    ci->stats.verify_failed++;
    report_debug ("cache: %s: chunk %" PRIu64 " is %s: dropping it", ci->path,
                  idx, done != clen ? "short" : "damaged (hash mismatch)");
    if (cache_evict_chunk (ci, idx, s1) == -1)
      return -1;
    return 0;
  }

  /* NB: only bytes the manifest vouches for (cache-tags.c). */
  if (mac && have)
    cache_tag_put (ci, idx, tag);
  ci->stats.verified++;
  atomic_fetch_or (&ci->local[idx], LOCAL_VERIFIED);
  touch (e);
  return 1;
}

static int
read_verify (struct cache_image *ci, uint64_t idx, uint32_t s1, uint32_t offset,
             uint32_t len, void *buf)
{
  uint32_t clen = chunk_len (ci, idx);
  struct verify_source src = { NULL, 0 };
  struct cache_resident_slot *slot;
  int r;

  slot = load_slot (ci, idx, clen, &src.bytes);
  if (src.bytes == -1)
    return -1;
  if (slot)
    src.whole = slot->buf;
  else {
    /* NB: the data file has no readahead (cache_no_readahead): ask for
     * the whole chunk in one request, or each piece would be a disk
     * read of its own.
     */
    posix_fadvise (ci->data_fd, idx * ci->chunk_size, clen,
                   POSIX_FADV_WILLNEED);
  }
  r = check_chunk (ci, idx, s1, offset, len, buf, &src);
  if (slot) {
    if (r == 1)
      memcpy (buf, slot->buf + offset, len);
    cache_resident_loaded (&ci->resident, slot, r == 1, s1 & ~STATE_PRESENT,
                           clen);
  }
  else if (r == 1)
    /* NB: kept, not dropped: the reads that follow (the rest of the
     * chunk, as a rule) find it in the page cache (cache-pages.c).  A
     * chunk found damaged was evicted, which dropped its pages.
     */
    cache_pages_keep (&ci->pages, idx);
  return r;
}

/* Become the thread that verifies chunk idx (true), or wait until the
 * one that is has finished (false: then look at the chunk again).  The
 * kernel's readahead above the NBD device sends several reads of one
 * chunk at once, and each would otherwise read and hash it whole.
 */
static bool
verify_claim (struct cache_image *ci, uint64_t idx)
{
  struct timespec ts;

  if (!(atomic_fetch_or (&ci->local[idx], LOCAL_VERIFYING) & LOCAL_VERIFYING))
    return true;
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&ci->verify_lock);
  while (atomic_load (&ci->local[idx]) & LOCAL_VERIFYING) {
    /* NB: timed: a store of the chunk (evicted by another process and
     * fetched again meanwhile) rewrites its flags without a wake-up.
     */
    clock_gettime (CLOCK_REALTIME, &ts);
    ts.tv_nsec += 10 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait (&ci->verify_done, &ci->verify_lock, &ts);
  }
  return false;
}

static void
verify_release (struct cache_image *ci, uint64_t idx)
{
  atomic_fetch_and (&ci->local[idx], ~LOCAL_VERIFYING);
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&ci->verify_lock);
  pthread_cond_broadcast (&ci->verify_done);
}

/* A read of a chunk this process has verified (or stored), present in
 * state s1, out of its resident slot (cache-resident.c), or, for a read
 * of the whole chunk, by loading it into one.  The bytes copied (short
 * if the data file is), -2 if neither (read it through the page cache),
 * or -1.  The caller checks the chunk's state afterwards: a slot is
 * published only if it had not changed meanwhile, present all along.
 * NB: never for a chunk that is only pending (stored here, not yet
 * recorded): another process may have stored, recorded and evicted it
 * meanwhile, punching the bytes we wrote, and a slot loaded then, of
 * zeros, would have the generation under which the chunk is present
 * once it is stored again.
 */
static ssize_t
read_resident (struct cache_image *ci, uint64_t idx, uint32_t s1,
               uint32_t offset, uint32_t len, void *buf)
{
  struct cache_resident_slot *slot;
  uint32_t clen = chunk_len (ci, idx), s2, gen = s1 & ~STATE_PRESENT;
  int64_t n;

  if (!(s1 & STATE_PRESENT))
    return -2;
  if (cache_resident_copy (&ci->resident, idx, gen, offset, len, buf))
    return len;
  if (len != clen)
    return -2;
  slot = load_slot (ci, idx, clen, &n);
  if (n == -1)
    return -1;
  if (slot == NULL)
    return -2;
  memcpy (buf, slot->buf, n);
  s2 = atomic_load_explicit (&ci->entries[idx].state, memory_order_acquire);
  cache_resident_loaded (&ci->resident, slot, n == clen && s2 == s1, gen, n);
  return n;
}

/* cache_read, counted in the image's hit and miss counters or not. */
static int
read_chunk (struct cache_image *ci, uint64_t idx, uint32_t offset, uint32_t len,
            void *buf, bool count)
{
  struct map_entry *e;
  uint32_t local, s1, s2;
  enum cache_pages_use use;
  ssize_t r;

  if (idx >= ci->nr_chunks || (uint64_t) offset + len > chunk_len (ci, idx)) {
    report_error ("cache: read out of range: chunk %" PRIu64, idx);
    return -1;
  }
  e = &ci->entries[idx];
again:
  local = atomic_load (&ci->local[idx]);

  s1 = atomic_load_explicit (&e->state, memory_order_acquire);
  if (!(s1 & STATE_PRESENT) && !(local & LOCAL_PENDING)) {
    if (count)
      count_read (ci, false, len);
    return 0;
  }

  if ((s1 & STATE_PRESENT) && !(local & LOCAL_VERIFIED)) {
    if (!verify_claim (ci, idx))
      goto again; /* another thread verified it (or gave up) */
    r = read_verify (ci, idx, s1, offset, len, buf);
    verify_release (ci, idx);
    if (r != -1)
      if (count)
        count_read (ci, r == 1, len);
    return r;
  }

  r = read_resident (ci, idx, s1, offset, len, buf);
  if (r == -1)
    return -1;
  if (r == -2) {
    use = cache_pages_note_read (&ci->pages, idx);
    if (use == CACHE_PAGES_LOAD)
      posix_fadvise (ci->data_fd, idx * ci->chunk_size, chunk_len (ci, idx),
                     POSIX_FADV_WILLNEED);
    ci->stats.part_reads++;
    r = pread_full (ci->data_fd, buf, len, idx * ci->chunk_size + offset);
    if (r == -1) {
      report_error ("cache: %s/data: read: %m", ci->path);
      return -1;
    }
    if (use == CACHE_PAGES_DROP)
      cache_drop_pages (ci->data_fd, idx * ci->chunk_size + offset, len);
  }
  s2 = atomic_load_explicit (&e->state, memory_order_acquire);
  if (s1 & STATE_PRESENT) {
    if (s2 != s1)
      goto miss; /* evicted underneath us */
  }
  else if (local_gen (s2) != (local & ~LOCAL_FLAGS))
    goto miss; /* pending chunk, evicted meanwhile */
  if (r != len) {
    /* The data file was truncated behind our back. */
    if (s1 & STATE_PRESENT)
      cache_evict_chunk (ci, idx, s1);
    goto miss;
  }
  touch (e);
  if (count)
    count_read (ci, true, len);
  return 1;

miss:
  if (count)
    count_read (ci, false, len);
  return 0;
}

int
cache_read (struct cache_image *ci, uint64_t idx, uint32_t offset, uint32_t len,
            void *buf)
{
  return read_chunk (ci, idx, offset, len, buf, true);
}

int
cache_read_uncounted (struct cache_image *ci, uint64_t idx, uint32_t offset,
                      uint32_t len, void *buf)
{
  return read_chunk (ci, idx, offset, len, buf, false);
}

bool
cache_contains (struct cache_image *ci, uint64_t idx)
{
  if (idx >= ci->nr_chunks)
    return false;
  return (atomic_load (&ci->entries[idx].state) & STATE_PRESENT) ||
      (atomic_load (&ci->local[idx]) & LOCAL_PENDING);
}

/* With the directory locked: make room for len more bytes under the cap.
 * Returns 0 if there is room, 1 if not (everything evictable is gone).
 */
static int
make_room_locked (struct cache_image *ci, uint32_t len)
{
  struct cache_dir *d = ci->dir;
  uint64_t usage, target, slack, evicted = 0;

  if (d->cap == 0)
    return 0;
  if (d->cap < len)
    return 1;
  if (cache_dir_usage_locked (d, &usage) == -1)
    return -1;
  if (usage + len <= d->cap)
    return 0;

  /* Evict a little more than needed so that the next stores do not each
   * pay for a scan.
   */
  slack = d->cap / 20;
  if (slack < len)
    slack = len;
  target = d->cap > slack ? d->cap - slack : 0;
  if (cache_evict_locked (d, usage, target, &evicted) == -1)
    return -1;
  ci->stats.evicted += evicted;
  if (cache_dir_usage_locked (d, &usage) == -1)
    return -1;
  return usage + len <= d->cap ? 0 : 1;
}

/* A write failed: free what it allocated and turn caching off for a
 * while.  Reads go on from the origin.  Warn once per episode.
 */
static void
store_failed_locked (struct cache_image *ci, int err)
{
  struct cache_dir *d = ci->dir;

  /* NB: no punch: another process may hold this chunk written but not
   * yet recorded.  Our partial bytes are never recorded, and are punched
   * by the next process that opens the image alone.
   */
  d->store_disabled_until = now_wall_seconds () + STORE_RETRY_SECONDS;
  if (!d->warned_full) {
    d->warned_full = true;
    errno = err;
    report_warning ("cache: %s/data: cannot write (%m): serving "
                    "from the origin without caching for now",
                    ci->path);
  }
}

/* Whether this process's batch of written chunks is due a flush. */
static bool
pending_full (struct cache_image *ci)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&ci->pending_lock);
  return ci->nr_pending >= ci->max_pending;
}

int
cache_write_buffer (void *opaque, struct cache_image *ci, uint64_t offset,
                    uint32_t len)
{
  if (ci->data_direct_fd >= 0 && (uintptr_t) opaque % DIRECT_ALIGN == 0 &&
      offset % DIRECT_ALIGN == 0 && len % DIRECT_ALIGN == 0) {
    if (pwrite_full (ci->data_direct_fd, opaque, len, offset) == 0)
      return 0;
    if (errno != EINVAL)
      return -1;
    /* A disk with larger blocks: write it through the page cache. */
  }
  return pwrite_full (ci->data_fd, opaque, len, offset);
}

int
cache_store (struct cache_image *ci, uint64_t idx, const void *data,
             uint32_t len)
{
  unsigned char sha[32];

  if (idx >= ci->nr_chunks || len != chunk_len (ci, idx)) {
    report_error ("cache: store of chunk %" PRIu64
                  " with wrong length %" PRIu32,
                  idx, len);
    return -1;
  }
  SHA256 (data, len, sha); /* outside the lock */
  return cache_store_hashed (ci, idx, data, len, sha);
}

int
cache_store_hashed (struct cache_image *ci, uint64_t idx, const void *data,
                    uint32_t len, const unsigned char sha256[32])
{
  int r = cache_store_with (ci, idx, len, sha256, cache_write_buffer,
                            (void *) data);

  /* NB: after the store (by us, or by another process meanwhile: the
   * same bytes): a chunk's tag never changes (cache-tags.c), so it may
   * land before or after the chunk is recorded, and one of a chunk that
   * is not stored is never looked at.
   */
  if (r == 0)
    cache_tag_chunk (ci, idx, data, len);
  return r;
}

/* Rule 1 of docs/cache-format.md, whoever provides the bytes. */
int
cache_store_with (struct cache_image *ci, uint64_t idx, uint32_t len,
                  const unsigned char sha256[32], cache_write_fn write_fn,
                  void *opaque)
{
  struct cache_dir *d = ci->dir;
  struct map_entry *e;
  uint64_t off;
  uint32_t s0;
  int r;

  if (idx >= ci->nr_chunks || len != chunk_len (ci, idx)) {
    report_error ("cache: store of chunk %" PRIu64
                  " with wrong length %" PRIu32,
                  idx, len);
    return -1;
  }
  e = &ci->entries[idx];
  off = idx * ci->chunk_size;

  if (pending_full (ci) && cache_flush (ci) == -1)
    return -1;

  if (cache_dir_lock (d) == -1)
    return -1;
  if (d->store_disabled_until > now_wall_seconds ()) {
    r = 1;
    goto out;
  }
  r = make_room_locked (ci, len);
  if (r != 0)
    goto out;

  s0 = atomic_load (&e->state);
  if (s0 & STATE_PRESENT)
    goto out; /* another process stored it already */

  if (write_fn (opaque, ci, off, len) == -1) {
    store_failed_locked (ci, errno ? errno : EIO);
    r = 1;
    goto out;
  }
  /* NB: start writing the bytes back now, under the lock: that is when
   * the file system allocates their blocks (delayed allocation).  While
   * it does, a data file's st_blocks, our measure of usage, briefly
   * misses them (ext4), so it must not happen while another process
   * measures, as it could when our later fdatasync did it.
   */
  if (sync_file_range (ci->data_fd, off, len, SYNC_FILE_RANGE_WRITE) == -1)
    report_debug ("cache: %s/data: sync_file_range: %m", ci->path);
  hash_store (e->sha256, sha256);
  d->warned_full = false; /* warn again if it fills again */
  cache_dir_unlock (d);

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&ci->pending_lock);
    /* NB: threads that passed the flush check above together can all
     * get here with the batch full.
     */
    if (ci->nr_pending == ci->max_pending) {
      size_t m = ci->max_pending * 2;
      struct pending *p = realloc (ci->pending, m * sizeof *p);

      if (p == NULL) {
        report_error ("realloc: %m");
        return -1;
      }
      ci->pending = p;
      ci->max_pending = m;
    }
    ci->pending[ci->nr_pending].idx = idx;
    ci->pending[ci->nr_pending].state = s0;
    ci->nr_pending++;
    atomic_store (&ci->local[idx],
                  local_gen (s0) | LOCAL_PENDING | LOCAL_VERIFIED);
  }
  ci->stats.stored++;
  cache_pages_stored (&ci->pages, idx);
  return 0;

out:
  cache_dir_unlock (d);
  if (r == 1)
    ci->stats.store_skipped++;
  return r;
}

unsigned
cache_pending (struct cache_image *ci)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&ci->pending_lock);
  return ci->nr_pending;
}

int
cache_flush (struct cache_image *ci)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&ci->flush_lock);
  CLEANUP_FREE struct pending *batch = NULL;
  size_t i, n;
  int r = 0;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&ci->pending_lock);
    n = ci->nr_pending;
    if (n == 0)
      return 0;
    batch = malloc (n * sizeof *batch);
    if (batch == NULL) {
      report_error ("malloc: %m");
      return -1;
    }
    memcpy (batch, ci->pending, n * sizeof *batch);
    ci->nr_pending = 0;
  }

  /* The bytes must be durable before any of them is recorded. */
  if (fdatasync (ci->data_fd) == -1) {
    report_error ("cache: %s/data: fdatasync: %m", ci->path);
    r = -1;
  }
  /* Now clean, the pages of stores that went through the page cache can
   * go (those written with O_DIRECT have none).
   */
  for (i = 0; i < n; i++)
    cache_drop_pages (ci->data_fd, batch[i].idx * ci->chunk_size,
                      chunk_len (ci, batch[i].idx));

  for (i = 0; i < n; i++) {
    struct map_entry *e = &ci->entries[batch[i].idx];
    uint32_t s = batch[i].state;

    /* NB: the CAS fails if the chunk was evicted (its generation bumped,
     * and its bytes punched) since we wrote it: then it is forgotten.
     */
    if (r == 0 &&
        atomic_compare_exchange_strong (&e->state, &s,
                                        batch[i].state | STATE_PRESENT)) {
      touch (e);
      atomic_store (&ci->local[batch[i].idx], LOCAL_VERIFIED);
    }
    else
      atomic_store (&ci->local[batch[i].idx], 0);
  }
  return r;
}
