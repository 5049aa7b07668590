# accel bench: the three datasets, as ext4 images made by accel-mkimage
# (sourced by tests/bench/bench after lib.sh).
#
#   big     one file of $big_bytes pseudo-random (incompressible) bytes
#   small   images/smallfiles, $small_copies copies side by side
#   genome  images/genome: reference, bowtie2 index, reads
#
# Built once into $images/NAME-KEY.img, KEY a hash of the recipe (sizes,
# the generators' and accel-mkimage's sources), so reruns reuse them, the quick and full
# variants' side by side.  Images of older recipes are left there: remove
# the directory to reclaim them.  Beside each image, NAME-KEY.expect
# holds what the workloads check the data they read against (CRCs of the
# big file and of every small file, the genome's alignments), computed
# from the source tree before it became an image.

# The big file: AES-128-CTR of zeros under a fixed key, the fastest
# deterministic incompressible stream at hand.
make_big_file () {
  openssl enc -aes-128-ctr -nosalt -K 61636365006c2062656e6368000000ff \
    -iv 00000000000000000000000000000000 < /dev/zero 2>/dev/null |
    head -c "$2" > "$1"
  [ "$(stat -c %s "$1")" = "$2" ] || die "$1: short"
}

# recipe_key NAME WORDS...: 12 hex digits naming a recipe.  NB:
# accel-mkimage's sources are part of it: the layout it chooses (block
# and inode sizes, where files go) is what the rows measure.
recipe_key () {
  local name=$1; shift
  { echo "$name $*"
    cat "$top"/tools/mkimage/*.[ch]
    case $name in
      small) cat "$top"/images/smallfiles/* "$top"/images/lib/* ;;
      genome) cat "$top"/images/genome/* "$top"/images/lib/* ;;
    esac
  } | sha256sum | cut -c 1-12
}

# dataset NAME: make sure NAME's image exists; sets ds_img (the image) and
# loads its .expect file.
dataset () {
  local name=$1 key src img
  case $name in
    big) key=$(recipe_key big "$big_bytes aes-ctr-v1") ;;
    small) key=$(recipe_key small "$small_copies") ;;
    genome) key=$(recipe_key genome) ;;
  esac
  img="$images/$name-$key.img"
  if [ ! -s "$img" ] || [ ! -s "$images/$name-$key.expect" ]; then
    say "building dataset $name (once; kept in $images)"
    rm -f "$img" "$img.manifest" "$images/$name-$key.expect"
    src="$BENCH_DIR/tmp/$name-src"
    rm -rf "$src" "$src".*
    mkdir -p "$BENCH_DIR/tmp"
    case $name in
      big)
        mkdir -p "$src"
        make_big_file "$src/big.bin" "$big_bytes"
        echo "big_cksum='$(cksum < "$src/big.bin")'" > "$images/$name-$key.expect.tmp"
        ;;
      small)
        "$top/images/smallfiles/build" "$src.one" || die "images/smallfiles/build failed"
        if [ "$small_copies" = 1 ]; then
          mv "$src.one" "$src"
        else
          mkdir -p "$src"
          for (( i = 1; i <= small_copies; i++ )); do cp -a "$src.one" "$src/copy$i"; done
          rm -rf "$src.one"
        fi
        { echo "small_sum='$(cd "$src" && find . -type f -print0 | xargs -0 cksum | LC_ALL=C sort | cksum)'"
          echo "small_files=$(find "$src" -type f | wc -l)"
          echo "small_bytes=$(find "$src" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')"
        } > "$images/$name-$key.expect.tmp"
        ;;
      genome)
        "$top/images/genome/build" "$src" || die "images/genome/build failed"
        # The same command as the workload, on the tree itself.
        bowtie2 -p 2 --reorder -x "$src/index/genome" -U "$src/reads.fq" \
          -S "$BENCH_DIR/tmp/genome.sam" 2> /dev/null || die "bowtie2 on $src failed"
        echo "align_sum='$(grep -v '^@' "$BENCH_DIR/tmp/genome.sam" | cksum)'" \
          > "$images/$name-$key.expect.tmp"
        rm -f "$BENCH_DIR/tmp/genome.sam"
        ;;
    esac
    TMPDIR="$BENCH_DIR/tmp" "$top/tools/accel-mkimage" "$src" "$images" \
      --name "$name-$key" > /dev/null || die "accel-mkimage $name failed"
    rm -rf "$src"
    mv "$images/$name-$key.expect.tmp" "$images/$name-$key.expect"
  fi
  ds_img=$img
  . "$images/$name-$key.expect"
}

# publish NAME IMG: put IMG and a fresh manifest (this tree's accel-index)
# into the origin's bucket as bench/NAME.img and bench/NAME.img.manifest.
publish () {
  local name=$1 img=$2 dir="$origin_root/bench"
  mkdir -p "$dir"
  cp "$img" "$dir/$name.img" || die "copy $img to the origin"
  "$top/indexer/accel-index" "$dir/$name.img" -o "$dir/$name.img.manifest" > /dev/null ||
    die "accel-index $name failed"
  chmod 0644 "$dir/$name.img" "$dir/$name.img.manifest"
}
