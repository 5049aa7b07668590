/* fuzz-s3-xml: the XML documents S3 sends, through every parser that
 * reads them: error bodies (common/s3/http-parse.c's http_parse_s3_error),
 * CreateMultipartUpload, ListMultipartUploads and ListParts replies
 * (common/s3/upload/s3-multipart.c, on common/s3/xml.c's bounded extractor).
 *
 * Every input goes through all four, as any of them may be handed any
 * document by a hostile server.  Besides not crashing, what the
 * parsers hand on must keep the promises of their headers: error
 * fields printable, upload IDs printable and bounded, part numbers and
 * sizes within S3's limits, no more entries than a page holds, and a
 * truncated listing says where the next page starts.
 *
 * Seeds: replies as S3 documents them (tests/fuzz/corpus/s3-xml/).
 */

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "http-parse.h"
#include "s3-multipart.h"

/* A field of an error body: NUL-terminated in its buffer, no control
 * characters (it goes into one-line messages).
 */
static void
check_field (const char *s, size_t cap)
{
  size_t len = strnlen (s, cap), i;

  FUZZ_CHECK (len < cap);
  for (i = 0; i < len; i++)
    FUZZ_CHECK ((unsigned char) s[i] >= 0x20 && s[i] != 0x7f);
}

/* An upload ID as upload_id_valid promises it. */
static void
check_upload_id (const char *id)
{
  size_t len = strlen (id), i;

  FUZZ_CHECK (len > 0 && len < S3_MAX_UPLOAD_ID);
  for (i = 0; i < len; i++)
    FUZZ_CHECK (id[i] > 0x20 && id[i] < 0x7f);
}

static int
upload_cb (void *opaque, const struct s3_listed_upload *u)
{
  size_t *n = opaque;

  check_upload_id (u->upload_id);
  FUZZ_CHECK (strlen (u->initiated) < S3_MAX_TIMESTAMP);
  (void) strlen (u->key);
  FUZZ_CHECK (++*n <= S3_LIST_PAGE);
  return 0;
}

static int
part_cb (void *opaque, const struct s3_listed_part *p)
{
  size_t *n = opaque;

  FUZZ_CHECK (p->number >= 1 && p->number <= S3_MAX_PARTS);
  FUZZ_CHECK (p->size <= S3_MAX_PART_SIZE);
  FUZZ_CHECK (strlen (p->etag) < HTTP_MAX_ETAG);
  FUZZ_CHECK (++*n <= S3_LIST_PAGE);
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static bool init;
  const char *xml = (const char *) data;
  struct http_s3_error xe;
  struct s3_list_next next;
  size_t n;
  char *id;

  if (!init) {
    fuzz_quiet ();
    init = true;
  }

  http_parse_s3_error (xml, size, &xe);
  check_field (xe.code, sizeof xe.code);
  check_field (xe.message, sizeof xe.message);
  check_field (xe.region, sizeof xe.region);

  id = s3_parse_upload_id (xml, size);
  if (id) {
    check_upload_id (id);
    free (id);
  }

  n = 0;
  if (s3_parse_list_uploads (xml, size, upload_cb, &n, &next) == 0) {
    if (next.truncated) {
      FUZZ_CHECK (next.key_marker && next.key_marker[0] != '\0');
      FUZZ_CHECK (next.upload_id_marker != NULL);
      if (next.upload_id_marker[0])
        check_upload_id (next.upload_id_marker);
    }
    s3_list_next_free (&next);
  }
  else
    FUZZ_CHECK (next.key_marker == NULL && next.upload_id_marker == NULL);

  n = 0;
  if (s3_parse_list_parts (xml, size, part_cb, &n, &next) == 0) {
    if (next.truncated)
      FUZZ_CHECK (next.part_marker >= 1 && next.part_marker <= S3_MAX_PARTS);
    s3_list_next_free (&next);
  }
  return 0;
}
