# shellcheck shell=bash
# accel: versions of one dataset, for issue 12's measurements (source it).
#
# A generated tree in two sizes and the change kinds applied to it one
# after another, shared by tests/test-mkimage-base.sh (small, seconds)
# and tests/bench/versions (the issue's 380 MB dataset, minutes):
#
#   versions_scale test|issue   the tree's shape (sets the vt_* sizes)
#   versions_tree DIR           generate the tree: ref/genome.fa (the
#                               large file), six ref/index files, small
#                               files in samples/*/, a symbolic link
#   change_KIND DIR             apply one change kind to the tree in DIR
#                               and print the bytes it adds or rewrites
#                               (the target is those bytes in chunks
#                               plus 4 chunks)
#   versions_kinds              the kinds, in the order they are applied,
#                               each to the result of the previous ones
#   versions_unasserted         kinds measured but not asserted (each
#                               says why), applied after those
#
# Contents are deterministic (gen, gen_files), so two runs build the
# same images.  Needs openssl and python3.

# gen FILE BYTES SEED: deterministic contents.
gen () {
  openssl enc -aes-128-ctr -nosalt -pass "pass:$3" -pbkdf2 -iter 1 \
    < /dev/zero 2>/dev/null | head -c "$2" > "$1"
}

# gen_files: many small files from one process (one openssl each would
# take seconds per thousand): each line of stdin is "BYTES SEED PATH".
gen_files () {
  python3 -c '
import random, sys
for line in sys.stdin:
    n, seed, path = line.rstrip("\n").split(" ", 2)
    with open(path, "wb") as f:
        f.write(random.Random(seed).randbytes(int(n)))
'
}

# versions_scale test|issue: the sizes.  test: a 24 MiB file, six index
# files of 16.5 MiB in all, 320 small files (3.2 MB), an 8 MiB file
# added.  issue (issue 12's dataset, about 380 MB): a 200 MiB file, six
# index files of 60 MiB in all, 2000 small files (120 MB), a 30 MiB
# file added.
versions_scale () {
  case $1 in
    test)
      vt_big=$((24 << 20)) vt_idx_step=700 vt_idx_base=300
      vt_dirs="a b c d" vt_per_dir=80 vt_small_mod=20000
      vt_large=$((8 << 20)) ;;
    issue)
      vt_big=$((200 << 20)) vt_idx_step=2560 vt_idx_base=1280
      vt_dirs="a b c d e f g h" vt_per_dir=250 vt_small_mod=120000
      vt_large=$((30 << 20)) ;;
    *) echo "versions_scale: $1: not test or issue" >&2; return 1 ;;
  esac
}

# versions_tree DIR: version 1 of the dataset (versions_scale first).
versions_tree () {
  local src=$1 i d
  mkdir -p "$src/ref/index" "$src/samples" || return 1
  gen "$src/ref/genome.fa" "$vt_big" genome
  for i in 1 2 3 4 5 6; do
    gen "$src/ref/index/genome.$i.bt2" \
      $(( (i * vt_idx_step + vt_idx_base) << 10 )) "idx$i"
  done
  for d in $vt_dirs; do
    mkdir -p "$src/samples/$d"
    for (( i = 1; i <= vt_per_dir; i++ )); do
      echo "$(( (i * 997 + ${#d} * 31) % vt_small_mod + 100 )) $d$i" \
        "$src/samples/$d/s$i.txt"
    done
  done | gen_files
  ln -s ../ref/genome.fa "$src/samples/genome-link"
}

# The change kinds.  NB: each prints only its byte count on stdout.
change_edit () {
  printf 'X' | dd of="$1/ref/genome.fa" bs=1 seek=$((12 << 20)) \
    conv=notrunc status=none
  echo 1
}
change_grow () { printf 'fourteen bytes' >> "$1/samples/b/s7.txt"; echo 14; }
change_shrink () { truncate -s 50 "$1/samples/c/s9.txt"; echo 0; }
change_add_small () { gen "$1/samples/a/new.txt" 5000 new; echo 5000; }
change_delete_small () { rm "$1/samples/d/s40.txt"; echo 0; }
# NB: not gen /dev/stdout >> FILE: the shell reopens /dev/stdout, a
# link to FILE, truncating it.
change_append_large () {
  gen "$1/append.tmp" $((1 << 20)) app
  cat "$1/append.tmp" >> "$1/ref/genome.fa"
  rm "$1/append.tmp"
  echo $((1 << 20))
}
change_add_large () { gen "$1/ref/extra.fa" "$vt_large" extra; echo "$vt_large"; }
change_rename_dir () { mv "$1/samples/c" "$1/samples/c2"; echo 0; }
# versions_renamed KIND: "FROM TO" for a kind that renames a directory
# (its files are then compared under their new names), else nothing.
versions_renamed () {
  case $1 in rename_dir) echo samples/c samples/c2 ;; esac
}
change_add_many () {
  local i
  mkdir -p "$1/samples/new"
  for (( i = 1; i <= 200; i++ )); do
    echo "3000 m$i $1/samples/new/m$i.txt"
  done | gen_files
  echo $((200 * 3000))
}
# The same size, all new contents.
change_edit_index () {
  local n
  n=$(stat -c %s "$1/ref/index/genome.3.bt2")
  gen "$1/ref/index/genome.3.bt2" "$n" idx3b
  echo "$n"
}
change_truncate_empty () { : > "$1/samples/d/s12.txt"; echo 0; }
# Timestamps are not stored (accel-mkimage); permission bits are.
change_metadata () {
  chmod 0600 "$1/samples/a/s3.txt"
  touch -d 2020-01-01 "$1/samples/b/s5.txt"
  echo 0
}
change_grow_medium () {
  gen "$1/append.tmp" 300000 medium
  cat "$1/append.tmp" >> "$1/ref/index/genome.2.bt2"
  rm "$1/append.tmp"
  echo 300000
}
change_symlink () { ln -sfn ../ref/index/genome.1.bt2 "$1/samples/genome-link"; echo 0; }
change_hardlink () { ln "$1/samples/a/s5.txt" "$1/samples/a/s5-again.txt"; echo 0; }

# hardlink: the new name sorts before the old one, so the copy reaches
# it first; the file keeps its inode and blocks all the same.
versions_kinds () {
  echo edit grow shrink add_small delete_small append_large add_large \
    rename_dir add_many edit_index truncate_empty metadata grow_medium \
    symlink hardlink
}
# Kinds measured but not asserted (none now; each would say why).
versions_unasserted () { :; }
