#!/usr/bin/python3
"""Sends an Intel HEX file to a board running PeerflashHexUpdater (the
Peerflash Arduino library's SerialHexUpdater example), the PC side of the
protocol in docs/MCU.md:

  - waits for "PF READY", then sends the file (up to and including the
    end-of-file record's line) as the board's credit allows: each XON byte
    (0x11) it sends allows 16 more bytes;
  - after "PF CHECKED" (credit starts again from zero) sends it a second time;
  - prints the board's "PF ..." lines; exit status 0 after "PF DONE",
    1 after "PF FAIL" (the line says which phase, and written=0 means the
    target was not changed), 2 for usage or file errors, 3 on a timeout.

usage: send-hex.py --port /dev/ttyACM0 [--baud 115200] [--timeout 30] FILE.hex
Needs pyserial (Debian: python3-serial).
"""
import argparse
import sys
import time

import serial

XON = 0x11
CREDIT_PER_XON = 16


def hex_text(path):
    """The file's bytes up to and including the end-of-file record's line."""
    with open(path, "rb") as f:
        data = f.read()
    out = bytearray()
    for line in data.splitlines(keepends=True):
        out += line if line.endswith(b"\n") else line + b"\n"
        if line.strip().upper().startswith(b":00000001FF"):
            return bytes(out)
    raise ValueError(f"{path}: no end-of-file record (:00000001FF)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", required=True)
    ap.add_argument("--baud", type=int, default=115200)
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds without progress before giving up")
    ap.add_argument("file")
    a = ap.parse_args()
    try:
        text = hex_text(a.file)
    except (OSError, ValueError) as e:
        print(f"send-hex: {e}", file=sys.stderr)
        return 2
    link = serial.Serial(a.port, a.baud, timeout=0.02)
    credit, pos, copy, line = 0, 0, 0, bytearray()
    last = time.monotonic()
    while True:
        if time.monotonic() - last > a.timeout:
            print(f"send-hex: no progress for {a.timeout:.0f} s (copy {copy}, {pos} of {len(text)} bytes sent)",
                  file=sys.stderr)
            return 3
        for b in link.read(256):
            last = time.monotonic()
            if b == XON:
                credit += CREDIT_PER_XON
                continue
            if b != 0x0A:
                line.append(b)
                continue
            s = line.decode(errors="replace").rstrip("\r")
            line.clear()
            if not s.startswith("PF "):
                continue
            print(s, flush=True)
            if s.startswith("PF READY") and copy == 0:
                credit, pos, copy = 0, 0, 1  # XONs after this line are ours
            elif s.startswith("PF CHECKED") and copy == 1:
                credit, pos, copy = 0, 0, 2
            elif s.startswith("PF DONE") and copy == 2:
                return 0
            elif s.startswith("PF FAIL") and copy:
                return 1
        if copy and credit > 0 and pos < len(text):
            n = min(credit, len(text) - pos)
            link.write(text[pos:pos + n])
            pos += n
            credit -= n
            last = time.monotonic()


if __name__ == "__main__":
    sys.exit(main())
