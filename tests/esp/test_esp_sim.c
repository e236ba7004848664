/* The ROM simulator byte for byte: raw frames in, raw frames out, checked
 * against the behaviour of the real ROM described in the notes: 8 SYNC
 * answers, the stale READ_REG value in every `val`, 4 status bytes (2 on
 * the ESP8266), the unsupported-command form (previous op and val, 01 05),
 * checksum/sequence/size refusals, CHANGE_BAUDRATE re-setting the pty, and
 * the stub's part after a RAM upload ("OHAI", 2 status bytes, READ_FLASH with
 * acks, raw MD5). */
#include <signal.h>
#include <termios.h>
#include <zlib.h>

#include "codec/esp_cmd.h"
#include "codec/slip.h"
#include "esp_harness.h"
#include "peerflash/pf_bytes.h"
#include "pf_test.h"

typedef struct raw {
    esp_simthread st;
    pf_posix_link link;
    pf_port port;
    pf_slip_decoder dec;
    uint8_t buf[20000];
} raw;

static int raw_open(raw *r, const char *chip)
{
    if (esp_sim_start(&r->st, "raw", chip, 1u << 20) != 0)
        return -1;
    if (pf_posix_open(&r->link, r->st.path, NULL) < 0)
        return -1;
    pf_posix_port(&r->link, &r->port);
    pf_slip_decoder_init(&r->dec, r->buf, sizeof r->buf);
    return 0;
}

static void raw_close(raw *r)
{
    pf_posix_close(&r->link);
    esp_sim_stop(&r->st);
}

static void send_req(raw *r, uint8_t op, uint32_t chk, const uint8_t *d, size_t n)
{
    static uint8_t f[PF_ESP_FRAME_MAX(20000)];
    size_t len = pf_esp_request_frame(op, chk, d, n, NULL, 0, f, sizeof f);
    pf_port_write_all(&r->port, f, len);
}

/* Next frame within timeout_ms: its length, or -1. */
static int next_frame(raw *r, uint32_t timeout_ms)
{
    uint32_t deadline = pf_deadline(&r->port, timeout_ms);
    for (;;) {
        uint8_t b;
        int n = r->port.read(r->port.ctx, &b, 1, pf_remaining(&r->port, deadline));
        if (n <= 0)
            return -1;
        if (pf_slip_feed(&r->dec, b) == PF_SLIP_FRAME)
            return (int)r->dec.len;
    }
}

static int next_resp(raw *r, pf_esp_packet *p)
{
    int n = next_frame(r, 2000);
    if (n < 0 || pf_esp_packet_parse(r->buf, (size_t)n, p) != 0)
        return -1;
    return 0;
}

static void sync_pkt(uint8_t d[36])
{
    d[0] = d[1] = 0x07;
    d[2] = 0x12;
    d[3] = 0x20;
    memset(d + 4, 0x55, 32);
}

static void test_rom_quirks(void)
{
    raw r;
    REQUIRE(raw_open(&r, "esp32") == 0);
    uint8_t d[64];
    pf_esp_packet p;
    sync_pkt(d);
    send_req(&r, PF_ESP_SYNC, 0, d, 36);
    int answers = 0;
    uint32_t sync_val = 0;
    while (next_frame(&r, 300) >= 0) {
        REQUIRE(pf_esp_packet_parse(r.buf, r.dec.len, &p) == 0);
        CHECK_EQ(p.dir, 1);
        CHECK_EQ(p.op, PF_ESP_SYNC);
        CHECK_EQ(p.size, 4); /* four status bytes on the ESP32 ROM */
        CHECK(p.data[0] == 0 && p.data[1] == 0 && p.data[2] == 0 && p.data[3] == 0);
        sync_val = p.word;
        answers++;
    }
    CHECK_EQ(answers, 8);
    CHECK(sync_val != 0); /* the ROM's val is not 0 (0 means a stub answered) */
    pf_put_le32(d, PF_ESP_MAGIC_REG);
    send_req(&r, PF_ESP_READ_REG, 0, d, 4);
    REQUIRE(next_resp(&r, &p) == 0);
    CHECK_EQ(p.op, PF_ESP_READ_REG);
    CHECK_EQ(p.word, 0x00F01D83u);
    /* GET_SECURITY_INFO is not in the ESP32 ROM: previous op and val, 01 05 */
    send_req(&r, PF_ESP_GET_SECURITY_INFO, 0, NULL, 0);
    REQUIRE(next_resp(&r, &p) == 0);
    CHECK_EQ(p.op, PF_ESP_READ_REG);
    CHECK_EQ(p.word, 0x00F01D83u);
    CHECK_EQ(p.size, 4);
    CHECK(p.data[0] == 1 && p.data[1] == 5 && p.data[2] == 0 && p.data[3] == 0);
    /* stub-only command on the ROM: the same form */
    send_req(&r, PF_ESP_ERASE_FLASH, 0, NULL, 0);
    REQUIRE(next_resp(&r, &p) == 0);
    CHECK_EQ(p.op, PF_ESP_READ_REG);
    CHECK_EQ(p.data[1], 5);
    /* every later answer carries the stale READ_REG value */
    memset(d, 0, 8);
    send_req(&r, PF_ESP_SPI_ATTACH, 0, d, 8);
    REQUIRE(next_resp(&r, &p) == 0);
    CHECK_EQ(p.op, PF_ESP_SPI_ATTACH);
    CHECK_EQ(p.word, 0x00F01D83u);
    CHECK_EQ(p.data[0], 0);
    /* FLASH_DATA without FLASH_BEGIN is refused */
    uint8_t blk[16 + 1024];
    memset(blk, 0xA5, sizeof blk);
    pf_put_le32(blk, 1024);
    pf_put_le32(blk + 4, 0);
    memset(blk + 8, 0, 8);
    send_req(&r, PF_ESP_FLASH_DATA, pf_esp_checksum(blk + 16, 1024, 0xEF), blk, sizeof blk);
    REQUIRE(next_resp(&r, &p) == 0);
    CHECK_EQ(p.data[0], 1);
    /* FLASH_BEGIN, then a block with a bad checksum (07): the ROM counts it,
     * so the same sequence number again is refused 01 05 (real ROM, note
     * fact 2); a short block is refused 05; the next number is taken */
    pf_put_le32(d, 4096);
    pf_put_le32(d + 4, 4);
    pf_put_le32(d + 8, 1024);
    pf_put_le32(d + 12, 0x3000);
    send_req(&r, PF_ESP_FLASH_BEGIN, 0, d, 16);
    REQUIRE(next_resp(&r, &p) == 0);
    CHECK_EQ(p.data[0], 0);
    send_req(&r, PF_ESP_FLASH_DATA, 0x12, blk, sizeof blk);
    REQUIRE(next_resp(&r, &p) == 0);
    CHECK(p.data[0] == 1 && p.data[1] == PF_ESP_ERR_INVALID_CRC);
    send_req(&r, PF_ESP_FLASH_DATA, pf_esp_checksum(blk + 16, 1024, 0xEF), blk, sizeof blk);
    REQUIRE(next_resp(&r, &p) == 0);
    CHECK(p.data[0] == 1 && p.data[1] == PF_ESP_ERR_INVALID_MSG);
    pf_put_le32(blk + 4, 1);
    pf_put_le32(blk, 512);
    send_req(&r, PF_ESP_FLASH_DATA, pf_esp_checksum(blk + 16, 512, 0xEF), blk, 16 + 512);
    REQUIRE(next_resp(&r, &p) == 0);
    CHECK(p.data[0] == 1 && p.data[1] == PF_ESP_ERR_INVALID_MSG);
    pf_put_le32(blk, 1024);
    send_req(&r, PF_ESP_FLASH_DATA, pf_esp_checksum(blk + 16, 1024, 0xEF), blk, sizeof blk);
    REQUIRE(next_resp(&r, &p) == 0);
    CHECK_EQ(p.data[0], 0);
    CHECK_EQ(pf_sim_esp32_flash(r.st.sim)[0x3000], 0xA5);
    CHECK_EQ(pf_sim_esp32_flash(r.st.sim)[0x3400], 0xFF);
    /* MD5 as 32 hex digits and 4 status bytes */
    pf_put_le32(d, 0x3000);
    pf_put_le32(d + 4, 1024);
    memset(d + 8, 0, 8);
    send_req(&r, PF_ESP_SPI_FLASH_MD5, 0, d, 16);
    REQUIRE(next_resp(&r, &p) == 0);
    CHECK_EQ(p.size, 36);
    /* CHANGE_BAUDRATE: answered at the old rate, then the pty runs at the new one */
    pf_put_le32(d, 460800);
    pf_put_le32(d + 4, 0);
    send_req(&r, PF_ESP_CHANGE_BAUDRATE, 0, d, 8);
    REQUIRE(next_resp(&r, &p) == 0);
    CHECK_EQ(p.op, PF_ESP_CHANGE_BAUDRATE);
    uint32_t t0 = pf_posix_now_ms();
    struct termios t;
    int switched = 0;
    while (pf_posix_now_ms() - t0 < 2000 && !switched) {
        if (tcgetattr(r.link.fd, &t) == 0 && cfgetospeed(&t) == B460800)
            switched = 1;
        else
            pf_posix_sleep_ms(5);
    }
    CHECK(switched);
    raw_close(&r);
}

static void test_stub(void)
{
    raw r;
    esp_harness_reset_on_open = 0; /* the port is reopened below to meet the running stub */
    int opened = raw_open(&r, "esp32");
    esp_harness_reset_on_open = 1;
    REQUIRE(opened == 0);
    uint8_t d[64];
    pf_esp_packet p;
    /* upload "a stub": 2 blocks of RAM, then MEM_END with an entry point */
    pf_put_le32(d, 8000);
    pf_put_le32(d + 4, 2);
    pf_put_le32(d + 8, 0x1800);
    pf_put_le32(d + 12, 0x40080000u);
    send_req(&r, PF_ESP_MEM_BEGIN, 0, d, 16);
    REQUIRE(next_resp(&r, &p) == 0);
    CHECK_EQ(p.data[0], 0);
    static uint8_t blk[16 + 0x1800];
    for (uint32_t seq = 0; seq < 2; seq++) {
        uint32_t n = seq ? 8000 - 0x1800 : 0x1800;
        pf_put_le32(blk, n);
        pf_put_le32(blk + 4, seq);
        memset(blk + 8, 0, 8);
        memset(blk + 16, (int)(0x30 + seq), n);
        send_req(&r, PF_ESP_MEM_DATA, pf_esp_checksum(blk + 16, n, 0xEF), blk, 16 + n);
        REQUIRE(next_resp(&r, &p) == 0);
        CHECK_EQ(p.data[0], 0);
    }
    pf_put_le32(d, 0);
    pf_put_le32(d + 4, 0x40080400u);
    send_req(&r, PF_ESP_MEM_END, 0, d, 8);
    REQUIRE(next_resp(&r, &p) == 0);
    CHECK_EQ(p.op, PF_ESP_MEM_END);
    int n = next_frame(&r, 2000);
    CHECK(n == 4 && memcmp(r.buf, "OHAI", 4) == 0);
    /* the stub: one SYNC answer with val 0, two status bytes */
    sync_pkt(d);
    send_req(&r, PF_ESP_SYNC, 0, d, 36);
    REQUIRE(next_resp(&r, &p) == 0);
    CHECK_EQ(p.word, 0);
    CHECK_EQ(p.size, 2);
    CHECK_EQ(next_frame(&r, 200), -1);
    /* ERASE_REGION must be sector aligned */
    pf_put_le32(d, 0x1100);
    pf_put_le32(d + 4, 0x1000);
    send_req(&r, PF_ESP_ERASE_REGION, 0, d, 8);
    REQUIRE(next_resp(&r, &p) == 0);
    CHECK_EQ(p.data[0], 1);
    /* READ_FLASH: data frames, the host acks the running count, raw MD5 last */
    uint8_t *fl = pf_sim_esp32_flash(r.st.sim);
    for (int i = 0; i < 10000; i++)
        fl[0x20000 + i] = (uint8_t)(i * 3);
    pf_put_le32(d, 0x20000);
    pf_put_le32(d + 4, 10000);
    pf_put_le32(d + 8, 4096);
    pf_put_le32(d + 12, 1);
    send_req(&r, PF_ESP_READ_FLASH, 0, d, 16);
    REQUIRE(next_resp(&r, &p) == 0);
    CHECK_EQ(p.data[0], 0);
    static uint8_t got[10000];
    uint32_t have = 0;
    while (have < 10000) {
        n = next_frame(&r, 2000);
        if (n <= 0)
            break;
        memcpy(got + have, r.buf, (size_t)n);
        have += (uint32_t)n;
        uint8_t ack[4], f[16];
        pf_put_le32(ack, have);
        size_t fl_len = pf_slip_encode(ack, 4, f, sizeof f);
        pf_port_write_all(&r.port, f, fl_len);
    }
    CHECK_EQ(have, 10000);
    CHECK(memcmp(got, fl + 0x20000, 10000) == 0);
    n = next_frame(&r, 2000);
    CHECK_EQ(n, 16);
    /* MD5: 16 raw bytes */
    pf_put_le32(d, 0x20000);
    pf_put_le32(d + 4, 10000);
    memset(d + 8, 0, 8);
    send_req(&r, PF_ESP_SPI_FLASH_MD5, 0, d, 16);
    REQUIRE(next_resp(&r, &p) == 0);
    CHECK_EQ(p.size, 18);
    /* our ROM driver meeting a running stub says so instead of misreading it */
    pf_posix_close(&r.link);
    esp_host h;
    CHECK_EQ(esp_host_open(&h, r.st.path, 0, NULL, 1), PF_ERR_STATE);
    CHECK_STR_CONTAINS(h.diag.text, "stub");
    esp_host_close(&h);
    esp_sim_stop(&r.st);
}

static void test_esp8266(void)
{
    raw r;
    REQUIRE(raw_open(&r, "esp8266") == 0);
    uint8_t d[64];
    pf_esp_packet p;
    sync_pkt(d);
    send_req(&r, PF_ESP_SYNC, 0, d, 36);
    int answers = 0;
    while (next_frame(&r, 300) >= 0) {
        REQUIRE(pf_esp_packet_parse(r.buf, r.dec.len, &p) == 0);
        CHECK_EQ(p.size, 2); /* two status bytes */
        answers++;
    }
    CHECK_EQ(answers, 8);
    memset(d, 0, 16);
    send_req(&r, PF_ESP_FLASH_DEFL_BEGIN, 0, d, 16);
    REQUIRE(next_resp(&r, &p) == 0);
    CHECK_EQ(p.op, PF_ESP_SYNC); /* no deflate in the ESP8266 ROM */
    CHECK(p.data[0] == 1 && p.data[1] == 5);
    raw_close(&r);
}

/* Sync and attach on a fresh raw session. */
static void raw_connect(raw *r)
{
    uint8_t d[36];
    sync_pkt(d);
    send_req(r, PF_ESP_SYNC, 0, d, 36);
    while (next_frame(r, 200) >= 0) {
    }
    pf_esp_packet p;
    memset(d, 0, 8);
    send_req(r, PF_ESP_SPI_ATTACH, 0, d, 8);
    REQUIRE(next_resp(r, &p) == 0);
}

static int defl_begin(raw *r, uint32_t size, uint32_t blocks, uint32_t off, pf_esp_packet *p)
{
    uint8_t d[16];
    pf_put_le32(d, size);
    pf_put_le32(d + 4, blocks);
    pf_put_le32(d + 8, 1024);
    pf_put_le32(d + 12, off);
    send_req(r, PF_ESP_FLASH_DEFL_BEGIN, 0, d, 16);
    return next_resp(r, p);
}

/* Sends z[0, zn) as FLASH_DEFL_DATA blocks from seq 0; returns the blocks sent
 * or -1 on a refusal. */
static int defl_send(raw *r, const uint8_t *z, size_t zn)
{
    static uint8_t blk[16 + 1024];
    pf_esp_packet p;
    int seq = 0;
    for (size_t at = 0; at < zn; at += 1024, seq++) {
        size_t n = zn - at < 1024 ? zn - at : 1024;
        pf_put_le32(blk, (uint32_t)n);
        pf_put_le32(blk + 4, (uint32_t)seq);
        memset(blk + 8, 0, 8);
        memcpy(blk + 16, z + at, n);
        send_req(r, PF_ESP_FLASH_DEFL_DATA, pf_esp_checksum(blk + 16, n, 0xEF), blk, 16 + n);
        if (next_resp(r, &p) != 0 || p.data[0] != 0)
            return -1;
    }
    return seq;
}

/* The ROM's write rules, as the real ESP32 ROM showed them (note
 * esp32-real-rom.md): BEGIN needs a sector-aligned offset; the inflate
 * buffer reaches flash only when full or at the last announced block (then
 * stale bytes too); FLASH_DEFL_END writes nothing (01 06). */
static void test_rom_write_rules(void)
{
    raw r;
    REQUIRE(raw_open(&r, "esp32") == 0);
    raw_connect(&r);
    pf_esp_packet p;
    uint8_t *fl = pf_sim_esp32_flash(r.st.sim);
    /* an offset inside a sector: 01 06, nothing erased */
    fl[0x3000] = 0x12;
    REQUIRE(defl_begin(&r, 4096, 4, 0x3100, &p) == 0);
    CHECK(p.data[0] == 1 && p.data[1] == PF_ESP_ERR_FAILED);
    CHECK_EQ(fl[0x3000], 0x12);
    /* 40 KiB announced with more blocks than are sent: the last 8 KiB stay
     * in the buffer and never reach flash */
    static uint8_t img[40 * 1024], z[48 * 1024];
    esp_fill(img, sizeof img, 7);
    uLongf zn = sizeof z;
    REQUIRE(compress2(z, &zn, img, sizeof img, 9) == Z_OK);
    uint32_t exact = (uint32_t)((zn + 1023) / 1024);
    REQUIRE(defl_begin(&r, sizeof img, exact + 5, 0x10000, &p) == 0);
    CHECK_EQ(p.data[0], 0);
    CHECK_EQ(defl_send(&r, z, zn), (int)exact);
    CHECK(memcmp(fl + 0x10000, img, 0x8000) == 0);
    int tail_erased = 1;
    for (uint32_t i = 0x8000; i < sizeof img; i++)
        tail_erased &= fl[0x10000 + i] == 0xFF;
    CHECK(tail_erased);
    uint8_t flag[4] = {1, 0, 0, 0};
    send_req(&r, PF_ESP_FLASH_DEFL_END, 0, flag, 4);
    REQUIRE(next_resp(&r, &p) == 0);
    CHECK(p.data[0] == 1 && p.data[1] == PF_ESP_ERR_FAILED);
    CHECK_EQ(fl[0x10000 + 0x9000], 0xFF);
    /* the exact count writes the tail and the whole buffer with it: stale
     * bytes land past the erased region */
    memset(fl + 0x2A000, 0xFF, 0x6000);
    REQUIRE(defl_begin(&r, sizeof img, exact, 0x20000, &p) == 0);
    CHECK_EQ(defl_send(&r, z, zn), (int)exact);
    CHECK(memcmp(fl + 0x20000, img, sizeof img) == 0);
    int stale = 0;
    for (uint32_t i = 0x2A000; i < 0x30000; i++)
        stale |= fl[i] != 0xFF;
    CHECK(stale);
    raw_close(&r);
}

/* The UART receive FIFO holds 128 bytes while the ROM executes a command:
 * a host that sends ahead of the answer loses the rest. */
static void test_rx_fifo(void)
{
    raw r;
    REQUIRE(raw_open(&r, "esp32") == 0);
    raw_connect(&r);
    static uint8_t two[2 * PF_ESP_FRAME_MAX(1100)];
    uint8_t d[16];
    pf_put_le32(d, 4096);
    pf_put_le32(d + 4, 4);
    pf_put_le32(d + 8, 1024);
    pf_put_le32(d + 12, 0x4000);
    size_t n = pf_esp_request_frame(PF_ESP_FLASH_BEGIN, 0, d, 16, NULL, 0, two, sizeof two);
    static uint8_t blk[16 + 1024];
    memset(blk, 0x3C, sizeof blk);
    pf_put_le32(blk, 1024);
    pf_put_le32(blk + 4, 0);
    memset(blk + 8, 0, 8);
    n += pf_esp_request_frame(PF_ESP_FLASH_DATA, pf_esp_checksum(blk + 16, 1024, 0xEF), blk, sizeof blk, NULL, 0,
                              two + n, sizeof two - n);
    pf_port_write_all(&r.port, two, n); /* the block goes before BEGIN is answered */
    pf_esp_packet p;
    REQUIRE(next_resp(&r, &p) == 0);
    CHECK_EQ(p.op, PF_ESP_FLASH_BEGIN);
    CHECK(next_frame(&r, 300) < 0); /* the block was cut: no answer */
    pf_sim_esp32_stats ss;
    pf_sim_esp32_get_stats(r.st.sim, &ss);
    CHECK(ss.rx_lost >= 1024 + 16 - 128);
    CHECK_EQ(pf_sim_esp32_flash(r.st.sim)[0x4000], 0xFF);
    /* sent after the answer, the same block is taken */
    send_req(&r, PF_ESP_FLASH_DATA, pf_esp_checksum(blk + 16, 1024, 0xEF), blk, sizeof blk);
    REQUIRE(next_resp(&r, &p) == 0);
    CHECK_EQ(p.op, PF_ESP_FLASH_DATA);
    CHECK_EQ(p.data[0], 0);
    CHECK_EQ(pf_sim_esp32_flash(r.st.sim)[0x4000], 0x3C);
    raw_close(&r);
}

/* The registers esptool reads: the UART divider gives a 40 MHz crystal, the
 * eFuse words a real chip's MAC. */
static void test_chip_registers(void)
{
    raw r;
    REQUIRE(raw_open(&r, "esp32") == 0);
    raw_connect(&r);
    pf_esp_packet p;
    uint8_t d[4];
    pf_put_le32(d, 0x3FF40014u);
    send_req(&r, PF_ESP_READ_REG, 0, d, 4);
    REQUIRE(next_resp(&r, &p) == 0);
    double xtal = 115200.0 * (p.word & 0xFFFFFu) / 1e6;
    CHECK(xtal > 39.5 && xtal < 40.5);
    uint32_t w[3];
    for (int i = 1; i <= 2; i++) {
        pf_put_le32(d, 0x3FF5A000u + 4u * (uint32_t)i);
        send_req(&r, PF_ESP_READ_REG, 0, d, 4);
        REQUIRE(next_resp(&r, &p) == 0);
        w[i] = p.word;
    }
    uint8_t mac[6] = {(uint8_t)(w[2] >> 8), (uint8_t)w[2], (uint8_t)(w[1] >> 24), (uint8_t)(w[1] >> 16),
                      (uint8_t)(w[1] >> 8), (uint8_t)w[1]};
    static const uint8_t want[6] = {0x30, 0xAE, 0xA4, 0x21, 0x15, 0x98};
    CHECK(memcmp(mac, want, 6) == 0);
    raw_close(&r);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    RUN(test_rom_quirks);
    RUN(test_stub);
    RUN(test_esp8266);
    RUN(test_rom_write_rules);
    RUN(test_rx_fifo);
    RUN(test_chip_registers);
    return pf_test_summary();
}
