"""A serial port with modem lines behind an RFC 2217 server, for the
--rfc2217-port test: pyserial's own PortManager (Debian python3-serial) over
a loop:// port that echoes what it is sent. A pty cannot carry DTR/RTS
(shared/notes/network/02-ser2net-rfc2217-pty.md), so the daemon's target
port is this server (rfc2217://) and every line change the daemon applies
to it is printed as one line on stdout:
  EVENT line BAUD,BITS PARITY STOP     EVENT dtr 0|1     EVENT rts 0|1
Usage: rfc2217_port.py PORTFILE  (writes the TCP port it listens on there)."""
import os
import socket
import sys
import threading

import serial
import serial.rfc2217
from serial.urlhandler.protocol_loop import Serial as LoopSerial


def event(text):
    sys.stdout.write("EVENT %s\n" % text)
    sys.stdout.flush()


class WatchedLoop(LoopSerial):
    """loop:// that reports each change pyserial's PortManager makes to it."""

    def _reconfigure_port(self):
        super()._reconfigure_port()
        if self.is_open:
            event("line %d,%d%s%s" % (self.baudrate, self.bytesize, self.parity, self.stopbits))

    def _update_dtr_state(self):
        event("dtr %d" % int(self._dtr_state))

    def _update_rts_state(self):
        event("rts %d" % int(self._rts_state))


class Connection:
    """The one method PortManager writes through."""

    def __init__(self, sock):
        self.sock = sock

    def write(self, data):
        self.sock.sendall(data)


def session(conn):
    port = WatchedLoop(None)
    port.port = "loop://"
    port.timeout = 0.05
    port.open()
    manager = serial.rfc2217.PortManager(port, Connection(conn))
    alive = [True]

    def to_network():
        while alive[0]:
            data = port.read(port.in_waiting or 1)
            if data:
                try:
                    conn.sendall(b"".join(manager.escape(data)))
                except OSError:
                    break

    reader = threading.Thread(target=to_network, daemon=True)
    reader.start()
    try:
        while True:
            data = conn.recv(4096)
            if not data:
                break
            out = b"".join(manager.filter(data))
            if out:
                port.write(out)
    except OSError:
        pass
    alive[0] = False
    reader.join()
    port.close()
    conn.close()
    event("closed")


def main():
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    tmp = sys.argv[1] + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(listener.getsockname()[1]))
    os.rename(tmp, sys.argv[1])
    while True:
        conn, _ = listener.accept()
        session(conn)  # one client at a time, as a serial port has


main()
