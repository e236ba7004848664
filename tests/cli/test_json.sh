#!/usr/bin/env bash
# --json keeps its promise (issue 10): one object with every documented field
# for usage errors, failures, success and Ctrl-C/SIGTERM (a signal sent once
# the write phase has begun, no sleeps); honest counters after AVR
# --read-compare and after an agent resume; part numbers and --baud for AVR.
set -u
pf=$1
. "$(dirname "$0")/lib.sh"
dir=$(mktemp -d /tmp/pf-json-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$dir"; }
trap cleanup EXIT
wait_for() { for _ in $(seq 200); do [ -e "$1" ] && return 0; sleep 0.05; done; echo "FAIL: $1 did not appear"; exit 1; }
py=/usr/bin/python3

# check_json FILE EXPR...: the file holds exactly one JSON object with every
# documented field, and each python expression over it (as j) is true
check_json() {
    local file=$1
    shift
    if "$py" - "$file" "$@" <<'PY'; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
import json, sys
text = open(sys.argv[1]).read()
lines = [l for l in text.splitlines() if l.strip()]
if len(lines) != 1:
    print("FAIL: expected one JSON line, got:", text, file=sys.stderr); sys.exit(1)
j = json.loads(lines[0])
fields = ["schema", "command", "ok", "exit_code", "error", "interrupted", "stopped_at", "target", "port",
          "chip", "chip_id", "bootloader", "flash_start", "flash_size", "image_bytes", "written_bytes",
          "skipped_bytes", "erased_bytes", "resumed_from", "wire_bytes", "runs", "verified", "verify_method",
          "read_bytes", "failed_op", "target_code", "target_command", "hints", "details", "seconds"]
missing = [f for f in fields if f not in j]
extra = [f for f in j if f not in fields]
if missing or extra or j["schema"] != 1:
    print("FAIL: fields missing", missing, "undocumented", extra, "in", j, file=sys.stderr); sys.exit(1)
for e in sys.argv[2:]:
    if not eval(e):
        print("FAIL:", e, "is false for", j, file=sys.stderr); sys.exit(1)
PY
}

# usage errors: the object too, exit 2, naming the option
"$pf" flash --json --target stm32 --port /dev/null --bogus x.bin >"$dir/o" 2>/dev/null
check_json "$dir/o" 'j["exit_code"] == 2' 'j["ok"] is False' '"--bogus" in j["error"]' 'j["chip"] is None'
"$pf" info --json --target stm32 --port /dev/null --chip F103 >"$dir/o" 2>/dev/null
check_json "$dir/o" 'j["exit_code"] == 2' '"STM32F103xB" in j["error"] and "ambiguous" in j["error"]'
"$pf" info --json --target avr --port /dev/null --chip atmega329 >"$dir/o" 2>/dev/null
check_json "$dir/o" 'j["exit_code"] == 2' '"close matches" in j["error"] and "ATmega328P" in j["error"]'
"$pf" flash --json --target esp >"$dir/o" 2>/dev/null
check_json "$dir/o" 'j["exit_code"] == 2' 'j["port"] is None' 'j["failed_op"] is None' 'j["hints"] is None'
# options validated before anything is opened: the port does not exist, yet exit 2
expect 2 "--reset rts,foo: for stm32" -- "$pf" info --target stm32 --port /no/such --reset rts,foo
expect 2 "--reset tight: for avr give auto" -- "$pf" info --target avr --port /no/such --reset tight
expect 2 "--baud 250000: the STM32 bootloader runs at 1200..115200" -- "$pf" info --target stm32 --port /no/such --baud 250000
expect 2 "--baud 12345: a serial port here runs at" -- "$pf" info --target avr --port /no/such --baud 12345
expect 2 "--chip ESP32-S is ambiguous for --target esp: it could be ESP32-S2, ESP32-S3" -- "$pf" info --target esp --port /no/such --chip ESP32-S
expect 2 "--chip atmega999 is not a chip of --target avr; close matches: ATmega8" -- "$pf" info --target avr --port /no/such --chip atmega999
printf '\x12\x34\x56\x78' >"$dir/raw.bin"
expect 2 "raw.bin@0x7fff: load address 0x00007fff is outside the flash of any stm32" -- "$pf" flash --target stm32 --port /no/such "$dir/raw.bin@0x7fff"
# part numbers reach the table (then the missing port is the only problem: exit 4)
expect 4 "cannot open /no/such" -- "$pf" info --target stm32 --port /no/such --chip STM32F103C8T6
expect 4 "cannot open /no/such" -- "$pf" info --target avr --port /no/such --chip ATmega328P-PU
expect 4 "cannot open /no/such" -- "$pf" info --target esp --port /no/such --chip ESP32-WROOM-32

# a part number against a simulated STM32: the driver accepts the table's chip
head -c 65536 /dev/urandom >"$dir/fw.bin"
"$pf" sim stm32 --port "$dir/stm" --flash "$dir/stm.flash" --chip F103xB --program-us-per-256 20000 2>"$dir/stm.log" &
pids+=($!)
wait_for "$dir/stm"
"$pf" info --json --target stm32 --port "$dir/stm" --chip STM32F103C8T6 >"$dir/o" 2>/dev/null
check_json "$dir/o" 'j["exit_code"] == 0' 'j["chip"] == "STM32F103xB"' 'j["chip_id"] == 0x410' 'j["written_bytes"] is None' \
    'j["details"]["rdp"].startswith("level 0 (not protected), RDP byte 0xa5")' 'j["details"]["wrp"].startswith("none")' \
    'j["details"]["option_bytes"] == "a55aff00ff00ff00ff00ff00ff00ff00 at 0x1ffff800"'
# info: protection read from the option bytes (G0 layout), or found from the NACK of Read Memory
for flags in --wrp --rdp; do
    rm -f "$dir/g0"
    "$pf" sim stm32 --port "$dir/g0" --flash "$dir/g0.flash" --chip G07xxB $flags 2>/dev/null &
    g0=$!
    wait_for "$dir/g0"
    "$pf" info --json --target stm32 --port "$dir/g0" >"$dir/o" 2>/dev/null
    if [[ $flags == --wrp ]]; then
        check_json "$dir/o" 'j["exit_code"] == 0' 'j["details"]["wrp"].startswith("pages 0..127")' \
            'j["details"]["rdp"].startswith("level 0")' 'j["failed_op"] is None' 'j["hints"] is None'
        # the target's refusal as data: the operation, the NACK (0x1F), the
        # command it answered, and the hint that an option removes it
        "$pf" flash --json --target stm32 --port "$dir/g0" "$dir/raw.bin@0x08000000" >"$dir/o" 2>/dev/null
        check_json "$dir/o" 'j["exit_code"] == 5' 'j["failed_op"] in ("erase", "write")' 'j["target_code"] == 0x1F' \
            'j["target_command"] in (0x31, 0x43, 0x44)' '"unprotect" in j["hints"]'
    fi
    kill $g0; wait $g0 2>/dev/null
    if [[ $flags == --wrp ]]; then
        :
    else
        check_json "$dir/o" 'j["exit_code"] == 0' 'j["details"]["rdp"].startswith("level 1 or 2 (read-protected")'
    fi
done

# --target auto: the STM32 ROM answers the first probe
"$pf" info --json --target auto --port "$dir/stm" >"$dir/o" 2>"$dir/e"
check_json "$dir/o" 'j["exit_code"] == 0' 'j["target"] == "stm32"' 'j["chip"] == "STM32F103xB"'
grep -q "auto: found the stm32 bootloader" "$dir/e" && passed=$((passed + 1)) || { echo "FAIL: auto: $(cat "$dir/e")" >&2; failed=$((failed + 1)); }
# a chip that only one target knows names the target: nothing is probed
"$pf" info --json --target auto --chip ATmega328P-PU --port /no/such >"$dir/o" 2>"$dir/e"
check_json "$dir/o" 'j["exit_code"] == 4' 'j["target"] == "avr"'
expect 2 "--target auto cannot take target-specific options" -- "$pf" flash --target auto --read-compare --port /no/such x.hex

# interrupted: a signal once the write phase has begun (read from stderr)
interrupt() { # SIGNAL
    mkfifo "$dir/err.$1"
    "$pf" flash --json --target stm32 --port "$dir/stm" "$dir/fw.bin@0x08000000" >"$dir/o" 2>"$dir/err.$1" &
    local fpid=$! sent= line
    while read -r line; do
        echo "$line" >>"$dir/stderr.$1"
        if [[ -z $sent && $line == write:\ [1-9]* ]]; then kill -"$1" $fpid; sent=1; fi
    done <"$dir/err.$1"
    wait $fpid
}
interrupt INT
rc=$?
[[ $rc -eq 130 ]] && passed=$((passed + 1)) || { echo "FAIL: SIGINT: exit $rc, expected 130" >&2; failed=$((failed + 1)); }
check_json "$dir/o" 'j["exit_code"] == 130' 'j["interrupted"] == "SIGINT"' 'j["stopped_at"]["phase"] == "write"' \
    '0 < j["stopped_at"]["done"] < j["stopped_at"]["total"] == 65536' '"interrupted by SIGINT during write" in j["error"]' \
    'j["chip"] == "STM32F103xB"' 'j["image_bytes"] == 65536'
grep -q "interrupted by SIGINT during write at" "$dir/stderr.INT" && passed=$((passed + 1)) ||
    { echo "FAIL: no interruption message on stderr" >&2; failed=$((failed + 1)); }
interrupt TERM
rc=$?
[[ $rc -eq 143 ]] && passed=$((passed + 1)) || { echo "FAIL: SIGTERM: exit $rc, expected 143" >&2; failed=$((failed + 1)); }
check_json "$dir/o" 'j["exit_code"] == 143' 'j["interrupted"] == "SIGTERM"'
# the simulated chip is still in its bootloader and answers: nothing was left half-sent
"$pf" info --json --target stm32 --port "$dir/stm" >"$dir/o" 2>/dev/null
check_json "$dir/o" 'j["exit_code"] == 0'

# AVR: --baud is the sync rate (as for every target), and --read-compare counts
# what it did not send
if "$pf" sim avr --help 2>&1 | grep -q optiboot; then
    head -c 8192 /dev/urandom >"$dir/app.bin"
    "$pf" sim avr --port "$dir/avr" --page-write-ms 0 --baud 57600 2>"$dir/avr.log" &
    pids+=($!)
    wait_for "$dir/avr"
    "$pf" flash --json --target avr --port "$dir/avr" --baud 57600 "$dir/app.bin@0" >"$dir/o" 2>"$dir/e"
    check_json "$dir/o" 'j["exit_code"] == 0' 'j["written_bytes"] == 8192' 'j["skipped_bytes"] == 0'
    "$pf" flash --json --target avr --port "$dir/avr" --baud 57600 --read-compare "$dir/app.bin@0" >"$dir/o" 2>"$dir/e"
    check_json "$dir/o" 'j["exit_code"] == 0' 'j["written_bytes"] == 0' 'j["skipped_bytes"] == 8192'
    grep -q "wrote 0 bytes, skipped 8192 unchanged" "$dir/e" && passed=$((passed + 1)) ||
        { echo "FAIL: read-compare summary: $(cat "$dir/e")" >&2; failed=$((failed + 1)); }
    # --target auto: Optiboot is probed last, after stm32, esp and the agent
    # failed (each probe reopens the port, which resets the simulated Uno)
    "$pf" info --json --target auto --port "$dir/avr" --baud 57600 >"$dir/o" 2>"$dir/e"
    check_json "$dir/o" 'j["exit_code"] == 0' 'j["target"] == "avr"' 'j["chip"] == "ATmega328P"'
    grep -q "auto: found the avr bootloader (ATmega328P); no answer from stm32, esp, agent" "$dir/e" &&
        passed=$((passed + 1)) || { echo "FAIL: auto avr: $(cat "$dir/e")" >&2; failed=$((failed + 1)); }
    "$pf" info --json --target avr --port "$dir/avr" --baud 57600 >"$dir/o" 2>"$dir/e"
    check_json "$dir/o" 'j["exit_code"] == 0' 'j["details"]["fuses"].startswith("not readable through Optiboot")' \
        'j["chip_id"] == 0x1E950F'
fi

# agent: a transfer cut at 30000 bytes on the wire, then run again: the counters
# say what the second run sent, the summary says it resumed and where, and
# install/trial/confirm show as phases
"$pf" keygen -o "$dir/key.pem" --pub "$dir/key.der" >/dev/null 2>&1
head -c 60000 /dev/urandom >"$dir/agent-app.bin"
"$pf" sign --key "$dir/key.pem" --version 1.1.0 "$dir/agent-app.bin" "$dir/agent-app.img" >/dev/null 2>&1
"$pf" sim agent --port "$dir/adev" --flash "$dir/agent.flash" --key "$dir/key.pem" 2>"$dir/asim.log" &
pids+=($!)
wait_for "$dir/adev"
start_wire() { # LOG [options]
    local log=$1
    shift
    "$pf" wire --a "$dir/ahost" --b "$dir/adev" --baud 115200 "$@" 2>"$log" &
    wire_pid=$!
    for _ in $(seq 200); do grep -q ready "$log" 2>/dev/null && return 0; sleep 0.05; done
    echo "FAIL: wire not ready" >&2
    exit 1
}
start_wire "$dir/w1.log" --cut-after 30000 --cut-mode close
"$pf" flash --json --target agent --port "$dir/ahost" "$dir/agent-app.img@0" >"$dir/o" 2>"$dir/e"
check_json "$dir/o" 'j["exit_code"] == 4' 'j["stopped_at"]["phase"] == "write"' '0 < j["stopped_at"]["done"] < j["image_bytes"]' \
    '"4294967295" not in j["error"]'
wait $wire_pid
start_wire "$dir/w2.log"
pids+=($wire_pid)
"$pf" flash --json --target agent --port "$dir/ahost" "$dir/agent-app.img@0" >"$dir/o" 2>"$dir/e"
check_json "$dir/o" 'j["exit_code"] == 0' 'j["resumed_from"] > 0' \
    'j["written_bytes"] == j["image_bytes"] - j["resumed_from"]' 'j["skipped_bytes"] == j["resumed_from"]' \
    '0 < j["wire_bytes"]'
resumed=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["resumed_from"])' "$dir/o")
for line in "wrote [0-9]+ bytes \(resumed at $resumed, where the cut transfer had stopped; sent [0-9]+ bytes" \
    "^install: the bootloader checks" "^trial: the new image runs on trial" "^confirm: the new image is permanent" \
    "^write: [1-9][0-9]*/[0-9]+ bytes \([1-8]0%\)"; do
    grep -qE "$line" "$dir/e" && passed=$((passed + 1)) || { echo "FAIL: agent output lacks /$line/: $(cat "$dir/e")" >&2; failed=$((failed + 1)); }
done
grep -q "check: 0/0" "$dir/e" && { echo "FAIL: a stray check: 0/0 line" >&2; failed=$((failed + 1)); }
finish
