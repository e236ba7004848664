#!/usr/bin/env bash
# Builds the AVR test application (tests/avr/app/app.c) for the ATmega328P
# with avr-gcc into OUTDIR/NAME.{elf,hex,bin}.
# Usage: build-app.sh SRC OUTDIR NAME SEED PAD_KB
set -euo pipefail
src=${1:?usage: build-app.sh SRC OUTDIR NAME SEED PAD_KB}
out=${2:?}; name=${3:?}; seed=${4:?}; pad=${5:?}
mkdir -p "$out"
avr-gcc -mmcu=atmega328p -DF_CPU=16000000UL -DAPP_SEED="$seed" -DAPP_PAD_KB="$pad" \
    -Os -std=gnu11 -Wall -Wextra -Werror -o "$out/$name.elf.tmp" "$src"
mv "$out/$name.elf.tmp" "$out/$name.elf"
avr-objcopy -O ihex -j .text -j .data "$out/$name.elf" "$out/$name.hex"
avr-objcopy -O binary -j .text -j .data "$out/$name.elf" "$out/$name.bin"
