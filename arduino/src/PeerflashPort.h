/* A pf_port over an Arduino Stream (HardwareSerial, SoftwareSerial, ...) and
 * an optional reset pin: the link from this board to the MCU it flashes.
 *
 *   PeerflashPort target(Serial1, 53);   // Serial1 to the target's RX/TX, pin 53 to its RESET
 *   target.begin();                      // reset pin: output, high (target running)
 *   pf_target_config cfg = PF_TARGET_CONFIG_DEFAULT();
 *   cfg.port = target.port();
 *
 * read() waits with millis() deadlines; write() queues into the Stream;
 * drain() is Stream::flush() (HardwareSerial waits until the last byte has
 * left); set_line() calls HardwareSerial::begin() when the port was given a
 * HardwareSerial (others return PF_ERR_UNSUPPORTED, which the core accepts).
 *
 * set_lines() drives the reset pin the way the Arduino auto-reset circuit
 * turns DTR into a reset: the drivers assert DTR to reset the target, and on
 * a board the 100 nF capacitor between DTR# and RESET turns that falling
 * edge into a short low pulse. Wired straight to RESET, holding the pin low
 * would keep the target in reset, so the port makes the pulse itself:
 * asserting DTR (or RTS) drives the pin low for PEERFLASH_RESET_PULSE_US and
 * then high again; releasing does nothing. With no pin (-1) set_lines()
 * returns PF_ERR_UNSUPPORTED and the driver relies on the target resetting
 * on its own. */
#ifndef PEERFLASH_PORT_ARDUINO_H
#define PEERFLASH_PORT_ARDUINO_H

#include <Arduino.h>

#include "peerflash/pf_err.h"
#include "peerflash/pf_port.h"

#ifndef PEERFLASH_RESET_PULSE_US
#define PEERFLASH_RESET_PULSE_US 1000u /* like the capacitor's pulse; the ATmega needs > 2.5 us */
#endif

class PeerflashPort {
public:
    PeerflashPort(Stream &link, int resetPin = -1);
    PeerflashPort(HardwareSerial &link, int resetPin = -1);
    /* Configures the reset pin (output, high). Call from setup(). */
    void begin();
    /* The port table for the core; valid as long as this object. */
    const pf_port *port() const { return &port_; }
    /* Sends the core's log lines (level <= maxLevel) to out; NULL turns it off. */
    void setLog(Print *out, int maxLevel = 1);
    /* Pulls the target's RESET low for ms milliseconds, then releases it
     * (e.g. to restart the target's program). No-op without a pin. */
    void resetTarget(uint16_t ms = 1);

private:
    void init();
    static int read(void *ctx, uint8_t *buf, size_t n, uint32_t timeout_ms);
    static int write(void *ctx, const uint8_t *buf, size_t n);
    static int drain(void *ctx);
    static int flushInput(void *ctx);
    static int setLine(void *ctx, uint32_t baud, pf_frame frame);
    static int setLines(void *ctx, int dtr, int rts);
    static uint32_t nowMs(void *ctx);
    static void delayMs(void *ctx, uint32_t ms);
    static void log(void *ctx, int level, const char *msg);

    Stream &link_;
    HardwareSerial *hw_;
    int resetPin_;
    int asserted_;
    uint32_t baud_;
    Print *log_;
    int logLevel_;
    pf_port port_;
};

#endif
