/* accel: numbers with units from the command line (see parse.h). */

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

int
parse_scaled (const char *arg, const char *letters, const uint64_t *multipliers,
              uint64_t *out)
{
  const char *u;
  char *end;
  uint64_t n, m = 1;

  /* NB: strtoull would accept leading space and a sign. */
  if (!isdigit ((unsigned char) arg[0]))
    return -1;
  errno = 0;
  n = strtoull (arg, &end, 10);
  if (errno != 0)
    return -1;
  if (*end != '\0') {
    u = strchr (letters, *end);
    if (u == NULL || end[1] != '\0')
      return -1;
    m = multipliers[u - letters];
  }
  if (n > UINT64_MAX / m)
    return -1;
  *out = n * m;
  return 0;
}

int
parse_size (const char *arg, uint64_t *out)
{
  static const uint64_t k = 1024;
  static const uint64_t m[] = {
    1, 1, k, k, k * k, k * k, k * k * k, k * k * k, k * k * k * k, k * k * k * k
  };

  return parse_scaled (arg, "BbkKmMgGtT", m, out);
}
