/* fuzz-s3-url: object URLs and endpoints as users give them (the
 * plugin's url= and endpoint=, accel-mkimage's arguments), through
 * common/s3/s3-url.c and the SigV4 path encoding it uses.
 *
 * Input: URL, NUL, endpoint, NUL, region (a missing or empty endpoint
 * means AWS; a missing or empty region means us-east-1).  What a
 * parsed URL promises: a request URL, a printable name and an
 * identity; for s3:// a valid bucket, a key within S3's limit, a host
 * and an absolute path to sign, and a bucket URL derived from it.
 *
 * Seeds: tests/fuzz/corpus/s3-url/.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "s3-url.h"

/* No control characters: the name goes into messages. */
static void
check_printable (const char *s)
{
  for (; *s; s++)
    FUZZ_CHECK ((unsigned char) *s >= 0x20 && *s != 0x7f);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static bool init;
  const char *field[3] = { "", "", "" };
  struct s3_url u, b;
  char *copy;
  size_t i, n = 0;

  if (!init) {
    fuzz_quiet ();
    init = true;
  }
  /* One more byte for the NUL that ends the last field. */
  copy = malloc (size + 1);
  if (copy == NULL)
    fuzz_fail ("malloc");
  memcpy (copy, data, size);
  copy[size] = '\0';
  field[0] = copy;
  for (i = 0; i < size && n < 2; i++)
    if (copy[i] == '\0')
      field[++n] = copy + i + 1;

  if (s3_url_parse (field[0], field[1][0] ? field[1] : NULL,
                    field[2][0] ? field[2] : S3_DEFAULT_REGION, &u) == 0) {
    FUZZ_CHECK (u.url && u.name && u.identity);
    check_printable (u.name);
    if (u.sign) {
      FUZZ_CHECK (u.bucket && s3_bucket_name_valid (u.bucket));
      FUZZ_CHECK (u.key && strlen (u.key) <= S3_MAX_KEY);
      FUZZ_CHECK (u.host && u.path && u.path[0] == '/');
      FUZZ_CHECK (s3_url_bucket (&u, &b) == 0);
      FUZZ_CHECK (b.bucket && strcmp (b.bucket, u.bucket) == 0 && b.url);
      check_printable (b.name);
      s3_url_free (&b);
    }
    else
      FUZZ_CHECK (u.bucket == NULL && u.key == NULL);
    s3_url_free (&u);
  }
  free (copy);
  return 0;
}
