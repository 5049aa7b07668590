/* accel: the pure parts of S3 uploads: sizes, ETags and XML.
 *
 * s3-upload.c does the I/O; what it decides with is here, without a
 * network, a clock or a file, so that tests/unit/test-s3-upload.c can
 * check it against S3's rules and hostile input: how a file is cut
 * into parts, which ETag S3 will give the result (so that a re-run can
 * see that the object is already there), the body of
 * CompleteMultipartUpload, and the listings (ListMultipartUploads,
 * ListParts) that let an interrupted upload be resumed.
 *
 * The listings are parsed with xml.h's bounded extractor; every field
 * is checked (numbers in range, IDs of sane length and characters) and
 * a page holding more entries than asked for is refused.  Nothing here
 * reports errors: functions return -1 (or NULL) with errno EINVAL
 * (malformed), E2BIG (over a cap) or ENOMEM, and the caller, which
 * knows the object, reports.
 */

#ifndef ACCEL_S3_MULTIPART_H
#define ACCEL_S3_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http-parse.h"

/* S3's rules for multipart uploads. */
#define S3_MIN_PART_SIZE (5ULL * 1024 * 1024) /* except the last part */
#define S3_MAX_PART_SIZE (5ULL * 1024 * 1024 * 1024)
#define S3_MAX_PARTS 10000
#define S3_DEFAULT_PART_SIZE (16ULL * 1024 * 1024)

/* Caps on what we accept from listings. */
#define S3_MAX_UPLOAD_ID 1024 /* bytes in an upload ID */
#define S3_MAX_TIMESTAMP 64 /* bytes in <Initiated> */
#define S3_LIST_PAGE 1000 /* entries we ask for per page, and accept */

/* "\"" + 32 hex digits + "-10000\"" and a NUL, with room to spare. */
#define S3_ETAG_LEN 48

/* The part size to use for size bytes when requested (0 = the default)
 * was asked for: requested, grown to a whole MiB big enough that the
 * file fits in S3_MAX_PARTS parts.  Returns 0 if no part size allowed
 * by S3 is enough.  requested must be at least S3_MIN_PART_SIZE.
 */
extern uint64_t s3_part_size (uint64_t size, uint64_t requested);

/* How many parts size bytes make (1 for an empty file). */
extern uint64_t s3_part_count (uint64_t size, uint64_t part_size);

/* The ETag S3 gives an object uploaded with one PUT: the quoted
 * lowercase hex MD5 of its bytes.
 */
extern void s3_single_etag (const unsigned char md5[16], char out[S3_ETAG_LEN]);

/* The ETag S3 gives a multipart object: the quoted hex MD5 of the n
 * binary part MD5s concatenated, then "-n".  Returns 0, or -1 (EINVAL
 * if n is 0 or over S3_MAX_PARTS, ENOMEM).
 */
extern int s3_multipart_etag (const unsigned char (*md5s)[16], size_t n,
                              char out[S3_ETAG_LEN]);

/* Do two ETags name the same content?  Surrounding quotes are
 * optional and hex digits compare without case.
 */
extern bool s3_etag_equal (const char *a, const char *b);

/* Content-MD5: the base64 of the binary MD5. */
extern void s3_md5_base64 (const unsigned char md5[16], char out[25]);

/* The body of CompleteMultipartUpload naming parts 1..n by their
 * ETags (XML-escaped), as a malloc'd string of *len bytes.  Returns
 * NULL with errno set on failure.
 */
extern char *s3_complete_xml (char *const *etags, size_t n, size_t *len);

/* The <UploadId> of a CreateMultipartUpload reply, checked, as a
 * malloc'd string.
 */
extern char *s3_parse_upload_id (const char *xml, size_t len);

/* One <Upload> of a ListMultipartUploads page. */
struct s3_listed_upload {
  const char *key; /* decoded */
  const char *upload_id;
  const char *initiated; /* as sent, e.g. "2024-05-01T12:00:00.000Z" */
};

/* Where the next page of a listing starts: the markers to send. */
struct s3_list_next {
  bool truncated;
  uint32_t part_marker; /* ListParts: <NextPartNumberMarker> */
  char *key_marker; /* ListMultipartUploads: <NextKeyMarker> ... */
  char *upload_id_marker; /* ... and <NextUploadIdMarker>, malloc'd */
};

/* Free the strings of next (not next itself) and zero it. */
extern void s3_list_next_free (struct s3_list_next *next);

/* Parse a ListMultipartUploads page: call fn for each <Upload> (at
 * most S3_LIST_PAGE; the strings live only during the call), and fill
 * in next, which the caller frees.  fn returns 0, or -1 to stop with
 * that result.  Returns 0 or -1.
 */
extern int s3_parse_list_uploads (const char *xml, size_t len,
                                  int (*fn) (void *opaque,
                                             const struct s3_listed_upload *u),
                                  void *opaque, struct s3_list_next *next);

/* One <Part> of a ListParts page. */
struct s3_listed_part {
  uint32_t number; /* 1 .. S3_MAX_PARTS */
  uint64_t size;
  const char *etag;
};

/* Parse a ListParts page, like s3_parse_list_uploads.  If it is
 * truncated, next->part_marker is where the next page starts (the
 * caller checks that it moves forward).
 */
extern int
s3_parse_list_parts (const char *xml, size_t len,
                     int (*fn) (void *opaque, const struct s3_listed_part *p),
                     void *opaque, struct s3_list_next *next);

#endif /* ACCEL_S3_MULTIPART_H */
