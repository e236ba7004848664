/* Simulated ESP32-family ROM serial loader (and flasher stub); see esp32.h. */
#include "esp32.h"
#include "sim_command.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <unistd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "codec/esp_cmd.h"
#include "codec/slip.h"
#include "peerflash/pf_bytes.h"
#include "peerflash/pf_digest.h"

#define MAX_REGS 64
/* The ROM inflates FLASH_DEFL_DATA into a buffer of this size and writes it
 * to flash only when it is full or when the last announced block arrives
 * (then all of it, stale bytes included); observed on the real ESP32 ROM
 * (shared note esp32-real-rom.md, fact 1). */
#define INFLATE_BUF 0x8000u
/* ESP32 UART receive FIFO (ESP32 Technical Reference Manual, UART chapter:
 * 128 bytes of RX FIFO per UART by default). While the ROM executes a
 * command it does not drain the FIFO: bytes beyond this are lost. */
#define UART_RX_FIFO 128u
#define RX_CAP (PF_ESP_HDR + PF_ESP_DATA_HDR + PF_ESP_STUB_BLOCK + 64)
/* An arbitrary nonzero value: what `val` holds before the first READ_REG. */
#define INITIAL_VAL 0x01100000u

struct pf_sim_esp32 {
    pf_sim_esp32_config cfg;
    const pf_esp_chip *chip;
    pf_posix_link link;
    pf_port port;
    uint8_t *flash;
    size_t map_len;
    int fd;
    pf_sim_esp32_stats st;
    /* ROM quirks */
    uint32_t last_val;
    uint8_t last_op;
    /* registers written with WRITE_REG */
    uint32_t reg_addr[MAX_REGS], reg_val[MAX_REGS];
    unsigned n_regs;
    int attached;
    int open_watch; /* inotify on the pty slave (reset on open), or -1 */
    /* the current flash operation */
    enum { OP_NONE, OP_FLASH, OP_DEFL, OP_MEM } op;
    uint32_t op_offset, op_size, op_blocks, op_block_size, op_seq, op_written;
    z_stream inf;
    int inf_ready, inf_done;
    uint8_t ibuf[INFLATE_BUF]; /* the ROM's inflate output buffer (keeps stale bytes) */
    uint32_t ibuf_fill;
    int fifo_checked;          /* the current command's FIFO overrun is accounted */
    uint32_t mem_bytes;
    /* frames; rxq holds received bytes not yet parsed (the UART FIFO and
     * what the host sent before it) */
    pf_slip_decoder dec;
    uint8_t rx[RX_CAP];
    uint8_t rxq[4096];
    size_t rxq_head, rxq_len;
    uint8_t tx[2 * (PF_ESP_HDR + PF_ESP_STUB_BLOCK + 64) + 2];
};

static void logv(pf_sim_esp32 *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logv(pf_sim_esp32 *s, const char *fmt, ...)
{
    if (!s->cfg.verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "esp sim: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void busy(uint64_t us)
{
    if (!us)
        return;
    struct timespec ts = {(time_t)(us / 1000000u), (long)(us % 1000000u) * 1000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static uint8_t status_len(const pf_sim_esp32 *s)
{
    return s->st.stub ? 2 : s->chip->status_len;
}

/* Before the first answer to a command: whatever the host sent after the
 * command's frame arrived while the ROM was busy with it; the FIFO keeps
 * UART_RX_FIFO bytes of it, the rest is lost (a host that sends ahead of the
 * answers fails here as on silicon). Bytes still in rxq from the read that
 * brought the frame arrived after it too. */
static void fifo_overrun(pf_sim_esp32 *s)
{
    if (s->fifo_checked || s->st.stub) /* the stub receives by interrupt into its own buffers */
        return;
    s->fifo_checked = 1;
    int full = 0;
    for (;;) {
        size_t tail = s->rxq_head + s->rxq_len;
        if (tail >= sizeof s->rxq) {
            full = 1;
            break;
        }
        int n = s->port.read(s->port.ctx, s->rxq + tail, sizeof s->rxq - tail, 0);
        if (n <= 0)
            break;
        s->rxq_len += (size_t)n;
    }
    if (s->rxq_len > UART_RX_FIFO) {
        s->st.rx_lost += (uint32_t)(s->rxq_len - UART_RX_FIFO);
        logv(s, "UART FIFO overrun: %zu bytes arrived while busy, %zu lost", s->rxq_len,
             s->rxq_len - UART_RX_FIFO);
        s->rxq_len = UART_RX_FIFO;
    }
    /* what rxq had no room for came in during the command too; but once the
     * OS buffer was found empty, a byte arriving now is not dropped: it came
     * as the answer went out (a host writing ahead at that moment lost its
     * bytes here, at random, though they fit the FIFO) */
    uint8_t drop[256];
    int n;
    while (full && (n = s->port.read(s->port.ctx, drop, sizeof drop, 0)) > 0)
        s->st.rx_lost += (uint32_t)n;
}

static int send_frame(pf_sim_esp32 *s, uint8_t op, uint32_t val, const uint8_t *payload, size_t pn, uint8_t status,
                      uint8_t err)
{
    fifo_overrun(s);
    uint8_t st[4] = {status, err, 0, 0};
    size_t n = pf_esp_response_frame(op, val, payload, pn, st, status_len(s), s->tx, sizeof s->tx);
    if (!n)
        return PF_ERR_ARG;
    s->last_op = op;
    if (status)
        s->st.last_error = err;
    return pf_port_write_all(&s->port, s->tx, n) < 0 ? PF_ERR_CLOSED : PF_OK;
}

/* A response as the ROM sends it: `val` is the last READ_REG value (the stub
 * sends 0 except for READ_REG). */
static int reply(pf_sim_esp32 *s, uint8_t op, const uint8_t *payload, size_t pn, uint8_t status, uint8_t err)
{
    return send_frame(s, op, s->st.stub ? 0 : s->last_val, payload, pn, status, err);
}

static int fail(pf_sim_esp32 *s, uint8_t op, uint8_t err)
{
    logv(s, "%s fails with error 0x%02x", pf_esp_op_name(op), err);
    return reply(s, op, NULL, 0, 1, s->st.stub ? (err == PF_ESP_ERR_INVALID_CRC ? 0xC1 : err) : err);
}

/* A command this loader does not implement. */
static int unsupported(pf_sim_esp32 *s, uint8_t op)
{
    logv(s, "unsupported command 0x%02x", op);
    if (s->st.stub)
        return send_frame(s, op, 0, NULL, 0, 1, PF_ESP_ERR_STUB_NOT_IMPLEMENTED);
    /* The ROM repeats the previous response's op and val with status 01 05. */
    return send_frame(s, s->last_op, s->last_val, NULL, 0, 1, PF_ESP_ERR_INVALID_MSG);
}

/* Registers a host reads to learn about the chip, with a real ESP32's values:
 *  - UART0 clock divider (UART_CLKDIV_REG, 0x3FF40014 on the ESP32, 0x60000014
 *    on the S3/C3; integer part in bits 0-19, fraction in 16ths in bits
 *    20-23; ESP32 TRM, UART chapter; esptool's targets/esp32*.py): the ROM
 *    runs UART0 from the 40 MHz crystal, so esptool's estimate
 *    baud * divider / 1e6 gives the crystal (40 MHz). The real ESP32 ROM
 *    answered 0x0000015A at 115200 (emulator run, docs/ESP.md).
 *  - eFuse BLOCK0 words 0-3 (EFUSE_RD_REG_BASE 0x3FF5A000, also seen by
 *    hosts at its 0x6001A000 alias): a real ESP32's words as logged over the
 *    ROM loader in cesanta/mongoose-os issue 408 (0x6001a004 = 0xa4211598,
 *    0x6001a008 = 0x002430ae, 0x6001a00c = 0x00008000): MAC 30:ae:a4:21:15:98
 *    (esptool: big-endian word 2 then word 1, bytes 2..7). */
static int chip_reg(const pf_sim_esp32 *s, uint32_t addr, uint32_t *v)
{
    static const uint32_t esp32_efuse[4] = {0x00000000u, 0xa4211598u, 0x002430aeu, 0x00008000u};
    const char *k = s->chip->key;
    int esp32 = !strcmp(k, "esp32");
    uint32_t clkdiv_reg = esp32 ? 0x3FF40014u : (!strcmp(k, "esp32s3") || !strcmp(k, "esp32c3")) ? 0x60000014u : 0;
    if (clkdiv_reg && addr == clkdiv_reg) {
        /* what the ESP32 mask ROM answered at 115200 (run in the emulator,
         * docs/ESP.md): 0x15A, a 39.9 MHz estimate; the crystal's divider
         * at other rates */
        *v = s->st.baud == 115200u ? 0x15Au : (40000000u + s->st.baud / 2u) / s->st.baud;
        return 1;
    }
    if (esp32 && ((addr >= 0x3FF5A000u && addr < 0x3FF5A010u) || (addr >= 0x6001A000u && addr < 0x6001A010u))) {
        *v = esp32_efuse[(addr & 0xFu) / 4u];
        return 1;
    }
    return 0;
}

static uint32_t reg_get(pf_sim_esp32 *s, uint32_t addr)
{
    uint32_t v;
    if (addr == PF_ESP_MAGIC_REG)
        return s->chip->magic[0];
    if (chip_reg(s, addr, &v))
        return v;
    for (unsigned i = 0; i < s->n_regs; i++)
        if (s->reg_addr[i] == addr)
            return s->reg_val[i];
    return 0;
}

static void reg_set(pf_sim_esp32 *s, uint32_t addr, uint32_t v)
{
    for (unsigned i = 0; i < s->n_regs; i++)
        if (s->reg_addr[i] == addr) {
            s->reg_val[i] = v;
            return;
        }
    if (s->n_regs < MAX_REGS) {
        s->reg_addr[s->n_regs] = addr;
        s->reg_val[s->n_regs++] = v;
    }
}

static uint32_t flash_id(const pf_sim_esp32 *s)
{
    unsigned cap = 0;
    while ((1u << cap) < s->cfg.flash_size)
        cap++;
    return 0xEFu | (0x40u << 8) | ((uint32_t)cap << 16); /* a Winbond W25Q-style id */
}

static void write_reg(pf_sim_esp32 *s, uint32_t addr, uint32_t v, uint32_t mask)
{
    uint32_t old = reg_get(s, addr);
    v = (old & ~mask) | (v & mask);
    const pf_esp_chip *c = s->chip;
    if (addr == c->spi_base && (v & (1u << 18))) {
        /* SPI user command: the flash answers, the busy bit clears. */
        uint32_t cmd = reg_get(s, c->spi_base + c->spi_usr2) & 0xFFFFu;
        if (cmd == 0x9F)
            reg_set(s, c->spi_base + c->spi_w0, flash_id(s));
        v &= ~(1u << 18);
    }
    reg_set(s, addr, v);
}

static void erase(pf_sim_esp32 *s, uint32_t offset, uint32_t size)
{
    if (!size)
        return;
    uint32_t first = offset / 4096u, last = (uint32_t)(((uint64_t)offset + size + 4095u) / 4096u);
    for (uint32_t sec = first; sec < last; sec++) {
        memset(s->flash + (size_t)sec * 4096u, 0xFF, 4096u);
        s->st.sectors_erased++;
    }
    busy((uint64_t)(last - first) * s->cfg.erase_ms_per_4k * 1000u);
}

/* NOR program: bits can only be cleared. */
static void program(pf_sim_esp32 *s, uint32_t addr, const uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        s->flash[addr + i] &= d[i];
    s->st.bytes_written += (uint32_t)n;
    busy((uint64_t)n * s->cfg.write_us_per_kb / 1024u);
}

static int in_flash(const pf_sim_esp32 *s, uint32_t addr, uint32_t len)
{
    return (uint64_t)addr + len <= s->cfg.flash_size;
}

static int begin(pf_sim_esp32 *s, uint8_t op, const uint8_t *d, size_t n)
{
    if (n != 16 && n != 20)
        return fail(s, op, PF_ESP_ERR_INVALID_MSG);
    if (s->chip->needs_spi_attach && !s->attached && !s->st.stub)
        return fail(s, op, PF_ESP_ERR_FAILED);
    uint32_t size = pf_get_le32(d), blocks = pf_get_le32(d + 4), bs = pf_get_le32(d + 8), off = pf_get_le32(d + 12);
    uint32_t max_bs = s->st.stub ? PF_ESP_STUB_BLOCK : PF_ESP_ROM_BLOCK;
    if (bs == 0 || bs > max_bs || !in_flash(s, off, size))
        return fail(s, op, PF_ESP_ERR_FAILED);
    /* The ROM erases whole sectors from offset: an offset inside a sector
     * is refused 01 06 (seen on the real ESP32 ROM, note fact 2). */
    if (!s->st.stub && off % 4096u)
        return fail(s, op, PF_ESP_ERR_FAILED);
    if (s->inf_ready) {
        inflateEnd(&s->inf);
        s->inf_ready = 0;
    }
    if (op == PF_ESP_FLASH_DEFL_BEGIN) {
        memset(&s->inf, 0, sizeof s->inf);
        if (inflateInit(&s->inf) != Z_OK)
            return fail(s, op, PF_ESP_ERR_DEFLATE);
        s->inf_ready = 1;
        s->inf_done = 0;
        s->ibuf_fill = 0; /* the buffer's bytes stay: stale until overwritten */
    }
    logv(s, "%s offset 0x%x size %u blocks %u x %u", pf_esp_op_name(op), off, size, blocks, bs);
    erase(s, off, size);
    s->op = op == PF_ESP_FLASH_BEGIN ? OP_FLASH : OP_DEFL;
    s->op_offset = off;
    s->op_size = size;
    s->op_blocks = blocks;
    s->op_block_size = bs;
    s->op_seq = 0;
    s->op_written = 0;
    return reply(s, op, NULL, 0, 0, 0);
}

/* Checks the 16-byte data header, checksum and sequence of a data command. */
static int data_check(pf_sim_esp32 *s, uint8_t op, const pf_esp_packet *p, const uint8_t **data, uint32_t *len)
{
    if (p->size < PF_ESP_DATA_HDR)
        return PF_ESP_ERR_INVALID_MSG;
    *len = pf_get_le32(p->data);
    uint32_t seq = pf_get_le32(p->data + 4);
    *data = p->data + PF_ESP_DATA_HDR;
    if (*len != (uint32_t)p->size - PF_ESP_DATA_HDR)
        return s->st.stub ? 0xC0 : PF_ESP_ERR_INVALID_MSG;
    /* The ROM counts a block it refused for its checksum: it then wants the
     * NEXT sequence number and refuses the same one again with 01 05 (real
     * ESP32 ROM, note fact 2; the stub likewise). */
    if (pf_esp_checksum(*data, *len, PF_ESP_CHECKSUM_SEED) != (uint8_t)p->word) {
        logv(s, "block %u (expected %u): bad checksum", seq, s->op_seq);
        if (op != PF_ESP_MEM_DATA)
            s->op_seq++;
        s->st.bad_checksums++;
        return PF_ESP_ERR_INVALID_CRC;
    }
    if (seq != s->op_seq)
        return PF_ESP_ERR_INVALID_MSG;
    if (s->op_seq >= s->op_blocks)
        return PF_ESP_ERR_FAILED;
    return 0;
}

static int flash_data(pf_sim_esp32 *s, const pf_esp_packet *p)
{
    const uint8_t *d;
    uint32_t len;
    if (s->op != OP_FLASH)
        return fail(s, p->op, PF_ESP_ERR_FAILED);
    int e = data_check(s, p->op, p, &d, &len);
    if (e)
        return fail(s, p->op, (uint8_t)e);
    if (len != s->op_block_size && !s->st.stub) /* the ROM wants whole blocks */
        return fail(s, p->op, PF_ESP_ERR_INVALID_MSG);
    uint32_t at = s->op_offset + s->op_written;
    if (!in_flash(s, at, len))
        return fail(s, p->op, PF_ESP_ERR_FLASH_WRITE);
    logv(s, "FLASH_DATA %u written at 0x%x", s->op_seq, at);
    program(s, at, d, len);
    s->op_written += len;
    s->op_seq++;
    return reply(s, p->op, NULL, 0, 0, 0);
}

/* Writes the ROM's inflate buffer at the current position: `n` bytes of it
 * (the whole buffer when the last announced block forces it out). */
static int rom_flush_ibuf(pf_sim_esp32 *s, uint32_t n, uint32_t advance)
{
    uint32_t at = s->op_offset + s->op_written;
    if (!in_flash(s, at, 1))
        return PF_ESP_ERR_FLASH_WRITE;
    if (!in_flash(s, at, n))
        n = s->cfg.flash_size - at; /* the SPI write stops at the end of the chip */
    program(s, at, s->ibuf, n);
    s->op_written += advance;
    s->ibuf_fill = 0;
    return 0;
}

/* FLASH_DEFL_DATA as the ESP32 ROM does it: inflate into the 32 KiB buffer,
 * write it when full; at the last announced block write the whole buffer,
 * stale tail included (note fact 1). FLASH_DEFL_END writes nothing. */
static int rom_defl_data(pf_sim_esp32 *s, const pf_esp_packet *p, const uint8_t *d, uint32_t len)
{
    s->inf.next_in = (Bytef *)(uintptr_t)d;
    s->inf.avail_in = len;
    for (;;) {
        s->inf.next_out = s->ibuf + s->ibuf_fill;
        s->inf.avail_out = INFLATE_BUF - s->ibuf_fill;
        int zr = inflate(&s->inf, Z_NO_FLUSH);
        s->ibuf_fill = INFLATE_BUF - s->inf.avail_out;
        if (s->ibuf_fill == INFLATE_BUF) {
            int e = rom_flush_ibuf(s, INFLATE_BUF, INFLATE_BUF);
            if (e)
                return fail(s, p->op, (uint8_t)e);
        }
        if (zr == Z_STREAM_END) {
            s->inf_done = 1;
            if (s->inf.avail_in)
                return fail(s, p->op, PF_ESP_ERR_DEFLATE);
            break;
        }
        if (zr == Z_DATA_ERROR) {
            int adler = s->inf.msg && strstr(s->inf.msg, "check");
            return fail(s, p->op, adler ? PF_ESP_ERR_DEFLATE_ADLER : PF_ESP_ERR_DEFLATE);
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR)
            return fail(s, p->op, PF_ESP_ERR_DEFLATE);
        if (s->inf.avail_in == 0 && s->inf.avail_out != 0)
            break;
    }
    if (s->op_seq + 1 == s->op_blocks && s->ibuf_fill) {
        int e = rom_flush_ibuf(s, INFLATE_BUF, s->ibuf_fill);
        if (e)
            return fail(s, p->op, (uint8_t)e);
    }
    s->op_seq++;
    return reply(s, p->op, NULL, 0, 0, 0);
}

static int defl_data(pf_sim_esp32 *s, const pf_esp_packet *p)
{
    const uint8_t *d;
    uint32_t len;
    if (s->op != OP_DEFL || !s->inf_ready)
        return fail(s, p->op, PF_ESP_ERR_FAILED);
    int e = data_check(s, p->op, p, &d, &len);
    if (e)
        return fail(s, p->op, (uint8_t)e);
    if (s->inf_done) /* data after the end of the zlib stream */
        return fail(s, p->op, s->st.stub ? 0xC9 : PF_ESP_ERR_DEFLATE);
    if (!s->st.stub)
        return rom_defl_data(s, p, d, len);
    s->inf.next_in = (Bytef *)(uintptr_t)d;
    s->inf.avail_in = len;
    uint8_t out[4096];
    for (;;) {
        s->inf.next_out = out;
        s->inf.avail_out = sizeof out;
        int zr = inflate(&s->inf, Z_NO_FLUSH);
        size_t got = sizeof out - s->inf.avail_out;
        if (got) {
            uint32_t at = s->op_offset + s->op_written;
            if (s->op_written + got > s->op_size || !in_flash(s, at, (uint32_t)got))
                return fail(s, p->op, s->st.stub ? 0xC9 : PF_ESP_ERR_DEFLATE);
            program(s, at, out, got);
            s->op_written += (uint32_t)got;
        }
        if (zr == Z_STREAM_END) {
            s->inf_done = 1;
            if (s->inf.avail_in)
                return fail(s, p->op, s->st.stub ? 0xC9 : PF_ESP_ERR_DEFLATE);
            break;
        }
        if (zr == Z_DATA_ERROR) {
            int adler = s->inf.msg && strstr(s->inf.msg, "check");
            return fail(s, p->op, s->st.stub ? 0xC7 : adler ? PF_ESP_ERR_DEFLATE_ADLER : PF_ESP_ERR_DEFLATE);
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR)
            return fail(s, p->op, s->st.stub ? 0xC7 : PF_ESP_ERR_DEFLATE);
        if (s->inf.avail_in == 0 && s->inf.avail_out != 0)
            break;
    }
    s->op_seq++;
    return reply(s, p->op, NULL, 0, 0, 0);
}

static int md5(pf_sim_esp32 *s, const pf_esp_packet *p)
{
    if (p->size != 16)
        return fail(s, p->op, PF_ESP_ERR_INVALID_MSG);
    uint32_t addr = pf_get_le32(p->data), len = pf_get_le32(p->data + 4);
    if (!in_flash(s, addr, len))
        return fail(s, p->op, PF_ESP_ERR_FLASH_READ);
    pf_digest d;
    uint8_t h[16];
    pf_digest_begin(&d, PF_DIGEST_MD5);
    pf_digest_update(&d, s->flash + addr, len);
    pf_digest_finish(&d, h);
    if (s->st.stub)
        return reply(s, p->op, h, 16, 0, 0);
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    return reply(s, p->op, (const uint8_t *)hex, 32, 0, 0);
}

/* Stub READ_FLASH: data frames of packet_size, the host acks the running
 * count; at most max_inflight packets unacknowledged; then the raw MD5. */
static int read_flash(pf_sim_esp32 *s, const pf_esp_packet *p)
{
    if (p->size != 16)
        return fail(s, p->op, PF_ESP_ERR_INVALID_MSG);
    uint32_t addr = pf_get_le32(p->data), len = pf_get_le32(p->data + 4);
    uint32_t psz = pf_get_le32(p->data + 8), inflight = pf_get_le32(p->data + 12);
    if (!in_flash(s, addr, len) || psz == 0 || psz > PF_ESP_STUB_BLOCK || inflight == 0)
        return fail(s, p->op, 0xC0);
    int r = reply(s, p->op, NULL, 0, 0, 0);
    if (r < 0)
        return r;
    uint32_t sent = 0, acked = 0;
    pf_slip_decoder_reset(&s->dec);
    while (acked < len) {
        while (sent < len && sent - acked < inflight * psz) {
            uint32_t n = len - sent < psz ? len - sent : psz;
            size_t fl = pf_slip_encode(s->flash + addr + sent, n, s->tx, sizeof s->tx);
            if (pf_port_write_all(&s->port, s->tx, fl) < 0)
                return PF_ERR_CLOSED;
            sent += n;
        }
        uint8_t b;
        int got = s->port.read(s->port.ctx, &b, 1, 3000);
        if (got < 0)
            return got;
        if (got == 0)
            return PF_OK; /* the host gave up: back to commands */
        if (pf_slip_feed(&s->dec, b) == PF_SLIP_FRAME && s->dec.len == 4)
            acked = pf_get_le32(s->dec.buf);
    }
    pf_digest d;
    uint8_t h[16];
    pf_digest_begin(&d, PF_DIGEST_MD5);
    pf_digest_update(&d, s->flash + addr, len);
    pf_digest_finish(&d, h);
    size_t fl = pf_slip_encode(h, 16, s->tx, sizeof s->tx);
    return pf_port_write_all(&s->port, s->tx, fl) < 0 ? PF_ERR_CLOSED : PF_OK;
}

static int change_baud(pf_sim_esp32 *s, const pf_esp_packet *p)
{
    if (p->size != 8)
        return fail(s, p->op, PF_ESP_ERR_INVALID_MSG);
    uint32_t baud = pf_get_le32(p->data);
    if (baud < 300 || baud > 5000000)
        return fail(s, p->op, PF_ESP_ERR_FAILED);
    int r = reply(s, p->op, NULL, 0, 0, 0);
    if (r < 0)
        return r;
    if (s->port.drain)
        s->port.drain(s->port.ctx);
    /* The ROM's UART sends the answer at the old rate before the switch; a
     * pty's drain returns at once, so wait the answer's line time (twice,
     * plus 5 ms for a link emulator that reads it late). */
    busy(2u * 20u * 10u * 1000000u / s->st.baud + 5000u);
    pf_port_set_line(&s->port, baud, PF_FRAME_8N1);
    s->st.baud = baud;
    s->st.baud_changes++;
    logv(s, "baud rate now %u", baud);
    return PF_OK;
}

static void leave_loader(pf_sim_esp32 *s, const char *why)
{
    s->st.app_running = 1;
    fprintf(stderr, "esp sim: %s: the application runs now (the loader answers no more)\n", why);
}

static int handle(pf_sim_esp32 *s, const pf_esp_packet *p)
{
    s->st.commands++;
    int stub = s->st.stub;
    logv(s, "%s (%u bytes)", pf_esp_op_name(p->op), p->size);
    switch (p->op) {
    case PF_ESP_SYNC: {
        static const uint8_t pat[4] = {0x07, 0x07, 0x12, 0x20};
        if (p->size != 36 || memcmp(p->data, pat, 4) != 0)
            return fail(s, p->op, PF_ESP_ERR_INVALID_MSG);
        for (int i = 4; i < 36; i++)
            if (p->data[i] != 0x55)
                return fail(s, p->op, PF_ESP_ERR_INVALID_MSG);
        int n = stub ? 1 : 8;
        for (int i = 0; i < n; i++) {
            int r = reply(s, p->op, NULL, 0, 0, 0);
            if (r < 0)
                return r;
        }
        return PF_OK;
    }
    case PF_ESP_READ_REG: {
        if (p->size != 4)
            return fail(s, p->op, PF_ESP_ERR_INVALID_MSG);
        uint32_t v = reg_get(s, pf_get_le32(p->data));
        s->last_val = v;
        return send_frame(s, p->op, v, NULL, 0, 0, 0);
    }
    case PF_ESP_WRITE_REG:
        if (p->size % 16 != 0 || p->size == 0)
            return fail(s, p->op, PF_ESP_ERR_INVALID_MSG);
        for (unsigned i = 0; i < p->size; i += 16) {
            write_reg(s, pf_get_le32(p->data + i), pf_get_le32(p->data + i + 4), pf_get_le32(p->data + i + 8));
            busy(pf_get_le32(p->data + i + 12));
        }
        return reply(s, p->op, NULL, 0, 0, 0);
    case PF_ESP_GET_SECURITY_INFO: {
        if (stub || !s->chip->security_info_len)
            return unsupported(s, p->op);
        uint8_t info[20] = {0};
        pf_put_le32(info + 12, s->chip->security_chip_id);
        return reply(s, p->op, info, s->chip->security_info_len, 0, 0);
    }
    case PF_ESP_SPI_ATTACH:
        if (p->size != (stub ? 4 : 8) && p->size != 8)
            return fail(s, p->op, PF_ESP_ERR_INVALID_MSG);
        s->attached = 1;
        return reply(s, p->op, NULL, 0, 0, 0);
    case PF_ESP_SPI_SET_PARAMS:
        if (p->size != 24)
            return fail(s, p->op, PF_ESP_ERR_INVALID_MSG);
        return reply(s, p->op, NULL, 0, 0, 0);
    case PF_ESP_FLASH_BEGIN:
        return begin(s, p->op, p->data, p->size);
    case PF_ESP_FLASH_DATA:
        return flash_data(s, p);
    case PF_ESP_FLASH_DEFL_BEGIN:
        if (!s->chip->rom_deflate && !stub)
            return unsupported(s, p->op);
        return begin(s, p->op, p->data, p->size);
    case PF_ESP_FLASH_DEFL_DATA:
        if (!s->chip->rom_deflate && !stub)
            return unsupported(s, p->op);
        return defl_data(s, p);
    case PF_ESP_FLASH_END:
    case PF_ESP_FLASH_DEFL_END: {
        if (p->op == PF_ESP_FLASH_DEFL_END && !s->chip->rom_deflate && !stub)
            return unsupported(s, p->op);
        if (p->size != 4)
            return fail(s, p->op, PF_ESP_ERR_INVALID_MSG);
        if (p->op == PF_ESP_FLASH_DEFL_END && s->op == OP_DEFL && !s->inf_done)
            return fail(s, p->op, stub ? 0xC8 : PF_ESP_ERR_DEFLATE);
        /* The ROM's FLASH_DEFL_END does not write a partly filled inflate
         * buffer: it answers 01 06 and those bytes never reach flash (note
         * fact 1). */
        if (p->op == PF_ESP_FLASH_DEFL_END && !stub && s->op == OP_DEFL && s->ibuf_fill) {
            s->ibuf_fill = 0;
            return fail(s, p->op, PF_ESP_ERR_FAILED);
        }
        uint32_t flag = pf_get_le32(p->data);
        s->op = OP_NONE;
        int r = reply(s, p->op, NULL, 0, 0, 0);
        /* ROM: 0 reboots, 1 runs the user code; stub: 1 stays in the stub. */
        if (!stub || flag == 0)
            leave_loader(s, flag ? "FLASH_END(run)" : "FLASH_END(reboot)");
        return r;
    }
    case PF_ESP_SPI_FLASH_MD5:
        if (!s->chip->rom_deflate && !stub)
            return unsupported(s, p->op);
        return md5(s, p);
    case PF_ESP_READ_FLASH_SLOW: {
        if (stub)
            return unsupported(s, p->op);
        if (p->size != 8)
            return fail(s, p->op, PF_ESP_ERR_INVALID_MSG);
        uint32_t addr = pf_get_le32(p->data), len = pf_get_le32(p->data + 4);
        if (len > PF_ESP_SLOW_READ_MAX)
            return fail(s, p->op, PF_ESP_ERR_FLASH_READ_LEN);
        if (!in_flash(s, addr, len))
            return fail(s, p->op, PF_ESP_ERR_FLASH_READ);
        busy(len * 2u);
        return reply(s, p->op, s->flash + addr, len, 0, 0);
    }
    case PF_ESP_CHANGE_BAUDRATE:
        return change_baud(s, p);
    case PF_ESP_MEM_BEGIN:
        if (p->size != 16)
            return fail(s, p->op, PF_ESP_ERR_INVALID_MSG);
        s->op = OP_MEM;
        s->op_blocks = pf_get_le32(p->data + 4);
        s->op_block_size = pf_get_le32(p->data + 8);
        s->op_seq = 0;
        if (s->op_block_size > PF_ESP_RAM_BLOCK)
            return fail(s, p->op, PF_ESP_ERR_RAM_SIZE);
        return reply(s, p->op, NULL, 0, 0, 0);
    case PF_ESP_MEM_DATA: {
        const uint8_t *d;
        uint32_t len;
        if (s->op != OP_MEM)
            return fail(s, p->op, PF_ESP_ERR_FAILED);
        int e = data_check(s, p->op, p, &d, &len);
        if (e)
            return fail(s, p->op, (uint8_t)e);
        s->op_seq++;
        s->mem_bytes += len;
        return reply(s, p->op, NULL, 0, 0, 0);
    }
    case PF_ESP_MEM_END: {
        if (p->size != 8)
            return fail(s, p->op, PF_ESP_ERR_INVALID_MSG);
        uint32_t no_entry = pf_get_le32(p->data), entry = pf_get_le32(p->data + 4);
        s->op = OP_NONE;
        int r = reply(s, p->op, NULL, 0, 0, 0);
        if (r < 0 || no_entry || !entry)
            return r;
        if (stub || !s->mem_bytes)
            return r;
        /* The uploaded code is taken to be the flasher stub: it greets. */
        s->st.stub = 1;
        s->attached = 1;
        logv(s, "stub uploaded (%u bytes), entry 0x%08x", s->mem_bytes, entry);
        static const uint8_t ohai[] = {0xC0, 'O', 'H', 'A', 'I', 0xC0};
        return pf_port_write_all(&s->port, ohai, sizeof ohai) < 0 ? PF_ERR_CLOSED : PF_OK;
    }
    case PF_ESP_ERASE_FLASH:
        if (!stub)
            return unsupported(s, p->op);
        erase(s, 0, s->cfg.flash_size);
        return reply(s, p->op, NULL, 0, 0, 0);
    case PF_ESP_ERASE_REGION: {
        if (!stub)
            return unsupported(s, p->op);
        if (p->size != 8)
            return fail(s, p->op, 0xC0);
        uint32_t off = pf_get_le32(p->data), len = pf_get_le32(p->data + 4);
        if (off % 4096u || len % 4096u || !in_flash(s, off, len))
            return fail(s, p->op, 0xC4);
        erase(s, off, len);
        return reply(s, p->op, NULL, 0, 0, 0);
    }
    case PF_ESP_READ_FLASH:
        if (!stub)
            return unsupported(s, p->op);
        return read_flash(s, p);
    case PF_ESP_RUN_USER_CODE:
        if (!stub)
            return unsupported(s, p->op);
        leave_loader(s, "RUN_USER_CODE");
        return PF_OK;
    default:
        return unsupported(s, p->op);
    }
}

static uint32_t parse_size(const char *v)
{
    char *end;
    unsigned long n = strtoul(v, &end, 0);
    if (!strcasecmp(end, "MB") || !strcasecmp(end, "M"))
        n <<= 20;
    else if (!strcasecmp(end, "KB") || !strcasecmp(end, "K"))
        n <<= 10;
    else if (*end)
        return 0;
    return (uint32_t)n;
}

static pf_sim_esp32 *sim_open(const pf_sim_esp32_config *cfg, pf_diag *diag)
{
    pf_sim_esp32 *s = calloc(1, sizeof *s);
    if (!s) {
        pf_diag_set(diag, PF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    s->fd = -1;
    s->chip = pf_esp_chip_by_name(cfg->chip ? cfg->chip : "esp32");
    if (!s->chip) {
        pf_diag_set(diag, PF_ERR_ARG, "unknown chip '%s'", cfg->chip);
        free(s);
        return NULL;
    }
    if (!s->cfg.flash_size || (s->cfg.flash_size & (s->cfg.flash_size - 1)) || s->cfg.flash_size < 65536u) {
        pf_diag_set(diag, PF_ERR_ARG, "flash size %lu is not a power of two >= 64 KiB",
                    (unsigned long)s->cfg.flash_size);
        free(s);
        return NULL;
    }
    s->map_len = s->cfg.flash_size;
    if (cfg->flash_path) {
        s->fd = open(cfg->flash_path, O_RDWR | O_CREAT, 0644);
        struct stat stt;
        if (s->fd < 0 || fstat(s->fd, &stt) != 0) {
            pf_diag_set(diag, PF_ERR_IO, "cannot open flash file %s: %s", cfg->flash_path, strerror(errno));
            goto fail;
        }
        if ((uint64_t)stt.st_size < s->map_len) {
            /* extend with erased flash */
            uint8_t ff[4096];
            memset(ff, 0xFF, sizeof ff);
            off_t at = stt.st_size;
            while ((uint64_t)at < s->map_len) {
                size_t n = s->map_len - (size_t)at < sizeof ff ? s->map_len - (size_t)at : sizeof ff;
                if (pwrite(s->fd, ff, n, at) != (ssize_t)n) {
                    pf_diag_set(diag, PF_ERR_IO, "cannot extend %s: %s", cfg->flash_path, strerror(errno));
                    goto fail;
                }
                at += (off_t)n;
            }
        }
        s->flash = mmap(NULL, s->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
    } else {
        s->flash = mmap(NULL, s->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (s->flash != MAP_FAILED)
            memset(s->flash, 0xFF, s->map_len);
    }
    if (s->flash == MAP_FAILED) {
        s->flash = NULL;
        pf_diag_set(diag, PF_ERR_IO, "cannot map the flash: %s", strerror(errno));
        goto fail;
    }
    if (pf_posix_open(&s->link, cfg->port, diag) < 0)
        goto fail;
    s->open_watch = -1;
    if (cfg->reset_on_open && s->link.kind == PF_POSIX_PTY_MASTER) {
        s->open_watch = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (s->open_watch >= 0 && inotify_add_watch(s->open_watch, s->link.slave, IN_OPEN) < 0) {
            close(s->open_watch);
            s->open_watch = -1;
        }
    }
    pf_posix_port(&s->link, &s->port);
    pf_port_set_line(&s->port, 115200, PF_FRAME_8N1);
    s->st.baud = 115200;
    s->last_val = INITIAL_VAL;
    s->last_op = PF_ESP_SYNC;
    pf_slip_decoder_init(&s->dec, s->rx, sizeof s->rx);
    return s;
fail:
    if (s->flash)
        munmap(s->flash, s->map_len);
    if (s->fd >= 0)
        close(s->fd);
    free(s);
    return NULL;
}

int pf_sim_esp32_open(pf_sim_esp32 **out, const pf_sim_esp32_config *cfg, pf_diag *diag)
{
    if (!out || !cfg)
        return PF_ERR_ARG;
    pf_diag local = {0};
    *out = sim_open(cfg, diag ? diag : &local);
    if (*out)
        return PF_OK;
    return PF_ERR_IO; /* the cause is in diag */
}

/* A reset with GPIO0 low: the chip starts again in its ROM loader at the
 * default rate, with no stub, no flash operation and nothing half-received. */
static void reset_to_loader(pf_sim_esp32 *s)
{
    if (s->inf_ready)
        inflateEnd(&s->inf);
    s->inf_ready = s->inf_done = 0;
    s->op = OP_NONE;
    s->attached = 0;
    s->st.stub = 0;
    s->st.app_running = 0;
    s->st.resets++;
    if (s->st.baud != 115200) {
        pf_port_set_line(&s->port, 115200, PF_FRAME_8N1);
        s->st.baud = 115200;
    }
    pf_slip_decoder_reset(&s->dec);
    s->rxq_len = 0;
    s->ibuf_fill = 0;
    if (s->cfg.verbose || s->st.resets > 0)
        fprintf(stderr, "esp sim: port opened: reset into the ROM loader\n");
}

/* 1 when someone opened the pty's slave since the last call. inotify sees
 * every open, even a close and reopen between two reads of the port. */
static int port_was_opened(pf_sim_esp32 *s)
{
    if (s->open_watch < 0)
        return 0;
    int opened = 0;
    char ev[sizeof(struct inotify_event) + 256];
    ssize_t n;
    while ((n = read(s->open_watch, ev, sizeof ev)) > 0)
        for (ssize_t off = 0; off < n;) {
            const struct inotify_event *e = (const struct inotify_event *)(const void *)(ev + off);
            if (e->mask & IN_OPEN)
                opened = 1;
            off += (ssize_t)sizeof *e + e->len;
        }
    return opened;
}

int pf_sim_esp32_run(pf_sim_esp32 *s, volatile sig_atomic_t *stop)
{
    while (!stop || !*stop) {
        if (port_was_opened(s))
            reset_to_loader(s);
        s->rxq_head = 0;
        int n = s->port.read(s->port.ctx, s->rxq, 512, 50);
        if (n == PF_ERR_CLOSED) {
            if (s->link.kind == PF_POSIX_TCP && s->cfg.exit_on_close)
                return PF_OK;
            busy(10000);
            continue;
        }
        if (n < 0)
            return n;
        if (n > 0 && port_was_opened(s))
            reset_to_loader(s); /* these bytes are the new session's */
        if (s->st.app_running)
            continue; /* the application does not speak the loader protocol */
        s->rxq_len = (size_t)n;
        while (s->rxq_len) {
            uint8_t byte = s->rxq[s->rxq_head++];
            s->rxq_len--;
            pf_slip_event ev = pf_slip_feed(&s->dec, byte);
            if (ev != PF_SLIP_FRAME)
                continue;
            pf_esp_packet p;
            if (pf_esp_packet_parse(s->dec.buf, s->dec.len, &p) != 0 || p.dir != 0) {
                s->st.bad_frames++;
                continue;
            }
            s->fifo_checked = 0;
            int r = handle(s, &p);
            if (r == PF_ERR_CLOSED && s->link.kind == PF_POSIX_TCP && s->cfg.exit_on_close)
                return PF_OK;
            /* What arrived while the command ran is in rxq, cut to the FIFO's
             * depth (fifo_overrun); the ROM reads on from there. */
            if (s->st.app_running)
                break;
        }
    }
    return PF_OK;
}

void pf_sim_esp32_get_stats(const pf_sim_esp32 *s, pf_sim_esp32_stats *st)
{
    *st = s->st;
}

uint8_t *pf_sim_esp32_flash(pf_sim_esp32 *s)
{
    return s->flash;
}

void pf_sim_esp32_close(pf_sim_esp32 *s)
{
    if (!s)
        return;
    if (s->inf_ready)
        inflateEnd(&s->inf);
    if (s->open_watch >= 0)
        close(s->open_watch);
    pf_posix_close(&s->link);
    if (s->flash) {
        if (s->fd >= 0)
            msync(s->flash, s->map_len, MS_SYNC);
        munmap(s->flash, s->map_len);
    }
    if (s->fd >= 0)
        close(s->fd);
    free(s);
}


int pf_sim_esp32_main(int argc, char **argv)
{
    pf_sim_esp32_config cfg = PF_SIM_ESP32_CONFIG_DEFAULT();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: peerflash sim esp32 --port PATH [--flash FILE] [--chip esp32|esp32s2|esp32s3|esp32c3|"
                   "esp32c6|esp32h2|esp8266]\n"
                   "                          [--flash-size 4MB] [--erase-ms-per-4k N] [--write-us-per-kb N]\n"
                   "                          [--no-reset-on-open] [-v]\n"
                   "A chip waiting in its ROM serial loader; plays the flasher stub when a host uploads one.\n"
                   "Each open of its pty resets it into the ROM loader (the DTR/RTS reset a pty cannot\n"
                   "carry); --no-reset-on-open turns that off.\n");
            return 0;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            cfg.verbose = 1;
            continue;
        } else if (!strcmp(a, "--no-reset-on-open")) {
            cfg.reset_on_open = 0;
            continue;
        } else if (!v) {
            fprintf(stderr, "peerflash: sim esp32: %s needs a value (see --help)\n", a);
            return 2;
        } else if (!strcmp(a, "--port"))
            cfg.port = v;
        else if (!strcmp(a, "--flash"))
            cfg.flash_path = v;
        else if (!strcmp(a, "--chip"))
            cfg.chip = v;
        else if (!strcmp(a, "--flash-size")) {
            cfg.flash_size = parse_size(v);
        } else if (!strcmp(a, "--erase-ms-per-4k"))
            cfg.erase_ms_per_4k = (uint32_t)strtoul(v, NULL, 0);
        else if (!strcmp(a, "--write-us-per-kb"))
            cfg.write_us_per_kb = (uint32_t)strtoul(v, NULL, 0);
        else {
            fprintf(stderr, "peerflash: sim esp32: unknown option %s (see --help)\n", a);
            return 2;
        }
        i++;
    }
    if (!cfg.port) {
        fprintf(stderr, "peerflash: sim esp32: --port is required\n");
        return 2;
    }
    pf_diag d = {0};
    pf_sim_esp32 *s = NULL;
    pf_sim_esp32_open(&s, &cfg, &d);
    if (!s) {
        fprintf(stderr, "peerflash: sim esp32: %s\n", d.text);
        return 4;
    }
    volatile sig_atomic_t *stop = pf_sim_command_signals();
    fprintf(stderr, "esp sim: %s ROM loader on %s, flash %lu KiB%s%s\n", s->chip->name, cfg.port,
            (unsigned long)(cfg.flash_size / 1024), cfg.flash_path ? " in " : "", cfg.flash_path ? cfg.flash_path : "");
    int r = pf_sim_esp32_run(s, stop);
    pf_sim_esp32_close(s);
    return r < 0 ? 4 : 0;
}
