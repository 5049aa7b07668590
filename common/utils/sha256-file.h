/* accel: the SHA-256 of a whole file.
 *
 * A manifest is named by its file's SHA-256 (the cache identity
 * "manifest:HEX", the manifest-sha256= pin): the plugin computes it when
 * it opens a manifest, accel-cache to find the manifest of a cached
 * image.
 */

#ifndef ACCEL_SHA256_FILE_H
#define ACCEL_SHA256_FILE_H

/* The file's SHA-256 as 64 lowercase hex digits.  0, or -1 (error
 * reported, naming the file).
 */
int sha256_file (const char *path, char hex[65]);

#endif /* ACCEL_SHA256_FILE_H */
