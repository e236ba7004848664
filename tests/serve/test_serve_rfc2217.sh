#!/bin/bash
# The RFC 2217 bridge (--rfc2217-port), with pyserial's rfc2217:// client
# (Debian python3-serial) and our own:
#  (a) a simulated STM32 on a pty behind the daemon: pyserial syncs with its
#      ROM bootloader at 8E1 (0x7F -> ACK 0x79), and `peerflash flash --port
#      rfc2217://` writes and verifies an image through the bridge;
#  (b) rate, frame and DTR/RTS set by the client reach the port: a pty has no
#      modem lines, so a second target's port is pyserial's PortManager in
#      front of a second STM32 simulator (tests/remote/rfc2217_recorder.py),
#      which prints every change the daemon applies to it; with the pty the
#      daemon's log says what it applied and that DTR/RTS could not be; data
#      with 0xFF goes both ways (flash, then read back through the bridge);
#  (c) while a client is connected, HTTP jobs on that target get 409 busy;
#  (d) clients sending garbage and hostile telnet do not hurt the daemon,
#      which flashes correctly afterwards.
PF=${1:?usage: $0 path/to/peerflash}
HERE=$(cd "$(dirname "$0")" && pwd)
source "$(dirname "$0")/lib.sh"
cd "$DIR" || exit 1
$PY -c 'import serial.rfc2217' 2>/dev/null || skip "python3-serial is not installed (scripts/install-deps.sh)"

spawn "$PF" sim stm32 --port "$DIR/stm" --flash stm.flash --chip G07xxB --program-us-per-256 0 --erase-ms-per-page 0 2>stm.log
wait_file "$DIR/stm" 20 || die "stm32 sim made no pty"
spawn "$PF" sim stm32 --port "$DIR/far" --flash far.flash --chip G07xxB --program-us-per-256 0 --erase-ms-per-page 0 2>far.log
wait_file "$DIR/far" 20 || die "second stm32 sim made no pty"
RECP=$(free_port)
$PY "$HERE/../remote/rfc2217_recorder.py" "$RECP" "$DIR/far" >lines.out 2>lines.err &
PIDS+=($!)
for _ in $(seq 200); do grep -q READY lines.out && break; sleep 0.05; done
grep -q READY lines.out || die "the recorder did not start: $(cat lines.err)"
RP=$(free_port)
LP=$(free_port)
while [ "$LP" = "$RP" ]; do LP=$(free_port); done
start_serve serve.log --target stm32 --port "$DIR/stm" --baud 115200 --name stm --rfc2217-port "$RP" \
    --target stm32 --port "rfc2217://127.0.0.1:$RECP" --name far --rfc2217-port "$LP"
grep -q "RFC 2217 bridge on tcp 127.0.0.1:$RP (no authentication)" serve.log &&
    ok "the RFC 2217 bridge is announced, unauthenticated" || fail "announce: $(cat serve.log)"

# (a) pyserial at 8E1 syncs with the STM32 ROM bootloader (AN3155: 0x7F -> 0x79).
# pyserial raises DTR and RTS on open; the pty has no modem lines, and like
# ser2net the daemon then leaves SET-CONTROL unanswered (ign_set_control is
# pyserial's option for such servers).
$PY - "$RP" <<'PY' && ok "pyserial rfc2217:// at 8E1: the STM32 bootloader answers the sync with ACK" || fail "pyserial sync"
import serial, sys
s = serial.serial_for_url("rfc2217://127.0.0.1:%s?ign_set_control" % sys.argv[1], baudrate=115200,
                          parity=serial.PARITY_EVEN, timeout=3)
s.write(b"\x7f")
got = s.read(1)
s.close()
assert got == b"\x79", got
PY
for _ in $(seq 100); do grep -q "rfc2217 client 127.0.0.1 disconnected" serve.log && break; sleep 0.05; done
grep -q "rfc2217 stm: client 127.0.0.1: line 115200 8E1 applied" serve.log &&
    ok "(b) the 8E1 frame the client asked for was applied to the pty" || fail "8E1 not in the log: $(cat serve.log)"
grep -q "rfc2217 stm: client 127.0.0.1: DTR on not applied: the port has no modem lines" serve.log &&
    ok "(b) DTR on a pty: the daemon says it cannot (no modem lines)" || fail "DTR on pty: $(cat serve.log)"

$PY -c 'import random; r=random.Random(22); open("stm.bin","wb").write(bytes(r.getrandbits(8) for _ in range(20000)))'
flash_through() {
    timeout 120 "$PF" flash --json --target stm32 --chip G07xxB --port "rfc2217://127.0.0.1:$RP" --baud 115200 \
        --reset none stm.bin@0x08000000 >"$1" 2>"$1.err"
}
flash_through flash1.json
rc=$?
[ $rc -eq 0 ] && jq_check flash1.json 'j["ok"] is True' 'j["verified"] is True' 'j["written_bytes"] == 20000' &&
    $PY -c 'import sys; d=open("stm.flash","rb").read(); i=open("stm.bin","rb").read(); sys.exit(d[:len(i)] != i)' &&
    ok "(a) peerflash flash --port rfc2217:// through the bridge: exit 0, the flash holds the image" ||
    fail "flash through the bridge: exit $rc: $(cat flash1.json) $(tail -3 flash1.json.err)"

timeout 60 "$PF" read --target stm32 --port "rfc2217://127.0.0.1:$RP" --baud 115200 --reset none 0x08000000 20000 back.bin \
    >read.out 2>&1 && cmp -s back.bin stm.bin && [ "$(tr -cd '\377' <stm.bin | wc -c)" -gt 0 ] &&
    ok "(a) peerflash read through the bridge gives the image back (0xFF bytes both ways)" ||
    fail "read back through the bridge: $(tail -3 read.out)"

# (b) through to a port behind pyserial's PortManager: every change reaches it
$PY - "$LP" <<'PY' && ok "(b) pyserial through two RFC 2217 hops: the second STM32 answers the 8E1 sync" || fail "sync through two hops"
import serial, sys
s = serial.serial_for_url("rfc2217://127.0.0.1:%s" % sys.argv[1], baudrate=115200, parity=serial.PARITY_EVEN,
                          timeout=3)
s.write(b"\x7f")
got = s.read(1)
assert got == b"\x79", got
s.baudrate = 57600
s.dtr = False
s.rts = True
s.dtr = True
s.rts = False
s.close()
PY
for _ in $(seq 100); do grep -q "EVENT .* disconnect" lines.out && break; sleep 0.05; done
$PY - lines.out <<'PY' && ok "(b) 8E1, 57600 baud, then DTR and RTS in the client's order reached the port" || fail "events: $(tr '\n' ' ' <lines.out)"
import sys
ev = [l.split(None, 2)[2].strip() for l in open(sys.argv[1]) if l.startswith("EVENT ")]
assert "line 115200,8E1" in ev and "line 57600,8E1" in ev, ev
tail = ev[ev.index("line 57600,8E1"):]
controls = [e for e in tail if e.split()[0] in ("dtr", "rts")]
assert controls == ["dtr 0", "rts 1", "dtr 1", "rts 0"], controls
PY
grep -q "rfc2217 far: client 127.0.0.1: DTR off applied" serve.log && ok "(b) the daemon logs what it applied" ||
    fail "far log: $(grep far serve.log)"

# (c) busy while a client is connected
$PY - "$RP" "$URL" <<'PY' && ok "(c) while an RFC 2217 client is connected, HTTP jobs get 409 busy" || fail "busy"
import json, serial, sys, urllib.request, urllib.error
s = serial.serial_for_url("rfc2217://127.0.0.1:%s?ign_set_control" % sys.argv[1], baudrate=115200, timeout=3)
state = json.load(urllib.request.urlopen(sys.argv[2] + "/api/targets/stm", timeout=5))
assert state["state"] == "busy" and state["job"] == "bridge", state
req = urllib.request.Request(sys.argv[2] + "/api/targets/stm/flash", data=b"\0" * 64, method="POST")
try:
    urllib.request.urlopen(req, timeout=10)
    sys.exit("not refused")
except urllib.error.HTTPError as e:
    body = json.load(e)
    assert e.code == 409 and "rfc2217 bridge" in body["error"], (e.code, body)
s.close()
PY

# (d) garbage and hostile telnet from clients
$PY - "$RP" "$LP" <<'PY'
import random, socket, struct, sys
r = random.Random(2217)
IAC, SB, SE = 255, 250, 240
def hostile():
    yield bytes(r.getrandbits(8) for _ in range(r.randrange(1, 6000)))            # plain garbage
    yield bytes([IAC, SB, 44]) + bytes(r.getrandbits(8) for _ in range(3000))     # SB never ended
    yield bytes([IAC, SB, 44, 1, IAC, SE])                                        # baud without value
    yield bytes([IAC, SB, 44, 1]) + struct.pack("!I", 0xFFFFFFFE) + bytes([IAC, SE])  # absurd rates
    yield bytes([IAC, SB, 44, 1]) + struct.pack("!I", 1) + bytes([IAC, SE])
    yield bytes([IAC, SB, 44, 2, 5, IAC, SE, IAC, SB, 44, 3, 200, IAC, SE, IAC, SB, 44, 4, 0, IAC, SE])
    yield bytes(v for o in range(256) for v in (IAC, 251 + o % 4, o))              # every option, every verb
    yield bytes(v for c in range(256) for v in (IAC, SB, 44, c, r.getrandbits(8), IAC, SE))  # every command
    yield bytes([IAC, SB, 44, 5]) + bytes([IAC] * 301)                             # IAC run inside SB
    yield bytes([IAC])                                                              # cut after IAC
for port in sys.argv[1:]:
    for blob in hostile():
        s = socket.create_connection(("127.0.0.1", int(port)), timeout=5)
        s.sendall(blob)
        s.close()
PY
kill -0 $SERVE_PID && ok "(d) garbage and hostile telnet clients: the daemon is still running" || die "daemon died"
for _ in $(seq 200); do curl -s "$URL/api/targets/stm" | grep -q '"state":"idle"' && break; sleep 0.05; done
$PY -c 'import random; r=random.Random(23); open("stm.bin","wb").write(bytes(r.getrandbits(8) for _ in range(20000)))'
flash_through flash2.json
rc=$?
[ $rc -eq 0 ] && $PY -c 'import sys; d=open("stm.flash","rb").read(); i=open("stm.bin","rb").read(); sys.exit(d[:len(i)] != i)' &&
    ok "(d) after the garbage, peerflash flash through the bridge writes and verifies a new image" ||
    fail "flash after garbage: exit $rc: $(cat flash2.json) $(tail -3 flash2.json.err)"
code=$(curl -s -o info.json -w '%{http_code}' -X POST "$URL/api/targets/stm/info")
[ "$code" = 200 ] && ok "(d) and HTTP jobs work on the target" || fail "info after the bridge: $code $(cat info.json)"
kill -TERM $SERVE_PID
wait $SERVE_PID
rc=$?
grep -q "stopped by SIGTERM" serve.log && ! grep -q "AddressSanitizer\|runtime error\|LeakSanitizer" serve.log &&
    ok "the daemon stops cleanly on SIGTERM (exit $rc), no sanitizer report" || fail "stop: exit $rc: $(tail -20 serve.log)"
exit $FAILED
