/* AN3155: the byte-level framing of the STM32 system-memory USART bootloader.
 *
 * Pure encoders and decoders, no I/O, shared by the stm32 driver and the
 * simulated ROM. Rules (ST AN3155):
 *  - a command is its opcode followed by the opcode's complement;
 *  - an address or a 32-bit value is 4 bytes MSB first plus the XOR of the 4;
 *  - a data block is N-1, the N bytes, and the XOR of N-1 and all the bytes;
 *  - every frame the host sends XORs to 0x00 (commands to 0xFF);
 *  - the bootloader answers ACK 0x79 or NACK 0x1F. */
#ifndef PEERFLASH_CODEC_AN3155_H
#define PEERFLASH_CODEC_AN3155_H

#include <stddef.h>
#include <stdint.h>

#define PF_AN3155_SYNC 0x7F
#define PF_AN3155_ACK 0x79
#define PF_AN3155_NACK 0x1F

enum pf_an3155_op {
    PF_AN3155_GET = 0x00,
    PF_AN3155_GET_VERSION = 0x01,
    PF_AN3155_GET_ID = 0x02,
    PF_AN3155_READ = 0x11,
    PF_AN3155_GO = 0x21,
    PF_AN3155_WRITE = 0x31,
    PF_AN3155_ERASE = 0x43,
    PF_AN3155_EXT_ERASE = 0x44,
    PF_AN3155_WRITE_PROTECT = 0x63,
    PF_AN3155_WRITE_UNPROTECT = 0x73,
    PF_AN3155_READOUT_PROTECT = 0x82,
    PF_AN3155_READOUT_UNPROTECT = 0x92,
    PF_AN3155_GET_CHECKSUM = 0xA1,
};

/* Largest block of Read/Write Memory. */
#define PF_AN3155_BLOCK_MAX 256u
/* Pages per erase command this codec builds (stm32flash uses the same cap;
 * some ROMs refuse more). */
#define PF_AN3155_ERASE_BATCH 512u
/* Bytes of the largest erase frame: 2-byte count, 2 bytes per page, XOR. */
#define PF_AN3155_ERASE_FRAME_MAX (2u + 2u * PF_AN3155_ERASE_BATCH + 1u)

/* English name of an opcode ("Write Memory"), "command 0x.." if unknown. */
const char *pf_an3155_op_name(uint8_t op);

/* XOR of n bytes. */
uint8_t pf_an3155_xor(const uint8_t *p, size_t n);

/* Encoders: fill out, return the frame length. */
size_t pf_an3155_cmd(uint8_t out[2], uint8_t op);
size_t pf_an3155_u32(uint8_t out[5], uint32_t v); /* address or length: 4 bytes MSB first + XOR */
/* Write Memory data frame: N-1, data padded with 0xFF to a multiple of 4,
 * XOR. len 1..256; out must hold 258 bytes. Returns the frame length or 0. */
size_t pf_an3155_data(uint8_t *out, const uint8_t *data, size_t len);
/* Read Memory length frame: N-1 and its complement (n 1..256). */
size_t pf_an3155_read_len(uint8_t out[2], unsigned n);
/* Erase frame for pages first..first+count-1. extended: 0x44 (2-byte count
 * and page numbers, count <= 512), else 0x43 (1-byte, count <= 255, pages <
 * 256). Returns the frame length, 0 if the request does not fit the format. */
size_t pf_an3155_erase_pages(uint8_t *out, size_t cap, int extended, uint32_t first, uint32_t count);
/* Mass-erase frame: 0x43 -> FF 00; 0x44 -> FF FF 00. */
size_t pf_an3155_mass_erase(uint8_t out[3], int extended);

/* Decoders. */
/* 1 when a command pair (op, complement) is well formed. */
int pf_an3155_cmd_ok(const uint8_t in[2]);
/* 1 when a frame (including its trailing XOR byte) XORs to zero. */
int pf_an3155_frame_ok(const uint8_t *in, size_t n);
/* The 32-bit value of a 5-byte address frame (call frame_ok first). */
uint32_t pf_an3155_get_u32(const uint8_t in[5]);

/* The answer to Get (bytes after the first ACK, before the last): N, version,
 * N opcodes. */
typedef struct pf_an3155_get_reply {
    uint8_t version; /* 0x31 = v3.1 */
    uint8_t n_ops;
    uint8_t ops[32];
} pf_an3155_get_reply;
/* Parses a Get reply body of n bytes (n = first byte + 2). Returns 0 or -1. */
int pf_an3155_parse_get(const uint8_t *in, size_t n, pf_an3155_get_reply *out);
/* 1 if op is in the Get reply. */
int pf_an3155_has_op(const pf_an3155_get_reply *g, uint8_t op);

#endif
