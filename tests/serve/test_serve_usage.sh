#!/bin/bash
# `peerflash serve` command line: --help says that exposing the daemon is
# deliberate; mistakes exit 2 naming the option, before anything listens.
PF=${1:?usage: $0 path/to/peerflash}
source "$(dirname "$0")/lib.sh"
cd "$DIR" || exit 1
expect() { # STATUS REGEX -- CMD...: exit status and a line of output
    local want=$1 re=$2
    shift 3
    timeout 20 "$@" >out 2>&1
    local got=$?
    if [ $got -eq "$want" ] && grep -qE -- "$re" out; then ok "$* -> $want"; else fail "$*: exit $got, expected $want /$re/: $(head -3 out)"; fi
}
echo "a-long-enough-token" >tok
chmod 600 tok
echo "short" >short
expect 0 "listens on 127.0.0.1 only" -- "$PF" serve --help
expect 0 "NO AUTHENTICATION" -- "$PF" serve --help
expect 0 "serve +network daemon" -- "$PF" --help
expect 2 "needs at least one --target" -- "$PF" serve
expect 2 "--port belongs to a target" -- "$PF" serve --port /dev/null
expect 2 "has no --port" -- "$PF" serve --target avr
expect 2 "unknown target 'z80'" -- "$PF" serve --target z80 --port /dev/null
expect 2 "give --token-file" -- "$PF" serve --listen 0.0.0.0:8080 --target avr --port /dev/null
expect 2 "give --ota-password-file" -- "$PF" serve --listen 0.0.0.0:8080 --token-file tok --target avr --port /dev/null --ota-port 8266
expect 2 "8 to 255 characters" -- "$PF" serve --token-file short --target avr --port /dev/null
expect 2 "--token-file nosuch" -- "$PF" serve --token-file nosuch --target avr --port /dev/null
expect 2 "unknown option '--no-compress' \(for --target avr" -- "$PF" serve --target avr --port /dev/null --no-compress
expect 2 "two targets are named 'x'" -- "$PF" serve --target avr --port /dev/a --name x --target esp --port /dev/b --name x
expect 2 "one port is one board" -- "$PF" serve --target avr --port /dev/a --target esp --port /dev/a
expect 2 "ADDR:PORT" -- "$PF" serve --listen 8080 --target avr --port /dev/null
expect 2 "--max-body takes" -- "$PF" serve --max-body 0 --target avr --port /dev/null
expect 2 "--ota-port 9 is given to two targets" -- "$PF" serve --target avr --port /dev/a --ota-port 9 --target esp --port /dev/b --ota-port 9
expect 2 "RFC 2217 server" -- "$PF" serve --target avr --port rfc2217://127.0.0.1:1 --bridge-port 9
expect 0 "rfc2217-port N +RFC 2217 serial bridge" -- "$PF" serve --help
expect 2 "--rfc2217-port takes a TCP port number" -- "$PF" serve --target avr --port /dev/null --rfc2217-port 0
expect 2 "both 9: each bridge needs its own port" -- "$PF" serve --target avr --port /dev/null --bridge-port 9 --rfc2217-port 9
expect 2 "TCP port 9 is given to two bridges \(--rfc2217-port of avr, --bridge-port of esp\)" -- "$PF" serve --target avr --port /dev/a --rfc2217-port 9 --target esp --port /dev/b --bridge-port 9
# a port already taken: exit 4 naming the address
P=$(free_port)
$PY -c 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(); time.sleep(30)' "$P" &
holder=$!
PIDS+=($holder)
wait_listen "$P" 10
expect 4 "cannot listen on 127.0.0.1:$P" -- "$PF" serve --listen "127.0.0.1:$P" --target avr --port /dev/null
stop $holder
exit $FAILED
