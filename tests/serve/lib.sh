# Helpers for the serve tests: the remote tests' process/port helpers, plus
# starting `peerflash serve` on a free loopback port and talking to it.
source "$(dirname "${BASH_SOURCE[0]}")/../remote/lib.sh"
PY=/usr/bin/python3
command -v curl >/dev/null || skip "curl is not installed (scripts/install-deps.sh)"

# start_serve LOG ARGS...: starts the daemon on a free port; sets SERVE_PID and
# URL once its "ready" line is in LOG (a deadline, no fixed sleep)
start_serve() {
    local log=$1 i
    shift
    "$PF" serve --listen 127.0.0.1:0 "$@" 2>"$log" &
    SERVE_PID=$!
    PIDS+=($SERVE_PID)
    for i in $(seq 400); do
        if grep -q "ready" "$log" 2>/dev/null; then
            URL=$(grep -o 'https\?://127.0.0.1:[0-9]*' "$log" | head -n1)
            [ -n "$URL" ] && return 0
        fi
        kill -0 $SERVE_PID 2>/dev/null || break
        sleep 0.05
    done
    cat "$log"
    die "serve did not become ready"
}
# jq_check FILE EXPR...: each EXPR is a python expression on j (the JSON in FILE)
jq_check() {
    local f=$1
    shift
    "$PY" - "$f" "$@" <<'PYEOF'
import json, sys
j = json.load(open(sys.argv[1]))
for e in sys.argv[2:]:
    if not eval(e):
        print("check failed: %s\n  in %s" % (e, json.dumps(j)[:600]))
        sys.exit(1)
PYEOF
}
# wait_state NAME EXPR [SECONDS]: polls GET /api/targets/NAME until EXPR holds on j
wait_state() {
    local name=$1 expr=$2 i
    for i in $(seq $((${3:-20} * 20))); do
        curl -s -H "${AUTH:-X-None: 1}" "$URL/api/targets/$name" >"$DIR/state.json" 2>/dev/null &&
            jq_check "$DIR/state.json" "$expr" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    return 1
}
