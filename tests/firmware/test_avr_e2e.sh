#!/usr/bin/env bash
# End to end, seed scenario "an MCU flashing an ATmega328P over RX/TX":
#   updater firmware in qemu-system-arm (mps2-an385, UART0)
#     -> peerflash wire at 115200 baud 8N1 (a real line rate)
#     -> peerflash sim avr: the real Optiboot on simavr's ATmega328P
# The image is the AVR test application (tests/avr/app/app.c, a fresh seed
# each run) as Intel HEX, read by the firmware through semihosting. The
# firmware must exit 0 (written and verified), and the new application must
# then run: it prints a CRC-16 over its own flash, which must equal the CRC
# of the image this test built.
source "$(dirname "$0")/lib.sh"
need_qemu
"$PEERFLASH" sim --help 2>/dev/null | grep -qE '^ +avr ' || skip "peerflash sim avr is not built in yet"
"$PEERFLASH" wire --help >/dev/null 2>&1 || skip "peerflash wire is not built in yet"
app_src=$PF_SRC/tests/avr/app/app.c
[[ -f $app_src ]] || skip "tests/avr/app/app.c (the AVR test application) is not here yet"
command -v avr-gcc >/dev/null || skip "avr-gcc not installed (scripts/deps of the avr component)"
cd "$tmp" || exit 1

seed=${PF_SEED:-$((RANDOM % 1000 + 1))}
echo "seed $seed (PF_SEED=$seed replays)"
avr-gcc -mmcu=atmega328p -DF_CPU=16000000UL -Os -DAPP_SEED="$seed" -DAPP_PAD_KB=2 "$app_src" -o app.elf &&
    avr-objcopy -O ihex -j .text -j .data app.elf app.hex &&
    avr-objcopy -O binary -j .text -j .data app.elf app.bin || { echo "FAIL: could not build the AVR app"; exit 1; }
want_crc=$(python3 - app.bin <<'PY'
import sys
crc = 0xFFFF
for b in open(sys.argv[1], "rb").read():
    crc ^= b << 8
    for _ in range(8):
        crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
print(f"{crc:04x}")
PY
)
echo "app: $(stat -c %s app.bin) bytes, crc $want_crc"

t0=$(date +%s.%N)
"$PEERFLASH" sim avr --port "$tmp/avr" --uart-log "$tmp/uart.log" 2>"$tmp/sim.log" &
pids+=($!)
wait_for "$tmp/avr" 20 || { echo "FAIL: sim avr made no pty"; cat "$tmp/sim.log"; exit 1; }
"$PEERFLASH" wire --a "pty:$tmp/mcu" --b "$tmp/avr" --baud 115200 --stats "$tmp/wire.json" 2>"$tmp/wire.log" &
pids+=($!)
wait_for "$tmp/mcu" 20 || { echo "FAIL: wire made no pty"; cat "$tmp/wire.log"; exit 1; }

# Opening the wire's pty propagates to the simulator's: the ATmega resets
# into Optiboot as an Uno does when its port is opened. (The mps2 port has no
# reset line: a lost sync cannot be retried from inside the firmware.)
qemu_updater "flash --target avr --image $tmp/app.hex" -chardev "serial,id=link,path=$tmp/mcu" -serial chardev:link
echo "$out" | grep -vE '^(write|verify): '
check "updater in QEMU wrote and verified through Optiboot" 0 "updater: ok"
check "verified" 0 "verified \((read-back|digest)"

# The new application runs and reports the CRC of its own flash.
got=""
for _ in $(seq 200); do
    got=$(grep -aoE "PFAPP seed=$seed len=[0-9]+ crc=[0-9a-fA-F]{4}" "$tmp/uart.log" 2>/dev/null | tail -n 1)
    [[ -n $got ]] && break
    sleep 0.1 # polling the log file with a 20 s deadline
done
t1=$(date +%s.%N)
if [[ ${got,,} == *"crc=$want_crc" ]]; then
    echo "ok: the new application runs: $got"
    passed=$((passed + 1))
else
    echo "FAIL: application output '${got:-none}', expected crc=$want_crc; uart log:"
    cat -v "$tmp/uart.log" 2>/dev/null | tail -n 5
    tail -n 20 "$tmp/sim.log"
    failed=$((failed + 1))
fi
echo "wall time $(python3 -c "print(f'{$t1 - $t0:.2f}')") s (QEMU start to the application's report)"

# A driver option from the job line reaches the driver through the session:
# the same image again with --read-compare rewrites no page (opening the pty
# again resets the ATmega into Optiboot).
qemu_updater "flash --target avr --image $tmp/app.hex --read-compare --no-run" -chardev "serial,id=link,path=$tmp/mcu" -serial chardev:link
check "--read-compare in the updater: every page found in place" 0 "result: written=0 skipped=[1-9][0-9]* "
finish
