/* accel: chunks one process holds in memory for the reads that follow.
 *
 * Many reads go to one chunk: a reader of small files, or the kernel's
 * 128 KiB readahead over a 1 MiB chunk.  Were each a read of the data
 * file, each would be a disk request of its own (the data file stays
 * out of the page cache, cache-pages.c), and in a VM every disk request
 * costs an exit and an interrupt: reading 20,000 small files warm cost
 * nbdkit 15 s of CPU per GiB so, against 6.5 for those requests with no
 * plugin work at all.
 *
 * So a chunk read more than once in a short while is read whole, with
 * one request, into a buffer of a small ring of "resident" chunks, and
 * the reads that follow copy out of it.  So is a chunk read for the
 * first time by this process, which is read whole to verify it anyway
 * (cache-io.c).  The cache-io.c loader reads with O_DIRECT: the disk
 * writes straight into the buffer, with no page cache to fill, copy out
 * of and drop again (a restart's first read of 1 GiB: 0.33 CPU-seconds
 * through the page cache, 0.19 so).  A chunk read once (random reads)
 * is not loaded and costs no more than was asked for.  A chunk this
 * process has just stored (fetched for a client that reads on: the rest
 * of a file, the next small files) counts as read once, so that its
 * next read loads it whole.
 *
 * The ring holds at most CACHE_RESIDENT_BYTES (part of the memory bound,
 * README: Memory), so chunks larger than half of it are never resident:
 * their reads go to the data file.  Buffers are allocated on first use
 * and kept until the image is closed, so they are faulted in once.
 * A slot is keyed by the chunk and the generation it was loaded under;
 * readers check the chunk's state after copying, as after any read, so
 * an eviction meanwhile is seen.
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

  for (i = 0; i < r->cap; i++)
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
  }
  /* NB: outside the lock: the slot is pinned, so nobody reloads it. */
  memcpy (buf, s->buf + offset, len);
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&r->lock);
    s->pins--;
  }
  return 1;
}

/* With r->lock held: remember idx as read once lately. */
static void
seen_add_locked (struct cache_resident *r, uint64_t idx)
{
  r->seen[r->seen_next] = idx + 1;
  r->seen_next = (r->seen_next + 1) % CACHE_SEEN_SLOTS;
}

static bool
seen_locked (const struct cache_resident *r, uint64_t idx)
{
  size_t i;

  for (i = 0; i < CACHE_SEEN_SLOTS; i++)
    if (r->seen[i] == idx + 1)
      return true;
  return false;
}

bool
cache_resident_note_read (struct cache_resident *r, uint64_t idx)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&r->lock);
  if (seen_locked (r, idx))
    return true;
  seen_add_locked (r, idx);
  return false;
}

void
cache_resident_stored (struct cache_resident *r, uint64_t idx)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&r->lock);
  if (!seen_locked (r, idx))
    seen_add_locked (r, idx);
}

struct cache_resident_slot *
cache_resident_claim (struct cache_resident *r, uint64_t idx)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&r->lock);
  struct cache_resident_slot *s = NULL;
  size_t i, j;

  if (r->cap == 0)
    return NULL;
  /* The chunk's own slot if it has one (loaded under a generation that
   * is gone), else the oldest slot nobody uses.
   */
  s = slot_of (r, idx);
  if (s != NULL && s->pins > 0)
    return NULL; /* being loaded or read: read the data file this time */
  for (i = 0; s == NULL && i < r->cap; i++) {
    j = (r->next + i) % r->cap;
    if (r->slot[j].pins == 0) {
      s = &r->slot[j];
      r->next = (j + 1) % r->cap;
    }
  }
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
