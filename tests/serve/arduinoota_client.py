#!/usr/bin/python3
"""An arduinoOTA client written from the tool's behaviour (arduino/arduinoOTA
main.go 1.1.1-1.4.1; the Arduino AVR core's network upload), for CI, where
the Go tool is not available from Debian:
  POST SYNC must answer the code of -sync_exp (default 200), else exit 1;
  GET SYNC up to 10 times, 1 s apart, until the body contains the sync string;
  POST UPLOAD: the .hex with every line break removed, as
       application/x-www-form-urlencoded (-b: the file as is, as
       application/octet-stream); Basic auth only with -username and -password;
       200 = success, else "Error flashing the sketch:" + body and exit 1;
  POST RESET after a success (a failure there still exits 0).
Every request has the tool's 10 s timeout (-t). Prints what the tool prints.
usage: arduinoota_client.py -address A -port P -sketch F -upload EP [-sync EP]
       [-reset EP] [-sync_exp CODE:STRING] [-username U -password W] [-b] [-t S]"""
import base64
import http.client
import re
import sys
import time

a = sys.argv[1:]


def opt(name, default=""):
    return a[a.index(name) + 1] if name in a else default


address, port = opt("-address", "localhost"), int(opt("-port", "80"))
sketch, upload, sync, reset = opt("-sketch"), opt("-upload"), opt("-sync"), opt("-reset")
user, password = opt("-username"), opt("-password")
binary, timeout = "-b" in a, int(opt("-t", "10"))
sync_code, sync_string = 200, "SYNC"
if opt("-sync_exp"):
    parts = opt("-sync_exp").split(":")
    if len(parts) == 2:
        sync_code, sync_string = int(parts[0]), parts[1]


def request(method, path, body=None, headers=None):
    c = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        c.close()


if sync:
    print("Resetting the board")
    try:
        status, _ = request("POST", sync, b"")
    except OSError:
        status = None
    if status != sync_code:
        print("Failed to reset the board, upload failed")
        sys.exit(1)
    print("Waiting for the upload to start")
    for _ in range(10):
        try:
            _, text = request("GET", sync)
        except OSError:
            print("Failed to reset the board, upload failed")
            sys.exit(1)
        if sync_string in text:
            print(text)
            break
        time.sleep(1)

if upload:
    data = open(sketch, "rb").read()
    if binary:
        ctype = "application/octet-stream"
    else:
        data = re.sub(rb"\r?\n", b"", data)
        ctype = "application/x-www-form-urlencoded"
    headers = {"Content-Type": ctype}
    if user and password:
        headers["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
    try:
        status, text = request("POST", upload, data, headers)
    except OSError as e:  # the 10 s timeout included
        print("Error flashing the sketch (%s)" % e)
        sys.exit(1)
    if status != 200:
        print("Error flashing the sketch:" + text)
        sys.exit(1)
    print(text)
    print("Sketch uploaded successfully")

if reset:
    print("Resetting the board")
    try:
        request("POST", reset, b"")
    except OSError:
        print("Failed to reset the board, please reset maually")
sys.exit(0)
