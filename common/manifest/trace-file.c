/* accel: trace files (format: trace-file.h).
 *
 * A trace comes from a plugin run, or from an operator who edited one,
 * and becomes part of a published manifest, so it is read strictly:
 * fixed-size line buffers, decimal digits only, every index inside the
 * image, and a message with the line number for anything else.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "manifest.h"
#include "report.h"
#include "trace-file.h"

/* A chunk index has at most 20 digits; a line, that and '\n'. */
#define MAX_LINE 32

size_t
trace_format_header (char *buf, const unsigned char image_sha256[32],
                     uint64_t image_size, uint32_t chunk_size)
{
  char hex[65];

  hex_encode (image_sha256, 32, hex);
  return snprintf (buf, TRACE_MAX_HEADER,
                   TRACE_MAGIC " image-sha256=%s image-size=%" PRIu64
                               " chunk-size=%" PRIu32 "\n",
                   hex, image_size, chunk_size);
}

/* Parse the decimal number at *s (digits only, no sign or space),
 * advancing *s past it.  false if there are no digits or it overflows.
 */
static bool
parse_u64 (const char **s, uint64_t *out)
{
  const char *p = *s;
  uint64_t n = 0;

  if (*p < '0' || *p > '9')
    return false;
  for (; *p >= '0' && *p <= '9'; p++) {
    if (n > (UINT64_MAX - (*p - '0')) / 10)
      return false;
    n = n * 10 + (*p - '0');
  }
  *s = p;
  *out = n;
  return true;
}

/* Skip the literal word at *s, or return false. */
static bool
skip (const char **s, const char *word)
{
  size_t len = strlen (word);

  if (strncmp (*s, word, len) != 0)
    return false;
  *s += len;
  return true;
}

/* The first line, '\n' included.  0, or -1 (error reported). */
static int
parse_header (const char *path, const char *line, struct trace_info *info)
{
  const char *p = line;
  uint64_t chunk_size;

  if (!skip (&p, TRACE_MAGIC " ")) {
    report_error ("%s: not an accel trace (the first line must start with "
                  "\"" TRACE_MAGIC "\")",
                  path);
    return -1;
  }
  if (!skip (&p, "image-sha256="))
    goto bad;
  /* NB: strict, as written: lowercase only. */
  if (strspn (p, "0123456789abcdef") < 64 ||
      hex_decode (p, 32, info->image_sha256) == -1)
    goto bad;
  p += 64;
  if (!skip (&p, " image-size=") || !parse_u64 (&p, &info->image_size) ||
      !skip (&p, " chunk-size=") || !parse_u64 (&p, &chunk_size) ||
      strcmp (p, "\n") != 0)
    goto bad;
  if (info->image_size == 0 || info->image_size > MANIFEST_MAX_IMAGE_SIZE ||
      !manifest_chunk_size_valid (chunk_size)) {
    report_error ("%s: line 1: image size %" PRIu64 " or chunk size %" PRIu64
                  " outside the manifest format's limits",
                  path, info->image_size, chunk_size);
    return -1;
  }
  info->chunk_size = chunk_size;
  info->nr_chunks = (info->image_size + chunk_size - 1) / chunk_size;
  if (info->nr_chunks > MANIFEST_MAX_CHUNKS) {
    report_error ("%s: line 1: %" PRIu64 " chunks, more than the manifest "
                  "format's limit",
                  path, info->nr_chunks);
    return -1;
  }
  return 0;

bad:
  report_error ("%s: line 1: malformed (expected \"" TRACE_MAGIC
                " image-sha256=HEX image-size=N chunk-size=N\")",
                path);
  return -1;
}

/* Read one line into buf (size len) with fgets.  1 read, 0 end of
 * file, -1 error (reported): read error, too long, or no final '\n'.
 */
static int
read_line (FILE *fp, const char *path, uint64_t lineno, char *buf, size_t len)
{
  size_t got;

  if (fgets (buf, len, fp) == NULL) {
    if (ferror (fp)) {
      report_error ("%s: read: %m", path);
      return -1;
    }
    return 0;
  }
  got = strlen (buf);
  if (got == 0 || buf[got - 1] != '\n') {
    if (got + 1 == len)
      report_error ("%s: line %" PRIu64 ": too long", path, lineno);
    else if (feof (fp))
      report_error ("%s: line %" PRIu64 ": no newline at the end (a "
                    "truncated trace?)",
                    path, lineno);
    else
      report_error ("%s: line %" PRIu64 ": contains a NUL byte", path, lineno);
    return -1;
  }
  return 1;
}

int
trace_read (const char *path, struct trace_info *info, uint64_t **chunks,
            size_t *n)
{
  char header[TRACE_MAX_HEADER + 2], line[MAX_LINE];
  uint8_t *seen = NULL;
  uint64_t *list = NULL;
  size_t len = 0, alloc = 0;
  uint64_t lineno = 1;
  FILE *fp;
  int r;

  fp = fopen (path, "re");
  if (fp == NULL) {
    report_error ("%s: %m", path);
    return -1;
  }
  r = read_line (fp, path, lineno, header, sizeof header);
  if (r == 0)
    report_error ("%s: empty file, not an accel trace", path);
  if (r != 1 || parse_header (path, header, info) == -1)
    goto err;

  seen = calloc (info->nr_chunks / 8 + 1, 1);
  if (seen == NULL) {
    report_error ("%s: calloc: %m", path);
    goto err;
  }
  for (;;) {
    const char *p = line;
    uint64_t idx;

    lineno++;
    r = read_line (fp, path, lineno, line, sizeof line);
    if (r == 0)
      break;
    if (r == -1)
      goto err;
    if (!parse_u64 (&p, &idx) || strcmp (p, "\n") != 0) {
      line[strcspn (line, "\n")] = '\0';
      report_error ("%s: line %" PRIu64 ": \"%.24s\" is not a chunk index",
                    path, lineno, line);
      goto err;
    }
    if (idx >= info->nr_chunks) {
      report_error ("%s: line %" PRIu64 ": chunk %" PRIu64 " is out of range "
                    "(the image has %" PRIu64 " chunks)",
                    path, lineno, idx, info->nr_chunks);
      goto err;
    }
    if (seen[idx / 8] & (1 << (idx % 8)))
      continue;
    seen[idx / 8] |= 1 << (idx % 8);
    /* NB: at most nr_chunks entries, since repeats are dropped. */
    if (len == alloc) {
      size_t new_alloc = alloc ? alloc * 2 : 256;
      uint64_t *p2 = reallocarray (list, new_alloc, sizeof *list);

      if (p2 == NULL) {
        report_error ("%s: realloc: %m", path);
        goto err;
      }
      list = p2;
      alloc = new_alloc;
    }
    list[len++] = idx;
  }
  fclose (fp);
  free (seen);
  *chunks = list;
  *n = len;
  return 0;

err:
  fclose (fp);
  free (seen);
  free (list);
  return -1;
}
