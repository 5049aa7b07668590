/* accel: reading and writing a file descriptor's bytes in full. */

#ifndef ACCEL_FILE_IO_H
#define ACCEL_FILE_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* read or pread all of count bytes (at offset), retrying short reads and
 * EINTR.  Returns the bytes read (fewer only at end of file), or -1 with
 * errno.
 */
extern ssize_t read_full (int fd, void *buf, size_t count);
extern ssize_t pread_full (int fd, void *buf, size_t count, uint64_t offset);

/* write or pwrite all of count bytes (at offset), retrying short writes
 * and EINTR.  0, or -1 with errno (EIO if the system wrote nothing and
 * gave no error).
 */
extern int write_full (int fd, const void *buf, size_t count);
extern int pwrite_full (int fd, const void *buf, size_t count, uint64_t offset);

#endif /* ACCEL_FILE_IO_H */
