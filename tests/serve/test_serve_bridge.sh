#!/bin/bash
# The raw TCP serial bridge (--bridge-port): Debian's avrdude flashes the
# real Optiboot (simavr) through the daemon with `-P net:127.0.0.1:N`, the
# target being reset on connect as ESP-Link does; while a bridge client is
# connected other jobs get 409 busy; a client that sends garbage does not
# hurt the daemon, and avrdude works again afterwards.
PF=${1:?usage: $0 path/to/peerflash AVR_BUILD_DIR}
AVR_DIR=${2:-}
source "$(dirname "$0")/lib.sh"
cd "$DIR" || exit 1
command -v avrdude >/dev/null || skip "avrdude is not installed (scripts/install-deps.sh)"
[ -n "$AVR_DIR" ] && [ -f "$AVR_DIR/app_small.hex" ] && "$PF" sim avr --help 2>&1 | grep -q optiboot ||
    skip "no Optiboot build"
spawn "$PF" sim avr --port "$DIR/avr" --page-write-ms 0 --baud 115200 --flash-dump "$DIR/avr.dump" 2>avr.log
AVR_SIM=$!
wait_file "$DIR/avr" 20 || die "avr sim made no pty"
BP=$(free_port)
start_serve serve.log --target avr --port "$DIR/avr" --baud 115200 --name uno --bridge-port "$BP"
grep -q "raw bridge on tcp 127.0.0.1:$BP (no authentication)" serve.log && ok "the bridge is announced, unauthenticated" ||
    fail "announce: $(cat serve.log)"

timeout 60 avrdude -c arduino -p m328p -P "net:127.0.0.1:$BP" -U "flash:w:$AVR_DIR/app_small.hex:i" >avrdude.log 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "bytes of flash verified" avrdude.log && ok "avrdude -c arduino -P net: writes and verifies through the bridge" ||
    fail "avrdude: exit $rc: $(tail -5 avrdude.log)"
for _ in $(seq 100); do grep -q "disconnected" serve.log && break; sleep 0.05; done
grep -q "bridge uno: client 127.0.0.1 connected to .* (target reset)" serve.log &&
    grep -q "bridge uno: client 127.0.0.1 disconnected (the client closed the connection)" serve.log &&
    ok "connect (with reset) and disconnect are logged" || fail "log: $(cat serve.log)"

# busy while a client is connected
$PY - "$BP" "$URL" <<'PY' && ok "while a bridge client is connected, a flash request gets 409 busy" || fail "busy"
import json, socket, sys, time, urllib.request, urllib.error
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
deadline = time.time() + 10
while True:
    state = json.load(urllib.request.urlopen(sys.argv[2] + "/api/targets/uno", timeout=5))
    if state["state"] == "busy" and state["job"] == "bridge":
        break
    assert time.time() < deadline, state
    time.sleep(0.05)
req = urllib.request.Request(sys.argv[2] + "/api/targets/uno/info", data=b"", method="POST")
try:
    urllib.request.urlopen(req, timeout=10)
    sys.exit("not refused")
except urllib.error.HTTPError as e:
    body = json.load(e)
    assert e.code == 409 and "bridge" in body["error"], (e.code, body)
s.close()
PY
# garbage through the bridge: it reaches the target (a bridge is raw), the daemon carries on
$PY - "$BP" <<'PY'
import random, socket, sys
r = random.Random(41)
for _ in range(5):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
    s.sendall(bytes(r.getrandbits(8) for _ in range(r.randrange(1, 5000))))
    s.close()
PY
kill -0 $SERVE_PID && ok "garbage clients: the daemon is still running" || die "daemon died"
timeout 60 avrdude -c arduino -p m328p -P "net:127.0.0.1:$BP" -U "flash:w:$AVR_DIR/app_small.hex:i" >avrdude2.log 2>&1
[ $? -eq 0 ] && ok "avrdude again after the garbage: the reset on connect brings Optiboot back" ||
    fail "avrdude after garbage: $(tail -5 avrdude2.log)"
for _ in $(seq 100); do curl -s "$URL/api/targets/uno" | grep -q '"state":"idle"' && break; sleep 0.05; done
code=$(curl -s -o info.json -w '%{http_code}' -X POST "$URL/api/targets/uno/info")
[ "$code" = 200 ] && ok "after the bridge, HTTP jobs work on the target" || fail "info after bridge: $code $(cat info.json)"
kill -TERM $SERVE_PID
wait $SERVE_PID
stop $AVR_SIM
cmp -s -n "$(stat -c %s "$AVR_DIR/app_small.bin")" "$AVR_DIR/app_small.bin" avr.dump &&
    ok "the AVR flash holds what avrdude wrote" || fail "avr flash differs"
exit $FAILED
