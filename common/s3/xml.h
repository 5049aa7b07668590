/* accel: a tiny bounded extractor for the XML that AWS services send.
 *
 * STS credentials (creds-fetch.c) and S3's multipart listings
 * (s3-multipart.c) come as small, flat XML documents, so instead of a
 * parser library we pull out the few elements we need.  Documents
 * larger than XML_MAX_DOCUMENT are refused, callers may cap lower.
 *
 * NB: these functions do not report errors: only the caller knows
 * whether a missing element is an error and what to call it.  They
 * return -1 (or NULL) with errno set to ENOENT (element absent), EINVAL
 * (malformed), E2BIG (input over the cap) or ENOMEM.
 */

#ifndef ACCEL_XML_H
#define ACCEL_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XML_MAX_DOCUMENT (1024 * 1024)

/* Find the first element <name>...</name> in xml[0..len), skipping
 * comments, CDATA and processing instructions.  On success *inner and
 * *inner_len give its raw content (for <name/>, the empty string), and
 * the next element can be looked for from *inner + *inner_len.  Nested
 * elements of the same name are not supported.
 */
extern int xml_find (const char *xml, size_t len, const char *name,
                     const char **inner, size_t *inner_len);

/* The text of the first element <name>, with the five predefined
 * entities and numeric character references decoded, as a malloc'd
 * string.  Content containing markup is EINVAL.
 */
extern char *xml_text (const char *xml, size_t len, const char *name);

/* Is cp a code point we are willing to put in a C string (not NUL, not
 * a surrogate, at most U+10FFFF)?  Shared with creds-parse.c's JSON.
 */
extern bool xml_code_point_valid (uint32_t cp);

/* Encode a valid code point as UTF-8 into out (4 bytes at most);
 * returns the number of bytes.
 */
extern size_t xml_utf8_encode (uint32_t cp, char *out);

#endif /* ACCEL_XML_H */
