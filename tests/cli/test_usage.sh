#!/usr/bin/env bash
# Usage errors exit 2 with a message that says what to do; --help exits 0.
set -u
pf=$1
. "$(dirname "$0")/lib.sh"

expect 0 "flash +write images" -- "$pf" --help
expect 2 "usage: peerflash" -- "$pf"
expect 2 "unknown command 'flsh'" -- "$pf" flsh
expect 0 "peerflash [0-9]" -- "$pf" --version
for cmd in flash verify read erase info; do
    expect 0 "usage: peerflash $cmd" -- "$pf" "$cmd" --help
    expect 2 "needs --target and --port" -- "$pf" "$cmd"
done
expect 2 "unknown target 'nosuch'" -- "$pf" flash --target nosuch --port /dev/null x.hex
expect 2 "--erase takes 'touched' or 'all'" -- "$pf" flash --target x --port p --erase some x.hex
expect 2 "--baud takes a number" -- "$pf" flash --target x --port p --baud fast x.hex
expect 0 "" -- "$pf" sim --help
expect 2 "unknown simulator" -- "$pf" sim nosuch
finish
