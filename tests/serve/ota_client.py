#!/usr/bin/python3
"""An ArduinoOTA / espota client written from the protocol's facts (see
src/serve/ota_proto.h), as the Arduino IDE and espota.py behave:
invitation over UDP, optional MD5 nonce challenge, then a TCP server of ours
that the device connects back to, the image in 1024-byte pieces, each
acknowledged, and "OK" at the end.
usage: ota_client.py HOST UDP_PORT FILE [--password P] [--scheme S] [--wrong-md5] [--cut N]
--scheme: how to answer the nonce challenge, as the clients in use do:
  auto (default; espota.py 3.3.1+): a 64-digit nonce gets PBKDF2-HMAC-SHA256
       over SHA256hex(password), a 32-digit one the MD5 scheme;
  sha256-md5pw: PBKDF2-HMAC-SHA256 over MD5hex(password) (espota --md5-target);
  md5: the MD5 scheme over the whole nonce (the ESP8266 core's espota.py);
  md5-37: the MD5 scheme over what a 37-byte read keeps ("AUTH " and 32
       digits: arduino-esp32's espota.py before 3.3.1).
Prints the device's answers; exit 0 when the device said OK, 1 when it
refused (the reason on stdout), 2 on a protocol/timeout problem."""
import hashlib
import socket
import sys

host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
args = sys.argv[4:]
password = args[args.index("--password") + 1] if "--password" in args else None
cut = int(args[args.index("--cut") + 1]) if "--cut" in args else None
scheme = args[args.index("--scheme") + 1] if "--scheme" in args else "auto"
data = open(path, "rb").read()
md5 = hashlib.md5(data).hexdigest()
if "--wrong-md5" in args:
    md5 = hashlib.md5(data + b"x").hexdigest()

server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.bind(("127.0.0.1", 0))
server.listen(1)
server.settimeout(20)
tcp_port = server.getsockname()[1]
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.settimeout(10)
udp.sendto(("0 %d %d %s\n" % (tcp_port, len(data), md5)).encode(), (host, port))
try:
    answer = udp.recv(128).decode(errors="replace")
except socket.timeout:
    print("no answer to the invitation")
    sys.exit(2)
print("invitation:", answer)
if answer.startswith("AUTH "):
    nonce = answer[5:].strip()
    if password is None:
        print("the device wants a password")
        sys.exit(1)
    if scheme == "md5-37":
        nonce = nonce[:32]
    cnonce_text = ("%s%d%s%s" % (path, len(data), md5, host)).encode()
    if scheme in ("md5", "md5-37") or (scheme == "auto" and len(nonce) == 32):
        cnonce = hashlib.md5(cnonce_text).hexdigest()
        passmd5 = hashlib.md5(password.encode()).hexdigest()
        response = hashlib.md5(("%s:%s:%s" % (passmd5, nonce, cnonce)).encode()).hexdigest()
    else:
        cnonce = hashlib.sha256(cnonce_text).hexdigest()
        if scheme == "sha256-md5pw":
            pwhash = hashlib.md5(password.encode()).hexdigest()
        else:
            pwhash = hashlib.sha256(password.encode()).hexdigest()
        key = hashlib.pbkdf2_hmac("sha256", pwhash.encode(), ("%s:%s" % (nonce, cnonce)).encode(), 10000)
        response = hashlib.sha256(("%s:%s:%s" % (key.hex(), nonce, cnonce)).encode()).hexdigest()
    print("scheme:", scheme, "nonce digits:", len(nonce))
    if scheme in ("auto", "sha256-md5pw"):
        # espota.py 3.3.1+ answers from a new socket (another source port)
        udp.close()
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.settimeout(10)
    udp.sendto(("200 %s %s\n" % (cnonce, response)).encode(), (host, port))
    answer = udp.recv(128).decode(errors="replace")
    print("authentication:", answer)
if answer != "OK":
    sys.exit(1)
try:
    conn, _ = server.accept()
except socket.timeout:
    print("the device did not connect back")
    sys.exit(2)
conn.settimeout(60)
sent = 0
acks = 0
limit = cut if cut is not None else len(data)
while sent < limit:
    piece = data[sent:min(sent + 1024, limit)]
    conn.sendall(piece)
    sent += len(piece)
    reply = conn.recv(32).decode(errors="replace")  # the device's count for what it read
    if not reply.strip().isdigit():
        break
    acks += 1
if cut is not None:
    conn.close()
    print("cut after %d bytes" % sent)
    sys.exit(1)
final = reply
while "OK" not in final and "ERR" not in final:
    more = conn.recv(256).decode(errors="replace")
    if not more:
        break
    final += more
while "ERR" in final:
    more = conn.recv(512).decode(errors="replace")
    if not more:
        break
    final += more
conn.close()
print("acknowledged pieces: %d" % acks)
print("final:", final.lstrip("0123456789"))
sys.exit(0 if final.endswith("OK") else 1)
