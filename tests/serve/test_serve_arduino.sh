#!/bin/bash
# peerflash serve --arduino-ota: the Arduino IDE's arduinoOTA tool (the AVR
# core's network upload) flashing the real Optiboot in simavr through the
# daemon, with the requests the tool makes (tests/serve/arduinoota_client.py,
# written from arduinoOTA main.go; the Go tool itself is not in Debian):
# sync, the .hex without its line breaks as a form body, Basic auth with the
# token, reset; a damaged HEX is refused and the flash keeps the application. Then: a job longer than the tool's 10 s is answered 202 in
# time and goes on to its result; sync says BUSY meanwhile; the routes of a
# target without --arduino-ota are 404; bad command lines exit 2.
PF=${1:?usage: $0 path/to/peerflash AVR_BUILD_DIR}
AVR_DIR=${2:-}
source "$(dirname "$0")/lib.sh"
CLIENT=$(cd "$(dirname "$0")" && pwd)/arduinoota_client.py
cd "$DIR" || exit 1
[ -n "$AVR_DIR" ] && [ -f "$AVR_DIR/app_small.hex" ] && "$PF" sim avr --help 2>&1 | grep -q optiboot ||
    skip "the AVR test application or simavr's Optiboot is not built (the avr component)"

spawn "$PF" sim avr --port "$DIR/avr" --page-write-ms 0 --baud 115200 --flash-dump "$DIR/avr.dump" 2>avr.log
AVR_SIM=$!
# a slow STM32 (about 0.7 s per KiB programmed): a job the tool's 10 s cannot wait for
spawn "$PF" sim stm32 --port "$DIR/slow" --flash slow.flash --chip G07xxB --program-us-per-256 170000 \
    --erase-ms-per-page 0 2>slow.log
spawn "$PF" sim stm32 --port "$DIR/stm" --flash stm.flash --chip G07xxB 2>stm.log
for p in avr slow stm; do wait_file "$DIR/$p" 20 || die "sim $p made no pty"; done
printf 'arduino-test-token-1\n' >token && chmod 600 token
start_serve serve.log --token-file token \
    --target avr --port "$DIR/avr" --baud 115200 --name uno --arduino-ota \
    --target stm32 --port "$DIR/slow" --baud 115200 --name slow --arduino-ota \
    --target stm32 --port "$DIR/stm" --baud 115200 --name plain
HTTP_PORT=${URL##*:}
AUTH="Authorization: Bearer arduino-test-token-1" # for wait_state
ep() { echo "-upload /api/targets/$1/arduino/upload -sync /api/targets/$1/arduino/sync -reset /api/targets/$1/arduino/reset -sync_exp 200:SYNC"; }

# --- the AVR core's upload, as the IDE runs it (platform.txt pattern), plus the token -------------
# shellcheck disable=SC2046
$PY "$CLIENT" -address 127.0.0.1 -port "$HTTP_PORT" -sketch "$AVR_DIR/app_small.hex" $(ep uno) \
    -username arduino -password arduino-test-token-1 >up.out 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "Sketch uploaded successfully" up.out && grep -q '"verified":true' up.out &&
    grep -q '"chip":"ATmega328P"' up.out && ok "arduinoOTA upload to the Uno: success, verified, ATmega328P" ||
    fail "upload: rc $rc: $(cat up.out)"
grep -q "^SYNC" up.out && ok "sync answered SYNC before the upload" || fail "sync: $(cat up.out)"
reset_text=$(curl -s -X POST "$URL/api/targets/uno/arduino/reset")
[[ $reset_text == "the flash job started the application" ]] && ok "reset (no credentials, changes nothing): $reset_text" ||
    fail "reset: $reset_text"
grep -q "flash started from http 127.0.0.1: sketch.hex" serve.log && ok "the log names the upload sketch.hex" ||
    fail "log: $(grep uno serve.log)"
# a damaged sketch (one data byte changed, so its record's checksum is wrong), sent as the tool
# sends it: refused before the port is opened, the application flashed above stays
sed '3s/^\(:10....00\)\(.\)/\1F/' "$AVR_DIR/app_small.hex" >bad.hex
cmp -s bad.hex "$AVR_DIR/app_small.hex" && die "bad.hex is not damaged"
jobs_before=$(grep -c "job uno: flash started" serve.log)
# shellcheck disable=SC2046
$PY "$CLIENT" -address 127.0.0.1 -port "$HTTP_PORT" -sketch bad.hex $(ep uno) \
    -username arduino -password arduino-test-token-1 >bad.out 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q "Error flashing the sketch:.*sketch.hex: line 3.*checksum.*nothing was written" bad.out &&
    [ "$(grep -c "job uno: flash started" serve.log)" = "$jobs_before" ] &&
    ok "a damaged HEX: refused naming line 3's checksum, no job ran" || fail "bad hex: rc $rc: $(cat bad.out)"
kill -TERM $AVR_SIM && wait $AVR_SIM
$PY - "$AVR_DIR/app_small.hex" <<'PY' && ok "the ATmega328P's flash holds the application (the damaged one changed nothing)" || fail "avr flash differs"
import sys
mem = {}
base = 0
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith(":"):
        continue
    b = bytes.fromhex(line[1:])
    n, addr, typ = b[0], (b[1] << 8) | b[2], b[3]
    if typ == 0:
        for i in range(n):
            mem[base + addr + i] = b[4 + i]
    elif typ == 2:
        base = ((b[4] << 8) | b[5]) << 4
d = open("avr.dump", "rb").read()
bad = [a for a, v in mem.items() if d[a] != v]
assert mem and not bad, bad[:5]
PY

# --- the token -----------------------------------------------------------------------------------
# shellcheck disable=SC2046
$PY "$CLIENT" -address 127.0.0.1 -port "$HTTP_PORT" -sketch "$AVR_DIR/app_small.hex" $(ep uno) >noauth.out 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q "Error flashing the sketch:.*needs a token" noauth.out &&
    ok "without credentials: the upload is refused (401), the tool says why" || fail "no auth: rc $rc $(cat noauth.out)"
# shellcheck disable=SC2046
$PY "$CLIENT" -address 127.0.0.1 -port "$HTTP_PORT" -sketch "$AVR_DIR/app_small.hex" $(ep uno) \
    -username arduino -password wrong-token-123 >badauth.out 2>&1
[ $? -eq 1 ] && grep -q "needs a token" badauth.out && ok "a wrong password: refused" || fail "bad auth: $(cat badauth.out)"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer arduino-test-token-1' \
    "$URL/api/targets/plain/arduino/sync")
[ "$code" = 404 ] && ok "a target without --arduino-ota: its arduino routes are 404" || fail "plain sync: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -u arduino:arduino-test-token-1 -X POST "$URL/api/targets/plain/info")
[ "$code" = 401 ] && ok "Basic auth is taken on the arduinoOTA upload only" || fail "basic elsewhere: $code"

# --- a job longer than the tool waits: 202 in time, the job goes on -------------------------------
$PY -c 'import random; r=random.Random(21); open("slow.bin","wb").write(bytes(r.getrandbits(8) for _ in range(16384)))'
# shellcheck disable=SC2046
(
    t0=$(date +%s.%N)
    $PY "$CLIENT" -address 127.0.0.1 -port "$HTTP_PORT" -sketch slow.bin -b $(ep slow) \
        -username arduino -password arduino-test-token-1 >slow.out 2>&1
    echo $? >slow.rc
    $PY -c "print(round($(date +%s.%N) - $t0, 1))" >slow.took
) &
cs=$!
wait_state slow 'j["state"] == "busy"' 20 || fail "the slow target never became busy"
sync_text=$(curl -s "$URL/api/targets/slow/arduino/sync")
[[ $sync_text == BUSY* ]] && ok "sync while the job runs: $sync_text" || fail "sync while busy: $sync_text"
wait $cs
rc=$(cat slow.rc)
took=$(cat slow.took)
[ $rc -eq 1 ] && grep -q "still running after 9 s" slow.out && $PY -c "import sys; sys.exit(0 if $took < 10 else 1)" &&
    ok "the 10 s tool got a 202 in ${took} s naming where the result will be" || fail "slow: rc $rc in $took s: $(cat slow.out)"
grep -q "still running at the arduinoOTA deadline" serve.log && ok "the log says the job outlived the tool's wait" ||
    fail "log: $(grep slow serve.log)"
wait_state slow 'j["state"] == "idle" and j["last_result"] and j["last_result"]["ok"] and j["last_result"]["verified"]' 60 &&
    ok "the job went on and finished verified (last_result)" || fail "slow last_result: $(cat state.json)"
$PY - <<'PY' && ok "the slow STM32's flash holds the binary at 0x08000000" || fail "slow flash differs"
d = open("slow.flash", "rb").read(); i = open("slow.bin", "rb").read()
assert d[:len(i)] == i
PY

# --- the command line ------------------------------------------------------------------------------
"$PF" serve --target avr --port "$DIR/x" --arduino-ota --ota-port 8266 >both.out 2>&1
[ $? -eq 2 ] && grep -q "\-\-arduino-ota and --ota-port" both.out && ok "--arduino-ota with --ota-port: exit 2" ||
    fail "both: $(cat both.out)"
"$PF" serve --target avr --port "$DIR/x" --name 'my uno' --arduino-ota >name.out 2>&1
[ $? -eq 2 ] && grep -q "letters, digits" name.out && ok "a name the IDE cannot carry: exit 2" || fail "name: $(cat name.out)"
"$PF" serve --help | grep -q -- "--arduino-ota" && ok "--help lists --arduino-ota" || fail "help"

kill -TERM $SERVE_PID
wait $SERVE_PID
[ $? -eq 0 ] && ok "the daemon stops cleanly" || fail "stop"
exit $FAILED
