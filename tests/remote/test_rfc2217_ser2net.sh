#!/bin/bash
# rfc2217:// against Debian's ser2net (telnet(rfc2217) accepter) started here
# on 127.0.0.1, in front of simulated targets' ptys: data (images full of
# 0xFF bytes, which telnet escapes), line rate (ser2net's port starts at 9600;
# the simulators read garbage unless our SET-BAUDRATE reached the pty) and
# frame (ser2net answers SET-PARITY; a pty cannot show parity, so the value
# in its answer is what we check, and the recorder test sees the 8E1).
# DTR/RTS cannot be shown through ser2net on a pty (shared/notes/network/
# 02-ser2net-rfc2217-pty.md): test_rfc2217_lines.sh proves them.
PF=${1:?usage: $0 path/to/peerflash path/to/avr-build-dir}
AVR_DIR=${2:?usage: $0 path/to/peerflash path/to/avr-build-dir}
source "$(dirname "$0")/lib.sh"
command -v ser2net >/dev/null || skip "ser2net not installed (scripts/deps/remote.txt)"

# start_sim KIND ARGS...: a simulator on $DIR/dev
start_sim() {
    [ -n "${SIM:-}" ] && stop "$SIM"
    rm -f "$DIR/dev"
    local kind=$1
    shift
    spawn "$PF" sim "$kind" --port "$DIR/dev" "$@" 2>"$DIR/sim.log"
    SIM=$!
    wait_file "$DIR/dev" 20 || die "sim $kind made no pty"
}
# start_ser2net ACCEPTER ("telnet(rfc2217),tcp" or raw "tcp"): ser2net on a fresh port ($S2N_PORT) in front of $DIR/dev at 9600n81
start_ser2net() {
    [ -n "${S2N:-}" ] && stop "$S2N"
    S2N_PORT=$(free_port)
    local dev
    dev=$(readlink -f "$DIR/dev")
    spawn timeout 120 ser2net -n -d -u -Y "connection: &c#  accepter: $1,127.0.0.1,$S2N_PORT#  connector: serialdev,$dev,9600n81,local" \
        >"$DIR/ser2net.log" 2>&1
    S2N=$!
    wait_listen "$S2N_PORT" 10 || die "ser2net did not listen on $S2N_PORT"
}

# 1. AVR: the real Optiboot in simavr, 115200 8N1, its auto-reset by the pty open
start_sim avr --flash-dump "$DIR/avr-flash.bin"
start_ser2net "telnet(rfc2217),tcp"
pf flash --target avr --port "rfc2217://127.0.0.1:$S2N_PORT" "$AVR_DIR/app_small.hex"
[ $rc -eq 0 ] && ok "avr flash through ser2net (rfc2217)" || fail "avr flash through ser2net: exit $rc"
grep -q "verified" "$DIR/out" || fail "avr flash was not verified"
grep -q "RX overrun" "$DIR/sim.log" && grep -v " 0 RX overruns" "$DIR/sim.log" | grep -q overrun && fail "avr sim overran"

# 2. the same chain without RFC 2217 (ser2net's raw accepter, tcp://): the
#    line stays at ser2net's 9600 while Optiboot talks at 115200, so nothing
#    answers. This shows that the rate change in 1. is what made it work.
start_ser2net "tcp"
pf info --target avr --port "tcp://127.0.0.1:$S2N_PORT"
[ $rc -eq 4 ] && ok "raw tcp:// at ser2net's 9600: no answer (exit 4)" || fail "raw tcp:// at 9600: exit $rc, expected 4"
#    and rfc2217:// to a server that does not speak it: a clear link error
pf info --target avr --port "rfc2217://127.0.0.1:$S2N_PORT"
[ $rc -eq 4 ] && grep -q "not an RFC 2217 server" "$DIR/out" && ok "rfc2217:// to a raw bridge: refused, exit 4" ||
    fail "rfc2217:// to a raw bridge: exit $rc"

# 3. STM32 (AN3155): 8E1 at 115200, with read-back verify and a second pass
#    that finds every unit unchanged
head -c 8000 /dev/urandom >"$DIR/fw.bin"
printf '\377\377\377\377' | dd of="$DIR/fw.bin" bs=1 seek=100 conv=notrunc 2>/dev/null
start_sim stm32 --flash "$DIR/stm32-flash.bin" --chip F103xB
start_ser2net "telnet(rfc2217),tcp"
pf flash --target stm32 --baud 115200 --port "rfc2217://127.0.0.1:$S2N_PORT" "$DIR/fw.bin@0x08000000"
[ $rc -eq 0 ] && ok "stm32 flash through ser2net (8E1)" || fail "stm32 flash through ser2net: exit $rc"
cmp -n 8000 "$DIR/fw.bin" "$DIR/stm32-flash.bin" && ok "stm32 flash content" || fail "stm32 flash content differs"
pf read --target stm32 --baud 115200 --port "rfc2217://127.0.0.1:$S2N_PORT" 0x08000000 8000 "$DIR/back.bin"
[ $rc -eq 0 ] && cmp -s "$DIR/fw.bin" "$DIR/back.bin" && ok "stm32 read back through ser2net" ||
    fail "stm32 read back: exit $rc or other bytes"

# 4. ESP32 ROM loader (SLIP, rate switch to 460800 after sync)
start_sim esp32 --flash "$DIR/esp-flash.bin"
start_ser2net "telnet(rfc2217),tcp"
head -c 40000 /dev/urandom >"$DIR/app.bin"
pf flash --target esp --baud 460800 --port "rfc2217://127.0.0.1:$S2N_PORT" "$DIR/app.bin@0x10000"
[ $rc -eq 0 ] && ok "esp flash through ser2net at 460800" || fail "esp flash through ser2net: exit $rc"
cmp -s <(dd if="$DIR/esp-flash.bin" bs=4096 skip=16 2>/dev/null | head -c 40000) "$DIR/app.bin" &&
    ok "esp flash content" || fail "esp flash content differs"
# 5. peerflash wire with an rfc2217:// side: the host tool opens the wire's
#    pty; the wire sets ser2net's port (9600 in its config) to --baud 115200,
#    and reconnects when the tool opens its side, so ser2net reopens the
#    simulator's pty and Optiboot starts (as a board resets on the DTR edge)
start_sim avr
start_ser2net "telnet(rfc2217),tcp"
spawn "$PF" wire --a "pty:$DIR/host" --b "rfc2217://127.0.0.1:$S2N_PORT" --baud 115200 --verbose --duration 60 \
    2>"$DIR/wire.log"
WIRE=$!
wait_file "$DIR/host" 10 || die "wire made no pty"
pf flash --target avr --port "$DIR/host" "$AVR_DIR/app_small.hex"
[ $rc -eq 0 ] && ok "avr flash through peerflash wire -> rfc2217:// -> ser2net" || fail "flash through wire: exit $rc"
grep -q "reconnecting side B" "$DIR/wire.log" && ok "the tool's open reconnected the rfc2217 side" ||
    fail "no reconnect in the wire log"
stop "$WIRE"
exit $FAILED
