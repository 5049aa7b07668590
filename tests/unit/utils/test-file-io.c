/* accel: unit test of common/utils/file-io.c: whole reads and writes.
 *
 * Through a pipe, whose reads and writes the kernel splits (a write
 * larger than the pipe's buffer is written in parts while a child
 * reads), and through a file: a read that meets end of file returns
 * what there was, and errors come back as -1 with errno.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "file-io.h"

#include "test.h"

#define BIG (1024 * 1024) /* larger than a pipe's buffer */

static void
test_pipe (void)
{
  unsigned char *out = test_alloc (BIG), *in = test_alloc (BIG);
  int fds[2];
  pid_t pid;
  int status;
  size_t i;

  for (i = 0; i < BIG; i++)
    out[i] = i * 7 + i / 251;
  if (pipe (fds) == -1) {
    perror ("pipe");
    exit (EXIT_FAILURE);
  }
  pid = fork ();
  if (pid == 0) {
    int r;

    close (fds[0]);
    r = write_full (fds[1], out, BIG);
    /* The child's copies of the buffers are freed too, or valgrind
     * counts them as lost when it exits.
     */
    free (out);
    free (in);
    _exit (r == 0 ? 0 : 1);
  }
  close (fds[1]);
  /* The child's write is bigger than the pipe: the read gets it in
   * parts, and ends short at end of file when asked for more.
   */
  CHECK (read_full (fds[0], in, BIG) == BIG);
  CHECK (memcmp (in, out, BIG) == 0);
  CHECK (read_full (fds[0], in, 1) == 0);
  close (fds[0]);
  CHECK (waitpid (pid, &status, 0) == pid && WIFEXITED (status) &&
         WEXITSTATUS (status) == 0);
  free (out);
  free (in);
}

static void
test_file (void)
{
  char path[] = "/tmp/accel-test-file-io.XXXXXX";
  char buf[16];
  int fd = mkstemp (path);

  if (fd == -1) {
    perror ("mkstemp");
    exit (EXIT_FAILURE);
  }
  unlink (path);
  CHECK (write_full (fd, "hello", 5) == 0);
  CHECK (pwrite_full (fd, "HELLO world", 11, 2) == 0);
  CHECK (pwrite_full (fd, "", 0, 100) == 0);
  memset (buf, 0, sizeof buf);
  /* Short only at end of file. */
  CHECK (pread_full (fd, buf, sizeof buf, 0) == 13);
  CHECK (memcmp (buf, "heHELLO world", 13) == 0);
  CHECK (pread_full (fd, buf, 4, 9) == 4 && memcmp (buf, "orld", 4) == 0);
  CHECK (pread_full (fd, buf, sizeof buf, 13) == 0);
  CHECK (pread_full (fd, buf, 0, 0) == 0);
  CHECK (lseek (fd, 0, SEEK_SET) == 0);
  CHECK (read_full (fd, buf, 2) == 2 && memcmp (buf, "he", 2) == 0);
  close (fd);

  /* Errors: a closed descriptor, and one open the wrong way. */
  errno = 0;
  CHECK (read_full (fd, buf, 1) == -1 && errno == EBADF);
  errno = 0;
  CHECK (pread_full (fd, buf, 1, 0) == -1 && errno == EBADF);
  errno = 0;
  CHECK (write_full (fd, buf, 1) == -1 && errno == EBADF);
  errno = 0;
  CHECK (pwrite_full (fd, buf, 1, 0) == -1 && errno == EBADF);
  fd = open ("/dev/null", O_RDONLY);
  errno = 0;
  CHECK (write_full (fd, buf, 1) == -1 && errno == EBADF);
  close (fd);
}

int
main (void)
{
  test_pipe ();
  test_file ();
  return test_summary ("file-io");
}
