/* accel: reading and writing a file descriptor's bytes in full
 * (system calls may move fewer bytes than asked, or be interrupted).
 */

#include <errno.h>
#include <unistd.h>

#include "file-io.h"

ssize_t
pread_full (int fd, void *buf, size_t count, uint64_t offset)
{
  size_t done = 0;

  while (done < count) {
    ssize_t r = pread (fd, (char *) buf + done, count - done, offset + done);
    if (r == -1) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    if (r == 0)
      break;
    done += r;
  }
  return done;
}
