#!/usr/bin/env python3
"""Check that the libraries are layers (docs/architecture.md).

Reads "NAME DIR ARCHIVE DEPS..." lines (make print-libs) on stdin and
checks, from the built objects' symbol tables (nm) and the sources:

 1. every symbol a library uses from another of our libraries is defined
    in one it may use (its DEPS): a call up a layer is an error;
 2. within a library, and within plugin/, the files use each other
    without cycles, so that they can be read bottom-up;
 3. a library's internal headers (*-internal.h) are included only from
    its own folder, its unit tests (tests/unit/NAME/) and the fuzz
    targets (tests/fuzz/).

Prints every violation and exits 1 if there is one.
"""
import os
import re
import subprocess
import sys

def nm(path, undefined):
    args = ["nm", "-A", "-u" if undefined else "--defined-only", path]
    out = subprocess.run(args, capture_output=True, text=True, check=True)
    syms = []
    for line in out.stdout.splitlines():
        # "ARCHIVE:MEMBER.o:  U name" or "FILE.o:0000 T name"
        where, _, rest = line.rpartition(":")
        parts = rest.split()
        if not parts:
            continue
        if undefined:
            syms.append((where, parts[-1]))
        elif len(parts) >= 3 and parts[1] in "TDBRCGSVWi" and parts[1].isupper():
            syms.append((where, parts[-1]))
    return syms

def member(where):
    # "dir/libx.a:file.o" -> "file.o"; "dir/file.o" -> "dir/file.o"
    return where.split(":")[-1] if ".a:" in where else where

def find_cycles(edges):
    """Return a list of cycles (as lists of nodes) in a dict graph."""
    cycles, state, stack = [], {}, []
    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(edges.get(n, ())):
            if state.get(m) == 1:
                cycles.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2
    for n in sorted(edges):
        if n not in state:
            visit(n)
    return cycles

def file_cycles(label, objects, errors):
    defined = {}
    for o in objects:
        for _, s in nm(o, False):
            defined[s] = o
    edges = {}
    for o in objects:
        for _, s in nm(o, True):
            d = defined.get(s)
            if d and d != o:
                edges.setdefault(o, set()).add(d)
    for c in find_cycles(edges):
        names = " -> ".join(os.path.basename(x)[:-2] + ".c" for x in c)
        errors.append(f"{label}: files use each other in a circle: {names}")

def main():
    top = os.environ.get("ACCEL_TOP", ".")
    os.chdir(top)
    libs = {}
    for line in sys.stdin:
        f = line.split()
        if f:
            libs[f[0]] = {"dir": f[1], "archive": f[2], "deps": f[3:]}
    errors = []

    owner = {}  # symbol -> library defining it
    for name, lib in libs.items():
        for _, s in nm(lib["archive"], False):
            owner[s] = name

    # 1. calls only down.
    for name, lib in libs.items():
        own = {s for s, n in owner.items() if n == name}
        for where, s in nm(lib["archive"], True):
            if s in own or s not in owner:
                continue
            if owner[s] not in lib["deps"]:
                errors.append(f"{name}: {member(where)} uses {s} of "
                              f"{owner[s]}, which is not below it")

    # 2. no cycles between the files of a library or of the plugin.
    for name, lib in libs.items():
        objs = sorted(os.path.join(lib["dir"], f[:-2] + ".o")
                      for f in os.listdir(lib["dir"])
                      if f.endswith(".c") and f != "accel-index.c")
        file_cycles(name, objs, errors)
    plugin = sorted(os.path.join("plugin", f[:-2] + ".o")
                    for f in os.listdir("plugin") if f.endswith(".c"))
    file_cycles("plugin", plugin, errors)

    # 3. internal headers stay inside.
    internal = {}
    for name, lib in libs.items():
        for f in os.listdir(lib["dir"]):
            if f.endswith("-internal.h"):
                internal[f] = (name, lib["dir"])
    inc = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
    for root, dirs, files in os.walk("."):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "build-fuzz"]
        for f in files:
            if not f.endswith((".c", ".h")):
                continue
            path = os.path.normpath(os.path.join(root, f))
            with open(path, errors="replace") as fp:
                text = fp.read()
            for h in inc.findall(text):
                if h not in internal:
                    continue
                name, d = internal[h]
                allowed = (path.startswith(d + "/") or
                           path.startswith(f"tests/unit/{name}/") or
                           path.startswith("tests/fuzz/"))
                if not allowed:
                    errors.append(f"{path}: includes {h}, internal to {name}")

    for e in errors:
        print(e)
    print(f"{len(libs)} libraries checked, {len(errors)} violations")
    return 1 if errors else 0

sys.exit(main())
