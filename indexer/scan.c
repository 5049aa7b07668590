/* accel-index: read an image once, hashing each chunk and the whole.
 *
 * Indexing should run at the speed of SHA-256, and every byte is hashed
 * twice: once into its chunk's hash and once into the hash of the whole
 * image.  The whole-image hash is a single sequential stream that cannot
 * be split, so it gets a thread of its own; the chunk hashes (with the
 * zero checks and the calls that store the results) get another; the
 * calling thread only reads.  On a two-core machine the two hashing
 * threads run side by side and the total time is about one pass of
 * SHA-256 over the image.
 *
 * The reader fills a small ring of large buffers with big sequential
 * reads; each buffer is handed to both hashing threads and refilled
 * when both are done with it.  Memory use is the ring, whatever the
 * chunk size.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "report.h"
#include "scan.h"

/* Large sequential reads.  Independent of the chunk size: chunks may
 * span buffers.
 */
#define SCAN_BUFFER_SIZE (8 * 1024 * 1024)

/* Enough for the reader to stay ahead of both hashing threads. */
#define SCAN_NR_BUFFERS 4

/* Threads that consume each buffer: the image and chunk hashers. */
#define SCAN_NR_CONSUMERS 2

struct buffer {
  unsigned char *data;
  size_t len;
  uint64_t block; /* block number held + 1, 0 before the first */
  unsigned consumers; /* still to finish with it; 0 = free to refill */
};

struct scan {
  /* Set before the threads start, read-only after. */
  const char *name;
  int fd;
  uint64_t image_size, nr_blocks;
  size_t buffer_size;
  uint32_t chunk_size;
  scan_chunk_fn chunk_fn;
  void *opaque;
  EVP_MD *sha256;

  /* lock protects len, block and consumers of every buffer, and failed.
   * A buffer's data belongs to the reader while consumers is 0 and to
   * the hashing threads after that, so it is used without the lock.
   */
  pthread_mutex_t lock;
  pthread_cond_t filled; /* a buffer was filled, or failed was set */
  pthread_cond_t emptied; /* a buffer became free, or failed was set */
  struct buffer buffers[SCAN_NR_BUFFERS];
  bool failed;

  /* Each written by one hashing thread, read after it is joined. */
  unsigned char image_sha256[32];
  uint64_t nr_zero;
};

/* One hashing thread: what it does with each buffer, and its state. */
struct consumer {
  struct scan *s;
  int (*process) (struct consumer *c, const unsigned char *data, size_t len,
                  uint64_t block);
  EVP_MD_CTX *ctx;
  int result;

  /* The chunk thread's chunk in progress. */
  uint64_t chunk_idx;
  size_t chunk_done; /* bytes hashed so far */
  bool chunk_zero; /* all of them zero */
};

/* Stop everything; whoever failed has reported why. */
static void
scan_fail (struct scan *s)
{
  pthread_mutex_lock (&s->lock);
  s->failed = true;
  pthread_cond_broadcast (&s->filled);
  pthread_cond_broadcast (&s->emptied);
  pthread_mutex_unlock (&s->lock);
}

/* True if all len bytes are zero.  NB: once the first 16 bytes are
 * known to be zero, comparing the buffer with itself 16 bytes further on
 * lets libc's vectorised memcmp do the rest.
 */
static bool
is_zero (const unsigned char *p, size_t len)
{
  size_t i;

  for (i = 0; i < 16 && i < len; ++i)
    if (p[i] != 0)
      return false;
  return len <= 16 || memcmp (p, p + 16, len - 16) == 0;
}

/* Finish the chunk being hashed and hand its result on. */
static int
finish_chunk (struct consumer *c)
{
  struct scan *s = c->s;
  unsigned char md[32];

  if (EVP_DigestFinal_ex (c->ctx, md, NULL) != 1) {
    report_error ("%s: chunk %" PRIu64 ": SHA-256 failed", s->name,
                  c->chunk_idx);
    return -1;
  }
  s->nr_zero += c->chunk_zero;
  if (s->chunk_fn (s->opaque, c->chunk_idx, md, c->chunk_zero) == -1)
    return -1;
  c->chunk_idx++;
  c->chunk_done = 0;
  return 0;
}

/* Hash the chunks (or parts of chunks) in a buffer.  A chunk larger than
 * a buffer is hashed across several; the short last chunk ends with the
 * last buffer.
 */
static int
process_chunks (struct consumer *c, const unsigned char *data, size_t len,
                uint64_t block)
{
  struct scan *s = c->s;
  bool last = block == s->nr_blocks - 1;
  size_t off, n;

  for (off = 0; off < len; off += n) {
    n = s->chunk_size - c->chunk_done;
    if (n > len - off)
      n = len - off;
    if (c->chunk_done == 0) {
      c->chunk_zero = true;
      if (EVP_DigestInit_ex2 (c->ctx, s->sha256, NULL) != 1) {
        report_error ("%s: chunk %" PRIu64 ": SHA-256 failed", s->name,
                      c->chunk_idx);
        return -1;
      }
    }
    c->chunk_zero = c->chunk_zero && is_zero (data + off, n);
    if (EVP_DigestUpdate (c->ctx, data + off, n) != 1) {
      report_error ("%s: chunk %" PRIu64 ": SHA-256 failed", s->name,
                    c->chunk_idx);
      return -1;
    }
    c->chunk_done += n;
    if ((c->chunk_done == s->chunk_size || (last && off + n == len)) &&
        finish_chunk (c) == -1)
      return -1;
  }
  return 0;
}

/* Feed a buffer to the whole-image hash. */
static int
process_image (struct consumer *c, const unsigned char *data, size_t len,
               uint64_t block)
{
  if (EVP_DigestUpdate (c->ctx, data, len) != 1) {
    report_error ("%s: block %" PRIu64 ": SHA-256 failed", c->s->name, block);
    return -1;
  }
  return 0;
}

/* A hashing thread: take every block in order, process it, give the
 * buffer back.
 */
static void *
consumer_thread (void *arg)
{
  struct consumer *c = arg;
  struct scan *s = c->s;
  uint64_t b;

  for (b = 0; b < s->nr_blocks; ++b) {
    struct buffer *buf = &s->buffers[b % SCAN_NR_BUFFERS];
    bool failed;
    int r;

    pthread_mutex_lock (&s->lock);
    while (!s->failed && buf->block != b + 1)
      pthread_cond_wait (&s->filled, &s->lock);
    failed = s->failed;
    pthread_mutex_unlock (&s->lock);
    if (failed) {
      c->result = -1;
      return NULL;
    }

    r = c->process (c, buf->data, buf->len, b);
    if (r == -1) {
      scan_fail (s);
      c->result = -1;
      return NULL;
    }

    pthread_mutex_lock (&s->lock);
    if (--buf->consumers == 0)
      pthread_cond_signal (&s->emptied);
    pthread_mutex_unlock (&s->lock);
  }
  c->result = 0;
  return NULL;
}

/* Read exactly len bytes at offset, or report why not. */
static int
read_block (struct scan *s, unsigned char *data, size_t len, uint64_t offset)
{
  while (len > 0) {
    ssize_t r = pread (s->fd, data, len, offset);

    if (r == -1) {
      if (errno == EINTR)
        continue;
      report_error ("%s: read at offset %" PRIu64 ": %m", s->name, offset);
      return -1;
    }
    if (r == 0) {
      report_error ("%s: unexpected end of file at offset %" PRIu64
                    " (did the image shrink?)",
                    s->name, offset);
      return -1;
    }
    data += r;
    len -= r;
    offset += r;
  }
  return 0;
}

/* The calling thread's part: fill each buffer in turn once both hashing
 * threads are done with it.
 */
static void
reader_loop (struct scan *s)
{
  uint64_t b;

  for (b = 0; b < s->nr_blocks; ++b) {
    struct buffer *buf = &s->buffers[b % SCAN_NR_BUFFERS];
    uint64_t offset = b * s->buffer_size;
    size_t len = s->image_size - offset < s->buffer_size
        ? s->image_size - offset
        : s->buffer_size;
    bool failed;

    pthread_mutex_lock (&s->lock);
    while (!s->failed && buf->consumers > 0)
      pthread_cond_wait (&s->emptied, &s->lock);
    failed = s->failed;
    pthread_mutex_unlock (&s->lock);
    if (failed)
      return;

    if (read_block (s, buf->data, len, offset) == -1) {
      scan_fail (s);
      return;
    }

    pthread_mutex_lock (&s->lock);
    buf->len = len;
    buf->block = b + 1;
    buf->consumers = SCAN_NR_CONSUMERS;
    pthread_cond_broadcast (&s->filled);
    pthread_mutex_unlock (&s->lock);
  }
}

/* Set up the ring and the two hashing threads, read, and tear down on
 * every path: the caller sees only the results or one reported error.
 */
int
scan_image (int fd, const char *name, uint64_t image_size, uint32_t chunk_size,
            scan_chunk_fn chunk_fn, void *opaque,
            unsigned char image_sha256[32], uint64_t *nr_zero)
{
  struct scan s = {
    .name = name,
    .fd = fd,
    .image_size = image_size,
    .chunk_size = chunk_size,
    .chunk_fn = chunk_fn,
    .opaque = opaque,
  };
  struct consumer image = { .s = &s, .process = process_image };
  struct consumer chunks = { .s = &s, .process = process_chunks };
  pthread_t image_tid, chunks_tid;
  bool image_started = false, chunks_started = false;
  int err, ret = -1;
  size_t i;

  s.buffer_size = SCAN_BUFFER_SIZE;
  s.nr_blocks = image_size / s.buffer_size + (image_size % s.buffer_size != 0);
  pthread_mutex_init (&s.lock, NULL);
  pthread_cond_init (&s.filled, NULL);
  pthread_cond_init (&s.emptied, NULL);

  s.sha256 = EVP_MD_fetch (NULL, "SHA256", NULL);
  image.ctx = EVP_MD_CTX_new ();
  chunks.ctx = EVP_MD_CTX_new ();
  if (s.sha256 == NULL || image.ctx == NULL || chunks.ctx == NULL ||
      EVP_DigestInit_ex2 (image.ctx, s.sha256, NULL) != 1) {
    report_error ("%s: cannot set up SHA-256 (OpenSSL)", name);
    goto out;
  }
  for (i = 0; i < SCAN_NR_BUFFERS; ++i) {
    s.buffers[i].data = malloc (s.buffer_size);
    if (s.buffers[i].data == NULL) {
      report_error ("%s: malloc: %m", name);
      goto out;
    }
  }
  /* Only a hint: the reads are large and sequential anyway. */
  posix_fadvise (fd, 0, 0, POSIX_FADV_SEQUENTIAL);

  err = pthread_create (&image_tid, NULL, consumer_thread, &image);
  if (err == 0) {
    image_started = true;
    err = pthread_create (&chunks_tid, NULL, consumer_thread, &chunks);
    chunks_started = err == 0;
  }
  if (err != 0) {
    errno = err;
    report_error ("%s: pthread_create: %m", name);
    scan_fail (&s);
  }
  else
    reader_loop (&s);
  if (image_started)
    pthread_join (image_tid, NULL);
  if (chunks_started)
    pthread_join (chunks_tid, NULL);
  /* Both threads are joined: failed needs no lock now. */
  if (s.failed || image.result == -1 || chunks.result == -1)
    goto out;

  if (EVP_DigestFinal_ex (image.ctx, image_sha256, NULL) != 1) {
    report_error ("%s: SHA-256 failed", name);
    goto out;
  }
  *nr_zero = s.nr_zero;
  ret = 0;

out:
  for (i = 0; i < SCAN_NR_BUFFERS; ++i)
    free (s.buffers[i].data);
  EVP_MD_CTX_free (image.ctx);
  EVP_MD_CTX_free (chunks.ctx);
  EVP_MD_free (s.sha256);
  pthread_cond_destroy (&s.emptied);
  pthread_cond_destroy (&s.filled);
  pthread_mutex_destroy (&s.lock);
  return ret;
}
