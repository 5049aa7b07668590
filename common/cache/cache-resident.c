/* accel: chunks one process reads whole, into memory of its own.
 *
 * Some reads need a chunk whole: the first read of a chunk by a process
 * checks it whole (cache-io.c), and a sequential reader asks for whole
 * chunks.  Through the page cache (fadvise WILLNEED, pread, DONTNEED)
 * each such read fills the page cache, copies out of it and drops it
 * again, which cost more than the disk read: verifying and serving
 * 1 GiB of 1 MiB chunks took 0.33 CPU-seconds on this machine so, and
 * 0.19 read with O_DIRECT into a reused buffer; serving without the
 * check 0.25 against 0.11.  So these reads load the chunk with O_DIRECT
 * into a slot of a small ring of "resident" chunks, and copy the part
 * asked for out of it, as do the reads of the chunk that follow while
 * it is there (the rest of a chunk verified for a small read).  The
 * least recently used slot nobody is reading is reused first; chunks
 * read again and again in small pieces are kept in the page cache
 * instead (cache-pages.c), where a larger ring costs no process memory.
 *
 * The ring holds at most CACHE_RESIDENT_BYTES (part of the memory bound,
 * README: Memory), so chunks larger than half of it are never resident:
 * their reads go through the page cache.  Buffers are allocated on
 * first use and kept until the image is closed, so they are faulted in
 * once.  A slot is keyed by the chunk and the generation it was loaded
 * under; readers check the chunk's state after copying, as after any
 * read, so an eviction meanwhile is seen.
 */

#include <stdlib.h>
#include <string.h>

#include "cache-internal.h"
#include "cleanup.h"

/* Alignment of the buffers: O_DIRECT's, the page size. */
#define RESIDENT_ALIGN 4096

void
cache_resident_init (struct cache_resident *r, uint32_t chunk_size)
{
  uint64_t n = CACHE_RESIDENT_BYTES / chunk_size;

  memset (r, 0, sizeof *r);
  pthread_mutex_init (&r->lock, NULL);
  pthread_cond_init (&r->loaded, NULL);
  r->chunk_size = chunk_size;
  /* NB: one slot would be taken from each reader by the next. */
  if (n < 2)
    n = 0;
  if (n > CACHE_RESIDENT_MAX)
    n = CACHE_RESIDENT_MAX;
  r->cap = n;
}

void
cache_resident_destroy (struct cache_resident *r)
{
  size_t i;

  /* NB: every slot, not cap: a test lowers cap. */
  for (i = 0; i < CACHE_RESIDENT_MAX; i++)
    free (r->slot[i].buf);
  pthread_cond_destroy (&r->loaded);
  pthread_mutex_destroy (&r->lock);
}

/* With r->lock held: the slot holding (or loading) chunk idx, or NULL. */
static struct cache_resident_slot *
slot_of (struct cache_resident *r, uint64_t idx)
{
  size_t i;

  for (i = 0; i < r->cap; i++)
    if (r->slot[i].idx1 == idx + 1)
      return &r->slot[i];
  return NULL;
}

int
cache_resident_copy (struct cache_resident *r, uint64_t idx, uint32_t gen,
                     uint32_t offset, uint32_t len, void *buf)
{
  struct cache_resident_slot *s;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&r->lock);
    for (;;) {
      s = slot_of (r, idx);
      if (s == NULL)
        return 0;
      if (!s->loading)
        break;
      pthread_cond_wait (&r->loaded, &r->lock);
    }
    if (s->gen != gen || (uint64_t) offset + len > s->len)
      return 0;
    s->pins++;
    s->used = ++r->clock;
  }
  /* NB: outside the lock: the slot is pinned, so nobody reloads it. */
  memcpy (buf, s->buf + offset, len);
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&r->lock);
    s->pins--;
  }
  return 1;
}

struct cache_resident_slot *
cache_resident_claim (struct cache_resident *r, uint64_t idx)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&r->lock);
  struct cache_resident_slot *s, *lru = NULL;
  size_t i;

  if (r->cap == 0)
    return NULL;
  /* The chunk's own slot if it has one (loaded under a generation that
   * is gone), else the least recently used slot nobody is reading: the
   * chunk whose reads are over, as a rule.
   */
  s = slot_of (r, idx);
  if (s != NULL && s->pins > 0)
    return NULL; /* being loaded or read: read the data file this time */
  for (i = 0; s == NULL && i < r->cap; i++)
    if (r->slot[i].pins == 0 && (lru == NULL || r->slot[i].used < lru->used))
      lru = &r->slot[i];
  if (s == NULL)
    s = lru;
  if (s == NULL)
    return NULL;
  if (s->buf == NULL &&
      posix_memalign ((void **) &s->buf, RESIDENT_ALIGN, r->chunk_size) != 0) {
    s->buf = NULL;
    return NULL; /* NB: only slower: the read goes to the data file */
  }
  s->idx1 = idx + 1;
  s->loading = true;
  s->pins = 1;
  s->len = 0;
  s->used = ++r->clock;
  return s;
}

void
cache_resident_loaded (struct cache_resident *r, struct cache_resident_slot *s,
                       bool ok, uint32_t gen, uint32_t len)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&r->lock);
  s->loading = false;
  s->pins--;
  if (ok) {
    s->gen = gen;
    s->len = len;
  }
  else
    s->idx1 = 0;
  pthread_cond_broadcast (&r->loaded);
}
