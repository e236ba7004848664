#!/bin/bash
# `peerflash flash|verify|read|info --target stm32` end to end against
# `peerflash sim stm32` on a pty at 115200 8E1: exit codes and messages the
# user sees.
set -u
PF=${1:?usage: $0 path/to/peerflash}
DIR=$(mktemp -d /tmp/pf-stm32-cli-XXXXXX)
SIM_PID=
cleanup() {
    [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null
    rm -rf "$DIR"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$DIR/out" ] && tail -5 "$DIR/out"; exit 1; }
start_sim() {
    [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null
    rm -f "$DIR/dev" "$DIR/flash.bin"
    "$PF" sim stm32 --port "$DIR/dev" --flash "$DIR/flash.bin" --program-us-per-256 1000 --erase-ms-per-page 2 \
        --chip "$@" 2>"$DIR/sim.log" &
    SIM_PID=$!
    for _ in $(seq 100); do [ -e "$DIR/dev" ] && return 0; sleep 0.05; done
    fail "simulator did not start"
}
pf() { timeout 100 "$PF" "$@" --target stm32 --port "$DIR/dev" --baud 115200 >"$DIR/out" 2>&1; }

head -c 12000 /dev/urandom >"$DIR/fw.bin"
start_sim G07xxB
pf flash --chip STM32G07xxB --erase all --no-verify "$DIR/fw.bin@0x08000000" || fail "flash --erase all --no-verify"
cmp -n 12000 "$DIR/fw.bin" "$DIR/flash.bin" || fail "flash content after flash --erase all"
pf flash --json "$DIR/fw.bin@0x08000000" || fail "second flash"
grep -q '"skipped_bytes":12000' "$DIR/out" || fail "an unchanged image was written again"
grep -q '"verified":true' "$DIR/out" || fail "not verified"
pf read 0x08000000 12000 "$DIR/back.bin" || fail "read"
cmp "$DIR/fw.bin" "$DIR/back.bin" || fail "read returned other bytes"
pf info || fail "info"
grep -q "0x460" "$DIR/out" || fail "info does not show the PID"
# bad input: outside flash -> image error (3), nothing written
pf flash "$DIR/fw.bin@0x0801F000"
[ $? -eq 3 ] || fail "image outside flash: exit code is not 3"
# wrong --chip -> target error (5) naming both
pf flash --chip STM32F103xB "$DIR/fw.bin@0x08000000"
[ $? -eq 5 ] || fail "wrong --chip: exit code is not 5"
grep -q "0x460" "$DIR/out" || fail "wrong --chip: message does not name the PID"
echo "ok: flash, skip unchanged, read, info, outside flash, wrong chip"

# read-protected chip: refused with the flag that unprotects and its cost
start_sim F103xB --rdp
pf flash "$DIR/fw.bin@0x08000000"
rc=$?
[ $rc -eq 5 ] || fail "protected chip: exit code $rc, not 5"
grep -q "unprotect-read" "$DIR/out" || fail "protected chip: message does not name --unprotect-read"
grep -qi "erase" "$DIR/out" || fail "protected chip: message does not say that unprotecting erases"
# F1: read-back verify through the CLI
start_sim F103xB
pf flash "$DIR/fw.bin@0x08000400" || fail "flash F103 with read-back verify"
python3 -c "
import sys; d=open('$DIR/flash.bin','rb').read(); f=open('$DIR/fw.bin','rb').read()
sys.exit(0 if d[0x400:0x400+12000]==f and d[:0x400]==b'\xff'*0x400 else 1)" || fail "F103 flash content"
grep -q overrun "$DIR/sim.log" && fail "the simulator logged an overrun"
echo "ok: protected chip refused with the fix named; F103 flash + read-back verify"
