/* replay: run a fuzz target's LLVMFuzzerTestOneInput on files.
 *
 *   tests/fuzz/replay-NAME FILE...
 *
 * libFuzzer brings its own main; this one lets every build (with the
 * normal compiler, and under make check SANITIZE=...) compile the fuzz
 * targets and feed them the seed corpus and the inputs of crashes
 * already fixed (tests/test-fuzz-corpus.sh).  Each file is read whole
 * and given to the target once.  A target reports a bug by crashing or
 * aborting, as under libFuzzer; otherwise the exit status is 0, or 1 if
 * a file could not be read.
 */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The target, from tests/fuzz/fuzz-NAME.c. */
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* Inputs larger than this are not what the corpus holds: refuse them
 * rather than allocate without bound.
 */
#define MAX_INPUT (16 * 1024 * 1024)

/* Read path whole into a malloc'd buffer.  NULL (reported) on error. */
static uint8_t *
read_file (const char *path, size_t *len)
{
  FILE *fp = fopen (path, "rb");
  uint8_t *buf = NULL;
  size_t n = 0, alloc = 0;

  if (fp == NULL) {
    fprintf (stderr, "replay: %s: %m\n", path);
    return NULL;
  }
  for (;;) {
    size_t r;

    if (n == alloc) {
      uint8_t *p;

      alloc = alloc ? 2 * alloc : 65536;
      if (alloc > MAX_INPUT + 1)
        alloc = MAX_INPUT + 1;
      p = realloc (buf, alloc);
      if (p == NULL) {
        fprintf (stderr, "replay: %s: realloc: %m\n", path);
        goto err;
      }
      buf = p;
    }
    r = fread (buf + n, 1, alloc - n, fp);
    n += r;
    if (n > MAX_INPUT) {
      fprintf (stderr, "replay: %s: larger than %d bytes\n", path, MAX_INPUT);
      goto err;
    }
    if (r == 0)
      break;
  }
  if (ferror (fp)) {
    fprintf (stderr, "replay: %s: read error\n", path);
    goto err;
  }
  fclose (fp);
  *len = n;
  return buf;

err:
  free (buf);
  fclose (fp);
  return NULL;
}

int
main (int argc, char *argv[])
{
  int i, status = EXIT_SUCCESS;

  if (argc < 2) {
    fprintf (stderr, "usage: %s FILE...\n", argv[0]);
    return 2;
  }
  for (i = 1; i < argc; i++) {
    size_t len;
    uint8_t *data = read_file (argv[i], &len);

    if (data == NULL) {
      status = EXIT_FAILURE;
      continue;
    }
    LLVMFuzzerTestOneInput (data, len);
    free (data);
  }
  return status;
}
