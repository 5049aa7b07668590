/* fuzz-index-ext4: the indexer (indexer/filemap*.c, scan.c) on a
 * malformed ext4 image; see fuzz-index.h.
 *
 * Seeds: tiny ext4 images built by tests/fuzz/make-corpus.sh.
 */

#include <stddef.h>
#include <stdint.h>

#include "fuzz-index.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  fuzz_index (data, size, "ext4");
  return 0;
}
