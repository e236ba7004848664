#!/bin/bash
# Through the link emulator: `peerflash sim stm32` <- `peerflash wire --baud
# 115200 --frame 8E1` -> peerflash flash (our driver) and stm32flash -b 0.
# Then faults injected by the wire (bit flips, a cut): clean errors, and a
# re-run through a clean wire completes.
set -u
PF=${1:?usage: $0 path/to/peerflash}
DIR=$(mktemp -d /tmp/pf-stm32-wire-XXXXXX)
SIM_PID= WIRE_PID=
stop_wire() { [ -n "$WIRE_PID" ] && kill "$WIRE_PID" 2>/dev/null && wait "$WIRE_PID" 2>/dev/null; WIRE_PID=; }
cleanup() {
    stop_wire
    [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null
    rm -rf "$DIR"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in out sim.log wire.log; do [ -f "$DIR/$f" ] && { echo "--- $f"; tail -5 "$DIR/$f"; }; done; exit 1; }
wait_for() { for _ in $(seq 200); do [ -e "$1" ] && return 0; sleep 0.05; done; fail "$1 did not appear"; }
start_sim() {
    [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null
    rm -f "$DIR/sim" "$DIR/flash.bin"
    "$PF" sim stm32 --port "$DIR/sim" --flash "$DIR/flash.bin" --program-us-per-256 1000 --erase-ms-per-page 2 \
        --chip "$@" 2>"$DIR/sim.log" &
    SIM_PID=$!
    wait_for "$DIR/sim"
}
start_wire() { # extra wire options
    stop_wire
    "$PF" wire --a "pty:$DIR/host" --b "$DIR/sim" --baud 115200 --frame 8E1 --no-open-propagation "$@" \
        2>"$DIR/wire.log" &
    WIRE_PID=$!
    for _ in $(seq 200); do grep -q "ready" "$DIR/wire.log" 2>/dev/null && return 0; sleep 0.05; done
    fail "wire not ready"
}
pf() { timeout 100 "$PF" "$@" --target stm32 --port "$DIR/host" --baud 115200 >"$DIR/out" 2>&1; }
same() { # offset length
    python3 -c "
import sys; d=open('$DIR/flash.bin','rb').read(); f=open('$DIR/fw.bin','rb').read()
sys.exit(0 if d[$1:$1+$2]==f[:$2] else 1)"
}

head -c 16384 /dev/urandom >"$DIR/fw.bin"
for CHIP in G07xxB F103xB; do
    start_sim "$CHIP"
    start_wire
    pf flash "$DIR/fw.bin@0x08000000" || fail "$CHIP: peerflash flash through wire"
    same 0 16384 || fail "$CHIP: flash content after peerflash flash through wire"
    grep -q overrun "$DIR/sim.log" && fail "$CHIP: overrun in the simulator with our driver"
    # stm32flash -b 0 skips port setup and so reads with the pty's VTIME, which
    # our port (like any raw-mode opener) left at 0: give it the 0.5 s it sets on
    # a real port.
    stty -F "$DIR/host" min 0 time 5
    timeout 100 stm32flash -b 0 -w "$DIR/fw.bin" -v -S 0x08008000 "$DIR/host" >"$DIR/out" 2>&1 ||
        timeout 100 stm32flash -b 0 -w "$DIR/fw.bin" -v -S 0x08008000 "$DIR/host" >"$DIR/out" 2>&1 ||
        fail "$CHIP: stm32flash through wire"
    same 0x8000 16384 || fail "$CHIP: flash content after stm32flash through wire"
    echo "ok: $CHIP through wire 115200 8E1: peerflash flash, stm32flash -w -v"
done

# The documented example under the wire's defaults (open propagation on):
# stm32flash's open of the host side closes and reopens the simulator's side
# for a moment; its first 0x7F, sent meanwhile, used to be discarded and
# stm32flash gave up. It must wait for the reopen, be counted, and work.
start_sim G07xxB
stop_wire
"$PF" wire --a "$DIR/host" --b "$DIR/sim" --baud 115200 --frame 8E1 --stats "$DIR/wire.json" 2>"$DIR/wire.log" &
WIRE_PID=$!
for _ in $(seq 200); do grep -q "ready" "$DIR/wire.log" 2>/dev/null && break; sleep 0.05; done
timeout 100 stm32flash -b 0 -w "$DIR/fw.bin" "$DIR/host" >"$DIR/out" 2>&1 || fail "stm32flash under wire defaults"
same 0 16384 || fail "flash content after stm32flash under wire defaults"
kill -INT "$WIRE_PID"; wait "$WIRE_PID"; WIRE_PID=
python3 - "$DIR/wire.json" <<'PY' || fail "wire statistics of the example: $(tr -d '\n' <"$DIR/wire.json")"
import json, sys
s = json.load(open(sys.argv[1]))
a2b = s["a2b"]
# the open was propagated, nothing sent was thrown away, and what waited is said
assert s["reopens"]["b"] >= 1, "no open propagated"
assert a2b["discarded_closed"] == 0, "bytes discarded"
assert a2b["held_reopening"] >= 1, "the held 0x7F is not counted"
assert a2b["bytes_out"] == a2b["bytes_in"], "bytes lost"
PY
echo "ok: stm32flash -b 0 -w through wire defaults (first 0x7F held while the simulator's side reopened)"

# bit flips on the wire (seeded): a clean outcome either way, then a clean re-run completes
start_sim G07xxB
for SEED in 1 2 3; do
    start_wire --flip 0.00005 --seed $SEED
    pf flash --no-skip "$DIR/fw.bin@0x08000000"
    rc=$?
    [ $rc -eq 0 ] || [ -s "$DIR/out" ] || fail "flips seed $SEED: failed without a message"
    [ $rc -eq 0 ] && ! same 0 16384 && fail "flips seed $SEED: success reported but flash differs"
    echo "flips seed $SEED: exit $rc $( [ $rc -ne 0 ] && tail -1 "$DIR/out")"
    start_wire
    pf flash "$DIR/fw.bin@0x08000000" || fail "clean re-run after flips seed $SEED"
    same 0 16384 || fail "flash content after the re-run (seed $SEED)"
done
# a cut in the middle of the transfer: link error (exit 4), then a re-run completes
head -c 16384 /dev/urandom >"$DIR/fw.bin"
start_wire --cut-after 6000
pf flash "$DIR/fw.bin@0x08000000"
rc=$?
[ $rc -eq 4 ] || fail "cut: exit code $rc, not 4 (link)"
echo "cut: exit $rc: $(tail -1 "$DIR/out")"
start_wire
pf flash "$DIR/fw.bin@0x08000000" || fail "re-run after the cut"
same 0 16384 || fail "flash content after the re-run (cut)"
echo "ok: flips and a cut on the wire: clean errors, re-runs complete"
