#!/usr/bin/env bash
# Generates the Arduino library from the tree (arduino/make-library.sh) and
# compiles its example for the ATmega2560 with Debian's arduino-builder and
# arduino-core-avr, the way CI does:
#   OUTDIR/libraries/Peerflash         the generated library
#   OUTDIR/sketch/SerialHexUpdater.ino.{elf,hex}
# Fails on any compiler warning in the library or the sketch (-Wall -Wextra
# through arduino-builder's "-warnings all"; the Arduino core's own warnings
# are not ours and are only counted), and compiles every C file of the library
# once more with avr-gcc -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Werror.
# Every other example is compiled too (into OUTDIR/examples/NAME).
# Prints avr-size for the sketch.
# Usage: build-sketch.sh REPO_ROOT OUTDIR
set -euo pipefail
root=${1:?usage: build-sketch.sh REPO_ROOT OUTDIR}
out=${2:?}
mkdir -p "$out"
out=$(cd "$out" && pwd)
hw=/usr/share/arduino/hardware
for tool in arduino-builder avr-gcc avr-size; do
    command -v "$tool" >/dev/null || { echo "build-sketch: $tool not found (scripts/install-deps.sh installs it)" >&2; exit 1; }
done
[[ -d $hw/arduino/avr/cores/arduino ]] || { echo "build-sketch: $hw/arduino/avr missing (apt-get install arduino-core-avr)" >&2; exit 1; }

"$root/arduino/make-library.sh" "$out/libraries"
lib="$out/libraries/Peerflash"
rm -rf "$out/sketch" "$out/examples" && mkdir -p "$out/sketch"
sketch="$lib/examples/SerialHexUpdater/SerialHexUpdater.ino"
log="$out/sketch/build.log"
# -hardware /usr/share/arduino-builder: its platform.txt has the ctags recipe.
# DECIMAL_DIG: Debian's avr-libc lacks it and the core's WString.cpp needs it.
if ! arduino-builder -compile -hardware /usr/share/arduino-builder -hardware "$hw" -tools /usr/share/arduino-builder \
    -libraries "$out/libraries" -fqbn arduino:avr:mega:cpu=atmega2560 -build-path "$out/sketch" -warnings all \
    -prefs=compiler.cpp.extra_flags=-DDECIMAL_DIG=__DECIMAL_DIG__ "$sketch" >"$log" 2>&1; then
    cat "$log" >&2
    echo "build-sketch: arduino-builder failed" >&2
    exit 1
fi
for ex in "$lib"/examples/*/; do
    name=$(basename "$ex")
    [[ $name == SerialHexUpdater ]] && continue
    mkdir -p "$out/examples/$name"
    if ! arduino-builder -compile -hardware /usr/share/arduino-builder -hardware "$hw" -tools /usr/share/arduino-builder \
        -libraries "$out/libraries" -fqbn arduino:avr:mega:cpu=atmega2560 -build-path "$out/examples/$name" \
        -warnings all -prefs=compiler.cpp.extra_flags=-DDECIMAL_DIG=__DECIMAL_DIG__ "$ex/$name.ino" >>"$log" 2>&1; then
        cat "$log" >&2
        echo "build-sketch: arduino-builder failed for the example $name" >&2
        exit 1
    fi
    echo "build-sketch: example $name compiles"
done
ours=$(grep -E '^[^ ]+:[0-9]+:[0-9]+: warning:' "$log" | grep -v "^$hw/" || true)
core_warnings=$(grep -cE "^$hw/[^ ]+:[0-9]+:[0-9]+: warning:" "$log" || true)
if [[ -n "$ours" ]]; then
    echo "build-sketch: warnings in the library or the sketch:" >&2
    echo "$ours" >&2
    exit 1
fi
echo "build-sketch: arduino-builder: 0 warnings in the library and the examples ($core_warnings in the Arduino core itself, over all builds)"
grep -E '^(Sketch uses|Global variables)' "$log" || true

# The C files once more, strict, as C11 for the AVR (16-bit int).
for f in $(cd "$lib/src" && find . -name '*.c' | sort); do
    avr-gcc -mmcu=atmega2560 -Os -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Werror -I"$lib/src" \
        -c "$lib/src/$f" -o "$out/sketch/strict.o"
done
rm -f "$out/sketch/strict.o"
echo "build-sketch: avr-gcc -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Werror: all C files of the library compile"
avr-size "$out/sketch/SerialHexUpdater.ino.elf"
