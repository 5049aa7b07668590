# accel: top-level GNU make build.
#
# `make` builds the nbdkit plugin; `make check` installs test dependencies
# (tools/install-deps), builds everything and runs tests/run, which ends
# with "N passed, N failed".  `make install` honours PREFIX and DESTDIR.
#
# Everything in common/ is compiled once into common/libaccel-common.a; the
# plugin, tools and unit tests link that archive, so adding a common module
# or a unit test (tests/unit/test-NAME.c) needs no change here.

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
CC ?= cc
PKG_CONFIG ?= pkg-config

# SANITIZE=address,undefined builds everything with those sanitizers.
SANITIZE ?=

PKGS := nbdkit libcurl openssl sqlite3
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell $(PKG_CONFIG) --libs libcurl openssl sqlite3 2>/dev/null)
PLUGINDIR := $(shell $(PKG_CONFIG) nbdkit --variable=plugindir 2>/dev/null)

WARN := -Wall -Wextra -Wshadow -Wvla -Werror
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=gnu11 -D_GNU_SOURCE -fPIC -pthread $(WARN) -Icommon \
  $(PKG_CFLAGS) $(CFLAGS)
ALL_LDFLAGS := -pthread $(LDFLAGS)
ifneq ($(SANITIZE),)
ALL_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
ALL_LDFLAGS += -fsanitize=$(SANITIZE)
endif

COMMON_SRCS := $(sort $(wildcard common/*.c))
COMMON_OBJS := $(COMMON_SRCS:.c=.o)
COMMON_LIB := common/libaccel-common.a

PLUGIN_SRCS := $(sort $(wildcard plugin/*.c))
PLUGIN_OBJS := $(PLUGIN_SRCS:.c=.o)
PLUGIN := plugin/nbdkit-accel-plugin.so

INDEXER_SRCS := $(sort $(wildcard indexer/*.c))
INDEXER_OBJS := $(INDEXER_SRCS:.c=.o)
INDEXER := indexer/accel-index

# Command line tools: each directory tools/NAME/ holds the sources of
# tools/accel-NAME (one file per job, main in NAME.c).
TOOL_DIRS := $(sort $(patsubst %/,%,$(dir $(wildcard tools/*/*.c))))
TOOLS := $(foreach d,$(TOOL_DIRS),tools/accel-$(notdir $(d)))

# Tools written in shell (they drive system commands): tools/sh/accel-*.
TOOL_SCRIPTS := $(wildcard tools/sh/accel-*)

# Extra libraries some programs need (libext2fs, libsquashfuse).
EXTRA_PKGS := ext2fs com_err squashfuse
EXTRA_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(EXTRA_PKGS) 2>/dev/null)
EXTRA_LIBS := $(shell $(PKG_CONFIG) --libs $(EXTRA_PKGS) 2>/dev/null)

# Small programs that integration tests drive (never run by tests/run
# directly): tests/helpers/NAME.c.
TEST_HELPER_SRCS := $(sort $(wildcard tests/helpers/*.c))
TEST_HELPER_BINS := $(TEST_HELPER_SRCS:.c=)

# Unit tests: one tests/unit/test-NAME.c per pure module.
UNIT_SRCS := $(sort $(wildcard tests/unit/test-*.c))
UNIT_BINS := $(UNIT_SRCS:.c=)

HEADERS := $(wildcard common/*.h plugin/*.h indexer/*.h tools/*/*.h tests/unit/*.h)

FORMAT_FILES = $(wildcard common/*.[ch] plugin/*.[ch] indexer/*.[ch] \
  tools/*/*.[ch] tests/unit/*.[ch] tests/helpers/*.[ch])

.PHONY: all check check-deps demo install clean format format-check

all: $(PLUGIN) $(INDEXER) $(TOOLS) $(UNIT_BINS) $(TEST_HELPER_BINS)

%.o: %.c $(HEADERS)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(COMMON_LIB): $(COMMON_OBJS)
	rm -f $@
	ar rcs $@ $^

$(PLUGIN): $(PLUGIN_OBJS) $(COMMON_LIB) plugin/plugin.syms
	$(CC) -shared -o $@ $(PLUGIN_OBJS) $(COMMON_LIB) $(ALL_LDFLAGS) \
	  -Wl,--version-script=plugin/plugin.syms $(PKG_LIBS)

indexer/%.o tools/%.o: ALL_CFLAGS += $(EXTRA_CFLAGS)

$(INDEXER): $(INDEXER_OBJS) $(COMMON_LIB)
	$(CC) -o $@ $(INDEXER_OBJS) $(COMMON_LIB) $(ALL_LDFLAGS) $(PKG_LIBS) \
	  $(EXTRA_LIBS)

# NB: in a pattern rule's prerequisites make replaces a bare %, so the
# patsubst pattern needs a % that survives secondary expansion.
pc := %
.SECONDARY: $(patsubst %.c,%.o,$(wildcard tools/*/*.c))
.SECONDEXPANSION:
tools/accel-%: $$(patsubst $$(pc).c,$$(pc).o,$$(wildcard tools/$$*/*.c)) $(COMMON_LIB)
	$(CC) -o $@ $(filter %.o,$^) $(COMMON_LIB) $(ALL_LDFLAGS) $(PKG_LIBS) \
	  $(EXTRA_LIBS)

tests/helpers/%: tests/helpers/%.c $(COMMON_LIB) $(HEADERS)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(COMMON_LIB) $(ALL_LDFLAGS) $(PKG_LIBS)

tests/unit/test-%: tests/unit/test-%.c $(COMMON_LIB) $(HEADERS)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(COMMON_LIB) $(ALL_LDFLAGS) $(PKG_LIBS)

check-deps:
	tools/install-deps

check: check-deps
	$(MAKE) all
	tests/run

demo: check-deps
	$(MAKE) all
	tools/demo

install: $(PLUGIN) $(INDEXER) $(TOOLS)
	install -d $(DESTDIR)$(PLUGINDIR) $(DESTDIR)$(BINDIR)
	install -m 0755 $(PLUGIN) $(DESTDIR)$(PLUGINDIR)/
	install -m 0755 $(INDEXER) $(TOOLS) $(TOOL_SCRIPTS) $(DESTDIR)$(BINDIR)/

format:
	clang-format -i $(FORMAT_FILES)

format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -f common/*.o plugin/*.o indexer/*.o tools/*/*.o $(COMMON_LIB) \
	  $(PLUGIN) $(INDEXER) $(TOOLS) \
	  $(UNIT_BINS) $(TEST_HELPER_BINS)
