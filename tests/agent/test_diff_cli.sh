#!/usr/bin/env bash
# `peerflash diff` and the delta options of `peerflash flash` as a user meets
# them: a patch that checks back, exit codes for bad command lines and files;
# the image cache a flash fills, trimmed to its 32 newest images.
set -u
pf=${1:?usage: test_diff_cli.sh PEERFLASH}
tmp=$(mktemp -d /tmp/pf_diff_cli.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
expect() { # expect STATUS DESCRIPTION CMD...
    local want=$1 what=$2
    shift 2
    "$@" >"$tmp/out" 2>&1
    local st=$?
    if [[ $st -ne $want ]]; then
        echo "FAIL: $what: exit $st, expected $want"; sed 's/^/  /' "$tmp/out"; fails=$((fails + 1))
    else
        echo "ok: $what"
    fi
}
head -c 20000 /dev/urandom >"$tmp/old"
{ head -c 9000 "$tmp/old"; printf 'a changed stretch'; tail -c 10983 "$tmp/old"; } >"$tmp/new"
expect 0 "diff --check" "$pf" diff --check "$tmp/old" "$tmp/new" "$tmp/p"
grep -q "byte for byte" "$tmp/out" || { echo "FAIL: --check did not confirm"; fails=$((fails + 1)); }
size=$(stat -c %s "$tmp/p")
[[ $size -lt 2000 ]] || { echo "FAIL: patch of $size bytes for a 17-byte change"; fails=$((fails + 1)); }
expect 2 "diff with two arguments" "$pf" diff "$tmp/old" "$tmp/new"
expect 2 "diff with an unknown option" "$pf" diff --fast "$tmp/old" "$tmp/new" "$tmp/p"
expect 3 "diff of a missing file" "$pf" diff "$tmp/nope" "$tmp/new" "$tmp/p"
expect 0 "diff --help" "$pf" diff --help
expect 2 "--delta-from for another target" "$pf" flash --target avr --port /dev/null --delta-from "$tmp/old" "$tmp/new@0"
expect 2 "--delta-from with --no-delta" "$pf" flash --target agent --port /dev/null --delta-from "$tmp/old" --no-delta "$tmp/new@0"
expect 2 "--no-delta with verify" "$pf" verify --target agent --port /dev/null --no-delta "$tmp/new@0"
grep -q "diff" <("$pf" --help) || { echo "FAIL: diff not in peerflash --help"; fails=$((fails + 1)); }

# The image cache keeps the 32 most recently written images and nothing else of its folder is touched.
cache="$tmp/cache"
mkdir -p "$cache"
for i in $(seq 40); do
    f="$cache/$(printf '%064x' "$i").img"
    echo old >"$f"
    touch -d "@$((1700000000 + i))" "$f"
done
echo mine >"$cache/notes.txt"
"$pf" keygen -o "$tmp/key.pem" >/dev/null 2>&1
"$pf" sign --key "$tmp/key.pem" --version 1.0.0 "$tmp/old" "$tmp/app.img" >/dev/null 2>&1
"$pf" sim agent --port "$tmp/dev" --flash "$tmp/flash.bin" --key "$tmp/key.pem" --erase-ms 0 --prog-us-per-kib 0 \
    >"$tmp/sim.log" 2>&1 &
sim=$!
for _ in $(seq 100); do [[ -e $tmp/dev ]] && break; sleep 0.05; done
PEERFLASH_CACHE_DIR=$cache expect 0 "flash (adds to the cache)" "$pf" flash --target agent --port "$tmp/dev" --no-run -q "$tmp/app.img@0"
kill $sim; wait $sim 2>/dev/null
n=$(ls "$cache" | grep -c '^[0-9a-f]\{64\}\.img$')
[[ $n -eq 32 ]] || { echo "FAIL: cache holds $n images, expected 32"; fails=$((fails + 1)); }
[[ -e $cache/$(printf '%064x' 9).img || ! -e $cache/$(printf '%064x' 10).img ]] &&
    { echo "FAIL: the cache did not drop exactly the oldest"; fails=$((fails + 1)); }
[[ -e $cache/notes.txt ]] || { echo "FAIL: the cache trim removed a file that is not an image"; fails=$((fails + 1)); }
cmp -s "$tmp/app.img" "$(ls -t "$cache"/*.img | head -1)" || { echo "FAIL: the flashed image is not the newest entry"; fails=$((fails + 1)); }
[[ $fails -eq 0 ]] && echo "all passed"
exit $((fails > 0))
