#!/usr/bin/env python3
"""The mps2-an385 port's UART link, end to end, without a target.

The updater firmware runs `link-test` in qemu-system-arm with UART0 on a pty
this test holds. It sends COUNT random bytes (seeded), in bursts larger than
the firmware's 1 KiB receive ring, and expects each back XOR 0x5A, in order,
none lost. Then the firmware reads once more with a TIMEOUT deadline: the test
checks that the firmware's own clock says it waited at least TIMEOUT ms and
that the host's clock, read by the firmware through semihosting around the
same read, agrees (the SysTick clock must not run fast: deadlines may
stretch on a loaded host, never shrink).

usage: test_port.py QEMU ELF   (exit 77 = skipped)
"""
import os
import random
import re
import select
import subprocess
import sys
import time
import tty

COUNT = 6000
TIMEOUT_MS = 500


def main():
    qemu, elf = sys.argv[1], sys.argv[2]
    seed = int(os.environ.get("PF_SEED", str(int(time.time()) & 0xFFFF)))
    print(f"seed {seed} (PF_SEED={seed} replays)")
    rng = random.Random(seed)
    data = bytes(rng.randrange(256) for _ in range(COUNT))
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    t_start = time.monotonic()
    cmd = ["timeout", "60", qemu, "-M", "mps2-an385", "-nodefaults", "-nographic", "-net", "none",
           "-semihosting-config", "enable=on,target=native", "-kernel", elf,
           "-serial", os.ttyname(slave), "-append", f"link-test --count {COUNT} --timeout {TIMEOUT_MS}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = b""
    try:
        deadline = time.monotonic() + 30
        while b"ready" not in out:
            left = deadline - time.monotonic()
            if left <= 0 or proc.poll() is not None:
                raise SystemExit(f"FAIL: firmware never said ready: {out!r}")
            r, _, _ = select.select([proc.stdout], [], [], left)
            if r:
                out += os.read(proc.stdout.fileno(), 4096)
        sent = 0
        got = b""
        while len(got) < COUNT:
            if time.monotonic() > deadline:
                raise SystemExit(f"FAIL: echoed {len(got)}/{COUNT} bytes before the deadline")
            wl = [master] if sent < COUNT else []
            r, w, _ = select.select([master, proc.stdout], wl, [], 1.0)
            if master in w:
                n = os.write(master, data[sent:sent + 2048])  # bursts of 2 KiB > the 1 KiB ring
                sent += n
            if master in r:
                got += os.read(master, 65536)
            if proc.stdout in r:
                chunk = os.read(proc.stdout.fileno(), 4096)
                out += chunk
                if not chunk and proc.poll() is not None:
                    raise SystemExit(f"FAIL: firmware ended early: {out.decode(errors='replace')}")
        want = bytes(b ^ 0x5A for b in data)
        if got[:COUNT] != want:
            first = next(i for i in range(COUNT) if i >= len(got) or got[i] != want[i])
            raise SystemExit(f"FAIL: echo differs at byte {first}")
        rest, _ = proc.communicate(timeout=30)
        out += rest
        t_end = time.monotonic()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        os.close(slave)
    text = out.decode(errors="replace")
    print(text.strip())
    if proc.returncode != 0:
        raise SystemExit(f"FAIL: firmware exit status {proc.returncode}")
    m = re.search(r"idle read returned (-?\d+) after (\d+) ms .*reference clock (\d+) ms", text)
    if not m or int(m.group(1)) != 0:
        raise SystemExit("FAIL: no idle-read report")
    waited_fw = int(m.group(2))
    waited_host = int(m.group(3))
    print(f"echoed {COUNT} bytes; idle deadline {TIMEOUT_MS} ms: firmware clock {waited_fw} ms, "
          f"host {waited_host} ms; wall time {t_end - t_start:.2f} s")
    if waited_fw < TIMEOUT_MS:
        raise SystemExit("FAIL: the firmware's read returned before its own deadline")
    # The deadline may stretch (a loaded host loses ticks) but never shrink;
    # 1 ms of slack for rounding both clocks to whole milliseconds.
    if waited_host < TIMEOUT_MS - 1:
        raise SystemExit(f"FAIL: the firmware's {TIMEOUT_MS} ms passed in {waited_host:.0f} ms of host time")
    print("PASS")


if __name__ == "__main__":
    main()
