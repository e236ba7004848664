#!/usr/bin/env bash
# The updater firmware in QEMU: the job from -append, images read through
# semihosting (the SD card stand-in) and parsed on the MCU, and exit statuses
# the CLI's way. No target is needed: every case stops before the link.
source "$(dirname "$0")/lib.sh"
need_qemu
cd "$tmp" || exit 1
t0=$SECONDS
printf ':100000000C9434000C9446000C9446000C9446006A\n:00000001FF\n' >good.hex
printf ':100000000C9434000C9446000C9446000C9446006A\n:10001000FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00\n:00000001FF\n' >bad.hex
printf 'S00600004844521B\nS1130000000102030405060708090A0B0C0D0E0F74\nS9030000FC\n' >good.srec
head -c 300000 /dev/zero >big.bin
head -c 1000 /dev/urandom >small.bin

qemu_updater "flash --target nosuch --image $tmp/good.hex"
check "Intel HEX parsed on the MCU" 2 "good.hex \(Intel HEX, 56 bytes\): 16 bytes of data in 1 segment"
check "unknown target named" 2 "unknown target 'nosuch'"
qemu_updater "flash --target nosuch --image $tmp/good.srec"
check "S-record parsed on the MCU" 2 "S-record.*16 bytes of data in 1 segment"
qemu_updater "flash --target nosuch --image $tmp/small.bin@0x1000"
check "raw binary at @ADDR" 2 "0x00001000-0x000013e7"
qemu_updater "flash --target avr --image $tmp/bad.hex"
check "bad HEX line named" 3 "bad.hex: line 2: .*checksum"
qemu_updater "flash --target avr --image $tmp/missing.hex"
check "missing file" 3 "missing.hex: cannot open"
qemu_updater "flash --target avr --image $tmp/small.bin"
check "raw binary without @ADDR" 2 "needs a load address"
qemu_updater "flash --target avr --image $tmp/good.hex@0x100"
check "HEX with @ADDR refused" 2 "carries its own addresses"
qemu_updater "flash --target avr --image $tmp/big.bin@0"
check "image over the updater's memory" 3 "larger than the updater's memory \(262144 bytes"
qemu_updater "flash --image $tmp/good.hex"
check "no --target" 2 "--target is missing"
qemu_updater "flash --target avr --image $tmp/good.hex --baud fast"
check "bad --baud" 2 "--baud needs a rate"
# driver options: checked against the target driver's own table by the session
qemu_updater "flash --target avr --image $tmp/good.hex --no-compress"
check "another driver's option refused, naming option and driver" 2 "option 'no-compress' is not an option of the avr driver"
qemu_updater "flash --target agent --image $tmp/good.hex --delta-from $tmp/good.hex"
check "a host-only driver option refused" 2 "--delta-from needs the host"
qemu_updater "flash --target avr --image $tmp/good.hex --bogus"
check "unknown option" 2 "unknown or incomplete option '--bogus'"
qemu_updater "erase --target avr"
check "not a flash job" 2 "job must start with 'flash'"
echo "wall time $((SECONDS - t0)) s"
finish
