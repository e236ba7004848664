#!/usr/bin/env bash
# The real esptool-js (npm, pinned by package-lock.json) against our ESP ROM
# simulator over TCP: detects the chip, uploads its stub, switches baud,
# writes compressed and verifies by MD5; then we compare the flash file.
# usage: run_esptool_js.sh PEERFLASH SRC_DIR WORK_DIR CHIP
# Exit 77 (skipped) only when node is missing or npm cannot reach the registry.
set -u
cli=$1 src=$2 work=$3 chip=$4
npm_dir=$(dirname "$work")/npm
. "$src/npm_setup.sh"
mkdir -p "$work" && cd "$work" || exit 1
ln -sf "$npm_dir/node_modules" node_modules
cp "$npm_dir/esptool_js_flash.mjs" .
python3 - <<'PY'
import random
r = random.Random(7); n = 300000
d = bytes(r.getrandbits(8) for _ in range(n // 2)) + bytes(((i // 64) % 7 == 0) and (i & 255) or 0 for i in range(n // 2))
open("img.bin", "wb").write(d)
PY
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
rm -f "flash-$chip.bin" "sim-$chip.log"
"$cli" sim esp32 --chip "$chip" --port "tcp-listen://$port" --flash "flash-$chip.bin" --flash-size 4MB \
    --erase-ms-per-4k 2 --write-us-per-kb 100 >"sim-$chip.log" 2>&1 &
sim=$!
trap 'kill $sim 2>/dev/null; wait $sim 2>/dev/null' EXIT
for _ in $(seq 100); do
    grep -q "ROM loader on" "sim-$chip.log" 2>/dev/null && break
    kill -0 $sim 2>/dev/null || { echo "FAIL: simulator exited:"; cat "sim-$chip.log"; exit 1; }
    sleep 0.05
done
timeout 90 node esptool_js_flash.mjs "$port" img.bin 0x10000 921600 >"node-$chip.log" 2>&1
rc=$?
cat "node-$chip.log" | grep -v "^TRACE" | tail -25
[ $rc -eq 0 ] || { echo "FAIL: esptool-js exited with $rc"; cat "sim-$chip.log" | tail -20; exit 1; }
grep -q '^RESULT .*"stub":true.*"verified":true,"readback":true' "node-$chip.log" || { echo "FAIL: no verified result"; exit 1; }
want=$(python3 -c "import sys; print({'esp32':'ESP32','esp32s3':'ESP32-S3','esp32c3':'ESP32-C3'}['$chip'])")
grep -q "^RESULT {\"chip\":\"$want" "node-$chip.log" || { echo "FAIL: esptool-js did not detect $want"; exit 1; }
python3 - "$chip" <<'PY' || exit 1
import sys
chip = sys.argv[1]
d = open("img.bin", "rb").read(); f = open(f"flash-{chip}.bin", "rb").read()
ok = f[0x10000:0x10000 + len(d)] == d and f[0x10000 + len(d):0x10000 + len(d) + 4096].count(0xFF) == 4096 and f[:0x10000].count(0xFF) == 0x10000
print("flash file matches the image:" , ok)
sys.exit(0 if ok else 1)
PY
echo "PASS: esptool-js detected $want, wrote compressed, verified and read back against the simulator"
