#!/usr/bin/env bash
# make demo: the main job on simulated targets. Each scene starts a simulated
# target and the link emulator (`peerflash wire`) at a real line rate between
# it and peerflash, exactly as a USB-serial adapter and a board would be, then
# flashes, verifies and shows that the new firmware runs.
# Usage: scripts/demo.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
pf="$build/peerflash"
tmp=$(mktemp -d /tmp/peerflash-demo.XXXXXX)
pids=()

cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

bold=$'\e[1m' dim=$'\e[2m' off=$'\e[0m'
[[ -t 1 ]] || { bold=; dim=; off=; }
scene() { printf '\n%s== %s%s\n' "$bold" "$*" "$off"; }
say() { printf '%s%s%s\n' "$dim" "$*" "$off"; }
show() { printf '%s$ %s%s\n' "$bold" "$*" "$off"; "$@"; }

# start NAME CMD...: runs CMD in the background, output to $tmp/NAME.log
start() {
    local name=$1
    shift
    "$@" >"$tmp/$name.log" 2>&1 &
    pids+=($!)
}
# wait_path PATH: until a simulator or wire has made its endpoint (5 s at most)
wait_path() {
    for _ in $(seq 100); do [[ -e $1 ]] && return 0; sleep 0.05; done
    echo "demo: $1 did not appear; logs:" >&2
    tail -n 5 "$tmp"/*.log >&2
    exit 1
}
# wait_line FILE PATTERN SECONDS: until a line matching PATTERN is in FILE
wait_line() {
    local i
    for ((i = 0; i < $3 * 20; i++)); do
        grep -qE "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

echo "${bold}peerflash demo${off}: simulated boards behind a link emulator running at real line rates."
say "Every byte below crosses a pty pair at the configured baud rate, as through a USB-serial adapter."

# --- AVR: an ESP8266/Linux box flashing an ATmega328P over RX/TX -------------
scene "1. ATmega328P with the real Optiboot bootloader (simavr), 115200 baud"
say "The test application prints a CRC of its own flash at start-up; we build two versions."
bash "$root/scripts/avr/build-app.sh" "$root/tests/avr/app/app.c" "$tmp/avr" blink 1 0 >/dev/null
bash "$root/scripts/avr/build-app.sh" "$root/tests/avr/app/app.c" "$tmp/avr" app30k 2 28 >/dev/null
start avr-sim "$pf" sim avr --port "$tmp/avr-dev" --uart-log "$tmp/avr-uart.log" --page-write-ms 4.5
wait_path "$tmp/avr-dev"
start avr-wire "$pf" wire --a "$tmp/avr-host" --b "$tmp/avr-dev" --baud 115200
wait_path "$tmp/avr-host"
show "$pf" flash --target avr --port "$tmp/avr-host" "$tmp/avr/app30k.hex"
if wait_line "$tmp/avr-uart.log" "PFAPP seed=2" 10; then
    say "The ATmega328P now runs the new application; it says:"
    grep -E "PFAPP seed=2" "$tmp/avr-uart.log" | tail -n 1
fi
say "A bad image is refused before anything is sent (this one reaches into the bootloader):"
printf ':027E00000C94E0\n:00000001FF\n' >"$tmp/bad.hex"
show "$pf" flash --target avr --port "$tmp/avr-host" "$tmp/bad.hex" || say "(exit status $? = image refused; the board still runs its firmware)"

echo
echo "${bold}Done.${off} See README.md for the commands, docs/ for the design and benchmarks."
