/* accel: formatting for the command line tools — untrusted strings
 * for a terminal and for JSON, sizes, modes and percentages.
 *
 * Shared by accel-inspect (paths from a manifest) and accel-cache (URLs
 * and identities from a cache directory): whatever the bytes, the text
 * output cannot drive a terminal and the JSON output is valid.
 */

#ifndef ACCEL_FORMAT_H
#define ACCEL_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Print s for a terminal: control characters, backslash and bytes
 * that are not UTF-8 as C-style escapes (\n, \\, \x1b), so that a
 * hostile name cannot move the cursor or hide text.
 */
void format_text_string (FILE *fp, const char *s);

/* Print s as a JSON string, quotes included.  Bytes that are not UTF-8
 * become U+FFFD, so the output is always valid JSON.
 */
void format_json_string (FILE *fp, const char *s);

/* "1.5 MiB", or "123 B" below 1 KiB. */
const char *format_size (uint64_t n, char *buf, size_t len);

/* ls -l style, e.g. "-rwxr-xr-x" (buf at least 11 bytes). */
const char *format_mode (uint32_t mode, char *buf, size_t len);

/* per-mille of part in whole, rounded down ("56.2" for 562); whole may
 * be 0.
 */
const char *
format_percent (uint64_t part, uint64_t whole, char *buf, size_t len);

#endif /* ACCEL_FORMAT_H */
