/* accel: bytes as lowercase hexadecimal (SHA-256 digests in file
 * names, manifests, trace files and messages).
 */

#ifndef ACCEL_HEX_H
#define ACCEL_HEX_H

#include <stddef.h>

/* Write the len bytes of in as 2 * len lowercase hex digits and a NUL
 * to out, which must hold 2 * len + 1 bytes.
 */
extern void hex_encode (const unsigned char *in, size_t len, char *out);

/* Read 2 * len hex digits (either case) from in into the len bytes of
 * out.  0, or -1 if one of them is not a hex digit (out is then partly
 * written).  What follows the digits in in is not looked at.
 */
extern int hex_decode (const char *in, size_t len, unsigned char *out);

#endif /* ACCEL_HEX_H */
