# Helpers for the remote-link tests: a private directory, processes that are
# always stopped (even when a check fails), loopback ports, readiness by
# polling rather than sleeping. Every server binds 127.0.0.1 only.
set -u
PF=${PF:?PF=path/to/peerflash}
DIR=$(mktemp -d /tmp/pf-remote-XXXXXX)
PIDS=()
FAILED=0
cleanup() {
    local status=$? p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    if [ "$status" -ne 0 ] && [ "$status" -ne 77 ]; then
        echo "logs kept in $DIR"
    else
        rm -rf "$DIR"
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; [ -f "$DIR/out" ] && tail -n 8 "$DIR/out"; FAILED=1; }
die() { fail "$@"; exit 1; }
ok() { echo "ok: $*"; }
# spawn CMD...: starts it in the background, remembered for cleanup; $! is its pid
spawn() { "$@" & PIDS+=($!); }
stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
# free_port: a TCP port on 127.0.0.1 that nobody listens on right now
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_file PATH [SECONDS]
wait_file() { local i; for i in $(seq $((${2:-10} * 20))); do [ -e "$1" ] && return 0; sleep 0.05; done; return 1; }
# wait_listen PORT [SECONDS]: polls /proc/net/tcp (a probe connect would be a session)
wait_listen() {
    local hex i
    hex=$(printf '%04X' "$1")
    for i in $(seq $((${2:-10} * 20))); do
        grep -q "0100007F:$hex 00000000:0000 0A" /proc/net/tcp && return 0
        sleep 0.05
    done
    return 1
}
# pf ARGS...: peerflash with a deadline, output in $DIR/out, status in $rc
pf() { timeout 100 "$PF" "$@" >"$DIR/out" 2>&1; rc=$?; }
