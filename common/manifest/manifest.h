/* accel: the manifest, a sqlite3 database describing one image.
 *
 * Every image in S3 has a manifest beside it, written once by
 * accel-index and read by the plugin.  It lists the SHA-256 of each
 * fixed-size chunk of the image, so that every chunk fetched from S3 (or
 * found in the local cache) can be verified before it is served, and a
 * zero flag per chunk so that zero chunks are never fetched at all.
 *
 * Format version 1 (full description: docs/manifest-format.md):
 *
 *   meta (key TEXT PRIMARY KEY, value NOT NULL)
 *     format_version  integer, 1
 *     image_size      integer, 1 .. 2^50 bytes
 *     chunk_size      integer, a power of two, 4 KiB .. 64 MiB
 *     image_sha256    text, 64 lowercase hex digits, SHA-256 of the image
 *     fs_type         text, "ext4", "squashfs", "erofs" or "raw"
 *     created_by      text, the program that wrote the manifest
 *   chunks (idx INTEGER PRIMARY KEY, sha256 BLOB NOT NULL, zero INTEGER
 *           NOT NULL), with an index on sha256: exactly one row for each
 *     idx in 0 .. nr_chunks-1, where nr_chunks = ceil (image_size /
 *     chunk_size); sha256 is 32 bytes; zero is 1 if every byte of the
 *     chunk is 0, else 0.  The last chunk may be short.
 *   files (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE,
 *          size INTEGER NOT NULL, mode INTEGER NOT NULL)
 *     one row per path of a regular file in the image: the absolute path
 *     ("/a/b"), the size in bytes and st_mode.
 *   extents (file_id INTEGER NOT NULL, file_offset INTEGER NOT NULL,
 *            image_offset INTEGER NOT NULL, length INTEGER NOT NULL),
 *           with an index on (file_id, file_offset, ...)
 *     the map from files inside the image to byte ranges of the image:
 *     length > 0 bytes of the file at file_offset are the image's bytes
 *     at image_offset.  A file's extents do not overlap and end within
 *     its size.  Bytes of a file outside its extents are holes (zeros),
 *     or for squashfs may also be compressed data (both tables may be
 *     empty).
 *   hot (rank INTEGER PRIMARY KEY, chunk_idx INTEGER NOT NULL)
 *     chunks worth prefetching, most important first (may be empty):
 *     accel-index fills it from trace files (trace-file.h), in the order
 *     the chunks were first read, leaving out all-zero chunks.
 *
 * The plugin treats a manifest as untrusted input: manifest_open checks
 * the file's size and header, opens it read-only with sqlite's defensive
 * settings and limits, runs a quick integrity check and then checks every
 * rule above, failing with a message that names the file and the rule.
 * After that the plugin can rely on the values this API returns.
 */

#ifndef ACCEL_MANIFEST_H
#define ACCEL_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The newest format this code reads and the only one it writes. */
#define MANIFEST_FORMAT_VERSION 1

/* Limits of the format (see docs/manifest-format.md for why). */
#define MANIFEST_MIN_CHUNK_SIZE (UINT32_C (4) * 1024)
#define MANIFEST_MAX_CHUNK_SIZE (UINT32_C (64) * 1024 * 1024)
#define MANIFEST_MAX_IMAGE_SIZE (UINT64_C (1) << 50)
#define MANIFEST_MAX_CHUNKS (UINT64_C (1) << 24)
/* The largest manifest file written, read, or downloaded (plugin,
 * accel-inspect): the file map of a large image with many small files
 * needs more than the chunk table's ~90 bytes a chunk.
 */
#define MANIFEST_MAX_FILE_SIZE (UINT64_C (2) * 1024 * 1024 * 1024)
#define MANIFEST_MAX_PATH_LEN 4096
#define MANIFEST_MAX_FILE_EXTENTS (UINT64_C (1) << 24)

/* The chunk size rule, for every program that takes or checks a chunk
 * size (the manifest reader and writer, trace files, the cache, the
 * plugin's chunk-size key, the tools' --chunk-size): true if n is a power
 * of two from MANIFEST_MIN_CHUNK_SIZE to MANIFEST_MAX_CHUNK_SIZE.  Errors
 * say "... is not " MANIFEST_CHUNK_SIZE_RULE.
 */
bool manifest_chunk_size_valid (uint64_t n);
#define MANIFEST_CHUNK_SIZE_RULE "a power of two from 4K to 64M"

/* Parse a chunk size given by a user: a size as parse_size reads it
 * ("64K", "1M", "4096") that is manifest_chunk_size_valid.  Returns 0,
 * or -1 if it is not one (nothing is reported: the caller knows which
 * option it was).
 */
int manifest_parse_chunk_size (const char *arg, uint32_t *out);

/* Reader.  After manifest_open returns, every function may be called
 * from any number of threads at once.
 */

struct manifest;

/* Open and fully validate a manifest.  NULL (error reported) on any
 * problem.
 */
struct manifest *manifest_open (const char *path);
/* The same, for a copy of a manifest at path: messages name name (the
 * URL it was downloaded from).
 */
struct manifest *manifest_open_as (const char *path, const char *name);
void manifest_close (struct manifest *m);

uint64_t manifest_image_size (const struct manifest *m);
uint32_t manifest_chunk_size (const struct manifest *m);
uint64_t manifest_nr_chunks (const struct manifest *m);
/* Bytes of chunk idx: the chunk size, less for a short last chunk
 * (0 for idx >= nr_chunks).
 */
uint32_t manifest_chunk_len (const struct manifest *m, uint64_t idx);
/* The SHA-256 (32 bytes) of the whole image. */
const unsigned char *manifest_image_sha256 (const struct manifest *m);
/* "ext4", "squashfs", "erofs" or "raw". */
const char *manifest_fs_type (const struct manifest *m);

/* True if chunk idx is all zero bytes.  Answered from memory; false for
 * idx >= nr_chunks.
 */
bool manifest_chunk_is_zero (const struct manifest *m, uint64_t idx);

/* Copy the SHA-256 of chunk idx to out.  0, or -1 (error reported). */
int
manifest_chunk_sha256 (struct manifest *m, uint64_t idx, unsigned char out[32]);

/* Find the lowest chunk whose SHA-256 is sha256.  0 found (*idx set),
 * 1 not found, -1 error (reported).
 */
int manifest_find_chunk (struct manifest *m, const unsigned char sha256[32],
                         uint64_t *idx);

/* The hot chunk list in rank order, as a malloc'd array the caller
 * frees (NULL when *n is 0).  0, or -1 (error reported).
 */
int manifest_hot_chunks (struct manifest *m, uint64_t **chunks, size_t *n);

/* How many chunks are all zero bytes (counted at open). */
uint64_t manifest_nr_zero_chunks (const struct manifest *m);

/* The file map: regular files of the image and their extents, checked
 * at open like everything else (every extent inside the image and
 * inside its file, no overlaps, a file's path unique).
 */
struct manifest_file {
  int64_t id;
  const char *path; /* absolute, "/a/b"; see each function for lifetime */
  uint64_t size;
  uint32_t mode; /* st_mode, with S_IFREG */
};

struct manifest_extent {
  uint64_t file_offset, image_offset, length;
};

/* How many files rows there are (counted at open). */
uint64_t manifest_nr_files (const struct manifest *m);

/* Return 0 to go on, or -1 (with the error reported) to stop. */
typedef int (*manifest_file_fn) (void *opaque, const struct manifest_file *f);

/* Call fn for every file, in order of path (bytewise, as memcmp).
 * f->path is valid only during the call.  fn runs without the
 * manifest's lock held, so it may call other functions on m (such as
 * manifest_file_extents).  0, or -1 if fn or the reading failed.
 */
int
manifest_foreach_file (struct manifest *m, manifest_file_fn fn, void *opaque);

/* The same walk, with each file's extents: fn gets the file and its n
 * extents in order of file_offset (NULL when n is 0), both valid only
 * during the call and checked as manifest_file_extents checks them.
 * For loading the whole map at once; 0, or -1 if fn or the reading
 * failed.
 */
typedef int (*manifest_file_extents_fn) (void *opaque,
                                         const struct manifest_file *f,
                                         const struct manifest_extent *e,
                                         size_t n);
int manifest_foreach_file_extents (struct manifest *m,
                                   manifest_file_extents_fn fn, void *opaque);

/* Look up one file by its path.  On 0 (found), *f is filled in with
 * f->path pointing to the path argument itself (so it lives as long as
 * the caller's string), and *extents is a malloc'd array of *n extents
 * in order of file_offset, which the caller frees (NULL when *n is 0).
 * 1 if there is no such file, -1 on error (reported).
 */
int manifest_file_extents (struct manifest *m, const char *path,
                           struct manifest_file *f,
                           struct manifest_extent **extents, size_t *n);

/* The layout of an ext4 image, kept so that the next version of the
 * image can be built around it (accel-mkimage --base) without the image
 * itself: the file system's identity and geometry, the inode number of
 * every path (directories, symlinks and devices too), and where each
 * directory's blocks are.  Optional (format version 1 readers ignore
 * it): accel-index writes it for ext4 images; manifests of other types
 * or made before it have none.
 */
struct manifest_fs_layout {
  unsigned char uuid[16];
  unsigned char hash_seed[16]; /* s_hash_seed, for directory indexes */
  uint64_t blocks; /* s_blocks_count */
  uint64_t inodes; /* s_inodes_count */
  uint32_t block_size;
  /* The size mke2fs made the file system before it was grown to blocks
   * (equal to blocks and inodes if it never was): mke2fs at this size
   * and a resize to blocks give the same metadata layout again.
   */
  uint64_t mkfs_blocks, mkfs_inodes;
  /* s_inode_size (fs_inode_size; 256 if the manifest predates it, the
   * only size accel-mkimage made then).
   */
  uint32_t inode_size;
  /* s_blocks_per_group and the groups per flex group (1 without
   * flex_bg): fs_blocks_per_group and fs_groups_per_flex, 0 in
   * manifests that predate them, whose geometry is mke2fs's own for
   * mkfs_blocks and mkfs_inodes (tools/mkimage/ext4.c).
   */
  uint32_t blocks_per_group, groups_per_flex;
};

/* One path of the image and its inode; "/" is the root. */
struct manifest_node {
  const char *path; /* valid only during the callback */
  uint64_t ino;
  uint32_t mode; /* st_mode, type bits included */
};

/* count blocks of inode ino from logical block lblk are the file
 * system blocks from block on (directories only).
 */
struct manifest_node_blocks {
  uint64_t ino, lblk, block, count;
};

/* 0 with *l filled in, 1 if m has no layout, -1 (error reported) if it
 * has a broken one.
 */
int manifest_fs_layout (struct manifest *m, struct manifest_fs_layout *l);

/* True if blocks_per_group and groups_per_flex are a group geometry
 * that a file system of block_size bytes per block can have (both 0:
 * not recorded).
 */
bool manifest_fs_groups_valid (uint32_t block_size, uint32_t blocks_per_group,
                               uint32_t groups_per_flex);

/* Call fn for every node (in the order written: a walk from the root)
 * or every run of node blocks.  Each row is checked as it is read
 * (path absolute and at most MANIFEST_MAX_PATH_LEN bytes, numbers in
 * range).  Return 0 from fn to go on, -1 (error reported) to stop.
 * 0, or -1.
 */
typedef int (*manifest_node_fn) (void *opaque, const struct manifest_node *n);
int
manifest_foreach_node (struct manifest *m, manifest_node_fn fn, void *opaque);
typedef int (*manifest_node_blocks_fn) (void *opaque,
                                        const struct manifest_node_blocks *b);
int manifest_foreach_node_blocks (struct manifest *m,
                                  manifest_node_blocks_fn fn, void *opaque);

/* What NEW costs a node whose cache holds every chunk of OLD
 * (manifest-diff.c, where the rule is spelled out): the chunks of NEW
 * that are not all zeros and whose SHA-256 is not that of any chunk of
 * OLD, each at its real length.  Nothing matches if the chunk sizes
 * differ.
 */
struct manifest_diff {
  uint64_t nr_chunks; /* chunks of NEW */
  uint64_t nr_zero_chunks; /* ... all zeros: never fetched */
  uint64_t data_bytes; /* bytes of NEW's other chunks */
  uint64_t fetch_chunks, fetch_bytes; /* NEW's chunks that OLD lacks */
  uint64_t distinct_chunks, distinct_bytes; /* the same, each hash once */
  bool chunk_size_mismatch; /* then every non-zero chunk is fetched */
  uint8_t *needed; /* private: see manifest_diff_needed */
};

/* Compare; 0, or -1 (error reported).  Free out with manifest_diff_free. */
int manifest_diff (struct manifest *old, struct manifest *new,
                   struct manifest_diff *out);
void manifest_diff_free (struct manifest_diff *d);

/* Whether chunk idx of NEW is one to fetch. */
bool manifest_diff_needed (const struct manifest_diff *d, uint64_t idx);

/* One file that differs between OLD and NEW (manifest-diff-files.c says
 * what each change can prove).  change is "added", "removed", "renamed"
 * (old_path is its name in OLD), "modified" (size or mode) or "fetched"
 * (same size and mode, but bytes in chunks to fetch).  size is in NEW
 * (in OLD for removed), fetch the file's bytes that lie in chunks to
 * fetch.  The strings live until manifest_diff_files returns.
 */
struct manifest_file_change {
  const char *change, *path, *old_path;
  uint64_t size, fetch;
};

struct manifest_file_counts {
  uint64_t added, removed, renamed, modified, fetched, unchanged;
};

typedef void (*manifest_file_change_fn) (void *opaque,
                                         const struct manifest_file_change *c);

/* Call fn for each file that differs, in path order, and count every
 * file.  d is manifest_diff (old, new).  0, or -1 (error reported).
 */
int
manifest_diff_files (struct manifest *old, struct manifest *new,
                     const struct manifest_diff *d, manifest_file_change_fn fn,
                     void *opaque, struct manifest_file_counts *counts);

/* Writer (accel-index).  Rows go into PATH.tmp inside one transaction;
 * manifest_writer_finish renames it over PATH, so a reader never sees a
 * partial manifest.  The output depends only on the calls made (and the
 * sqlite version): the same calls give a byte-identical file.
 * A writer must be used by one thread at a time.
 */
struct manifest_writer;

/* NULL (error reported) if an argument breaks a rule of the format or
 * the temporary file cannot be created.
 */
struct manifest_writer *
manifest_writer_create (const char *path, uint64_t image_size,
                        uint32_t chunk_size, const char *fs_type);

/* Chunks must be added in order, idx 0, 1, 2, ... */
int manifest_writer_add_chunk (struct manifest_writer *w, uint64_t idx,
                               const unsigned char sha256[32], bool zero);

/* The file map.  A file's extents are added right after the file (the
 * file_id from manifest_writer_add_file), in increasing, non-overlapping
 * order of file_offset, each inside the image and inside the file's
 * size, at most MANIFEST_MAX_FILE_EXTENTS of them; paths are absolute
 * and unique.  Anything else is refused (error reported), so that the
 * writer cannot produce a map the reader would refuse.  Files and chunks
 * may be added in any order relative to each other.
 */
int manifest_writer_add_file (struct manifest_writer *w, const char *path,
                              uint64_t size, uint32_t mode, int64_t *file_id);
int manifest_writer_add_extent (struct manifest_writer *w, int64_t file_id,
                                uint64_t file_offset, uint64_t image_offset,
                                uint64_t length);
int manifest_writer_add_hot (struct manifest_writer *w, uint64_t rank,
                             uint64_t chunk_idx);

/* The layout (see struct manifest_fs_layout): set it at most once,
 * then add nodes and node blocks.  Paths are absolute and unique,
 * inode numbers and blocks within the layout's counts.  Anything else
 * is refused (error reported).
 */
int manifest_writer_set_fs_layout (struct manifest_writer *w,
                                   const struct manifest_fs_layout *l);
int manifest_writer_add_node (struct manifest_writer *w, const char *path,
                              uint64_t ino, uint32_t mode);
int
manifest_writer_add_node_blocks (struct manifest_writer *w, uint64_t ino,
                                 uint64_t lblk, uint64_t block, uint64_t count);

/* Check that every chunk was added, commit, check that the file is
 * within MANIFEST_MAX_FILE_SIZE, fsync and rename over PATH.
 * Frees w whether it succeeds or fails; on failure the temporary file is
 * removed and PATH is untouched.  0, or -1 (error reported).  NB: if only
 * the final fsync of PATH's directory fails, the new manifest is already
 * in place (but may not survive a crash), and -1 is returned.
 */
int manifest_writer_finish (struct manifest_writer *w,
                            const unsigned char image_sha256[32]);

/* Give up: remove the temporary file and free w.  NULL is allowed. */
void manifest_writer_abort (struct manifest_writer *w);

/* Write a copy of m to path with the hot list hot[0..nr_hot-1] instead
 * of m's, byte-identical to the manifest that indexing m's image with
 * that hot list would give (same sqlite version).  path may be m's own
 * path: the copy is renamed over it when complete, and m stays usable.
 * 0, or -1 (error reported; path untouched).
 */
int manifest_copy (struct manifest *m, const char *path, const uint64_t *hot,
                   size_t nr_hot);

#endif /* ACCEL_MANIFEST_H */
