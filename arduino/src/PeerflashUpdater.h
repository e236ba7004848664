/* A serial HEX updater: another device (a PC, a WiFi module, a second MCU)
 * sends an Intel HEX file over a Stream, and this board writes it into an AVR
 * with an STK500v1 bootloader (Optiboot) through a PeerflashPort, page by
 * page, never holding the image (pf_hexflash.h).
 *
 *   static PeerflashPort target(Serial1, 53);
 *   static uint16_t pages[252];                  // one CRC-16 per page of the image
 *   static PeerflashHexUpdater updater(Serial, target, "atmega328p", pages, 252);
 *   void setup() { Serial.begin(115200); Serial1.begin(115200); target.begin(); updater.begin(); }
 *   void loop() { updater.poll(); }
 *
 * The protocol on the host Stream (docs/MCU.md has the full description):
 *  - Flow control by credit: each XON byte (0x11) this board sends allows
 *    the host PEERFLASH_CREDIT_CHUNK more bytes. At most PEERFLASH_CREDIT_WINDOW
 *    bytes are ever allowed and unread, which fits the Stream's receive ring
 *    (64 bytes on an AVR) while this board is busy writing a page.
 *  - Lines from this board start with "PF ":
 *      PF READY target=ATmega328P page=128 pages=252 window=48
 *      PF CHECKED pages=N data=BYTES crc32=XXXXXXXX     (after the first copy)
 *      PF CONNECTED chip=ATmega328P bootloader=Optiboot 4.4
 *      PF DONE pages=N written=N verified=N ms=T
 *      PF FAIL phase=check|connect|write|verify|run written=K error=E: text
 *  - The host sends the HEX text (up to and including the end-of-file
 *    record's line) once, waits for "PF CHECKED" (credit then starts again
 *    from zero) and sends the same text a second time. "written=0" in a FAIL
 *    line means nothing was written to the target. After DONE or FAIL the
 *    board discards input until the line is quiet, then says READY again. */
#ifndef PEERFLASH_UPDATER_ARDUINO_H
#define PEERFLASH_UPDATER_ARDUINO_H

#include <Arduino.h>

#include "PeerflashPort.h"
#include "peerflash/pf_avr.h"
#include "pf_hexflash.h"

/* Bytes of the AVR driver's state on this MCU: sizeof its private struct
 * (577 on an 8-bit AVR, measured with avr-gcc 5.4; more with the 4-byte
 * pointers of a 32-bit board). PeerflashUpdater.cpp refuses to compile when
 * the driver's state has outgrown it. */
#ifndef PF_ARDUINO_AVR_STATE
#ifdef __AVR__
#define PF_ARDUINO_AVR_STATE 577
#else
#define PF_ARDUINO_AVR_STATE 640
#endif
#endif
/* Storage for the AVR driver's state (pass its address as the driver's self). */
typedef union PeerflashAvrState {
    uint8_t bytes[PF_ARDUINO_AVR_STATE];
    void *align_p;
    uint32_t align_u;
} PeerflashAvrState;

#ifndef PEERFLASH_CREDIT_CHUNK
#define PEERFLASH_CREDIT_CHUNK 16 /* bytes allowed per XON */
#endif
#ifndef PEERFLASH_CREDIT_WINDOW
#define PEERFLASH_CREDIT_WINDOW 48 /* most bytes allowed and unread; < the receive ring (64 on AVR) */
#endif
#ifndef PEERFLASH_HOST_TIMEOUT_MS
#define PEERFLASH_HOST_TIMEOUT_MS 5000u /* a pass fails when the host sends nothing this long */
#endif
#ifndef PEERFLASH_QUIET_MS
#define PEERFLASH_QUIET_MS 200u /* after a session: input is discarded until the line is this quiet */
#endif
#define PEERFLASH_XON 0x11

class PeerflashHexUpdater {
public:
    PeerflashHexUpdater(Stream &host, PeerflashPort &target, const char *chip, uint16_t *pageCrcs,
                        uint16_t maxPages);
    /* Looks up the chip and says READY (or FAIL phase=setup). Call from setup(). */
    bool begin();
    /* Call from loop(): when the host starts sending, runs the whole session
     * (both passes, write, verify, start the new program) before returning.
     * Returns 1 after a session that succeeded, -1 after one that failed,
     * 0 when nothing happened. */
    int poll();
    /* Line rate to the target's bootloader (default 115200, Optiboot's). */
    void setTargetBaud(uint32_t baud) { baud_ = baud; }
    /* The last failure's explanation ("" after a success). */
    const char *lastError() const { return diag_.text; }

private:
    int session();
    int receivePass();
    int connectTarget();
    int fail(const __FlashStringHelper *phase, int err);
    void grant();
    void restartCredit();
    void ready();
    void discardUntilQuiet();

    Stream &host_;
    PeerflashPort &target_;
    const char *chipName_;
    const pf_avr_chip *chip_;
    uint16_t *table_;
    uint16_t tableSize_;
    uint32_t baud_;
    uint32_t granted_, consumed_;
    bool ok_;
    pf_diag diag_;
    pf_hexflash hex_;
    /* The AVR driver's state: opaque storage of pf_target_avr.ctx_size bytes, as
     * for every caller of a driver (the size is checked when the library is
     * compiled). Its pf_target_info borrows hex_'s parser during connect. */
    PeerflashAvrState avr_;
};

#endif
