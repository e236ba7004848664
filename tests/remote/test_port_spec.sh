#!/bin/bash
# The --port grammar is checked before anything is opened or read: a bad
# tcp://, rfc2217:// or tcp-listen:// spec is a usage error (exit 2) naming
# --port and what is wrong, even when the image does not exist either.
PF=${1:?usage: $0 path/to/peerflash}
source "$(dirname "$0")/lib.sh"
check() { # SPEC PATTERN
    pf flash --target avr --port "$1" "$DIR/no-such-image.hex"
    if [ $rc -eq 2 ] && grep -q -- "--port" "$DIR/out" && grep -q -- "$2" "$DIR/out"; then
        ok "$1: exit 2, says '$2'"
    else
        fail "$1: exit $rc (want 2 and '$2')"
    fi
}
check "rfc2217://127.0.0.1:99999" "outside 1..65535"
check "tcp://127.0.0.1:0" "outside 1..65535"
check "tcp://127.0.0.1:80x" "not a decimal number"
check "rfc2217://127.0.0.1" "missing ':PORT'"
check "tcp://:2217" "missing host"
check "rfc2217://127.0.0.1:" "missing port number"
check "rfc2217://[::1:2217" "missing ']'"
check "rfc2217://::1:2217" "IPv6 address in brackets"
check "tcp-listen://70000" "outside 1..65535"
check "telnet://127.0.0.1:23" "unknown scheme"
# a good spec goes on to the image, which is then the error (exit 3)
pf flash --target avr --port "rfc2217://[::1]:2217" "$DIR/no-such-image.hex"
[ $rc -eq 3 ] && ok "rfc2217://[::1]:2217 parses; the missing image is then exit 3" || fail "good spec: exit $rc"
exit $FAILED
