/* fuzz-index-erofs: the indexer (indexer/filemap-erofs.c, scan.c) on a
 * malformed erofs image; see fuzz-index.h.
 *
 * Seeds: tiny erofs images of each data layout built by
 * tests/fuzz/make-corpus.sh, most with the superblock checksum turned
 * off so that changes to the first block get past it.
 */

#include <stddef.h>
#include <stdint.h>

#include "fuzz-index.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  fuzz_index (data, size, "erofs");
  return 0;
}
