/* fuzz-manifest: the manifest reader (common/manifest/manifest-read.c,
 * manifest-check.c, manifest-query.c) on any file.
 *
 * The plugin opens a manifest that came from S3 or from an operator and
 * then trusts what the query functions return, so the input is written
 * to a file and opened with manifest_open, exactly as the plugin does;
 * if it is accepted, every query is run and what manifest.h promises
 * about the answers is checked (geometry, file order, extents inside
 * their file and the image).  Queries may still fail (with an error
 * reported) on a file corrupted where the quick check does not look;
 * they must not return nonsense.
 *
 * Seeds: manifests written by accel-index for tiny ext4, squashfs and
 * raw images (tests/fuzz/make-corpus.sh).
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "manifest.h"

/* Bounds on the work of one input: files and chunks looked up. */
#define MAX_FILES 256
#define MAX_CHUNKS 64

/* What manifest_foreach_file's callback keeps between files. */
struct walk {
  struct manifest *m;
  size_t nr_files;
  char prev[MANIFEST_MAX_PATH_LEN + 1];
};

/* A file's extents: in order, not overlapping, inside the file and
 * inside the image.
 */
static void
check_extents (struct manifest *m, const struct manifest_file *f)
{
  struct manifest_file g;
  struct manifest_extent *ext;
  uint64_t end = 0;
  size_t n, i;
  int r;

  r = manifest_file_extents (m, f->path, &g, &ext, &n);
  if (r == -1)
    return;
  FUZZ_CHECK (r == 0); /* it was just listed */
  FUZZ_CHECK (g.id == f->id && g.size == f->size && g.mode == f->mode);
  FUZZ_CHECK ((n == 0) == (ext == NULL));
  for (i = 0; i < n; i++) {
    FUZZ_CHECK (ext[i].length > 0);
    FUZZ_CHECK (ext[i].file_offset >= end);
    FUZZ_CHECK (ext[i].length <= f->size &&
                ext[i].file_offset <= f->size - ext[i].length);
    FUZZ_CHECK (ext[i].length <= manifest_image_size (m) &&
                ext[i].image_offset <= manifest_image_size (m) - ext[i].length);
    end = ext[i].file_offset + ext[i].length;
  }
  free (ext);
}

/* Paths come absolute, unique and in bytewise order. */
static int
visit_file (void *opaque, const struct manifest_file *f)
{
  struct walk *w = opaque;
  size_t len = strlen (f->path);

  FUZZ_CHECK (len >= 2 && len <= MANIFEST_MAX_PATH_LEN && f->path[0] == '/');
  FUZZ_CHECK (S_ISREG (f->mode));
  FUZZ_CHECK (f->size <= INT64_MAX);
  FUZZ_CHECK (w->nr_files == 0 || strcmp (w->prev, f->path) < 0);
  memcpy (w->prev, f->path, len + 1);
  check_extents (w->m, f);
  /* Enough to exercise the reader; a big map would only be slow. */
  return ++w->nr_files < MAX_FILES ? 0 : -1;
}

/* Geometry, zero chunks, hashes and the hot list. */
static void
check_chunks (struct manifest *m)
{
  uint64_t size = manifest_image_size (m), nr = manifest_nr_chunks (m), i;
  uint32_t cs = manifest_chunk_size (m);
  unsigned char sha[32];
  uint64_t *hot, idx;
  size_t n;

  FUZZ_CHECK (size >= 1 && size <= MANIFEST_MAX_IMAGE_SIZE);
  FUZZ_CHECK (cs >= MANIFEST_MIN_CHUNK_SIZE && cs <= MANIFEST_MAX_CHUNK_SIZE &&
              (cs & (cs - 1)) == 0);
  FUZZ_CHECK (nr == size / cs + (size % cs != 0) && nr <= MANIFEST_MAX_CHUNKS);
  FUZZ_CHECK (manifest_nr_zero_chunks (m) <= nr);
  FUZZ_CHECK (!manifest_chunk_is_zero (m, nr));
  FUZZ_CHECK (strcmp (manifest_fs_type (m), "ext4") == 0 ||
              strcmp (manifest_fs_type (m), "squashfs") == 0 ||
              strcmp (manifest_fs_type (m), "erofs") == 0 ||
              strcmp (manifest_fs_type (m), "raw") == 0);
  (void) manifest_image_sha256 (m);

  for (i = 0; i < nr && i < MAX_CHUNKS; i++) {
    (void) manifest_chunk_is_zero (m, i);
    if (manifest_chunk_sha256 (m, i, sha) == 0 &&
        manifest_find_chunk (m, sha, &idx) == 0)
      FUZZ_CHECK (idx < nr);
  }
  if (manifest_hot_chunks (m, &hot, &n) == 0) {
    FUZZ_CHECK (n <= nr && (n == 0) == (hot == NULL));
    for (i = 0; i < n; i++)
      FUZZ_CHECK (hot[i] < nr);
    free (hot);
  }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static char path[4096];
  struct manifest *m;
  struct walk *w;

  if (path[0] == '\0') {
    fuzz_quiet ();
    fuzz_dir_file ("manifest", path, sizeof path);
  }
  fuzz_write_file (path, data, size);
  m = manifest_open (path);
  if (m == NULL)
    return 0;

  check_chunks (m);
  w = calloc (1, sizeof *w);
  if (w == NULL)
    fuzz_fail ("calloc");
  w->m = m;
  (void) manifest_foreach_file (m, visit_file, w);
  FUZZ_CHECK (w->nr_files <= manifest_nr_files (m));
  free (w);
  manifest_close (m);
  return 0;
}
