/* pf_port over an Arduino Stream and a reset pin (PeerflashPort.h). */
#include "PeerflashPort.h"

PeerflashPort::PeerflashPort(Stream &link, int resetPin)
    : link_(link), hw_(NULL), resetPin_(resetPin), asserted_(0), baud_(0), log_(NULL), logLevel_(0)
{
    init();
}

PeerflashPort::PeerflashPort(HardwareSerial &link, int resetPin)
    : link_(link), hw_(&link), resetPin_(resetPin), asserted_(0), baud_(0), log_(NULL), logLevel_(0)
{
    init();
}

void PeerflashPort::init()
{
    port_.ctx = this;
    port_.read = read;
    port_.write = write;
    port_.drain = drain;
    port_.flush_input = flushInput;
    port_.set_line = setLine;
    port_.set_lines = setLines;
    port_.now_ms = nowMs;
    port_.delay_ms = delayMs;
    port_.log = NULL; /* setLog() sets it: without, the core does not format log lines at all */
}

void PeerflashPort::begin()
{
    if (resetPin_ >= 0) {
        digitalWrite(resetPin_, HIGH); /* set the level before the pin becomes an output: no glitch */
        pinMode(resetPin_, OUTPUT);
    }
}

void PeerflashPort::setLog(Print *out, int maxLevel)
{
    log_ = out;
    logLevel_ = maxLevel;
    port_.log = out ? log : NULL;
}

void PeerflashPort::resetTarget(uint16_t ms)
{
    if (resetPin_ < 0)
        return;
    digitalWrite(resetPin_, LOW);
    delay(ms);
    digitalWrite(resetPin_, HIGH);
}

int PeerflashPort::read(void *ctx, uint8_t *buf, size_t n, uint32_t timeout_ms)
{
    PeerflashPort *p = static_cast<PeerflashPort *>(ctx);
    size_t got = 0;
    uint32_t start = millis();
    while (got < n) {
        int c = p->link_.read();
        if (c >= 0) {
            buf[got++] = (uint8_t)c;
            continue;
        }
        if ((uint32_t)(millis() - start) >= timeout_ms)
            break;
    }
    return (int)got;
}

int PeerflashPort::write(void *ctx, const uint8_t *buf, size_t n)
{
    PeerflashPort *p = static_cast<PeerflashPort *>(ctx);
    size_t done = p->link_.write(buf, n); /* HardwareSerial blocks while its ring is full */
    return done == n ? (int)n : PF_ERR_IO;
}

int PeerflashPort::drain(void *ctx)
{
    static_cast<PeerflashPort *>(ctx)->link_.flush();
    return PF_OK;
}

int PeerflashPort::flushInput(void *ctx)
{
    PeerflashPort *p = static_cast<PeerflashPort *>(ctx);
    while (p->link_.read() >= 0) {
    }
    return PF_OK;
}

int PeerflashPort::setLine(void *ctx, uint32_t baud, pf_frame frame)
{
    PeerflashPort *p = static_cast<PeerflashPort *>(ctx);
    if (!p->hw_)
        return PF_ERR_UNSUPPORTED;
    uint32_t key = baud ^ (frame == PF_FRAME_8E1 ? 0x80000000ul : 0);
    if (key != p->baud_) { /* begin() again only when something changes */
        p->hw_->begin(baud, frame == PF_FRAME_8E1 ? SERIAL_8E1 : SERIAL_8N1);
        p->baud_ = key;
    }
    return PF_OK;
}

int PeerflashPort::setLines(void *ctx, int dtr, int rts)
{
    PeerflashPort *p = static_cast<PeerflashPort *>(ctx);
    if (p->resetPin_ < 0)
        return PF_ERR_UNSUPPORTED;
    int want = dtr == PF_LINE_ASSERT || rts == PF_LINE_ASSERT;
    int keep = dtr == PF_LINE_KEEP && rts == PF_LINE_KEEP;
    if (keep)
        return PF_OK;
    if (want && !p->asserted_) { /* the capacitor's pulse on the falling edge */
        digitalWrite(p->resetPin_, LOW);
        delayMicroseconds(PEERFLASH_RESET_PULSE_US);
        digitalWrite(p->resetPin_, HIGH);
    }
    p->asserted_ = want;
    return PF_OK;
}

uint32_t PeerflashPort::nowMs(void *ctx)
{
    (void)ctx;
    return millis();
}

void PeerflashPort::delayMs(void *ctx, uint32_t ms)
{
    (void)ctx;
    delay(ms);
}

void PeerflashPort::log(void *ctx, int level, const char *msg)
{
    PeerflashPort *p = static_cast<PeerflashPort *>(ctx);
    if (!p->log_ || level > p->logLevel_)
        return;
    p->log_->print(F("PF LOG "));
    p->log_->println(msg);
}
