/* accel: what of a cache's data file stays in the page cache.
 *
 * The file system above the NBD device keeps the hot bytes in its own
 * page cache, so the cache's data file should keep none: a second copy
 * would halve what a node's RAM holds.  Yet dropping every read's pages
 * at once makes each read of a chunk a disk read of its own: a reader
 * of small files, or the kernel's 128 KiB readahead over a 1 MiB chunk,
 * sends many reads to one chunk, and in a VM every disk request costs
 * an exit and an interrupt (reading 20,000 small files warm, nbdkit's
 * CPU per GiB: 15 s without the ring below, 9.4 with it, in runs that
 * also wrote a debug line per request; 6.5 without those, where the
 * same requests cost nbdkit 6.6 with no plugin work at all).
 *
 * So a chunk read more than once in a short while is brought in whole,
 * with one request, and kept for the reads that follow: a small ring
 * of such "kept" chunks per served image, the oldest dropped when
 * a new one comes in, all dropped at close.  A chunk read once (random
 * reads) is dropped at once, as before, and costs no more than it
 * asked for.  A chunk this process has just stored (fetched for a
 * client that reads on: the rest of a file, the next small files)
 * counts as read once, so that its next read brings it in whole with
 * one request instead of two (the stored bytes skipped the page
 * cache: O_DIRECT).  Chunks read whole (to verify them, or asked for
 * whole) skip the page cache altogether: cache-resident.c.  The ring
 * holds at most CACHE_KEPT_BYTES of page cache per process, which
 * stays far under the page cache target (64 MiB after a 256 MiB read).
 */

#include <fcntl.h>
#include <stdint.h>
#include <string.h>

#include "cache-internal.h"
#include "cleanup.h"

/* Pages are 4 KiB where nodes run; larger pages would be dropped in part. */
#define DROP_PAGE 4096

void
cache_drop_pages (int fd, uint64_t offset, uint64_t len)
{
  /* NB: every page the range touches: the kernel drops only the pages
   * wholly inside it, which would keep the page of a small read.
   */
  uint64_t start = offset / DROP_PAGE * DROP_PAGE;
  uint64_t end = (offset + len + DROP_PAGE - 1) / DROP_PAGE * DROP_PAGE;

  /* NB: only advice: a failure costs RAM, not correctness. */
  posix_fadvise (fd, start, end - start, POSIX_FADV_DONTNEED);
}

void
cache_no_readahead (int fd)
{
  /* NB: readahead would bring in pages that are never read, or were
   * read and dropped already (by threads reading out of order), and
   * nothing would drop them: into all-zero chunks' holes, past the
   * chunk being verified, in large folios that straddle two chunks.
   * Chunks read more than once are brought in whole instead (above).
   */
  posix_fadvise (fd, 0, 0, POSIX_FADV_RANDOM);
}

void
cache_pages_init (struct cache_pages *p, uint32_t chunk_size)
{
  uint64_t n = CACHE_KEPT_BYTES / chunk_size;

  memset (p, 0, sizeof *p);
  pthread_mutex_init (&p->lock, NULL);
  p->fd = -1; /* set once the data file is open */
  p->chunk_size = chunk_size;
  if (n < 2)
    n = 2; /* NB: one chunk would be dropped by the next reader's */
  if (n > CACHE_KEPT_MAX)
    n = CACHE_KEPT_MAX;
  p->cap = n;
}

/* Forget every kept chunk, dropping its pages. */
void
cache_pages_destroy (struct cache_pages *p)
{
  size_t i;

  for (i = 0; i < p->cap; i++)
    if (p->kept[i] && p->fd >= 0)
      cache_drop_pages (p->fd, (p->kept[i] - 1) * p->chunk_size, p->chunk_size);
  pthread_mutex_destroy (&p->lock);
}

/* Slots hold chunk index + 1, 0 for none. */
static bool
slot_find (const uint64_t *slots, size_t n, uint64_t idx)
{
  size_t i;

  for (i = 0; i < n; i++)
    if (slots[i] == idx + 1)
      return true;
  return false;
}

/* With p->lock held: note idx as read once lately. */
static void
seen_add_locked (struct cache_pages *p, uint64_t idx)
{
  p->seen[p->seen_next] = idx + 1;
  p->seen_next = (p->seen_next + 1) % CACHE_SEEN_SLOTS;
}

/* With p->lock held: keep idx, returning the chunk it pushed
 * out (index + 1, or 0) for the caller to drop outside the lock.
 */
static uint64_t
keep_locked (struct cache_pages *p, uint64_t idx)
{
  uint64_t old = p->kept[p->next];

  p->kept[p->next] = idx + 1;
  p->next = (p->next + 1) % p->cap;
  return old;
}

static void
drop_old (struct cache_pages *p, uint64_t old, uint64_t keep)
{
  if (old && old != keep + 1)
    cache_drop_pages (p->fd, (old - 1) * p->chunk_size, p->chunk_size);
}

enum cache_pages_use
cache_pages_note_read (struct cache_pages *p, uint64_t idx)
{
  uint64_t old;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&p->lock);
    if (slot_find (p->kept, p->cap, idx))
      return CACHE_PAGES_KEEP;
    if (!slot_find (p->seen, CACHE_SEEN_SLOTS, idx)) {
      seen_add_locked (p, idx);
      return CACHE_PAGES_DROP;
    }
    old = keep_locked (p, idx);
  }
  drop_old (p, old, idx);
  return CACHE_PAGES_LOAD;
}

void
cache_pages_stored (struct cache_pages *p, uint64_t idx)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&p->lock);
  if (!slot_find (p->kept, p->cap, idx) &&
      !slot_find (p->seen, CACHE_SEEN_SLOTS, idx))
    seen_add_locked (p, idx);
}

void
cache_pages_keep (struct cache_pages *p, uint64_t idx)
{
  uint64_t old;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&p->lock);
    if (slot_find (p->kept, p->cap, idx))
      return;
    old = keep_locked (p, idx);
  }
  drop_old (p, old, idx);
}
