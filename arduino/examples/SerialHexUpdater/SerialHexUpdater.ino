// SerialHexUpdater: an Arduino Mega 2560 flashes an ATmega328P (an Uno, a
// Nano, a Pro Mini) that runs Optiboot.
//
// Wiring (Mega -> 328P):  TX1 (pin 18) -> RX (D0),  RX1 (pin 19) <- TX (D1),
//                         pin 53 -> RESET,  GND -> GND.
// Serial (USB, or a WiFi module on RX0/TX0) brings the Intel HEX file, twice:
// the first copy is only checked (a corrupt line stops there, before the
// 328P is touched), the second is written page by page. Flow control is by
// credit: each XON (0x11) the Mega sends allows 16 more bytes. The Mega never
// holds the image: one page and 2 bytes per page of bookkeeping.
// The host side is described in docs/MCU.md (peerflash repository).
#include <Peerflash.h>

static const int kResetPin = 53;                 // PB0, to the 328P's RESET
static const uint16_t kMaxPages = (32768 - 512) / 128;  // the 328P's flash below Optiboot

static PeerflashPort target(Serial1, kResetPin);
static uint16_t pages[kMaxPages];                 // one CRC-16 per page: 504 bytes
static PeerflashHexUpdater updater(Serial, target, "atmega328p", pages, kMaxPages);

void setup()
{
    Serial.begin(115200);   // host: PC or WiFi module
    Serial1.begin(115200);  // the 328P's Optiboot
    target.begin();
    updater.begin();        // prints "PF READY ..." and grants the first credit
}

void loop()
{
    updater.poll();         // one whole session when the host starts sending
}
