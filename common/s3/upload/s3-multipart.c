/* accel: the pure parts of S3 uploads (see s3-multipart.h).
 *
 * Each listing is walked element by element with xml_find: the text of
 * one <Upload> or <Part> is looked at only within that element, so a
 * field of one entry cannot be taken for another's, and an entry that
 * lacks a field, or has one out of range, makes the whole page
 * malformed rather than being skipped (a reply we do not understand is
 * no basis for reusing anything).
 */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "cleanup.h"
#include "hex.h"
#include "http-parse.h"
#include "s3-multipart.h"
#include "xml.h"

/* Part sizes grow in whole MiB, which keeps them easy to read in logs. */
#define PART_SIZE_STEP (1024 * 1024)

/* Grow the part size only as much as the part count limit needs. */
uint64_t
s3_part_size (uint64_t size, uint64_t requested)
{
  uint64_t part = requested ? requested : S3_DEFAULT_PART_SIZE, need;

  if (size / S3_MAX_PARTS >= part) {
    need = size / S3_MAX_PARTS + (size % S3_MAX_PARTS != 0);
    part = (need + PART_SIZE_STEP - 1) / PART_SIZE_STEP * PART_SIZE_STEP;
  }
  return part > S3_MAX_PART_SIZE ? 0 : part;
}

/* An empty file is one empty part (a single PUT). */
uint64_t
s3_part_count (uint64_t size, uint64_t part_size)
{
  if (size == 0)
    return 1;
  return size / part_size + (size % part_size != 0);
}

/* "\"" MD5 "\"", in lowercase hex as S3 writes ETags. */
void
s3_single_etag (const unsigned char md5[16], char out[S3_ETAG_LEN])
{
  out[0] = '"';
  hex_encode (md5, 16, out + 1);
  out[33] = '"';
  out[34] = '\0';
}

/* What S3 documents nowhere but every client relies on: the MD5 of the
 * parts' binary MD5s, and the number of parts.
 */
int
s3_multipart_etag (const unsigned char (*md5s)[16], size_t n,
                   char out[S3_ETAG_LEN])
{
  unsigned char md5[EVP_MAX_MD_SIZE];
  unsigned int md5_len = 0;

  if (n == 0 || n > S3_MAX_PARTS) {
    errno = EINVAL;
    return -1;
  }
  if (EVP_Digest (md5s, n * 16, md5, &md5_len, EVP_md5 (), NULL) != 1 ||
      md5_len != 16) {
    errno = ENOMEM;
    return -1;
  }
  out[0] = '"';
  hex_encode (md5, 16, out + 1);
  snprintf (out + 33, S3_ETAG_LEN - 33, "-%zu\"", n);
  return 0;
}

/* The inside of an ETag: without surrounding whitespace and quotes. */
static void
etag_inner (const char *s, const char **start, size_t *len)
{
  size_t n;

  while (*s == ' ' || *s == '\t')
    s++;
  n = strlen (s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
    n--;
  if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
    s++;
    n -= 2;
  }
  *start = s;
  *len = n;
}

/* Servers differ on quoting ETags in XML listings, never on content. */
bool
s3_etag_equal (const char *a, const char *b)
{
  const char *sa, *sb;
  size_t la, lb;

  etag_inner (a, &sa, &la);
  etag_inner (b, &sb, &lb);
  return la > 0 && la == lb && strncasecmp (sa, sb, la) == 0;
}

/* 16 bytes make 24 base64 characters. */
void
s3_md5_base64 (const unsigned char md5[16], char out[25])
{
  EVP_EncodeBlock ((unsigned char *) out, md5, 16);
}

/* Append s to fp with the XML special characters escaped. */
static void
put_escaped (FILE *fp, const char *s)
{
  for (; *s; s++) {
    switch (*s) {
    case '&':
      fputs ("&amp;", fp);
      break;
    case '<':
      fputs ("&lt;", fp);
      break;
    case '>':
      fputs ("&gt;", fp);
      break;
    default:
      fputc (*s, fp);
    }
  }
}

/* Parts must be listed in ascending order, each once. */
char *
s3_complete_xml (char *const *etags, size_t n, size_t *len)
{
  char *r = NULL;
  FILE *fp;
  size_t i;

  fp = open_memstream (&r, len);
  if (fp == NULL)
    return NULL;
  fputs ("<CompleteMultipartUpload>", fp);
  for (i = 0; i < n; i++) {
    fprintf (fp, "<Part><PartNumber>%zu</PartNumber><ETag>", i + 1);
    put_escaped (fp, etags[i]);
    fputs ("</ETag></Part>", fp);
  }
  fputs ("</CompleteMultipartUpload>", fp);
  if (fclose (fp) == EOF) {
    free (r);
    errno = ENOMEM;
    return NULL;
  }
  return r;
}

/* Upload IDs go into query strings and messages: printable ASCII of a
 * sane length only.
 */
static bool
upload_id_valid (const char *id)
{
  size_t len = strlen (id), i;

  if (len == 0 || len >= S3_MAX_UPLOAD_ID)
    return false;
  for (i = 0; i < len; i++)
    if (id[i] <= 0x20 || id[i] >= 0x7f)
      return false;
  return true;
}

/* The text of <name> within xml[0..len) that must be there. */
static char *
required_text (const char *xml, size_t len, const char *name)
{
  char *r = xml_text (xml, len, name);

  if (r == NULL && errno == ENOENT)
    errno = EINVAL;
  return r;
}

/* The text of <name> if there, else a copy of dflt. */
static char *
optional_text (const char *xml, size_t len, const char *name, const char *dflt)
{
  char *r = xml_text (xml, len, name);

  if (r == NULL && errno == ENOENT)
    r = strdup (dflt);
  return r;
}

/* The reply to CreateMultipartUpload names the new upload. */
char *
s3_parse_upload_id (const char *xml, size_t len)
{
  char *id = required_text (xml, len, "UploadId");

  if (id && !upload_id_valid (id)) {
    free (id);
    errno = EINVAL;
    return NULL;
  }
  return id;
}

/* Forget the markers of a page. */
void
s3_list_next_free (struct s3_list_next *next)
{
  free (next->key_marker);
  free (next->upload_id_marker);
  memset (next, 0, sizeof *next);
}

/* <IsTruncated>, which must be there and be true or false. */
static int
parse_truncated (const char *xml, size_t len, bool *out)
{
  CLEANUP_FREE char *v = required_text (xml, len, "IsTruncated");

  if (v == NULL)
    return -1;
  if (strcmp (v, "true") == 0)
    *out = true;
  else if (strcmp (v, "false") == 0)
    *out = false;
  else {
    errno = EINVAL;
    return -1;
  }
  return 0;
}

/* A decimal field in [min, max]. */
static int
parse_number (const char *xml, size_t len, const char *name, uint64_t min,
              uint64_t max, uint64_t *out)
{
  CLEANUP_FREE char *v = required_text (xml, len, name);

  if (v == NULL)
    return -1;
  if (http_parse_uint64 (v, out) == -1 || *out < min || *out > max) {
    errno = EINVAL;
    return -1;
  }
  return 0;
}

/* Call parse_one with the content of each <element> of the page, at
 * most S3_LIST_PAGE times.
 */
static int
for_each_element (const char *xml, size_t len, const char *element,
                  int (*parse_one) (const char *inner, size_t inner_len,
                                    void *ctx),
                  void *ctx)
{
  const char *p = xml, *inner;
  size_t inner_len, n = 0;

  for (;;) {
    if (xml_find (p, xml + len - p, element, &inner, &inner_len) == -1) {
      if (errno == ENOENT)
        return 0;
      return -1;
    }
    if (++n > S3_LIST_PAGE) {
      errno = E2BIG;
      return -1;
    }
    if (parse_one (inner, inner_len, ctx) == -1)
      return -1;
    p = inner + inner_len;
  }
}

/* The caller's callbacks, for parse_upload and parse_part. */
struct uploads_ctx {
  int (*fn) (void *opaque, const struct s3_listed_upload *u);
  void *opaque;
};
struct parts_ctx {
  int (*fn) (void *opaque, const struct s3_listed_part *p);
  void *opaque;
};

/* One <Upload>: Key, UploadId and Initiated, all required. */
static int
parse_upload (const char *inner, size_t inner_len, void *ctx)
{
  struct uploads_ctx *uc = ctx;
  CLEANUP_FREE char *key = NULL, *id = NULL, *initiated = NULL;
  struct s3_listed_upload u;

  key = required_text (inner, inner_len, "Key");
  id = key ? required_text (inner, inner_len, "UploadId") : NULL;
  initiated = id ? required_text (inner, inner_len, "Initiated") : NULL;
  if (initiated == NULL)
    return -1;
  if (!upload_id_valid (id) || strlen (initiated) >= S3_MAX_TIMESTAMP) {
    errno = EINVAL;
    return -1;
  }
  u = (struct s3_listed_upload){ key, id, initiated };
  return uc->fn (uc->opaque, &u);
}

/* The markers are needed only to ask for the next page. */
int
s3_parse_list_uploads (const char *xml, size_t len,
                       int (*fn) (void *opaque,
                                  const struct s3_listed_upload *u),
                       void *opaque, struct s3_list_next *next)
{
  struct uploads_ctx uc = { fn, opaque };

  memset (next, 0, sizeof *next);
  if (xml_find (xml, len, "ListMultipartUploadsResult", &xml, &len) == -1 ||
      parse_truncated (xml, len, &next->truncated) == -1)
    goto err;
  if (next->truncated) {
    next->key_marker = optional_text (xml, len, "NextKeyMarker", "");
    next->upload_id_marker = optional_text (xml, len, "NextUploadIdMarker", "");
    if (next->key_marker == NULL || next->upload_id_marker == NULL)
      goto err;
    if (next->key_marker[0] == '\0' ||
        (next->upload_id_marker[0] &&
         !upload_id_valid (next->upload_id_marker))) {
      errno = EINVAL;
      goto err;
    }
  }
  if (for_each_element (xml, len, "Upload", parse_upload, &uc) == -1)
    goto err;
  return 0;

err:
  if (errno == ENOENT)
    errno = EINVAL;
  s3_list_next_free (next);
  return -1;
}

/* One <Part>: PartNumber, Size and ETag, all required. */
static int
parse_part (const char *inner, size_t inner_len, void *ctx)
{
  struct parts_ctx *pc = ctx;
  CLEANUP_FREE char *etag = NULL;
  struct s3_listed_part part;
  uint64_t number;

  if (parse_number (inner, inner_len, "PartNumber", 1, S3_MAX_PARTS, &number) ==
          -1 ||
      parse_number (inner, inner_len, "Size", 0, S3_MAX_PART_SIZE,
                    &part.size) == -1)
    return -1;
  etag = required_text (inner, inner_len, "ETag");
  if (etag == NULL)
    return -1;
  if (strlen (etag) >= HTTP_MAX_ETAG) {
    errno = EINVAL;
    return -1;
  }
  part.number = number;
  part.etag = etag;
  return pc->fn (pc->opaque, &part);
}

/* NB: a truncated page must say where the next one starts. */
int
s3_parse_list_parts (const char *xml, size_t len,
                     int (*fn) (void *opaque, const struct s3_listed_part *p),
                     void *opaque, struct s3_list_next *next)
{
  struct parts_ctx pc = { fn, opaque };
  uint64_t marker;

  memset (next, 0, sizeof *next);
  if (xml_find (xml, len, "ListPartsResult", &xml, &len) == -1 ||
      parse_truncated (xml, len, &next->truncated) == -1)
    goto err;
  if (next->truncated) {
    if (parse_number (xml, len, "NextPartNumberMarker", 1, S3_MAX_PARTS,
                      &marker) == -1)
      goto err;
    next->part_marker = marker;
  }
  if (for_each_element (xml, len, "Part", parse_part, &pc) == -1)
    goto err;
  return 0;

err:
  if (errno == ENOENT)
    errno = EINVAL;
  return -1;
}
