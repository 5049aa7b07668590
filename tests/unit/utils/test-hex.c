/* accel: unit test of common/utils/hex.c: digests as lowercase hex and
 * back.
 */

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

  /* And back, in either case; any other byte is refused. */
  {
    unsigned char got[sizeof bytes];

    memset (got, 0x55, sizeof got);
    CHECK (hex_decode ("", 0, got) == 0 && got[0] == 0x55);
    CHECK (hex_decode ("00017f80abcdefff", sizeof got, got) == 0 &&
           memcmp (got, bytes, sizeof got) == 0);
    CHECK (hex_decode ("00017F80ABCDEFFF", sizeof got, got) == 0 &&
           memcmp (got, bytes, sizeof got) == 0);
    /* Only 2 * len digits are read. */
    CHECK (hex_decode ("abXY", 1, got) == 0 && got[0] == 0xab);
    CHECK (hex_decode ("0g", 1, got) == -1);
    CHECK (hex_decode ("g0", 1, got) == -1);
    CHECK (hex_decode (" 0", 1, got) == -1);
    CHECK (hex_decode ("0x", 1, got) == -1);
    /* Short input: the NUL is not a digit, and nothing after it is read. */
    CHECK (hex_decode ("abc", 2, got) == -1);
    CHECK (hex_decode ("", 1, got) == -1);
    /* Round trip of every byte value. */
    {
      unsigned char all[256], back[256];
      char text[2 * 256 + 1];
      int i;

      for (i = 0; i < 256; i++)
        all[i] = i;
      hex_encode (all, 256, text);
      CHECK (strlen (text) == 512);
      CHECK (hex_decode (text, 256, back) == 0 && memcmp (all, back, 256) == 0);
    }
  }

  return test_summary ("hex");
}
