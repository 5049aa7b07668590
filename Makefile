# accel: top-level GNU make build.
#
# `make` builds the nbdkit plugin; `make check` installs test dependencies
# (tools/install-deps), builds everything and runs tests/run, which ends
# with "N passed, N failed".  `make install` honours PREFIX and DESTDIR.
#
# Shared code lives in libraries, one folder and one static archive each
# (docs/architecture.md), in layers: a library may use only those listed
# after it in LIB_ORDER, and is compiled with only their folders on its
# include path, so an include up a layer fails to compile and a call up
# a layer fails tests/test-layers.sh.  Adding a module to a library, or a
# unit test (tests/unit/LIB/test-NAME.c), needs no change here.

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
# Files the tools read but nobody runs: the shell tools' accel-lib.sh.
PKGLIBDIR ?= $(PREFIX)/lib/accel
# The Grafana dashboard and Prometheus rules (tools/grafana), for operators.
PKGDATADIR ?= $(PREFIX)/share/accel
CC ?= cc
PKG_CONFIG ?= pkg-config

# SANITIZE=address,undefined builds everything with those sanitizers
# (see "Sanitizers" below).
SANITIZE ?=

PKGS := nbdkit libcurl openssl sqlite3
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell $(PKG_CONFIG) --libs libcurl openssl sqlite3 2>/dev/null)
PLUGINDIR := $(shell $(PKG_CONFIG) nbdkit --variable=plugindir 2>/dev/null)

WARN := -Wall -Wextra -Wshadow -Wvla -Werror
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=gnu11 -D_GNU_SOURCE -fPIC -pthread $(WARN) \
  $(PKG_CFLAGS) $(CFLAGS)
ALL_LDFLAGS := -pthread $(LDFLAGS)
PLUGIN_LDFLAGS :=
ifneq ($(SANITIZE),)
# NB: -fno-sanitize-recover: UBSan's reports abort, like ASan's.  The
# plugin is never unloaded (-z nodelete), so that LeakSanitizer, which
# runs when nbdkit exits after dlclose, can still name its functions.
ALL_CFLAGS += -fsanitize=$(SANITIZE) -fno-sanitize-recover=all \
  -fno-omit-frame-pointer
ALL_LDFLAGS += -fsanitize=$(SANITIZE)
PLUGIN_LDFLAGS += -Wl,-z,nodelete
endif

# Every object and program depends on this file, which holds the flags
# they were built with, so changing them (SANITIZE=, CFLAGS=) rebuilds
# everything and a sanitized build never links plain objects.
BUILD_FLAGS := .build-flags
BUILD_FLAGS_NOW := $(CC) $(ALL_CFLAGS) | $(ALL_LDFLAGS) $(PLUGIN_LDFLAGS)

# The libraries, top layer first (the order they are linked in):
#   index      indexer/ but its main: file maps of ext4 and squashfs
#              images, the hot list (accel-index, accel-mkimage)
#   s3-upload  common/s3/upload/: PutObject and multipart uploads
#   cache      common/cache/: the node's persistent chunk cache
#   manifest   common/manifest/: the manifest database, trace files
#   s3         common/s3/: HTTP, SigV4, credentials, the S3 read client
#   utils      common/utils/: errors, cleanup, formats, hashing of files
# LIB_DEPS_x: the libraries x may use (all below it).
LIB_ORDER := index s3-upload cache manifest s3 utils
LIB_DIR_index := indexer
LIB_DIR_s3-upload := common/s3/upload
LIB_DIR_cache := common/cache
LIB_DIR_manifest := common/manifest
LIB_DIR_s3 := common/s3
LIB_DIR_utils := common/utils
LIB_DEPS_index := manifest utils
LIB_DEPS_s3-upload := s3 utils
LIB_DEPS_cache := manifest utils
LIB_DEPS_manifest := utils
LIB_DEPS_s3 := utils
LIB_DEPS_utils :=

lib_srcs = $(filter-out indexer/accel-index.c,$(sort $(wildcard $(LIB_DIR_$(1))/*.c)))
lib_archive = $(LIB_DIR_$(1))/libaccel-$(1).a
lib_includes = $(foreach l,$(1) $(LIB_DEPS_$(1)),-I$(LIB_DIR_$(l)))

$(foreach l,$(LIB_ORDER),$(eval LIB_OBJS_$(l) := $(patsubst %.c,%.o,$(call lib_srcs,$(l)))))
$(foreach l,$(LIB_ORDER),$(eval $(LIB_OBJS_$(l)): LIB_CFLAGS := $(call lib_includes,$(l))))
ALL_LIBS := $(foreach l,$(LIB_ORDER),$(call lib_archive,$(l)))
LIB_OBJS := $(foreach l,$(LIB_ORDER),$(LIB_OBJS_$(l)))
# Programs and tests see every library's public headers.
LIB_INCLUDES := $(foreach l,$(LIB_ORDER),-I$(LIB_DIR_$(l)))

PLUGIN_SRCS := $(sort $(wildcard plugin/*.c))
PLUGIN_OBJS := $(PLUGIN_SRCS:.c=.o)
PLUGIN := plugin/nbdkit-accel-plugin.so
PLUGIN_LIBS := $(foreach l,cache manifest s3 utils,$(call lib_archive,$(l)))

INDEXER := indexer/accel-index

# Command line tools: each directory tools/NAME/ holds the sources of
# tools/accel-NAME (one file per job, main in NAME.c).
TOOL_DIRS := $(sort $(patsubst %/,%,$(dir $(wildcard tools/*/*.c))))
TOOLS := $(foreach d,$(TOOL_DIRS),tools/accel-$(notdir $(d)))

# Tools written in shell (they drive system commands): tools/sh/accel-*,
# and the functions they share, which they source: tools/sh/accel-lib.sh.
TOOL_SHLIB := tools/sh/accel-lib.sh
TOOL_SCRIPTS := $(filter-out $(TOOL_SHLIB),$(wildcard tools/sh/accel-*))

# Extra libraries some programs need (libext2fs, libsquashfuse).
EXTRA_PKGS := ext2fs com_err squashfuse
EXTRA_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(EXTRA_PKGS) 2>/dev/null)
EXTRA_LIBS := $(shell $(PKG_CONFIG) --libs $(EXTRA_PKGS) 2>/dev/null)

# accel-prefetch talks NBD to the plugin.
NBD_CFLAGS := $(shell $(PKG_CONFIG) --cflags libnbd 2>/dev/null)
NBD_LIBS := $(shell $(PKG_CONFIG) --libs libnbd 2>/dev/null)
tools/prefetch/%.o: ALL_CFLAGS += $(NBD_CFLAGS)
tools/accel-prefetch: EXTRA_LIBS += $(NBD_LIBS)

# Small programs that integration tests drive (never run by tests/run
# directly): tests/helpers/NAME.c.  The exception, sanitizer-preload.so,
# goes into nbdkit with a sanitizer's runtime (SANITIZE= builds only).
SANITIZER_PRELOAD := tests/helpers/sanitizer-preload.so
TEST_HELPER_SRCS := $(filter-out $(SANITIZER_PRELOAD:.so=.c), \
  $(sort $(wildcard tests/helpers/*.c)))
TEST_HELPER_BINS := $(TEST_HELPER_SRCS:.c=)

# Unit tests: tests/unit/LIB/test-NAME.c, one per pure module of library
# LIB (or of plugin/); they share tests/unit/test.h.
UNIT_SRCS := $(sort $(wildcard tests/unit/*/test-*.c))
UNIT_BINS := $(UNIT_SRCS:.c=)

# Fuzz targets: one tests/fuzz/fuzz-NAME.c per parser of outside input.
# `make fuzz` builds them with libFuzzer (see "Fuzzing" below); every
# build also links each with tests/fuzz/replay.c as tests/fuzz/replay-NAME,
# which tests/test-fuzz-corpus.sh runs over the seed corpus and the
# regression inputs.
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz-*.c))
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz-%.c,%,$(FUZZ_SRCS))
FUZZ_REPLAY_BINS := $(FUZZ_NAMES:%=tests/fuzz/replay-%)

HEADERS := $(wildcard common/*/*.h common/*/*/*.h plugin/*.h indexer/*.h \
  tools/*/*.h tests/unit/*.h)
FUZZ_HEADERS := $(wildcard tests/fuzz/*.h)
BENCH_BINS := tests/bench/readahead-replay

FORMAT_FILES = $(wildcard common/*/*.[ch] common/*/*/*.[ch] plugin/*.[ch] \
  indexer/*.[ch] tools/*/*.[ch] tests/unit/*.[ch] tests/unit/*/*.[ch] \
  tests/helpers/*.[ch] tests/fuzz/*.[ch] tests/bench/*.[ch])

.PHONY: all bench bench-pipeline bench-reader bench-versions bench-versions-fuzz check check-deps check-fleet check-tsan check-valgrind demo fuzz \
  install clean format format-check print-libs FORCE

all: $(PLUGIN) $(INDEXER) $(TOOLS) $(UNIT_BINS) $(TEST_HELPER_BINS) \
  $(FUZZ_REPLAY_BINS) $(BENCH_BINS) $(if $(SANITIZE),$(SANITIZER_PRELOAD))

$(BUILD_FLAGS): FORCE
	@[ "$$(cat $@ 2>/dev/null)" = '$(BUILD_FLAGS_NOW)' ] || \
	  echo '$(BUILD_FLAGS_NOW)' > $@

# LIB_CFLAGS: a library's object sees its own folder and those of the
# libraries below it; everything else sees every library's folder.
LIB_CFLAGS = $(LIB_INCLUDES)
%.o: %.c $(HEADERS) $(BUILD_FLAGS)
	$(CC) $(LIB_CFLAGS) $(ALL_CFLAGS) -c -o $@ $<

define lib_rule
$(call lib_archive,$(1)): $(LIB_OBJS_$(1))
	rm -f $$@
	ar rcs $$@ $$^
endef
$(foreach l,$(LIB_ORDER),$(eval $(call lib_rule,$(l))))

$(PLUGIN): $(PLUGIN_OBJS) $(PLUGIN_LIBS) plugin/plugin.syms $(BUILD_FLAGS)
	$(CC) -shared -o $@ $(PLUGIN_OBJS) $(PLUGIN_LIBS) $(ALL_LDFLAGS) \
	  $(PLUGIN_LDFLAGS) -Wl,--version-script=plugin/plugin.syms $(PKG_LIBS)

indexer/%.o tools/%.o: ALL_CFLAGS += $(EXTRA_CFLAGS)

$(INDEXER): indexer/accel-index.o $(ALL_LIBS) $(BUILD_FLAGS)
	$(CC) -o $@ indexer/accel-index.o $(ALL_LIBS) $(ALL_LDFLAGS) \
	  $(PKG_LIBS) $(EXTRA_LIBS)

# NB: in a pattern rule's prerequisites make replaces a bare %, so the
# patsubst pattern needs a % that survives secondary expansion.
pc := %
.SECONDARY: $(patsubst %.c,%.o,$(wildcard tools/*/*.c))
.SECONDEXPANSION:
tools/accel-%: $$(patsubst $$(pc).c,$$(pc).o,$$(wildcard tools/$$*/*.c)) \
  $(ALL_LIBS) $(BUILD_FLAGS)
	$(CC) -o $@ $(filter %.o,$^) $(ALL_LIBS) $(ALL_LDFLAGS) $(PKG_LIBS) \
	  $(EXTRA_LIBS)

tests/helpers/%: tests/helpers/%.c $(ALL_LIBS) $(HEADERS) $(BUILD_FLAGS)
	$(CC) $(LIB_INCLUDES) $(ALL_CFLAGS) -o $@ $< $(ALL_LIBS) $(ALL_LDFLAGS) \
	  $(PKG_LIBS)

# Not instrumented: it only defines a symbol for the runtime to find.
$(SANITIZER_PRELOAD): $(SANITIZER_PRELOAD:.so=.c)
	$(CC) -shared -fPIC -O2 $(WARN) -o $@ $<

# A library's unit tests may include its internal headers (they are in
# the same folder as its public ones).
tests/unit/%: tests/unit/%.c $(ALL_LIBS) $(HEADERS) $(BUILD_FLAGS)
	$(CC) $(LIB_INCLUDES) -Itests/unit $(ALL_CFLAGS) -o $@ $< $(ALL_LIBS) \
	  $(ALL_LDFLAGS) $(PKG_LIBS)

# The plugin's unit tests (tests/unit/plugin/) link its modules too,
# from an archive so that each test pulls in only what it uses: all but
# accel.c, which registers the plugin with nbdkit.  The others never
# call nbdkit (their messages go through report.h), so no nbdkit_*
# stubs are needed.
PLUGIN_TEST_LIB := plugin/libaccel-plugin-test.a
$(PLUGIN_TEST_LIB): $(filter-out plugin/accel.o,$(PLUGIN_OBJS))
	rm -f $@
	ar rcs $@ $^

tests/unit/plugin/test-%: tests/unit/plugin/test-%.c $(PLUGIN_TEST_LIB) \
  $(PLUGIN_LIBS) $(HEADERS) $(BUILD_FLAGS)
	$(CC) $(LIB_INCLUDES) -Iplugin -Itests/unit $(ALL_CFLAGS) -o $@ $< \
	  $(PLUGIN_TEST_LIB) $(PLUGIN_LIBS) $(ALL_LDFLAGS) $(PKG_LIBS)

# make bench's replay of a workload's reads through the readahead
# detector (BENCH_BINS) links the plugin's modules as its unit tests do.
tests/bench/readahead-replay: tests/bench/readahead-replay.c \
  $(PLUGIN_TEST_LIB) $(PLUGIN_LIBS) $(HEADERS) $(BUILD_FLAGS)
	$(CC) $(LIB_INCLUDES) -Iplugin $(ALL_CFLAGS) -o $@ $< \
	  $(PLUGIN_TEST_LIB) $(PLUGIN_LIBS) $(ALL_LDFLAGS) $(PKG_LIBS)

tests/fuzz/replay-%: tests/fuzz/fuzz-%.c tests/fuzz/replay.c $(ALL_LIBS) \
  $(HEADERS) $(FUZZ_HEADERS) $(BUILD_FLAGS)
	$(CC) $(LIB_INCLUDES) $(ALL_CFLAGS) $(EXTRA_CFLAGS) -o $@ $< \
	  tests/fuzz/replay.c $(ALL_LIBS) $(ALL_LDFLAGS) $(PKG_LIBS) $(EXTRA_LIBS)

check-deps:
	tools/install-deps

# For tests/test-layers.sh: each library as "NAME DIR ARCHIVE DEPS...".
print-libs:
	@$(foreach l,$(LIB_ORDER),echo '$(l) $(LIB_DIR_$(l)) $(call lib_archive,$(l)) $(LIB_DEPS_$(l))';)

# TESTS=PATTERN...: run only the tests whose names contain one.  Without
# TESTS, every test but the fleet's (make check-fleet, which CI runs too:
# they take minutes and exercise many nbdkits at once, not new code paths).
FLEET_TESTS := test-fleet test-sim-fleet test-site-cache
check: check-deps
	$(MAKE) all
	ACCEL_TESTS_EXCLUDE="$(if $(TESTS),,$(FLEET_TESTS))" tests/run $(TESTS)

# The fleet tests (issue 13): six nodes through a proxy that answers
# SlowDown above R GET/s, two nbdkits backing off together, the fleet
# model against hand-worked cases, a site cache tier; about 2 minutes.
check-fleet: check-deps
	$(MAKE) all
	tests/run $(FLEET_TESTS)

# Sanitizers.  `make check SANITIZE=address,undefined` runs the whole
# suite with ASan and UBSan; `make check-tsan` runs the tests that
# exercise concurrency (the cache, the plugin's read path, the S3
# clients) with ThreadSanitizer; `make check-valgrind` runs every unit
# test under valgrind's memcheck.  Each rebuilds what it needs (see
# BUILD_FLAGS).  tests/lib/sanitizer.sh has the run-time side: nbdkit
# gets the runtime preloaded, and any report fails the test.
TSAN_TESTS := unit/cache/test-cache test-serve test-cache- test-faults test-s3 \
  test-prefetch

check-tsan:
	$(MAKE) check SANITIZE=thread TESTS="$(TSAN_TESTS)"

check-valgrind: check-deps
	@[ -z "$(SANITIZE)" ] || { echo "check-valgrind: no SANITIZE=" >&2; exit 1; }
	$(MAKE) all
	ACCEL_VALGRIND=1 tests/run unit/

demo: check-deps
	$(MAKE) all
	tools/demo

# Fuzzing.  `make fuzz` builds every tests/fuzz/fuzz-NAME.c with clang's
# libFuzzer, ASan and UBSan into $(FUZZ_DIR)/fuzz-NAME, then runs each for
# FUZZ_SECONDS from its seed corpus (tests/fuzz/run.sh); FUZZ_TARGETS=NAME...
# runs only those.  The common library and the indexer are compiled again
# with clang into $(FUZZ_DIR), so the normal build (and .build-flags) is
# left alone.  A crash's input is saved in tests/fuzz/crashes/NAME/.
FUZZ_CC ?= clang
FUZZ_DIR := build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= $(FUZZ_NAMES)
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS := -std=gnu11 -D_GNU_SOURCE -pthread $(WARN) $(LIB_INCLUDES) \
  $(PKG_CFLAGS) $(EXTRA_CFLAGS) -O1 -g -fno-omit-frame-pointer $(FUZZ_SAN)
FUZZ_OBJS := $(addprefix $(FUZZ_DIR)/,$(LIB_OBJS))
FUZZ_BINS := $(FUZZ_NAMES:%=$(FUZZ_DIR)/fuzz-%)
.SECONDARY: $(FUZZ_OBJS)

$(FUZZ_DIR)/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/fuzz-%: tests/fuzz/fuzz-%.c $(FUZZ_OBJS) $(HEADERS) $(FUZZ_HEADERS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) \
	  -pthread $(PKG_LIBS) $(EXTRA_LIBS)

fuzz: check-deps
	$(MAKE) $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz-%)
	FUZZ_DIR=$(FUZZ_DIR) FUZZ_SECONDS=$(FUZZ_SECONDS) \
	  tests/fuzz/run.sh $(FUZZ_TARGETS)

# The performance bench of issue 5 (not part of check): prints its table
# and targets and writes them to docs/bench-results.md and README.md.
# BENCH_QUICK=1 for the small variant; tests/bench/bench says more.
bench: check-deps
	$(MAKE) all
	tests/bench/bench

# Issue 12's cost of a dataset's new version at the issue's scale (also
# part of bench): prints its tables and writes docs/bench-versions.md.
bench-versions: check-deps
	$(MAKE) all
	tests/bench/versions

# Issue 12's targets on random trees and random changes (not part of
# check or bench; tests/test-versions-fuzz.sh runs a short one):
# VERSIONS_FUZZ="--seed S --rounds N ..." (tests/bench/versions-fuzz -h).
VERSIONS_FUZZ ?= --rounds 30
bench-versions-fuzz: check-deps
	$(MAKE) all
	tests/bench/versions-fuzz $(VERSIONS_FUZZ)

# Issue 16's fan-out pipeline (not part of check or bench): N bowtie2
# tasks under Snakemake, the status quo against accel cold and warm;
# PIPELINE_N=, PIPELINE_NODES= and more: tests/bench/pipeline/bench.
bench-pipeline: check-deps
	$(MAKE) all
	tests/bench/pipeline/bench

# Issue 16's data-parallel reader (not part of check or bench): Dask
# workers read a training set's shards for 3 epochs from S3, from an
# accel mount and from local disk; tests/bench/pipeline/reader.
bench-reader: check-deps
	$(MAKE) all
	tests/bench/pipeline/reader

# NB: the shell tools find accel-lib.sh relative to themselves, which
# works while BINDIR and PKGLIBDIR are under one PREFIX; else in the
# PKGLIBDIR written into them here.
install: $(PLUGIN) $(INDEXER) $(TOOLS)
	install -d $(DESTDIR)$(PLUGINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(PKGLIBDIR)
	install -m 0755 $(PLUGIN) $(DESTDIR)$(PLUGINDIR)/
	install -m 0755 $(INDEXER) $(TOOLS) $(TOOL_SCRIPTS) $(DESTDIR)$(BINDIR)/
	install -m 0644 $(TOOL_SHLIB) $(DESTDIR)$(PKGLIBDIR)/
	install -d $(DESTDIR)$(PKGDATADIR)/grafana
	install -m 0644 tools/grafana/accel-dashboard.json \
	  tools/grafana/accel-alerts.yml $(DESTDIR)$(PKGDATADIR)/grafana/
	sed -i 's|^pkglibdir=.*|pkglibdir=$(PKGLIBDIR)|' \
	  $(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(TOOL_SCRIPTS)))

format:
	clang-format -i $(FORMAT_FILES)

format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -f $(LIB_OBJS) $(ALL_LIBS) plugin/*.o indexer/*.o tools/*/*.o \
	  $(PLUGIN_TEST_LIB) \
	  $(BUILD_FLAGS) \
	  $(PLUGIN) $(INDEXER) $(TOOLS) \
	  $(UNIT_BINS) $(TEST_HELPER_BINS) $(SANITIZER_PRELOAD) \
	  $(FUZZ_REPLAY_BINS) $(BENCH_BINS)
	rm -rf $(FUZZ_DIR)
