#!/usr/bin/python3
"""Bad requests against `peerflash serve`, from a seed: each kind is sent
over a raw socket (so malformed HTTP and cut uploads are possible) and the
answer checked. usage: bad_requests.py PORT TOKEN TARGET SEED COUNT
Prints one line per kind with its count; exit 1 on any unexpected answer."""
import random
import socket
import sys
import time

port, token, target, seed, count = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
rng = random.Random(seed)
MAX_BODY = 65536  # the test starts the daemon with --max-body 64K


def bad_hex():
    # a well-formed HEX record whose checksum is off by one
    rec = bytes([16, 0x00, 0x00, 0x00]) + bytes(rng.getrandbits(8) for _ in range(16))
    ck = (-sum(rec)) & 0xFF
    return (":" + rec.hex().upper() + "%02X" % ((ck + 1) & 0xFF) + "\n:00000001FF\n").encode()


def request(method, path, body=b"", headers=None, auth=True, raw=None, cut_at=None, timeout=20):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        if raw is not None:
            s.sendall(raw)
        else:
            h = {"Host": "127.0.0.1", "Connection": "close", "Content-Length": str(len(body))}
            if auth:
                h["Authorization"] = "Bearer " + token
            h.update(headers or {})
            head = "%s %s HTTP/1.1\r\n" % (method, path) + "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
            data = head.encode() + body
            if cut_at is not None:
                s.sendall(data[: len(head) + cut_at])
                return None  # close mid-upload: no answer expected
            s.sendall(data)
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        reply = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            reply += chunk
        return reply
    finally:
        s.close()


def status(reply):
    try:
        return int(reply.split(b" ", 2)[1])
    except (IndexError, ValueError, AttributeError):
        return 0


kinds = {}


def kind(name, expect):
    def deco(fn):
        kinds[name] = (fn, expect)
        return fn
    return deco


@kind("no token", {401})
def _():
    return request("POST", "/api/targets/%s/flash" % target, b"x" * 100, auth=False)


@kind("wrong token", {401})
def _():
    return request("POST", "/api/targets/%s/flash" % target, b"x" * 100,
                   headers={"Authorization": "Bearer " + token[:-1] + "Z"}, auth=False)


@kind("too big (Content-Length)", {413})
def _():
    return request("POST", "/api/targets/%s/flash" % target,
                   raw=("POST /api/targets/%s/flash HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                        "Content-Length: %d\r\n\r\n" % (target, token, MAX_BODY + 1 + rng.randrange(10 ** 6))).encode()
                   + b"\0" * 1000)


@kind("too big (chunked)", {413})
def _():
    chunk = b"\xaa" * 16384
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(MAX_BODY // len(chunk) + 2)) + b"0\r\n\r\n"
    return request(None, None, raw=("POST /api/targets/%s/flash HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                                    "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" % (target, token)).encode() + body)


@kind("corrupt HEX", {422})
def _():
    return request("POST", "/api/targets/%s/flash?format=hex" % target, bad_hex())


@kind("corrupt ELF", {422})
def _():
    return request("POST", "/api/targets/%s/flash" % target, b"\x7fELF\x01\x01\x01" + bytes(rng.getrandbits(8) for _ in range(200)))


@kind("empty image", {422})
def _():
    return request("POST", "/api/targets/%s/flash" % target, b"")


@kind("address outside flash", {422})
def _():
    return request("POST", "/api/targets/%s/flash?address=0x20000000" % target, b"\x01" * 256)


@kind("bad address", {400})
def _():
    return request("POST", "/api/targets/%s/flash?address=%s" % (target, rng.choice(["zz", "-1", "0x1ffffffff", "1e3"])), b"\x01" * 64)


@kind("bad format", {400})
def _():
    return request("POST", "/api/targets/%s/flash?format=exe" % target, b"\x01" * 64)


@kind("format contradicts content", {422})
def _():
    return request("POST", "/api/targets/%s/flash?format=srec" % target, b"\x01" * 64)


@kind("unknown target", {404})
def _():
    return request("POST", "/api/targets/nosuch%d/flash" % rng.randrange(1000), b"\x01" * 64)


@kind("unknown action", {404})
def _():
    return request("POST", "/api/targets/%s/explode" % target, b"")


@kind("wrong method", {405})
def _():
    return request(rng.choice(["GET", "PUT", "DELETE"]), "/api/targets/%s/flash" % target, b"")


@kind("malformed multipart", {400, 422})
def _():
    body = b"--XYZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.bin\"\r\n\r\n" + bytes(
        rng.getrandbits(8) for _ in range(rng.randrange(0, 300)))
    return request("POST", "/api/targets/%s/flash" % target, body,
                   headers={"Content-Type": "multipart/form-data; boundary=XYZ"})


@kind("dropped mid-upload", None)
def _():
    n = rng.randrange(1000, MAX_BODY)
    return request("POST", "/api/targets/%s/flash" % target, bytes(rng.getrandbits(8) for _ in range(n)), cut_at=rng.randrange(0, n))


@kind("garbage bytes", None)
def _():
    return request(None, None, raw=bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 4000))))


@kind("garbage request line", {400, 505, 0})
def _():
    return request(None, None, raw=rng.choice([b"HELLO\r\n\r\n", b"GET\r\n\r\n", b"POST / HTTP/9.9\r\n\r\n",
                                               b"GET /api/targets HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n"]))


@kind("huge headers", {413, 431, 400, 0})
def _():
    return request(None, None, raw=b"GET /api/targets HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")


names = sorted(kinds)
counts = {n: 0 for n in names}
bad = 0
order = names + [rng.choice(names) for _ in range(max(0, count - len(names)))]
for i, n in enumerate(order[:count] if count >= len(names) else order[:count]):
    fn, expect = kinds[n]
    try:
        reply = fn()
    except (ConnectionResetError, BrokenPipeError):
        reply = b""  # the daemon closed on us: fine for kinds that expect no answer
    counts[n] += 1
    st = status(reply) if reply is not None else None
    if expect is not None and st not in expect:
        bad += 1
        print("UNEXPECTED: request %d (%s): status %s, expected %s: %r" % (i, n, st, sorted(expect), (reply or b"")[:300]))
    elif expect is not None and st and st != 0 and b'"exit_code"' not in reply and b'"error"' not in reply \
            and st not in (400, 413, 431, 505):
        bad += 1
        print("UNEXPECTED: request %d (%s): no JSON error body: %r" % (i, n, reply[:300]))
for n in names:
    print("%-28s %d" % (n, counts[n]))
print("sent %d bad requests (seed %d), %d unexpected answers" % (sum(counts.values()), seed, bad))
sys.exit(1 if bad else 0)
