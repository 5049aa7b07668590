/* accel: tiny bounded extractors for credential service responses.
 *
 * STS answers in XML and the EC2 instance metadata service in JSON; both
 * responses are small and flat, so instead of a parser library we pull
 * out the few values we need.  Inputs larger than CREDS_PARSE_MAX are
 * refused.  Exposed in a header so that unit tests can feed them
 * malformed input.
 *
 * NB: these functions do not report errors: only the caller knows
 * whether a missing field is an error and what to call it.  They return
 * -1 (or NULL) with errno set to ENOENT (field absent), EINVAL
 * (malformed), E2BIG (input over the cap) or ENOMEM.
 */

#ifndef ACCEL_CREDS_PARSE_H
#define ACCEL_CREDS_PARSE_H

#include <stddef.h>
#include <time.h>

#define CREDS_PARSE_MAX 65536

/* xml_find (xml.h), refusing inputs over CREDS_PARSE_MAX: find the
 * first element <name>...</name> in xml[0..len), skipping comments,
 * CDATA and processing instructions.  On success *inner and *inner_len
 * give its raw content (for <name/>, the empty string).  Nested
 * elements of the same name are not supported.
 */
int creds_xml_find (const char *xml, size_t len, const char *name,
                    const char **inner, size_t *inner_len);

/* xml_text (xml.h), with the same cap: the text of the first element
 * <name>, with the five predefined entities and numeric character
 * references decoded, as a malloc'd string.  Content containing markup
 * is EINVAL.
 */
char *creds_xml_text (const char *xml, size_t len, const char *name);

/* The string value of key in the top-level JSON object json[0..len), with
 * escapes decoded, as a malloc'd string.  The whole document must be
 * well-formed; a key whose value is not a string is EINVAL.
 */
char *creds_json_string (const char *json, size_t len, const char *key);

/* The value of key in the top-level JSON object json[0..len), whatever
 * its type, as the span *value, *value_len of json (for a nested
 * object, pass it to creds_json_string in turn).  The whole document
 * must be well-formed.  Returns 0, or -1 with errno ENOENT (no such
 * key), EINVAL (malformed) or E2BIG (over the cap).
 */
int creds_json_raw (const char *json, size_t len, const char *key,
                    const char **value, size_t *value_len);

/* The integer value of key in the top-level JSON object (found as
 * creds_json_raw finds it, with its errno values); a value that is not a
 * number without fraction or exponent, or has more than 18 digits, is
 * EDOM.  Returns 0 with *out set, or -1.
 */
int creds_json_integer (const char *json, size_t len, const char *key,
                        long long *out);

/* Parse an ISO 8601 UTC timestamp as AWS writes it,
 * "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM|+HHMM|-HHMM)".
 */
int creds_parse_time (const char *s, time_t *t);

#endif /* ACCEL_CREDS_PARSE_H */
