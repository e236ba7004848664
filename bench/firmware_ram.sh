#!/usr/bin/env bash
# The microbit updaters' stack high-water marks for `make bench` (issue 15):
# each ELF given runs the jobs named after it in qemu-system-arm -M microbit
# against the simulators, through peerflash wire at 115200 baud, the way
# tests/firmware/test_microbit_*.sh do; the firmware paints its stack at
# reset and prints the high-water mark at exit. One line per job:
#   stack ELF_NAME DRIVER USED RESERVED EXIT
# (USED -1 when the run printed no mark). bench/bench_firmware.c adds the
# static RAM from each ELF's map file and prints the table.
#   bench/firmware_ram.sh BUILD_DIR ELF:driver,driver,... ...
# Needs qemu-system-arm, arm-none-eabi-gcc (objcopy) and the built peerflash.
build=$1
shift
export PF_FW_DIR=$build/firmware PF_QEMU=$(command -v qemu-system-arm) PF_ARM_GCC=$(command -v arm-none-eabi-gcc)
export PEERFLASH=$build/peerflash PF_FW_MACHINE=microbit
PF_FW_ELF=/dev/null
source "$(dirname "$0")/../tests/firmware/lib.sh"
[[ -x $PF_QEMU && -x $PF_ARM_GCC && -x $PEERFLASH ]] || { echo "skip: qemu-system-arm, arm-none-eabi-gcc or peerflash missing"; exit 0; }
cd "$tmp" || exit 1
exec 2>"$tmp/bench.log"

# the images: seeded data, a signed agent image, a real firmware image for esp
python3 -c 'import random; r = random.Random(15); open("avr.bin", "wb").write(bytes(r.randrange(256) for _ in range(8192)))'
python3 -c 'import random; r = random.Random(15); open("stm.bin", "wb").write(bytes(r.randrange(256) for _ in range(12000)))'
python3 -c 'import random; r = random.Random(15); open("agent.bin", "wb").write(bytes(r.randrange(256) for _ in range(20000)))'
"$PEERFLASH" sign --version 1.2.15 agent.bin agent.img >/dev/null || exit 1
"${PF_ARM_GCC%gcc}objcopy" -O binary "$PF_FW_DIR/updater-mps2.elf" esp.bin || exit 1

# job DRIVER: a fresh simulator and wire for it, the updater's job; sets $out, $rc.
job() {
    local d=$1 sim_pid
    rm -rf "$tmp/sim" && mkdir "$tmp/sim"
    case $d in
    avr) "$PEERFLASH" sim avr --port "$tmp/sim/p" --page-write-ms 0 & sim_pid=$!; set -- --baud 115200 ;;
    stm32) "$PEERFLASH" sim stm32 --port "$tmp/sim/p" --flash "$tmp/sim/f" --chip F103xB & sim_pid=$!
        set -- --baud 115200 --frame 8E1 --no-open-propagation ;;
    agent) "$PEERFLASH" sim agent --port "$tmp/sim/p" --flash "$tmp/sim/f" --rx-ring 600 --erase-ms 60 & sim_pid=$!
        set -- --baud 115200 --no-open-propagation ;;
    esp) "$PEERFLASH" sim esp32 --port "$tmp/sim/p" --flash "$tmp/sim/f" & sim_pid=$!
        set -- --baud 115200 --no-open-propagation ;;
    esac
    pids+=($sim_pid)
    wait_for "$tmp/sim/p" 20 || { rc=99; out=""; return; }
    start_wire_tcp "$tmp/sim/p" "$@" || { rc=99; out=""; return; }
    local img
    case $d in
    avr) img="avr.bin@0" ;;
    stm32) img="stm.bin@0x08000000 --no-run" ;;
    agent) img="agent.img@0" ;;
    esp) img="esp.bin@0x10000 --no-run --baud 115200" ;; # QEMU's socket carries no rate: the line stays at 115200
    esac
    qemu_updater "flash --target $d --image $tmp/$img" -chardev "socket,id=link,host=127.0.0.1,port=$port,nodelay=on" \
        -serial chardev:link
    kill "$wire_pid" "$sim_pid" 2>/dev/null
    wait "$wire_pid" "$sim_pid" 2>/dev/null
}

for spec in "$@"; do
    PF_FW_ELF=$PF_FW_DIR/${spec%%:*}.elf
    name=${spec%%:*}
    [[ -f $PF_FW_ELF ]] || { echo "skip: $PF_FW_ELF not built"; continue; }
    IFS=, read -ra drivers <<<"${spec#*:}"
    for d in "${drivers[@]}"; do
        job "$d"
        mark=$(grep -oE '^stack: [0-9]+ of [0-9]+ bytes used' <<<"$out" | tail -1)
        if [[ $mark =~ ^stack:\ ([0-9]+)\ of\ ([0-9]+) ]]; then
            echo "stack $name $d ${BASH_REMATCH[1]} ${BASH_REMATCH[2]} $rc"
        else
            echo "stack $name $d -1 0 $rc"
        fi
    done
done
