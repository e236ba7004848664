// Drives the unmodified esptool-js from Node through a minimal Web-Serial-like
// port over a TCP socket (the simulator's tcp-listen endpoint): connect, detect
// the chip, upload the stub, switch baud, write compressed, verify by MD5.
// usage: node esptool_js_flash.mjs PORT IMAGE ADDR BAUD
// Prints one line "RESULT {json}" on success; exits non-zero on failure.
import net from "node:net";
import fs from "node:fs";
import { createHash } from "node:crypto";
import { ReadableStream, WritableStream } from "node:stream/web";
import { ESPLoader, Transport } from "esptool-js";

const [tcpPort, imagePath, addrStr, baudStr] = process.argv.slice(2);

class TcpSerialPort {
  constructor(host, port) {
    this.host = host;
    this.port = port;
    this.readable = null;
    this.writable = null;
    this.baudRate = 0;
  }
  async open(opts) {
    this.baudRate = opts.baudRate;
    const sock = net.connect({ host: this.host, port: this.port });
    sock.setNoDelay(true);
    await new Promise((ok, fail) => {
      sock.once("connect", ok);
      sock.once("error", fail);
    });
    this.sock = sock;
    this.readable = new ReadableStream({
      start(c) {
        sock.on("data", (d) => c.enqueue(new Uint8Array(d)));
        sock.on("end", () => { try { c.close(); } catch (e) { /* already closed */ } });
        sock.on("error", (e) => { try { c.error(e); } catch (x) { /* already errored */ } });
      },
    });
    this.writable = new WritableStream({
      write(chunk) {
        return new Promise((ok, fail) => sock.write(Buffer.from(chunk), (e) => (e ? fail(e) : ok())));
      },
    });
  }
  async setSignals() { /* a TCP link has no modem lines */ }
  async setBaudRate(b) { this.baudRate = b; /* and no line rate either */ }
  getInfo() { return {}; }
  async close() {
    if (this.sock) this.sock.destroy();
    this.readable = null;
    this.writable = null;
  }
}

const lines = [];
const terminal = {
  clean() {},
  writeLine(s) { lines.push(s); console.log(s); },
  write(s) { process.stdout.write(s); },
};

const data = new Uint8Array(fs.readFileSync(imagePath));
const address = Number(addrStr);
const device = new TcpSerialPort("127.0.0.1", Number(tcpPort));
const transport = new Transport(device, false);
const loader = new ESPLoader({ transport, baudrate: Number(baudStr), romBaudrate: 115200, terminal });
const t0 = Date.now();
const chip = await loader.main("no_reset");
const t1 = Date.now();
await loader.writeFlash({
  fileArray: [{ data, address }],
  flashSize: "keep",
  flashMode: "keep",
  flashFreq: "keep",
  eraseAll: false,
  compress: true,
  calculateMD5Hash: (img) => createHash("md5").update(img).digest("hex"),
});
const t2 = Date.now();
const verified = lines.some((l) => l.includes("Hash of data verified"));
// the stub's READ_FLASH (data frames, acks, MD5 frame): read part back
const n = Math.min(data.length, 20000);
const back = await loader.readFlash(address, n);
const readback = back.length === n && back.every((v, i) => v === data[i]);
console.log("RESULT " + JSON.stringify({ chip, stub: loader.IS_STUB, bytes: data.length, connect_ms: t1 - t0, write_ms: t2 - t1, verified, readback }));
await transport.disconnect();
process.exit(verified && readback ? 0 : 1);
