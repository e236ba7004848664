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
# the agent's image cache (automatic delta updates, scene 6): kept with the demo's files
export PEERFLASH_CACHE_DIR="$tmp/cache"

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

# --- ESP32: an ESP32 reading an SD card flashing a second ESP32 -------------
scene "2. ESP32 ROM loader: three images, compressed on the fly, 115200 then 921600 baud"
say "The simulated ROM answers byte for byte as the real one; the wire follows each side's baud rate."
mkdir -p "$tmp/esp"
"$build/tests/esp/test_esp_image" --write "$tmp/esp" >/dev/null
python3 - "$tmp/esp" <<'PY'
import random, sys
r = random.Random(7)
d = sys.argv[1]
open(d + "/boot.bin", "wb").write(bytes(r.getrandbits(8) for _ in range(0x4000)))
open(d + "/part.bin", "wb").write(bytes([0xAA, 0x50]) + bytes(0xBFE))
PY
start esp-sim "$pf" sim esp32 --port "$tmp/esp-dev" --flash "$tmp/esp-flash.bin" --chip esp32 \
    --erase-ms-per-4k 10 --write-us-per-kb 2000
wait_path "$tmp/esp-dev"
start esp-wire "$pf" wire --a "$tmp/esp-host" --b "$tmp/esp-dev" --baud follow
wait_path "$tmp/esp-host"
show "$pf" flash --target esp --port "$tmp/esp-host" --baud 921600 \
    "$tmp/esp/boot.bin@0x1000" "$tmp/esp/part.bin@0x8000" "$tmp/esp/ours-esp32.bin@0x10000"
say "Flashing the same images again: the ROM's MD5 shows nothing changed, so nothing is written."
show "$pf" flash --target esp --port "$tmp/esp-host" --baud 921600 \
    "$tmp/esp/boot.bin@0x1000" "$tmp/esp/part.bin@0x8000" "$tmp/esp/ours-esp32.bin@0x10000"
say "An image built for another chip is refused, naming both (the ESP32-S3 image on this ESP32):"
show "$pf" flash --target esp --port "$tmp/esp-host" "$tmp/esp/ours-esp32s3.bin@0x10000" ||
    say "(exit status $? = target refused; nothing was written)"

# --- STM32: the co-processor next to an ESP32 ---------------------------------
scene "3. STM32G0 system-memory bootloader (AN3155), 115200 baud 8E1"
say "A HEX file made by objcopy; the simulator programs 256 bytes in 7 ms and erases a 2 KiB page in 20 ms."
head -c 24576 /dev/urandom >"$tmp/stm32.bin"
objcopy -I binary -O ihex --change-addresses 0x08000000 "$tmp/stm32.bin" "$tmp/stm32.hex"
start stm32-sim "$pf" sim stm32 --port "$tmp/stm32-dev" --chip G07xxB --flash "$tmp/stm32-flash.bin"
wait_path "$tmp/stm32-dev"
start stm32-wire "$pf" wire --a "$tmp/stm32-host" --b "$tmp/stm32-dev" --baud 115200 --frame 8E1
wait_path "$tmp/stm32-host"
show "$pf" flash --target stm32 --port "$tmp/stm32-host" "$tmp/stm32.hex"
show "$pf" info --target stm32 --port "$tmp/stm32-host"

# --- The updater as MCU firmware: one microcontroller flashing another --------
scene "4. An MCU flashes an ATmega328P: the updater firmware in QEMU (Cortex-M3) -> wire -> Optiboot"
say "The same core, cross-compiled, runs bare-metal on QEMU's mps2-an385 board; it reads the image"
say "from its 'SD card' (semihosting) and talks to the AVR through its UART0 at 115200 baud."
fw="$build/firmware/updater-mps2.elf"
if [[ -f $fw ]] && command -v qemu-system-arm >/dev/null; then
    bash "$root/scripts/avr/build-app.sh" "$root/tests/avr/app/app.c" "$tmp/avr" mcuapp 3 4 >/dev/null
    start mcu-sim "$pf" sim avr --port "$tmp/mcu-avr" --uart-log "$tmp/mcu-uart.log" --page-write-ms 4.5
    wait_path "$tmp/mcu-avr"
    start mcu-wire "$pf" wire --a "$tmp/mcu" --b "$tmp/mcu-avr" --baud 115200
    wait_path "$tmp/mcu"
    show timeout 100 qemu-system-arm -M mps2-an385 -nodefaults -nographic -net none \
        -semihosting-config enable=on,target=native -kernel "$fw" \
        -chardev "serial,id=link,path=$tmp/mcu" -serial chardev:link \
        -append "flash --target avr --image $tmp/avr/mcuapp.hex" 2>&1 | grep -vE '^(write|verify): |has no peer'
    if wait_line "$tmp/mcu-uart.log" "PFAPP seed=3" 10; then
        say "The ATmega328P runs what the MCU wrote; it says:"
        grep -E "PFAPP seed=3" "$tmp/mcu-uart.log" | tail -n 1
    fi
else
    say "(skipped: build/firmware/updater-mps2.elf or qemu-system-arm is missing; make firmware builds it)"
fi

# --- peerflash's own agent and bootloader ----------------------------------------
scene "5. Our own update agent: a signed image, a cable cut at half way, resume, trial boot, confirm"
say "The device (simulated NOR flash, SPI-NOR timing) checks the ECDSA-P256 signature, installs the"
say "image on trial and rolls back unless it is confirmed; an interrupted transfer resumes."
"$pf" keygen -o "$tmp/key.pem" --pub "$tmp/key.der" >/dev/null 2>&1
head -c 60000 /dev/urandom >"$tmp/agent-app.bin"
show "$pf" sign --key "$tmp/key.pem" --version 1.1.0 "$tmp/agent-app.bin" "$tmp/agent-app.img"
start agent-sim "$pf" sim agent --port "$tmp/agent-dev" --flash "$tmp/agent.flash" --key "$tmp/key.pem"
wait_path "$tmp/agent-dev"
start agent-wire1 "$pf" wire --a "$tmp/agent-host" --b "$tmp/agent-dev" --baud 115200 --cut-after 30000 --cut-mode close
wait_path "$tmp/agent-host"
say "The wire cuts the cable after 30000 bytes:"
show "$pf" flash --target agent --port "$tmp/agent-host" "$tmp/agent-app.img@0" || say "(exit status $?: link lost)"
for _ in $(seq 100); do [[ -e "$tmp/agent-host" ]] || break; sleep 0.05; done
start agent-wire2 "$pf" wire --a "$tmp/agent-host" --b "$tmp/agent-dev" --baud 115200
wire2=${pids[-1]}
wait_path "$tmp/agent-host"
say "A new cable; the same command again:"
show "$pf" flash --target agent --port "$tmp/agent-host" "$tmp/agent-app.img@0"
say "What the device did:"
grep -E "resume at|image accepted|on trial|permanent" "$tmp/agent-sim.log" | sed 's/^/  /'

# --- delta: only what changed goes over the link ------------------------------------
scene "6. Delta update: a full update, then a one-line change sent as a patch (115200 baud)"
say "Two builds of one program (the AVR test app with 24 KiB of constant data, as an agent image);"
say "the second differs by one line of C. The host keeps what it sent in an image cache keyed by"
say "the image hash; when the device reports a running image it has, it sends a patch against it."
kill "$wire2"; wait "$wire2" 2>/dev/null || true
for _ in $(seq 100); do [[ -e "$tmp/agent-host" ]] || break; sleep 0.05; done
bash "$root/scripts/avr/build-app.sh" "$root/tests/avr/app/app.c" "$tmp/delta" app1 5 24 >/dev/null
sed 's/uart_puts(" len=");/uart_puts(" length=");/' "$root/tests/avr/app/app.c" >"$tmp/delta/app2.c"
say "The one-line change:"
diff "$root/tests/avr/app/app.c" "$tmp/delta/app2.c" | sed 's/^/  /' || true
bash "$root/scripts/avr/build-app.sh" "$tmp/delta/app2.c" "$tmp/delta" app2 5 24 >/dev/null
"$pf" sign --key "$tmp/key.pem" --version 2.0.0 "$tmp/delta/app1.bin" "$tmp/delta/app1.img" 2>/dev/null
"$pf" sign --key "$tmp/key.pem" --version 2.0.1 "$tmp/delta/app2.bin" "$tmp/delta/app2.img" 2>/dev/null
# delta_flash N IMG [OPTION]: flash IMG through a fresh wire; $bytes = host-to-device bytes (wire statistics)
delta_flash() {
    local n=$1 img=$2 opt=(${3:-})
    start "agent-wire-d$n" "$pf" wire --a "$tmp/agent-host" --b "$tmp/agent-dev" --baud 115200 --stats "$tmp/wire-d$n.json"
    local wp=${pids[-1]}
    wait_path "$tmp/agent-host"
    show "$pf" flash --target agent --port "$tmp/agent-host" -q "${opt[@]}" "$img@0"
    kill "$wp"; wait "$wp" 2>/dev/null || true
    for _ in $(seq 100); do [[ -e "$tmp/agent-host" ]] || break; sleep 0.05; done
    bytes=$(grep -o '"a2b": {"bytes_in": [0-9]*' "$tmp/wire-d$n.json" | grep -o '[0-9]*$')
}
say "Full update (deflated, no patch; the host caches what it sends):"
delta_flash 1 "$tmp/delta/app1.img" --no-delta
full=$bytes
say "The one-line change, the same command without options: the device runs app1, which is in the cache:"
delta_flash 2 "$tmp/delta/app2.img"
delta=$bytes
printf '%sbytes on the wire, host to device: full update %s, one-line change %s (%s%% of it)%s\n' "$bold" \
    "$full" "$delta" "$(( delta * 100 / full ))" "$off"
say "What the device did:"
grep -E "BEGIN of|on trial" "$tmp/agent-sim.log" | tail -n 4 | sed 's/^/  /'

# --- serve: the network front door ------------------------------------------------------
scene "7. peerflash serve: one daemon, three boards; uploads over HTTP, espota and the IDE's arduinoOTA"
say "The daemon owns an STM32, an ESP32 and an Uno (simulated), listens on 127.0.0.1 only, and answers the"
say "Arduino IDE's network uploads: espota for the ESP32, arduinoOTA (HTTP) for the Uno."
say "Each image arrives whole and parses before a byte is written."
start stm32-serve "$pf" sim stm32 --port "$tmp/serve-stm" --flash "$tmp/serve-stm.flash" --chip G07xxB
start esp32-serve "$pf" sim esp32 --port "$tmp/serve-esp" --chip esp32 --flash "$tmp/serve-esp.flash" --flash-size 4MB
start avr-serve "$pf" sim avr --port "$tmp/serve-avr" --page-write-ms 4.5 --flash-dump "$tmp/serve-avr.flash"
avr_serve_pid=${pids[-1]}
wait_path "$tmp/serve-stm"
wait_path "$tmp/serve-esp"
wait_path "$tmp/serve-avr"
ota_port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
serve_cmd=("$pf" serve --listen 127.0.0.1:0 --no-mdns --target stm32 --port "$tmp/serve-stm" --name bluepill --baud 115200
           --target esp --port "$tmp/serve-esp" --name esp32 --baud 921600 --ota-port "$ota_port"
           --target avr --port "$tmp/serve-avr" --name uno --arduino-ota)
printf '%s$ %s &%s\n' "$bold" "${serve_cmd[*]}" "$off"
"${serve_cmd[@]}" 2>"$tmp/serve.log" &
pids+=($!)
wait_line "$tmp/serve.log" "ready" 10 || { cat "$tmp/serve.log"; exit 1; }
url=$(grep -o 'http://127.0.0.1:[0-9]*' "$tmp/serve.log" | head -n1)
head -c 20000 /dev/urandom >"$tmp/serve-fw.bin"
say "HTTP: the image as the request body; the answer has the fields of 'flash --json':"
printf '%s$ curl --data-binary @fw.bin %s/api/targets/bluepill/flash%s\n' "$bold" "$url" "$off"
curl -s --data-binary @"$tmp/serve-fw.bin" "$url/api/targets/bluepill/flash?filename=fw.bin" |
    /usr/bin/python3 -c 'import json,sys; j=json.load(sys.stdin); print("  ok=%s chip=%s written=%s verified=%s (%s) in %.2f s" % (j["ok"], j["chip"], j["written_bytes"], j["verified"], j["verify_method"], j["seconds"]))'
printf '\0' >"$tmp/serve-app.bin"; head -c 40000 /dev/urandom >>"$tmp/serve-app.bin"
say "espota (what the Arduino IDE sends: invitation over UDP, the daemon connects back, the raw app binary):"
show /usr/bin/python3 "$root/tests/serve/ota_client.py" 127.0.0.1 "$ota_port" "$tmp/serve-app.bin"
say "arduinoOTA (what the IDE runs for an Uno on a network port; the endpoints come from the mDNS record):"
http_port=${url##*:}
ep=/api/targets/uno/arduino
show /usr/bin/python3 "$root/tests/serve/arduinoota_client.py" -address 127.0.0.1 -port "$http_port" \
    -sketch "$tmp/avr/app30k.hex" -upload $ep/upload -sync $ep/sync -reset $ep/reset -sync_exp 200:SYNC |
    grep -vE '^\{|^$' || true
say "The daemon's log, one line per event:"
sed 's/^/  /' "$tmp/serve.log"
cmp -s -n 20000 "$tmp/serve-fw.bin" "$tmp/serve-stm.flash" && say "The STM32's flash holds the HTTP upload."
/usr/bin/python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); i=open(sys.argv[2],"rb").read(); sys.exit(d[0x10000:0x10000+len(i)]!=i)' \
    "$tmp/serve-esp.flash" "$tmp/serve-app.bin" && say "The ESP32's app partition (0x10000) holds the espota upload."
kill -TERM "$avr_serve_pid" && wait "$avr_serve_pid" 2>/dev/null
/usr/bin/python3 - "$tmp/avr/app30k.hex" "$tmp/serve-avr.flash" <<'PY' && say "The Uno's flash holds the arduinoOTA upload."
import sys
d = open(sys.argv[2], "rb").read()
base = 0
for line in open(sys.argv[1]):
    b = bytes.fromhex(line.strip()[1:]) if line.startswith(":") else b""
    if b and b[3] == 0 and d[base + (b[1] << 8 | b[2]):][:b[0]] != b[4:4 + b[0]]:
        sys.exit(1)
PY

# --- A fleet pulls its update: signed manifest on a web server ----------------------
scene "8. Two boards updated from a signed manifest on a web server (nginx); one is already up to date"
say "The manifest lists an image per chip with its version, size and SHA-256, signed with the fleet's"
say "ECDSA-P256 key. update checks the signature before opening any port, picks the image for the chip"
say "each board reports, skips a board that already holds it, and checks the image's hash before writing."
mkdir -p "$tmp/web/www/fw"
"$pf" keygen -o "$tmp/fleet.pem" --pub "$tmp/fleet.pub.der" >/dev/null 2>&1
head -c 16384 /dev/urandom >"$tmp/web/www/fw/g0-app-2.1.0.bin"
cat >"$tmp/web/www/manifest.json" <<EOF
{"manifest": 1, "name": "demo fleet", "images": [
  {"target": "stm32", "chip": "STM32G07xxB", "version": "2.1.0", "size": 16384,
   "sha256": "$(sha256sum "$tmp/web/www/fw/g0-app-2.1.0.bin" | cut -c1-64)", "url": "fw/g0-app-2.1.0.bin",
   "address": "0x08000000"}
]}
EOF
sed 's/^/  /' "$tmp/web/www/manifest.json"
show "$pf" sign --manifest --key "$tmp/fleet.pem" "$tmp/web/www/manifest.json" "$tmp/web/www/manifest.signed.json"
web_port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
bash "$root/scripts/nginx-static.sh" conf "$tmp/web" "$web_port"
start nginx nginx -p "$tmp/web" -c conf/nginx.conf -g 'daemon off;'
for b in a b; do
    start "fleet-sim-$b" "$pf" sim stm32 --port "$tmp/fleet-dev-$b" --chip G07xxB --flash "$tmp/fleet-flash-$b.bin"
    wait_path "$tmp/fleet-dev-$b"
    start "fleet-wire-$b" "$pf" wire --a "$tmp/fleet-$b" --b "$tmp/fleet-dev-$b" --baud 115200 --frame 8E1
    wait_path "$tmp/fleet-$b"
done
"$pf" flash -q --target stm32 --port "$tmp/fleet-b" "$tmp/web/www/fw/g0-app-2.1.0.bin@0x08000000"
say "Board b was updated last week; board a still runs something else."
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$web_port/manifest.json" && break; sleep 0.05; done
show "$pf" update --manifest "http://127.0.0.1:$web_port/manifest.signed.json" --key "$tmp/fleet.pub.der" \
    --target stm32 --port "$tmp/fleet-a" --port "$tmp/fleet-b"
say "Someone changes the version on the server after signing:"
sed 's/2\.1\.0/2.1.1/g' "$tmp/web/www/manifest.signed.json" >"$tmp/web/www/tampered.json"
show "$pf" update --manifest "http://127.0.0.1:$web_port/tampered.json" --key "$tmp/fleet.pub.der" \
    --target stm32 --port "$tmp/fleet-a" || say "(exit status $?: refused before any port was opened)"

echo
echo "${bold}Done.${off} See README.md for the commands, docs/ for the design and benchmarks."
