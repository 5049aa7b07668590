/* accel: what the files of an upload share, in layers:
 * s3-upload-parallel.c runs the part jobs in parallel and counts
 * progress; s3-upload-multipart.c speaks the multipart protocol
 * (resume, create, send parts, complete, abort); s3-upload.c runs an
 * upload (options, hashing, the single PUT, checks).  s3-multipart.c
 * beside them builds and parses the protocol's XML.  Nothing here is for
 * other modules.
 */

#ifndef ACCEL_S3_UPLOAD_INTERNAL_H
#define ACCEL_S3_UPLOAD_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "s3-upload.h"
#include "s3-url.h"
#include "s3.h"

/* One part of the file: where it is, its hashes, and whether the
 * server has it.
 */
struct part {
  uint64_t offset, len;
  unsigned char md5[16];
  char sha256[65];
  char *etag; /* the server's ETag once it has the part, else NULL */
};

/* A job run on each part by upload_run_parallel: returns 0, or -1 with
 * errno set and a message in msg ("" if it was reported already).
 */
struct upload;
typedef int (*part_job) (struct upload *up, size_t i, char *msg, size_t msglen);

/* One call of s3_put_file. */
struct upload {
  struct s3_client *c;
  const char *url_str, *path;
  struct s3_url url;
  int fd;
  struct stat st; /* at open, to notice a change while hashing */
  uint64_t size, part_size;
  size_t nparts;
  struct part *parts;
  char *upload_id; /* multipart only */
  bool fresh; /* multipart: do not resume an upload in progress */
  bool resumed; /* multipart: an upload in progress was resumed */
  unsigned parallel;
  struct s3_put_options opts;

  /* One upload_run_parallel: the job, the next part to claim, and a flag that
   * stops the claiming after a failure.
   */
  part_job job;
  _Atomic size_t next;
  _Atomic bool stop;

  /* lock protects err, msg and done, and makes the progress callbacks
   * one at a time (they are called with it held).
   */
  pthread_mutex_t lock;
  int err; /* errno of the first failure, 0 if none */
  char msg[2560]; /* its message ("" if reported already) */
  uint64_t done; /* bytes of the file the server has */
};

/* Run job on every part with up to up->parallel threads, the caller's
 * among them.  Returns 0, or -1 with errno set and the first failure's
 * message in up->msg ("" if reported already), for the caller to
 * report with its context.
 */
extern int upload_run_parallel (struct upload *up, part_job job);

/* Count bytes of the file that the server has, and tell the caller's
 * progress function.
 */
extern void upload_progress_add (struct upload *up, uint64_t bytes);

/* Forget the ETags of the parts (found or sent). */
extern void upload_forget_parts (struct upload *up);

/* Step 3 for a file of more than one part: resume or create, send,
 * complete.  Returns 0, or -1 after report_error.  Sets *unconfirmed
 * if the completion could not be confirmed but may have happened.
 */
extern int upload_multipart (struct upload *up, bool *unconfirmed);

#endif /* ACCEL_S3_UPLOAD_INTERNAL_H */
