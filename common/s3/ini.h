/* accel: a small parser for the AWS shared credentials and config files.
 *
 * Both files are INI files: "[section]" headers, then "key = value"
 * (or "key: value") lines.  The credentials file names its sections after the profile
 * ("[NAME]"); the config file uses "[profile NAME]" except for
 * "[default]".  That naming rule belongs to the caller (creds.c); this
 * module only parses, so a file is loaded once and queried for several
 * keys, which also means one consistent snapshot of a file that may be
 * rewritten while we read it.
 *
 * The syntax follows what the AWS CLI accepts (Python's configparser in
 * its raw mode): full-line comments start with '#' or ';', keys are
 * case-insensitive, values are trimmed and not unquoted, and there are
 * no inline comments in values.  Lines indented below a key that has no
 * value of its own ("s3 =") are its nested "key = value" pairs (the
 * AWS CLI's sub-properties, as in [services NAME] sections); a nested
 * line without '=' or ':' is an error, as in the AWS CLI.  Lines
 * indented below a key with a value continue that value: they are
 * joined to it with a space, as configparser does (so a
 * credential_process may go on over several lines).  Either way a
 * nested key is never mistaken for a top-level one.
 */

#ifndef ACCEL_INI_H
#define ACCEL_INI_H

#include <stdbool.h>
#include <stddef.h>

/* Caps on anything sized by the file. */
#define INI_MAX_FILE_SIZE (1024 * 1024)
#define INI_MAX_LINE 32768
#define INI_MAX_ENTRIES 65536

struct ini;

/* Read and parse the file at path.  Returns NULL with errno = ENOENT,
 * reporting nothing, if the file does not exist (for the AWS files that
 * is normal).  Any other failure is reported and returns NULL with errno
 * set to something else.
 */
struct ini *ini_load (const char *path);

/* Parse len bytes of buf.  name is the file name used in messages.
 * Returns NULL with errno set after reporting an error.
 */
struct ini *ini_parse (const char *name, const char *buf, size_t len);

/* The value of key in section, or NULL if absent.  If a key is repeated
 * (also across repeated sections) the last one wins.  The string belongs
 * to ini.
 */
const char *
ini_get (const struct ini *ini, const char *section, const char *key);

/* The value of the key nested under key in section, or NULL.  Nested
 * keys are matched exactly (the AWS CLI does not fold their case); if
 * key is repeated, only its last block counts.
 */
const char *ini_get_nested (const struct ini *ini, const char *section,
                            const char *key, const char *nested);

/* Whether a "[section]" header appears in the file. */
bool ini_has_section (const struct ini *ini, const char *section);

void ini_free (struct ini *ini);

/* One-shot lookup.  Returns 0 and sets *value to a malloc'd copy, or to
 * NULL if the file, the section or the key is absent.  Returns -1 after
 * reporting an error (unreadable or malformed file, out of memory).
 */
int ini_lookup (const char *path, const char *section, const char *key,
                char **value);

#endif /* ACCEL_INI_H */
