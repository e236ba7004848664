#!/usr/bin/python3
"""An RFC 2217 server that records line changes: pyserial's PortManager
(serial.rfc2217, Debian's python3-serial) around a stand-in serial port.

The stand-in is a real serial.Serial on DEVICE (a simulator's pty): data and
the line rate reach the simulator as through any serial port, and every DTR,
RTS and line setting the client asks for is printed on stdout as
"EVENT <seconds> dtr|rts 0|1" or "EVENT <seconds> line 115200,8E1". A pty has
no modem lines (TIOCMSET fails), so the stand-in records them instead of
driving them: shared/notes/network/02-ser2net-rfc2217-pty.md.

usage: rfc2217_recorder.py PORT DEVICE   (127.0.0.1 only, one client at a time)
Prints "READY <port>" once listening."""
import socket
import sys
import termios
import threading
import time

import serial
import serial.rfc2217

T0 = time.monotonic()


def event(name, value):
    print("EVENT %.3f %s %s" % (time.monotonic() - T0, name, value), flush=True)


class StandIn(serial.Serial):
    """serial.Serial on a pty whose modem lines are recorded, not driven."""

    def _update_dtr_state(self):
        event("dtr", int(self._dtr_state))

    def _update_rts_state(self):
        event("rts", int(self._rts_state))

    def _reconfigure_port(self, force_update=False):
        event("line", "%d,%d%s%s" % (self._baudrate, self._bytesize, self._parity, self._stopbits))
        try:
            super()._reconfigure_port(force_update)
        except termios.error:
            # a pty keeps no parity bit: tcsetattr with PARENB can fail with
            # EINVAL when nothing else changes (the rate is still set)
            pass

    # inputs a pty does not have: read as idle
    @property
    def cts(self):
        return False

    @property
    def dsr(self):
        return False

    @property
    def ri(self):
        return False

    @property
    def cd(self):
        return False


class Connection:
    def __init__(self, sock):
        self.sock = sock
        self.lock = threading.Lock()

    def write(self, data):
        with self.lock:
            self.sock.sendall(data)


def serve(client, device):
    port = StandIn()
    port.port = device
    port.timeout = 0.02
    port.dsrdtr = True  # pyserial then leaves DTR/RTS alone on open: only the client's requests are recorded
    port.rtscts = False
    port.open()
    conn = Connection(client)
    manager = serial.rfc2217.PortManager(port, conn)
    alive = [True]

    def to_client():
        while alive[0]:
            try:
                data = port.read(4096)
                if data:
                    conn.write(b"".join(manager.escape(data)))
            except (OSError, serial.SerialException):
                break

    reader = threading.Thread(target=to_client, daemon=True)
    reader.start()
    try:
        while True:
            data = client.recv(4096)
            if not data:
                break
            port.write(b"".join(manager.filter(data)))
    except OSError:
        pass
    alive[0] = False
    reader.join()
    port.close()
    client.close()
    event("disconnect", 1)


def main():
    listen_port, device = int(sys.argv[1]), sys.argv[2]
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", listen_port))
    srv.listen(1)
    print("READY %d" % srv.getsockname()[1], flush=True)
    while True:
        client, _ = srv.accept()
        event("connect", 1)
        serve(client, device)


if __name__ == "__main__":
    main()
