/* accel-index: recognise the file system inside an image.
 *
 * The manifest records the file system so that a later version of the
 * indexer can map files to image extents (and the plugin can prefetch
 * by file).  Only the superblock magic numbers are looked at: this is a
 * label, not a check that the file system is sound.  Anything else is
 * "raw", which is always a correct answer.
 */

#include <stddef.h>
#include <string.h>

#include "fstype.h"

/* ext2/3/4 superblock: 1024 bytes in, s_magic at byte 56 of it, 0xEF53
 * little-endian.  NB: ext2 and ext3 images carry the same magic and are
 * reported as "ext4", the driver that reads all three.
 */
#define EXT_MAGIC_OFFSET 1080

/* squashfs superblock: s_magic 0x73717368 little-endian at byte 0. */
#define SQUASHFS_MAGIC "hsqs"

/* erofs superblock: 1024 bytes in, magic 0xE0F5E1E2 little-endian at
 * byte 0 of it.
 */
#define EROFS_MAGIC_OFFSET 1024
#define EROFS_MAGIC "\xe2\xe1\xf5\xe0"

/* The 4-byte magics first: they are the stronger tests.  NB: erofs
 * before ext4, since ext4's 2-byte magic falls in the erofs UUID.
 */
const char *
fstype_detect (const unsigned char *head, size_t len)
{
  if (len >= 4 && memcmp (head, SQUASHFS_MAGIC, 4) == 0)
    return "squashfs";
  if (len >= EROFS_MAGIC_OFFSET + 4 &&
      memcmp (head + EROFS_MAGIC_OFFSET, EROFS_MAGIC, 4) == 0)
    return "erofs";
  if (len >= EXT_MAGIC_OFFSET + 2 && head[EXT_MAGIC_OFFSET] == 0x53 &&
      head[EXT_MAGIC_OFFSET + 1] == 0xef)
    return "ext4";
  return "raw";
}
