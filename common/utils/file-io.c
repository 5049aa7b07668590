/* accel: reading and writing a file descriptor's bytes in full
 * (system calls may move fewer bytes than asked, or be interrupted).
 *
 * NB: one loop serves both the positioned and the plain calls: offset -1
 * means "at the file position".
 */

#include <errno.h>
#include <unistd.h>

#include "file-io.h"

#define AT_POSITION UINT64_MAX

static ssize_t
read_loop (int fd, void *buf, size_t count, uint64_t offset)
{
  size_t done = 0;

  while (done < count) {
    ssize_t r = offset == AT_POSITION
        ? read (fd, (char *) buf + done, count - done)
        : pread (fd, (char *) buf + done, count - done, offset + done);

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

static int
write_loop (int fd, const void *buf, size_t count, uint64_t offset)
{
  size_t done = 0;

  while (done < count) {
    ssize_t w = offset == AT_POSITION
        ? write (fd, (const char *) buf + done, count - done)
        : pwrite (fd, (const char *) buf + done, count - done, offset + done);

    if (w == -1) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    if (w == 0) {
      errno = EIO;
      return -1;
    }
    done += w;
  }
  return 0;
}

ssize_t
read_full (int fd, void *buf, size_t count)
{
  return read_loop (fd, buf, count, AT_POSITION);
}

ssize_t
pread_full (int fd, void *buf, size_t count, uint64_t offset)
{
  return read_loop (fd, buf, count, offset);
}

int
write_full (int fd, const void *buf, size_t count)
{
  return write_loop (fd, buf, count, AT_POSITION);
}

int
pwrite_full (int fd, const void *buf, size_t count, uint64_t offset)
{
  return write_loop (fd, buf, count, offset);
}
