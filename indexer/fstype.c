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

/* squashfs first: its 4-byte magic at offset 0 is the stronger test. */
const char *
fstype_detect (const unsigned char *head, size_t len)
{
  if (len >= 4 && memcmp (head, SQUASHFS_MAGIC, 4) == 0)
    return "squashfs";
  if (len >= EXT_MAGIC_OFFSET + 2 && head[EXT_MAGIC_OFFSET] == 0x53 &&
      head[EXT_MAGIC_OFFSET + 1] == 0xef)
    return "ext4";
  return "raw";
}
