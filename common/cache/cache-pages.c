/* accel: keeping a cache's data file out of the page cache.
 *
 * The file system above the NBD device keeps the hot bytes in its own
 * page cache, so the cache's data file should keep none: a second copy
 * would halve what a node's RAM holds.  Stores write with O_DIRECT where
 * they can, chunks read again and again are held in memory read with
 * O_DIRECT (cache-resident.c), and what any other read or write brought
 * into the page cache is dropped right after it.
 */

#include <fcntl.h>
#include <stdint.h>

#include "cache-internal.h"

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
   * Chunks read more than once are loaded whole instead
   * (cache-resident.c).
   */
  posix_fadvise (fd, 0, 0, POSIX_FADV_RANDOM);
}
