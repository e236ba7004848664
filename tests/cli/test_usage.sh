#!/usr/bin/env bash
# Usage errors exit 2 with a message that says what to do; --help exits 0.
set -u
pf=$1
. "$(dirname "$0")/lib.sh"

expect 0 "flash +write images" -- "$pf" --help
expect 2 "usage: peerflash" -- "$pf"
expect 2 "unknown command 'flsh'" -- "$pf" flsh
expect 0 "peerflash [0-9]" -- "$pf" --version
expect 0 "^peerflash [0-9]" -- "$pf" -V
expect 0 "usage: peerflash read" -- "$pf" help read
expect 0 "usage: peerflash wire" -- "$pf" help wire
expect 2 "no command 'nosuch'" -- "$pf" help nosuch
for cmd in flash verify read erase info; do
    expect 0 "usage: peerflash $cmd" -- "$pf" "$cmd" --help
    expect 2 "needs --target and --port" -- "$pf" "$cmd"
done
expect 2 "unknown target 'nosuch'" -- "$pf" flash --target nosuch --port /dev/null x.hex
# --help lists each driver's options from the driver's own table, with the drivers that take them
expect 0 "--no-compress +esp, agent: send the image uncompressed" -- "$pf" flash --help
expect 0 "--read-compare +avr: read each page first" -- "$pf" flash --help
expect 0 "--delta-from OLD +agent: send a patch against OLD" -- "$pf" flash --help
expect 0 "--unprotect-read +stm32: remove readout protection" -- "$pf" info --help
expect 0 "" -- bash -c "! '$pf' info --help | grep -q -- --read-compare" # a flash-only option is not listed for info
# a driver option for another command of its driver
expect 2 "--read-compare is for flash --target avr \\(not verify\\)" -- "$pf" verify --read-compare --target avr --port /dev/null x.hex
expect 2 "--erase takes 'touched' or 'all'" -- "$pf" flash --target x --port p --erase some x.hex
expect 2 "--baud takes a line rate" -- "$pf" flash --target x --port p --baud fast x.hex
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf ':0100000000FF\n:00000001FF\n' >"$dir/one.hex"
printf ':0100000000FF\n:0100010000FD\n:00000001FF\n' >"$dir/bad.hex"
printf '\x12\x34\x56' >"$dir/raw.bin"
# Image errors come first: nothing touches the port before every image is good.
expect 3 "bad.hex: line 2: bad checksum 0xFD, expected 0xFE" -- "$pf" flash --target avr --port /dev/null "$dir/bad.hex"
expect 2 "raw binary needs a load address" -- "$pf" flash --target avr --port /dev/null "$dir/raw.bin"
expect 3 "No such file" -- "$pf" flash --target avr --port /dev/null "$dir/missing.hex"
expect 2 "pty:PATH .* is for .peerflash sim" -- "$pf" flash --target avr --port pty:/tmp/x "$dir/one.hex"
expect 4 "no-such-port: No such file.*plugged in" -- "$pf" flash --target avr --port /tmp/no-such-port "$dir/one.hex"
expect 4 "not a serial port" -- "$pf" flash --target avr --port /dev/null "$dir/one.hex"
expect 3 '"ok":false,"exit_code":3' -- "$pf" flash --json --target avr --port /dev/null "$dir/bad.hex"
# the JSON object reports the status the process returns (a missing image is an image error)
expect 3 '"ok":false,"exit_code":3' -- "$pf" flash --json --target avr --port /dev/null "$dir/missing.hex"
expect 4 '"ok":false,"exit_code":4' -- "$pf" flash --json --target avr --port /dev/null "$dir/one.hex"
expect 2 "--no-compress is for --target esp and agent" -- "$pf" flash --no-compress --target avr --port /dev/null "$dir/one.hex"
expect 2 "--read-compare is for --target avr" -- "$pf" flash --read-compare --target esp --port /dev/null "$dir/one.hex"
expect 2 "--unprotect-read is for --target stm32" -- "$pf" flash --unprotect-read --target avr --port /dev/null "$dir/one.hex"
expect 0 "" -- "$pf" sim --help
expect 2 "unknown simulator" -- "$pf" sim nosuch
finish
