#!/usr/bin/env bash
# `peerflash flash --target esp` through the link emulator (`peerflash wire`)
# to `peerflash sim esp32`: sync at 115200, switch to 921600 with
# `--baud follow` (the wire must see no byte sent while the two sides' rates
# differ), three images written compressed and MD5-verified; the same with no
# --baud (the rate ladder's top rung) and with --baud 460800 (pinned); through a fixed
# --baud 115200 wire the ladder strands the ROM (exit 4, "pin --baud 115200"), pinned it
# works; then a cable cut
# mid-write and seeded bit flips: each an error or an exact image, never a
# silent success. usage: run_wire.sh PEERFLASH WORK_DIR
set -u
cli=$1 work=$2
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }
trap cleanup EXIT
fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails + 1)); fi; }
wait_path() { for _ in $(seq 200); do [ -e "$1" ] && return 0; sleep 0.05; done; echo "FAIL: $1 never appeared"; exit 1; }

python3 - <<'PY'
import random
r = random.Random(5)
open("boot.bin", "wb").write(bytes(r.getrandbits(8) for _ in range(0x6000)))
open("part.bin", "wb").write(bytes(r.getrandbits(8) for _ in range(0xC00)))
app = bytearray(r.getrandbits(8) for _ in range(60000)) + bytes((i // 97) % 5 for i in range(60000))
open("app.bin", "wb").write(app)
PY

# run NAME WIRE_OPTIONS... : a fresh simulator and wire; sets $host
run_pair() {
    local name=$1; shift
    "$cli" sim esp32 --port "$PWD/$name.dev" --flash "$name.flash" --erase-ms-per-4k 1 --write-us-per-kb 100 \
        >"$name.sim.log" 2>&1 &
    pids+=($!)
    wait_path "$PWD/$name.dev"
    "$cli" wire --a "pty:$PWD/$name.host" --b "$PWD/$name.dev" --stats "$name.stats.json" "$@" >"$name.wire.log" 2>&1 &
    pids+=($!)
    wire_pid=$!
    wait_path "$PWD/$name.host"
    host="$PWD/$name.host"
}
flash_ok() { # NAME: the flash file holds the three images
    python3 - "$1" <<'PY'
import sys
f = open(sys.argv[1] + ".flash", "rb").read()
ok = all(f[a:a + len(d)] == d for a, d in ((0x1000, open("boot.bin", "rb").read()),
         (0x8000, open("part.bin", "rb").read()), (0x10000, open("app.bin", "rb").read())))
sys.exit(0 if ok else 1)
PY
}
stop_wire() { kill -TERM "$wire_pid" 2>/dev/null; wait "$wire_pid" 2>/dev/null; }

run_pair ok --baud follow
t0=$(date +%s.%N)
timeout 90 "$cli" flash --target esp --port "$host" --baud 921600 --no-run boot.bin@0x1000 part.bin@0x8000 app.bin@0x10000 \
    2>ok.err
rc=$?
t1=$(date +%s.%N)
stop_wire
check "flash through wire --baud follow exits 0 (got $rc)" "[ $rc -eq 0 ]"
check "  flash holds the three images" "flash_ok ok"
check "  wire saw the switch to 921600 both ways, no byte at mismatched rates" "python3 -c '
import json; s = json.load(open(\"ok.stats.json\"))
a, b = s[\"a2b\"], s[\"b2a\"]
print(\"   \", {k: (a[k], b[k]) for k in (\"bytes_in\", \"rate_mismatch\", \"framing_errors\", \"line_Bps\")})
raise SystemExit(0 if a[\"line_Bps\"] == 92160 and b[\"line_Bps\"] == 92160 and a[\"rate_mismatch\"] == 0 and b[\"rate_mismatch\"] == 0 else 1)'"
secs=$(python3 -c "print($t1 - $t0)")
check "  took $secs s, less than the bytes need at 115200" "python3 -c '
import json; s = json.load(open(\"ok.stats.json\"))
raise SystemExit(0 if $secs < s[\"a2b\"][\"bytes_in\"] * 10 / 115200 * 0.6 else 1)'"

# fast by default: no --baud climbs to the top rung of the ladder (921600) and says so
run_pair dflt --baud follow
timeout 90 "$cli" flash --target esp --port "$host" --no-run --json boot.bin@0x1000 part.bin@0x8000 app.bin@0x10000 \
    >dflt.json 2>dflt.err
rc=$?
stop_wire
check "default flash (no --baud) through wire --baud follow exits 0 (got $rc)" "[ $rc -eq 0 ]"
check "  verified, and the flash holds the three images" "grep -q '\"verified\":true' dflt.json && flash_ok dflt"
check "  says the rate it chose" "grep -q '^line rate: 921600 baud$' dflt.err"
check "  the wire carried it at 921600 both ways, no byte at mismatched rates" "python3 -c '
import json; s = json.load(open(\"dflt.stats.json\"))
a, b = s[\"a2b\"], s[\"b2a\"]
raise SystemExit(0 if a[\"line_Bps\"] == 92160 and b[\"line_Bps\"] == 92160 and a[\"rate_mismatch\"] == 0 and b[\"rate_mismatch\"] == 0 else 1)'"

# --baud pins the rate: exactly what it says, no ladder
run_pair pin --baud follow
timeout 90 "$cli" flash --target esp --port "$host" --baud 460800 --no-run part.bin@0x8000 2>pin.err
rc=$?
stop_wire
check "--baud 460800 exits 0 (got $rc)" "[ $rc -eq 0 ]"
check "  says the pinned rate" "grep -q '^line rate: 460800 baud (--baud)$' pin.err"
check "  the wire ran at 460800, never at 921600" "python3 -c '
import json; s = json.load(open(\"pin.stats.json\"))
a, b = s[\"a2b\"], s[\"b2a\"]
raise SystemExit(0 if a[\"line_Bps\"] == 46080 and b[\"line_Bps\"] == 46080 and a[\"rate_mismatch\"] == 0 else 1)'"

# A fixed-rate link: `wire --baud 115200` has UARTs of its own pinned at 115200 (ESP-Link, a
# radio link; a pty carries no DTR/RTS reset). The ladder's CHANGE_BAUDRATE to 921600 is answered
# at 115200, then the ROM listens at 921600 and hears only 0x80s and framing errors (a 921600
# UART samples all 8 data bits of a 115200 character before its second bit ends): the way back
# cannot reach it, so the run must end in exit 4 telling the user to pin --baud 115200, never a
# silent success (before the wire modelled this, the pinned link carried 921600 intact).
part_ok() { # NAME: the flash file holds part.bin at 0x8000
    python3 - "$1" <<'PY'
import sys
f = open(sys.argv[1] + ".flash", "rb").read()
d = open("part.bin", "rb").read()
sys.exit(0 if f[0x8000:0x8000 + len(d)] == d else 1)
PY
}
run_pair fixed --baud 115200
timeout 90 "$cli" flash --target esp --port "$host" --no-run -v part.bin@0x8000 2>fixed.err
rc=$?
check "default flash (ladder) through a fixed 115200 wire: link error exit 4 (got $rc)" "[ $rc -eq 4 ]"
check "  tried 921600, fell back, and says to pin --baud 115200" \
    "grep -q 'no answer at 921600 baud: back to 115200' fixed.err && grep -q 'pin the rate with --baud 115200' fixed.err"
check "  nothing written" "! part_ok fixed"
# the advice works: a new run opens the port, which resets the simulator into its ROM at
# 115200 (the reset a user does by hand on such a link); pinned, the ladder never runs
timeout 90 "$cli" flash --target esp --port "$host" --baud 115200 --no-run --json part.bin@0x8000 >fixed2.json 2>fixed2.err
rc=$?
stop_wire
check "  then --baud 115200 through the same wire exits 0 (got $rc), verified, image in flash" \
    "[ $rc -eq 0 ] && grep -q '\"verified\":true' fixed2.json && part_ok fixed"
check "  the wire counted the host's 921600 bytes as out of step and garbled" "python3 -c '
import json; s = json.load(open(\"fixed.stats.json\"))
a, b = s[\"a2b\"], s[\"b2a\"]
print(\"   \", {k: (a[k], b[k]) for k in (\"bytes_in\", \"bytes_out\", \"rate_mismatch\", \"framing_errors\")})
raise SystemExit(0 if a[\"rate_mismatch\"] > 0 and a[\"framing_errors\"] > 0 else 1)'"
# pinned at the line's rate from the start: nothing out of step at all
run_pair fixpin --baud 115200
timeout 90 "$cli" flash --target esp --port "$host" --baud 115200 --no-run part.bin@0x8000 2>fixpin.err
rc=$?
stop_wire
check "--baud 115200 through a fixed 115200 wire exits 0 (got $rc), image in flash" "[ $rc -eq 0 ] && part_ok fixpin"
check "  no byte out of step" "python3 -c '
import json; s = json.load(open(\"fixpin.stats.json\"))
raise SystemExit(0 if s[\"a2b\"][\"rate_mismatch\"] == 0 and s[\"b2a\"][\"rate_mismatch\"] == 0 else 1)'"

run_pair cut --baud follow --cut-after 60000
timeout 90 "$cli" flash --target esp --port "$host" --baud 921600 --no-run boot.bin@0x1000 part.bin@0x8000 app.bin@0x10000 \
    2>cut.err
rc=$?
stop_wire
check "cable cut mid-write: link error exit 4 (got $rc)" "[ $rc -eq 4 ]"
check "  says what happened" "grep -q 'no answer\|link' cut.err"

errors=0
for seed in 1 2 3 4; do
    run_pair "flip$seed" --baud follow --flip 2e-6 --seed $seed
    timeout 90 "$cli" flash --target esp --port "$host" --baud 921600 --no-run boot.bin@0x1000 part.bin@0x8000 \
        app.bin@0x10000 2>"flip$seed.err"
    rc=$?
    stop_wire
    flips=$(python3 -c "import json; s = json.load(open('flip$seed.stats.json')); print(s['a2b']['flipped_bits'] + s['b2a']['flipped_bits'])")
    echo "   seed $seed: $flips bit(s) flipped, exit $rc: $(grep -v '^\(check\|write\|verify\|run\|image\|connecting\|chip\):' "flip$seed.err" | tail -1)"
    if [ $rc -eq 0 ]; then
        check "  seed $seed: success means the exact image" "flash_ok flip$seed"
    else
        errors=$((errors + 1))
        check "  seed $seed: failure exit is a documented cause (4/5/6), with a message" "[ $rc -ge 4 ] && [ $rc -le 6 ] && [ -s flip$seed.err ]"
    fi
done
[ $fails -eq 0 ] && echo "PASS" || { echo "$fails check(s) failed"; exit 1; }
