/* STK500 version 1, as Optiboot and the older Arduino bootloaders speak it:
 * pure encoders and reply checks, no I/O.
 *
 * Every command ends with CRC_EOP (0x20, a space); every reply is
 * STK_INSYNC (0x14), the command's payload bytes, then STK_OK (0x10).
 * Addresses in STK_LOAD_ADDRESS are flash WORD addresses, little-endian;
 * lengths in Program/Read Page are byte counts, big-endian. Parts over
 * 128 KiB set the address bits above the 16-bit word address with the
 * Universal "load extended address" command (0x4D 0x00 ext 0x00). */
#ifndef PEERFLASH_CODEC_STK500_H
#define PEERFLASH_CODEC_STK500_H

#include <stddef.h>
#include <stdint.h>

#include "peerflash/pf_err.h"

#define PF_STK_OK 0x10
#define PF_STK_FAILED 0x11
#define PF_STK_UNKNOWN 0x12
#define PF_STK_NODEVICE 0x13
#define PF_STK_INSYNC 0x14
#define PF_STK_NOSYNC 0x15
#define PF_STK_CRC_EOP 0x20
#define PF_STK_GET_SYNC 0x30
#define PF_STK_GET_PARAMETER 0x41
#define PF_STK_ENTER_PROGMODE 0x50
#define PF_STK_LEAVE_PROGMODE 0x51
#define PF_STK_LOAD_ADDRESS 0x55
#define PF_STK_UNIVERSAL 0x56
#define PF_STK_PROG_PAGE 0x64
#define PF_STK_READ_PAGE 0x74
#define PF_STK_READ_SIGN 0x75

#define PF_STK_PARAM_SW_MAJOR 0x81
#define PF_STK_PARAM_SW_MINOR 0x82

#define PF_STK_MEM_FLASH 'F'
#define PF_STK_MEM_EEPROM 'E'

/* Largest Program/Read Page payload the protocol carries in one command. */
#define PF_STK_MAX_BLOCK 256u
/* Longest command frame: Program Page header (4) + block + CRC_EOP. */
#define PF_STK_MAX_FRAME (4u + PF_STK_MAX_BLOCK + 1u)

/* Encoders: write the whole command (CRC_EOP included) to out, which has room
 * for the size stated, and return its length. */
size_t pf_stk_get_sync(uint8_t out[2]);
size_t pf_stk_read_sign(uint8_t out[2]);
size_t pf_stk_enter_progmode(uint8_t out[2]);
size_t pf_stk_leave_progmode(uint8_t out[2]);
size_t pf_stk_get_parameter(uint8_t out[3], uint8_t param);
/* word_addr: the flash byte address / 2 (low 16 bits). */
size_t pf_stk_load_address(uint8_t out[4], uint16_t word_addr);
/* Universal command 0x4D 0x00 ext 0x00: bits 16.. of the word address. */
size_t pf_stk_load_ext_address(uint8_t out[6], uint8_t ext);
/* Program Page of len (1..PF_STK_MAX_BLOCK) bytes of memory `mem`; out needs
 * len + 5 bytes. Returns 0 for a bad len. */
size_t pf_stk_prog_page(uint8_t *out, char mem, const uint8_t *data, size_t len);
size_t pf_stk_read_page(uint8_t out[5], char mem, size_t len);

/* Bytes of payload between INSYNC and OK in the reply to each command. */
#define PF_STK_REPLY_SIGN 3u
#define PF_STK_REPLY_PARAMETER 1u
#define PF_STK_REPLY_UNIVERSAL 1u

/* Checks a reply's framing: reply[0] must be INSYNC, reply[n-1] OK.
 * Returns PF_OK, or PF_ERR_PROTOCOL with *bad (if not NULL) set to the
 * unexpected byte and diag naming it and the command ("Load Address"). */
int pf_stk_check_reply(const uint8_t *reply, size_t n, const char *command, uint8_t *bad, pf_diag *diag);

/* What a status byte means ("INSYNC", "NOSYNC", "FAILED", ...; NULL if none). */
const char *pf_stk_status_name(uint8_t b);

#endif
