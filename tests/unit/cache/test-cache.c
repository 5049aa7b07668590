/* accel: unit test of the block cache (common/cache-*.c).
 *
 * Every case works in its own directory under /tmp and asserts on
 * effects: the bytes a read returns, the files and modes on disk, which
 * ranges of a data file hold blocks (SEEK_DATA), the bytes a directory
 * uses against its cap, and what survives a close, damage at rest, a
 * crash (a child that _exits without flushing), concurrent eviction by a
 * thread or another process, and a full filesystem (a small tmpfs
 * mounted in a private mount namespace; skipped if we cannot mount).
 * Then what accel-cache does (cache-scan.c, cache-admin.c,
 * cache-verify.c): listing images and their read counters, evicting
 * served and idle images, by age and down to a size, and verifying.
 *
 * Chunk bytes are a function of an image's seed and the chunk's index,
 * so any process can tell right bytes from wrong ones.  Test-only
 * knowledge of the map comes from cache-internal.h: the atime of entries
 * is set directly to make LRU order deterministic (it has a 1-second
 * clock).
 *
 * Each case runs in a child process, so that a crash fails that case
 * only and its directory is still removed.  Output is one line per case
 * and a final "cache: N cases, M failed"; the exit status is 1 if any
 * case failed.  Usage: test-cache [PATTERN] runs only the cases whose
 * name contains PATTERN.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "cache-internal.h"
#include "cache.h"
#include "cleanup.h"
#include "file-io.h"
#include "report.h"
#include "test.h"

#define CHUNK (64 * 1024)

/* How long the eviction races run. */
#define RACE_MS 1500

/* ---- test images -------------------------------------------------- */

/* A test image: its identity, geometry and the seed of its bytes. */
struct geom {
  const char *identity;
  uint64_t size;
  uint32_t chunk;
  uint64_t seed;
};

/* Geometry, as the cache computes it. */
static uint64_t
nr_chunks_of (const struct geom *g)
{
  return (g->size + g->chunk - 1) / g->chunk;
}

/* Bytes in chunk idx: the last one may be short. */
static uint32_t
len_of (const struct geom *g, uint64_t idx)
{
  uint64_t off = idx * g->chunk;

  return off + g->chunk > g->size ? g->size - off : g->chunk;
}

/* The bytes of chunk idx (xorshift64, never all zeros). */
static void
fill (const struct geom *g, uint64_t idx, unsigned char *buf)
{
  uint64_t x = ((g->seed << 32) ^ ((idx + 1) * 0x9e3779b97f4a7c15ULL)) | 1;
  uint32_t i, len = len_of (g, idx);

  for (i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    buf[i] = x >> 24;
  }
}

/* cache_store of the right bytes of chunk idx. */
static int
store (struct cache_image *ci, const struct geom *g, uint64_t idx)
{
  CLEANUP_FREE unsigned char *buf = test_alloc (g->chunk);

  fill (g, idx, buf);
  return cache_store (ci, idx, buf, len_of (g, idx));
}

/* cache_read of [off, off+len) of chunk idx; 2 means "returned 1 with
 * wrong bytes".
 */
static int
read_range (struct cache_image *ci, const struct geom *g, uint64_t idx,
            uint32_t off, uint32_t len)
{
  CLEANUP_FREE unsigned char *want = test_alloc (g->chunk);
  CLEANUP_FREE unsigned char *got = test_alloc (len + 1);
  int r;

  memset (got, 0xa5, len + 1);
  r = cache_read (ci, idx, off, len, got);
  if (r == 1) {
    fill (g, idx, want);
    if (memcmp (got, want + off, len) != 0)
      r = 2;
  }
  if (got[len] != 0xa5)
    r = 2; /* written past the range asked for */
  return r;
}

/* read_range of the whole chunk. */
static int
read_all (struct cache_image *ci, const struct geom *g, uint64_t idx)
{
  return read_range (ci, g, idx, 0, len_of (g, idx));
}

/* Open a test image without expected hashes. */
static struct cache_image *
open_image (struct cache_dir *d, const struct geom *g)
{
  return cache_image_open (d, g->identity, "test", g->size, g->chunk, NULL,
                           NULL);
}

/* Make a chunk's last access time what LRU order needs. */
static void
set_atime (struct cache_image *ci, uint64_t idx, uint32_t t)
{
  atomic_store (&ci->entries[idx].atime, t);
}

/* The image directory's name for an identity. */
static void
sha256_hex (const char *s, char hex[65])
{
  unsigned char id[32];
  int i;

  SHA256 ((const unsigned char *) s, strlen (s), id);
  for (i = 0; i < 32; i++)
    snprintf (&hex[i * 2], 3, "%02x", id[i]);
}

/* DIR/images/ID/NAME of an image, whether or not it is open. */
static const char *
image_file (char *buf, size_t n, const char *dir, const struct geom *g,
            const char *name)
{
  char hex[65];

  sha256_hex (g->identity, hex);
  if (snprintf (buf, n, "%s/images/%s/%s", dir, hex, name) >= (int) n)
    abort ();
  return buf;
}

/* ---- files --------------------------------------------------------- */

/* DIR/NAME into buf. */
static const char *
join (char *buf, size_t n, const char *dir, const char *name)
{
  if (snprintf (buf, n, "%s/%s", dir, name) >= (int) n)
    abort ();
  return buf;
}

/* st_mode of path, or 0 if it does not exist. */
static mode_t
mode_of (const char *path)
{
  struct stat st;

  return lstat (path, &st) == 0 ? st.st_mode : 0;
}

/* st_size, or -1. */
static int64_t
size_of (const char *path)
{
  struct stat st;

  return stat (path, &st) == 0 ? st.st_size : -1;
}

/* Bytes of [off, off+len) of a file that are data, not holes. */
static int64_t
data_bytes (const char *path, uint64_t off, uint64_t len)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  uint64_t end = off + len;
  int64_t total = 0;

  if (fd == -1)
    return -1;
  while (off < end) {
    off_t d = lseek (fd, off, SEEK_DATA), h;
    if (d == -1 || (uint64_t) d >= end)
      break;
    h = lseek (fd, d, SEEK_HOLE);
    if (h == -1)
      break;
    total += ((uint64_t) h < end ? (uint64_t) h : end) - d;
    off = h;
  }
  close (fd);
  return total;
}

/* Data bytes of chunk idx of g in its data file. */
static int64_t
chunk_data (const char *data, const struct geom *g, uint64_t idx)
{
  return data_bytes (data, idx * g->chunk, len_of (g, idx));
}

/* Bytes allocated to a file (st_blocks), or -1. */
static int64_t
blocks_of (const char *path)
{
  struct stat st;

  return stat (path, &st) == 0 ? (int64_t) st.st_blocks * 512 : -1;
}

/* True if [off, off+len) of a file reads as zeros. */
static bool
reads_zeros (const char *path, uint64_t off, uint32_t len)
{
  CLEANUP_FREE unsigned char *buf = test_alloc (len);
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  ssize_t r;
  uint32_t i;

  if (fd == -1)
    return false;
  r = pread (fd, buf, len, off);
  close (fd);
  if (r < 0)
    return false;
  for (i = 0; i < (uint32_t) r; i++)
    if (buf[i])
      return false;
  return true;
}

/* Overwrite len bytes at off (damage, garbage headers). */
static int
write_file (const char *path, uint64_t off, const void *buf, size_t len)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ssize_t r;

  if (fd == -1)
    return -1;
  r = pwrite (fd, buf, len, off);
  close (fd);
  return r == (ssize_t) len ? 0 : -1;
}

/* Open file descriptors of this process. */
static int
count_fds (void)
{
  DIR *dir = opendir ("/proc/self/fd");
  int n = 0;

  if (dir == NULL)
    return -1;
  while (readdir (dir) != NULL)
    n++;
  closedir (dir);
  return n;
}

/* cache_dir_usage, or UINT64_MAX on error. */
static uint64_t
usage_of (struct cache_dir *d)
{
  uint64_t u = UINT64_MAX;

  if (cache_dir_usage (d, &u) == -1)
    return UINT64_MAX;
  return u;
}

/* Usage must be known and within cap; show it if not. */
static void
check_usage_at (struct cache_dir *d, uint64_t cap, int line)
{
  uint64_t u = usage_of (d);

  test_check (u <= cap, __FILE__, line, "usage %" PRIu64 " <= cap %" PRIu64, u,
              cap);
}
#define CHECK_USAGE(d, cap) check_usage_at ((d), (cap), __LINE__)

/* Milliseconds since start (CLOCK_MONOTONIC). */
static uint64_t
elapsed_ms (const struct timespec *start)
{
  struct timespec now;

  clock_gettime (CLOCK_MONOTONIC, &now);
  return (now.tv_sec - start->tv_sec) * 1000 +
      (now.tv_nsec - start->tv_nsec) / 1000000;
}

/* ---- child processes ----------------------------------------------- */

/* fork, with nothing buffered that both processes would print. */
static pid_t
start_child (void)
{
  pid_t pid;

  fflush (stdout);
  fflush (stderr);
  pid = fork ();
  if (pid == -1)
    perror ("fork");
  return pid;
}

/* End a child: 0 if none of its checks failed since failed_before. */
static void child_exit (unsigned failed_before) __attribute__ ((noreturn));

static void
child_exit (unsigned failed_before)
{
  fflush (stdout);
  fflush (stderr);
  _exit (test_nr_failed > failed_before ? 1 : 0);
}

/* Wait for a child; its exit status (77: skipped), or -1 if it died of
 * a signal (which is shown).
 */
static int
wait_child (pid_t pid)
{
  int status;

  if (pid == -1)
    return -1;
  while (waitpid (pid, &status, 0) == -1)
    if (errno != EINTR) {
      perror ("waitpid");
      return -1;
    }
  if (WIFSIGNALED (status)) {
    printf ("child %d killed by signal %d (%s)\n", (int) pid, WTERMSIG (status),
            strsignal (WTERMSIG (status)));
    return -1;
  }
  return WEXITSTATUS (status);
}

/* Run fn in a child with a tmpfs (options: "size=...") mounted at mnt
 * in a mount namespace of its own, so the mount goes away with the
 * child whatever happens.  Returns false if the child could not mount.
 */
static bool
in_tmpfs (const char *mnt, const char *options, void (*fn) (const char *mnt))
{
  unsigned failed = test_nr_failed;
  pid_t pid;
  int r;

  pid = start_child ();
  if (pid == 0) {
    if (unshare (CLONE_NEWNS) == -1 ||
        mount ("none", "/", "none", MS_REC | MS_PRIVATE, NULL) == -1 ||
        mount ("tmpfs", mnt, "tmpfs", 0, options) == -1) {
      printf ("  cannot mount a tmpfs: %s\n", strerror (errno));
      fflush (stdout);
      _exit (77);
    }
    fn (mnt);
    child_exit (failed);
  }
  r = wait_child (pid);
  if (r == 77)
    return false;
  CHECK (r == 0);
  return true;
}

/* ---- 1. a new directory -------------------------------------------- */

/* Creation, modes and the files of an image; what is refused, untouched. */
static void
test_new_dir (const char *tmp)
{
  const struct geom g = { "new-dir", 3 * CHUNK + 5, CHUNK, 1 };
  char path[PATH_MAX], f[PATH_MAX], other[PATH_MAX], want[PATH_MAX];
  char hex[65], info[512];
  struct cache_dir *d;
  struct cache_image *ci;
  struct map_header h;
  int fd;
  ssize_t n;

  snprintf (path, sizeof path, "%s/a/b/cache", tmp);
  d = cache_dir_open (path, 0);
  CHECK (d != NULL);
  EXPECT_ERRORS (0);
  if (d == NULL)
    return;
  CHECK (mode_of (path) == (S_IFDIR | 0700));
  CHECK (mode_of (join (f, sizeof f, path, CACHE_MARKER)) == (S_IFREG | 0600));
  CHECK (mode_of (join (f, sizeof f, path, "lock")) == (S_IFREG | 0600));
  CHECK (mode_of (join (f, sizeof f, path, "images")) == (S_IFDIR | 0700));

  ci = cache_image_open (d, g.identity, "s3://bucket/key", g.size, g.chunk,
                         NULL, NULL);
  CHECK (ci != NULL);
  EXPECT_ERRORS (0);
  if (ci) {
    sha256_hex (g.identity, hex);
    CHECK (snprintf (want, sizeof want, "%s/images/%s", path, hex) <
           (int) sizeof want);
    CHECK (strcmp (cache_image_dir (ci), want) == 0);
    CHECK (mode_of (want) == (S_IFDIR | 0700));
    CHECK (mode_of (join (f, sizeof f, want, "map")) == (S_IFREG | 0600));
    CHECK (mode_of (join (f, sizeof f, want, "data")) == (S_IFREG | 0600));
    CHECK (mode_of (join (f, sizeof f, want, "serve.lock")) ==
           (S_IFREG | 0600));
    CHECK (mode_of (join (f, sizeof f, want, "info")) == (S_IFREG | 0600));
    CHECK (size_of (join (f, sizeof f, want, "data")) == (int64_t) g.size);
    CHECK (blocks_of (f) == 0);
    CHECK (size_of (join (f, sizeof f, want, "map")) ==
           MAP_HEADER_SIZE + 4 * (int64_t) sizeof (struct map_entry));

    /* The header as docs/cache-format.md describes it. */
    memset (&h, 0, sizeof h);
    fd = open (f, O_RDONLY | O_CLOEXEC);
    n = fd >= 0 ? pread (fd, &h, sizeof h, 0) : -1;
    if (fd >= 0)
      close (fd);
    CHECK (n == (ssize_t) sizeof h);
    CHECK (memcmp (h.magic, "ACCELMAP", 8) == 0);
    CHECK (h.version == 1 && h.header_size == 4096 && h.entry_size == 40);
    CHECK (h.image_size == g.size && h.chunk_size == g.chunk);
    CHECK (h.nr_chunks == 4);

    memset (info, 0, sizeof info);
    fd = open (join (f, sizeof f, want, "info"), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      n = read (fd, info, sizeof info - 1);
      close (fd);
    }
    CHECK (strstr (info, "identity: new-dir\n") != NULL);
    CHECK (strstr (info, "description: s3://bucket/key\n") != NULL);
    cache_image_close (ci);
  }
  cache_dir_close (d);

  /* An existing cache opens without complaint. */
  d = cache_dir_open (path, 0);
  CHECK (d != NULL);
  EXPECT_ERRORS (0);
  cache_dir_close (d);

  /* A non-empty directory that is not a cache is refused, untouched. */
  join (other, sizeof other, tmp, "home");
  CHECK (mkdir (other, 0755) == 0 && chmod (other, 0755) == 0);
  CHECK (write_file (join (f, sizeof f, other, "precious"), 0, "x", 1) == 0);
  d = cache_dir_open (other, 0);
  CHECK (d == NULL);
  EXPECT_ERRORS (1);
  cache_dir_close (d);
  CHECK (mode_of (other) == (S_IFDIR | 0755));
  CHECK (mode_of (join (f, sizeof f, other, CACHE_MARKER)) == 0);
  CHECK (mode_of (join (f, sizeof f, other, "images")) == 0);
  CHECK (mode_of (join (f, sizeof f, other, "lock")) == 0);
  CHECK (size_of (join (f, sizeof f, other, "precious")) == 1);

  /* A regular file is refused, untouched. */
  CHECK (chmod (f, 0644) == 0);
  d = cache_dir_open (f, 0);
  CHECK (d == NULL);
  EXPECT_ERRORS (1);
  cache_dir_close (d);
  CHECK (mode_of (f) == (S_IFREG | 0644));

  /* An empty directory (lost+found aside) becomes a cache, made private. */
  join (other, sizeof other, tmp, "empty");
  CHECK (mkdir (other, 0755) == 0 && chmod (other, 0755) == 0);
  CHECK (mkdir (join (f, sizeof f, other, "lost+found"), 0700) == 0);
  d = cache_dir_open (other, 0);
  CHECK (d != NULL);
  EXPECT_ERRORS (0);
  cache_dir_close (d);
  CHECK (mode_of (other) == (S_IFDIR | 0700));
  CHECK (mode_of (join (f, sizeof f, other, CACHE_MARKER)) == (S_IFREG | 0600));
}

/* ---- 2. store, flush, read ----------------------------------------- */

/* Exact bytes of any sub-range, pending and flushed; argument errors. */
static void
test_store_read (const char *tmp)
{
  /* 11 chunks, the last one 1000 bytes. */
  const struct geom g = { "store-read", 10 * CHUNK + 1000, CHUNK, 2 };
  const uint64_t missing = 3, last = 10;
  char path[PATH_MAX], data[PATH_MAX];
  CLEANUP_FREE unsigned char *buf = test_alloc (CHUNK);
  CLEANUP_FREE unsigned char *want = test_alloc (CHUNK);
  uint64_t hits = 0, misses = 0, blocks, i;
  struct cache_dir *d;
  struct cache_image *ci = NULL;
  struct cache_stats st;
  struct stat sb;
  unsigned seed = 2;
  int pass, k, fd;

  join (path, sizeof path, tmp, "cache");
  d = cache_dir_open (path, 0);
  CHECK (d != NULL);
  if (d)
    ci = open_image (d, &g);
  CHECK (ci != NULL);
  if (ci == NULL)
    goto out;
  image_file (data, sizeof data, path, &g, "data");

  for (i = 0; i <= last; i++)
    if (i != missing)
      CHECK (store (ci, &g, i) == 0);
  CHECK (cache_pending (ci) == 10);
  for (i = 0; i <= last; i++)
    CHECK (cache_contains (ci, i) == (i != missing));
  CHECK (!cache_contains (ci, last + 1));
  CHECK (!cache_contains (ci, UINT64_MAX / CHUNK));

  /* pass 0 reads pending chunks, pass 1 flushed ones. */
  for (pass = 0; pass < 2; pass++) {
    for (i = 0; i <= last; i++) {
      uint32_t clen = len_of (&g, i);

      if (i == missing) {
        CHECK (read_all (ci, &g, i) == 0);
        CHECK (read_range (ci, &g, i, 10, 10) == 0);
        misses += 2;
        continue;
      }
      CHECK (read_all (ci, &g, i) == 1);
      CHECK (read_range (ci, &g, i, 0, 1) == 1);
      CHECK (read_range (ci, &g, i, clen - 1, 1) == 1);
      CHECK (read_range (ci, &g, i, clen / 3, clen / 2) == 1);
      hits += 4;
      for (k = 0; k < 8; k++) {
        uint32_t off = rand_r (&seed) % clen;
        uint32_t len = 1 + rand_r (&seed) % (clen - off);
        CHECK (read_range (ci, &g, i, off, len) == 1);
        hits++;
      }
    }
    if (pass == 0) {
      CHECK (cache_flush (ci) == 0);
      CHECK (cache_pending (ci) == 0);
      CHECK (cache_flush (ci) == 0);
      for (i = 0; i <= last; i++)
        CHECK (cache_contains (ci, i) == (i != missing));
    }
  }
  EXPECT_ERRORS (0);

  /* The data file holds the image's bytes at their offsets, and nothing
   * where the missing chunk is.
   */
  fd = open (data, O_RDONLY | O_CLOEXEC);
  CHECK (fd >= 0);
  for (i = 0; fd >= 0 && i <= last; i++) {
    if (i == missing)
      continue;
    fill (&g, i, want);
    CHECK (pread (fd, buf, len_of (&g, i), i * CHUNK) ==
           (ssize_t) len_of (&g, i));
    CHECK (memcmp (buf, want, len_of (&g, i)) == 0);
  }
  if (fd >= 0)
    close (fd);
  CHECK (chunk_data (data, &g, missing) == 0);
  CHECK (chunk_data (data, &g, 0) == CHUNK);

  /* Bad arguments: one error each, nothing stored. */
  CHECK (cache_read (ci, last + 1, 0, 1, buf) == -1);
  EXPECT_ERRORS (1);
  CHECK (cache_read (ci, last, 900, 101, buf) == -1);
  EXPECT_ERRORS (1);
  CHECK (cache_read (ci, 0, CHUNK, 1, buf) == -1);
  EXPECT_ERRORS (1);
  CHECK (cache_read (ci, 0, UINT32_MAX, 2, buf) == -1);
  EXPECT_ERRORS (1);
  memset (buf, 0, CHUNK);
  CHECK (cache_store (ci, last, buf, CHUNK) == -1);
  EXPECT_ERRORS (1);
  CHECK (cache_store (ci, missing, buf, 1000) == -1);
  EXPECT_ERRORS (1);
  CHECK (cache_store (ci, last + 1, buf, CHUNK) == -1);
  EXPECT_ERRORS (1);
  CHECK (!cache_contains (ci, missing));
  CHECK (cache_pending (ci) == 0);

  /* Storing a present chunk again does not change it: an image's bytes
   * never change, so the first copy stands.
   */
  memset (buf, 0x5a, CHUNK);
  CHECK (cache_store (ci, 0, buf, CHUNK) == 0);
  CHECK (cache_flush (ci) == 0);
  CHECK (read_all (ci, &g, 0) == 1);
  hits++;

  cache_image_stats (ci, &st);
  CHECK (st.stored == 10);
  CHECK (st.store_skipped == 0);
  CHECK (st.hits == hits);
  CHECK (st.misses == misses);
  CHECK (st.verified == 0); /* stored here: verified by the caller */
  CHECK (st.verify_failed == 0);
  CHECK (st.evicted == 0);

  /* The missing chunk can be stored later. */
  CHECK (store (ci, &g, missing) == 0);
  CHECK (cache_contains (ci, missing));
  CHECK (read_range (ci, &g, missing, 7, 77) == 1);
  CHECK (cache_flush (ci) == 0);
  CHECK (read_all (ci, &g, missing) == 1);
  /* Ten whole chunks and the short last one, in whole blocks. */
  CHECK (stat (data, &sb) == 0);
  blocks = (1000 + sb.st_blksize - 1) / sb.st_blksize * sb.st_blksize;
  CHECK (usage_of (d) == 10 * (uint64_t) CHUNK + blocks);
  EXPECT_ERRORS (0);

out:
  cache_image_close (ci);
  cache_dir_close (d);
}

/* ---- 3. persistence and verification -------------------------------- */

/* What the expected_fn of a test answers. */
struct expected {
  const struct geom *g;
  int64_t wrong_idx; /* gets a wrong hash */
  int64_t unknown_idx; /* "not known": 0 */
  int64_t error_idx; /* -1 */
  unsigned calls;
  uint64_t last_idx;
};

/* The cache_expected_fn of the tests: a manifest, wrong where told. */
static int
expected_hash (void *opaque, uint64_t idx, unsigned char sha256[32])
{
  struct expected *x = opaque;
  CLEANUP_FREE unsigned char *buf = test_alloc (x->g->chunk);

  x->calls++;
  x->last_idx = idx;
  if ((int64_t) idx == x->error_idx)
    return -1;
  if ((int64_t) idx == x->unknown_idx)
    return 0;
  fill (x->g, idx, buf);
  if ((int64_t) idx == x->wrong_idx)
    buf[0] ^= 1;
  SHA256 (buf, len_of (x->g, idx), sha256);
  return 1;
}

/* Pages of fd's file in the page cache: by cachestat (Linux 6.5),
 * which reads nothing, else by util-linux's fincore in a process of its
 * own (a mapping in this one, for mincore, would have valgrind read the
 * file's first page in).
 */
static uint64_t
pages_cached (int fd)
{
  struct {
    uint64_t off, len;
  } range = { 0, 0 };
  struct {
    uint64_t cache, dirty, writeback, evicted, recently_evicted;
  } cs;
  char cmd[128];
  unsigned long long bytes;
  FILE *fp;
  int r;

  if (syscall (451 /* cachestat */, fd, &range, &cs, 0) == 0)
    return cs.cache;
  snprintf (cmd, sizeof cmd, "fincore -b -n -o RES /proc/%d/fd/%d",
            (int) getpid (), fd);
  fp = popen (cmd, "r");
  if (fp == NULL)
    return UINT64_MAX;
  r = fscanf (fp, "%llu", &bytes);
  if (pclose (fp) != 0 || r != 1)
    return UINT64_MAX;
  return (bytes + 4095) / 4096;
}

/* First reads of every shape after a restart, of the eight chunks of
 * test_persistence's image, each followed by a second read: each first
 * read verifies the chunk, the second does not.  With resident, the
 * chunk is resident afterwards and nothing of it is in the page cache;
 * without, it is kept in the page cache instead.
 */
static void
first_reads (struct cache_image *ci, const struct geom *g, bool resident)
{
  static const uint32_t first[8][2] = {
    { 100, 200 },     { 0, CHUNK },     { CHUNK - 1, 1 }, { 0, 1 },
    { 12345, 40000 }, { 1, CHUNK - 2 }, { 0, CHUNK / 2 }, { 3, CHUNK - 10 },
  };
  struct cache_stats st;
  unsigned char byte;
  uint64_t i;

  for (i = 0; i < 8; i++) {
    CHECK (cache_contains (ci, i));
    CHECK (read_range (ci, g, i, first[i][0], first[i][1]) == 1);
    cache_image_stats (ci, &st);
    CHECK (st.verified == i + 1); /* first read of each verifies */
    CHECK (read_range (ci, g, i, 0, 10) == 1);
    cache_image_stats (ci, &st);
    CHECK (st.verified == i + 1); /* the second does not */
    CHECK (cache_resident_copy (&ci->resident, i,
                                atomic_load (&ci->entries[i].state) & ~1u, 0, 1,
                                &byte) == resident);
  }
  cache_image_stats (ci, &st);
  CHECK (st.hits == 16 && st.misses == 0 && st.verify_failed == 0);
  if (resident)
    CHECK (pages_cached (ci->data_fd) == 0);
  else /* kept in the page cache for the reads that follow */
    CHECK (pages_cached (ci->data_fd) > 0);
}

/* Hits after reopening, verified once; a manifest that disagrees. */
static void
test_persistence (const char *tmp)
{
  const struct geom g = { "persist", 8 * CHUNK - 7, CHUNK, 3 };
  struct expected x = { &g, 2, 4, 6, 0, 0 };
  char path[PATH_MAX], data[PATH_MAX];
  struct cache_dir *d = NULL;
  struct cache_image *ci = NULL;
  struct cache_stats st;
  uint64_t i;
  int way;

  join (path, sizeof path, tmp, "cache");
  image_file (data, sizeof data, path, &g, "data");
  d = cache_dir_open (path, 0);
  CHECK (d != NULL);
  if (d)
    ci = open_image (d, &g);
  CHECK (ci != NULL);
  if (ci == NULL)
    goto out;
  for (i = 0; i < 8; i++)
    CHECK (store (ci, &g, i) == 0);
  /* No flush: close must record them. */
  cache_image_close (ci);
  cache_dir_close (d);

  /* Three restarts: the first reads load each chunk into a resident
   * slot with O_DIRECT, then without it (tmpfs), then with no slot free
   * (the part asked for read into the caller's buffer, the rest around
   * it).
   */
  for (way = 0; way < 3; way++) {
    d = cache_dir_open (path, 0);
    ci = d ? open_image (d, &g) : NULL;
    CHECK (ci != NULL);
    if (ci == NULL)
      goto out;
    if (way >= 1 && ci->data_direct_fd >= 0) {
      close (ci->data_direct_fd);
      ci->data_direct_fd = -1;
    }
    if (way == 2)
      ci->resident.cap = 0;
    first_reads (ci, &g, way < 2);
    cache_image_close (ci);
    ci = NULL;
    if (way < 2)
      cache_dir_close (d);
  }

  /* With a manifest that disagrees about chunk 2. */
  ci = cache_image_open (d, g.identity, "test", g.size, g.chunk, expected_hash,
                         &x);
  CHECK (ci != NULL);
  if (ci == NULL)
    goto out;
  CHECK (read_range (ci, &g, 0, 1, 1) == 1);
  CHECK (x.calls == 1 && x.last_idx == 0);
  CHECK (chunk_data (data, &g, 2) == CHUNK);
  CHECK (read_range (ci, &g, 2, 0, 4096) == 0);
  CHECK (x.calls == 2 && x.last_idx == 2);
  cache_image_stats (ci, &st);
  CHECK (st.verify_failed == 1 && st.verified == 1);
  CHECK (!cache_contains (ci, 2));
  CHECK (chunk_data (data, &g, 2) == 0);
  CHECK (reads_zeros (data, 2 * CHUNK, CHUNK));
  CHECK (read_all (ci, &g, 2) == 0); /* stays a miss */
  cache_image_stats (ci, &st);
  CHECK (st.verify_failed == 1 && st.misses == 2);
  /* Unknown to the manifest: the recorded hash is used. */
  CHECK (read_all (ci, &g, 4) == 1);
  /* The manifest cannot answer: an error, and the chunk stays. */
  CHECK (read_all (ci, &g, 6) == -1);
  CHECK (cache_contains (ci, 6));
  x.error_idx = -1;
  CHECK (read_all (ci, &g, 6) == 1);
  CHECK (read_all (ci, &g, 7) == 1); /* the partial last chunk */
  cache_image_stats (ci, &st);
  CHECK (st.verified == 4 && st.verify_failed == 1);
  cache_image_close (ci);
  cache_dir_close (d);

  /* The drop was durable. */
  d = cache_dir_open (path, 0);
  ci = d ? open_image (d, &g) : NULL;
  CHECK (ci != NULL);
  if (ci == NULL)
    goto out;
  CHECK (!cache_contains (ci, 2));
  CHECK (read_all (ci, &g, 2) == 0);
  CHECK (read_all (ci, &g, 3) == 1);
  EXPECT_ERRORS (0);

out:
  cache_image_close (ci);
  cache_dir_close (d);
}

/* ---- at-rest tags (cache-key=) ------------------------------------ */

/* A cache directory opened with key k (NULL: none). */
static struct cache_dir *
open_dir_key (const char *path, const unsigned char *k)
{
  struct cache_dir *d = cache_dir_open (path, 0);

  if (d && k && cache_dir_set_key (d, k) == -1) {
    cache_dir_close (d);
    return NULL;
  }
  return d;
}

/* Store every chunk of image g in directory path opened with key k
 * (NULL: none).  0, or -1.
 */
static int
store_all_with (const char *path, const unsigned char *k, const struct geom *g)
{
  struct cache_dir *d = open_dir_key (path, k);
  struct cache_image *ci = d ? open_image (d, g) : NULL;
  int r = ci ? 0 : -1;
  uint64_t i;

  for (i = 0; ci && i < nr_chunks_of (g); i++)
    if (store (ci, g, i) != 0)
      r = -1;
  cache_image_close (ci);
  cache_dir_close (d);
  return r;
}

/* Open image g of directory path with key k and manifest x, read every
 * chunk whole; the stats after.  Returns how many reads gave the right
 * bytes (any wrong byte: -1).
 */
static int
read_all_with (const char *path, const unsigned char *k, const struct geom *g,
               struct expected *x, struct cache_stats *st)
{
  struct cache_dir *d = open_dir_key (path, k);
  struct cache_image *ci = NULL;
  int n = 0, r;
  uint64_t i;

  memset (st, 0, sizeof *st);
  if (d)
    ci = cache_image_open (d, g->identity, "test", g->size, g->chunk,
                           x ? expected_hash : NULL, x);
  if (ci == NULL) {
    cache_dir_close (d);
    return -1;
  }
  for (i = 0; i < nr_chunks_of (g); i++) {
    r = read_all (ci, g, i);
    if (r == 2 || r == -1)
      n = -1000;
    else
      n += r;
  }
  cache_image_stats (ci, st);
  cache_image_close (ci);
  cache_dir_close (d);
  return n < 0 ? -1 : n;
}

/* With a key, a restart trusts chunks by their tags; without one, or
 * with another, it hashes them; bytes changed at rest, a tag moved from
 * another chunk or image, a lost or short tags file: hashed, and never
 * wrong bytes.
 */
static void
test_tags (const char *tmp)
{
  const struct geom g = { "tags", 6 * CHUNK - 5, CHUNK, 7 };
  const struct geom g2 = { "tags-other", 6 * CHUNK - 5, CHUNK, 7 };
  struct expected x = { &g, -1, -1, -1, 0, 0 };
  struct expected x2 = { &g2, -1, -1, -1, 0, 0 };
  unsigned char k1[32], k2[32], tag[16], buf[16];
  char path[PATH_MAX], data[PATH_MAX], tags[PATH_MAX], tags2[PATH_MAX];
  CLEANUP_FREE unsigned char *chunk = test_alloc (CHUNK);
  struct cache_dir *d = NULL;
  struct cache_image *ci = NULL;
  struct cache_stats st;
  uint64_t i;
  int fd;

  memset (k1, 1, 32);
  memset (k2, 2, 32);
  join (path, sizeof path, tmp, "cache");
  image_file (data, sizeof data, path, &g, "data");
  image_file (tags, sizeof tags, path, &g, "tags");
  image_file (tags2, sizeof tags2, path, &g2, "tags");

  /* Stored with k1: each chunk gets a tag; the same bytes in another
   * image get other tags.
   */
  CHECK (store_all_with (path, k1, &g) == 0);
  CHECK (store_all_with (path, k1, &g2) == 0);
  CHECK (mode_of (tags) == (S_IFREG | 0600));
  CHECK (size_of (tags) == 6 * 16);

  /* A restart with k1: every chunk by its tag. */
  CHECK (read_all_with (path, k1, &g, &x, &st) == 6);
  CHECK (st.verified == 6 && st.verified_tag == 6 && st.verify_failed == 0);
  /* Without a key: hashed, the tags file ignored. */
  CHECK (read_all_with (path, NULL, &g, &x, &st) == 6);
  CHECK (st.verified == 6 && st.verified_tag == 0);

  /* Bytes changed at rest, tag kept: hashed, dropped. */
  CHECK (write_file (data, CHUNK + 5000, "XXXX", 4) == 0);
  CHECK (read_all_with (path, k1, &g, &x, &st) == 5);
  CHECK (st.verified_tag == 5 && st.verify_failed == 1);

  /* Chunk 3 given chunk 2's bytes and tag (and the hash in the map
   * left as it was): the tag does not fit chunk 3, and the manifest's
   * hash says no.  Likewise another image's tag for chunk 4.
   */
  fill (&g, 2, chunk);
  CHECK (write_file (data, 3 * CHUNK, chunk, CHUNK) == 0);
  fd = open (tags, O_RDWR);
  CHECK (fd >= 0 && pread (fd, tag, 16, 2 * 16) == 16 &&
         pwrite (fd, tag, 16, 3 * 16) == 16);
  if (fd >= 0)
    close (fd);
  fd = open (tags2, O_RDONLY);
  CHECK (fd >= 0 && pread (fd, buf, 16, 4 * 16) == 16);
  if (fd >= 0)
    close (fd);
  fd = open (tags, O_RDONLY);
  CHECK (fd >= 0 && pread (fd, tag, 16, 4 * 16) == 16);
  if (fd >= 0)
    close (fd);
  CHECK (memcmp (tag, buf, 16) != 0); /* per image, for the same bytes */
  CHECK (write_file (tags, 4 * 16, buf, 16) == 0);
  CHECK (read_all_with (path, k1, &g, &x, &st) == 4);
  CHECK (st.verify_failed == 1); /* chunk 3; chunk 4 hashed, right */
  CHECK (st.verified == 4 && st.verified_tag == 3);
  /* ... and chunk 4's tag was made right again. */
  CHECK (read_all_with (path, k1, &g, &x, &st) == 4);
  CHECK (st.verified_tag == 4);

  /* Another key: hashed, then tagged with it. */
  CHECK (read_all_with (path, k2, &g, &x, &st) == 4);
  CHECK (st.verified == 4 && st.verified_tag == 0);
  CHECK (read_all_with (path, k2, &g, &x, &st) == 4);
  CHECK (st.verified_tag == 4);
  /* so k1's tags are gone; the other image still has its own. */
  CHECK (read_all_with (path, k1, &g, &x, &st) == 4);
  CHECK (st.verified_tag == 0);
  CHECK (read_all_with (path, k1, &g2, &x2, &st) == 6);
  CHECK (st.verified_tag == 6);

  /* A lost tags file: hashed, made again; a short one: grown. */
  CHECK (unlink (tags) == 0);
  CHECK (read_all_with (path, k1, &g, &x, &st) == 4);
  CHECK (st.verified_tag == 0 && size_of (tags) == 6 * 16);
  CHECK (read_all_with (path, k1, &g, &x, &st) == 4);
  CHECK (st.verified_tag == 4);
  CHECK (truncate (tags, 16 * 3) == 0);
  CHECK (read_all_with (path, k1, &g, &x, &st) == 4);
  CHECK (st.verified_tag == 2 && size_of (tags) == 6 * 16);
  /* Without a manifest, a chunk hashed against the map's hash (which
   * whoever writes the cache can change) is not tagged again.
   */
  CHECK (unlink (tags) == 0);
  CHECK (read_all_with (path, k1, &g, NULL, &st) == 4);
  CHECK (st.verified == 4 && st.verified_tag == 0);
  CHECK (read_all_with (path, k1, &g, NULL, &st) == 4);
  CHECK (st.verified_tag == 0);
  CHECK (read_all_with (path, k1, &g, &x, &st) == 4);
  CHECK (read_all_with (path, k1, &g, NULL, &st) == 4);
  CHECK (st.verified_tag == 4);
  /* Another geometry of the same identity (a different chunk-size=):
   * the map and data start anew, and so do the tags.
   */
  {
    const struct geom half = { "tags", 6 * CHUNK - 5, CHUNK / 2, 7 };
    struct expected xh = { &half, -1, -1, -1, 0, 0 };

    d = open_dir_key (path, k1);
    ci = d ? open_image (d, &half) : NULL;
    CHECK (ci != NULL);
    if (ci == NULL)
      goto out;
    CHECK (size_of (tags) == (int64_t) nr_chunks_of (&half) * 16);
    CHECK (reads_zeros (tags, 0, nr_chunks_of (&half) * 16));
    for (i = 0; i < nr_chunks_of (&half); i++)
      CHECK (store (ci, &half, i) == 0);
    cache_image_close (ci);
    ci = NULL;
    cache_dir_close (d);
    d = NULL;
    CHECK (read_all_with (path, k1, &half, &xh, &st) == 12);
    CHECK (st.verified_tag == 12);
    /* Back to 1 MiB chunks: started anew again. */
    CHECK (store_all_with (path, k1, &g) == 0);
    CHECK (read_all_with (path, k1, &g, &x, &st) == 6);
    CHECK (st.verified_tag == 6);
  }
  /* A tags file that is not a file: no tags, hashed. */
  CHECK (unlink (tags) == 0 && mkdir (tags, 0700) == 0);
  CHECK (read_all_with (path, k1, &g, &x, &st) == 6);
  CHECK (st.verified == 6 && st.verified_tag == 0);
  CHECK (rmdir (tags) == 0);
  EXPECT_ERRORS (0);

out:
  cache_image_close (ci);
  cache_dir_close (d);
}

/* Several processes load a missing key file at once (two accel-mounts
 * starting together): each must get the one key made, none an error
 * (a maker's temporary second name once showed as "one name" refused).
 */
static void
test_key_file_race (const char *tmp)
{
  enum { PROCS = 6, ROUNDS = 40 };
  char path[PATH_MAX], key[PATH_MAX];
  unsigned char k[32], got[32];
  unsigned failed_before = test_nr_failed;
  int round, i, fds[PROCS][2], go[2];
  pid_t pids[PROCS];
  char c;

  join (path, sizeof path, tmp, "cache");
  join (key, sizeof key, tmp, "race.key");
  for (round = 0; round < ROUNDS && test_nr_failed == failed_before; round++) {
    unlink (key);
    CHECK (pipe (go) == 0);
    for (i = 0; i < PROCS; i++) {
      CHECK (pipe (fds[i]) == 0);
      pids[i] = start_child ();
      if (pids[i] == 0) {
        unsigned before = test_nr_failed;

        close (fds[i][0]);
        close (go[1]);
        /* NB: all start together when the parent closes go. */
        CHECK (read (go[0], &c, 1) == 0);
        CHECK (cache_key_load (key, path, k) == 0);
        CHECK (write_full (fds[i][1], k, 32) == 0);
        child_exit (before);
      }
      close (fds[i][1]);
    }
    close (go[0]);
    close (go[1]);
    for (i = 0; i < PROCS; i++) {
      CHECK (wait_child (pids[i]) == 0);
      CHECK (read (fds[i][0], i == 0 ? k : got, 32) == 32);
      CHECK (i == 0 || memcmp (k, got, 32) == 0);
      close (fds[i][0]);
    }
  }
  CHECK (cache_key_load (key, path, got) == 0 && memcmp (k, got, 32) == 0);
}

/* The key file: made when missing, read back, refused when others can
 * read it, inside the cache, a link, or not a key.
 */
static void
test_key_file (const char *tmp)
{
  unsigned char k[32], k2[32];
  char path[PATH_MAX], key[PATH_MAX], in[PATH_MAX], link_path[PATH_MAX];
  struct cache_dir *d = NULL;

  join (path, sizeof path, tmp, "cache");
  join (key, sizeof key, tmp, "node.key");
  join (in, sizeof in, path, "node.key");
  join (link_path, sizeof link_path, tmp, "link.key");
  d = cache_dir_open (path, 0);
  CHECK (d != NULL);

  CHECK (cache_key_load ("node.key", path, k) == -1);
  CHECK (test_error_says ("absolute path", NULL));
  CHECK (cache_key_load (key, path, k) == 0);
  CHECK (mode_of (key) == (S_IFREG | 0600) && size_of (key) == 65);
  CHECK (cache_key_load (key, path, k2) == 0 && memcmp (k, k2, 32) == 0);
  CHECK (d && cache_dir_set_key (d, k) == 0);

  CHECK (chmod (key, 0640) == 0);
  CHECK (cache_key_load (key, path, k2) == -1);
  CHECK (test_error_says ("chmod 600", NULL));
  CHECK (chmod (key, 0600) == 0);

  CHECK (cache_key_load (in, path, k2) == -1);
  CHECK (test_error_says ("must not be inside cache-dir", NULL));
  CHECK (mode_of (in) == 0); /* and not made there */

  CHECK (link (key, link_path) == 0); /* another name: refused */
  CHECK (cache_key_load (key, path, k2) == -1);
  CHECK (test_error_says ("one name", NULL));
  CHECK (unlink (link_path) == 0);
  CHECK (symlink (key, link_path) == 0);
  CHECK (cache_key_load (link_path, path, k2) == -1);
  CHECK (test_error_says (link_path, "symbolic link"));

  CHECK (write_file (key, 10, "zz", 2) == 0);
  CHECK (cache_key_load (key, path, k2) == -1);
  CHECK (test_error_says ("not a key", NULL));
  CHECK (truncate (key, 64) == 0);
  CHECK (cache_key_load (key, path, k2) == -1);
  CHECK (test_error_says ("not a key", NULL));
  CHECK (truncate (key, 0) == 0);
  CHECK (cache_key_load (key, path, k2) == -1);
  CHECK (test_error_says ("not a key", NULL));
  EXPECT_ERRORS (0);
  cache_dir_close (d);
  test_key_file_race (tmp);
}

/* ---- 4. damage at rest --------------------------------------------- */

/* Scribbled, truncated and lost files: misses, never wrong bytes. */
static void
test_damage (const char *tmp)
{
  const struct geom g = { "damage", 6 * CHUNK, CHUNK, 4 };
  char path[PATH_MAX], data[PATH_MAX], map[PATH_MAX];
  struct cache_dir *d = NULL;
  struct cache_image *ci = NULL;
  struct cache_stats st;
  uint64_t i;

  join (path, sizeof path, tmp, "cache");
  image_file (data, sizeof data, path, &g, "data");
  image_file (map, sizeof map, path, &g, "map");
  d = cache_dir_open (path, 0);
  ci = d ? open_image (d, &g) : NULL;
  CHECK (ci != NULL);
  if (ci == NULL)
    goto out;
  for (i = 0; i < 6; i++)
    CHECK (store (ci, &g, i) == 0);
  cache_image_close (ci);

  /* Scribble on chunk 1; read a part of it that is not scribbled on. */
  CHECK (write_file (data, CHUNK + 5000, "XXXX", 4) == 0);
  ci = open_image (d, &g);
  CHECK (ci != NULL);
  if (ci == NULL)
    goto out;
  CHECK (read_range (ci, &g, 1, 0, 16) == 0);
  cache_image_stats (ci, &st);
  CHECK (st.verify_failed == 1);
  CHECK (!cache_contains (ci, 1));
  CHECK (chunk_data (data, &g, 1) == 0);
  CHECK (read_all (ci, &g, 0) == 1);
  cache_image_close (ci);

  /* Truncate the data file in the middle of chunk 2. */
  CHECK (truncate (data, 2 * CHUNK + CHUNK / 2) == 0);
  ci = open_image (d, &g);
  CHECK (ci != NULL);
  if (ci == NULL)
    goto out;
  CHECK (size_of (data) == (int64_t) g.size);
  CHECK (read_all (ci, &g, 0) == 1);
  for (i = 2; i < 6; i++) {
    CHECK (read_range (ci, &g, i, 0, 100) == 0);
    CHECK (!cache_contains (ci, i));
  }
  cache_image_stats (ci, &st);
  CHECK (st.verify_failed == 4 && st.hits == 1);

  /* Truncated behind the back of a process that verified chunk 0: it
   * serves the chunk from memory while it holds it (as it was checked),
   * and once it does not, finds the data file short.
   */
  CHECK (truncate (data, 0) == 0);
  CHECK (read_all (ci, &g, 0) == 1);
  cache_resident_destroy (&ci->resident);
  cache_resident_init (&ci->resident, g.chunk);
  CHECK (read_all (ci, &g, 0) == 0);
  CHECK (!cache_contains (ci, 0));
  /* It can be stored again. */
  CHECK (store (ci, &g, 0) == 0);
  CHECK (cache_flush (ci) == 0);
  CHECK (read_all (ci, &g, 0) == 1);
  cache_image_close (ci);

  /* A lost map forgets every chunk and frees their blocks. */
  CHECK (unlink (map) == 0);
  ci = open_image (d, &g);
  CHECK (ci != NULL);
  if (ci == NULL)
    goto out;
  for (i = 0; i < 6; i++)
    CHECK (read_all (ci, &g, i) == 0);
  CHECK (blocks_of (data) == 0);
  CHECK (size_of (data) == (int64_t) g.size);
  EXPECT_ERRORS (0);

out:
  cache_image_close (ci);
  cache_dir_close (d);
}

/* ---- 5. crash safety ------------------------------------------------ */

/* In a child: store 0..3 and flush, store 4..7, then "crash". */
static void crash_child (const char *path, const struct geom *g,
                         bool flush_first) __attribute__ ((noreturn));

static void
crash_child (const char *path, const struct geom *g, bool flush_first)
{
  unsigned failed = test_nr_failed;
  struct cache_dir *d = cache_dir_open (path, 0);
  struct cache_image *ci = d ? open_image (d, g) : NULL;
  uint64_t i;

  CHECK (ci != NULL);
  if (ci == NULL)
    child_exit (failed);
  for (i = 0; i < 8; i++) {
    if (i == 4 && flush_first)
      CHECK (cache_flush (ci) == 0);
    CHECK (store (ci, g, i) == 0);
  }
  CHECK (cache_pending (ci) == (flush_first ? 4 : 8));
  child_exit (failed);
}

/* Unrecorded bytes of a dead process are never served, then punched. */
static void
test_crash (const char *tmp)
{
  const struct geom g = { "crash", 8 * CHUNK, CHUNK, 5 };
  const struct geom g2 = { "crash-served", 8 * CHUNK, CHUNK, 6 };
  char path[PATH_MAX], data[PATH_MAX], data2[PATH_MAX];
  struct cache_dir *d = NULL;
  struct cache_image *ci = NULL;
  pid_t pid;
  uint64_t i;

  join (path, sizeof path, tmp, "cache");
  image_file (data, sizeof data, path, &g, "data");
  image_file (data2, sizeof data2, path, &g2, "data");

  pid = start_child ();
  if (pid == 0)
    crash_child (path, &g, true);
  CHECK (wait_child (pid) == 0);
  /* The unrecorded bytes are there (the child did write them) ... */
  CHECK (data_bytes (data, 0, g.size) == 8 * CHUNK);

  /* ... until the next process opens the image alone. */
  d = cache_dir_open (path, 0);
  ci = d ? open_image (d, &g) : NULL;
  CHECK (ci != NULL);
  if (ci == NULL)
    goto out;
  for (i = 0; i < 4; i++) {
    CHECK (cache_contains (ci, i));
    CHECK (chunk_data (data, &g, i) == CHUNK);
    CHECK (read_all (ci, &g, i) == 1);
  }
  for (i = 4; i < 8; i++) {
    CHECK (!cache_contains (ci, i));
    CHECK (chunk_data (data, &g, i) == 0);
    CHECK (read_all (ci, &g, i) == 0);
  }
  CHECK (blocks_of (data) >= 4 * CHUNK && blocks_of (data) < 5 * CHUNK);
  cache_image_close (ci);

  /* A crash while another process serves the image: its bytes stay
   * until the image is opened alone, and are never served.
   */
  ci = open_image (d, &g2);
  CHECK (ci != NULL);
  if (ci == NULL)
    goto out;
  pid = start_child ();
  if (pid == 0)
    crash_child (path, &g2, false);
  CHECK (wait_child (pid) == 0);
  CHECK (data_bytes (data2, 0, g2.size) == 8 * CHUNK);
  for (i = 0; i < 8; i++)
    CHECK (read_all (ci, &g2, i) == 0);
  cache_image_close (ci);
  ci = open_image (d, &g2);
  CHECK (ci != NULL);
  CHECK (data_bytes (data2, 0, g2.size) == 0);
  CHECK (blocks_of (data2) == 0);
  EXPECT_ERRORS (0);

out:
  cache_image_close (ci);
  cache_dir_close (d);
}

/* ---- 6. the cap and LRU ---------------------------------------------- */

/* Usage never exceeds the cap; the least recently used chunks go. */
static void
test_cap (const char *tmp)
{
  const uint64_t cap = 8 * (uint64_t) CHUNK;
  const struct geom ga = { "lru-a", 40 * CHUNK, CHUNK, 7 };
  const struct geom gb = { "lru-b", 40 * CHUNK, CHUNK, 8 };
  char path[PATH_MAX], data[PATH_MAX];
  struct cache_dir *d = NULL;
  struct cache_image *a = NULL, *b = NULL;
  struct cache_stats st;
  uint32_t base = cache_now () - 10000;
  uint64_t i;

  /* One image: 21 chunks through a cap of 8.  Chunks 0 and 1 are read
   * (made recent) after 0..7 are stored, so they outlive the others.
   */
  join (path, sizeof path, tmp, "one");
  image_file (data, sizeof data, path, &ga, "data");
  d = cache_dir_open (path, cap);
  a = d ? open_image (d, &ga) : NULL;
  CHECK (a != NULL);
  if (a == NULL)
    goto out;
  for (i = 0; i < 21; i++) {
    CHECK (store (a, &ga, i) == 0);
    CHECK_USAGE (d, cap);
    CHECK (cache_flush (a) == 0);
    /* 19 and 20 keep the atime their flush gave them: now. */
    if (i < 19)
      set_atime (a, i, base + i);
    if (i == 7) {
      CHECK (read_range (a, &ga, 0, 0, 1) == 1);
      CHECK (read_range (a, &ga, 1, 0, 1) == 1);
      CHECK (atomic_load (&a->entries[0].atime) >= cache_now () - 1);
    }
  }
  for (i = 0; i < 21; i++) {
    bool want = i < 2 || i >= 15;
    CHECK (cache_contains (a, i) == want);
    CHECK (chunk_data (data, &ga, i) == (want ? CHUNK : 0));
    CHECK (read_all (a, &ga, i) == (want ? 1 : 0));
  }
  CHECK (usage_of (d) == cap);
  cache_image_stats (a, &st);
  CHECK (st.stored == 21 && st.store_skipped == 0);
  CHECK (st.evicted == 13);

  /* Evicting everything. */
  CHECK (cache_dir_evict_to (d, 0) == 0);
  CHECK (usage_of (d) == 0);
  for (i = 0; i < 21; i++)
    CHECK (read_all (a, &ga, i) == 0);
  cache_image_close (a);
  a = NULL;
  cache_dir_close (d);

  /* Two images share the cap: the least recently used chunks go, of
   * whichever image.
   */
  join (path, sizeof path, tmp, "two");
  d = cache_dir_open (path, cap);
  a = d ? open_image (d, &ga) : NULL;
  b = d ? open_image (d, &gb) : NULL;
  CHECK (a != NULL && b != NULL);
  if (a == NULL || b == NULL)
    goto out;
  for (i = 0; i < 6; i++) {
    CHECK (store (a, &ga, i) == 0);
    CHECK (cache_flush (a) == 0);
    set_atime (a, i, base + i);
  }
  for (i = 0; i < 6; i++) {
    CHECK (store (b, &gb, i) == 0);
    CHECK_USAGE (d, cap);
    CHECK (cache_flush (b) == 0);
    set_atime (b, i, base + 100 + i);
  }
  for (i = 0; i < 6; i++) {
    CHECK (cache_contains (a, i) == (i >= 4));
    CHECK (cache_contains (b, i));
  }
  CHECK (read_all (a, &ga, 4) == 1 && read_all (a, &ga, 5) == 1);
  for (i = 6; i < 8; i++) {
    CHECK (store (b, &gb, i) == 0);
    CHECK_USAGE (d, cap);
    CHECK (cache_flush (b) == 0);
    set_atime (b, i, base + 200 + i);
  }
  for (i = 0; i < 8; i++) {
    CHECK (read_all (a, &ga, i) == (i == 4 || i == 5 ? 1 : 0));
    CHECK (read_all (b, &gb, i) == (i >= 2 ? 1 : 0));
  }
  CHECK (usage_of (d) == cap);
  cache_image_close (a);
  cache_image_close (b);
  a = b = NULL;
  cache_dir_close (d);

  /* Chunks written but not yet recorded cannot be evicted: a store that
   * finds only those is skipped, not an error.
   */
  join (path, sizeof path, tmp, "pending");
  d = cache_dir_open (path, 4 * (uint64_t) CHUNK);
  a = d ? open_image (d, &ga) : NULL;
  CHECK (a != NULL);
  if (a == NULL)
    goto out;
  for (i = 0; i < 4; i++)
    CHECK (store (a, &ga, i) == 0);
  CHECK (store (a, &ga, 4) == 1);
  CHECK (!cache_contains (a, 4));
  CHECK_USAGE (d, 4 * (uint64_t) CHUNK);
  CHECK (cache_flush (a) == 0);
  for (i = 0; i < 4; i++)
    set_atime (a, i, base + 10 - i);
  CHECK (store (a, &ga, 4) == 0); /* evicts chunk 3, the oldest */
  CHECK (cache_flush (a) == 0);
  CHECK (!cache_contains (a, 3) && cache_contains (a, 0));
  CHECK (read_all (a, &ga, 4) == 1);
  cache_image_stats (a, &st);
  CHECK (st.store_skipped == 1 && st.stored == 5);
  cache_image_close (a);
  a = NULL;
  cache_dir_close (d);

  /* A cap below one chunk caches nothing. */
  join (path, sizeof path, tmp, "tiny");
  d = cache_dir_open (path, CHUNK / 2);
  a = d ? open_image (d, &ga) : NULL;
  CHECK (a != NULL);
  if (a == NULL)
    goto out;
  CHECK (store (a, &ga, 0) == 1);
  CHECK (usage_of (d) == 0);
  EXPECT_ERRORS (0);

out:
  cache_image_close (a);
  cache_image_close (b);
  cache_dir_close (d);
}

/* Chunks of images nobody serves go before those of served images,
 * however recently they were used: by a store making room under the
 * cap, and by gc.  Served images' chunks go once there are no others.
 */
static void
test_evict_unserved (const char *tmp)
{
  const uint64_t cap = 8 * (uint64_t) CHUNK;
  const struct geom ga = { "unserved-a", 16 * CHUNK, CHUNK, 26 };
  const struct geom gb = { "unserved-b", 8 * CHUNK, CHUNK, 27 };
  char path[PATH_MAX], data_b[PATH_MAX];
  struct cache_dir *d = NULL, *admin = NULL;
  struct cache_image *a = NULL, *b = NULL;
  struct cache_evict_result res;
  uint32_t base = cache_now () - 10000;
  uint64_t i;

  /* Under the cap: b, closed, used more recently than a. */
  join (path, sizeof path, tmp, "cap");
  image_file (data_b, sizeof data_b, path, &gb, "data");
  d = cache_dir_open (path, cap);
  a = d ? open_image (d, &ga) : NULL;
  b = a ? open_image (d, &gb) : NULL;
  CHECK (b != NULL);
  if (b == NULL)
    goto out;
  for (i = 0; i < 4; i++) {
    CHECK (store (a, &ga, i) == 0 && store (b, &gb, i) == 0);
  }
  CHECK (cache_flush (a) == 0 && cache_flush (b) == 0);
  for (i = 0; i < 4; i++) {
    set_atime (a, i, base + i);
    set_atime (b, i, base + 100 + i);
  }
  cache_image_close (b);
  b = NULL;
  CHECK (usage_of (d) == cap);
  /* Pure LRU would take a's chunks 0..3 here. */
  for (i = 4; i < 8; i++) {
    CHECK (store (a, &ga, i) == 0);
    CHECK_USAGE (d, cap);
    CHECK (cache_flush (a) == 0);
  }
  for (i = 0; i < 8; i++) {
    CHECK (cache_contains (a, i));
    CHECK (read_all (a, &ga, i) == 1);
  }
  for (i = 0; i < 4; i++)
    CHECK (chunk_data (data_b, &gb, i) == 0);
  /* Only served chunks left: the least recently used of them go. */
  CHECK (store (a, &ga, 8) == 0 && cache_flush (a) == 0);
  CHECK (!cache_contains (a, 0) && cache_contains (a, 1));
  cache_image_close (a);
  a = NULL;
  cache_dir_close (d);

  /* gc, with no cap: the same order. */
  join (path, sizeof path, tmp, "gc");
  image_file (data_b, sizeof data_b, path, &gb, "data");
  d = cache_dir_open (path, 0);
  admin = d ? cache_dir_open_existing (path) : NULL;
  a = admin ? open_image (d, &ga) : NULL;
  b = a ? open_image (d, &gb) : NULL;
  CHECK (b != NULL);
  if (b == NULL)
    goto out;
  for (i = 0; i < 4; i++)
    CHECK (store (a, &ga, i) == 0 && store (b, &gb, i) == 0);
  CHECK (cache_flush (a) == 0 && cache_flush (b) == 0);
  for (i = 0; i < 4; i++) {
    set_atime (a, i, base + i);
    set_atime (b, i, base + 100 + i);
  }
  /* Both served: plain LRU, a's oldest go. */
  CHECK (cache_dir_gc (admin, 7 * CHUNK, &res) == 0);
  CHECK (res.chunks == 1 && !cache_contains (a, 0) && cache_contains (b, 0));
  cache_image_close (b);
  b = NULL;
  CHECK (cache_dir_gc (admin, 3 * CHUNK, &res) == 0);
  CHECK (res.chunks == 4 && res.usage_after == 3 * (uint64_t) CHUNK);
  for (i = 0; i < 4; i++)
    CHECK (chunk_data (data_b, &gb, i) == 0);
  for (i = 1; i < 4; i++)
    CHECK (read_all (a, &ga, i) == 1);
  EXPECT_ERRORS (0);

out:
  cache_image_close (a);
  cache_image_close (b);
  cache_dir_close (admin);
  cache_dir_close (d);
}

/* ---- 7. eviction against readers ------------------------------------ */

struct race {
  struct cache_image *ci;
  const struct geom *g;
  atomic_bool stop;
  atomic_uint_fast64_t hits, misses, wrong, errors;
};

/* Read random ranges of chunk 0 until told to stop. */
static void *
race_reader (void *arg)
{
  struct race *rc = arg;
  const uint32_t clen = len_of (rc->g, 0);
  CLEANUP_FREE unsigned char *want = test_alloc (clen);
  CLEANUP_FREE unsigned char *got = test_alloc (clen);
  unsigned seed = (uintptr_t) arg;

  fill (rc->g, 0, want);
  while (!atomic_load (&rc->stop)) {
    uint32_t off = rand_r (&seed) % clen;
    uint32_t len = 1 + rand_r (&seed) % (clen - off);
    int r;

    if (rand_r (&seed) % 4 == 0)
      off = 0, len = clen;
    memset (got, 0, len);
    r = cache_read (rc->ci, 0, off, len, got);
    if (r == 1 && memcmp (got, want + off, len) == 0)
      rc->hits++;
    else if (r == 1)
      rc->wrong++;
    else if (r == 0)
      rc->misses++;
    else
      rc->errors++;
  }
  return NULL;
}

/* Evict everything and store chunk 0 again, until the time is up;
 * returns the number of failed calls.
 */
#define MIN_CYCLES 8

static unsigned
evict_store_loop (struct cache_dir *d, struct cache_image *ci,
                  const struct geom *g, uint64_t *cycles)
{
  struct timespec start;
  unsigned bad = 0;
  uint64_t n;

  clock_gettime (CLOCK_MONOTONIC, &start);
  /* NB: RACE_MS, but MIN_CYCLES at least: under valgrind (make
   * check-valgrind) on a loaded machine a cycle can take longer than
   * RACE_MS, and the readers must race some evictions.
   */
  for (n = 0; elapsed_ms (&start) < RACE_MS || n < MIN_CYCLES; n++) {
    bad += cache_dir_evict_to (d, 0) != 0;
    bad += store (ci, g, 0) != 0;
    /* Leave it pending now and then, so readers see that state too;
     * else leave it present for a moment, so they see hits.
     */
    if (n % 3 != 2) {
      bad += cache_flush (ci) != 0;
      usleep (100);
    }
  }
  *cycles = n;
  return bad;
}

/* Readers of chunk 0 while a thread, then a process, evicts it. */
static void
evict_race (const char *tmp)
{
  const struct geom g = { "race", 2 * CHUNK, CHUNK, 9 };
  char path[PATH_MAX];
  struct cache_dir *d = NULL;
  struct cache_image *ci = NULL, *ci2 = NULL;
  struct race r1, r2;
  struct cache_stats st;
  pthread_t t1, t2;
  uint64_t cycles = 0;
  unsigned failed = test_nr_failed;
  int phase, go[2];
  pid_t pid = -1;

  join (path, sizeof path, tmp, "cache");
  d = cache_dir_open (path, 0);
  ci = d ? open_image (d, &g) : NULL;
  /* A second opening of the image: its own first-read verification. */
  ci2 = d ? open_image (d, &g) : NULL;
  CHECK (ci != NULL && ci2 != NULL);
  if (ci == NULL || ci2 == NULL)
    goto out;

  /* Phase 0: a thread evicts; phase 1: another process does. */
  for (phase = 0; phase < 2; phase++) {
    memset (&r1, 0, sizeof r1);
    memset (&r2, 0, sizeof r2);
    r1.ci = ci, r1.g = &g;
    r2.ci = ci2, r2.g = &g;
    CHECK (store (ci, &g, 0) == 0 && cache_flush (ci) == 0);
    /* NB: the process is forked before the readers start, so that it
     * holds none of their memory.
     */
    if (phase == 1) {
      if (pipe (go) == -1)
        abort ();
      pid = start_child ();
      if (pid == 0) {
        struct cache_dir *cd = cache_dir_open (path, 0);
        struct cache_image *cci = cd ? open_image (cd, &g) : NULL;
        char c;

        close (go[1]);
        CHECK (read (go[0], &c, 1) == 0); /* the readers are running */
        CHECK (cci != NULL);
        if (cci) {
          CHECK (evict_store_loop (cd, cci, &g, &cycles) == 0);
        }
        cache_image_close (cci);
        cache_dir_close (cd);
        child_exit (failed);
      }
      close (go[0]);
    }
    if (pthread_create (&t1, NULL, race_reader, &r1) != 0 ||
        pthread_create (&t2, NULL, race_reader, &r2) != 0)
      abort ();
    if (phase == 0) {
      CHECK (evict_store_loop (d, ci, &g, &cycles) == 0);
    }
    else {
      close (go[1]);
      CHECK (wait_child (pid) == 0);
    }
    atomic_store (&r1.stop, true);
    atomic_store (&r2.stop, true);
    pthread_join (t1, NULL);
    pthread_join (t2, NULL);
    printf ("  evict race (%s): hits/misses: %" PRIuFAST64 "/%" PRIuFAST64
            ", %" PRIuFAST64 "/%" PRIuFAST64 "\n",
            phase == 0 ? "thread" : "process", r1.hits, r1.misses, r2.hits,
            r2.misses);
    CHECK (r1.wrong == 0 && r2.wrong == 0);
    CHECK (r1.errors == 0 && r2.errors == 0);
    /* Both outcomes happened, or the race was not run. */
    CHECK (r1.hits > 0 && r1.misses > 0);
    CHECK (r2.hits > 0 && r2.misses > 0);
  }
  cache_image_stats (ci2, &st);
  CHECK (st.verify_failed == 0);
  cache_image_stats (ci, &st);
  CHECK (st.verify_failed == 0);
  EXPECT_ERRORS (0);

out:
  cache_image_close (ci);
  cache_image_close (ci2);
  cache_dir_close (d);
}

/* On a tmpfs an eviction takes microseconds (msync and fdatasync cost
 * nothing), so evictions overlap reads far more often than on a disk.
 */
static void
test_evict_race (const char *tmp)
{
  char mnt[PATH_MAX];

  join (mnt, sizeof mnt, tmp, "mnt");
  CHECK (mkdir (mnt, 0700) == 0);
  if (!in_tmpfs (mnt, "size=64m", evict_race)) {
    printf ("  no tmpfs: racing on %s instead\n", tmp);
    evict_race (tmp);
  }
}

/* ---- 8. two processes, one cap ------------------------------------- */

/* Store 30 chunks of g under cap, checking usage after each, then read
 * back whatever is still cached; returns the number of hits.
 */
static unsigned
two_procs_worker (const char *path, const struct geom *g, uint64_t cap,
                  int go_fd)
{
  struct cache_dir *d = cache_dir_open (path, cap);
  struct cache_image *ci = d ? open_image (d, g) : NULL;
  unsigned stored = 0, hits = 0;
  uint64_t i;
  char c;
  int r;

  CHECK (ci != NULL);
  if (go_fd >= 0)
    CHECK (read (go_fd, &c, 1) == 0); /* start together */
  if (ci == NULL)
    goto out;
  for (i = 0; i < 30; i++) {
    r = store (ci, g, i);
    CHECK (r == 0 || r == 1);
    stored += r == 0;
    CHECK_USAGE (d, cap);
    if (i % 2 == 1)
      CHECK (cache_flush (ci) == 0);
  }
  CHECK (cache_flush (ci) == 0);
  CHECK_USAGE (d, cap);
  for (i = 0; i < 30; i++) {
    r = read_all (ci, g, i);
    CHECK (r == 0 || r == 1);
    hits += r == 1;
  }
  /* Each process has at most 2 chunks pending, so there is always
   * something to evict.
   */
  CHECK (stored == 30);

out:
  cache_image_close (ci);
  cache_dir_close (d);
  return hits;
}

/* Two processes storing under one cap at once. */
static void
test_two_procs (const char *tmp)
{
  const uint64_t cap = 8 * (uint64_t) CHUNK;
  const struct geom ga = { "proc-a", 30 * CHUNK, CHUNK, 10 };
  const struct geom gb = { "proc-b", 30 * CHUNK, CHUNK, 11 };
  char path[PATH_MAX];
  unsigned failed = test_nr_failed;
  struct cache_dir *d;
  struct cache_image *ci = NULL;
  uint64_t i;
  unsigned hits, child_hits = 0;
  int go[2], back[2];
  pid_t pid;

  join (path, sizeof path, tmp, "cache");
  if (pipe (go) == -1 || pipe (back) == -1)
    abort ();
  pid = start_child ();
  if (pid == 0) {
    close (go[1]);
    close (back[0]);
    hits = two_procs_worker (path, &gb, cap, go[0]);
    CHECK (write (back[1], &hits, sizeof hits) == sizeof hits);
    child_exit (failed);
  }
  close (go[0]);
  close (back[1]);
  usleep (10000);
  close (go[1]);
  hits = two_procs_worker (path, &ga, cap, -1);
  CHECK (read (back[0], &child_hits, sizeof child_hits) == sizeof child_hits);
  close (back[0]);
  CHECK (wait_child (pid) == 0);
  /* One process may evict all the other's chunks before it reads them
   * back (under valgrind one often finishes long before the other), but
   * the chunk stored last stays: its owner reads it after its own last
   * store, and reads evict nothing.
   */
  CHECK (hits + child_hits > 0);

  /* Whatever the child left cached is right, here too. */
  d = cache_dir_open (path, cap);
  ci = d ? open_image (d, &gb) : NULL;
  CHECK (ci != NULL);
  for (i = 0; ci && i < 30; i++)
    CHECK (read_all (ci, &gb, i) != 2);
  CHECK_USAGE (d, cap);
  cache_image_close (ci);
  cache_dir_close (d);
  EXPECT_ERRORS (0);
}

/* ---- 9. a full filesystem ------------------------------------------- */

/* Fill a 4 MiB tmpfs with 64 KiB chunks, no cap. */
static void
full_store (const char *mnt)
{
  const struct geom g = { "full", 200 * CHUNK + 123, CHUNK, 12 };
  char path[PATH_MAX];
  bool stored[201];
  struct cache_dir *d = NULL;
  struct cache_image *ci = NULL;
  struct cache_stats st;
  unsigned nr_stored = 0, nr_skipped = 0;
  uint64_t i;
  int r;

  join (path, sizeof path, mnt, "cache");
  d = cache_dir_open (path, 0);
  ci = d ? open_image (d, &g) : NULL;
  CHECK (ci != NULL);
  if (ci == NULL)
    goto out;
  for (i = 0; i < nr_chunks_of (&g); i++) {
    r = store (ci, &g, i);
    CHECK (r == 0 || r == 1);
    stored[i] = r == 0;
    nr_stored += r == 0;
    nr_skipped += r == 1;
    if (i % 8 == 7)
      CHECK (cache_flush (ci) == 0);
  }
  CHECK (nr_skipped > 0); /* it did fill up */
  CHECK (nr_stored > 0 && nr_stored < 64); /* 4 MiB */
  EXPECT_ERRORS (1); /* one warning */
  CHECK (cache_flush (ci) == 0);
  for (i = 0; i < nr_chunks_of (&g); i++)
    CHECK (read_all (ci, &g, i) == (stored[i] ? 1 : 0));
  cache_image_stats (ci, &st);
  CHECK (st.stored == nr_stored && st.store_skipped == nr_skipped);

out:
  cache_image_close (ci);
  cache_dir_close (d);
}

/* A filesystem filled by someone else (the cache shares it with other
 * files): chunks whose entries lie in pages of the map never touched
 * before must be misses and skipped stores, not a SIGBUS.
 */
static void
full_by_others (const char *mnt)
{
  const struct geom g = { "full-others", 20000 * 4096ULL, 4096, 13 };
  const uint64_t far = 10000; /* its entry is in page 98 of the map */
  char path[PATH_MAX], filler[PATH_MAX];
  CLEANUP_FREE char *buf = test_alloc (4096);
  struct cache_dir *d = NULL;
  struct cache_image *ci = NULL;
  struct statvfs sv;
  uint64_t i;
  int fd;

  join (path, sizeof path, mnt, "cache");
  d = cache_dir_open (path, 0);
  ci = d ? open_image (d, &g) : NULL;
  CHECK (ci != NULL);
  if (ci == NULL)
    goto out;
  for (i = 0; i < 4; i++)
    CHECK (store (ci, &g, i) == 0);
  CHECK (cache_flush (ci) == 0);

  memset (buf, 1, 4096);
  fd = open (join (filler, sizeof filler, mnt, "filler"),
             O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  CHECK (fd >= 0);
  while (fd >= 0 && write (fd, buf, 4096) == 4096)
    ;
  if (fd >= 0)
    close (fd);
  CHECK (statvfs (mnt, &sv) == 0 && sv.f_bavail == 0);

  CHECK (read_all (ci, &g, 1) == 1); /* cached chunks are still served */
  CHECK (read_all (ci, &g, far) == 0);
  CHECK (!cache_contains (ci, far + 200));
  CHECK (store (ci, &g, far + 400) == 1);
  CHECK (store (ci, &g, 5) == 1);
  CHECK (read_all (ci, &g, 2) == 1);
  EXPECT_ERRORS (1); /* one warning */

out:
  cache_image_close (ci);
  cache_dir_close (d);
}

/* A full filesystem: stores are skipped, nothing crashes. */
static void
test_full_disk (const char *tmp)
{
  char mnt[PATH_MAX];

  join (mnt, sizeof mnt, tmp, "mnt1");
  CHECK (mkdir (mnt, 0700) == 0);
  if (!in_tmpfs (mnt, "size=4m", full_store)) {
    printf ("  SKIP: full disk (no tmpfs)\n");
    return;
  }
  join (mnt, sizeof mnt, tmp, "mnt2");
  CHECK (mkdir (mnt, 0700) == 0);
  in_tmpfs (mnt, "size=4m", full_by_others);
}

/* ---- 10. geometry --------------------------------------------------- */

/* Which chunks' pages a process keeps (cache-pages.c): a chunk read
 * once is dropped, read again it is loaded whole and kept, and the ring
 * of kept chunks holds CACHE_RESIDENT_BYTES (at least 2 chunks).
 */
static void
test_pages (const char *tmp)
{
  struct cache_pages p;
  uint64_t i;

  (void) tmp;
  cache_pages_init (&p, 1024 * 1024);
  CHECK (p.cap == 16);
  CHECK (cache_pages_note_read (&p, 5) == CACHE_PAGES_DROP);
  CHECK (cache_pages_note_read (&p, 6) == CACHE_PAGES_DROP);
  CHECK (cache_pages_note_read (&p, 5) == CACHE_PAGES_LOAD);
  CHECK (cache_pages_note_read (&p, 5) == CACHE_PAGES_KEEP);
  CHECK (cache_pages_note_read (&p, 6) == CACHE_PAGES_LOAD);
  /* Verified chunks (read whole) are kept at once. */
  cache_pages_keep (&p, 100);
  CHECK (cache_pages_note_read (&p, 100) == CACHE_PAGES_KEEP);
  /* 16 more push out the oldest: 5 and 6 go, 100 goes. */
  for (i = 200; i < 216; i++)
    cache_pages_keep (&p, i);
  CHECK (cache_pages_note_read (&p, 100) != CACHE_PAGES_KEEP);
  CHECK (cache_pages_note_read (&p, 215) == CACHE_PAGES_KEEP);
  CHECK (cache_pages_note_read (&p, 201) == CACHE_PAGES_KEEP);
  cache_pages_destroy (&p);

  /* A chunk just stored counts as read once: its next read loads it
   * whole; storing a resident chunk again changes nothing.
   */
  cache_pages_init (&p, 1024 * 1024);
  cache_pages_stored (&p, 7);
  CHECK (cache_pages_note_read (&p, 7) == CACHE_PAGES_LOAD);
  CHECK (cache_pages_note_read (&p, 7) == CACHE_PAGES_KEEP);
  cache_pages_stored (&p, 7);
  CHECK (cache_pages_note_read (&p, 7) == CACHE_PAGES_KEEP);
  CHECK (cache_pages_note_read (&p, 8) == CACHE_PAGES_DROP);
  cache_pages_destroy (&p);

  /* Chunk 0 is a chunk like any other (slots hold index + 1). */
  cache_pages_init (&p, 1024 * 1024);
  CHECK (cache_pages_note_read (&p, 0) == CACHE_PAGES_DROP);
  CHECK (cache_pages_note_read (&p, 0) == CACHE_PAGES_LOAD);
  CHECK (cache_pages_note_read (&p, 0) == CACHE_PAGES_KEEP);
  cache_pages_destroy (&p);

  /* Large chunks: two at least. */
  cache_pages_init (&p, 64 * 1024 * 1024);
  CHECK (p.cap == 2);
  cache_pages_keep (&p, 1);
  cache_pages_keep (&p, 2);
  CHECK (cache_pages_note_read (&p, 1) == CACHE_PAGES_KEEP);
  cache_pages_keep (&p, 3);
  CHECK (cache_pages_note_read (&p, 1) != CACHE_PAGES_KEEP);
  cache_pages_destroy (&p);
}

/* Load chunk idx into a slot of r, its bytes all v, under generation
 * gen: true if a slot was free.
 */
static bool
load (struct cache_resident *r, uint64_t idx, unsigned char v, uint32_t gen)
{
  struct cache_resident_slot *s = cache_resident_claim (r, idx);

  if (s == NULL)
    return false;
  memset (s->buf, v, r->chunk_size);
  cache_resident_loaded (r, s, true, gen, r->chunk_size);
  return true;
}

/* Is chunk idx resident under gen, with bytes v? */
static bool
resident (struct cache_resident *r, uint64_t idx, unsigned char v, uint32_t gen)
{
  unsigned char got[3] = { 0, 0, 0 };

  return cache_resident_copy (r, idx, gen, r->chunk_size - 3, 3, got) == 1 &&
      got[0] == v && got[2] == v;
}

/* The chunks a process reads whole into memory (cache-resident.c):
 * slots are found by chunk and generation, the least
 * recently used that nobody reads is reused, and the ring holds
 * CACHE_RESIDENT_BYTES (no slot at all for chunks larger than half of
 * it).
 */
static void
test_resident (const char *tmp)
{
  struct cache_resident r;
  struct cache_resident_slot *s, *s2;
  unsigned char out[4];
  uint64_t i;

  (void) tmp;
  cache_resident_init (&r, 1024 * 1024);
  CHECK (r.cap == CACHE_RESIDENT_BYTES / (1024 * 1024));

  /* Found by chunk and generation; a range past what was loaded is not. */
  CHECK (!resident (&r, 5, 0x55, 4));
  CHECK (load (&r, 0, 0x10, 4)); /* slots hold index + 1 */
  CHECK (resident (&r, 0, 0x10, 4));
  CHECK (load (&r, 5, 0x55, 4));
  CHECK (resident (&r, 5, 0x55, 4));
  CHECK (!resident (&r, 5, 0x55, 6));
  CHECK (!resident (&r, 6, 0x55, 4));
  s = cache_resident_claim (&r, 9);
  CHECK (s != NULL);
  if (s) {
    memset (s->buf, 9, 100);
    cache_resident_loaded (&r, s, true, 2, 100);
    CHECK (cache_resident_copy (&r, 9, 2, 96, 4, out) == 1);
    CHECK (cache_resident_copy (&r, 9, 2, 97, 4, out) == 0);
  }
  /* A new generation of a chunk reloads its own slot. */
  CHECK (load (&r, 5, 0x56, 6));
  CHECK (resident (&r, 5, 0x56, 6) && !resident (&r, 5, 0x55, 4));
  /* A failed load leaves no slot. */
  s = cache_resident_claim (&r, 10);
  CHECK (s != NULL);
  if (s)
    cache_resident_loaded (&r, s, false, 0, 0);
  CHECK (cache_resident_copy (&r, 10, 0, 0, 1, out) == 0);
  /* A chunk being loaded is not claimed twice; a pinned slot is never
   * reused, and with every slot pinned there is none.
   */
  s = cache_resident_claim (&r, 11);
  CHECK (s != NULL);
  CHECK (cache_resident_claim (&r, 11) == NULL);
  for (i = 0; i + 1 < r.cap; i++) {
    s2 = cache_resident_claim (&r, 100 + i);
    CHECK (s2 != NULL && s2 != s);
  }
  CHECK (cache_resident_claim (&r, 200) == NULL);
  cache_resident_destroy (&r);

  /* The ring: the least recently used goes first. */
  cache_resident_init (&r, 64 * 1024);
  CHECK (r.cap == CACHE_RESIDENT_MAX);
  for (i = 0; i < CACHE_RESIDENT_MAX; i++)
    CHECK (load (&r, i, i, 0));
  CHECK (resident (&r, 0, 0, 0));
  CHECK (load (&r, 1000, 7, 0));
  CHECK (!resident (&r, 1, 1, 0));
  CHECK (resident (&r, 0, 0, 0) && resident (&r, 1000, 7, 0));
  CHECK (load (&r, 1001, 8, 0));
  CHECK (!resident (&r, 2, 2, 0) && resident (&r, 3, 3, 0));
  cache_resident_destroy (&r);

  /* Chunks too large to hold two of: none held. */
  cache_resident_init (&r, CACHE_RESIDENT_BYTES);
  CHECK (r.cap == 0);
  CHECK (cache_resident_claim (&r, 1) == NULL);
  CHECK (cache_resident_copy (&r, 1, 0, 0, 1, out) == 0);
  cache_resident_destroy (&r);
}

/* Bad geometry refused; maps of another format or geometry rebuilt. */
static void
test_geometry (const char *tmp)
{
  const struct geom g = { "geometry", 4 * CHUNK, CHUNK, 14 };
  const struct geom half = { "geometry", 4 * CHUNK, CHUNK / 2, 14 };
  const struct geom big = { "geometry", 5 * CHUNK, CHUNK, 14 };
  char path[PATH_MAX], data[PATH_MAX], map[PATH_MAX];
  struct cache_dir *d;
  struct cache_image *ci = NULL, *ci2;
  struct map_header h;
  uint64_t i;
  int fd;

  join (path, sizeof path, tmp, "cache");
  image_file (data, sizeof data, path, &g, "data");
  image_file (map, sizeof map, path, &g, "map");
  d = cache_dir_open (path, 0);
  CHECK (d != NULL);
  if (d == NULL)
    return;

  ci2 = cache_image_open (d, "x", NULL, 10 * CHUNK, 3000, NULL, NULL);
  CHECK (ci2 == NULL);
  EXPECT_ERRORS (1);
  cache_image_close (ci2);
  ci2 = cache_image_open (d, "x", NULL, 10 * CHUNK, 0, NULL, NULL);
  CHECK (ci2 == NULL);
  EXPECT_ERRORS (1);
  cache_image_close (ci2);
  /* Powers of two outside the manifest format's chunk sizes. */
  ci2 = cache_image_open (d, "x", NULL, 10 * CHUNK, 2048, NULL, NULL);
  CHECK (ci2 == NULL);
  EXPECT_ERRORS (1);
  cache_image_close (ci2);
  ci2 = cache_image_open (d, "x", NULL, 10 * CHUNK, 128 << 20, NULL, NULL);
  CHECK (ci2 == NULL);
  EXPECT_ERRORS (1);
  cache_image_close (ci2);
  ci2 = cache_image_open (d, "x", NULL, 0, CHUNK, NULL, NULL);
  CHECK (ci2 == NULL);
  EXPECT_ERRORS (1);
  cache_image_close (ci2);
  /* One byte, no description: fine. */
  ci2 = cache_image_open (d, "x", NULL, 1, CHUNK, NULL, NULL);
  CHECK (ci2 != NULL);
  EXPECT_ERRORS (0);
  cache_image_close (ci2);

  ci = open_image (d, &g);
  CHECK (ci != NULL);
  if (ci == NULL)
    goto out;
  for (i = 0; i < 4; i++)
    CHECK (store (ci, &g, i) == 0);
  CHECK (cache_flush (ci) == 0);

  /* A damaged header while another opening serves it: refused. */
  CHECK (write_file (map, 0, "GARBAGE!", 8) == 0);
  ci2 = open_image (d, &g);
  CHECK (ci2 == NULL);
  EXPECT_ERRORS (1);
  cache_image_close (ci2);
  cache_image_close (ci);

  /* Alone: rebuilt, every chunk forgotten and its blocks freed. */
  ci = open_image (d, &g);
  CHECK (ci != NULL);
  if (ci == NULL)
    goto out;
  EXPECT_ERRORS (0);
  for (i = 0; i < 4; i++)
    CHECK (read_all (ci, &g, i) == 0);
  CHECK (blocks_of (data) == 0);
  memset (&h, 0, sizeof h);
  fd = open (map, O_RDONLY | O_CLOEXEC);
  CHECK (fd >= 0 && pread (fd, &h, sizeof h, 0) == (ssize_t) sizeof h);
  if (fd >= 0)
    close (fd);
  CHECK (memcmp (h.magic, MAP_MAGIC, 8) == 0 && h.nr_chunks == 4);

  /* The same identity with another geometry (chunk size, image size),
   * and a short map: each is a new, empty cache.
   */
  for (i = 0; i < 4; i++)
    CHECK (store (ci, &g, i) == 0);
  cache_image_close (ci);
  ci = open_image (d, &half);
  CHECK (ci != NULL);
  if (ci == NULL)
    goto out;
  for (i = 0; i < 8; i++)
    CHECK (read_all (ci, &half, i) == 0);
  CHECK (blocks_of (data) == 0);
  CHECK (store (ci, &half, 7) == 0);
  cache_image_close (ci);
  ci = open_image (d, &big);
  CHECK (ci != NULL);
  if (ci == NULL)
    goto out;
  CHECK (read_all (ci, &big, 3) == 0);
  CHECK (blocks_of (data) == 0 && size_of (data) == 5 * CHUNK);
  CHECK (store (ci, &big, 4) == 0);
  cache_image_close (ci);
  CHECK (truncate (map, 100) == 0);
  ci = open_image (d, &big);
  CHECK (ci != NULL);
  if (ci == NULL)
    goto out;
  CHECK (read_all (ci, &big, 4) == 0 && blocks_of (data) == 0);
  EXPECT_ERRORS (0);

out:
  cache_image_close (ci);
  cache_dir_close (d);
}

/* ---- 11. many storing threads --------------------------------------- */

struct storer {
  struct cache_image *ci;
  const struct geom *g;
  unsigned first, n, bad;
};

/* Store chunks first .. first+n-1. */
static void *
storer_main (void *arg)
{
  struct storer *s = arg;
  unsigned i;

  for (i = 0; i < s->n; i++)
    s->bad += store (s->ci, s->g, s->first + i) != 0;
  return NULL;
}

/* nbdkit calls cache_store from many threads at once.  First, threads
 * that all find one slot left in the batch of pending chunks (held at
 * the directory lock until all have checked), then free-running ones
 * storing more than a batch with nobody flushing but cache_store.
 */
static void
test_threads (const char *tmp)
{
  enum { THREADS = 8, PER_THREAD = 100 };
  const struct geom g = { "threads", 2 * THREADS * PER_THREAD * 4096, 4096,
                          15 };
  char path[PATH_MAX];
  struct storer s[THREADS];
  pthread_t t[THREADS];
  struct cache_dir *d = NULL;
  struct cache_image *ci = NULL;
  struct cache_stats st;
  unsigned i, n, bad = 0;

  join (path, sizeof path, tmp, "cache");
  d = cache_dir_open (path, 0);
  ci = d ? open_image (d, &g) : NULL;
  CHECK (ci != NULL);
  if (ci == NULL)
    goto out;

  for (n = 0; n < ci->max_pending - 1; n++)
    CHECK (store (ci, &g, n) == 0);
  CHECK (cache_pending (ci) == ci->max_pending - 1);
  CHECK (cache_dir_lock (d) == 0);
  for (i = 0; i < THREADS; i++) {
    s[i] = (struct storer){ ci, &g, n + i, 1, 0 };
    if (pthread_create (&t[i], NULL, storer_main, &s[i]) != 0)
      abort ();
  }
  usleep (200000);
  cache_dir_unlock (d);
  for (i = 0; i < THREADS; i++) {
    pthread_join (t[i], NULL);
    bad += s[i].bad;
  }
  n += THREADS;
  CHECK (bad == 0);
  CHECK (cache_pending (ci) <= ci->max_pending);

  for (i = 0; i < THREADS; i++) {
    s[i] = (struct storer){ ci, &g, n + i * PER_THREAD, PER_THREAD, 0 };
    if (pthread_create (&t[i], NULL, storer_main, &s[i]) != 0)
      abort ();
  }
  for (i = 0; i < THREADS; i++) {
    pthread_join (t[i], NULL);
    bad += s[i].bad;
  }
  n += THREADS * PER_THREAD;
  CHECK (bad == 0);
  CHECK (cache_pending (ci) <= ci->max_pending);
  CHECK (cache_flush (ci) == 0);
  cache_image_stats (ci, &st);
  CHECK (st.stored == n);
  for (i = 0; i < n; i++) {
    CHECK (cache_contains (ci, i));
    CHECK (read_all (ci, &g, i) == 1);
  }
  cache_image_close (ci);
  ci = open_image (d, &g);
  for (i = 0; ci && i < n; i++)
    CHECK (read_all (ci, &g, i) == 1);
  EXPECT_ERRORS (0);

out:
  cache_image_close (ci);
  cache_dir_close (d);
}

/* A reader of test_readers: reads of chunks of the image in an order
 * of its own, whole or in parts, counting wrong answers.
 */
struct reader {
  struct cache_image *ci;
  const struct geom *g;
  unsigned seed, bad;
};

static void *
reader_main (void *arg)
{
  struct reader *r = arg;
  uint64_t n = nr_chunks_of (r->g), idx;
  uint32_t x = r->seed * 2654435761u + 1, off, len, clen;
  unsigned i;

  for (i = 0; i < 400; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    idx = x % n;
    clen = len_of (r->g, idx);
    switch (x >> 29) {
    case 0:
    case 1:
    case 2:
      off = 0, len = clen; /* whole: into a slot */
      break;
    default:
      off = (x >> 8) % clen;
      len = 1 + (x >> 3) % (clen - off);
    }
    if (read_range (r->ci, r->g, idx, off, len) != 1)
      r->bad++;
  }
  return NULL;
}

/* Threads reading the same few chunks at once, right after a restart:
 * first reads (verifying, into resident slots) race with whole and
 * partial reads of the same chunks and with slots being reused (more
 * chunks than slots); every read gets the right bytes, each chunk is
 * verified once.  With ci->resident.cap 0 (no slots), the same through
 * the page cache.
 */
static void
test_readers (const char *tmp)
{
  enum { THREADS = 6 };
  const struct geom g = { "readers", 12 * CHUNK - 100, CHUNK, 16 };
  char path[PATH_MAX];
  struct reader r[THREADS];
  pthread_t t[THREADS];
  struct cache_dir *d = NULL;
  struct cache_image *ci = NULL;
  struct cache_stats st;
  unsigned i, bad = 0, way;
  uint64_t n = nr_chunks_of (&g);

  join (path, sizeof path, tmp, "cache");
  d = cache_dir_open (path, 0);
  ci = d ? open_image (d, &g) : NULL;
  CHECK (ci != NULL);
  if (ci == NULL)
    goto out;
  for (i = 0; i < n; i++)
    CHECK (store (ci, &g, i) == 0);
  cache_image_close (ci);

  for (way = 0; way < 2; way++) {
    ci = open_image (d, &g);
    CHECK (ci != NULL);
    if (ci == NULL)
      goto out;
    /* NB: fewer slots than chunks, so that slots are reused under the
     * readers.
     */
    ci->resident.cap = way == 0 ? 4 : 0;
    for (i = 0; i < THREADS; i++) {
      r[i] = (struct reader){ ci, &g, i + 1 + way * THREADS, 0 };
      if (pthread_create (&t[i], NULL, reader_main, &r[i]) != 0)
        abort ();
    }
    for (i = 0; i < THREADS; i++) {
      pthread_join (t[i], NULL);
      bad += r[i].bad;
    }
    CHECK (bad == 0);
    cache_image_stats (ci, &st);
    CHECK (st.verified == n && st.verify_failed == 0 && st.misses == 0);
    if (way == 0)
      CHECK (st.loaded >= n);
    else
      CHECK (st.loaded == 0);
    cache_image_close (ci);
    ci = NULL;
  }
  EXPECT_ERRORS (0);

out:
  cache_image_close (ci);
  cache_dir_close (d);
}

/* ---- 12. administration: what accel-cache sees ---------------------- */

/* The image of the list whose id is that of g, or NULL. */
static const struct cache_image_info *
find_info (const struct cache_image_info *infos, size_t n, const struct geom *g)
{
  char hex[65];
  size_t i;

  sha256_hex (g->identity, hex);
  for (i = 0; i < n; i++)
    if (strcmp (infos[i].id, hex) == 0)
      return &infos[i];
  return NULL;
}

/* Opening an existing directory; the recorded cap; list, counters. */
/* A chunk stored here and not yet recorded (pending) that another
 * process stores, records and evicts meanwhile, punching the bytes:
 * reads of it here are misses, and none may keep the zeros they found in
 * a resident slot, whose generation is the one under which the chunk is
 * present once it is stored again (test-faults-cache once served such
 * zeros, two nbdkits evicting each other's chunks under a cap).
 */
static void
test_pending_evicted (const char *tmp)
{
  const struct geom g = { "pending", 4 * CHUNK, CHUNK, 23 };
  char path[PATH_MAX];
  struct cache_dir *da, *db;
  struct cache_image *a = NULL, *b = NULL;

  join (path, sizeof path, tmp, "pending");
  da = cache_dir_open (path, 0);
  db = cache_dir_open (path, 0);
  CHECK (da != NULL && db != NULL);
  if (da)
    a = open_image (da, &g);
  if (db)
    b = open_image (db, &g);
  CHECK (a != NULL && b != NULL);
  if (a == NULL || b == NULL)
    goto out;
  CHECK (store (a, &g, 1) == 0); /* pending in a */
  CHECK (store (b, &g, 1) == 0);
  CHECK (cache_flush (b) == 0); /* recorded by b */
  CHECK (cache_evict_chunk (b, 1, atomic_load (&b->entries[1].state)) == 0);
  CHECK (!(atomic_load (&a->entries[1].state) & STATE_PRESENT));
  CHECK (read_all (a, &g, 1) == 0); /* whole: a miss, zeros not kept */
  CHECK (read_range (a, &g, 1, 100, 200) == 0);
  CHECK (store (b, &g, 1) == 0);
  CHECK (cache_flush (b) == 0); /* present again */
  /* Still pending in a (its own store, which it trusts): the bytes b
   * stored.
   */
  CHECK (read_all (a, &g, 1) == 1);
  CHECK (read_range (a, &g, 1, 100, 200) == 1);
  CHECK (cache_flush (a) == 0); /* a's record fails: forgotten */
  CHECK (read_all (a, &g, 1) == 1); /* verified: the right bytes */
  CHECK (read_range (a, &g, 1, 100, 200) == 1);

out:
  cache_image_close (a);
  cache_image_close (b);
  cache_dir_close (da);
  cache_dir_close (db);
  EXPECT_ERRORS (0);
}

static void
test_admin_list (const char *tmp)
{
  /* An identity without a manifest spans lines, as the plugin's does. */
  const struct geom g = { "object:e/b/k\netag:\"x\"\nsize:655360", 10 * CHUNK,
                          CHUNK, 20 };
  const struct geom g2 = { "manifest:0123", 3 * CHUNK + 10, CHUNK, 21 };
  char path[PATH_MAX], f[PATH_MAX], hex[65];
  struct cache_dir *d = NULL, *admin = NULL;
  struct cache_image *ci = NULL, *ci2 = NULL;
  struct cache_image_info *infos = NULL;
  const struct cache_image_info *info;
  uint64_t cap = 0, counters[4];
  size_t n = 0;
  int fd;

  join (path, sizeof path, tmp, "cache");

  /* Refusals: missing, not a cache, another format, a file.  Nothing is
   * created.
   */
  CHECK (cache_dir_open_existing (path) == NULL);
  CHECK (test_error_says (path, "No such file or directory"));
  CHECK (mode_of (path) == 0);
  CHECK (cache_dir_open_existing (tmp) == NULL);
  CHECK (test_error_says ("is not an accel cache", CACHE_MARKER));
  CHECK (write_file (join (f, sizeof f, tmp, "accel-cache-v7"), 0, "", 0) == 0);
  CHECK (cache_dir_open_existing (tmp) == NULL);
  CHECK (test_error_says ("is an accel cache of format 7", "format 1 only"));
  CHECK (cache_dir_open_existing (f) == NULL);
  CHECK (test_error_says (f, "not a directory"));
  CHECK (mode_of (join (f, sizeof f, tmp, "lock")) == 0);

  /* The cap of the last process that opened it to serve. */
  d = cache_dir_open (path, 5 * (uint64_t) CHUNK);
  admin = cache_dir_open_existing (path);
  CHECK (d != NULL && admin != NULL);
  if (d == NULL || admin == NULL)
    goto out;
  CHECK (strcmp (cache_dir_path (admin), path) == 0);
  CHECK (cache_dir_recorded_cap (admin, &cap) == 1 &&
         cap == 5 * (uint64_t) CHUNK);
  cache_dir_close (admin);
  admin = cache_dir_open_existing (path); /* records nothing */
  CHECK (cache_dir_recorded_cap (admin, &cap) == 1 &&
         cap == 5 * (uint64_t) CHUNK);
  EXPECT_ERRORS (0);

  /* Reads are counted in the map, by bytes and by reads. */
  ci = cache_image_open (d, g.identity, "s3://b/one.img", g.size, g.chunk, NULL,
                         NULL);
  ci2 = cache_image_open (d, g2.identity, "s3://b/two.img", g2.size, g2.chunk,
                          NULL, NULL);
  CHECK (ci != NULL && ci2 != NULL);
  if (ci == NULL || ci2 == NULL)
    goto out;
  CHECK (store (ci, &g, 0) == 0 && store (ci, &g, 1) == 0);
  CHECK (store (ci, &g, 2) == 0 && store (ci2, &g2, 3) == 0);
  CHECK (read_range (ci, &g, 0, 0, 100) == 1); /* pending: a hit */
  CHECK (cache_flush (ci) == 0 && cache_flush (ci2) == 0);
  CHECK (read_range (ci, &g, 1, 0, CHUNK) == 1);
  CHECK (read_range (ci, &g, 7, 10, 1000) == 0);
  CHECK (read_range (ci, &g, 8, 0, 5) == 0);

  CHECK (cache_dir_list (admin, &infos, &n) == 0);
  CHECK (n == 2);
  info = find_info (infos, n, &g);
  CHECK (info != NULL);
  if (info) {
    CHECK (info->valid && info->serving);
    CHECK (test_str_is (info->identity, g.identity));
    CHECK (test_str_is (info->description, "s3://b/one.img"));
    CHECK (info->image_size == g.size && info->chunk_size == g.chunk);
    CHECK (info->nr_chunks == 10);
    CHECK (info->cached_chunks == 3 && info->cached_bytes == 3 * CHUNK);
    CHECK (info->disk_bytes >= 3 * CHUNK && info->disk_bytes < 4 * CHUNK);
    CHECK (info->hit_reads == 2 && info->hit_bytes == 100 + CHUNK);
    CHECK (info->miss_reads == 2 && info->miss_bytes == 1005);
    CHECK (info->last_use >= cache_now () - 2 &&
           info->last_use <= cache_now ());
  }
  /* Sorted by description. */
  CHECK (infos && test_str_is (infos[1].description, "s3://b/two.img"));
  info = find_info (infos, n, &g2);
  CHECK (info && info->cached_chunks == 1 && info->cached_bytes == 10);
  cache_image_info_free (infos, n);
  infos = NULL;

  /* The counters are at the place docs/cache-format.md gives, and
   * outlive the process that counted.
   */
  cache_image_close (ci);
  ci = NULL;
  fd = open (image_file (f, sizeof f, path, &g, "map"), O_RDONLY | O_CLOEXEC);
  CHECK (fd >= 0 &&
         pread (fd, counters, sizeof counters, 72) ==
             (ssize_t) sizeof counters);
  if (fd >= 0)
    close (fd);
  CHECK (counters[0] == 2 && counters[1] == 100 + CHUNK);
  CHECK (counters[2] == 2 && counters[3] == 1005);
  CHECK (cache_dir_list (admin, &infos, &n) == 0);
  info = find_info (infos, n, &g);
  CHECK (info && !info->serving && info->hit_bytes == 100 + CHUNK);
  CHECK (info && info->cached_chunks == 3);
  cache_image_info_free (infos, n);
  infos = NULL;

  /* A map of another format is listed, but as not valid. */
  sha256_hex (g.identity, hex);
  CHECK (write_file (image_file (f, sizeof f, path, &g, "map"), 8, "\x09", 1) ==
         0);
  CHECK (cache_dir_list (admin, &infos, &n) == 0);
  info = find_info (infos, n, &g);
  CHECK (info && !info->valid && info->cached_chunks == 0);
  CHECK (info && strcmp (info->id, hex) == 0);
  EXPECT_ERRORS (0);

  /* A recorded cap of 0 is "no cap". */
  cache_dir_close (cache_dir_open (path, 0));
  CHECK (cache_dir_recorded_cap (admin, &cap) == 1 && cap == 0);

out:
  cache_image_info_free (infos, n);
  cache_image_close (ci);
  cache_image_close (ci2);
  cache_dir_close (admin);
  cache_dir_close (d);
}

/* ---- 13. administration: evict, evict older, gc --------------------- */

/* Blocks of an image's data file, in chunks (rounded down). */
static int64_t
chunks_on_disk (const char *path, const struct geom *g)
{
  char f[PATH_MAX];

  return blocks_of (image_file (f, sizeof f, path, g, "data")) / CHUNK;
}

/* Evicting an image that is served and one that is not; evicting by
 * age; gc to a size, least recently used first.
 */
static void
test_admin_evict (const char *tmp)
{
  const struct geom ga = { "admin-a", 8 * CHUNK, CHUNK, 22 };
  const struct geom gb = { "admin-b", 8 * CHUNK, CHUNK, 23 };
  const struct geom gc = { "admin-c", 4 * CHUNK, CHUNK, 24 };
  char path[PATH_MAX], f[PATH_MAX], id_a[65], id_b[65], id_c[65];
  struct cache_dir *d = NULL, *admin = NULL;
  struct cache_image *a = NULL, *b = NULL, *c = NULL;
  struct cache_evict_result res;
  uint32_t now = cache_now ();
  uint64_t i;

  join (path, sizeof path, tmp, "cache");
  sha256_hex (ga.identity, id_a);
  sha256_hex (gb.identity, id_b);
  sha256_hex (gc.identity, id_c);
  d = cache_dir_open (path, 0);
  admin = d ? cache_dir_open_existing (path) : NULL;
  a = admin ? open_image (d, &ga) : NULL;
  b = a ? open_image (d, &gb) : NULL;
  c = b ? open_image (d, &gc) : NULL;
  CHECK (c != NULL);
  if (c == NULL)
    goto out;
  for (i = 0; i < 8; i++) {
    CHECK (store (a, &ga, i) == 0 && store (b, &gb, i) == 0);
    if (i < 4)
      CHECK (store (c, &gc, i) == 0);
  }
  CHECK (cache_flush (a) == 0 && cache_flush (b) == 0 && cache_flush (c) == 0);
  for (i = 0; i < 8; i++) {
    CHECK (read_all (a, &ga, i) == 1); /* verified by this process */
    set_atime (a, i, now - 100 + i);
    set_atime (b, i, now - 2000 + i);
    if (i < 4)
      set_atime (c, i, now - 3000 + i);
  }

  /* A served image: its chunks go, its directory stays, and the server
   * sees misses, then stores again.
   */
  CHECK (cache_dir_evict_image (admin, id_a, &res) == 0);
  CHECK (res.chunks == 8 && res.bytes == 8 * CHUNK);
  CHECK (res.removed == 0 && res.busy == 1);
  CHECK (res.usage_before == 20 * (uint64_t) CHUNK &&
         res.usage_after == 12 * (uint64_t) CHUNK);
  CHECK (chunks_on_disk (path, &ga) == 0);
  for (i = 0; i < 8; i++) {
    CHECK (!cache_contains (a, i));
    CHECK (read_all (a, &ga, i) == 0);
  }
  CHECK (store (a, &ga, 0) == 0 && cache_flush (a) == 0);
  CHECK (read_all (a, &ga, 0) == 1);

  /* Not served any more: the directory goes too. */
  cache_image_close (c);
  c = NULL;
  CHECK (cache_dir_evict_image (admin, id_b, &res) == 0);
  CHECK (res.chunks == 8 && res.busy == 1 && res.removed == 0);
  CHECK (snprintf (f, sizeof f, "%s/images/%s", path, id_c) < (int) sizeof f);
  CHECK (cache_dir_evict_image (admin, id_c, &res) == 0);
  CHECK (res.chunks == 4 && res.removed == 1 && res.busy == 0);
  CHECK (mode_of (f) == 0);
  /* An image that is not there. */
  CHECK (cache_dir_evict_image (admin, id_c, &res) == -1);
  CHECK (test_error_says (f, "No such file or directory"));
  /* And it can be opened again, from nothing. */
  c = open_image (d, &gc);
  CHECK (c != NULL && read_all (c, &gc, 0) == 0);
  cache_image_close (c);
  c = NULL;

  /* By age: b's old chunks go; a recent one stays.  c (closed, nothing
   * cached, last used never) is removed; b, served, is not.
   */
  for (i = 0; i < 8; i++) {
    CHECK (store (b, &gb, i) == 0);
  }
  CHECK (cache_flush (b) == 0);
  for (i = 0; i < 8; i++)
    set_atime (b, i, i < 5 ? now - 2000 : now);
  CHECK (cache_dir_evict_older (admin, now - 1000, &res) == 0);
  CHECK (res.chunks == 5 && res.removed == 1 && res.busy == 0);
  for (i = 0; i < 8; i++)
    CHECK (cache_contains (b, i) == (i >= 5));
  CHECK (read_all (a, &ga, 0) == 1);
  image_file (f, sizeof f, path, &gc, "map");
  CHECK (mode_of (f) == 0);

  /* gc: least recently used first, down to the size asked. */
  for (i = 0; i < 8; i++)
    CHECK (store (a, &ga, i) == 0);
  CHECK (cache_flush (a) == 0);
  for (i = 0; i < 8; i++)
    set_atime (a, i, now - 50 + i); /* older than b's 5..7 */
  CHECK (cache_dir_gc (admin, 4 * CHUNK, &res) == 0);
  CHECK (res.usage_before == 11 * (uint64_t) CHUNK);
  CHECK (res.usage_after == 4 * (uint64_t) CHUNK);
  CHECK (res.chunks == 7 && res.bytes == 7 * CHUNK);
  for (i = 0; i < 8; i++)
    CHECK (cache_contains (a, i) == (i == 7));
  for (i = 5; i < 8; i++)
    CHECK (read_all (b, &gb, i) == 1);
  /* Nothing to do. */
  CHECK (cache_dir_gc (admin, 100 * CHUNK, &res) == 0);
  CHECK (res.chunks == 0 && res.usage_after == 4 * (uint64_t) CHUNK);
  CHECK (cache_dir_gc (admin, 0, &res) == 0);
  CHECK (res.chunks == 4 && res.usage_after == 0);
  EXPECT_ERRORS (0);

out:
  cache_image_close (a);
  cache_image_close (b);
  cache_image_close (c);
  cache_dir_close (admin);
  cache_dir_close (d);
}

/* ---- 14. administration: verify -------------------------------------- */

/* cache_expected_fn for verify: the right hashes, except chunk 4's. */
static int
expected_but_4 (void *opaque, uint64_t idx, unsigned char sha256[32])
{
  const struct geom *g = opaque;
  CLEANUP_FREE unsigned char *buf = test_alloc (g->chunk);

  fill (g, idx, buf);
  SHA256 (buf, len_of (g, idx), sha256);
  if (idx == 4)
    sha256[0] ^= 1;
  return 1;
}

/* Damage under a process that trusts the chunk is found and dropped, so
 * that process sees a miss; a manifest's hashes are used when given.
 */
static void
test_admin_verify (const char *tmp)
{
  const struct geom g = { "admin-verify", 6 * CHUNK - 100, CHUNK, 25 };
  char path[PATH_MAX], data[PATH_MAX], id[65];
  struct cache_dir *d = NULL, *admin = NULL;
  struct cache_image *ci = NULL;
  struct cache_verify_result res;
  uint64_t i;

  join (path, sizeof path, tmp, "cache");
  image_file (data, sizeof data, path, &g, "data");
  sha256_hex (g.identity, id);
  d = cache_dir_open (path, 0);
  admin = d ? cache_dir_open_existing (path) : NULL;
  ci = admin ? open_image (d, &g) : NULL;
  CHECK (ci != NULL);
  if (ci == NULL)
    goto out;
  for (i = 0; i < 6; i++)
    CHECK (store (ci, &g, i) == 0);
  CHECK (cache_flush (ci) == 0);
  for (i = 0; i < 6; i++)
    CHECK (read_all (ci, &g, i) == 1);

  /* All good. */
  CHECK (cache_dir_verify_image (admin, id, NULL, NULL, &res) == 0);
  CHECK (res.checked == 6 && res.bad == 0 && res.changed == 0);

  /* Scribbled on after this process read it: it serves the chunk from
   * memory, as it was read (resident since the reads above: chunks read
   * after they were stored are), until verify drops the chunk.  Once
   * out of memory, it would serve the damage: a process verifies a
   * chunk once.
   */
  CHECK (write_file (data, 2 * CHUNK + 77, "XY", 2) == 0);
  CHECK (read_range (ci, &g, 2, 0, CHUNK) == 1);
  CHECK (cache_dir_verify_image (admin, id, NULL, NULL, &res) == 0);
  CHECK (res.checked == 6 && res.bad == 1);
  CHECK (!cache_contains (ci, 2));
  CHECK (read_range (ci, &g, 2, 0, CHUNK) == 0);
  CHECK (chunk_data (data, &g, 2) == 0);
  for (i = 0; i < 6; i++)
    if (i != 2)
      CHECK (read_all (ci, &g, i) == 1);

  /* A short last chunk (the data file truncated). */
  CHECK (truncate (data, 5 * CHUNK + 10) == 0);
  CHECK (cache_dir_verify_image (admin, id, NULL, NULL, &res) == 0);
  CHECK (res.checked == 5 && res.bad == 1);
  CHECK (!cache_contains (ci, 5));
  CHECK (truncate (data, g.size) == 0);

  /* Against a manifest: chunk 4's bytes do not match it. */
  CHECK (cache_dir_verify_image (admin, id, expected_but_4, (void *) &g,
                                 &res) == 0);
  CHECK (res.checked == 4 && res.bad == 1);
  CHECK (!cache_contains (ci, 4));
  CHECK (cache_contains (ci, 3));

  /* An image that is not there. */
  CHECK (cache_dir_verify_image (admin, "00ff", NULL, NULL, &res) == -1);
  CHECK (test_error_says ("00ff", "no such image"));
  EXPECT_ERRORS (0);

out:
  cache_image_close (ci);
  cache_dir_close (admin);
  cache_dir_close (d);
}

/* ---- 15. administration: manifest copies ---------------------------- */

/* A manifest copy is found by the SHA-256 of its file. */
static void
test_admin_manifests (const char *tmp)
{
  char path[PATH_MAX], dir[PATH_MAX], f[PATH_MAX], want[PATH_MAX];
  char identity[80], hex[65];
  const char *name = "0000000000000000000000000000000000000000000000000000"
                     "000000000001";
  struct cache_dir *d = NULL;
  struct cache_manifests *ms = NULL;

  join (path, sizeof path, tmp, "cache");
  d = cache_dir_open (path, 0);
  CHECK (d != NULL);
  if (d == NULL)
    return;
  /* No manifests directory at all. */
  ms = cache_manifests_open (d);
  CHECK (ms != NULL && cache_manifests_find (ms, "manifest:00") == NULL);
  cache_manifests_close (ms);

  join (dir, sizeof dir, path, "manifests");
  CHECK (mkdir (dir, 0700) == 0);
  CHECK (write_file (join (want, sizeof want, dir, name), 0, "manifest!", 9) ==
         0);
  CHECK (write_file (join (f, sizeof f, dir, "x.etag"), 0, "\"e\"", 3) == 0);
  CHECK (snprintf (f, sizeof f, "%s/%s.tmp", dir, name) < (int) sizeof f);
  CHECK (write_file (f, 0, "partial", 7) == 0);
  sha256_hex ("manifest!", hex);
  snprintf (identity, sizeof identity, "manifest:%s", hex);
  ms = cache_manifests_open (d);
  CHECK (ms != NULL);
  if (ms) {
    CHECK (test_str_is (cache_manifests_find (ms, identity), want));
    sha256_hex ("partial", hex);
    snprintf (identity, sizeof identity, "manifest:%s", hex);
    CHECK (cache_manifests_find (ms, identity) == NULL);
    CHECK (cache_manifests_find (ms, "object:x") == NULL);
    CHECK (cache_manifests_find (ms, NULL) == NULL);
  }
  cache_manifests_close (ms);
  EXPECT_ERRORS (0);
  cache_dir_close (d);
}

/* ---- main ----------------------------------------------------------- */

static unsigned nr_cases, nr_failed_cases;
static const char *only; /* run only cases whose name contains this */

/* Run one case in a child process and a directory of its own, removed
 * afterwards whatever happened: a crash, or a deadlock ended by the
 * alarm, fails that case only and leaves nothing behind.
 */
static void
run_case (const char *name, void (*fn) (const char *tmp))
{
  char tmp[] = "/tmp/accel-test-cache.XXXXXX";
  pid_t pid;
  int r = -1;

  if (only && strstr (name, only) == NULL)
    return;
  nr_cases++;
  if (mkdtemp (tmp) == NULL)
    perror ("mkdtemp");
  else {
    pid = start_child ();
    if (pid == 0) {
      int fds = count_fds ();

      test_main_pid = getpid ();
      alarm (120);
      fn (tmp);
      CHECK (count_fds () == fds); /* every descriptor closed */
      child_exit (0);
    }
    r = wait_child (pid);
    test_remove_tree (tmp);
  }
  if (r != 0)
    nr_failed_cases++;
  printf ("%s %s\n", r == 0 ? "PASS" : "FAIL", name);
}

/* Usage: test-cache [PATTERN] (only the cases whose name contains it). */
int
main (int argc, char *argv[])
{
  if (argc > 1)
    only = argv[1];
  setvbuf (stdout, NULL, _IOLBF, 0);
  test_capture_errors (true);
  umask (0); /* modes on disk are exactly those the cache asks for */

  run_case ("new directory: modes, marker, refusals", test_new_dir);
  run_case ("store, flush, read", test_store_read);
  run_case ("persistence and verification", test_persistence);
  run_case ("damage at rest", test_damage);
  run_case ("at-rest tags (cache-key=)", test_tags);
  run_case ("key file", test_key_file);
  run_case ("crash before flush", test_crash);
  run_case ("cap and LRU eviction", test_cap);
  run_case ("eviction: images nobody serves first", test_evict_unserved);
  run_case ("eviction against readers", test_evict_race);
  run_case ("two processes under one cap", test_two_procs);
  run_case ("full filesystem", test_full_disk);
  run_case ("geometry and foreign maps", test_geometry);
  run_case ("page cache: chunks read again kept", test_pages);
  run_case ("resident chunks: read whole into memory", test_resident);
  run_case ("readers racing after a restart", test_readers);
  run_case ("a pending chunk evicted by another process", test_pending_evicted);
  run_case ("many storing threads", test_threads);
  run_case ("admin: list, counters, recorded cap", test_admin_list);
  run_case ("admin: evict, evict older, gc", test_admin_evict);
  run_case ("admin: verify", test_admin_verify);
  run_case ("admin: manifest copies", test_admin_manifests);

  printf ("cache: %u cases, %u failed\n", nr_cases, nr_failed_cases);
  return nr_failed_cases == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
