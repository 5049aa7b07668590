/* accel: unit test of common/s3/upload/s3-multipart.c, the pure parts of
 * uploads (common/s3/upload/s3-upload.c does the I/O).
 *
 * Checked here: how a file is cut into parts (S3's 5 MiB minimum and
 * 10000-part maximum, growth for huge files), the ETags S3 gives single
 * and multipart objects (against digests computed independently),
 * Content-MD5, the CompleteMultipartUpload body, and the parsers of
 * S3's listings, on real replies (radosgw's, AWS's documented ones)
 * and on hostile ones: truncated or garbled XML, missing and
 * out-of-range fields, pages that do not say where the next starts,
 * more entries than a page may hold, oversized documents.  Output is
 * one line per failed check and "s3-upload: N checks, N failed".
 */

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "s3-multipart.h"
#include "test.h"
#include "xml.h"

#define MiB (1024ULL * 1024)

/* Append s at buf[*len] (the caller made room) and keep it a string. */
static void
append (char *buf, size_t *len, const char *s)
{
  size_t n = strlen (s);

  memcpy (buf + *len, s, n + 1);
  *len += n;
}

/* Part sizes for sizes around the limits. */
static void
test_part_size (void)
{
  CHECK (s3_part_size (0, 0) == S3_DEFAULT_PART_SIZE);
  CHECK (s3_part_size (100, 0) == 16 * MiB);
  CHECK (s3_part_size (40 * MiB, 5 * MiB) == 5 * MiB);
  /* 10000 parts exactly fit; one byte more grows the part to the next
   * whole MiB.
   */
  CHECK (s3_part_size (10000 * 5 * MiB, 5 * MiB) == 5 * MiB);
  CHECK (s3_part_size (10000 * 5 * MiB + 1, 5 * MiB) == 6 * MiB);
  CHECK (s3_part_size (1ULL << 40, 0) == 110100480); /* 1 TiB: 105 MiB */
  CHECK (s3_part_count (1ULL << 40, 110100480) <= S3_MAX_PARTS);
  CHECK (s3_part_size (10000 * S3_MAX_PART_SIZE, 0) == S3_MAX_PART_SIZE);
  CHECK (s3_part_size (10000 * S3_MAX_PART_SIZE + 1, 0) == 0);
  CHECK (s3_part_size (UINT64_MAX, 0) == 0);

  CHECK (s3_part_count (0, 5 * MiB) == 1);
  CHECK (s3_part_count (1, 5 * MiB) == 1);
  CHECK (s3_part_count (5 * MiB, 5 * MiB) == 1);
  CHECK (s3_part_count (5 * MiB + 1, 5 * MiB) == 2);
  CHECK (s3_part_count (40 * MiB, 5 * MiB) == 8);
}

/* MD5s computed with Python's hashlib. */
static const unsigned char md5_empty[16] = {
  0xd4, 0x1d, 0x8c, 0xd9, 0x8f, 0x00, 0xb2, 0x04,
  0xe9, 0x80, 0x09, 0x98, 0xec, 0xf8, 0x42, 0x7e,
};
static const unsigned char md5_a[16] = {
  0x0c, 0xc1, 0x75, 0xb9, 0xc0, 0xf1, 0xb6, 0xa8,
  0x31, 0xc3, 0x99, 0xe2, 0x69, 0x77, 0x26, 0x61,
};
static const unsigned char md5_b[16] = {
  0x92, 0xeb, 0x5f, 0xfe, 0xe6, 0xae, 0x2f, 0xec,
  0x3a, 0xd7, 0x1c, 0x77, 0x75, 0x31, 0x57, 0x8f,
};

/* ETags, their comparison and Content-MD5. */
static void
test_etags (void)
{
  unsigned char two[2][16];
  char etag[S3_ETAG_LEN], b64[25];

  s3_single_etag (md5_empty, etag);
  CHECK (strcmp (etag, "\"d41d8cd98f00b204e9800998ecf8427e\"") == 0);

  /* md5 (md5 ("a") || md5 ("b")), "-2" */
  memcpy (two[0], md5_a, 16);
  memcpy (two[1], md5_b, 16);
  CHECK (s3_multipart_etag (two, 2, etag) == 0);
  CHECK (strcmp (etag, "\"96e024ba2074fe77e8e965ba43a704be-2\"") == 0);
  CHECK (s3_multipart_etag (two, 0, etag) == -1 && errno == EINVAL);
  CHECK (s3_multipart_etag (two, S3_MAX_PARTS + 1, etag) == -1 &&
         errno == EINVAL);

  CHECK (s3_etag_equal ("\"abc-2\"", "\"abc-2\""));
  CHECK (s3_etag_equal ("abc-2", "\"ABC-2\""));
  CHECK (s3_etag_equal (" \"abc\"\t", "abc"));
  CHECK (!s3_etag_equal ("\"abc-2\"", "\"abc-3\""));
  CHECK (!s3_etag_equal ("\"abc\"", "\"abcd\""));
  CHECK (!s3_etag_equal ("\"\"", "\"\""));
  CHECK (!s3_etag_equal ("", ""));

  s3_md5_base64 (md5_empty, b64);
  CHECK (strcmp (b64, "1B2M2Y8AsgTpgAmY7PhCfg==") == 0);
  s3_md5_base64 (md5_a, b64);
  CHECK (strcmp (b64, "DMF1ucDxtqgxw5niaXcmYQ==") == 0);
}

/* The CompleteMultipartUpload body lists parts in order, escaped. */
static void
test_complete_xml (void)
{
  char *etags[] = { "\"aa\"", "\"b<&>b\"", "cc" };
  CLEANUP_FREE char *xml = NULL;
  size_t len;

  xml = s3_complete_xml (etags, 3, &len);
  CHECK (xml != NULL);
  if (xml == NULL)
    return;
  CHECK (len == strlen (xml));
  CHECK (strcmp (xml,
                 "<CompleteMultipartUpload>"
                 "<Part><PartNumber>1</PartNumber><ETag>\"aa\"</ETag>"
                 "</Part>"
                 "<Part><PartNumber>2</PartNumber>"
                 "<ETag>\"b&lt;&amp;&gt;b\"</ETag></Part>"
                 "<Part><PartNumber>3</PartNumber><ETag>cc</ETag>"
                 "</Part>"
                 "</CompleteMultipartUpload>") == 0);
}

/* What a CreateMultipartUpload reply may or may not name. */
static void
test_upload_id (void)
{
  static const char good[] =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?><InitiateMultipartUploadResult"
      " xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>b</Bucket>"
      "<Key>k</Key><UploadId>2~GmYJCP58gr3Onj_VFImr5VC_I3lu1tB</UploadId>"
      "</InitiateMultipartUploadResult>";
  char *long_id = test_alloc (S3_MAX_UPLOAD_ID + 64);
  char *id;
  size_t len = 0;

  id = s3_parse_upload_id (good, strlen (good));
  CHECK (id && strcmp (id, "2~GmYJCP58gr3Onj_VFImr5VC_I3lu1tB") == 0);
  free (id);

  CHECK (s3_parse_upload_id ("<R></R>", 7) == NULL && errno == EINVAL);
  CHECK (s3_parse_upload_id ("<UploadId></UploadId>", 21) == NULL &&
         errno == EINVAL);
  CHECK (s3_parse_upload_id ("<UploadId>a b</UploadId>", 24) == NULL &&
         errno == EINVAL);
  CHECK (s3_parse_upload_id ("<UploadId>a&#10;b</UploadId>", 28) == NULL &&
         errno == EINVAL);
  CHECK (s3_parse_upload_id ("<UploadId>abc", 13) == NULL && errno == EINVAL);
  CHECK (s3_parse_upload_id ("", 0) == NULL && errno == EINVAL);
  append (long_id, &len, "<UploadId>");
  memset (long_id + len, 'x', S3_MAX_UPLOAD_ID);
  len += S3_MAX_UPLOAD_ID;
  append (long_id, &len, "</UploadId>");
  CHECK (s3_parse_upload_id (long_id, len) == NULL && errno == EINVAL);
  free (long_id);
}

/* Collects what the parsers call back with. */
struct seen {
  unsigned n, stop_at;
  char text[4][128];
  uint32_t numbers[4];
  uint64_t sizes[4];
};

/* Callback of s3_parse_list_uploads: "KEY ID INITIATED". */
static int
see_upload (void *opaque, const struct s3_listed_upload *u)
{
  struct seen *s = opaque;

  if (s->stop_at && s->n + 1 == s->stop_at)
    return -1;
  if (s->n < 4)
    snprintf (s->text[s->n], sizeof s->text[0], "%s %s %s", u->key,
              u->upload_id, u->initiated);
  s->n++;
  return 0;
}

/* Callback of s3_parse_list_parts. */
static int
see_part (void *opaque, const struct s3_listed_part *p)
{
  struct seen *s = opaque;

  if (s->n < 4) {
    snprintf (s->text[s->n], sizeof s->text[0], "%s", p->etag);
    s->numbers[s->n] = p->number;
    s->sizes[s->n] = p->size;
  }
  s->n++;
  return 0;
}

/* Parse a listing of uploads; returns the result, fills *s and *next. */
static int
uploads (const char *xml, struct seen *s, struct s3_list_next *next)
{
  unsigned stop_at = s->stop_at;

  memset (s, 0, sizeof *s);
  s->stop_at = stop_at;
  return s3_parse_list_uploads (xml, strlen (xml), see_upload, s, next);
}

/* Parse a listing of parts. */
static int
parts (const char *xml, struct seen *s, struct s3_list_next *next)
{
  memset (s, 0, sizeof *s);
  return s3_parse_list_parts (xml, strlen (xml), see_part, s, next);
}

#define UPLOAD(key, id)                                                        \
  "<Upload><Key>" key "</Key><UploadId>" id "</UploadId><Initiator><ID>i"      \
  "</ID></Initiator><Initiated>2026-11-21T14:03:59.676Z</Initiated></Upload>"

/* ListMultipartUploads pages. */
static void
test_list_uploads (void)
{
  /* radosgw's reply, verbatim but for the IDs. */
  static const char rgw[] =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListMultipartUploadsResult "
      "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>bk1</Bucket>"
      "<Prefix>resume.bin</Prefix><NextKeyMarker>resume.bin</NextKeyMarker>"
      "<NextUploadIdMarker>2~G</NextUploadIdMarker><MaxUploads>1000"
      "</MaxUploads><IsTruncated>false</IsTruncated><Upload><Key>resume.bin"
      "</Key><UploadId>2~G</UploadId><Initiator><ID>accel-test</ID>"
      "<DisplayName>accel test</DisplayName></Initiator><Owner><ID>accel-test"
      "</ID><DisplayName>accel test</DisplayName></Owner><StorageClass>"
      "STANDARD</StorageClass><Initiated>2026-11-21T14:03:59.676Z</Initiated>"
      "</Upload><Upload><Key>resume.bin.x&amp;y</Key><UploadId>2~H</UploadId>"
      "<Initiated>2026-11-21T14:04:00.000Z</Initiated></Upload>"
      "</ListMultipartUploadsResult>";
  /* A truncated page, with the markers of the next one. */
  static const char truncated[] =
      "<ListMultipartUploadsResult><KeyMarker/><UploadIdMarker/>"
      "<NextKeyMarker>k</NextKeyMarker><NextUploadIdMarker>id2"
      "</NextUploadIdMarker><IsTruncated>true</IsTruncated>" UPLOAD ("k", "id1")
          UPLOAD ("k", "id2") "</ListMultipartUploadsResult>";
  static const char *const bad[] = {
    /* no document, not ours, cut short */
    "",
    "<Error><Code>x</Code></Error>",
    "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>"
    "<Upload><Key>k</Key>",
    /* IsTruncated missing or not a boolean */
    "<ListMultipartUploadsResult></ListMultipartUploadsResult>",
    "<ListMultipartUploadsResult><IsTruncated>yes</IsTruncated>"
    "</ListMultipartUploadsResult>",
    /* truncated without saying where to go on */
    "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated>"
    "</ListMultipartUploadsResult>",
    "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated>"
    "<NextKeyMarker>k</NextKeyMarker><NextUploadIdMarker>a b"
    "</NextUploadIdMarker></ListMultipartUploadsResult>",
    /* an upload without an ID, with a bad one, without a date */
    "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>"
    "<Upload><Key>k</Key><Initiated>t</Initiated></Upload>"
    "</ListMultipartUploadsResult>",
    "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>" UPLOAD (
        "k", "a\"b c") "</ListMultipartUploadsResult>",
    "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>"
    "<Upload><Key>k</Key><UploadId>x</UploadId></Upload>"
    "</ListMultipartUploadsResult>",
    /* markup in a key, a bad entity */
    "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>" UPLOAD (
        "a<b/>", "x") "</ListMultipartUploadsResult>",
    "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>" UPLOAD (
        "a&bogus;", "x") "</ListMultipartUploadsResult>",
  };
  struct seen s = { 0 };
  struct s3_list_next next;
  size_t i, len = 0;
  char *big;

  CHECK (uploads (rgw, &s, &next) == 0);
  CHECK (!next.truncated && next.key_marker == NULL);
  CHECK (s.n == 2);
  CHECK (strcmp (s.text[0], "resume.bin 2~G 2026-11-21T14:03:59.676Z") == 0);
  CHECK (strcmp (s.text[1], "resume.bin.x&y 2~H 2026-11-21T14:04:00.000Z") ==
         0);
  s3_list_next_free (&next);

  CHECK (uploads (truncated, &s, &next) == 0);
  CHECK (s.n == 2 && next.truncated);
  CHECK (next.key_marker && strcmp (next.key_marker, "k") == 0);
  CHECK (next.upload_id_marker && strcmp (next.upload_id_marker, "id2") == 0);
  s3_list_next_free (&next);
  CHECK (next.key_marker == NULL && next.upload_id_marker == NULL);

  /* The callback can stop the walk, and its failure is the result. */
  s.stop_at = 2;
  CHECK (uploads (truncated, &s, &next) == -1 && s.n == 1);
  s.stop_at = 0;

  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int r = uploads (bad[i], &s, &next);

    CHECK_INPUT (r == -1 && errno == EINVAL && next.key_marker == NULL,
                 "refused", bad[i]);
  }

  /* More entries than a page may hold, and more than a document may. */
  big = test_alloc (XML_MAX_DOCUMENT + 200);
  append (big, &len,
          "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>");
  for (i = 0; i <= S3_LIST_PAGE; i++)
    append (big, &len, UPLOAD ("k", "x"));
  append (big, &len, "</ListMultipartUploadsResult>");
  CHECK (len < XML_MAX_DOCUMENT);
  CHECK (uploads (big, &s, &next) == -1 && errno == E2BIG);
  CHECK (s.n == S3_LIST_PAGE);

  memset (big, ' ', XML_MAX_DOCUMENT + 1);
  big[XML_MAX_DOCUMENT + 1] = '\0';
  CHECK (uploads (big, &s, &next) == -1 && errno == E2BIG);
  free (big);
}

#define PART(n, etag, size)                                                    \
  "<Part><PartNumber>" n "</PartNumber><LastModified>2026-11-21T14:04:00Z"     \
  "</LastModified><ETag>" etag "</ETag><Size>" size "</Size></Part>"

/* ListParts pages. */
static void
test_list_parts (void)
{
  static const char page[] =
      "<?xml version=\"1.0\"?><ListPartsResult><Bucket>b</Bucket><Key>k</Key>"
      "<UploadId>x</UploadId><PartNumberMarker>0</PartNumberMarker>"
      "<NextPartNumberMarker>3</NextPartNumberMarker><MaxParts>3</MaxParts>"
      "<IsTruncated>true</IsTruncated>" PART (
          "1", "\"0cc175b9c0f1b6a831c399e269772661\"", "5242880")
          PART ("2", "&quot;92eb5ffee6ae2fec3ad71c777531578f&quot;", "5242880")
              PART ("3", "abc-1", "0") "</ListPartsResult>";
  static const char last[] =
      "<ListPartsResult><PartNumberMarker>3</PartNumberMarker>"
      "<IsTruncated>false</IsTruncated>" PART (
          "10000", "e", "5368709120") "</ListPartsResult>";
  static const char *const bad[] = {
    "",
    "<ListPartsResult><IsTruncated>false</IsTruncated>",
    "<ListPartsResult><IsTruncated>true</IsTruncated></ListPartsResult>",
    "<ListPartsResult><IsTruncated>true</IsTruncated><NextPartNumberMarker>"
    "0</NextPartNumberMarker></ListPartsResult>",
    "<ListPartsResult><IsTruncated>true</IsTruncated><NextPartNumberMarker>"
    "x</NextPartNumberMarker></ListPartsResult>",
    "<ListPartsResult><IsTruncated>false</IsTruncated>" PART (
        "0", "e", "1") "</ListPartsResult>",
    "<ListPartsResult><IsTruncated>false</IsTruncated>" PART (
        "10001", "e", "1") "</ListPartsResult>",
    "<ListPartsResult><IsTruncated>false</IsTruncated>" PART (
        "-1", "e", "1") "</ListPartsResult>",
    "<ListPartsResult><IsTruncated>false</IsTruncated>" PART (
        "1", "e", "5368709121") "</ListPartsResult>",
    "<ListPartsResult><IsTruncated>false</IsTruncated>" PART (
        "1", "e", "99999999999999999999999") "</ListPartsResult>",
    "<ListPartsResult><IsTruncated>false</IsTruncated>" PART (
        "1", "e", "") "</ListPartsResult>",
    "<ListPartsResult><IsTruncated>false</IsTruncated><Part><PartNumber>1"
    "</PartNumber><Size>1</Size></Part></ListPartsResult>",
    "<ListPartsResult><IsTruncated>false</IsTruncated><Part><PartNumber>1"
    "</PartNumber><ETag>e</ETag></Part></ListPartsResult>",
  };
  struct seen s;
  struct s3_list_next next;
  size_t i, len = 0;
  char *big, *etag;

  CHECK (parts (page, &s, &next) == 0);
  CHECK (next.truncated && next.part_marker == 3);
  CHECK (s.n == 3);
  CHECK (s.numbers[0] == 1 && s.numbers[1] == 2 && s.numbers[2] == 3);
  CHECK (s.sizes[0] == 5 * MiB && s.sizes[2] == 0);
  CHECK (strcmp (s.text[0], "\"0cc175b9c0f1b6a831c399e269772661\"") == 0);
  CHECK (strcmp (s.text[1], "\"92eb5ffee6ae2fec3ad71c777531578f\"") == 0);
  CHECK (s3_etag_equal (s.text[1], "92EB5FFEE6AE2FEC3AD71C777531578F"));

  CHECK (parts (last, &s, &next) == 0);
  CHECK (!next.truncated && s.n == 1);
  CHECK (s.numbers[0] == 10000 && s.sizes[0] == S3_MAX_PART_SIZE);

  for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK_INPUT (parts (bad[i], &s, &next) == -1 && errno == EINVAL, "refused",
                 bad[i]);

  /* An ETag longer than any we keep. */
  etag = test_alloc (HTTP_MAX_ETAG + 1);
  big = test_alloc (HTTP_MAX_ETAG + 256);
  memset (etag, 'e', HTTP_MAX_ETAG);
  etag[HTTP_MAX_ETAG] = '\0';
  snprintf (big, HTTP_MAX_ETAG + 256,
            "<ListPartsResult><IsTruncated>false</IsTruncated><Part>"
            "<PartNumber>1</PartNumber><ETag>%s</ETag><Size>1</Size></Part>"
            "</ListPartsResult>",
            etag);
  CHECK (parts (big, &s, &next) == -1 && errno == EINVAL);
  free (etag);
  free (big);

  /* A page of more parts than we asked for. */
  big = test_alloc ((S3_LIST_PAGE + 1) * 200 + 200);
  append (big, &len, "<ListPartsResult><IsTruncated>false</IsTruncated>");
  for (i = 0; i <= S3_LIST_PAGE; i++)
    append (big, &len, PART ("1", "e", "1"));
  append (big, &len, "</ListPartsResult>");
  CHECK (parts (big, &s, &next) == -1 && errno == E2BIG);
  free (big);
}

/* Run every group. */
int
main (void)
{
  test_part_size ();
  test_etags ();
  test_complete_xml ();
  test_upload_id ();
  test_list_uploads ();
  test_list_parts ();
  return test_summary ("s3-upload");
}
