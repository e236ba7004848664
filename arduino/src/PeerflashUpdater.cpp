/* The serial HEX updater (PeerflashUpdater.h): credit flow control on the
 * host Stream, the two passes of pf_hexflash, and the AVR driver. */
#include "PeerflashUpdater.h"

#include <string.h>

#include "targets/avr_state.h" /* only to check that avr_ is big enough */

static_assert(sizeof(pf_avr) <= PF_ARDUINO_AVR_STATE, "PF_ARDUINO_AVR_STATE is smaller than the AVR driver's state");

PeerflashHexUpdater::PeerflashHexUpdater(Stream &host, PeerflashPort &target, const char *chip,
                                         uint16_t *table, uint16_t tableSize)
    : host_(host), target_(target), chipName_(chip), chip_(NULL), table_(table), tableSize_(tableSize),
      baud_(115200), granted_(0), consumed_(0), ok_(false)
{
    diag_.text[0] = '\0';
}

bool PeerflashHexUpdater::begin()
{
    chip_ = pf_avr_chip_by_name(chipName_);
    int r = chip_ ? PF_OK : pf_diag_set(&diag_, PF_ERR_CHIP, "unknown AVR chip '%s'", chipName_);
    if (r == PF_OK && chip_->page_size > PF_HEXFLASH_PAGE_MAX)
        r = pf_diag_set(&diag_, PF_ERR_NOMEM, "the %s's %u-byte pages need PF_HEXFLASH_PAGE_MAX >= %u", chip_->name,
                        (unsigned)chip_->page_size, (unsigned)chip_->page_size);
    if (r == PF_OK)
        r = pf_hexflash_init(&hex_, chip_->page_size, chip_->flash_size - chip_->boot_size, table_, tableSize_, &diag_);
    if (r < 0) {
        if (!diag_.text[0])
            pf_diag_set(&diag_, r, "bad configuration: %s", pf_strerror(r));
        fail(F("setup"), r);
        ok_ = false;
        return false;
    }
    ok_ = true;
    ready();
    return true;
}

void PeerflashHexUpdater::restartCredit()
{
    granted_ = 0;
    consumed_ = 0;
}

/* Tops the host's allowance up to the window: one XON per chunk. */
void PeerflashHexUpdater::grant()
{
    while ((int32_t)(granted_ - consumed_) + PEERFLASH_CREDIT_CHUNK <= PEERFLASH_CREDIT_WINDOW) {
        host_.write((uint8_t)PEERFLASH_XON);
        granted_ += PEERFLASH_CREDIT_CHUNK;
    }
}

void PeerflashHexUpdater::ready()
{
    restartCredit();
    host_.print(F("PF READY target="));
    host_.print(chip_->name);
    host_.print(F(" page="));
    host_.print(chip_->page_size);
    host_.print(F(" pages="));
    host_.print(tableSize_);
    host_.print(F(" window="));
    host_.println(PEERFLASH_CREDIT_WINDOW);
    grant();
}

void PeerflashHexUpdater::discardUntilQuiet()
{
    uint32_t last = millis();
    while ((uint32_t)(millis() - last) < PEERFLASH_QUIET_MS) {
        if (host_.read() >= 0)
            last = millis();
    }
}

int PeerflashHexUpdater::fail(const __FlashStringHelper *phase, int err)
{
    host_.print(F("PF FAIL phase="));
    host_.print(phase);
    host_.print(F(" written="));
    host_.print(hex_.written);
    host_.print(F(" error="));
    host_.print(err);
    host_.print(F(": "));
    host_.println(diag_.text[0] ? diag_.text : pf_strerror(err));
    return err;
}

/* Reads one copy of the HEX text under credit, up to the end-of-file line. */
int PeerflashHexUpdater::receivePass()
{
    uint32_t last = millis();
    for (;;) {
        grant();
        int c = host_.read();
        if (c < 0) {
            if ((uint32_t)(millis() - last) >= PEERFLASH_HOST_TIMEOUT_MS)
                return pf_diag_set(&diag_, PF_ERR_TIMEOUT, "line %lu: the host sent nothing for %lu ms",
                                   (unsigned long)hex_._hex.line, (unsigned long)PEERFLASH_HOST_TIMEOUT_MS);
            continue;
        }
        last = millis();
        consumed_++;
        uint8_t b = (uint8_t)c;
        int r = pf_hexflash_feed(&hex_, &b, 1, NULL);
        if (r != 0)
            return r;
    }
}

/* Resets the target through the pin and syncs with its bootloader. The
 * ~400-byte pf_target_info borrows the HEX parser's storage, idle between the
 * passes, instead of the stack (the 2560's stack is what is left of 8 KiB). */
int PeerflashHexUpdater::connectTarget()
{
    static_assert(sizeof(pf_target_info) <= sizeof(pf_ihex), "pf_target_info must fit the parser's storage");
    pf_target_info &info = *static_cast<pf_target_info *>(pf_hexflash_scratch(&hex_, NULL));
    pf_target_config cfg = PF_TARGET_CONFIG_DEFAULT();
    cfg.port = target_.port();
    cfg.diag = &diag_;
    cfg.baud = baud_;
    cfg.chip = chip_->name;
    memset(&avr_, 0, sizeof avr_);
    int r = pf_target_avr.open(&avr_, &cfg);
    if (r == PF_OK)
        r = pf_target_avr.connect(&avr_, &info);
    if (r == PF_OK && info.geom.write_align != chip_->page_size)
        r = pf_diag_set(&diag_, PF_ERR_CHIP, "%lu-byte pages, not %u", (unsigned long)info.geom.write_align,
                        (unsigned)chip_->page_size);
    if (r < 0) {
        pf_target_avr.close(&avr_);
        return r;
    }
    host_.print(F("PF CONNECTED chip="));
    host_.print(info.chip);
    host_.print(F(" bootloader="));
    host_.println(info.bootloader);
    return PF_OK;
}

int PeerflashHexUpdater::session()
{
    uint32_t t0 = millis();
    diag_.text[0] = '\0';
    /* Pass 1: check the whole text; the target is not touched. */
    int r = pf_hexflash_begin_check(&hex_);
    if (r == PF_OK)
        r = receivePass();
    if (r >= 0)
        r = pf_hexflash_finish(&hex_);
    if (r < 0)
        return fail(F("check"), r);
    restartCredit(); /* before the line: XONs after it are for the second copy */
    host_.print(F("PF CHECKED pages="));
    host_.print(hex_.pages);
    host_.print(F(" data="));
    host_.print(hex_.data_bytes);
    host_.print(F(" crc32="));
    char crc[9];
    pf_format(crc, sizeof crc, "%08lx", (unsigned long)hex_.crc32);
    host_.println(crc);

    r = connectTarget();
    if (r < 0)
        return fail(F("connect"), r);

    /* Pass 2: each page must match pass 1 before it is written. */
    r = pf_hexflash_begin_write(&hex_, &pf_target_avr, &avr_);
    if (r == PF_OK)
        r = receivePass();
    if (r >= 0)
        r = pf_hexflash_finish(&hex_);
    if (r < 0) {
        pf_target_avr.close(&avr_);
        return fail(hex_.written == hex_.pages ? F("verify") : F("write"), r);
    }
    r = pf_target_avr.run(&avr_);
    pf_target_avr.close(&avr_);
    if (r < 0)
        return fail(F("run"), r);
    host_.print(F("PF DONE pages="));
    host_.print(hex_.pages);
    host_.print(F(" written="));
    host_.print(hex_.written);
    host_.print(F(" verified="));
    host_.print(hex_.verified);
    host_.print(F(" ms="));
    host_.println((uint32_t)(millis() - t0));
    return PF_OK;
}

int PeerflashHexUpdater::poll()
{
    if (!ok_ || host_.available() <= 0)
        return 0;
    int r = session();
    discardUntilQuiet();
    ready();
    return r < 0 ? -1 : 1;
}
