/* ESP ROM serial loader commands: request/response packets inside SLIP
 * frames (esptool's serial protocol). Pure code, no I/O.
 *
 * Request:  00 | op | size u16 | chk u32 | data[size]
 * Response: 01 | op | size u16 | val u32 | data[size]; the status bytes are
 *           the last 4 (ESP32-family ROM) or 2 (ESP8266 ROM, stub) of data. */
#ifndef PEERFLASH_CODEC_ESP_CMD_H
#define PEERFLASH_CODEC_ESP_CMD_H

#include <stddef.h>
#include <stdint.h>

enum pf_esp_op {
    PF_ESP_FLASH_BEGIN = 0x02,
    PF_ESP_FLASH_DATA = 0x03,
    PF_ESP_FLASH_END = 0x04,
    PF_ESP_MEM_BEGIN = 0x05,
    PF_ESP_MEM_END = 0x06,
    PF_ESP_MEM_DATA = 0x07,
    PF_ESP_SYNC = 0x08,
    PF_ESP_WRITE_REG = 0x09,
    PF_ESP_READ_REG = 0x0A,
    PF_ESP_SPI_SET_PARAMS = 0x0B,
    PF_ESP_SPI_ATTACH = 0x0D,
    PF_ESP_READ_FLASH_SLOW = 0x0E,
    PF_ESP_CHANGE_BAUDRATE = 0x0F,
    PF_ESP_FLASH_DEFL_BEGIN = 0x10,
    PF_ESP_FLASH_DEFL_DATA = 0x11,
    PF_ESP_FLASH_DEFL_END = 0x12,
    PF_ESP_SPI_FLASH_MD5 = 0x13,
    PF_ESP_GET_SECURITY_INFO = 0x14,
    /* stub flasher only */
    PF_ESP_ERASE_FLASH = 0xD0,
    PF_ESP_ERASE_REGION = 0xD1,
    PF_ESP_READ_FLASH = 0xD2,
    PF_ESP_RUN_USER_CODE = 0xD3,
};

/* ROM error bytes (second status byte when the first is nonzero). */
enum pf_esp_rom_err {
    PF_ESP_ERR_INVALID_MSG = 0x05,
    PF_ESP_ERR_FAILED = 0x06,
    PF_ESP_ERR_INVALID_CRC = 0x07,
    PF_ESP_ERR_FLASH_WRITE = 0x08,
    PF_ESP_ERR_FLASH_READ = 0x09,
    PF_ESP_ERR_FLASH_READ_LEN = 0x0A,
    PF_ESP_ERR_DEFLATE = 0x0B,
    PF_ESP_ERR_DEFLATE_ADLER = 0x0C,
    PF_ESP_ERR_DEFLATE_PARAM = 0x0D,
    PF_ESP_ERR_RAM_SIZE = 0x0E,
    PF_ESP_ERR_RAM_ADDR = 0x0F,
    /* stub */
    PF_ESP_ERR_STUB_NOT_IMPLEMENTED = 0xFF,
};

#define PF_ESP_CHECKSUM_SEED 0xEF
#define PF_ESP_HDR 8            /* request and response header */
#define PF_ESP_DATA_HDR 16      /* len, seq, 0, 0 before MEM/FLASH data */
#define PF_ESP_ROM_BLOCK 0x400  /* ROM flash write block */
#define PF_ESP_STUB_BLOCK 0x4000
#define PF_ESP_RAM_BLOCK 0x1800
#define PF_ESP_SLOW_READ_MAX 64

/* 0xEF XOR every byte: the chk of MEM_DATA/FLASH_DATA/FLASH_DEFL_DATA. */
uint8_t pf_esp_checksum(const uint8_t *data, size_t n, uint8_t seed);

/* Name of an op for messages ("FLASH_BEGIN"), "op 0x.." style never NULL. */
const char *pf_esp_op_name(uint8_t op);
/* Meaning of a ROM/stub error byte, e.g. "flash write error". */
const char *pf_esp_err_name(uint8_t err);

/* Builds a whole SLIP frame of the request op with data = a || b (b may be
 * NULL: two parts so a block need not be copied behind its sub-header).
 * Returns the frame length, 0 if out_size is too small. */
size_t pf_esp_request_frame(uint8_t op, uint32_t chk, const uint8_t *a, size_t an, const uint8_t *b, size_t bn,
                            uint8_t *out, size_t out_size);
/* Worst-case frame size for a request of n data bytes. */
#define PF_ESP_FRAME_MAX(n) (2 + 2 * (PF_ESP_HDR + (n)))

/* Builds a response frame: data = payload || status[status_len]. */
size_t pf_esp_response_frame(uint8_t op, uint32_t val, const uint8_t *payload, size_t pn, const uint8_t *status,
                             size_t status_len, uint8_t *out, size_t out_size);

/* A decoded packet (pointers into the frame buffer). */
typedef struct pf_esp_packet {
    uint8_t dir;        /* 0 request, 1 response */
    uint8_t op;
    uint16_t size;
    uint32_t word;      /* chk (request) or val (response) */
    const uint8_t *data;
} pf_esp_packet;

/* Parses an unescaped frame body. Returns 0, or -1 when it is shorter than
 * the header or its size field disagrees with its length. */
int pf_esp_packet_parse(const uint8_t *frame, size_t len, pf_esp_packet *p);

#endif
