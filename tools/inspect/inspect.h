/* accel-inspect: what the files of the tool share.
 *
 * inspect.c parses the command line and runs one inspection; remote.c
 * brings a manifest named by a URL into a temporary file; summary.c
 * prints the image's numbers and the file list; file.c prints one
 * file's extents and chunks; format.c holds the small formatting
 * helpers both printers use (escaping untrusted strings for a terminal
 * and for JSON, sizes, modes).
 *
 * Every string in a manifest is untrusted: paths are printed only
 * through format_text_string or format_json_string.
 */

#ifndef ACCEL_INSPECT_H
#define ACCEL_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "manifest.h"

#define PROGNAME "accel-inspect"

/* remote.c */

/* True if arg names a remote manifest (s3://, http://, https://). */
bool remote_is_url (const char *arg);

/* Download the manifest at url into a new private temporary directory
 * (one at a time).  On success *path is the file's path, valid until
 * remote_remove.  0, or -1 (error reported; nothing left behind).
 */
int remote_fetch (const char *url, const char *endpoint, const char **path);

/* Remove the downloaded file and its directory, if there are any. */
void remote_remove (void);

/* summary.c */

/* Print the image's numbers and every file.  name is what the user
 * gave.  0, or -1 (error reported).
 */
int summary_print (struct manifest *m, const char *name, bool json);

/* file.c */

/* Print one file: size, mode, extents and the chunks that hold it.  0,
 * or -1 (error reported, including "no such file").
 */
int
file_print (struct manifest *m, const char *name, const char *path, bool json);

/* format.c */

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

#endif /* ACCEL_INSPECT_H */
