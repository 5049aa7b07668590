/* sanitizer-preload.so: preloaded after the ASan or TSan runtime into an
 * nbdkit that runs a sanitized plugin (tests/lib/sanitizer.sh; built
 * only by `make SANITIZE=...`).
 *
 * nbdkit is not instrumented, so the runtime comes in by LD_PRELOAD and
 * starts itself at the first call it intercepts.  That call is the
 * malloc in newlocale, run by libp11-kit's constructor (nbdkit links
 * GnuTLS, which links p11-kit) while it holds glibc's setlocale lock for
 * writing.  While starting, the runtime (GCC 12's) looks up
 * swift_demangle with dlsym and then calls dlerror, whose message is
 * translated under the same lock taken for reading: glibc treats that
 * unlock as the writer's and newlocale's own unlock then as a reader's,
 * and the lock is left with -1 readers.  From the first strerror (%m) on,
 * anything that wants the lock for writing waits for ever; nbdkit then
 * hangs at exit, in p11-kit's destructor (freelocale).
 *
 * With swift_demangle defined, dlsym succeeds, dlerror has nothing to
 * translate and the lock is left alone.  The runtime calls it only for
 * names that look like Swift's ("_T..."); NULL means "not demangled".
 */

#include <stddef.h>
#include <stdint.h>

char *swift_demangle (const char *name, size_t len, char *out, size_t *out_len,
                      uint32_t flags);

char *
swift_demangle (const char *name, size_t len, char *out, size_t *out_len,
                uint32_t flags)
{
  (void) name;
  (void) len;
  (void) out;
  (void) out_len;
  (void) flags;
  return NULL;
}
