#!/bin/bash
# peerflash serve over TLS (--tls-cert/--tls-key, libmicrohttpd's GnuTLS
# backend): a test CA and a server certificate for 127.0.0.1 made here with
# Debian's openssl; bad, missing and mismatched files exit 2 naming the file
# before anything listens (expired and not-yet-valid certificates too); curl --cacert uploads to a simulated STM32 over
# https and the flash holds the image; the token is still required; a client
# that does not trust the CA is refused by curl; plain HTTP, and garbage, sent
# to the TLS port fail at once while the daemon keeps serving and flashing.
PF=${1:?usage: $0 path/to/peerflash}
source "$(dirname "$0")/lib.sh"
cd "$DIR" || exit 1
command -v openssl >/dev/null || skip "openssl is not installed (scripts/install-deps.sh)"

# --- the certificates (shared/notes/network/04: a CA, a server cert with SAN IP:127.0.0.1)
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=peerflash test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" >gen.log 2>&1 &&
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=127.0.0.1" >>gen.log 2>&1 &&
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' >ext.cnf &&
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 \
        -extfile ext.cnf >>gen.log 2>&1 &&
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.key >>gen.log 2>&1 &&
    openssl pkey -in server.key -aes256 -passout pass:secret -out locked.key >>gen.log 2>&1 &&
    openssl x509 -in server.crt -outform der -out server.der >>gen.log 2>&1 ||
    { cat gen.log; die "openssl could not make the test certificates"; }
chmod 600 ./*.key
echo "a-long-enough-token" >tok
chmod 600 tok
echo "not a certificate" >junk.pem

# --- start-up errors: exit 2 (1 for a library without TLS), the file named, nothing listens
expect() { # STATUS REGEX -- ARGS...
    local want=$1 re=$2
    shift 3
    timeout 20 "$PF" serve --listen 127.0.0.1:0 --target stm32 --port /dev/null "$@" >out 2>&1
    local got=$?
    if [ $got -eq "$want" ] && grep -qE -- "$re" out && ! grep -q "ready" out; then
        ok "$* -> $want: $(head -1 out)"
    else
        fail "$*: exit $got, expected $want /$re/: $(head -3 out)"
    fi
}
expect 2 "--tls-cert needs --tls-key" -- --tls-cert server.crt
expect 2 "--tls-key needs --tls-cert" -- --tls-key server.key
expect 2 "--tls-cert nosuch.crt: No such file" -- --tls-cert nosuch.crt --tls-key server.key
expect 2 "--tls-key nosuch.key: No such file" -- --tls-cert server.crt --tls-key nosuch.key
expect 2 "--tls-cert junk.pem: not a PEM certificate" -- --tls-cert junk.pem --tls-key server.key
expect 2 "--tls-cert server.der: binary data" -- --tls-cert server.der --tls-key server.key
expect 2 "--tls-key server.crt: not an unencrypted PEM private key" -- --tls-cert server.crt --tls-key server.crt
expect 2 "--tls-key locked.key: .*passphrase is not supported" -- --tls-cert server.crt --tls-key locked.key
expect 2 "--tls-key other.key is not the private key of the certificate in --tls-cert server.crt" -- \
    --tls-cert server.crt --tls-key other.key
expect 2 "--tls-key ca.key is not the private key" -- --tls-cert server.crt --tls-key ca.key
: >empty.pem
expect 2 "--tls-cert empty.pem: the file is empty" -- --tls-cert empty.pem --tls-key server.key
# certificates outside their validity period, signed for the server key by `openssl ca` (the
# one openssl 3.0 command that takes explicit dates)
mkdir -p cadb && : >cadb/index.txt && echo 01 >cadb/serial &&
    printf '[ca]\ndefault_ca=c\n[c]\ndatabase=cadb/index.txt\nnew_certs_dir=cadb\nserial=cadb/serial\ndefault_md=sha256\npolicy=p\nunique_subject=no\n[p]\ncommonName=supplied\n' >ca.cnf &&
    openssl ca -batch -config ca.cnf -cert ca.crt -keyfile ca.key -in server.csr -out expired.crt \
        -startdate 20200101000000Z -enddate 20200201000000Z >>gen.log 2>&1 &&
    openssl ca -batch -config ca.cnf -cert ca.crt -keyfile ca.key -in server.csr -out future.crt \
        -startdate 20990101000000Z -enddate 20990201000000Z >>gen.log 2>&1 ||
    { cat gen.log; die "openssl ca could not make the dated certificates"; }
expect 2 "--tls-cert expired.crt expired [0-9]+ days ago: clients would refuse it" -- --tls-cert expired.crt --tls-key server.key
expect 2 "--tls-cert future.crt is not valid yet \(check the clock\)" -- --tls-cert future.crt --tls-key server.key
timeout 20 "$PF" serve --help >out 2>&1
grep -q -- "--tls-cert FILE, --tls-key FILE" out && grep -q "travel in clear" out &&
    ok "--help describes --tls-cert/--tls-key and says plain HTTP travels in clear" || fail "--help: no TLS text"

# --- a daemon on https with a simulated STM32 ----------------------------------
spawn "$PF" sim stm32 --port "$DIR/stm" --flash stm.flash --chip G07xxB --program-us-per-256 0 --erase-ms-per-page 0 2>stm.log
wait_file "$DIR/stm" 20 || die "sim made no pty"
start_serve serve.log --json-log --token-file tok --tls-cert server.crt --tls-key server.key \
    --target stm32 --port "$DIR/stm" --baud 115200 --name bluepill
case "$URL" in https://*) ok "ready line says $URL" ;; *) die "ready line without https: $URL" ;; esac
grep '"event":"ready"' serve.log | grep -q '"tls":true' && ok "ready log line: \"tls\":true" || fail "ready: $(grep ready serve.log)"
AUTH="Authorization: Bearer a-long-enough-token"
TLS=(--cacert ca.crt --max-time 60)

# the token is still required over TLS
code=$(curl -s "${TLS[@]}" -o r401.json -w '%{http_code}' "$URL/api/targets")
[ "$code" = 401 ] && jq_check r401.json 'j["ok"] is False' 'j["exit_code"] == 2' 'j["target"] is None' 'j["command"] is None' &&
    ok "over TLS without the token: 401" || fail "no token over TLS: HTTP $code $(cat r401.json)"
code=$(curl -s "${TLS[@]}" -H "Authorization: Bearer wrong-token-here" -o /dev/null -w '%{http_code}' \
    --data-binary @/dev/null "$URL/api/targets/bluepill/flash")
[ "$code" = 401 ] && ok "over TLS with a wrong token: 401" || fail "wrong token over TLS: HTTP $code"

# upload and flash over https
$PY -c 'import random; r=random.Random(21); open("fw.bin","wb").write(bytes(r.getrandbits(8) for _ in range(20000)))'
flash_ok() { # NAME: uploads fw.bin over https, checks the answer and the simulated flash
    local code
    code=$(curl -s "${TLS[@]}" -H "$AUTH" -o "r-$1.json" -w '%{http_code}' --data-binary @fw.bin \
        "$URL/api/targets/bluepill/flash?address=0x08000000")
    [ "$code" = 200 ] && jq_check "r-$1.json" 'j["ok"] is True' 'j["verified"] is True' 'j["written_bytes"] == 20000' &&
        $PY -c 'import sys; d=open("stm.flash","rb").read(); i=open("fw.bin","rb").read(); sys.exit(d[:len(i)] != i)'
}
flash_ok first && ok "curl --cacert over https: uploaded, written, verified, the flash holds the image" ||
    fail "flash over https: HTTP $(cat r-first.json)"
grep '"event":"job"' serve.log | grep -q 'started from https 127.0.0.1' && ok "the log names the client as https" ||
    fail "job log line: $(grep '"event":"job"' serve.log | tail -1)"
code=$(curl -s "${TLS[@]}" -o page.html -w '%{http_code}' "$URL/")
[ "$code" = 200 ] && grep -qi "<html" page.html && ok "the upload page over https" || fail "page over https: $code"
# the event stream over TLS: the hello event arrives
curl -s "${TLS[@]}" --max-time 3 -H "$AUTH" -N "$URL/api/targets/bluepill/events" >events.txt 2>/dev/null
grep -q "^event: target" events.txt && ok "the event stream over https" || fail "events over https: $(head -c 300 events.txt)"

# a client without our CA: curl refuses the certificate (exit 60)
curl -s --max-time 20 -H "$AUTH" "$URL/api/targets" >/dev/null 2>&1
rc=$?
[ $rc = 60 ] && ok "curl without --cacert refuses the certificate (rc 60)" || fail "no --cacert: curl rc $rc"

# plain HTTP to the TLS port: fails at once, no hang
PLAIN=${URL/https:/http:}
t0=$(date +%s)
curl -s --max-time 20 -H "$AUTH" -o plain.out "$PLAIN/api/targets"
rc=$?
[ $rc != 0 ] && [ $rc != 28 ] && [ $(($(date +%s) - t0)) -lt 10 ] && ! grep -qs '"targets"' plain.out &&
    ok "plain http:// to the TLS port fails at once (curl rc $rc), nothing served in clear" ||
    fail "plain http to TLS port: curl rc $rc after $(($(date +%s) - t0)) s: $(head -c 200 plain.out)"
# garbage, and a half handshake that goes away
PORT=${URL##*:}
$PY - "$PORT" <<'PY' && ok "garbage and a cut handshake on the TLS port: closed by the daemon" || fail "garbage client"
import random, socket, sys
port = int(sys.argv[1])
r = random.Random(23)
noise = lambda n: bytes(r.getrandbits(8) for _ in range(n))
# seeded; the garbage starts with a byte that is no TLS record type (0x14..0x17), so the
# daemon's TLS layer refuses it at once (a random first byte of 0x14..0x17 made a record header
# that announced up to 64 KiB and waited for the rest until --idle-timeout: once in about 60 runs;
# checked: 17 03 03 40 00 then 2995 bytes is held 25 s and more, 00 03 01 ... is closed at once)
for payload in (b"\x00" + noise(2999), b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + noise(40), b"GET / HTTP/1.0\r\n\r\n"):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(payload)
    if payload.startswith(b"\x16"):
        s.close()  # a client hello cut short: we go away
        continue
    s.settimeout(20)
    try:
        while s.recv(4096):  # whatever comes (a TLS alert), until the daemon closes
            pass
    except ConnectionResetError:
        pass
    s.close()
PY
kill -0 "$SERVE_PID" 2>/dev/null && ok "the daemon is still running" || die "the daemon died"
grep '"event":"http"' serve.log | head -2 | sed 's/^/  log: /'

# and it still flashes correctly over https afterwards
$PY -c 'import random; r=random.Random(22); open("fw.bin","wb").write(bytes(r.getrandbits(8) for _ in range(20000)))'
flash_ok second && ok "after the bad clients: a second upload over https flashed and verified" ||
    fail "second flash over https: $(cat r-second.json)"
code=$(curl -s "${TLS[@]}" -H "$AUTH" -o st.json -w '%{http_code}' "$URL/api/targets/bluepill")
[ "$code" = 200 ] && jq_check st.json 'j["jobs_ok"] == 2' 'j["jobs_failed"] == 0' &&
    ok "two jobs, both ok: the bad clients never reached the target" || fail "state: $(cat st.json)"

kill -TERM "$SERVE_PID"
wait "$SERVE_PID"
rc=$?
[ $rc = 0 ] && ok "SIGTERM: exit 0" || fail "daemon exit $rc"
exit $FAILED
