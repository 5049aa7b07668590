/* accel: what the fuzz targets (tests/fuzz/fuzz-*.c) share.
 *
 * Each target defines LLVMFuzzerTestOneInput, which libFuzzer calls
 * with one input at a time (make fuzz) and tests/fuzz/replay.c calls
 * with each file of the corpus (make check).  A target must not leak,
 * hang or keep state between inputs beyond what is set up once here:
 * the fuzzer runs millions of inputs in one process with limits on
 * memory and time per input.
 *
 * NB: the helpers are static inline so that each target, one .c file,
 * needs nothing else from this directory.
 */

#ifndef ACCEL_FUZZ_H
#define ACCEL_FUZZ_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* Format a message, as a real handler would (so a bad argument for a
 * %s still shows), and drop it: millions of inputs are refused with an
 * error each, and printing them would be most of the fuzzer's time.
 */
static inline void
fuzz_report_debug (const char *fs, va_list args)
{
  char msg[4096];

  vsnprintf (msg, sizeof msg, fs, args);
}

/* The same for errors, which ACCEL_FUZZ_VERBOSE=1 prints (to see why
 * an input is refused; tests/test-fuzz-corpus.sh checks that seeds
 * meant to be valid are not).
 */
static inline void
fuzz_report_error (const char *fs, va_list args)
{
  static int verbose = -1;
  char msg[4096];

  if (verbose == -1)
    verbose = getenv ("ACCEL_FUZZ_VERBOSE") != NULL;
  vsnprintf (msg, sizeof msg, fs, args);
  if (verbose)
    fprintf (stderr, "fuzz: error: %s\n", msg);
}

/* Route the project's error and debug messages to the above. */
static inline void
fuzz_quiet (void)
{
  report_set_handlers (fuzz_report_error, fuzz_report_debug);
}

/* Give up on the whole run: the target itself cannot work. */
static inline void __attribute__ ((noreturn)) fuzz_fail (const char *what)
{
  fprintf (stderr, "fuzz: %s: %s\n", what, strerror (errno));
  abort ();
}

/* A promise of the API that the input broke: a bug, so crash (the
 * fuzzer saves the input).
 */
#define FUZZ_CHECK(cond)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf (stderr, "fuzz: %s:%d: check failed: %s\n", __FILE__, __LINE__,  \
               #cond);                                                         \
      abort ();                                                                \
    }                                                                          \
  } while (0)

/* A directory of this process's own under $TMPDIR (default /tmp) for
 * the files a target needs, removed with what is in it (by name, see
 * fuzz_dir_file) when the process exits normally.  The run scripts
 * point TMPDIR at a directory they remove, for the exits that are not.
 */
static char fuzz_dir_path[4096];
static const char *fuzz_dir_names[8];
static size_t fuzz_dir_nr_names;

static inline void
fuzz_dir_cleanup (void)
{
  char path[sizeof fuzz_dir_path + 64];
  size_t i;

  for (i = 0; i < fuzz_dir_nr_names; i++)
    if (snprintf (path, sizeof path, "%s/%s", fuzz_dir_path,
                  fuzz_dir_names[i]) < (int) sizeof path)
      unlink (path);
  rmdir (fuzz_dir_path);
}

/* The path of the file called name (one of at most 8 fixed names) in
 * the process's directory, which is made on the first call.  The file
 * itself is the caller's to create and remove.
 */
static inline const char *
fuzz_dir_file (const char *name, char *path, size_t len)
{
  if (fuzz_dir_path[0] == '\0') {
    const char *tmp = getenv ("TMPDIR");

    if (snprintf (fuzz_dir_path, sizeof fuzz_dir_path, "%s/accel-fuzz.XXXXXX",
                  tmp && *tmp ? tmp : "/tmp") >= (int) sizeof fuzz_dir_path) {
      errno = ENAMETOOLONG;
      fuzz_fail ("TMPDIR");
    }
    if (mkdtemp (fuzz_dir_path) == NULL)
      fuzz_fail ("mkdtemp");
    atexit (fuzz_dir_cleanup);
  }
  if (fuzz_dir_nr_names < sizeof fuzz_dir_names / sizeof fuzz_dir_names[0]) {
    size_t i;

    for (i = 0; i < fuzz_dir_nr_names; i++)
      if (strcmp (fuzz_dir_names[i], name) == 0)
        break;
    if (i == fuzz_dir_nr_names)
      fuzz_dir_names[fuzz_dir_nr_names++] = name;
  }
  if (snprintf (path, len, "%s/%s", fuzz_dir_path, name) >= (int) len) {
    errno = ENAMETOOLONG;
    fuzz_fail ("TMPDIR");
  }
  return path;
}

/* Replace the file at path with size bytes of data. */
static inline void
fuzz_write_file (const char *path, const uint8_t *data, size_t size)
{
  FILE *fp = fopen (path, "wb");

  if (fp == NULL)
    fuzz_fail (path);
  if ((size > 0 && fwrite (data, 1, size, fp) != size) || fclose (fp) != 0)
    fuzz_fail (path);
}

#endif /* ACCEL_FUZZ_H */
