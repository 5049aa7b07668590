/* accel: tags that let a restarted process trust chunks it stored.
 *
 * The first read of a chunk by a process verifies it (cache-io.c,
 * read_verify).  Against the manifest's SHA-256 that costs about 0.7 s
 * of CPU per GiB, most of a restart's CPU (issue 14's target is 1 s/GiB
 * in all).  With a node key (cache-key=, cache-key.c) every stored
 * chunk also gets a 16-byte tag in DIR/images/ID/tags, and a later
 * first read checks the tag instead: Poly1305, about 0.1 s/GiB.
 *
 * The tag of chunk idx is Poly1305 over the chunk's bytes, keyed by
 * HMAC-SHA256 (node key, SHA-256 of the image's identity || idx ||
 * chunk size || image size): a one-time key per chunk, as Poly1305
 * needs, and the same whenever the chunk is stored again, since chunk
 * idx of one identity and geometry only ever has one right content.
 * (Without a manifest the identity does not fix the chunk size: hence
 * the geometry.)  So a tag never goes stale, needs no ordering against
 * the map's state, and tags of another image, chunk or geometry do not
 * fit.  Without the key nobody can make a tag that fits other bytes:
 * bytes changed on disk fail the check, and then the chunk is hashed
 * as without a key.  A tag found wrong is never trusted, and only
 * written again once the manifest's hash said the bytes are right (not
 * the map's, which whoever writes the cache can change: tagging bytes
 * that only that hash vouches for would give a second message under
 * one Poly1305 key).  The key must therefore be somewhere that those
 * who can write the cache directory cannot read (cache-key.c refuses it
 * inside the directory).
 *
 * The file is an optimisation, never needed: a process without the key
 * (or another key) hashes as before, a missing, short or scribbled
 * file only costs the hash, and accel-cache ignores it.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/sha.h>

#include "cache-internal.h"
#include "report.h"

int
cache_dir_set_key (struct cache_dir *d, const unsigned char key[32])
{
  if (d->tag_mac == NULL) {
    d->tag_mac = EVP_MAC_fetch (NULL, "POLY1305", NULL);
    if (d->tag_mac == NULL) {
      report_error ("cache-key: this OpenSSL has no Poly1305");
      return -1;
    }
  }
  memcpy (d->key, key, 32);
  d->has_key = true;
  return 0;
}

/* Map DIR/images/ID/tags (made if missing, grown to the image's
 * chunks).  Any failure leaves the image without tags: said in the
 * debug log only, since every chunk is then hashed as without a key.
 */
void
cache_tags_open (struct cache_image *ci)
{
  size_t len = ci->nr_chunks * CACHE_TAG_SIZE;
  char path[4096];
  struct stat st;
  int fd;

  if (!ci->dir->has_key)
    return;
  if (snprintf (path, sizeof path, "%s/tags", ci->path) >= (int) sizeof path)
    return;
  /* NB: allocated, not sparse: a store into a hole of a shared mapping
   * on a full disk is SIGBUS (so, on tmpfs, is reading one).
   */
  fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd == -1 || fstat (fd, &st) == -1 || !S_ISREG (st.st_mode) ||
      ((uint64_t) st.st_size < len && ftruncate (fd, len) == -1) ||
      posix_fallocate (fd, 0, len) != 0) {
    report_debug ("cache: %s: %m: chunks will be hashed", path);
    if (fd != -1)
      close (fd);
    return;
  }
  ci->tags = mmap (NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close (fd);
  if (ci->tags == MAP_FAILED) {
    ci->tags = NULL;
    report_debug ("cache: %s: mmap: %m: chunks will be hashed", path);
    return;
  }
  SHA256 ((const unsigned char *) ci->identity, strlen (ci->identity),
          ci->tag_id);
}

void
cache_tags_close (struct cache_image *ci)
{
  if (ci->tags)
    munmap ((void *) ci->tags, ci->nr_chunks * CACHE_TAG_SIZE);
  ci->tags = NULL;
}

/* Start the tag of chunk idx.  NULL (said in the debug log) on failure:
 * the caller then goes without a tag.
 */
EVP_MAC_CTX *
cache_tag_begin (struct cache_image *ci, uint64_t idx)
{
  unsigned char msg[52], key[32];
  unsigned int key_len = sizeof key;
  EVP_MAC_CTX *ctx;
  int i;

  if (ci->tags == NULL)
    return NULL;
  memcpy (msg, ci->tag_id, 32);
  for (i = 0; i < 8; i++) {
    msg[32 + i] = idx >> (8 * i);
    msg[44 + i] = ci->image_size >> (8 * i);
  }
  for (i = 0; i < 4; i++)
    msg[40 + i] = ci->chunk_size >> (8 * i);
  ctx = EVP_MAC_CTX_new (ci->dir->tag_mac);
  if (ctx == NULL ||
      HMAC (EVP_sha256 (), ci->dir->key, 32, msg, sizeof msg, key, &key_len) ==
          NULL ||
      !EVP_MAC_init (ctx, key, sizeof key, NULL)) {
    report_debug ("cache: Poly1305: cannot start a tag");
    EVP_MAC_CTX_free (ctx);
    ctx = NULL;
  }
  OPENSSL_cleanse (key, sizeof key);
  return ctx;
}

/* Finish a tag begun by cache_tag_begin (and free it).  0, or -1. */
int
cache_tag_end (EVP_MAC_CTX *ctx, unsigned char tag[CACHE_TAG_SIZE])
{
  size_t n = 0;
  int ok = EVP_MAC_final (ctx, tag, &n, CACHE_TAG_SIZE);

  EVP_MAC_CTX_free (ctx);
  return ok && n == CACHE_TAG_SIZE ? 0 : -1;
}

/* Record chunk idx's tag.  NB: byte by byte with relaxed atomics, like
 * the map's hashes: other threads and processes may read it meanwhile
 * (a torn tag only fails its check).
 */
void
cache_tag_put (struct cache_image *ci, uint64_t idx,
               const unsigned char tag[CACHE_TAG_SIZE])
{
  size_t i;

  if (ci->tags == NULL)
    return;
  for (i = 0; i < CACHE_TAG_SIZE; i++)
    atomic_store_explicit (&ci->tags[idx * CACHE_TAG_SIZE + i], tag[i],
                           memory_order_relaxed);
}

/* Whether chunk idx's recorded tag is tag (in constant time: the tags
 * file is writable by whoever can write the cache).
 */
bool
cache_tag_matches (struct cache_image *ci, uint64_t idx,
                   const unsigned char tag[CACHE_TAG_SIZE])
{
  unsigned char got[CACHE_TAG_SIZE];
  size_t i;

  if (ci->tags == NULL)
    return false;
  for (i = 0; i < CACHE_TAG_SIZE; i++)
    got[i] = atomic_load_explicit (&ci->tags[idx * CACHE_TAG_SIZE + i],
                                   memory_order_relaxed);
  return CRYPTO_memcmp (got, tag, CACHE_TAG_SIZE) == 0;
}

/* Whether chunk idx has a tag recorded at all (not all zeros). */
bool
cache_tag_recorded (struct cache_image *ci, uint64_t idx)
{
  size_t i;

  if (ci->tags == NULL)
    return false;
  for (i = 0; i < CACHE_TAG_SIZE; i++)
    if (atomic_load_explicit (&ci->tags[idx * CACHE_TAG_SIZE + i],
                              memory_order_relaxed))
      return true;
  return false;
}

/* Tag and record a whole chunk that is about to be (or was) stored. */
void
cache_tag_chunk (struct cache_image *ci, uint64_t idx, const void *data,
                 uint32_t len)
{
  unsigned char tag[CACHE_TAG_SIZE];
  EVP_MAC_CTX *ctx = cache_tag_begin (ci, idx);

  if (ctx == NULL)
    return;
  if (!EVP_MAC_update (ctx, data, len)) {
    EVP_MAC_CTX_free (ctx);
    return;
  }
  if (cache_tag_end (ctx, tag) == 0)
    cache_tag_put (ci, idx, tag);
}
