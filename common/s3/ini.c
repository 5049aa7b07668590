/* accel: a small parser for the AWS shared credentials and config files.
 *
 * The file is read whole (it is capped at INI_MAX_FILE_SIZE) and split
 * into lines; every section header and key/value pair becomes an entry.
 * Sections are not merged: each entry remembers the header above it and
 * lookups scan backwards, which gives "last one wins" for repeated keys
 * and repeated sections without any quadratic work at parse time.  See
 * ini.h for the accepted syntax.
 */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "file-io.h"
#include "ini.h"
#include "report.h"

struct ini_entry {
  size_t section; /* index into ini->sections */
  size_t parent; /* 0, or 1 + the index of the key this one is nested in */
  char *key; /* NULL for the header entry itself */
  char *value;
};

struct ini {
  char **sections; /* one per header line, in file order */
  size_t nr_sections, alloc_sections;
  struct ini_entry *entries;
  size_t nr_entries, alloc_entries;
};

/* What the parser tracks between lines. */
struct ini_state {
  const char *name; /* file name for messages */
  size_t lineno;
  bool in_section;
  bool in_key; /* last content line was "key = value" */
  size_t key_indent; /* ... and its indentation */
  size_t key_entry; /* ... and its index in ini->entries */
};

/* Free everything; values are wiped first since they may be secret keys. */
void
ini_free (struct ini *ini)
{
  size_t i;

  if (ini == NULL)
    return;
  for (i = 0; i < ini->nr_sections; ++i)
    free (ini->sections[i]);
  for (i = 0; i < ini->nr_entries; ++i) {
    free (ini->entries[i].key);
    /* Values may be secret keys: wipe them. */
    if (ini->entries[i].value) {
      explicit_bzero (ini->entries[i].value, strlen (ini->entries[i].value));
      free (ini->entries[i].value);
    }
  }
  free (ini->sections);
  free (ini->entries);
  free (ini);
}

/* Append one entry, growing the array geometrically.  Every header and
 * key counts towards INI_MAX_ENTRIES so that a hostile file cannot make
 * us allocate without bound.
 */
static int
ini_add_entry (struct ini *ini, const struct ini_state *st, size_t section,
               size_t parent, char *key, char *value)
{
  struct ini_entry *e;

  if (ini->nr_entries >= INI_MAX_ENTRIES) {
    report_error ("%s: line %zu: more than %d sections and keys", st->name,
                  st->lineno, INI_MAX_ENTRIES);
    errno = E2BIG;
    return -1;
  }
  if (ini->nr_entries == ini->alloc_entries) {
    size_t n = ini->alloc_entries ? ini->alloc_entries * 2 : 16;

    e = realloc (ini->entries, n * sizeof *e);
    if (e == NULL) {
      report_error ("%s: realloc: %m", st->name);
      return -1;
    }
    ini->entries = e;
    ini->alloc_entries = n;
  }
  e = &ini->entries[ini->nr_entries++];
  e->section = section;
  e->parent = parent;
  e->key = key;
  e->value = value;
  return 0;
}

/* Copy [p, p+len) with leading and trailing blanks removed. */
static char *
ini_strip_dup (const char *p, size_t len)
{
  while (len > 0 && isblank ((unsigned char) *p)) {
    p++;
    len--;
  }
  while (len > 0 && isblank ((unsigned char) p[len - 1]))
    len--;
  return strndup (p, len);
}

/* "[ profile   foo ]" names the section "profile foo": the AWS CLI
 * splits the header on whitespace, so runs of blanks inside the name
 * collapse to one space.  Only a comment may follow the ']'.
 */
static int
ini_parse_header (struct ini *ini, struct ini_state *st, const char *p,
                  size_t len)
{
  const char *close;
  char *name, **sections;
  size_t i, j;

  close = memchr (p, ']', len);
  if (close == NULL) {
    report_error ("%s: line %zu: missing ']' in section header", st->name,
                  st->lineno);
    errno = EINVAL;
    return -1;
  }
  for (i = close - p + 1; i < len && isblank ((unsigned char) p[i]); ++i)
    ;
  if (i < len && p[i] != '#' && p[i] != ';') {
    report_error ("%s: line %zu: unexpected text after section header",
                  st->name, st->lineno);
    errno = EINVAL;
    return -1;
  }

  name = ini_strip_dup (p + 1, close - p - 1);
  if (name == NULL) {
    report_error ("%s: strndup: %m", st->name);
    return -1;
  }
  for (i = j = 0; name[i]; ++i) {
    if (isblank ((unsigned char) name[i])) {
      if (j > 0 && name[j - 1] == ' ')
        continue;
      name[j++] = ' ';
    }
    else
      name[j++] = name[i];
  }
  name[j] = '\0';
  if (j == 0) {
    report_error ("%s: line %zu: empty section name", st->name, st->lineno);
    free (name);
    errno = EINVAL;
    return -1;
  }

  /* The entry cap also bounds the number of sections. */
  if (ini_add_entry (ini, st, ini->nr_sections, 0, NULL, NULL) == -1) {
    free (name);
    return -1;
  }
  if (ini->nr_sections == ini->alloc_sections) {
    size_t n = ini->alloc_sections ? ini->alloc_sections * 2 : 8;

    sections = realloc (ini->sections, n * sizeof *sections);
    if (sections == NULL) {
      report_error ("%s: realloc: %m", st->name);
      free (name);
      return -1;
    }
    ini->sections = sections;
    ini->alloc_sections = n;
  }
  ini->sections[ini->nr_sections++] = name;
  st->in_section = true;
  st->in_key = false;
  return 0;
}

/* "key = value" or "key: value": the key is everything before the
 * first '=' or ':' (a value such as an ARN may itself contain both).
 * parent is 0 for a key of the section, else 1 + the index of the key
 * it is nested in.
 */
static int
ini_parse_key_value (struct ini *ini, struct ini_state *st, const char *p,
                     size_t len, size_t indent, size_t parent)
{
  const char *eq;
  char *key, *value;

  if (!st->in_section) {
    report_error ("%s: line %zu: key outside of a [section]", st->name,
                  st->lineno);
    errno = EINVAL;
    return -1;
  }
  /* As configparser (botocore) reads it, "key: value" is "key = value":
   * the first '=' or ':' ends the key.
   */
  for (eq = p; eq < p + len && *eq != '=' && *eq != ':'; eq++)
    ;
  if (eq == p + len) {
    if (parent)
      report_error ("%s: line %zu: expected 'key = value' nested in '%s'",
                    st->name, st->lineno, ini->entries[parent - 1].key);
    else
      report_error ("%s: line %zu: expected 'key = value'", st->name,
                    st->lineno);
    errno = EINVAL;
    return -1;
  }
  key = ini_strip_dup (p, eq - p);
  value = ini_strip_dup (eq + 1, len - (eq - p) - 1);
  if (key == NULL || value == NULL) {
    report_error ("%s: strndup: %m", st->name);
    goto err;
  }
  if (key[0] == '\0') {
    report_error ("%s: line %zu: empty key", st->name, st->lineno);
    errno = EINVAL;
    goto err;
  }
  if (ini_add_entry (ini, st, ini->nr_sections - 1, parent, key, value) == -1)
    goto err;
  /* A nested key leaves its parent the key that later lines belong to. */
  if (parent == 0) {
    st->in_key = true;
    st->key_indent = indent;
    st->key_entry = ini->nr_entries - 1;
  }
  return 0;

err:
  free (key);
  free (value);
  return -1;
}

/* One line, without its '\n' (and without a '\r' before it). */
static int
ini_parse_line (struct ini *ini, struct ini_state *st, const char *p,
                size_t len)
{
  size_t indent = 0;

  if (len > INI_MAX_LINE) {
    report_error ("%s: line %zu: longer than %d bytes", st->name, st->lineno,
                  INI_MAX_LINE);
    errno = E2BIG;
    return -1;
  }
  while (indent < len && isblank ((unsigned char) p[indent]))
    indent++;
  if (indent == len || p[indent] == '#' || p[indent] == ';')
    return 0; /* blank or comment */

  /* NB: like configparser, a line indented deeper than the key above
   * it continues that key.  Below "key =" with no value of its own
   * (e.g. "s3 =" in a [services] section) such lines are nested
   * "key = value" pairs, as the AWS CLI reads them; below a key with a
   * value they continue a multi-line value, which we never need.
   */
  if (st->in_key && indent > st->key_indent) {
    const struct ini_entry *parent = &ini->entries[st->key_entry];

    if (parent->value[0] != '\0') {
      /* configparser joins continuation lines to the value (botocore
       * then splits a credential_process on white space): append it
       * rather than silently dropping it.
       */
      struct ini_entry *e = &ini->entries[st->key_entry];
      size_t old = strlen (e->value), add = len - indent;
      char *v;

      while (add > 0 && isblank ((unsigned char) p[indent + add - 1]))
        add--;
      v = malloc (old + 1 + add + 1);
      if (v == NULL) {
        report_error ("%s: malloc: %m", st->name);
        return -1;
      }
      memcpy (v, e->value, old);
      v[old] = ' ';
      memcpy (v + old + 1, p + indent, add);
      v[old + 1 + add] = '\0';
      explicit_bzero (e->value, old); /* may be a secret */
      free (e->value);
      e->value = v;
      return 0;
    }
    return ini_parse_key_value (ini, st, p + indent, len - indent, indent,
                                st->key_entry + 1);
  }

  if (p[indent] == '[')
    return ini_parse_header (ini, st, p + indent, len - indent);
  return ini_parse_key_value (ini, st, p + indent, len - indent, indent, 0);
}

/* Split into lines and parse each; the first bad line stops it. */
struct ini *
ini_parse (const char *name, const char *buf, size_t len)
{
  struct ini *ini;
  struct ini_state st = { .name = name };
  size_t pos = 0;

  if (len > INI_MAX_FILE_SIZE) {
    report_error ("%s: larger than %d bytes", name, INI_MAX_FILE_SIZE);
    errno = EFBIG;
    return NULL;
  }
  if (memchr (buf, '\0', len) != NULL) {
    report_error ("%s: contains a NUL byte: not a text file", name);
    errno = EINVAL;
    return NULL;
  }
  ini = calloc (1, sizeof *ini);
  if (ini == NULL) {
    report_error ("%s: calloc: %m", name);
    return NULL;
  }

  /* A UTF-8 byte order mark, as some Windows editors write. */
  if (len >= 3 && memcmp (buf, "\xef\xbb\xbf", 3) == 0)
    pos = 3;

  while (pos < len) {
    const char *line = buf + pos;
    const char *nl = memchr (line, '\n', len - pos);
    size_t n = nl ? (size_t) (nl - line) : len - pos;

    pos += n + (nl != NULL);
    st.lineno++;
    if (n > 0 && line[n - 1] == '\r')
      n--;
    if (ini_parse_line (ini, &st, line, n) == -1) {
      int saved_errno = errno;

      ini_free (ini);
      errno = saved_errno;
      return NULL;
    }
  }
  return ini;
}

/* Read at most INI_MAX_FILE_SIZE + 1 bytes so that a larger file is
 * detected without reading all of it.  NB: the file is not required to
 * be a regular file: AWS_SHARED_CREDENTIALS_FILE=/dev/null is a common
 * way to say "no file".
 */
struct ini *
ini_load (const char *path)
{
  CLEANUP_FREE char *buf = NULL;
  size_t len = 0;
  ssize_t r;
  struct stat st;
  struct ini *ini;
  int fd, saved_errno;

  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd == -1) {
    if (errno == ENOENT || errno == ENOTDIR) {
      errno = ENOENT;
      return NULL;
    }
    report_error ("open: %s: %m", path);
    return NULL;
  }
  if (fstat (fd, &st) == -1) {
    report_error ("fstat: %s: %m", path);
    goto err;
  }
  if (S_ISDIR (st.st_mode)) {
    errno = EISDIR;
    report_error ("%s: %m", path);
    goto err;
  }
  buf = malloc (INI_MAX_FILE_SIZE + 1);
  if (buf == NULL) {
    report_error ("malloc: %m");
    goto err;
  }
  r = read_full (fd, buf, INI_MAX_FILE_SIZE + 1);
  if (r == -1) {
    report_error ("read: %s: %m", path);
    goto err;
  }
  len = r;
  close (fd);
  ini = ini_parse (path, buf, len);
  /* The file may hold secret keys: wipe our copy. */
  saved_errno = ini == NULL && errno == ENOENT ? EIO : errno;
  explicit_bzero (buf, len);
  errno = saved_errno;
  return ini;

err:
  saved_errno = errno == ENOENT ? EIO : errno;
  if (buf)
    explicit_bzero (buf, len);
  close (fd);
  errno = saved_errno;
  return NULL;
}

/* Scan backwards so that the last assignment wins. */
const char *
ini_get (const struct ini *ini, const char *section, const char *key)
{
  size_t i;

  for (i = ini->nr_entries; i-- > 0;) {
    const struct ini_entry *e = &ini->entries[i];

    if (e->key && e->parent == 0 && strcasecmp (e->key, key) == 0 &&
        strcmp (ini->sections[e->section], section) == 0)
      return e->value;
  }
  return NULL;
}

/* The last "key =" of the section holds the nested keys that count: a
 * repeated block replaces the earlier one as a whole, as a repeated key
 * does.  Its nested keys follow it directly.
 */
const char *
ini_get_nested (const struct ini *ini, const char *section, const char *key,
                const char *nested)
{
  const char *value = NULL;
  size_t i, p;

  for (p = ini->nr_entries; p-- > 0;) {
    const struct ini_entry *e = &ini->entries[p];

    if (e->key && e->parent == 0 && strcasecmp (e->key, key) == 0 &&
        strcmp (ini->sections[e->section], section) == 0)
      break;
  }
  if (p == (size_t) -1)
    return NULL;
  for (i = p + 1; i < ini->nr_entries && ini->entries[i].parent == p + 1; ++i)
    if (strcmp (ini->entries[i].key, nested) == 0)
      value = ini->entries[i].value;
  return value;
}

/* Used to tell a missing profile from one without the key. */
bool
ini_has_section (const struct ini *ini, const char *section)
{
  size_t i;

  for (i = 0; i < ini->nr_sections; ++i)
    if (strcmp (ini->sections[i], section) == 0)
      return true;
  return false;
}

/* For callers that need one key once. */
int
ini_lookup (const char *path, const char *section, const char *key,
            char **value)
{
  struct ini *ini;
  const char *v;

  *value = NULL;
  ini = ini_load (path);
  if (ini == NULL)
    return errno == ENOENT ? 0 : -1;
  v = ini_get (ini, section, key);
  if (v) {
    *value = strdup (v);
    if (*value == NULL) {
      report_error ("strdup: %m");
      ini_free (ini);
      return -1;
    }
  }
  ini_free (ini);
  return 0;
}
