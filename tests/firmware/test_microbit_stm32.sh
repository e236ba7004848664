#!/usr/bin/env bash
# End to end on a 16 KiB Cortex-M0 (issue 15): the updater firmware on QEMU's
# microbit (nRF51822) flashes the STM32 system-memory bootloader simulator:
#   updater-microbit.elf in qemu-system-arm -M microbit, UART0 on a TCP socket
#     -> peerflash wire (tcp-listen, 115200 baud 8E1 line timing)
#     -> peerflash sim stm32 --chip F103xB (AN3155; opening its port resets
#        nothing, as on a real board: no open propagation)
# The image is a seeded 12000-byte binary at 0x08000000 (more than the
# updater could hold in RAM: it is read again from the file as the job needs
# it, PF_UPDATER_ARENA=0), read through
# semihosting. Checked: exit 0 with the image verified, and the simulator's
# flash file holds the image byte for byte.
source "$(dirname "$0")/lib.sh"
PF_FW_ELF=${PF_FW_MICROBIT_ELF:-}
PF_FW_MACHINE=microbit
need_qemu
"$PF_QEMU" -machine help | grep -q '^microbit ' || skip "this qemu-system-arm has no microbit machine"
cd "$tmp" || exit 1

seed=${PF_SEED:-$((RANDOM % 1000 + 1))}
echo "seed $seed (PF_SEED=$seed replays)"
python3 -c 'import random, sys; r = random.Random(int(sys.argv[1])); open("app.bin", "wb").write(bytes(r.randrange(256) for _ in range(12000)))' "$seed"

"$PEERFLASH" sim stm32 --port "$tmp/stm" --flash "$tmp/stm.flash" --chip F103xB 2>"$tmp/sim.log" &
sim_pid=$!
pids+=($sim_pid)
wait_for "$tmp/stm" 20 || { echo "FAIL: sim stm32 made no pty"; cat "$tmp/sim.log"; exit 1; }
start_wire_tcp "$tmp/stm" --baud 115200 --frame 8E1 --no-open-propagation || exit 1

qemu_updater "flash --target stm32 --image $tmp/app.bin@0x08000000 --no-run" \
    -chardev "socket,id=link,host=127.0.0.1,port=$port,nodelay=on" -serial chardev:link
echo "$out" | grep -vE '^(erase|write|verify): '
check "microbit updater wrote and verified the STM32" 0 "updater: ok"
check "verified" 0 "verified \((read-back|digest)"
check "stack high-water mark reported" 0 "^stack: [0-9]+ of [0-9]+ bytes used"

kill -TERM "$sim_pid"
wait "$sim_pid"
if cmp -s <(head -c 12000 "$tmp/stm.flash") app.bin; then
    echo "ok: the STM32's flash holds the image (12000 bytes at 0x08000000)"
    passed=$((passed + 1))
else
    echo "FAIL: the STM32's flash differs from the image"
    failed=$((failed + 1))
fi
finish
