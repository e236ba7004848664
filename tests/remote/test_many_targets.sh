#!/bin/bash
# flash/verify with several --port (and a quoted glob): one job per port at
# once, a failing port does not stop the others, a summary table, one JSON
# object with an entry per target, and the worst status as the exit status.
PF=${1:?usage: $0 path/to/peerflash}
source "$(dirname "$0")/lib.sh"
head -c 12000 /dev/urandom >"$DIR/fw.bin"
mkdir -p "$DIR/boards"
for i in 1 2 3; do
    spawn "$PF" sim stm32 --port "$DIR/boards/dev$i" --flash "$DIR/flash$i.bin" --chip G07xxB \
        --program-us-per-256 1000 --erase-ms-per-page 2 2>"$DIR/sim$i.log"
done
for i in 1 2 3; do wait_file "$DIR/boards/dev$i" 20 || die "sim $i made no pty"; done

# three boards by a glob, plus one that is not there
timeout 100 "$PF" flash --json --target stm32 --baud 115200 --port "$DIR/boards/dev*" --port "$DIR/missing" \
    "$DIR/fw.bin@0x08000000" >"$DIR/json" 2>"$DIR/out"
rc=$?
[ $rc -eq 4 ] && ok "worst status (a missing board) is the exit status: 4" || fail "exit $rc, expected 4"
for i in 1 2 3; do
    cmp -s -n 12000 "$DIR/fw.bin" "$DIR/flash$i.bin" && ok "board $i flashed" || fail "board $i not flashed"
done
/usr/bin/python3 - "$DIR/json" "$DIR" <<'PY' && ok "one JSON object, an entry per target with its own result" || fail "JSON: $(cat "$DIR/json")"
import json, sys
o = json.load(open(sys.argv[1]))
d = sys.argv[2]
t = {e["port"]: e for e in o["targets"]}
assert o["exit_code"] == 4 and o["ok"] is False, o
assert sorted(t) == sorted([d + "/boards/dev1", d + "/boards/dev2", d + "/boards/dev3", d + "/missing"]), t
for i in (1, 2, 3):
    e = t[d + "/boards/dev%d" % i]
    assert e["exit_code"] == 0 and e["result"]["ok"] and e["result"]["written_bytes"] == 12000, e
    assert e["cpu_seconds"] >= 0 and e["seconds"] > 0, e
m = t[d + "/missing"]
assert m["exit_code"] == 4 and m["result"]["exit_code"] == 4 and "missing" in m["result"]["error"], m
PY
grep -q "^port .*result .*exit" "$DIR/out" && grep -q "3 of 4 targets ok" "$DIR/out" && ok "summary table" ||
    fail "no summary table"
grep -q "^$DIR/boards/dev2 .*write: " "$DIR/out" && ok "progress lines prefixed with the port" || fail "no prefixed progress"

# verify on all three: unchanged, exit 0
pf verify --target stm32 --baud 115200 --port "$DIR/boards/dev1" --port "$DIR/boards/dev2" --port "$DIR/boards/dev3" \
    "$DIR/fw.bin@0x08000000"
[ $rc -eq 0 ] && ok "verify on three boards" || fail "verify on three: exit $rc"
# a glob that matches nothing is a missing board; read takes one port
pf flash --target stm32 --port "$DIR/none*" "$DIR/fw.bin@0x08000000"
[ $rc -eq 4 ] && grep -q "matches no port" "$DIR/out" && ok "a glob matching nothing: exit 4" || fail "empty glob: exit $rc"
pf read --target stm32 --port "$DIR/boards/dev1" --port "$DIR/boards/dev2" 0x08000000 16 "$DIR/r.bin"
[ $rc -eq 2 ] && ok "read with two ports: usage error" || fail "read with two ports: exit $rc"
exit $FAILED
