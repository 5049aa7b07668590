/* accel: unit test of common/utils/parse.c, the tools' parser of sizes
 * and other numbers with units.
 *
 * Every suffix in both cases, the largest value that fits and the
 * smallest that does not, and what must be refused: no digits, a sign or
 * space (strtoull would take them), a suffix that is not one, two
 * suffixes, trailing text.
 */

#include <stdint.h>

#include "parse.h"

#include "test.h"

/* parse_size (in) gives want. */
static void
check_size (const char *file, int line, const char *in, uint64_t want)
{
  uint64_t got = 0;

  test_check (parse_size (in, &got) == 0 && got == want, file, line,
              "parse_size (\"%s\") = %llu, wanted %llu", in,
              (unsigned long long) got, (unsigned long long) want);
}
#define SIZE(in, want) check_size (__FILE__, __LINE__, in, want)

/* parse_size (in) refuses and leaves its output alone. */
static void
check_bad_size (const char *file, int line, const char *in)
{
  uint64_t got = 42;

  test_check (parse_size (in, &got) == -1 && got == 42, file, line,
              "parse_size (\"%s\") was not refused", in);
}
#define BAD_SIZE(in) check_bad_size (__FILE__, __LINE__, in)

static void
test_sizes (void)
{
  SIZE ("0", 0);
  SIZE ("4096", 4096);
  SIZE ("4096B", 4096);
  SIZE ("7b", 7);
  SIZE ("64K", 64 * 1024);
  SIZE ("64k", 64 * 1024);
  SIZE ("1M", 1024 * 1024);
  SIZE ("1m", 1024 * 1024);
  SIZE ("8G", UINT64_C (8) << 30);
  SIZE ("8g", UINT64_C (8) << 30);
  SIZE ("2T", UINT64_C (2) << 40);
  SIZE ("2t", UINT64_C (2) << 40);
  SIZE ("18446744073709551615", UINT64_MAX);
  SIZE ("16777215T", UINT64_C (16777215) << 40);

  BAD_SIZE ("");
  BAD_SIZE ("K");
  BAD_SIZE ("-1");
  BAD_SIZE ("+1");
  BAD_SIZE (" 1");
  BAD_SIZE ("1 ");
  BAD_SIZE ("1X");
  BAD_SIZE ("1P");
  BAD_SIZE ("1KB");
  BAD_SIZE ("1KK");
  BAD_SIZE ("1.5M");
  BAD_SIZE ("0x10");
  /* Overflow: in the digits, and by the suffix. */
  BAD_SIZE ("18446744073709551616");
  BAD_SIZE ("99999999999999999999999");
  BAD_SIZE ("16777216T");
  BAD_SIZE ("18014398509481984K");
}

static void
test_scaled (void)
{
  static const uint64_t m[] = { 1, 60, 3600 };
  uint64_t n = 0;

  CHECK (parse_scaled ("90", "smh", m, &n) == 0 && n == 90);
  CHECK (parse_scaled ("90s", "smh", m, &n) == 0 && n == 90);
  CHECK (parse_scaled ("2m", "smh", m, &n) == 0 && n == 120);
  CHECK (parse_scaled ("3h", "smh", m, &n) == 0 && n == 3 * 3600);
  CHECK (parse_scaled ("3d", "smh", m, &n) == -1);
  CHECK (parse_scaled ("3hm", "smh", m, &n) == -1);
  CHECK (parse_scaled ("h", "smh", m, &n) == -1);
  /* The largest number of hours that fits, and one more. */
  CHECK (parse_scaled ("5124095576030431h", "smh", m, &n) == 0 &&
         n == UINT64_C (5124095576030431) * 3600);
  CHECK (parse_scaled ("5124095576030432m", "smh", m, &n) == 0);
  CHECK (parse_scaled ("5124095576030432h", "smh", m, &n) == -1);
}

int
main (void)
{
  test_sizes ();
  test_scaled ();
  return test_summary ("parse");
}
