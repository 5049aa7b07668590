/* accel: formatting helpers for untrusted strings and numbers (see
 * format.h).
 *
 * A manifest may come from anywhere, and paths in it are whatever bytes
 * the image's file system allowed: newlines, escape sequences that
 * reprogram a terminal, bytes that are not UTF-8.  The text printer
 * shows them as C-style escapes, the JSON printer produces valid JSON
 * whatever the input, and both keep every valid UTF-8 name as it is.
 */

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "format.h"

/* The length of the well-formed UTF-8 sequence at p (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF), or 0.
 */
static size_t
utf8_length (const unsigned char *p)
{
  unsigned char c = p[0];

  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf)
    return (p[1] & 0xc0) == 0x80 ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    unsigned char lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;

    return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    unsigned char lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;

    if (p[1] < lo || p[1] > hi || (p[2] & 0xc0) != 0x80 ||
        (p[3] & 0xc0) != 0x80)
      return 0;
    return 4;
  }
  return 0;
}

/* NB: the C1 controls U+0080..U+009F are valid UTF-8 but some
 * terminals obey them (U+009B is CSI), so they are escaped too.
 */
/* Valid UTF-8 is copied; the rest as escapes, one byte at a time. */
void
format_text_string (FILE *fp, const char *s)
{
  const unsigned char *p = (const unsigned char *) s;

  while (*p) {
    size_t n = utf8_length (p);

    if (*p == '\\')
      fputs ("\\\\", fp);
    else if (*p == '\n')
      fputs ("\\n", fp);
    else if (*p == '\t')
      fputs ("\\t", fp);
    else if (n == 0 || *p < 0x20 || *p == 0x7f ||
             (n == 2 && p[0] == 0xc2 && p[1] < 0xa0)) {
      /* One byte at a time: an invalid sequence may hide a valid one. */
      if (n == 2)
        fprintf (fp, "\\x%02x", *p++);
      fprintf (fp, "\\x%02x", *p++);
      continue;
    }
    else
      fwrite (p, 1, n, fp);
    p += n;
  }
}

/* RFC 8259 escapes; bad bytes become U+FFFD, one for each. */
void
format_json_string (FILE *fp, const char *s)
{
  const unsigned char *p = (const unsigned char *) s;

  putc ('"', fp);
  while (*p) {
    size_t n = utf8_length (p);

    if (n == 0) {
      fputs ("\\ufffd", fp);
      p++;
      continue;
    }
    if (*p == '"' || *p == '\\')
      fprintf (fp, "\\%c", *p);
    else if (*p == '\n')
      fputs ("\\n", fp);
    else if (*p == '\t')
      fputs ("\\t", fp);
    else if (*p < 0x20 || *p == 0x7f)
      fprintf (fp, "\\u%04x", *p);
    else
      fwrite (p, 1, n, fp);
    p += n;
  }
  putc ('"', fp);
}

/* Binary units, one decimal, as ls -lh and du -h show them. */
const char *
format_size (uint64_t n, char *buf, size_t len)
{
  static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB" };
  double v = n;
  int u = -1;

  if (n < 1024) {
    snprintf (buf, len, "%" PRIu64 " B", n);
    return buf;
  }
  while (v >= 1024 && u < 4) {
    v /= 1024;
    u++;
  }
  snprintf (buf, len, "%.1f %s", v, units[u]);
  return buf;
}

/* The file type letter and the nine permission letters, with the
 * set-id and sticky bits folded in as ls does (s, S, t, T).
 */
const char *
format_mode (uint32_t mode, char *buf, size_t len)
{
  char m[11];

  switch (mode & S_IFMT) {
  case S_IFREG:
    m[0] = '-';
    break;
  case S_IFDIR:
    m[0] = 'd';
    break;
  case S_IFLNK:
    m[0] = 'l';
    break;
  case S_IFBLK:
    m[0] = 'b';
    break;
  case S_IFCHR:
    m[0] = 'c';
    break;
  case S_IFIFO:
    m[0] = 'p';
    break;
  case S_IFSOCK:
    m[0] = 's';
    break;
  default:
    m[0] = '?';
  }
  m[1] = mode & S_IRUSR ? 'r' : '-';
  m[2] = mode & S_IWUSR ? 'w' : '-';
  m[3] = mode & S_ISUID ? (mode & S_IXUSR ? 's' : 'S')
                        : (mode & S_IXUSR ? 'x' : '-');
  m[4] = mode & S_IRGRP ? 'r' : '-';
  m[5] = mode & S_IWGRP ? 'w' : '-';
  m[6] = mode & S_ISGID ? (mode & S_IXGRP ? 's' : 'S')
                        : (mode & S_IXGRP ? 'x' : '-');
  m[7] = mode & S_IROTH ? 'r' : '-';
  m[8] = mode & S_IWOTH ? 'w' : '-';
  m[9] = mode & S_ISVTX ? (mode & S_IXOTH ? 't' : 'T')
                        : (mode & S_IXOTH ? 'x' : '-');
  m[10] = '\0';
  snprintf (buf, len, "%s", m);
  return buf;
}

/* Integer arithmetic, rounded down, so that "100.0" means all of them.
 * NB: part * 1000 cannot overflow for counts of chunks (at most 2^24)
 * or of bytes (at most 2^50).
 */
const char *
format_percent (uint64_t part, uint64_t whole, char *buf, size_t len)
{
  uint64_t pm = whole ? part * 1000 / whole : 0;

  snprintf (buf, len, "%" PRIu64 ".%" PRIu64, pm / 10, pm % 10);
  return buf;
}
