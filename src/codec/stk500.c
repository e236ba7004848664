/* STK500v1 command encoders and reply checks (see stk500.h). */
#include "codec/stk500.h"

#include "peerflash/pf_bytes.h"

size_t pf_stk_get_sync(uint8_t out[2])
{
    out[0] = PF_STK_GET_SYNC;
    out[1] = PF_STK_CRC_EOP;
    return 2;
}

size_t pf_stk_read_sign(uint8_t out[2])
{
    out[0] = PF_STK_READ_SIGN;
    out[1] = PF_STK_CRC_EOP;
    return 2;
}

size_t pf_stk_enter_progmode(uint8_t out[2])
{
    out[0] = PF_STK_ENTER_PROGMODE;
    out[1] = PF_STK_CRC_EOP;
    return 2;
}

size_t pf_stk_leave_progmode(uint8_t out[2])
{
    out[0] = PF_STK_LEAVE_PROGMODE;
    out[1] = PF_STK_CRC_EOP;
    return 2;
}

size_t pf_stk_get_parameter(uint8_t out[3], uint8_t param)
{
    out[0] = PF_STK_GET_PARAMETER;
    out[1] = param;
    out[2] = PF_STK_CRC_EOP;
    return 3;
}

size_t pf_stk_load_address(uint8_t out[4], uint16_t word_addr)
{
    out[0] = PF_STK_LOAD_ADDRESS;
    pf_put_le16(out + 1, word_addr);
    out[3] = PF_STK_CRC_EOP;
    return 4;
}

size_t pf_stk_load_ext_address(uint8_t out[6], uint8_t ext)
{
    out[0] = PF_STK_UNIVERSAL;
    out[1] = 0x4D;
    out[2] = 0x00;
    out[3] = ext;
    out[4] = 0x00;
    out[5] = PF_STK_CRC_EOP;
    return 6;
}

size_t pf_stk_prog_page(uint8_t *out, char mem, const uint8_t *data, size_t len)
{
    if (len == 0 || len > PF_STK_MAX_BLOCK)
        return 0;
    out[0] = PF_STK_PROG_PAGE;
    pf_put_be16(out + 1, (uint16_t)len);
    out[3] = (uint8_t)mem;
    for (size_t i = 0; i < len; i++)
        out[4 + i] = data[i];
    out[4 + len] = PF_STK_CRC_EOP;
    return len + 5;
}

size_t pf_stk_read_page(uint8_t out[5], char mem, size_t len)
{
    if (len == 0 || len > PF_STK_MAX_BLOCK)
        return 0;
    out[0] = PF_STK_READ_PAGE;
    pf_put_be16(out + 1, (uint16_t)len);
    out[3] = (uint8_t)mem;
    out[4] = PF_STK_CRC_EOP;
    return 5;
}

const char *pf_stk_status_name(uint8_t b)
{
    switch (b) {
    case PF_STK_OK: return "OK";
    case PF_STK_FAILED: return "FAILED";
    case PF_STK_UNKNOWN: return "UNKNOWN";
    case PF_STK_NODEVICE: return "NODEVICE";
    case PF_STK_INSYNC: return "INSYNC";
    case PF_STK_NOSYNC: return "NOSYNC";
    default: return NULL;
    }
}

static int bad_byte(pf_diag *diag, const char *command, const char *where, uint8_t want, uint8_t got, uint8_t *bad)
{
    if (bad)
        *bad = got;
    const char *name = pf_stk_status_name(got);
    return pf_diag_set(diag, PF_ERR_PROTOCOL, "bootloader answered 0x%02x%s%s%s %s of %s (0x%02x) to %s", got,
                       name ? " (" : "", name ? name : "", name ? ")" : "", where, pf_stk_status_name(want), want,
                       command ? command : "the command");
}

int pf_stk_check_reply(const uint8_t *reply, size_t n, const char *command, uint8_t *bad, pf_diag *diag)
{
    if (!reply || n < 2)
        return PF_ERR_ARG;
    if (reply[0] != PF_STK_INSYNC)
        return bad_byte(diag, command, "instead", PF_STK_INSYNC, reply[0], bad);
    if (reply[n - 1] != PF_STK_OK)
        return bad_byte(diag, command, "at the end instead", PF_STK_OK, reply[n - 1], bad);
    return PF_OK;
}
