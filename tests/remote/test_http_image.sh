#!/bin/bash
# IMAGE as an http:// or https:// URL, served by Debian's nginx started here
# on 127.0.0.1 (plain, and TLS with a test CA made here by openssl), into a
# simulated STM32: format detection as for files, progress, redirects, a
# connection cut at half way (resumed with a Range request), a 404, a wrong
# Content-Length, a slow server (timeout), the size limit, an unreachable
# server, and TLS without the test CA. Every failure must be exit 3 (the
# image could not be had) with the port never opened: the failing runs name
# a port nobody listens on, which would be exit 4 had it been tried.
PF=${1:?usage: $0 path/to/peerflash}
source "$(dirname "$0")/lib.sh"
command -v nginx >/dev/null || skip "nginx not installed (scripts/deps/remote.txt)"
command -v openssl >/dev/null || skip "openssl not installed"
command -v curl >/dev/null || skip "curl not installed"
W=$DIR/nginx
mkdir -p "$W/conf" "$W/www" "$W/cut" "$W/tls" "$W/logs" "$W/tmp"

# images: 16000 random bytes as raw binary and as Intel HEX at 0x08000000
head -c 16000 /dev/urandom >"$W/www/fw.bin"
objcopy -I binary -O ihex --change-addresses 0x08000000 "$W/www/fw.bin" "$W/www/fw.hex" || die "objcopy"
head -c 2000000 /dev/urandom >"$W/www/big.bin"
# the cut copies: same bytes and time as the originals (so the ETag matches),
# truncated to half once nginx has cached their size (see below)
cp -p "$W/www/fw.bin" "$W/cut/fw.bin"
cp -p "$W/www/fw.hex" "$W/cut/fw.hex"

# test CA and a server certificate for 127.0.0.1 (shared/notes/network/04-nginx-range-tls-cut.md)
(
    cd "$W/tls" || exit 1
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=peerflash test CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" &&
        openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" &&
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' >ext.cnf &&
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile ext.cnf
) >"$DIR/openssl.log" 2>&1 || die "openssl could not make the test CA"

HP=$(free_port)
SP=$(free_port)
CACHE="open_file_cache max=16 inactive=300s; open_file_cache_valid 300s;"
mkdir -p "$W/conf/server.d" "$W/conf/http.d"
cat >"$W/conf/server.d/cuts.conf" <<CONF
# a Content-Length larger than what is sent: every answer stops at the cut
location /cut/ { alias $W/cut/; $CACHE }
# the first answer stops at half way; a resume (Range) gets the rest
location /resume/ {
    if (\$http_range) { rewrite ^/resume/(.*)\$ /\$1 last; }
    alias $W/cut/; $CACHE
}
location /slow/ { alias $W/www/; limit_rate 4k; }
location = /moved.hex { return 302 /fw.hex; }
CONF
cat >"$W/conf/http.d/tls.conf" <<CONF
server {
    listen 127.0.0.1:$SP ssl;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate $W/tls/server.crt;
    ssl_certificate_key $W/tls/server.key;
    root $W/www;
}
CONF
bash "$(dirname "$0")/../../scripts/nginx-static.sh" conf "$W" "$HP" >"$DIR/nginx-t.log" 2>&1 ||
    { cat "$DIR/nginx-t.log"; die "nginx config"; }
spawn timeout 300 nginx -p "$W" -c conf/nginx.conf -g 'daemon off;'
wait_listen "$HP" 10 && wait_listen "$SP" 10 || die "nginx did not listen"
# nginx caches each cut file's size, then the file is cut to half
for f in fw.bin fw.hex; do
    for loc in cut resume; do curl -s -o /dev/null -I "http://127.0.0.1:$HP/$loc/$f" || die "priming $loc/$f"; done
    truncate -s $(($(stat -c %s "$W/www/$f") / 2)) "$W/cut/$f"
done

rm -f "$DIR/dev"
spawn "$PF" sim stm32 --port "$DIR/dev" --flash "$DIR/flash.bin" --program-us-per-256 1000 --erase-ms-per-page 2 \
    --chip G07xxB 2>"$DIR/sim.log"
wait_file "$DIR/dev" 20 || die "sim stm32 made no pty"
NOPORT="tcp://127.0.0.1:$(free_port)" # nobody listens: opening it would be exit 4
stm() { pf "$@" --target stm32 --baud 115200; }
flashed() { cmp -s -n 16000 "$W/www/fw.bin" "$DIR/flash.bin"; }

# 1. plain HTTP, Intel HEX detected from the content, with download progress
stm flash --port "$DIR/dev" "http://127.0.0.1:$HP/fw.hex"
[ $rc -eq 0 ] && flashed && ok "http:// HEX image flashed" || fail "http:// HEX: exit $rc"
grep -q "^download: .*16000\|^download: .*4[0-9][0-9][0-9][0-9]/" "$DIR/out" && ok "download progress shown" ||
    fail "no download progress"
# 2. TLS with the test CA; a raw binary with @ADDR
stm verify --port "$DIR/dev" --cacert "$W/tls/ca.crt" "https://127.0.0.1:$SP/fw.bin@0x08000000"
[ $rc -eq 0 ] && ok "https:// with --cacert: verify matches" || fail "https:// with --cacert: exit $rc"
# 3. TLS without the CA: refused, nothing opened
stm flash --port "$NOPORT" "https://127.0.0.1:$SP/fw.bin@0x08000000"
[ $rc -eq 3 ] && grep -qi "certificate" "$DIR/out" && ok "https:// without the CA: exit 3, names the certificate" ||
    fail "https:// without the CA: exit $rc"
# 4. a redirect
stm verify --port "$DIR/dev" "http://127.0.0.1:$HP/moved.hex"
[ $rc -eq 0 ] && ok "302 redirect followed" || fail "redirect: exit $rc"
# 5. cut at half way, resumed with a Range request (206 in nginx's log)
stm verify --port "$DIR/dev" "http://127.0.0.1:$HP/resume/fw.bin@0x08000000"
[ $rc -eq 0 ] && ok "cut at half way: resumed, and the image verifies against the target" || fail "resume: exit $rc"
grep -q '"GET /resume/fw.bin HTTP/1.1" 206 8000 ' "$W/logs/access.log" && ok "the rest came as 206 (Range)" ||
    fail "no 206 of the missing 8000 bytes in the access log"
# 6. 404
stm flash --port "$NOPORT" "http://127.0.0.1:$HP/missing.hex"
[ $rc -eq 3 ] && grep -q "HTTP 404" "$DIR/out" && ok "404: exit 3, says HTTP 404" || fail "404: exit $rc"
# 7. a Content-Length the server never fills: resumes make no progress, then a clear error
stm flash --port "$NOPORT" "http://127.0.0.1:$HP/cut/fw.hex"
[ $rc -eq 3 ] && grep -q "broke at byte 22525 of 45051" "$DIR/out" && ok "wrong Content-Length: exit 3" ||
    fail "wrong Content-Length: exit $rc"
# 8. a slow server: the timeout, measured
t0=$(date +%s%N)
stm flash --port "$NOPORT" --http-timeout 2 "http://127.0.0.1:$HP/slow/big.bin@0x08000000"
ms=$((($(date +%s%N) - t0) / 1000000))
[ $rc -eq 3 ] && grep -q "timed out" "$DIR/out" && [ $ms -lt 6000 ] && ok "slow server: timed out after ${ms} ms, exit 3" ||
    fail "slow server: exit $rc after $ms ms"
# 9. the size limit
stm flash --port "$NOPORT" --max-image-size 1M "http://127.0.0.1:$HP/big.bin@0x08000000"
[ $rc -eq 3 ] && grep -q "limit" "$DIR/out" && ok "larger than --max-image-size: exit 3" || fail "size limit: exit $rc"
# 10. nobody listening
stm flash --port "$NOPORT" "http://127.0.0.1:$(free_port)/fw.hex"
[ $rc -eq 3 ] && grep -qi "connect" "$DIR/out" && ok "unreachable server: exit 3" || fail "unreachable: exit $rc"
# 11. --json on a failed download: one object, exit code 3
timeout 30 "$PF" flash --json -q --target stm32 --port "$NOPORT" "http://127.0.0.1:$HP/missing.hex" >"$DIR/json" 2>/dev/null
rc=$?
[ $rc -eq 3 ] && /usr/bin/python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); sys.exit(0 if o.get("exit_code")==3 and "404" in o.get("error","") else 1)' "$DIR/json" &&
    ok "--json: one object with exit_code 3" || fail "--json on a 404: exit $rc: $(cat "$DIR/json")"
# 12. two targets from one URL: downloaded and parsed once (one GET), the
#     worst status (the port nobody listens on) is the exit status
before=$(grep -c '"GET /fw.hex ' "$W/logs/access.log")
stm verify --port "$DIR/dev" --port "$NOPORT" "http://127.0.0.1:$HP/fw.hex"
after=$(grep -c '"GET /fw.hex ' "$W/logs/access.log")
[ $rc -eq 4 ] && [ $((after - before)) -eq 1 ] && ok "two targets, one download, worst status 4" ||
    fail "two targets from a URL: exit $rc, $((after - before)) downloads"
exit $FAILED
