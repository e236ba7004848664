#!/bin/bash
# peerflash serve, the HTTP API: one daemon owns a simulated avr (the real
# Optiboot in simavr), esp32, stm32 and agent; curl uploads to all four at
# once and each simulated flash then holds its image; results carry the
# fields of `flash --json`; a second job on a busy target gets 409; the
# event stream shows the phases; verify, run and info; --json-log.
PF=${1:?usage: $0 path/to/peerflash AVR_BUILD_DIR}
AVR_DIR=${2:-}
source "$(dirname "$0")/lib.sh"
cd "$DIR" || exit 1

# --- the four simulated targets ---------------------------------------------
have_avr=0
if [ -n "$AVR_DIR" ] && [ -f "$AVR_DIR/app_small.hex" ] && "$PF" sim avr --help 2>&1 | grep -q optiboot; then
    have_avr=1
    spawn "$PF" sim avr --port "$DIR/avr" --page-write-ms 0 --baud 115200 --flash-dump "$DIR/avr.dump" 2>avr.log
    AVR_SIM=$!
fi
spawn "$PF" sim esp32 --port "$DIR/esp" --chip esp32 --flash esp.flash --flash-size 4MB \
    --erase-ms-per-4k 0 --write-us-per-kb 0 2>esp.log
spawn "$PF" sim stm32 --port "$DIR/stm" --flash stm.flash --chip G07xxB --program-us-per-256 0 --erase-ms-per-page 0 2>stm.log
# a slow one (about 3 s a job) for busy, the event stream and SIGTERM
spawn "$PF" sim stm32 --port "$DIR/slow" --flash slow.flash --chip G07xxB --program-us-per-256 6000 --erase-ms-per-page 2 2>slow.log
"$PF" keygen -o key.pem --pub key.der >/dev/null 2>&1 || die "keygen"
spawn "$PF" sim agent --port "$DIR/agent" --flash agent.flash --key key.pem 2>agent.log
for p in esp stm slow agent; do wait_file "$DIR/$p" 20 || die "sim $p made no pty"; done
[ $have_avr = 1 ] && { wait_file "$DIR/avr" 20 || die "avr sim made no pty"; }

# images: an ESP raw app (first byte not 0xE9, so it is a plain binary), an
# STM32 raw binary, a signed agent image, and the AVR test application as HEX
$PY -c 'import random,sys; r=random.Random(13); open("esp.bin","wb").write(bytes([0])+bytes(r.getrandbits(8) for _ in range(40959)))'
$PY -c 'import random,sys; r=random.Random(14); open("stm.bin","wb").write(bytes(r.getrandbits(8) for _ in range(30000)))'
head -c 50000 /dev/urandom >agent-app.bin
"$PF" sign --key key.pem --version 1.2.0 agent-app.bin agent-app.img >/dev/null 2>&1 || die "sign"

targets=(--target esp --port "$DIR/esp" --baud 921600 --no-run
         --target stm32 --port "$DIR/stm" --baud 115200 --name bluepill
         --target agent --port "$DIR/agent"
         --target stm32 --port "$DIR/slow" --baud 115200 --name slow)
[ $have_avr = 1 ] && targets+=(--target avr --port "$DIR/avr" --baud 115200 --name uno --read-compare)
start_serve serve.log "${targets[@]}"

# --- four uploads at once --------------------------------------------------------
curl -s -o r-esp.json -w '%{http_code}' --data-binary @esp.bin "$URL/api/targets/esp/flash" >c-esp &
c1=$!
curl -s -o r-stm.json -w '%{http_code}' -F "image=@stm.bin" "$URL/api/targets/bluepill/flash?address=0x08000000" >c-stm &
c2=$!
curl -s -o r-agent.json -w '%{http_code}' --data-binary @agent-app.img "$URL/api/targets/agent/flash" >c-agent &
c3=$!
if [ $have_avr = 1 ]; then
    curl -s -o r-uno.json -w '%{http_code}' -H 'Content-Type: application/octet-stream' \
        --data-binary @"$AVR_DIR/app_small.hex" "$URL/api/targets/uno/flash?filename=app_small.hex" >c-uno &
    c4=$!
fi
wait $c1 $c2 $c3 ${c4:-}
for t in esp stm agent $([ $have_avr = 1 ] && echo uno); do
    [ "$(cat c-$t)" = 200 ] && jq_check r-$t.json 'j["ok"] is True' 'j["exit_code"] == 0' 'j["verified"] is True' \
        'j["schema"] == 1' 'j["command"] == "flash"' 'j["chip"]' 'j["written_bytes"] > 0' \
        'all(k in j for k in ("stopped_at","interrupted","chip_id","bootloader","flash_start","flash_size","image_bytes","skipped_bytes","erased_bytes","resumed_from","wire_bytes","runs","verify_method","read_bytes","details","seconds"))' &&
        ok "$t: HTTP 200, flash --json fields, verified" || fail "$t: HTTP $(cat c-$t): $(cat r-$t.json)"
done
$PY - <<'PY' && ok "esp: the raw binary is at the app address 0x10000" || fail "esp flash does not hold the image"
d = open("esp.flash", "rb").read(); i = open("esp.bin", "rb").read()
assert d[0x10000:0x10000 + len(i)] == i
PY
$PY - <<'PY' && ok "stm32 (multipart form): the flash holds the image" || fail "stm32 flash does not hold the image"
d = open("stm.flash", "rb").read(); i = open("stm.bin", "rb").read()
assert d[:len(i)] == i
PY
$PY - <<'PY' && ok "agent: the signed image is in the device's flash" || fail "agent flash does not hold the image"
d = open("agent.flash", "rb").read(); i = open("agent-app.img", "rb").read()
assert i[:4096] in d and i[-4096:] in d
PY
jq_check r-esp.json 'j["chip"] == "ESP32"' 'j["verify_method"] == "digest MD5"' 'j["name"] == "esp"' &&
    ok "esp: chip and MD5 verify in the result" || fail "esp result: $(cat r-esp.json)"

# a driver option given to serve (--read-compare for the avr): the same
# application again is not sent, and the counters say so
if [ $have_avr = 1 ]; then
    code=$(curl -s -o r-uno2.json -w '%{http_code}' --data-binary @"$AVR_DIR/app_small.hex" "$URL/api/targets/uno/flash?format=hex")
    [ "$code" = 200 ] && jq_check r-uno2.json 'j["written_bytes"] == 0' 'j["skipped_bytes"] >= j["image_bytes"]' &&
        ok "avr --read-compare: the unchanged application is skipped (written 0)" || fail "read-compare: $code $(cat r-uno2.json)"
fi
"$PF" serve --target esp --port "$DIR/esp" --read-compare >opt.out 2>&1
[ $? -eq 2 ] && grep -q "read-compare" opt.out && ok "a driver option the target lacks: usage error" || fail "bad option: $(cat opt.out)"

# --- state, chip and last result in the list ---------------------------------------
curl -s "$URL/api/targets" >list.json
jq_check list.json 'len(j["targets"]) >= 3' \
    'all(t["state"] == "idle" and t["last_result"]["ok"] and t["chip"] for t in j["targets"] if t["name"] != "slow")' \
    '[t["name"] for t in j["targets"]][:3] == ["esp", "bluepill", "agent"]' &&
    ok "GET /api/targets: state, chip and last result of each" || fail "list: $(cat list.json)"

# --- verify, info, run ---------------------------------------------------------------
code=$(curl -s -o v.json -w '%{http_code}' --data-binary @stm.bin "$URL/api/targets/bluepill/verify")
[ "$code" = 200 ] && jq_check v.json 'j["command"] == "verify"' 'j["ok"]' && ok "verify: the flash matches" ||
    fail "verify: $code $(cat v.json)"
head -c 30000 /dev/zero | tr '\0' '\1' >other.bin
code=$(curl -s -o v2.json -w '%{http_code}' --data-binary @other.bin "$URL/api/targets/bluepill/verify")
[ "$code" = 502 ] && jq_check v2.json 'j["exit_code"] == 6' 'not j["ok"]' && ok "verify of another image: 502, exit_code 6" ||
    fail "verify mismatch: $code $(cat v2.json)"
code=$(curl -s -o i.json -w '%{http_code}' -X POST "$URL/api/targets/esp/info")
[ "$code" = 200 ] && jq_check i.json 'j["chip"] == "ESP32"' 'j["command"] == "info"' && ok "info: identifies the chip" ||
    fail "info: $code $(cat i.json)"
code=$(curl -s -o run.json -w '%{http_code}' -X POST "$URL/api/targets/bluepill/run")
[ "$code" = 200 ] && jq_check run.json 'j["command"] == "run"' 'j["ok"]' && ok "run: the application was started" ||
    fail "run: $code $(cat run.json)"

# --- the event stream while a job runs, and busy ---------------------------------------------
curl -s -N --max-time 60 "$URL/api/targets/slow/events" >events.txt &
ev=$!
for _ in $(seq 100); do grep -q "^event: target" events.txt && break; sleep 0.05; done
$PY -c 'import random; r=random.Random(15); open("big.bin","wb").write(bytes(r.getrandbits(8) for _ in range(120000)))'
curl -s -o r-big.json -w '%{http_code}' --data-binary @big.bin "$URL/api/targets/slow/flash" >c-big &
cb=$!
wait_state slow 'j["state"] == "busy" and j["progress"] is not None' 30 && ok "GET shows the running job's progress" ||
    fail "the slow target never showed busy with progress"
code=$(curl -s -o busy.json -w '%{http_code}' --data-binary @esp.bin "$URL/api/targets/slow/flash")
[ "$code" = 409 ] && jq_check busy.json '"busy" in j["error"]' 'not j["ok"]' && ok "a second job on a busy target: 409 busy" ||
    fail "busy: $code $(cat busy.json)"
code=$(curl -s -o other.json -w '%{http_code}' -X POST "$URL/api/targets/bluepill/info")
[ "$code" = 200 ] && ok "another target works meanwhile" || fail "other target while esp busy: $code"
wait $cb
[ "$(cat c-big)" = 200 ] && ok "the long job finished: 200" || fail "big flash: $(cat c-big) $(cat r-big.json)"
for _ in $(seq 100); do grep -q "^event: result" events.txt && break; sleep 0.05; done
kill $ev 2>/dev/null
$PY - events.txt <<'PY' && ok "event stream: state, progress per phase (write, verify), log, result" || fail "events: $(head -c 2000 events.txt)"
import json, sys
ev = []
for block in open(sys.argv[1]).read().split("\n\n"):
    lines = dict(l.split(": ", 1) for l in block.splitlines() if ": " in l)
    if "event" in lines:
        ev.append((lines["event"], json.loads(lines.get("data", "{}"))))
types = [t for t, _ in ev]
phases = [d["phase"] for t, d in ev if t == "progress"]
assert "state" in types and "log" in types and "result" in types, types
assert "write" in phases and "verify" in phases, phases
w = [d for t, d in ev if t == "progress" and d["phase"] == "write"]
assert w[-1]["done"] == w[-1]["total"] and len(w) >= 3, w
res = [d for t, d in ev if t == "result"][-1]
assert res["ok"] and res["image_bytes"] == 120000, res
PY

# --- the log: one line per event ---------------------------------------------------------------
grep -qE '^[0-9T:.-]+Z job slow: flash started from http 127.0.0.1' serve.log &&
    grep -qE '^[0-9T:.-]+Z done slow: flash ok: wrote' serve.log && grep -q 'refused slow: HTTP 409' serve.log &&
    ok "text log: one line per event" || fail "log: $(cat serve.log)"

# --- SIGTERM: the running job finishes within the grace time ----------------------------------
$PY -c 'import random; r=random.Random(16); open("big2.bin","wb").write(bytes(r.getrandbits(8) for _ in range(120000)))'
curl -s -o r-big2.json -w '%{http_code}' --data-binary @big2.bin "$URL/api/targets/slow/flash" >c-big2 &
cb=$!
wait_state slow 'j["state"] == "busy" and j["progress"] is not None and j["progress"]["phase"] == "write"' 30 ||
    fail "second big job not running"
kill -TERM $SERVE_PID
code=$(curl -s -o late.json -w '%{http_code}' -X POST "$URL/api/targets/bluepill/info" 2>/dev/null)
[ "$code" = 503 ] || [ "$code" = 000 ] && ok "after SIGTERM new jobs are refused ($code)" || fail "new job after SIGTERM: $code"
wait $cb
[ "$(cat c-big2)" = 200 ] && jq_check r-big2.json 'j["ok"]' && ok "SIGTERM: the running job finished (grace)" ||
    fail "job under SIGTERM: $(cat c-big2) $(cat r-big2.json)"
wait $SERVE_PID
rc=$?
[ $rc -eq 0 ] && grep -q "stopped: stopped by SIGTERM" serve.log && ok "daemon stopped cleanly (exit 0)" ||
    fail "daemon exit $rc: $(tail -3 serve.log)"

# --- SIGTERM with --grace 0: the job fails with a clear status, --json-log --------------------------
start_serve serve2.log --json-log --grace 0 --target stm32 --port "$DIR/slow" --baud 115200
curl -s -o r-cut.json -w '%{http_code}' --data-binary @big.bin "$URL/api/targets/stm32/flash" >c-cut &
cb=$!
wait_state stm32 'j["state"] == "busy" and j["progress"] is not None and j["progress"]["phase"] == "write" and j["progress"]["done"] > 0' 30 ||
    fail "cut job not running"
kill -TERM $SERVE_PID
wait $cb
[ "$(cat c-cut)" = 503 ] && jq_check r-cut.json 'j["interrupted"] == "SIGTERM"' 'j["exit_code"] == 143' \
    '"during write" in j["error"]' 'j["stopped_at"]["phase"] == "write"' &&
    ok "SIGTERM --grace 0: the job fails with 503 and where it stopped" || fail "cut: $(cat c-cut) $(cat r-cut.json)"
wait $SERVE_PID
$PY - serve2.log <<'PY' && ok "--json-log: one JSON object per line" || fail "json log: $(cat serve2.log)"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ev = [l["event"] for l in lines]
assert all("time" in l and "message" in l and "target" in l for l in lines)
assert "ready" in ev and "job" in ev and "failed" in ev and "stopped" in ev, ev
PY

# the AVR flash holds the test application (dumped when the simulator stops)
if [ $have_avr = 1 ]; then
    stop $AVR_SIM
    cmp -s -n "$(stat -c %s "$AVR_DIR/app_small.bin")" "$AVR_DIR/app_small.bin" avr.dump &&
        ok "avr (real Optiboot): the flash holds the HEX application" || fail "avr flash differs from the application"
else
    echo "note: no Optiboot build: the avr target was left out"
fi
exit $FAILED
