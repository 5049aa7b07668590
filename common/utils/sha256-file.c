/* accel: the SHA-256 of a whole file (see sha256-file.h). */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "hex.h"
#include "report.h"
#include "sha256-file.h"

int
sha256_file (const char *path, char hex[65])
{
  unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
  EVP_MD_CTX *ctx;
  unsigned len;
  ssize_t r;
  int fd, ret = -1;

  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd == -1) {
    report_error ("%s: %m", path);
    return -1;
  }
  ctx = EVP_MD_CTX_new ();
  if (ctx == NULL || EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL) != 1) {
    report_error ("%s: cannot start SHA-256", path);
    goto out;
  }
  while ((r = read (fd, buf, sizeof buf)) != 0) {
    if (r == -1 && errno == EINTR)
      continue;
    if (r == -1) {
      report_error ("%s: read: %m", path);
      goto out;
    }
    if (EVP_DigestUpdate (ctx, buf, r) != 1) {
      report_error ("%s: SHA-256 failed", path);
      goto out;
    }
  }
  if (EVP_DigestFinal_ex (ctx, md, &len) != 1 || len != 32) {
    report_error ("%s: SHA-256 failed", path);
    goto out;
  }
  hex_encode (md, 32, hex);
  ret = 0;
out:
  EVP_MD_CTX_free (ctx);
  close (fd);
  return ret;
}
