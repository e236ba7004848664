#!/bin/bash
# The upload page in a real headless Chromium (page_test.py): upload by
# keyboard on a phone-sized screen, success in plain words, the simulated
# STM32 holds the image; a corrupt image shows the parser's error.
# PF_SERVE_SCREENSHOT=path keeps the screenshot (docs/serve-page.png).
PF=${1:?usage: $0 path/to/peerflash}
source "$(dirname "$0")/lib.sh"
cd "$DIR" || exit 1
[ -x /usr/lib/chromium/chromium ] || skip "chromium is not installed (scripts/install-deps.sh)"
$PY -c 'import websocket' 2>/dev/null || skip "python3-websocket is not installed (scripts/install-deps.sh)"
spawn "$PF" sim stm32 --port "$DIR/stm" --flash stm.flash --chip G07xxB --program-us-per-256 2000 --erase-ms-per-page 1 2>stm.log
wait_file "$DIR/stm" 20 || die "sim made no pty"
start_serve serve.log --target stm32 --port "$DIR/stm" --baud 115200 --name bluepill
$PY -c 'import random; r=random.Random(21); open("firmware.bin","wb").write(bytes(r.getrandbits(8) for _ in range(24000)))'
printf ':10000000000102030405060708090A0B0C0D0E0F79\n:00000001FF\n' >broken.hex
timeout 150 $PY "$(dirname "$0")/page_test.py" "$URL/" bluepill firmware.bin broken.hex stm.flash shot.png
rc=$?
[ -n "${PF_SERVE_SCREENSHOT:-}" ] && [ -f shot.png ] && cp shot.png "$PF_SERVE_SCREENSHOT"
[ $rc -eq 0 ] || FAILED=1
exit $FAILED
