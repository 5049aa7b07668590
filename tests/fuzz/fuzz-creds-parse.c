/* fuzz-creds-parse: the responses of the credential services, through
 * common/s3/creds-parse.c (on common/s3/xml.c): STS AssumeRoleWithWebIdentity
 * replies and errors (XML) and EC2 instance metadata credentials (JSON),
 * with their timestamps.
 *
 * Every input is read both ways, looking for what creds-fetch.c looks
 * for, in the same order: <Credentials> and its four fields, or
 * <Error>'s Code and Message for STS; Code and the four fields for
 * IMDS; and each Expiration goes through creds_parse_time.  The input
 * is also parsed as a timestamp itself.  What comes out must be a C
 * string as long as the buffer says (decoding never adds a NUL).
 *
 * Seeds: replies as AWS documents them (tests/fuzz/corpus/creds-parse/).
 */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "creds-parse.h"
#include "fuzz.h"

/* The names creds-fetch.c asks for. */
static const char *const fields[] = { "AccessKeyId", "SecretAccessKey",
                                      "SessionToken", "Token", "Expiration" };

/* One value out of a parser: freed, after a timestamp parse if it is
 * the expiry.
 */
static void
use_value (char *v, const char *name)
{
  time_t t;

  if (v == NULL) {
    FUZZ_CHECK (errno == ENOENT || errno == EINVAL || errno == E2BIG ||
                errno == ENOMEM);
    return;
  }
  if (strcmp (name, "Expiration") == 0 && creds_parse_time (v, &t) == 0)
    FUZZ_CHECK (t >= -24 * 3600); /* 1970 at the earliest, +23:59 */
  free (v);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static bool init;
  const char *doc = (const char *) data, *inner;
  size_t inner_len, i;
  char *s;
  time_t t;

  if (!init) {
    fuzz_quiet ();
    init = true;
  }

  /* STS: the credentials, or the error. */
  if (creds_xml_find (doc, size, "Credentials", &inner, &inner_len) == 0) {
    FUZZ_CHECK (inner >= doc && inner + inner_len <= doc + size);
    for (i = 0; i < sizeof fields / sizeof fields[0]; i++)
      use_value (creds_xml_text (inner, inner_len, fields[i]), fields[i]);
  }
  if (creds_xml_find (doc, size, "Error", &inner, &inner_len) == 0) {
    FUZZ_CHECK (inner >= doc && inner + inner_len <= doc + size);
    use_value (creds_xml_text (inner, inner_len, "Code"), "Code");
    use_value (creds_xml_text (inner, inner_len, "Message"), "Message");
  }

  /* IMDS. */
  use_value (creds_json_string (doc, size, "Code"), "Code");
  for (i = 0; i < sizeof fields / sizeof fields[0]; i++)
    use_value (creds_json_string (doc, size, fields[i]), fields[i]);

  /* credential_process: Version is an integer, or a clean failure. */
  {
    long long version;

    if (creds_json_integer (doc, size, "Version", &version) == -1)
      FUZZ_CHECK (errno == ENOENT || errno == EINVAL || errno == EDOM ||
                  errno == E2BIG || errno == ENOMEM);
  }

  /* The input as a timestamp. */
  s = strndup (doc, size);
  if (s == NULL)
    fuzz_fail ("strndup");
  (void) creds_parse_time (s, &t);
  free (s);
  return 0;
}
