# Helpers for the firmware tests: skip rules, QEMU runs, process cleanup.
# Environment (set by CMake): PF_FW_ELF PF_FW_MICROBIT_ELF PF_QEMU PF_ARM_GCC PF_FW_DIR PEERFLASH PF_SRC
passed=0
failed=0
pids=()
tmp=$(mktemp -d /tmp/pf-fw-test.XXXXXX)
cleanup() {
    local status=$? p
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null
    done
    for p in "${pids[@]}"; do
        wait "$p" 2>/dev/null
    done
    if [[ $status -ne 0 && $status -ne 77 ]]; then
        echo "logs kept in $tmp"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT

skip() {
    echo "SKIP: $*"
    exit 77
}
need_gcc() {
    [[ -n ${PF_ARM_GCC:-} && -x ${PF_ARM_GCC} ]] ||
        skip "arm-none-eabi-gcc not installed (apt-get install --no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi)"
}
need_qemu() {
    need_gcc
    [[ -n ${PF_QEMU:-} && -x ${PF_QEMU} ]] ||
        skip "qemu-system-arm not installed (apt-get install --no-install-recommends qemu-system-arm)"
    [[ -f $PF_FW_ELF ]] || { echo "FAIL: $PF_FW_ELF was not built"; exit 1; }
}

# qemu_updater JOB [extra qemu args...]: runs the updater firmware ($PF_FW_ELF
# on the QEMU machine $PF_FW_MACHINE, default mps2-an385) with the job as
# -append; output in $out, exit status in $rc. 100 s cap.
qemu_updater() {
    local job=$1
    shift
    out=$(timeout 100 "$PF_QEMU" -M "${PF_FW_MACHINE:-mps2-an385}" -nodefaults -nographic -net none \
        -semihosting-config enable=on,target=native -kernel "$PF_FW_ELF" -append "$job" "$@" 2>&1)
    rc=$?
}

check() { # check NAME WANT_RC PATTERN  (after qemu_updater)
    local name=$1 want=$2 pattern=$3
    if [[ $rc -ne $want ]]; then
        echo "FAIL: $name: exit $rc, expected $want; output:"$'\n'"$out"
        failed=$((failed + 1))
    elif [[ -n $pattern ]] && ! grep -qE -- "$pattern" <<<"$out"; then
        echo "FAIL: $name: output lacks /$pattern/:"$'\n'"$out"
        failed=$((failed + 1))
    else
        echo "ok: $name"
        passed=$((passed + 1))
    fi
}

finish() {
    echo "$passed passed, $failed failed"
    [[ $failed -eq 0 ]]
}

# wait_for PATH SECONDS: until a file/pty path exists.
wait_for() {
    local path=$1 end=$((SECONDS + $2))
    while [[ ! -e $path ]]; do
        if ((SECONDS >= end)); then
            return 1
        fi
        sleep 0.05
    done
}

# start_wire_tcp B_PATH [wire options...]: a `peerflash wire` from a free
# loopback TCP port (side A, for QEMU's -chardev socket) to B_PATH, the
# simulator's pty. Returns once the wire prints 'wire: ready' (read from a
# FIFO with a 20 s deadline, no polling); sets $port and $wire_pid, log in
# $tmp/wire.log.
start_wire_tcp() {
    local b=$1 line ready=""
    shift
    rm -f "$tmp/wire.err"
    mkfifo "$tmp/wire.err" || return 1
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$PEERFLASH" wire --a "tcp-listen://$port" --b "$b" "$@" 2>"$tmp/wire.err" &
    wire_pid=$!
    pids+=($wire_pid)
    exec 3<"$tmp/wire.err"
    while IFS= read -r -t 20 -u 3 line; do
        echo "$line" >>"$tmp/wire.log"
        if [[ $line == *"wire: ready"* ]]; then
            ready=1
            break
        fi
    done
    if [[ -z $ready ]]; then
        echo "FAIL: the wire did not get ready:"
        cat "$tmp/wire.log"
        return 1
    fi
    cat <&3 >>"$tmp/wire.log" &
    pids+=($!)
    exec 3<&-
}
