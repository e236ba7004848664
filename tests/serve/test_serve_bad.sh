#!/bin/bash
# peerflash serve under bad requests: no or wrong token, too big, corrupt
# images, uploads dropped halfway, garbage on the socket, idle connections,
# too many connections. Each gets a clear answer (or the connection closed),
# none starts a job or touches the target, the daemon keeps serving, and
# after 200 mixed bad requests it still flashes correctly.
PF=${1:?usage: $0 path/to/peerflash}
source "$(dirname "$0")/lib.sh"
cd "$DIR" || exit 1
SEED=${PF_SEED:-$RANDOM}
echo "seed $SEED (PF_SEED=$SEED to replay)"

spawn "$PF" sim stm32 --port "$DIR/stm" --flash stm.flash --chip G07xxB --program-us-per-256 0 --erase-ms-per-page 0 2>stm.log
wait_file "$DIR/stm" 20 || die "sim made no pty"
umask 077
echo "tok-$SEED-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" >token
TOKEN=$(cat token)
AUTH="Authorization: Bearer $TOKEN"
start_serve serve.log --token-file token --max-body 64K --idle-timeout 2 --max-connections 8 \
    --target stm32 --port "$DIR/stm" --baud 115200 --name board
PORT=${URL##*:}

$PY -c 'import random; r=random.Random('"$SEED"'); open("good.bin","wb").write(bytes(r.getrandbits(8) for _ in range(20000)))'
code=$(curl -s -o first.json -w '%{http_code}' -H "$AUTH" --data-binary @good.bin "$URL/api/targets/board/flash")
[ "$code" = 200 ] && ok "a good upload with the token: 200" || die "first flash: $code $(cat first.json)"
sha_before=$(sha256sum stm.flash | cut -d' ' -f1)

# named cases, with the messages a user reads
code=$(curl -s -o e.json -w '%{http_code}' --data-binary @good.bin "$URL/api/targets/board/flash")
[ "$code" = 401 ] && jq_check e.json '"token" in j["error"]' 'j["ok"] is False' && ok "no token: 401 saying a token is needed" ||
    fail "no token: $code $(cat e.json)"
code=$(curl -s -o e.json -w '%{http_code}' "$URL/api/targets")
[ "$code" = 401 ] && ok "listing needs the token too" || fail "list without token: $code"
code=$(curl -s -o page.html -w '%{http_code}' "$URL/")
[ "$code" = 200 ] && grep -q '<title>peerflash</title>' page.html && ok "the page itself needs no token" || fail "page: $code"
printf ':10000000000102030405060708090A0B0C0D0E0F79\n:00000001FF\n' >bad.hex
code=$(curl -s -o e.json -w '%{http_code}' -H "$AUTH" -F "image=@bad.hex" "$URL/api/targets/board/flash")
[ "$code" = 422 ] && jq_check e.json 'j["exit_code"] == 3' 'j["error"].startswith("bad.hex: line 1: bad checksum")' \
    '"nothing was written" in j["error"]' && ok "corrupt HEX: 422 with the parser's message" || fail "bad hex: $code $(cat e.json)"
head -c 70000 /dev/urandom >big.bin
code=$(curl -s -o e.json -w '%{http_code}' -H "$AUTH" --data-binary @big.bin "$URL/api/targets/board/flash")
[ "$code" = 413 ] && jq_check e.json '"limit of 65536 bytes" in j["error"]' && ok "too big: 413 naming the limit" ||
    fail "too big: $code $(cat e.json)"
code=$(curl -s -o e.json -w '%{http_code}' -H "$AUTH" --data-binary @good.bin "$URL/api/targets/board/flash?address=0x20000000")
[ "$code" = 422 ] && jq_check e.json '"0x20000000" in j["error"]' && ok "address outside flash: 422" ||
    fail "outside: $code $(cat e.json)"

# an idle connection is closed after --idle-timeout (2 s)
$PY - "$PORT" <<'PY' && ok "an idle half-sent request is closed by the idle timeout" || fail "idle connection stayed open"
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET /api/targets HTTP/1.1\r\nHost: x\r\n")  # headers never finished
t0 = time.time()
try:
    data = s.recv(100)
except ConnectionResetError:
    data = b""
assert data == b"" and time.time() - t0 < 8, (data, time.time() - t0)
PY

# the connection cap: with 8 held open, a 9th waits unanswered (the daemon
# stops accepting; it sits in the listen queue); it is served once they close
$PY - "$PORT" "$TOKEN" <<'PY' && ok "connection cap: a 9th connection waits while 8 are held, then is served" || fail "connection cap"
import socket, sys, time
port, tok = int(sys.argv[1]), sys.argv[2]
held = []
for _ in range(8):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /api/targets HTTP/1.1\r\nHost: x\r\n")
    held.append(s)
extra = socket.create_connection(("127.0.0.1", port), timeout=1)
extra.sendall(b"GET /api/targets HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer " + tok.encode() + b"\r\n\r\n")
try:
    early = extra.recv(100)
except socket.timeout:
    early = None
assert early is None, early  # not served while the cap is reached
for s in held:
    s.close()
extra.settimeout(10)
got = extra.recv(100)
assert got.startswith(b"HTTP/1.1 200"), got
PY

# 200 mixed bad requests
timeout 200 $PY "$(dirname "$0")/bad_requests.py" "$PORT" "$TOKEN" board "$SEED" 200 >bad.txt 2>&1
rc=$?
cat bad.txt | tail -n 3
[ $rc -eq 0 ] && ok "200 mixed bad requests: every answer as expected" || fail "bad requests: $(grep UNEXPECTED bad.txt | head -5)"
kill -0 $SERVE_PID 2>/dev/null && ok "the daemon is still running" || die "the daemon died: $(tail -5 serve.log)"
[ "$(sha256sum stm.flash | cut -d' ' -f1)" = "$sha_before" ] && ok "the target's flash was never touched" ||
    fail "the flash changed during bad requests"
curl -s -H "$AUTH" "$URL/api/targets/board" >s.json
jq_check s.json 'j["jobs_ok"] == 1' 'j["jobs_failed"] == 0' 'j["state"] == "idle"' &&
    ok "no bad request started a job" || fail "jobs: $(cat s.json)"

# and it still flashes correctly
$PY -c 'import random; r=random.Random('"$SEED"'+1); open("good2.bin","wb").write(bytes(r.getrandbits(8) for _ in range(30000)))'
code=$(curl -s -o last.json -w '%{http_code}' -H "$AUTH" --data-binary @good2.bin "$URL/api/targets/board/flash")
[ "$code" = 200 ] && cmp -s -n 30000 good2.bin stm.flash && ok "after all that, a good upload flashes correctly" ||
    fail "final flash: $code $(cat last.json)"
grep -q "refused: HTTP 401" serve.log && grep -q "ended after .* nothing was written" serve.log &&
    ok "refusals and cut uploads are logged" || fail "log lacks refusals: $(tail -5 serve.log)"
exit $FAILED
