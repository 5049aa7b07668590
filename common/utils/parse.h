/* accel: numbers with units from the command line ("64K", "1G", "7d").
 *
 * The tools' one parser of sizes.  The plugin parses its own keys with
 * nbdkit_parse_size, whose syntax for these suffixes is the same, so a
 * size means the same in a tool's option and a plugin key.
 */

#ifndef ACCEL_PARSE_H
#define ACCEL_PARSE_H

#include <stdint.h>

/* Decimal digits, then optionally one letter of letters, which
 * multiplies the number by the same-index element of multipliers (the
 * letter may be left out: a multiplier of 1).  No sign, space or other
 * trailing text.  0, or -1 on bad syntax or overflow (nothing is
 * reported: the caller knows which option it was).
 */
extern int parse_scaled (const char *arg, const char *letters,
                         const uint64_t *multipliers, uint64_t *out);

/* A size in bytes: digits with an optional suffix B (bytes), K, M, G or T
 * (powers of 1024; lowercase too), as nbdkit_parse_size reads them.
 * 0, or -1 (nothing reported).
 */
extern int parse_size (const char *arg, uint64_t *out);

#endif /* ACCEL_PARSE_H */
