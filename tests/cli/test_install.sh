#!/usr/bin/env bash
# cmake --install puts the man page, the bash completion and the Optiboot of
# `peerflash sim avr` under the prefix, and the installed simulator finds it.
set -u
build=${1:?usage: $0 BUILD_DIR}
. "$(dirname "$0")/lib.sh"
prefix=$(mktemp -d /tmp/pf-install-XXXXXX)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null || { echo "FAIL: cmake --install"; exit 1; }
for f in share/man/man1/peerflash.1 share/bash-completion/completions/peerflash share/peerflash/optiboot_atmega328.hex \
    bin/peerflash; do
    [[ -s $prefix/$f ]] && passed=$((passed + 1)) || { echo "FAIL: $f not installed" >&2; failed=$((failed + 1)); }
done
expect 0 "$prefix/bin/\.\./share/peerflash/optiboot_atmega328\.hex" -- "$prefix/bin/peerflash" sim avr --help
expect 0 "^peerflash [0-9]" -- "$prefix/bin/peerflash" -V
expect 0 "usage: peerflash flash" -- "$prefix/bin/peerflash" help flash
expect 0 "EXIT STATUS" -- man -l "$prefix/share/man/man1/peerflash.1"
# the completion completes a command, a target and a driver's option, read
# from the installed peerflash's own --help
words=$(PATH="$prefix/bin:$PATH" bash -c '. "$1"; COMP_WORDS=(peerflash fl); COMP_CWORD=1; _peerflash; echo "${COMPREPLY[*]}";
    COMP_WORDS=(peerflash flash --target st); COMP_CWORD=3; _peerflash; echo "${COMPREPLY[*]}";
    COMP_WORDS=(peerflash flash --read-c); COMP_CWORD=2; _peerflash; echo "${COMPREPLY[*]}"' _ \
    "$prefix/share/bash-completion/completions/peerflash")
[[ $words == $'flash\nstm32\n--read-compare' ]] && passed=$((passed + 1)) || { echo "FAIL: completion gave: $words" >&2; failed=$((failed + 1)); }
finish
