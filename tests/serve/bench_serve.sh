#!/bin/bash
# Overhead of `peerflash serve` against `peerflash flash` on the same
# simulated STM32 (the simulator's default program and erase times) and the
# same image, interleaved: wall time of `flash --json` (process start to
# exit) against curl's time_total of the upload (first byte sent to the
# answer: received, parsed, written, verified). Also: requests per second of
# GET /api/targets/NAME while a flash runs, and that flash's time against a
# quiet one. Not a CTest (timing); usage: bench_serve.sh PEERFLASH [RUNS]
PF=${1:?usage: $0 path/to/peerflash [RUNS]}
RUNS=${2:-3}
source "$(dirname "$0")/lib.sh"
cd "$DIR" || exit 1
spawn "$PF" sim stm32 --port "$DIR/stm" --flash stm.flash --chip G07xxB 2>stm.log
wait_file "$DIR/stm" 20 || die "sim"
start_serve serve.log --target stm32 --port "$DIR/stm" --baud 115200
now() { date +%s.%N; }
for i in $(seq "$RUNS"); do
    $PY -c 'import random,sys; r=random.Random(int(sys.argv[1])); open("fw.bin","wb").write(bytes(r.getrandbits(8) for _ in range(65536)))' "$i"
    t0=$(now); "$PF" flash --json -q --target stm32 --port "$DIR/stm" --baud 115200 fw.bin@0x08000000 >cli.json; t1=$(now)
    cli=$(echo "$t1 - $t0" | bc)
    $PY -c 'import random,sys; r=random.Random(int(sys.argv[1])); open("fw.bin","wb").write(bytes(r.getrandbits(8) for _ in range(65536)))' "$((i + 100))"
    srv=$(curl -s -o srv.json -w '%{time_total}' --data-binary @fw.bin "$URL/api/targets/stm32/flash")
    grep -q '"ok":true' cli.json && grep -q '"ok":true' srv.json || die "a flash failed"
    echo "run $i: flash --json ${cli} s, through serve ${srv} s"
done
# status requests while a flash runs
$PY -c 'import random; r=random.Random(7); open("fw.bin","wb").write(bytes(r.getrandbits(8) for _ in range(65536)))'
quiet=$(curl -s -o q.json -w '%{time_total}' --data-binary @fw.bin "$URL/api/targets/stm32/flash")
$PY -c 'import random; r=random.Random(8); open("fw.bin","wb").write(bytes(r.getrandbits(8) for _ in range(65536)))'
curl -s -o b.json -w '%{time_total}' --data-binary @fw.bin "$URL/api/targets/stm32/flash" >busy.time &
c=$!
$PY - "$URL" <<'PY'
import http.client, json, sys, time, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
conn = http.client.HTTPConnection(u.hostname, u.port)
while True:  # until the job runs
    conn.request("GET", "/api/targets/stm32"); j = json.loads(conn.getresponse().read())
    if j["state"] == "busy": break
n, t0 = 0, time.time()
while True:
    conn.request("GET", "/api/targets/stm32"); j = json.loads(conn.getresponse().read())
    n += 1
    if j["state"] != "busy": break
print("status requests while flashing: %d in %.2f s = %.0f per second (one keep-alive client)" % (n, time.time() - t0, n / (time.time() - t0)))
PY
wait $c
echo "flash of 64 KiB through serve: quiet ${quiet} s, under status polling $(cat busy.time) s"
exit 0
