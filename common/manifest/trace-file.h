/* accel: trace files — which chunks of an image a workload read, in the
 * order it first read them.
 *
 * The plugin writes one with trace=FILE; accel-index --hot reads any
 * number of them into the manifest's hot list.  The format, version 1,
 * is plain text so that people can read, cut and concatenate traces:
 *
 *   accel-trace v1 image-sha256=HEX image-size=N chunk-size=N
 *   CHUNK
 *   CHUNK
 *   ...
 *
 * The first line names the image (the SHA-256 of the whole image, 64
 * lowercase hex digits, as in its manifest) and its geometry; each
 * following line is one chunk index in decimal, every line ending in
 * '\n'.  Nothing else is allowed: no blank lines, signs or spaces.
 */

#ifndef ACCEL_TRACE_FILE_H
#define ACCEL_TRACE_FILE_H

#include <stddef.h>
#include <stdint.h>

#define TRACE_MAGIC "accel-trace v1"

/* Longest first line (the fields above, with room to spare). */
#define TRACE_MAX_HEADER 256

/* What the first line says. */
struct trace_info {
  unsigned char image_sha256[32];
  uint64_t image_size;
  uint32_t chunk_size;
  uint64_t nr_chunks; /* computed: ceil (image_size / chunk_size) */
};

/* Format the first line, '\n' included, into buf (at least
 * TRACE_MAX_HEADER bytes).  Returns its length.
 */
size_t trace_format_header (char *buf, const unsigned char image_sha256[32],
                            uint64_t image_size, uint32_t chunk_size);

/* Read and check the trace at path: *info from its first line, and its
 * chunk indexes in file order with repeats dropped (a malloc'd array
 * the caller frees, NULL when *n is 0).  A geometry outside the
 * manifest format's limits, a chunk index out of range or any line
 * that is not one of the above is refused with a message naming the
 * file and the line.  0, or -1 (error reported).
 */
int trace_read (const char *path, struct trace_info *info, uint64_t **chunks,
                size_t *n);

#endif /* ACCEL_TRACE_FILE_H */
