/* accel: unit test of common/utils/hex.c: digests as lowercase hex. */

#include <string.h>

#include "hex.h"

#include "test.h"

int
main (void)
{
  static const unsigned char bytes[] = { 0x00, 0x01, 0x7f, 0x80,
                                         0xab, 0xcd, 0xef, 0xff };
  char out[2 * sizeof bytes + 1];

  /* No bytes: just the NUL. */
  memset (out, 'x', sizeof out);
  hex_encode (bytes, 0, out);
  CHECK (out[0] == '\0' && out[1] == 'x');

  hex_encode (bytes, 1, out);
  CHECK (strcmp (out, "00") == 0);

  memset (out, 'x', sizeof out);
  hex_encode (bytes, sizeof bytes, out);
  CHECK (strcmp (out, "00017f80abcdefff") == 0);

  return test_summary ("hex");
}
