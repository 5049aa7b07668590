/* accel: structures shared by the cache library's files, and their
 * order.  Not for users of the cache: they see cache.h.
 */

#ifndef ACCEL_CACHE_INTERNAL_H
#define ACCEL_CACHE_INTERNAL_H

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/evp.h>

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

  /* Reads of the image's chunks (cache_read), added to by every process
   * serving it, for accel-cache stat.  NB: in the header's reserved bytes,
   * which maps written before they existed hold as zeros, so the format
   * version did not change (docs/cache-format.md, revision 2).
   */
  _Atomic uint64_t hit_reads, hit_bytes;
  _Atomic uint64_t miss_reads, miss_bytes;
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

/* Per-process flags of a chunk (struct cache_image.local).  Bits 3-31
 * hold the map state seen when a pending chunk was written, so a read of
 * a pending chunk can tell whether an eviction happened since.
 * LOCAL_VERIFYING: a thread is reading the chunk whole to check its hash
 * (the others wait for it rather than do the same).
 */
#define LOCAL_VERIFIED 1u
#define LOCAL_PENDING 2u
#define LOCAL_VERIFYING 4u
#define LOCAL_FLAGS (LOCAL_VERIFIED | LOCAL_PENDING | LOCAL_VERIFYING)
#define LOCAL_GEN_SHIFT 3

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

  /* The node key (cache_dir_set_key), set before images are opened and
   * only read after: what chunks' at-rest tags are keyed by
   * (cache-tags.c).
   */
  bool has_key;
  unsigned char key[32];
  EVP_MAC *tag_mac; /* Poly1305 */
};

/* Page cache bytes of a data file one process keeps (cache-pages.c). */
#define CACHE_KEPT_BYTES (16 * 1024 * 1024)
#define CACHE_KEPT_MAX 16
#define CACHE_SEEN_SLOTS 16

struct cache_pages {
  /* lock protects the two rings: kept (chunks kept in the page cache)
   * and seen (chunks read once lately), each entry a chunk index + 1
   * (0: empty), the next slot to reuse after each.
   */
  pthread_mutex_t lock;
  uint64_t kept[CACHE_KEPT_MAX];
  size_t cap, next;
  uint64_t seen[CACHE_SEEN_SLOTS];
  size_t seen_next;
  int fd;
  uint32_t chunk_size;
};

/* Memory for chunks one process reads whole (cache-resident.c): at most
 * this many bytes, in at most so many slots.
 */
#define CACHE_RESIDENT_BYTES (4 * 1024 * 1024)
#define CACHE_RESIDENT_MAX 16

/* One resident chunk.  The fields are the ring's lock's, but for the
 * bytes in buf, which are written only by the slot's loader and read
 * only by those who pinned it once it was loaded.
 */
struct cache_resident_slot {
  uint64_t idx1; /* chunk index + 1, 0: empty */
  uint32_t gen; /* the chunk's state, less STATE_PRESENT, when loaded */
  uint32_t len; /* bytes in buf */
  unsigned pins; /* readers copying out of buf, and its loader */
  uint64_t used; /* the ring's clock at its last use */
  bool loading;
  unsigned char *buf; /* chunk_size bytes, aligned for O_DIRECT */
};

struct cache_resident {
  /* lock protects the slots; loaded is signalled when a slot's load
   * ends.
   */
  pthread_mutex_t lock;
  pthread_cond_t loaded;
  struct cache_resident_slot slot[CACHE_RESIDENT_MAX];
  size_t cap;
  uint64_t clock; /* ticks at each use of a slot */
  uint32_t chunk_size;
};

struct cache_image {
  struct cache_dir *dir;
  char *path; /* DIR/images/ID */
  char *identity;
  uint64_t image_size;
  uint32_t chunk_size;
  uint64_t nr_chunks;
  int data_fd, map_fd, serve_fd;
  /* The data file opened again with O_DIRECT, for stores from aligned
   * buffers (cache_write_buffer); -1 where the file system refuses
   * O_DIRECT (tmpfs).
   */
  int data_direct_fd;
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

  /* verify_lock and verify_done: threads waiting for another's first
   * read of a chunk (LOCAL_VERIFYING) sleep on verify_done.
   */
  pthread_mutex_t verify_lock;
  pthread_cond_t verify_done;

  struct cache_pages pages; /* of data_fd */
  struct cache_resident resident;

  /* DIR/images/ID/tags mapped shared (cache-tags.c), CACHE_TAG_SIZE
   * bytes per chunk, or NULL (no key, or no file); tag_id is the SHA-256
   * of identity that tags are keyed by.
   */
  _Atomic unsigned char *tags;
  unsigned char tag_id[32];

  struct {
    _Atomic uint64_t hits, misses, stored, store_skipped;
    _Atomic uint64_t verified, verified_tag, verify_failed, evicted;
    _Atomic uint64_t loaded, part_reads;
  } stats;
};

/* An image's map and data file opened by name, without taking part in
 * serving it (no serve.lock): what eviction and accel-cache work on.
 */
struct cache_view {
  char id[65]; /* the directory's name */
  int map_fd, data_fd;
  struct map_header *map; /* the whole map file, mmap'd shared */
  size_t map_len;
  struct map_entry *entries; /* inside map */
  /* Entries [dirty_lo, dirty_hi) hold states this process changed: they
   * are msync'd before any hole is punched.
   */
  uint64_t dirty_lo, dirty_hi;
};

/* A chunk to evict, and its state when it was chosen. */
struct cache_victim {
  struct cache_view *v;
  uint64_t idx;
  uint32_t state;
};

/* The files below are in layers, each using only those above it:
 *   cache-pages.c  what of a data file stays in the page cache
 *   cache-resident.c  chunks read whole into memory
 *   cache-dir.c    the directory, its lock, cap record and usage
 *   cache-view.c   an image's map and data opened by name
 *   cache-evict.c  eviction, the one way chunks leave
 *   cache-tags.c   at-rest tags of a served image's chunks
 *   cache-io.c     reading and storing chunks of a served image
 *   cache-image.c  opening (and recovering) a served image
 * and, on top, each using any of those: cache-dedup.c, cache-list.c,
 * cache-admin.c, cache-verify.c.
 */

/* Cap on images in one directory that are looked at. */
#define CACHE_MAX_IMAGES 4096

/* cache-dir.c: the directory lock (flock on DIR/lock, and store_lock
 * within the process), usage in bytes with it held, punching a chunk's
 * hole, and the LRU clock (32-bit seconds, as the map stores them).
 */
int cache_dir_lock (struct cache_dir *d);
void cache_dir_unlock (struct cache_dir *d);
int cache_dir_usage_locked (struct cache_dir *d, uint64_t *bytes);
int cache_punch (int fd, uint64_t offset, uint64_t len);
uint32_t cache_now (void);

/* cache-view.c: whether a name in DIR/images is an image's (64 lowercase
 * hex digits), and DIR/images opened for readdir (NULL: error reported).
 */
bool cache_is_image_id (const char *name);
DIR *cache_images_opendir (struct cache_dir *d);

/* cache-view.c: open the view of image id (a directory in DIR/images;
 * read-only unless writable).  1 if it is a valid map of this format, 0
 * if not (the view is then closed: nothing to evict or list), -1 error.
 */
int cache_view_open (int images_fd, const char *id, bool writable,
                     struct cache_view *v);
void cache_view_close (struct cache_view *v);
uint32_t cache_view_chunk_len (const struct cache_view *v, uint64_t idx);

/* cache-view.c: the valid views of every image (only_id: of that one),
 * in a malloc'd array.  0, or -1 (error reported).
 */
int cache_views_open (struct cache_dir *d, const char *only_id, bool writable,
                      struct cache_view **views, size_t *n);
void cache_views_close (struct cache_view *views, size_t n);

/* cache-view.c: true if a process serves image id now.  With the
 * directory lock held, so that nobody is between opening the image and
 * taking its serve.lock.  If keep_fd is not NULL and nobody serves it,
 * *keep_fd holds serve.lock exclusively (close it to let go).
 */
bool
cache_image_serving_locked (struct cache_dir *d, const char *id, int *keep_fd);

/* cache-view.c: a copy of a chunk's hash out of the map. */
void cache_hash_load (unsigned char out[32], const _Atomic unsigned char *hash);

/* cache-evict.c: the one way chunks leave the cache.  With the
 * directory lock held: mark each victim absent, if its state is still
 * the one it was chosen in (bumping the generation, so readers in every
 * process notice), msync the marked entries, then punch the chunks'
 * holes.  Adds what was evicted to *res.
 */
int cache_evict_victims_locked (struct cache_victim *victims, size_t n,
                                struct cache_evict_result *res);

/* cache-evict.c: with the directory locked, evict present chunks, those
 * of images nobody serves first, each group least recently used first,
 * until need bytes are freed (UINT64_MAX: every one
 * that matches): of image only_id (NULL: any), last used before `before`
 * (0: any time).
 */
int cache_evict_lru_locked (struct cache_dir *d, const char *only_id,
                            uint32_t before, uint64_t need,
                            struct cache_evict_result *res);

/* cache-evict.c: with the directory locked, evict chunks (as
 * cache_evict_lru_locked chooses them) until usage is at most target.  Adds the number of chunks
 * evicted to *nr_evicted if it is not NULL.
 */
int cache_evict_locked (struct cache_dir *d, uint64_t usage, uint64_t target,
                        uint64_t *nr_evicted);

/* cache-evict.c: drop one chunk of a served image (found damaged or
 * short); takes the directory lock.
 */
int cache_evict_chunk (struct cache_image *ci, uint64_t idx, uint32_t state);

/* cache-tags.c: the tags file of an image opened and closed (opening
 * leaves ci->tags NULL when there is no key or no file), and one tag
 * made (begin, EVP_MAC_update, end), recorded and checked.
 */
#define CACHE_TAG_SIZE 16
void cache_tags_open (struct cache_image *ci);
void cache_tags_close (struct cache_image *ci);
EVP_MAC_CTX *cache_tag_begin (struct cache_image *ci, uint64_t idx);
int cache_tag_end (EVP_MAC_CTX *ctx, unsigned char tag[CACHE_TAG_SIZE]);
void cache_tag_put (struct cache_image *ci, uint64_t idx,
                    const unsigned char tag[CACHE_TAG_SIZE]);
bool cache_tag_matches (struct cache_image *ci, uint64_t idx,
                        const unsigned char tag[CACHE_TAG_SIZE]);
bool cache_tag_recorded (struct cache_image *ci, uint64_t idx);
void cache_tag_chunk (struct cache_image *ci, uint64_t idx, const void *data,
                      uint32_t len);

/* cache-io.c: store chunk idx (len bytes hashing to sha256, which the
 * caller has verified) by following rule 1 of docs/cache-format.md;
 * write_fn puts the bytes at offset of ci's data file, with the
 * directory lock held.  It returns 0, or -1 with errno set (a failed
 * write: caching is turned off for a while, as for any store).
 * Returns as cache_store.
 */
typedef int (*cache_write_fn) (void *opaque, struct cache_image *ci,
                               uint64_t offset, uint32_t len);
int cache_store_with (struct cache_image *ci, uint64_t idx, uint32_t len,
                      const unsigned char sha256[32], cache_write_fn write_fn,
                      void *opaque);

/* cache_write_fn that writes the buffer opaque (what cache_store uses):
 * with O_DIRECT when the buffer, offset and length allow it, so that the
 * bytes skip the page cache (and the kernel's copy into it).
 */
int cache_write_buffer (void *opaque, struct cache_image *ci, uint64_t offset,
                        uint32_t len);

/* cache-pages.c: drop [offset, offset + len) of a data file from the
 * page cache after reading or writing it: the file system's own page
 * cache above the block device already holds the hot bytes, and a second
 * copy here would halve what a node's RAM caches (docs/architecture.md).
 * Dirty pages are not dropped (written back first by cache_flush's
 * fdatasync).
 */
void cache_drop_pages (int fd, uint64_t offset, uint64_t len);

/* cache-pages.c: turn the kernel's readahead off on a data file's fd that
 * is read with cache_drop_pages after each read.
 */
void cache_no_readahead (int fd);

/* cache-pages.c: the chunks of a served image whose pages one process
 * keeps in the page cache for the reads that follow (a ring of at most
 * CACHE_KEPT_BYTES), and the chunks read once lately.
 */
void cache_pages_init (struct cache_pages *p, uint32_t chunk_size);
void cache_pages_destroy (struct cache_pages *p);

/* cache-pages.c: what to do with the pages of a read of chunk idx that is
 * about to be made: KEEP them (the chunk is kept), LOAD the whole chunk
 * first with one request and keep it (it was read lately: more reads of
 * it will follow), or DROP them after the read.
 */
enum cache_pages_use {
  CACHE_PAGES_DROP,
  CACHE_PAGES_LOAD,
  CACHE_PAGES_KEEP,
};
enum cache_pages_use
cache_pages_note_read (struct cache_pages *p, uint64_t idx);

/* cache-pages.c: chunk idx was just stored: count it as read once. */
void cache_pages_stored (struct cache_pages *p, uint64_t idx);

/* cache-pages.c: keep chunk idx, just read whole, in the page cache. */
void cache_pages_keep (struct cache_pages *p, uint64_t idx);

/* cache-resident.c: the chunks of a served image one process has read
 * whole into memory (at most CACHE_RESIDENT_BYTES), for the reads of
 * them that follow.
 */
void cache_resident_init (struct cache_resident *r, uint32_t chunk_size);
void cache_resident_destroy (struct cache_resident *r);

/* cache-resident.c: copy [offset, offset + len) of chunk idx out of its
 * slot if it is resident, loaded under generation gen (a chunk's state
 * less STATE_PRESENT): 1, else 0.  Waits for a load of the chunk under
 * way.  The caller checks the chunk's state afterwards, as after any
 * read.
 */
int cache_resident_copy (struct cache_resident *r, uint64_t idx, uint32_t gen,
                         uint32_t offset, uint32_t len, void *buf);

/* cache-resident.c: a slot to load chunk idx into, pinned and marked
 * loading (the least recently used that nobody is reading), or NULL if
 * there is none
 * (every slot busy, or chunks too large for any).  The loader fills
 * buf, then ends with cache_resident_loaded: ok with the generation the
 * bytes belong to, or not (the slot is emptied).
 */
struct cache_resident_slot *
cache_resident_claim (struct cache_resident *r, uint64_t idx);
void
cache_resident_loaded (struct cache_resident *r, struct cache_resident_slot *s,
                       bool ok, uint32_t gen, uint32_t len);

#endif /* ACCEL_CACHE_INTERNAL_H */
