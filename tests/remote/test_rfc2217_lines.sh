#!/bin/bash
# DTR/RTS (and the frame) over rfc2217://, seen by pyserial's RFC 2217 server
# (serial.rfc2217.PortManager, Debian's python3-serial) around a stand-in
# port on a simulator's pty that records every line change with its time
# (rfc2217_recorder.py). Each driver's reset sequence must arrive in order,
# with its delays between the changes (the client waits for each answer,
# so a delay starts after the line has changed at the server):
#   esp:   DTR off, RTS on (EN low), 100 ms, DTR on, RTS off (IO0 low as EN
#          rises), 50 ms, DTR off (esptool's classic reset)
#   avr:   both released, 100 ms... then both asserted (the Uno's DTR edge)
#   stm32: RTS (BOOT0), DTR (NRST low) 20 ms, DTR off; and the line at 8E1
PF=${1:?usage: $0 path/to/peerflash path/to/avr-build-dir}
AVR_DIR=${2:?usage: $0 path/to/peerflash path/to/avr-build-dir}
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
/usr/bin/python3 -c 'import serial.rfc2217' 2>/dev/null || skip "python3-serial not installed (scripts/deps/remote.txt)"

start_sim() {
    [ -n "${SIM:-}" ] && stop "$SIM"
    rm -f "$DIR/dev"
    local kind=$1
    shift
    spawn "$PF" sim "$kind" --port "$DIR/dev" "$@" 2>"$DIR/sim.log"
    SIM=$!
    wait_file "$DIR/dev" 20 || die "sim $kind made no pty"
}
start_recorder() {
    [ -n "${REC:-}" ] && stop "$REC"
    REC_PORT=$(free_port)
    spawn timeout 120 /usr/bin/python3 "$HERE/rfc2217_recorder.py" "$REC_PORT" "$DIR/dev" >"$DIR/events" 2>"$DIR/recorder.log"
    REC=$!
    wait_listen "$REC_PORT" 10 || die "the recorder did not listen"
}
# lines: the dtr/rts events after our first line setting, as "dtr0 rts1 ..."
lines() { awk '/line 115200/{on=1} on && ($3=="dtr"||$3=="rts"){printf "%s%s ", $3, $4}' "$DIR/events"; }
# gap A B: seconds from the first event "A" to the next "B" after it (from our first line setting on)
gap() {
    awk -v a="$1" -v b="$2" '/line 115200/{on=1} on { e=$3 $4; if (!t && e==a) t=$2; else if (t && e==b) { printf "%.3f", $2-t; exit } }' \
        "$DIR/events"
}
ge() { awk -v x="$1" -v y="$2" 'BEGIN{exit !(x+0 >= y+0)}'; }

# ESP32: esptool's classic reset into the ROM loader
start_sim esp32 --flash "$DIR/esp-flash.bin"
start_recorder
head -c 6000 /dev/urandom >"$DIR/app.bin"
pf flash --target esp --port "rfc2217://127.0.0.1:$REC_PORT" "$DIR/app.bin@0x10000"
[ $rc -eq 0 ] && ok "esp flash through pyserial's RFC 2217 server" || fail "esp flash: exit $rc"
seq=$(lines)
case "$seq" in
"dtr0 rts1 dtr1 rts0 dtr0 "*) ok "esp reset: $seq" ;;
*) fail "esp reset sequence: '$seq'" ;;
esac
g1=$(gap rts1 dtr1)
g2=$(gap rts0 dtr0)
ge "$g1" 0.095 && ge "$g2" 0.045 && ok "esp reset delays ${g1}s, ${g2}s after the lines changed" ||
    fail "esp reset delays ${g1}s (>= 0.1), ${g2}s (>= 0.05)"

# AVR: the Uno's auto-reset (the real Optiboot behind it)
start_sim avr
start_recorder
pf flash --target avr --port "rfc2217://127.0.0.1:$REC_PORT" "$AVR_DIR/app_small.hex"
[ $rc -eq 0 ] && ok "avr flash through pyserial's RFC 2217 server" || fail "avr flash: exit $rc"
seq=$(lines)
case "$seq" in
"dtr0 rts0 dtr1 rts1 "*) ok "avr reset: $seq" ;;
*) fail "avr reset sequence: '$seq'" ;;
esac
g=$(gap rts0 dtr1)
ge "$g" 0.045 && ok "avr lines released ${g}s before the edge" || fail "avr release time ${g}s"

# STM32: BOOT0/NRST sequence and the 8E1 frame
start_sim stm32 --flash "$DIR/stm32-flash.bin" --chip F103xB
start_recorder
pf info --target stm32 --baud 115200 --port "rfc2217://127.0.0.1:$REC_PORT"
[ $rc -eq 0 ] && ok "stm32 info through pyserial's RFC 2217 server" || fail "stm32 info: exit $rc"
grep -q "line 115200,8E1" "$DIR/events" && ok "stm32 frame 8E1 reached the server" || fail "no 8E1 line setting"
seq=$(lines)
case "$seq" in
"rts1 dtr1 dtr0 "*) ok "stm32 reset: $seq" ;;
*) fail "stm32 reset sequence: '$seq'" ;;
esac
g=$(gap dtr1 dtr0)
ge "$g" 0.018 && ok "stm32 NRST held ${g}s" || fail "stm32 NRST held ${g}s (>= 0.02)"
exit $FAILED
