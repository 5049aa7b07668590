/* accel: the indexer on a fuzzed image (fuzz-index-ext4.c,
 * fuzz-index-squashfs.c and fuzz-index-erofs.c).
 *
 * The input is written to a file and indexed the way the indexer's
 * index_image (indexer/index.c) does it: fstype_detect on its first bytes, the file map
 * (filemap_write: libext2fs or libsquashfuse walking the untrusted
 * image, with our checks in front), the scan and the manifest writer.
 * What the writer accepted, the reader must accept too (manifest.h says
 * so): the manifest is opened with manifest_open and its number of
 * files compared with the file map's, so that a file map that the
 * plugin would refuse is found here rather than by a user.
 *
 * Inputs of another file system type than the target's are skipped:
 * the other target covers them.
 */

#ifndef ACCEL_FUZZ_INDEX_H
#define ACCEL_FUZZ_INDEX_H

#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "filemap.h"
#include "fstype.h"
#include "fuzz.h"
#include "manifest.h"
#include "scan.h"

/* Chunks of the smallest size: the most rows for a tiny image. */
#define FUZZ_INDEX_CHUNK_SIZE MANIFEST_MIN_CHUNK_SIZE

/* Big images only make the fuzzer slow, not smarter. */
#define FUZZ_INDEX_MAX_IMAGE (4 * 1024 * 1024)

/* As index.c's add_chunk. */
static inline int
fuzz_index_add_chunk (void *opaque, uint64_t idx, const unsigned char sha[32],
                      bool zero)
{
  return manifest_writer_add_chunk (opaque, idx, sha, zero);
}

/* Index data as an image if it is of type want. */
static inline void
fuzz_index (const uint8_t *data, size_t size, const char *want)
{
  static char image[4096], output[4096];
  const char *fs_type;
  struct manifest_writer *w;
  struct manifest *m;
  struct filemap_stats st;
  unsigned char sha[32];
  uint64_t nr_zero;
  int fd;

  if (image[0] == '\0') {
    fuzz_quiet ();
    fuzz_dir_file ("image", image, sizeof image);
    fuzz_dir_file ("manifest", output, sizeof output);
  }
  if (size == 0 || size > FUZZ_INDEX_MAX_IMAGE)
    return;
  fs_type =
      fstype_detect (data, size < FSTYPE_PROBE_SIZE ? size : FSTYPE_PROBE_SIZE);
  if (strcmp (fs_type, want) != 0)
    return;

  fuzz_write_file (image, data, size);
  fd = open (image, O_RDONLY | O_CLOEXEC);
  if (fd == -1)
    fuzz_fail (image);
  w = manifest_writer_create (output, size, FUZZ_INDEX_CHUNK_SIZE, fs_type);
  if (w == NULL)
    fuzz_fail ("manifest_writer_create");
  if (filemap_write (image, fd, size, fs_type, w, NULL, &st) == -1) {
    manifest_writer_abort (w);
    close (fd);
    return;
  }
  /* An image the file map accepted fails no later step. */
  FUZZ_CHECK (scan_image (fd, image, size, FUZZ_INDEX_CHUNK_SIZE,
                          fuzz_index_add_chunk, w, sha, &nr_zero) == 0);
  close (fd);
  FUZZ_CHECK (manifest_writer_finish (w, sha) == 0);

  m = manifest_open (output);
  FUZZ_CHECK (m != NULL);
  FUZZ_CHECK (manifest_nr_files (m) == st.nr_files);
  FUZZ_CHECK (manifest_nr_zero_chunks (m) == nr_zero);
  manifest_close (m);
  unlink (output);
}

#endif /* ACCEL_FUZZ_INDEX_H */
