/* accel: bytes as lowercase hexadecimal, and back. */

#include "hex.h"

void
hex_encode (const unsigned char *in, size_t len, char *out)
{
  static const char digits[] = "0123456789abcdef";
  size_t i;

  for (i = 0; i < len; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 0xf];
  }
  out[2 * len] = '\0';
}

/* A hex digit's value, or -1. */
static int
hex_digit (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

int
hex_decode (const char *in, size_t len, unsigned char *out)
{
  size_t i;

  for (i = 0; i < len; i++) {
    /* NB: the low digit is not read past a NUL in the high one. */
    int hi = hex_digit (in[2 * i]),
        lo = hi == -1 ? -1 : hex_digit (in[2 * i + 1]);

    if (lo == -1)
      return -1;
    out[i] = hi << 4 | lo;
  }
  return 0;
}
