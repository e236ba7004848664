#!/usr/bin/env bash
# Our own files are safe: keygen writes the private key for its owner only
# and never over an existing file; sign refuses an image that is signed
# already (signing it again would wrap one image in another).
set -u
pf=$1
. "$(dirname "$0")/lib.sh"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
check() { # check NAME COMMAND...: counts a condition like expect does
    local name=$1
    shift
    if "$@"; then passed=$((passed + 1)); else echo "FAIL: $name" >&2; failed=$((failed + 1)); fi
}

# a permissive umask must not leak the key
(umask 000 && "$pf" keygen -o "$dir/key.pem" --pub "$dir/key.der" >/dev/null 2>&1)
check "keygen exits 0" test -s "$dir/key.pem"
check "private key mode is 0600 (umask 000)" test "$(stat -c %a "$dir/key.pem")" = 600
check "the key file is PEM" grep -q "BEGIN EC PRIVATE KEY" "$dir/key.pem"
cp "$dir/key.pem" "$dir/key.before"
expect 1 "key.pem exists already; refusing to overwrite" -- "$pf" keygen -o "$dir/key.pem"
check "the existing key is untouched" cmp -s "$dir/key.pem" "$dir/key.before"
expect 1 "cannot create .*: No such file" -- "$pf" keygen -o "$dir/no/such/dir/key.pem"

head -c 5000 /dev/urandom >"$dir/app.bin"
expect 0 "signed ECDSA-P256" -- "$pf" sign --key "$dir/key.pem" --version 1.2.3+4 "$dir/app.bin" "$dir/app.img"
expect 3 "app.img is already an MCUboot image .*version 1.2.3\+4.*sign the plain binary" -- \
    "$pf" sign --key "$dir/key.pem" --version 1.2.4 "$dir/app.img" "$dir/twice.img"
check "nothing written for the refused sign" test ! -e "$dir/twice.img"
expect 0 "unsigned \(SHA-256 only\)" -- "$pf" sign --version 2.0.0 "$dir/app.bin" "$dir/plain.img"
expect 3 "already an MCUboot image" -- "$pf" sign --version 2.0.1 "$dir/plain.img" "$dir/again.img"
finish
