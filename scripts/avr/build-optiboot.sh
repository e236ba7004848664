#!/usr/bin/env bash
# Builds the real Optiboot for the ATmega328P from the source Debian's
# arduino-core-avr ships, into OUTDIR/optiboot_atmega328.hex.
# The prebuilt .hex next to that source is broken (532 bytes: it overruns the
# 512-byte boot section and the end of flash), so it is never used: the
# folder is copied, cleaned and rebuilt with the flags that give 500 bytes.
# Usage: build-optiboot.sh OUTDIR
set -euo pipefail
out=${1:?usage: build-optiboot.sh OUTDIR}
src=${OPTIBOOT_SRC:-/usr/share/arduino/hardware/arduino/avr/bootloaders/optiboot}
if [[ ! -f "$src/optiboot.c" ]]; then
    echo "build-optiboot: $src/optiboot.c not found (apt-get install arduino-core-avr)" >&2
    exit 1
fi
mkdir -p "$out"
work=$(mktemp -d "$out/optiboot-src.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$src"/* "$work"/
rm -f "$work"/*.hex "$work"/*.lst "$work"/*.elf "$work"/*.o
make -s -C "$work" clean >/dev/null 2>&1 || true
make -C "$work" atmega328 \
    OPTIMIZE="-Os -fno-inline-small-functions -fno-split-wide-types -mrelax -fno-tree-scev-cprop -fno-move-loop-invariants" \
    >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
hex="$work/optiboot_atmega328.hex"
# The Makefile prints avr-size's line for the .elf (text data bss dec hex name).
size=$(awk '$NF=="optiboot_atmega328.elf" && $1 ~ /^[0-9]+$/ {print $1}' "$work/build.log" | tail -1)
if [[ -z "$size" || "$size" -gt 512 ]]; then
    echo "build-optiboot: the built Optiboot is ${size:-?} bytes of code; it must fit the 512-byte boot section" >&2
    exit 1
fi
cp "$hex" "$out/optiboot_atmega328.hex.tmp"
mv "$out/optiboot_atmega328.hex.tmp" "$out/optiboot_atmega328.hex"
echo "build-optiboot: $out/optiboot_atmega328.hex (${size} bytes of code)"
