#!/usr/bin/env bash
# End to end, seed scenario "an ESP32 flashing an ESP32 from SD":
#   updater firmware in qemu-system-arm (mps2-an385, UART0)
#     -> peerflash wire --baud follow: UART0 wired straight to the ESP's UART
#     -> peerflash sim esp32: the ESP32 ROM serial loader
# QEMU's CMSDK UART model passes the rate its BAUDDIV gives to the pty through
# its serial chardev (termios), so the wire follows both sides: the driver's
# rate ladder climbs to 921600 with no byte sent out of step. (A fixed
# --baud 115200 wire is a link pinned at 115200, which strands the ROM at
# 921600: tests/esp/run_wire.sh.)
# The image (a seeded 48 KiB binary, half text, half random) is read by the
# firmware through semihosting, written with the ROM's compressed commands
# (deflate on the Cortex-M3, zlib from Debian's source) and verified with
# the ROM's SPI_FLASH_MD5 against MD5 computed on the MCU (mbedTLS). The
# bytes the wire carried to the ROM must be fewer than the image (a plain
# write carries the image plus framing), and the simulator's flash file must
# hold the image at its address. --no-run: leaving the ROM is not part of
# this scenario.
source "$(dirname "$0")/lib.sh"
need_qemu
"$PEERFLASH" sim --help 2>/dev/null | grep -qE '^ +esp32 ' || skip "peerflash sim esp32 is not built in yet"
"$PEERFLASH" wire --help >/dev/null 2>&1 || skip "peerflash wire is not built in yet"
cd "$tmp" || exit 1

seed=${PF_SEED:-$((RANDOM % 1000 + 1))}
echo "seed $seed (PF_SEED=$seed replays)"
python3 - "$seed" app.bin <<'PY'
import random, sys
rng = random.Random(int(sys.argv[1]))
text = b"".join(b"peerflash esp32 test line %06d seed %d\n" % (i, int(sys.argv[1])) for i in range(600))
noise = bytes(rng.randrange(256) for _ in range(16 * 1024))
img = (text + noise)[: 48 * 1024]
img += bytes(rng.randrange(256) for _ in range(48 * 1024 - len(img)))
open(sys.argv[2], "wb").write(img)
PY
addr=0x10000

t0=$(date +%s.%N)
"$PEERFLASH" sim esp32 --port "$tmp/esp" --flash "$tmp/flash.bin" 2>"$tmp/sim.log" &
sim_pid=$!
pids+=($sim_pid)
wait_for "$tmp/esp" 20 || { echo "FAIL: sim esp32 made no pty"; cat "$tmp/sim.log"; exit 1; }
# The ROM loader needs no reset on open (it is already waiting): no open propagation.
"$PEERFLASH" wire --a "pty:$tmp/mcu" --b "$tmp/esp" --baud follow --no-open-propagation --stats "$tmp/wire.json" 2>"$tmp/wire.log" &
wire_pid=$!
pids+=($wire_pid)
wait_for "$tmp/mcu" 20 || { echo "FAIL: wire made no pty"; cat "$tmp/wire.log"; exit 1; }

qemu_updater "flash --target esp --image $tmp/app.bin@$addr --no-run -v" -chardev "serial,id=link,path=$tmp/mcu" -serial chardev:link
t1=$(date +%s.%N)
grep -vE '^  ' <<<"$out"
check "updater in QEMU wrote and verified the ESP32" 0 "updater: ok"
check "verified by the ROM's MD5" 0 "verified \(digest MD5\)"
kill -TERM "$wire_pid" 2>/dev/null
wait "$wire_pid" 2>/dev/null
carried=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["a2b"]["bytes_out"])' "$tmp/wire.json" 2>/dev/null)
size=$(stat -c %s app.bin)
if python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
a, b = s["a2b"], s["b2a"]
print("   wire:", {k: (a[k], b[k]) for k in ("rate_mismatch", "framing_errors", "line_Bps")})
sys.exit(0 if a["rate_mismatch"] == 0 and b["rate_mismatch"] == 0 and a["line_Bps"] == 92160 else 1)' "$tmp/wire.json"; then
    echo "ok: the ladder reached 921600 on both UARTs, no byte out of step"
    passed=$((passed + 1))
else
    echo "FAIL: the wire saw bytes out of step or another final rate than 921600"
    failed=$((failed + 1))
fi
if [[ -n $carried && $carried -lt $size ]]; then
    echo "ok: compressed write: the wire carried $carried bytes to the ROM for a $size-byte image"
    passed=$((passed + 1))
else
    echo "FAIL: the wire carried ${carried:-?} bytes to the ROM for a $size-byte image (not compressed?)"
    failed=$((failed + 1))
fi
kill -TERM "$sim_pid" 2>/dev/null
wait "$sim_pid" 2>/dev/null
if cmp -s <(tail -c +$((addr + 1)) "$tmp/flash.bin" | head -c "$(stat -c %s app.bin)") app.bin; then
    echo "ok: the simulator's flash holds the image at $addr"
    passed=$((passed + 1))
else
    echo "FAIL: the simulator's flash differs from the image at $addr"
    failed=$((failed + 1))
fi
echo "wall time $(python3 -c "print(f'{$t1 - $t0:.2f}')") s (simulator start to updater exit)"
finish
