#!/bin/bash
# peerflash update: a signed manifest served by Debian's nginx (started here
# on 127.0.0.1) updates two simulated STM32 boards at once, one of which
# already holds the image and is skipped; a tampered manifest, a manifest
# signed by another key, an image that differs from its manifest hash and a
# chip the manifest does not list never write anything; an agent target
# reports its running version: the same version is skipped, an older one
# refused unless --allow-downgrade.
PF=${1:?usage: $0 path/to/peerflash}
source "$(dirname "$0")/lib.sh"
command -v nginx >/dev/null || skip "nginx not installed (scripts/deps/remote.txt)"
W=$DIR/nginx
mkdir -p "$W/www/fw" "$DIR/boards"
"$PF" keygen -o "$DIR/key.pem" --pub "$DIR/key.der" 2>/dev/null || die "keygen"
"$PF" keygen -o "$DIR/other.pem" 2>/dev/null || die "keygen"

# the images: a raw STM32 binary and two signed agent images
head -c 12000 /dev/urandom >"$W/www/fw/f0.bin"
head -c 20000 /dev/urandom >"$DIR/app.bin"
"$PF" sign --key "$DIR/key.pem" --version 1.1.0 "$DIR/app.bin" "$W/www/fw/app-1.1.0.img" 2>/dev/null || die "sign"
"$PF" sign --key "$DIR/key.pem" --version 1.0.0 "$DIR/app.bin" "$W/www/fw/app-1.0.0.img" 2>/dev/null || die "sign"
entry() { # TARGET CHIP VERSION FILE [ADDRESS]
    printf '{"target": "%s", "chip": "%s", "version": "%s", "size": %s, "sha256": "%s", "url": "fw/%s"%s}' \
        "$1" "$2" "$3" "$(stat -c %s "$W/www/fw/$4")" "$(sha256sum "$W/www/fw/$4" | cut -c1-64)" "$4" \
        "${5:+, \"address\": \"$5\"}"
}
cat >"$DIR/manifest.json" <<EOF
{"manifest": 1, "name": "test fleet", "images": [
 $(entry stm32 STM32G07xxB 2.0.0 f0.bin 0x08000000),
 $(entry stm32 STM32F103xB 2.0.0 f0.bin 0x08000000),
 $(entry agent "" 1.1.0 app-1.1.0.img)
]}
EOF
# sign --manifest checks the local images named by relative URLs
cp "$DIR/manifest.json" "$W/www/manifest.json"
"$PF" sign --manifest --key "$DIR/key.pem" "$W/www/manifest.json" "$W/www/signed.json" 2>"$DIR/out" ||
    die "sign --manifest: $(cat "$DIR/out")"
sed 's/"size": 12000/"size": 12001/' "$W/www/manifest.json" >"$W/www/wrong.json"
pf sign --manifest --key "$DIR/key.pem" "$W/www/wrong.json" "$DIR/x.json"
[ $rc -eq 3 ] && grep -q "12000 bytes, the manifest says 12001" "$DIR/out" && ok "sign --manifest checks local image sizes" ||
    fail "sign --manifest with a wrong size: exit $rc"
"$PF" sign --manifest --key "$DIR/other.pem" "$W/www/manifest.json" "$W/www/other.json" 2>/dev/null || die "sign other"
# tampered: the payload's version changed after signing
sed 's/2\.0\.0/2.0.9/' "$W/www/signed.json" >"$W/www/tampered.json"
cmp -s "$W/www/signed.json" "$W/www/tampered.json" && die "tampering changed nothing"
# only for a chip nobody has
sed 's/STM32G07xxB/STM32G03xx/' "$W/www/manifest.json" >"$DIR/nochip.json"
"$PF" sign --manifest --key "$DIR/key.pem" "$DIR/nochip.json" "$W/www/nochip.json" 2>/dev/null || die "sign nochip"
# an older agent image
cat >"$DIR/old.json" <<EOF
{"manifest": 1, "images": [$(entry agent "" 1.0.0 app-1.0.0.img)]}
EOF
cp "$DIR/old.json" "$W/www/old.json"
"$PF" sign --manifest --key "$DIR/key.pem" "$W/www/old.json" "$W/www/old.signed.json" 2>"$DIR/out" ||
    die "sign old: $(cat "$DIR/out")"

HP=$(free_port)
bash "$(dirname "$0")/../../scripts/nginx-static.sh" conf "$W" "$HP" || die "nginx config"
spawn timeout 300 nginx -p "$W" -c conf/nginx.conf -g 'daemon off;'
wait_listen "$HP" 10 || die "nginx did not listen"
URL=http://127.0.0.1:$HP

for b in a b; do
    spawn "$PF" sim stm32 --port "$DIR/boards/$b" --flash "$DIR/flash-$b.bin" --chip G07xxB 2>"$DIR/sim-$b.log"
done
for b in a b; do wait_file "$DIR/boards/$b" 20 || die "sim $b made no pty"; done
# board b already holds the image
pf flash --target stm32 --port "$DIR/boards/b" "$W/www/fw/f0.bin@0x08000000"
[ $rc -eq 0 ] || die "pre-flash of board b: exit $rc"
flash_sum() { sha256sum "$DIR/flash-$1.bin" | cut -c1-64; }
a0=$(flash_sum a)
b0=$(flash_sum b)

# refusals first: nothing may change on either board
pf update --manifest "$URL/tampered.json" --key "$DIR/key.der" --target stm32 --port "$DIR/boards/a"
[ $rc -eq 3 ] && grep -q "changed after signing" "$DIR/out" && ok "tampered manifest refused (exit 3)" ||
    fail "tampered manifest: exit $rc"
pf update --manifest "$URL/other.json" --key "$DIR/key.pem" --target stm32 --port "$DIR/boards/a"
[ $rc -eq 3 ] && grep -q "signed by key" "$DIR/out" && ok "manifest of another key refused" ||
    fail "other key: exit $rc"
pf update --manifest "$URL/nochip.json" --key "$DIR/key.der" --target stm32 --port "$DIR/boards/a"
[ $rc -eq 5 ] && grep -q "no image for stm32 STM32G07xxB" "$DIR/out" && ok "a chip the manifest lacks: exit 5" ||
    fail "no image for the chip: exit $rc"
cp "$W/www/fw/f0.bin" "$DIR/f0.good"
head -c 12000 /dev/urandom >"$W/www/fw/f0.bin" # same size, other bytes
pf update --manifest "$URL/signed.json" --key "$DIR/key.der" --target stm32 --port "$DIR/boards/a"
[ $rc -eq 3 ] && grep -q "SHA-256 differs from the signed manifest" "$DIR/out" &&
    ok "an image that differs from its manifest hash is refused" || fail "changed image: exit $rc"
cp "$DIR/f0.good" "$W/www/fw/f0.bin"
[ "$(flash_sum a)" = "$a0" ] && [ "$(flash_sum b)" = "$b0" ] && ok "nothing written by any refusal" ||
    fail "a refusal wrote to a board"

# both boards at once: a is flashed, b already holds the image
timeout 100 "$PF" update --json --manifest "$URL/signed.json" --key "$DIR/key.der" --target stm32 \
    --port "$DIR/boards/a" --port "$DIR/boards/b" >"$DIR/json" 2>"$DIR/out"
rc=$?
[ $rc -eq 0 ] && ok "update of two boards: exit 0" || fail "update of two boards: exit $rc"
cmp -s -n 12000 "$W/www/fw/f0.bin" "$DIR/flash-a.bin" && ok "board a holds the image" || fail "board a not updated"
[ "$(flash_sum b)" = "$b0" ] && ok "board b untouched" || fail "board b was written"
/usr/bin/python3 - "$DIR/json" "$DIR" <<'PY' && ok "JSON: board a flashed 2.0.0, board b up to date" || fail "JSON: $(cat "$DIR/json")"
import json, sys
o = json.load(open(sys.argv[1]))
t = {e["port"]: e["result"] for e in o["targets"]}
a, b = t[sys.argv[2] + "/boards/a"], t[sys.argv[2] + "/boards/b"]
assert a["update"]["action"] == "flashed" and a["update"]["version"] == "2.0.0" and a["written_bytes"] == 12000, a
assert b["update"]["action"] == "up-to-date" and b["written_bytes"] is None, b
PY
grep -q "already holds this image" "$DIR/out" && ok "says the up-to-date board is skipped" || fail "no skip message"

# the agent reports its running version
spawn "$PF" sim agent --port "$DIR/boards/agent" --flash "$DIR/agent.flash" --key "$DIR/key.pem" 2>"$DIR/agent.log"
wait_file "$DIR/boards/agent" 20 || die "agent sim made no pty"
pf update --manifest "$URL/signed.json" --key "$DIR/key.der" --target agent --port "$DIR/boards/agent"
[ $rc -eq 0 ] && grep -q "1.1.0" "$DIR/out" && ok "agent updated to 1.1.0" || fail "agent update: exit $rc"
pf update --manifest "$URL/signed.json" --key "$DIR/key.der" --target agent --port "$DIR/boards/agent"
[ $rc -eq 0 ] && grep -q "already runs version 1.1.0" "$DIR/out" && ok "the same version is skipped" ||
    fail "same version: exit $rc"
pf update --manifest "$URL/old.signed.json" --key "$DIR/key.der" --target agent --port "$DIR/boards/agent"
[ $rc -eq 5 ] && grep -q "downgrade" "$DIR/out" && ok "an older version is refused (exit 5)" ||
    fail "downgrade: exit $rc"
exit $FAILED
