/* accel-index: recognise the file system inside an image. */

#ifndef ACCEL_FSTYPE_H
#define ACCEL_FSTYPE_H

#include <stddef.h>

/* Bytes from the start of the image that fstype_detect looks at. */
#define FSTYPE_PROBE_SIZE 4096

/* "ext4", "squashfs", "erofs" or "raw", from the first len bytes of the image
 * (len may be less than FSTYPE_PROBE_SIZE for a tiny image).
 */
const char *fstype_detect (const unsigned char *head, size_t len);

#endif /* ACCEL_FSTYPE_H */
