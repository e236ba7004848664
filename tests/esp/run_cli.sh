#!/usr/bin/env bash
# `peerflash flash/read --target esp` against `peerflash sim esp32` on a pty:
# three images at 0x1000/0x8000/0x10000 compressed and MD5-verified, read back,
# and the errors users meet: wrong chip, damaged image, past the flash end,
# no sync. usage: run_cli.sh PEERFLASH TEST_ESP_IMAGE WORK_DIR
set -u
cli=$1 imgtool=$2 work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }
trap cleanup EXIT
fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails + 1)); fi; }

start_sim() { # name chip size [sim options]
    "$cli" sim esp32 --port "$PWD/$1" --chip "$2" --flash "$1.flash" --flash-size "$3" \
        --erase-ms-per-4k 0 --write-us-per-kb 0 "${@:4}" >"$1.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do [ -e "$1" ] && return 0; sleep 0.05; done
    echo "FAIL: simulator $1 did not start"; cat "$1.log"; exit 1
}

"$imgtool" --write . || exit 1
python3 - <<'PY'
import random
r = random.Random(11)
open("boot.bin", "wb").write(bytes(r.getrandbits(8) for _ in range(0x5100)))
open("part.bin", "wb").write(bytes([0xAA, 0x50] + [r.getrandbits(8) for _ in range(0xBFE)]))
d = bytearray(open("ours-esp32.bin", "rb").read())
d[40] ^= 0x04                                      # one bit inside a segment
open("damaged.bin", "wb").write(d)
PY

start_sim dev1 esp32 4MB
timeout 60 "$cli" flash --target esp --port "$PWD/dev1" --baud 921600 --no-run --json \
    boot.bin@0x1000 part.bin@0x8000 ours-esp32.bin@0x10000 >flash.json 2>flash.err
rc=$?
check "flash three images exits 0 (got $rc)" "[ $rc -eq 0 ]"
check "verified by MD5" "grep -q '\"verified\":true,\"verify_method\":\"digest MD5\"' flash.json"
check "flash file holds the images" "python3 -c '
f = open(\"dev1.flash\", \"rb\").read()
ok = f[0x1000:0x6100] == open(\"boot.bin\", \"rb\").read() and f[0x8000:0x8C00] == open(\"part.bin\", \"rb\").read()
a = open(\"ours-esp32.bin\", \"rb\").read(); ok = ok and f[0x10000:0x10000 + len(a)] == a and f[0x6100:0x7000] == bytes([255]) * 0xF00
raise SystemExit(0 if ok else 1)'"
timeout 60 "$cli" read --target esp --port "$PWD/dev1" -q 0x8000 0xC00 back.bin 2>read.err
check "read back 3 KiB byte-exact" "cmp -s back.bin part.bin"
timeout 60 "$cli" flash --target esp --port "$PWD/dev1" --no-run ours-esp32s3.bin@0x10000 2>chip.err
rc=$?
check "ESP32-S3 image on an ESP32 refused with exit 5 (got $rc)" "[ $rc -eq 5 ]"
check "  naming both chips" "grep -q 'built for ESP32-S3, but the target is an ESP32' chip.err"
timeout 60 "$cli" flash --target esp --port "$PWD/dev1" --no-run damaged.bin@0x10000 2>damaged.err
rc=$?
check "damaged image refused with exit 3 (got $rc)" "[ $rc -eq 3 ]"
check "  naming the checksum" "grep -q 'checksum' damaged.err"
timeout 60 "$cli" flash --target esp --port "$PWD/dev1" --chip esp32c3 --no-run part.bin@0x8000 2>wrongchip.err
rc=$?
check "--chip esp32c3 on an ESP32 refused with exit 5 (got $rc)" "[ $rc -eq 5 ]"
# and the run: the ROM leaves the loader for the application
timeout 60 "$cli" flash --target esp --port "$PWD/dev1" part.bin@0x8000 2>run.err
rc=$?
check "flash with run exits 0 (got $rc)" "[ $rc -eq 0 ]"
check "  the simulated chip started the application" "grep -q 'application runs now' dev1.log"
# opening the port again resets the chip into its loader (the DTR/RTS reset on a board)
timeout 60 "$cli" flash --target esp --port "$PWD/dev1" --no-run part.bin@0x8000 2>again.err
rc=$?
check "after the run, a new session resets the chip into the loader: exit 0 (got $rc)" "[ $rc -eq 0 ]"
check "  the simulator saw the reset" "grep -q 'reset into the ROM loader' dev1.log"
# info: the MAC from the eFuse words and the SPI flash id; erase through FLASH_BEGIN
timeout 60 "$cli" info --target esp --port "$PWD/dev1" >info.out 2>info.err
rc=$?
check "info exits 0 (got $rc)" "[ $rc -eq 0 ]"
check "  shows the chip's MAC" "grep -q '^MAC: *30:ae:a4:21:15:98$' info.out"
check "  shows the SPI flash id and size" "grep -q '^flash id: *0x1640ef (manufacturer 0xef, device 0x4016, 4096 KiB)$' info.out"
check "  shows the line rate the ladder chose (no --baud: the top rung)" "grep -q '^line rate: *921600 baud$' info.out"
timeout 60 "$cli" info --target esp --port "$PWD/dev1" --json >info.json 2>/dev/null
check "  info --json has it in details" "grep -q '\"line_rate\":\"921600 baud\"' info.json"
timeout 60 "$cli" erase --target esp --port "$PWD/dev1" 0x8000 0x1000 >erase.out 2>erase.err
rc=$?
check "erase of one sector exits 0 (got $rc)" "[ $rc -eq 0 ]"
check "  the sector is erased, its neighbours are not" "python3 -c '
f = open(\"dev1.flash\", \"rb\").read()
ok = f[0x8000:0x9000] == bytes([255]) * 0x1000 and f[0x1000:0x6100] == open(\"boot.bin\", \"rb\").read()
a = open(\"ours-esp32.bin\", \"rb\").read(); ok = ok and f[0x10000:0x10000 + len(a)] == a
raise SystemExit(0 if ok else 1)'"
timeout 120 "$cli" erase --target esp --port "$PWD/dev1" --all >eraseall.out 2>eraseall.err
rc=$?
check "erase --all exits 0 (got $rc)" "[ $rc -eq 0 ]"
check "  the whole flash is erased" "python3 -c 'raise SystemExit(0 if open(\"dev1.flash\",\"rb\").read() == bytes([255]) * (4 << 20) else 1)'"
# without that reset (a board with no auto-reset circuit), a running application gives no answer
start_sim dev3 esp32 4MB --no-reset-on-open
timeout 60 "$cli" flash --target esp --port "$PWD/dev3" part.bin@0x8000 2>run3.err
rc=$?
check "flash with run on a chip without auto-reset exits 0 (got $rc)" "[ $rc -eq 0 ]"
timeout 60 "$cli" flash --target esp --port "$PWD/dev3" part.bin@0x8000 2>nosync.err
rc=$?
check "no answer (chip runs its app) gives exit 4 (got $rc)" "[ $rc -eq 4 ]"
check "  with the BOOT/GPIO0 hint" "grep -q 'hold BOOT (GPIO0)' nosync.err"

# --no-compress: plain FLASH_* blocks instead of FLASH_DEFL_*, same content in flash
start_sim dev4 esp32 4MB -v
timeout 60 "$cli" flash --target esp --port "$PWD/dev4" --no-run --no-compress part.bin@0x8000 2>plain.err
rc=$?
check "--no-compress flash exits 0 (got $rc)" "[ $rc -eq 0 ]"
check "  the ROM saw FLASH_BEGIN, not FLASH_DEFL_BEGIN" "grep -q 'FLASH_BEGIN' dev4.log && ! grep -q 'FLASH_DEFL_BEGIN' dev4.log"
check "  flash holds part.bin" "python3 -c 'f=open(\"dev4.flash\",\"rb\").read(); p=open(\"part.bin\",\"rb\").read(); raise SystemExit(0 if f[0x8000:0x8000+len(p)] == p else 1)'"
timeout 60 "$cli" flash --target esp --port "$PWD/dev4" --no-run --no-skip part.bin@0x8000 2>defl.err
check "  without it the ROM saw FLASH_DEFL_BEGIN" "grep -q 'FLASH_DEFL_BEGIN' dev4.log"
# --compress: the driver's option; a bad value is a usage error naming the choices; best
# (when built with zopfli) lands the image
timeout 60 "$cli" flash --target esp --port "$PWD/dev4" --no-run --compress smallest part.bin@0x8000 2>cbad.err
rc=$?
check "--compress smallest exits 2 (got $rc)" "[ $rc -eq 2 ]"
check "  naming fast, best or auto" "grep -q 'takes fast|best|auto, not .smallest' cbad.err"
check "--help lists --compress" "\"$cli\" flash --help | grep -q -- '--compress fast|best|auto'"
timeout 60 "$cli" flash --target esp --port "$PWD/dev4" --no-run --no-skip --compress best boot.bin@0x10000 2>cbest.err
rc=$?
if grep -q 'built without it' cbest.err; then
    check "--compress best without zopfli exits 2 (got $rc)" "[ $rc -eq 2 ]"
else
    check "--compress best flash exits 0 (got $rc)" "[ $rc -eq 0 ]"
    check "  flash holds boot.bin" "python3 -c 'f=open(\"dev4.flash\",\"rb\").read(); p=open(\"boot.bin\",\"rb\").read(); raise SystemExit(0 if f[0x10000:0x10000+len(p)] == p else 1)'"
fi

start_sim dev2 esp32 1MB
timeout 60 "$cli" flash --target esp --port "$PWD/dev2" --no-run boot.bin@0xFC000 2>range.err
rc=$?
check "image past the 1 MiB flash refused with exit 3 (got $rc)" "[ $rc -eq 3 ]"
check "  flash untouched" "python3 -c 'raise SystemExit(0 if open(\"dev2.flash\",\"rb\").read() == bytes([255]) * (1 << 20) else 1)'"
for f in flash.err chip.err damaged.err wrongchip.err nosync.err range.err; do echo "--- $f"; grep -v '^\(check\|write\|verify\|run\):' "$f" | tail -3; done
[ $fails -eq 0 ] && echo "PASS" || { echo "$fails check(s) failed"; exit 1; }
