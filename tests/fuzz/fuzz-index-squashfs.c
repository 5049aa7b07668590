/* fuzz-index-squashfs: the indexer (indexer/filemap*.c, scan.c) on a
 * malformed squashfs image; see fuzz-index.h.
 *
 * Seeds: tiny squashfs images built by tests/fuzz/make-corpus.sh.
 */

#include <stddef.h>
#include <stdint.h>

#include "fuzz-index.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  fuzz_index (data, size, "squashfs");
  return 0;
}
