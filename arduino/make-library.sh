#!/usr/bin/env bash
# Generates the Arduino library "Peerflash" from the tree into OUTDIR/Peerflash:
#   library.properties, examples/, extras/ (send-hex.py, the PC side)  from arduino/
#   src/*.h, src/*.cpp, src/*.c          the Arduino port and updater (arduino/src)
#   src/peerflash/*.h                    the public headers the core files include
#   src/core, src/codec, src/targets, src/image
#                                        the core files the AVR updater needs, copied
#                                        as they are in the tree (same relative
#                                        #include paths: "codec/stk500.h" resolves
#                                        against src/, "text.h" next to ihex.c)
# Nothing here is a second copy to maintain: run it again after a change.
# Only the files listed are copied (the Arduino build compiles every source
# under src/, and the other drivers need zlib and mbedTLS).
# Usage: arduino/make-library.sh OUTDIR
set -euo pipefail
out=${1:?usage: make-library.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
lib="$out/Peerflash"

core_sources=(
    src/core/err.c            # pf_strerror, pf_diag, the freestanding formatter
    src/core/port.c           # deadlines and read/write helpers over a pf_port
    src/codec/stk500.c src/codec/stk500.h
    src/targets/avr.c src/targets/avr_chips.c src/targets/avr_state.h
    src/image/ihex.c src/image/text.h
)
headers=(pf_avr.h pf_bytes.h pf_digest.h pf_err.h pf_image.h pf_memmap.h pf_port.h pf_target.h)

tmp="$out/.Peerflash.tmp"
rm -rf "$tmp"
mkdir -p "$tmp/src/peerflash"
cp "$here/library.properties" "$tmp/"
cp -R "$here/examples" "$here/extras" "$tmp/"
cp "$here"/src/*.h "$here"/src/*.cpp "$here"/src/*.c "$tmp/src/"
for h in "${headers[@]}"; do
    cp "$root/include/peerflash/$h" "$tmp/src/peerflash/"
done
for f in "${core_sources[@]}"; do
    mkdir -p "$tmp/$(dirname "$f")"
    cp "$root/$f" "$tmp/$f"
done
# Every header a copied file includes must have come along.
missing=$(grep -ho '#include "[^"]*"' "$tmp"/src/*.[ch] "$tmp"/src/*.cpp "$tmp"/src/*/*.[ch] | sort -u |
    sed 's/#include "\(.*\)"/\1/' | while read -r inc; do
        [[ -f "$tmp/src/$inc" || -n $(find "$tmp/src" -path "*/$inc" -print -quit) ]] || echo "$inc"
    done)
if [[ -n "$missing" ]]; then
    echo "make-library: headers included but not copied: $missing" >&2
    exit 1
fi
rm -rf "$lib"
mkdir -p "$out"
mv "$tmp" "$lib"
echo "make-library: $lib ($(find "$lib/src" -type f | wc -l) files)"
