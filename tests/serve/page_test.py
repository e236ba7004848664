#!/usr/bin/python3
"""The upload page of `peerflash serve` in a real headless Chromium, driven
over the DevTools protocol (Debian's chromium + python3-websocket).
usage: page_test.py URL TARGET GOOD_IMAGE BAD_IMAGE FLASH_FILE SHOT.png
 1. on a phone-sized screen, pick the file, press Enter on the Flash button
    (keyboard, no mouse): the page shows success in plain words and the
    simulated target's flash holds the image;
 2. a corrupt image: the page shows the parser's error.
Exit 0 when both hold; prints one line per check."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket

url, target, good, bad, flash_file, shot = sys.argv[1:7]
good, bad = os.path.abspath(good), os.path.abspath(bad)
failed = 0


def check(ok, what):
    global failed
    print(("ok: " if ok else "FAIL: ") + what)
    failed += 0 if ok else 1


profile = tempfile.mkdtemp(prefix="pf-chromium-")
chrome = subprocess.Popen(["/usr/lib/chromium/chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
                           "--disable-dev-shm-usage", "--user-data-dir=" + profile,
                           "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    portfile = os.path.join(profile, "DevToolsActivePort")
    deadline = time.time() + 30
    while not (os.path.exists(portfile) and open(portfile).read().count("\n") >= 1):
        if time.time() > deadline or chrome.poll() is not None:
            sys.exit("FAIL: chromium did not start its DevTools endpoint")
        time.sleep(0.05)
    port = int(open(portfile).read().split("\n")[0])
    pages = json.load(urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=10))
    ws = websocket.create_connection([p for p in pages if p["type"] == "page"][0]["webSocketDebuggerUrl"],
                                     timeout=60, suppress_origin=True)
    seq = [0]
    events = []

    def cdp(method, **params):
        seq[0] += 1
        ws.send(json.dumps({"id": seq[0], "method": method, "params": params}))
        while True:
            m = json.loads(ws.recv())
            if m.get("id") == seq[0]:
                if "error" in m:
                    raise RuntimeError("%s: %s" % (method, m["error"]))
                return m["result"]
            events.append(m)

    def js(expr):
        r = cdp("Runtime.evaluate", expression=expr, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError("page script: %s" % r["exceptionDetails"])
        return r["result"].get("value")

    def wait_js(expr, seconds):
        end = time.time() + seconds
        while time.time() < end:
            v = js(expr)
            if v:
                return v
            time.sleep(0.05)
        return None

    def key(k, code, vk):
        for t in ("keyDown", "keyUp"):
            cdp("Input.dispatchKeyEvent", type=t, key=k, code=code, windowsVirtualKeyCode=vk,
                text="\r" if k == "Enter" and t == "keyDown" else "")

    def set_file(path):
        root = cdp("DOM.getDocument")["root"]["nodeId"]
        node = cdp("DOM.querySelector", nodeId=root, selector="#file")["nodeId"]
        cdp("DOM.setFileInputFiles", files=[path], nodeId=node)

    # a phone: 390 x 844 CSS pixels
    cdp("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=1, mobile=True)
    cdp("Page.enable")
    cdp("Runtime.enable")
    cdp("Page.navigate", url=url)
    loaded = wait_js("document.readyState === 'complete' && document.getElementById('target') !== null && "
                     "document.getElementById('target').options.length > 0", 20)
    check(bool(loaded), "the page loads and lists the targets")
    check(js("document.getElementById('target').value") == target, "the target is chosen")
    width = js("document.documentElement.scrollWidth")
    check(width <= 390, "fits a phone-sized screen without sideways scrolling (%s px wide)" % width)

    # 1. a good image, by keyboard: Tab to the Flash button, Enter
    set_file(good)
    js("document.getElementById('address').focus()")
    key("Tab", "Tab", 9)
    check(js("document.activeElement.id") == "go", "Tab from the address field reaches the Flash button")
    key("Enter", "Enter", 13)
    state = wait_js("document.getElementById('result').dataset.state", 90)
    text = js("document.getElementById('result').textContent")
    check(state == "ok" and text.startswith("Done: wrote %d bytes" % os.path.getsize(good)) and "verified" in text,
          "the page says, in plain words: %r" % text)
    bars = js("Array.from(document.querySelectorAll('.phase')).map(d => d.dataset.phase + ' ' + "
              "d.querySelector('.pct').textContent)")
    check(bars and any(b.startswith("write") for b in bars) and any(b.startswith("verify") for b in bars),
          "progress bars per phase: %s" % bars)
    log = js("document.getElementById('log').textContent")
    check("flash ok" in log and "chip" in log, "the log shows the daemon's lines")
    check(js("document.getElementById('chip').textContent").startswith("STM32"), "the chip is shown")
    img = open(good, "rb").read()
    check(open(flash_file, "rb").read()[:len(img)] == img, "the simulated target holds the image")
    shot_png = cdp("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
    import base64
    open(shot, "wb").write(base64.b64decode(shot_png))

    # 2. a corrupt image: the parser's error on the page, the flash unchanged
    before = open(flash_file, "rb").read()
    set_file(bad)
    js("document.getElementById('go').click()")
    end = time.time() + 30
    while time.time() < end and js("document.getElementById('result').dataset.state") != "error":
        time.sleep(0.05)
    text = js("document.getElementById('result').textContent")
    check(js("document.getElementById('result').dataset.state") == "error" and "bad checksum" in text and
          os.path.basename(bad) in text, "a corrupt image: the page shows the error: %r" % text)
    check(open(flash_file, "rb").read() == before, "the corrupt image did not touch the target")
    errors = [e for e in events if e.get("method") == "Runtime.exceptionThrown"]
    check(not errors, "no script errors on the page")
    ws.close()
finally:
    chrome.terminate()
    try:
        chrome.wait(10)
    except subprocess.TimeoutExpired:
        chrome.kill()
    shutil.rmtree(profile, ignore_errors=True)
sys.exit(1 if failed else 0)
