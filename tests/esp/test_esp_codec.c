/* SLIP and ESP command codecs: escapes at every buffer edge, frames split
 * at every byte, packets built and parsed, the data checksum. */
#include "codec/esp_cmd.h"
#include "codec/slip.h"
#include "peerflash/pf_bytes.h"
#include "pf_test.h"

static void test_slip_escape_edges(void)
{
    /* C0 and DB at the first, last and every position of short payloads */
    for (size_t n = 1; n <= 6; n++) {
        for (size_t pos = 0; pos < n; pos++) {
            for (int special = 0; special < 2; special++) {
                uint8_t in[8], enc[32], dbuf[8];
                for (size_t i = 0; i < n; i++)
                    in[i] = (uint8_t)(0x41 + i);
                in[pos] = special ? 0xDB : 0xC0;
                size_t e = pf_slip_encode(in, n, enc, sizeof enc);
                REQUIRE(e == n + 3);
                CHECK_EQ(enc[0], 0xC0);
                CHECK_EQ(enc[e - 1], 0xC0);
                CHECK_EQ(enc[1 + pos], 0xDB);
                CHECK_EQ(enc[2 + pos], special ? 0xDD : 0xDC);
                /* an output buffer one byte short fails rather than truncating */
                CHECK_EQ(pf_slip_encode(in, n, enc, e - 1), 0);
                pf_slip_decoder d;
                pf_slip_decoder_init(&d, dbuf, sizeof dbuf);
                int frames = 0;
                for (size_t i = 0; i < e; i++)
                    if (pf_slip_feed(&d, enc[i]) == PF_SLIP_FRAME) {
                        frames++;
                        CHECK_EQ(d.len, n);
                        CHECK(memcmp(dbuf, in, n) == 0);
                    }
                CHECK_EQ(frames, 1);
            }
        }
    }
}

static void test_slip_decoder_stream(void)
{
    /* garbage, two back-to-back frames sharing no delimiter, an empty frame,
     * an overflow, a bad escape: each reported, the next frame still whole */
    uint8_t buf[4];
    pf_slip_decoder d;
    pf_slip_decoder_init(&d, buf, sizeof buf);
    const uint8_t s[] = {0x11, 0x22, 0xC0, 0x01, 0xDB, 0xDC, 0xC0, 0xC0, 0x02, 0xC0, 0xC0, 0xC0,
                         0x01, 0x02, 0x03, 0x04, 0x05, 0xC0, 0xC0, 0xDB, 0x00, 0xC0, 0xC0, 0x07, 0xDB, 0xDD, 0xC0};
    int frames = 0, overflow = 0, badesc = 0;
    uint8_t got[8][4];
    size_t glen[8];
    for (size_t i = 0; i < sizeof s; i++) {
        pf_slip_event ev = pf_slip_feed(&d, s[i]);
        if (ev == PF_SLIP_FRAME) {
            memcpy(got[frames], buf, d.len);
            glen[frames++] = d.len;
        } else if (ev == PF_SLIP_OVERFLOW)
            overflow++;
        else if (ev == PF_SLIP_BAD_ESCAPE)
            badesc++;
    }
    CHECK_EQ(d.garbage, 2);
    REQUIRE(frames == 3);
    CHECK(glen[0] == 2 && got[0][0] == 0x01 && got[0][1] == 0xC0);
    CHECK(glen[1] == 1 && got[1][0] == 0x02);
    CHECK(glen[2] == 2 && got[2][0] == 0x07 && got[2][1] == 0xDB);
    CHECK_EQ(overflow, 1);
    CHECK_EQ(badesc, 1);
}

static void test_request_roundtrip(void)
{
    /* a FLASH_DATA request whose header, sub-header and data all need escapes */
    uint8_t hdr[16], data[300];
    pf_put_le32(hdr, sizeof data);
    pf_put_le32(hdr + 4, 0xC0DB);
    memset(hdr + 8, 0, 8);
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7);
    data[0] = 0xC0;
    data[299] = 0xDB;
    uint8_t chk = pf_esp_checksum(data, sizeof data, PF_ESP_CHECKSUM_SEED);
    uint8_t x = 0xEF;
    for (size_t i = 0; i < sizeof data; i++)
        x ^= data[i];
    CHECK_EQ(chk, x);
    static uint8_t frame[PF_ESP_FRAME_MAX(316)];
    size_t n = pf_esp_request_frame(PF_ESP_FLASH_DATA, chk, hdr, 16, data, sizeof data, frame, sizeof frame);
    REQUIRE(n > 0);
    CHECK_EQ(pf_esp_request_frame(PF_ESP_FLASH_DATA, chk, hdr, 16, data, sizeof data, frame, n - 1), 0);
    uint8_t dec[400];
    pf_slip_decoder d;
    pf_slip_decoder_init(&d, dec, sizeof dec);
    int ok = 0;
    for (size_t i = 0; i < n; i++)
        if (pf_slip_feed(&d, frame[i]) == PF_SLIP_FRAME)
            ok = 1;
    REQUIRE(ok);
    pf_esp_packet p;
    REQUIRE(pf_esp_packet_parse(dec, d.len, &p) == 0);
    CHECK_EQ(p.dir, 0);
    CHECK_EQ(p.op, PF_ESP_FLASH_DATA);
    CHECK_EQ(p.size, 316);
    CHECK_EQ(p.word, chk);
    CHECK_EQ(pf_get_le32(p.data + 4), 0xC0DB);
    CHECK(memcmp(p.data + 16, data, sizeof data) == 0);
    /* a size field that disagrees with the frame is refused */
    CHECK_EQ(pf_esp_packet_parse(dec, d.len - 1, &p), -1);
    CHECK_EQ(pf_esp_packet_parse(dec, 7, &p), -1);
}

static void test_response(void)
{
    uint8_t st[4] = {1, 0x07, 0, 0}, frame[64], dec[64];
    size_t n = pf_esp_response_frame(PF_ESP_READ_REG, 0xC0C0DBDBu, NULL, 0, st, 4, frame, sizeof frame);
    REQUIRE(n > 0);
    pf_slip_decoder d;
    pf_slip_decoder_init(&d, dec, sizeof dec);
    for (size_t i = 0; i < n; i++)
        pf_slip_feed(&d, frame[i]);
    pf_esp_packet p;
    /* the frame was delivered at the closing C0; len still holds it */
    REQUIRE(pf_esp_packet_parse(dec, d.len, &p) == 0);
    CHECK_EQ(p.dir, 1);
    CHECK_EQ(p.word, 0xC0C0DBDBu);
    CHECK_EQ(p.size, 4);
    CHECK_EQ(p.data[1], 0x07);
    CHECK_STR_CONTAINS(pf_esp_err_name(0x07), "checksum");
    CHECK_STR_CONTAINS(pf_esp_op_name(PF_ESP_SPI_FLASH_MD5), "MD5");
}

int main(void)
{
    RUN(test_slip_escape_edges);
    RUN(test_slip_decoder_stream);
    RUN(test_request_roundtrip);
    RUN(test_response);
    return pf_test_summary();
}
