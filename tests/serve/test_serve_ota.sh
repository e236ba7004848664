#!/bin/bash
# peerflash serve as an ArduinoOTA / espota network port, checked with our
# own client written from the protocol's facts (ota_client.py): a raw binary
# reaches each target kind at its application address (esp, stm32, the
# agent's signed image, the AVR's real Optiboot); with a password: the right
# one flashes, a wrong one is refused; a wrong MD5, an upload cut halfway
# and garbage datagrams never touch the target, and the daemon goes on.
PF=${1:?usage: $0 path/to/peerflash AVR_BUILD_DIR}
AVR_DIR=${2:-}
source "$(dirname "$0")/lib.sh"
cd "$DIR" || exit 1
free_udp() { $PY -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
client() { timeout 120 $PY "$(dirname "$0")/ota_client.py" 127.0.0.1 "$@" >client.out 2>&1; crc=$?; }

spawn "$PF" sim esp32 --port "$DIR/esp" --chip esp32 --flash esp.flash --flash-size 4MB \
    --erase-ms-per-4k 0 --write-us-per-kb 0 2>esp.log
spawn "$PF" sim stm32 --port "$DIR/stm" --flash stm.flash --chip G07xxB --program-us-per-256 0 --erase-ms-per-page 0 2>stm.log
"$PF" keygen -o key.pem --pub key.der >/dev/null 2>&1 || die "keygen"
spawn "$PF" sim agent --port "$DIR/agent" --flash agent.flash --key key.pem 2>agent.log
have_avr=0
if [ -n "$AVR_DIR" ] && [ -f "$AVR_DIR/app_small.bin" ] && "$PF" sim avr --help 2>&1 | grep -q optiboot; then
    have_avr=1
    spawn "$PF" sim avr --port "$DIR/avr" --page-write-ms 0 --baud 115200 --flash-dump "$DIR/avr.dump" 2>avr.log
    AVR_SIM=$!
fi
for p in esp stm agent $([ $have_avr = 1 ] && echo avr); do wait_file "$DIR/$p" 20 || die "sim $p made no pty"; done

$PY -c 'import random; r=random.Random(31); open("esp.bin","wb").write(bytes([0])+bytes(r.getrandbits(8) for _ in range(30000)))'
$PY -c 'import random; r=random.Random(32); open("stm.bin","wb").write(bytes(r.getrandbits(8) for _ in range(20000)))'
head -c 40000 /dev/urandom >agent-app.bin
"$PF" sign --key key.pem --version 2.0.0 agent-app.bin agent-app.img >/dev/null 2>&1 || die "sign"
P_ESP=$(free_udp) P_STM=$(free_udp) P_AGENT=$(free_udp) P_AVR=$(free_udp)
targets=(--target esp --port "$DIR/esp" --baud 921600 --no-run --ota-port "$P_ESP"
         --target stm32 --port "$DIR/stm" --baud 115200 --ota-port "$P_STM"
         --target agent --port "$DIR/agent" --ota-port "$P_AGENT")
[ $have_avr = 1 ] && targets+=(--target avr --port "$DIR/avr" --baud 115200 --ota-port "$P_AVR")
start_serve serve.log --no-mdns "${targets[@]}"

# --- without a password: a raw binary to each kind -----------------------------------
client "$P_ESP" esp.bin
[ $crc -eq 0 ] && grep -q "acknowledged pieces: [1-9]" client.out &&
    $PY -c 'd=open("esp.flash","rb").read(); i=open("esp.bin","rb").read(); assert d[0x10000:0x10000+len(i)]==i' &&
    ok "esp: espota upload lands at the app partition 0x10000" || fail "esp ota: $(cat client.out)"
client "$P_STM" stm.bin
[ $crc -eq 0 ] && cmp -s -n 20000 stm.bin stm.flash && ok "stm32: espota upload lands at 0x08000000" ||
    fail "stm32 ota: $(cat client.out)"
client "$P_AGENT" agent-app.img
[ $crc -eq 0 ] && $PY -c 'd=open("agent.flash","rb").read(); i=open("agent-app.img","rb").read(); assert i[:4096] in d and i[-4096:] in d' &&
    ok "agent: the signed image reaches the device through espota" || fail "agent ota: $(cat client.out)"
if [ $have_avr = 1 ]; then
    client "$P_AVR" "$AVR_DIR/app_small.bin"
    [ $crc -eq 0 ] && ok "avr: espota upload accepted by the real Optiboot" || fail "avr ota: $(cat client.out)"
fi
grep -q "job stm32: flash started from ota 127.0.0.1: ota upload, 20000 bytes" serve.log &&
    ok "the log names the espota source" || fail "log: $(grep stm32 serve.log | tail -3)"

# --- bad input on the UDP port: ignored, never a job ----------------------------------
sha=$(sha256sum stm.flash | cut -d' ' -f1)
$PY - "$P_STM" <<'PY'
import random, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r = random.Random(33)
for i in range(100):
    msg = bytes(r.getrandbits(8) for _ in range(r.randrange(1, 300)))
    if i % 4 == 0:
        msg = b"0 %d %d %s\n" % (r.randrange(70000), r.randrange(10 ** 10), b"z" * 32)
    s.sendto(msg, ("127.0.0.1", int(sys.argv[1])))
PY
client "$P_STM" stm.bin --wrong-md5
[ $crc -eq 1 ] && grep -q "MD5 mismatch" client.out && ok "wrong MD5: refused with the reason" || fail "wrong md5: $(cat client.out)"
client "$P_STM" stm.bin --cut 5000
[ $crc -eq 1 ] && ok "an upload cut halfway: the client sees the end" || fail "cut: $(cat client.out)"
for _ in $(seq 100); do grep -q "host closed the connection after" serve.log && break; sleep 0.05; done
grep -q "the host closed the connection after 5000 of 20000 bytes; nothing was written" serve.log &&
    ok "the cut upload is logged: nothing was written" || fail "cut not logged: $(tail -3 serve.log)"
[ "$(sha256sum stm.flash | cut -d' ' -f1)" = "$sha" ] && ok "garbage, a wrong MD5 and a cut upload never touched the target" ||
    fail "the flash changed"
curl -s "$URL/api/targets/stm32" >s.json
jq_check s.json 'j["jobs_ok"] == 1 and j["jobs_failed"] == 0' && ok "no job was started by them" || fail "jobs: $(cat s.json)"
$PY -c 'import random; r=random.Random(34); open("stm2.bin","wb").write(bytes(r.getrandbits(8) for _ in range(16000)))'
client "$P_STM" stm2.bin
[ $crc -eq 0 ] && cmp -s -n 16000 stm2.bin stm.flash && ok "afterwards espota still flashes correctly" || fail "after bad: $(cat client.out)"
kill -TERM $SERVE_PID
wait $SERVE_PID
[ $? -eq 0 ] && ok "the daemon stops cleanly with its espota ports" || fail "stop"

# --- with a password --------------------------------------------------------------------
umask 077
echo "s3cret-$RANDOM" >pw
start_serve serve2.log --no-mdns --ota-password-file pw --target stm32 --port "$DIR/stm" --baud 115200 --ota-port "$P_STM"
sha=$(sha256sum stm.flash | cut -d' ' -f1)
client "$P_STM" stm.bin
[ $crc -eq 1 ] && grep -q "invitation: AUTH [0-9a-f]\{64\}$" client.out &&
    ok "password set: the invitation gets a 64-digit nonce (espota 3.3.1+ answers with PBKDF2-HMAC-SHA256)" ||
    fail "no challenge: $(cat client.out)"
for scheme in auto md5; do
    client "$P_STM" stm.bin --password wrong --scheme $scheme
    [ $crc -eq 1 ] && grep -q "authentication: Authentication Failed" client.out &&
        ok "wrong password ($scheme scheme): Authentication Failed" || fail "wrong password $scheme: $(cat client.out)"
done
[ "$(sha256sum stm.flash | cut -d' ' -f1)" = "$sha" ] && ok "the wrong passwords did not touch the target" || fail "flash changed"
grep -q "espota from 127.0.0.1: wrong password (PBKDF2-HMAC-SHA256 scheme)" serve2.log &&
    grep -q "espota from 127.0.0.1: wrong password (MD5 scheme)" serve2.log &&
    ok "the wrong passwords are logged with their scheme" || fail "log: $(grep refused serve2.log)"
# each client generation in use, each with its own image so every flash is seen
seed=40
for scheme in auto sha256-md5pw md5 md5-37; do
    seed=$((seed + 1))
    $PY -c "import random,sys; r=random.Random($seed); open('stm-$scheme.bin','wb').write(bytes(r.getrandbits(8) for _ in range(20000)))"
    client "$P_STM" "stm-$scheme.bin" --password "$(cat pw)" --scheme $scheme
    [ $crc -eq 0 ] && cmp -s -n 20000 "stm-$scheme.bin" stm.flash && ok "right password, $scheme scheme: flashed" ||
        fail "right password $scheme: $(cat client.out)"
done
missing=0
for what in "PBKDF2-HMAC-SHA256" "PBKDF2-HMAC-SHA256 over the MD5 password hash" "MD5 (pre-3.3.1 espota)" \
            "MD5 over the nonce's first 32 digits (espota before 3.3.1)"; do
    grep -qF "password checked ($what)" serve2.log || { missing=1; echo "not logged: $what"; }
done
[ $missing = 0 ] && grep -c "password checked" serve2.log | grep -qx 4 && ok "each accepted answer is logged with its scheme" ||
    fail "auth log: $(grep auth serve2.log)"
if [ $have_avr = 1 ]; then
    stop $AVR_SIM
    cmp -s -n "$(stat -c %s "$AVR_DIR/app_small.bin")" "$AVR_DIR/app_small.bin" avr.dump &&
        ok "avr: the flash holds the application sent through espota" || fail "avr flash differs"
fi
exit $FAILED
