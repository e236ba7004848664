// Cross-checks peerflash's ESP app image writer/reader with esptool-js's
// firmware-image classes (a real producer from npm).
// usage: node esp_image_xcheck.mjs DIR
//   reads DIR/ours-esp32.bin and DIR/ours-esp32s3.bin (built by test_esp_image
//   --write DIR) with esptool-js and checks header, segments and checksum;
//   writes DIR/esptooljs-esp32s3.bin with esptool-js for our reader to check.
import fs from "node:fs";
import { ESP32FirmwareImage } from "esptool-js/lib/image/esp32.js";
import { ImageSegment } from "esptool-js/lib/image/base.js";
import { ESP32ROM } from "esptool-js/lib/targets/esp32.js";
import { ESP32S3ROM } from "esptool-js/lib/targets/esp32s3.js";

const dir = process.argv[2];
let bad = 0;
for (const [name, rom, chipId] of [["ours-esp32.bin", new ESP32ROM(), 0], ["ours-esp32s3.bin", new ESP32S3ROM(), 9]]) {
  const data = new Uint8Array(fs.readFileSync(`${dir}/${name}`));
  const img = new ESP32FirmwareImage(rom);
  await img.loadFromFile(data);
  const ok = img.checksum === img.calculateChecksum() && img.chipId === chipId && img.segments.length === 2 &&
    img.entrypoint === 0x400d1234;
  console.log(`${name}: esptool-js reads ${img.segments.length} segments, chip id ${img.chipId}, checksum ` +
    `0x${img.checksum.toString(16)} (computed 0x${img.calculateChecksum().toString(16)}): ${ok ? "OK" : "MISMATCH"}`);
  if (!ok) bad++;
}
// esptool-js 0.7.0's save() writes the appended SHA-256 over the checksum
// byte (its reader has the matching off-by-one), so its digest images do not
// follow esptool.py's layout; the image without a digest is the comparable one.
for (const digest of [false, true]) {
  const img = new ESP32FirmwareImage(new ESP32S3ROM(), null, digest);
  img.chipId = 9;
  img.entrypoint = 0x40378000;
  const a = new Uint8Array(3000).map((_, i) => (i * 13 + 1 + (i >> 7)) & 0xff);
  const b = new Uint8Array(1236).map((_, i) => (i * 7 + 3 + (i >> 5)) & 0xff);
  img.segments = [new ImageSegment(0x3fc88000, a), new ImageSegment(0x40378000, b)];
  const out = await img.save();
  const name = `esptooljs-esp32s3${digest ? "-digest" : ""}.bin`;
  fs.writeFileSync(`${dir}/${name}`, out);
  console.log(`esptool-js wrote ${name} (${out.length} bytes buffer)`);
}
process.exit(bad ? 1 : 0);
