#!/usr/bin/env bash
# End to end on a 16 KiB Cortex-M0 (issue 15): the updater firmware on QEMU's
# microbit (nRF51822) installs a signed MCUboot image through the peerflash
# agent simulator:
#   updater-microbit.elf in qemu-system-arm -M microbit, UART0 on a TCP socket
#     -> peerflash wire (tcp-listen, 115200 baud 8N1 line timing)
#     -> peerflash sim agent (agent + bootloader over simulated NOR flash)
# The image (a seeded 20,000-byte body, `peerflash sign`, version 1.2.SEED) is
# larger than the board's RAM: the updater holds neither the image nor a
# retransmission window. Its agent driver is the Cortex-M0+ stream build
# (PF_AGENT_HOST_STREAM, firmware/CMakeLists.txt): the hash, the MCUboot
# checks and every DATA frame, first sent or sent again, are read from the
# image file through semihosting. The simulated device buffers only 600
# bytes while its flash is busy (--rx-ring) and erases take 60 ms, so frames are lost and sent
# again from the file. Checked: exit 0, verified by the SHA-256 the agent
# computed, go-backs happened, and afterwards the device runs (confirmed)
# the new version, as `peerflash info` reads from it.
source "$(dirname "$0")/lib.sh"
PF_FW_ELF=${PF_FW_MICROBIT_ELF:-}
PF_FW_MACHINE=microbit
need_qemu
"$PF_QEMU" -machine help | grep -q '^microbit ' || skip "this qemu-system-arm has no microbit machine"
cd "$tmp" || exit 1

seed=${PF_SEED:-$((RANDOM % 1000 + 1))}
echo "seed $seed (PF_SEED=$seed replays)"
python3 -c 'import random, sys; r = random.Random(int(sys.argv[1])); open("app.bin", "wb").write(bytes(r.randrange(256) for _ in range(20000)))' "$seed"
"$PEERFLASH" sign --version "1.2.$seed" app.bin app.img >sign.log 2>&1 || { echo "FAIL: sign"; cat sign.log; exit 1; }

"$PEERFLASH" sim agent --port "$tmp/agent" --flash "$tmp/agent.flash" --rx-ring 600 --erase-ms 60 --log "$tmp/agent.log" \
    2>"$tmp/sim.log" &
sim_pid=$!
pids+=($sim_pid)
wait_for "$tmp/agent" 20 || { echo "FAIL: sim agent made no pty"; cat "$tmp/sim.log"; exit 1; }
start_wire_tcp "$tmp/agent" --baud 115200 --no-open-propagation || exit 1

qemu_updater "flash --target agent --image $tmp/app.img@0 -v" \
    -chardev "socket,id=link,host=127.0.0.1,port=$port,nodelay=on" -serial chardev:link
echo "$out" | grep -vE '^(write|verify): '
check "microbit updater installed the image through the agent" 0 "updater: ok"
check "verified by the device's SHA-256" 0 "verified \(digest SHA-256\)"
check "frames lost to the device's small buffer were sent again (read from the file)" 0 \
    "agent: [0-9]+ bytes in [0-9]+ ms: [1-9][0-9]* go-backs"
check "stack high-water mark reported" 0 "^stack: [0-9]+ of [0-9]+ bytes used"

# The device runs the new image, confirmed: asked by the host's peerflash.
kill "$wire_pid"
wait "$wire_pid" 2>/dev/null
info=$(timeout 30 "$PEERFLASH" info --target agent --port "$tmp/agent" 2>&1)
if grep -q "image version: 1.2.$seed" <<<"$info" && grep -q "idle" <<<"$info"; then
    echo "ok: the device runs version 1.2.$seed, confirmed (idle)"
    passed=$((passed + 1))
else
    echo "FAIL: peerflash info after the update:"$'\n'"$info"
    failed=$((failed + 1))
fi
finish
