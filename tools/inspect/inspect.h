/* accel-inspect: what the files of the tool share.
 *
 * inspect.c parses the command line and runs one inspection; remote.c
 * brings a manifest named by a URL into a temporary file; summary.c
 * prints the image's numbers and the file list; file.c prints one
 * file's extents and chunks; diff.c prints what a node holding one
 * version fetches for another, and which files differ; whoami.c says
 * which credentials, region and endpoint would be used;
 * common/utils/format.c holds the small formatting helpers the printers
 * use (escaping untrusted strings for a terminal and for JSON, sizes,
 * modes).
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

#include "format.h"
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

/* diff.c */

/* Print what a node holding old fetches for new, and the files that
 * differ.  0, or -1 (error reported).
 */
int diff_print (struct manifest *old, struct manifest *new,
                const char *old_name, const char *new_name, bool json);

/* whoami.c */

/* Print the credentials (source and origin, never a secret), region,
 * S3 endpoint and CA bundle that would be used, and where each came
 * from.  endpoint (--endpoint) and profile (--profile) may be NULL.
 * 0, or -1 (error reported, e.g. a credential source that fails).
 */
int whoami_print (const char *endpoint, const char *profile, bool json);

#endif /* ACCEL_INSPECT_H */
