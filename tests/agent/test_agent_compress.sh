#!/usr/bin/env bash
# `peerflash flash --target agent --compress fast|best|auto` as a user meets it,
# against `peerflash sim agent` on a pty (and through `peerflash wire` for a cut):
#  - a 2^15 agent: best lands (zopfli segments in the log), auto lands;
#  - a 2^12 agent: best falls back to zlib at 12 bits, says so, and lands;
#  - best with a power cut mid-transfer: one flash resumes and lands;
#  - best with the link cut mid-transfer: the next flash resumes and lands;
#  - a delta (patch body through deflate) with best lands;
#  - a bad value exits 2 naming the choices; --help lists the option.
# Deadlines from timeout(1); the simulators are killed at the end.
# usage: test_agent_compress.sh PEERFLASH [ZOPFLI: ON (default) or OFF, the build's PF_ZOPFLI]
set -u
pf=${1:?usage: test_agent_compress.sh PEERFLASH [ZOPFLI]}
case ${2:-ON} in OFF | 0 | FALSE | NO | off | false | no) zopfli=0 ;; *) zopfli=1 ;; esac
tmp=$(mktemp -d /tmp/pf_agent_compress.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }
trap cleanup EXIT
cd "$tmp" || exit 1
fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails + 1)); fi; }

start_sim() { # name [sim options]: a fresh device on pty ./NAME, log NAME.log
    "$pf" sim agent --port "$PWD/$1" --flash "$1.flash" --slot-kib 256 --key key.pem --erase-ms 0 \
        --prog-us-per-kib 0 --log "$1.log" "${@:2}" >"$1.out" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do [ -e "$1" ] && return 0; sleep 0.05; done
    echo "FAIL: simulator $1 did not start"; cat "$1.out"; exit 1
}
flash() { # port out-prefix options... image: the exit status in $rc
    local port=$1 out=$2
    shift 2
    timeout 90 "$pf" flash --target agent --port "$port" --no-run --json -v "$@" >"$out.json" 2>"$out.err"
    rc=$?
}

# firmware-like images (instruction words and literals, as the benchmarks'), ~150 KB: 5 segments of 32 KiB
/usr/bin/python3 - <<'PY'
import random
r = random.Random(7)
words = [b"\x10\xb5\x04\x46", b"\x00\x28\x02\xd0", b"\xfe\xe7", b"\x70\x47", b"\x08\x68\x01\x30",
         b"\xbd\xe8\xf0\x81", b"ldr r0, [pc, #12]", b"\x00\xbf"]
out = bytearray()
while len(out) < 150000:
    out += bytes([r.getrandbits(8)]) if r.random() < 0.2 else r.choice(words)
open("a.bin", "wb").write(out[:150000])
b = bytearray(out[:150000]); b[70000:70024] = bytes(x ^ 0x5A for x in b[70000:70024])
open("b.bin", "wb").write(b)
PY
"$pf" keygen -o key.pem >/dev/null 2>&1 || exit 1
v=1
sign() { "$pf" sign --key key.pem --version "$v.0.0" "$1" "$2" >/dev/null 2>&1; v=$((v + 1)); }
for i in 1 2 3 4 5 6; do sign a.bin "a$i.img"; done
sign b.bin b.img

# a 2^15 agent
start_sim d15 --deflate-bits 15
# usage errors, found before the port is opened (here: one that does not exist)
timeout 30 "$pf" flash --target agent --port "$PWD/no-such-port" --no-run --compress smallest a1.img@0 2>bad.err
rc=$?
check "--compress smallest exits 2 before the port opens (got $rc)" "[ $rc -eq 2 ]"
check "  naming fast, best or auto" "grep -q 'takes fast|best|auto, not .smallest' bad.err"
check "--help lists --compress for the agent" "\"$pf\" flash --help | grep -q -- '--compress fast|best|auto .*agent'"
if [ $zopfli -eq 0 ]; then # built without libzopfli: best is refused, the rest runs
    timeout 30 "$pf" flash --target agent --port "$PWD/d15" --no-run --compress best a1.img@0 2>nz.err
    check "--compress best without zopfli is refused, naming it" "grep -q 'built without it' nz.err"
fi
if [ $zopfli -eq 1 ]; then
    flash "$PWD/d15" best15 --compress best a1.img@0
    check "2^15 agent, --compress best exits 0 (got $rc)" "[ $rc -eq 0 ]"
    check "  verified" "grep -q '\"verified\":true' best15.json"
    check "  zopfli segments in the log" "grep -q 'compressor thread (best): 0 segments by zlib, [1-9][0-9]* by zopfli' best15.err"
    check "  window 15 bits" "grep -q 'deflate (window 15 bits)' best15.err"
fi
flash "$PWD/d15" auto15 --compress auto a2.img@0
check "2^15 agent, --compress auto exits 0 (got $rc)" "[ $rc -eq 0 ]"
check "  verified" "grep -q '\"verified\":true' auto15.json"
check "  through the compressor thread" "grep -q 'compressor thread (auto)' auto15.err"
flash "$PWD/d15" fast15 --compress fast a3.img@0
check "2^15 agent, --compress fast exits 0 (got $rc)" "[ $rc -eq 0 ]"
check "  one zlib stream at 15 bits" "grep -q 'deflate (window 15 bits)' fast15.err && ! grep -q 'compressor thread' fast15.err"

# a 2^12 agent: best falls back to zlib at its window
start_sim d12 --deflate-bits 12
if [ $zopfli -eq 1 ]; then
    flash "$PWD/d12" best12 --compress best a1.img@0
    check "2^12 agent, --compress best exits 0 (got $rc)" "[ $rc -eq 0 ]"
    check "  verified" "grep -q '\"verified\":true' best12.json"
    check "  says it falls back, naming the window" "grep -q 'compress best: the agent inflates with a 12-bit window (4096 B) and zopfli needs 15 bits: zlib at 12 bits' best12.err"
    check "  zlib at 12 bits, no zopfli" "grep -q 'deflate (window 12 bits)' best12.err && ! grep -q 'compressor thread' best12.err"
fi

if [ $zopfli -eq 1 ]; then
    # best, power cut at the 60th flash operation (mid-transfer): the device reboots, one flash resumes and lands
    start_sim dcut --deflate-bits 15 --power-cut 60
    flash "$PWD/dcut" cut --compress best a4.img@0
    check "best with a power cut mid-transfer exits 0 (got $rc)" "[ $rc -eq 0 ]"
    check "  verified" "grep -q '\"verified\":true' cut.json"
    check "  the power was cut" "grep -q 'power cut at flash operation' dcut.log"
    resume=$(grep -o 'resume at [0-9]*' dcut.log | tail -1 | grep -o '[0-9]*$')
    check "  resumed past 0 (at ${resume:-none})" "[ \"${resume:-0}\" -gt 0 ]"
    check "  zopfli segments after the resume" "[ \$(grep -c 'by zopfli' cut.err) -ge 1 ]"

    # best, the link cut at 20000 bytes: that flash fails cleanly, the next one resumes and lands
    start_sim dw --deflate-bits 15
    "$pf" wire --a "$PWD/host" --b "$PWD/dw" --baud 921600 --seed 5 --cut-after 20000 >wire1.log 2>&1 &
    wpid=$!
    pids+=($wpid)
    for _ in $(seq 100); do [ -e host ] && break; sleep 0.05; done
    flash "$PWD/host" wcut1 --baud 921600 --compress best a5.img@0
    check "best, link cut: the first flash fails (got $rc)" "[ $rc -ne 0 ] && grep -q '\"ok\":false' wcut1.json"
    kill $wpid; wait $wpid 2>/dev/null
    rm -f host
    "$pf" wire --a "$PWD/host" --b "$PWD/dw" --baud 921600 --seed 6 >wire2.log 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do [ -e host ] && break; sleep 0.05; done
    flash "$PWD/host" wcut2 --baud 921600 --compress best a5.img@0
    check "  the next one exits 0 (got $rc)" "[ $rc -eq 0 ]"
    resume=$(grep -o 'resume at [0-9]*' dw.log | tail -1 | grep -o '[0-9]*$')
    check "  resumed past 0 (at ${resume:-none})" "[ \"${resume:-0}\" -gt 0 ]"
    check "  zopfli from the resume point" "grep -q 'by zopfli' wcut2.err"

    # delta: the patch body through deflate with best (b is a with 24 bytes changed)
    timeout 90 "$pf" flash --target agent --port "$PWD/d15" --json -v --compress best a6.img@0 >base.json 2>base.err
    rc=$?
    check "delta base flashed and running (got $rc)" "[ $rc -eq 0 ] && grep -q 'image 6.0.0 on trial' d15.log"
    flash "$PWD/d15" delta --compress best --delta-from a6.img b.img@0
    check "delta with best exits 0 (got $rc)" "[ $rc -eq 0 ]"
    check "  verified" "grep -q '\"verified\":true' delta.json"
    check "  sent as a deflated patch" "grep -q '(delta, deflate)' d15.log && grep -q 'agent: delta:' delta.err"
fi
[ $fails -eq 0 ] && { echo "PASS"; rm -rf "$tmp"; exit 0; }
echo "$fails check(s) failed; files kept in $tmp"
exit 1
