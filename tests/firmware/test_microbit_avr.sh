#!/usr/bin/env bash
# End to end on a 16 KiB Cortex-M0 (issue 15): the updater firmware on QEMU's
# microbit (nRF51822) flashes the REAL Optiboot on simavr's ATmega328P:
#   updater-microbit.elf in qemu-system-arm -M microbit, UART0 on a TCP socket
#     -> peerflash wire (tcp-listen, 115200 baud 8N1 line timing)
#     -> peerflash sim avr (the ATmega resets when the wire opens its pty,
#        which the wire does when QEMU connects: an Uno's DTR auto-reset)
# QEMU connects at start-up, before the guest runs, so no UART byte is lost
# (a -serial pty drops what the guest sends before the host opens it).
# The image is the AVR test application (tests/avr/app/app.c, a fresh seed
# each run, 2 KiB of seeded constant data) as Intel HEX, read through
# semihosting. The application is larger than the updater's whole RAM less
# its stack (10 KiB of code and data, 16 KiB of RAM): the updater holds no
# image, it reads the HEX file again as the job needs it (PF_UPDATER_ARENA=0,
# firmware/updater/updater.c), forward for the writes and once more from the
# start for the read-back verify. Checked: exit 0 with the image verified,
# the new application runs and prints the CRC of its own flash, the
# simulator's flash dump holds the image byte for byte.
source "$(dirname "$0")/lib.sh"
PF_FW_ELF=${PF_FW_MICROBIT_ELF:-}
PF_FW_MACHINE=microbit
need_qemu
"$PF_QEMU" -machine help | grep -q '^microbit ' || skip "this qemu-system-arm has no microbit machine"
command -v avr-gcc >/dev/null || skip "avr-gcc not installed (scripts/deps of the avr component)"
cd "$tmp" || exit 1

seed=${PF_SEED:-$((RANDOM % 1000 + 1))}
echo "seed $seed (PF_SEED=$seed replays)"
build_app() { # build_app PAD_KB NAME
    avr-gcc -mmcu=atmega328p -DF_CPU=16000000UL -Os -DAPP_SEED="$seed" -DAPP_PAD_KB="$1" \
        "$PF_SRC/tests/avr/app/app.c" -o "$2.elf" &&
        avr-objcopy -O ihex -j .text -j .data "$2.elf" "$2.hex" &&
        avr-objcopy -O binary -j .text -j .data "$2.elf" "$2.bin"
}
build_app 8 app || { echo "FAIL: could not build the AVR app"; exit 1; }
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

"$PEERFLASH" sim avr --port "$tmp/avr" --uart-log "$tmp/uart.log" --flash-dump "$tmp/flash.bin" -v 2>"$tmp/sim.log" &
sim_pid=$!
pids+=($sim_pid)
wait_for "$tmp/avr" 20 || { echo "FAIL: sim avr made no pty"; cat "$tmp/sim.log"; exit 1; }

start_wire_tcp "$tmp/avr" --baud 115200 --verbose --stats "$tmp/wire.json" || exit 1

t0=$(date +%s.%N)
qemu_updater "flash --target avr --image $tmp/app.hex" -chardev "socket,id=link,host=127.0.0.1,port=$port,nodelay=on" -serial chardev:link
t1=$(date +%s.%N)
echo "$out" | grep -vE '^(write|verify): '
check "microbit updater wrote and verified through Optiboot" 0 "updater: ok"
check "verified" 0 "verified \((read-back|digest)"
check "stack high-water mark reported" 0 "^stack: [0-9]+ of [0-9]+ bytes used"
echo "updater run $(python3 -c "print(f'{$t1 - $t0:.2f}')") s"

# The new application runs and reports the CRC of its own flash (read as
# the simulator appends it, with a deadline).
exec 4< <(exec tail -n +1 -F "$tmp/uart.log" 2>/dev/null)
pids+=($!)
got=$(timeout 20 grep -m1 -aoE "PFAPP seed=$seed len=[0-9]+ crc=[0-9a-fA-F]{4}" <&4)
if [[ ${got,,} == *"crc=$want_crc" ]]; then
    echo "ok: the new application runs: $got"
    passed=$((passed + 1))
else
    echo "FAIL: application output '${got:-none}', expected crc=$want_crc"
    tail -n 20 "$tmp/sim.log"
    failed=$((failed + 1))
fi

# The target's flash, dumped by the simulator at SIGTERM, holds the image.
kill -TERM "$sim_pid"
wait "$sim_pid"
if cmp -s <(head -c "$(stat -c %s app.bin)" "$tmp/flash.bin") app.bin; then
    echo "ok: the ATmega328P's flash holds the image ($(stat -c %s app.bin) bytes at 0)"
    passed=$((passed + 1))
else
    echo "FAIL: the ATmega328P's flash differs from the image (dump: $(stat -c %s "$tmp/flash.bin" 2>/dev/null || echo none))"
    failed=$((failed + 1))
fi
finish
