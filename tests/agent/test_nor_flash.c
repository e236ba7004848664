/* The simulated NOR flash keeps silicon's rules and cuts power on demand. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "nor_flash.h"
#include "pf_test.h"

static void test_rules(void)
{
    pf_nor n;
    REQUIRE(pf_nor_init(&n, 8192, 1, 4, 4096, 0xFF, NULL) == PF_OK);
    pf_flash *f = &n.flash;
    uint8_t buf[16], d[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    CHECK_EQ(f->read(f->ctx, 0, buf, 16), PF_OK);
    CHECK_EQ(buf[0], 0xFF);
    CHECK_EQ(buf[15], 0xFF);
    CHECK_EQ(f->prog(f->ctx, 4, d, 8), PF_OK);
    CHECK_EQ(n.mem[4], 1);
    CHECK_EQ(n.mem[11], 8);
    /* a second program of the same bytes, even one that only clears bits, is refused */
    uint8_t z[4] = {0, 0, 0, 0};
    CHECK_EQ(f->prog(f->ctx, 4, z, 4), PF_ERR_STATE);
    CHECK_EQ(n.mem[4], 1);
    CHECK_STR_CONTAINS(n.error, "unerased");
    /* misaligned offset or length */
    CHECK_EQ(f->prog(f->ctx, 2, d, 4), PF_ERR_ARG);
    CHECK_EQ(f->prog(f->ctx, 16, d, 3), PF_ERR_ARG);
    CHECK_EQ(f->erase(f->ctx, 100), PF_ERR_ARG);
    CHECK_EQ(f->prog(f->ctx, 8192, d, 4), PF_ERR_RANGE);
    /* erase restores 0xFF on the whole unit only */
    CHECK_EQ(f->prog(f->ctx, 4096, d, 4), PF_OK);
    CHECK_EQ(f->erase(f->ctx, 0), PF_OK);
    CHECK_EQ(n.mem[4], 0xFF);
    CHECK_EQ(n.mem[4096], 1);
    CHECK_EQ(n.progs, 2);
    CHECK_EQ(n.erases, 1);
    CHECK_EQ(n.ops, 3);
    pf_nor_free(&n);
}

static void test_cut(void)
{
    pf_nor n;
    REQUIRE(pf_nor_init(&n, 8192, 1, 4, 4096, 0xFF, NULL) == PF_OK);
    pf_flash *f = &n.flash;
    uint8_t d[256];
    memset(d, 0x00, sizeof d);
    pf_nor_cut_after(&n, 2, 5);
    CHECK_EQ(f->prog(f->ctx, 0, d, 256), PF_OK);
    CHECK_EQ(f->prog(f->ctx, 256, d, 256), PF_ERR_IO); /* the cut operation */
    int written = 0;
    for (int i = 256; i < 512; i++)
        written += n.mem[i] != 0xFF;
    CHECK(written < 256); /* it did not complete */
    /* everything fails until power comes back */
    uint8_t b[4];
    CHECK_EQ(f->read(f->ctx, 0, b, 4), PF_ERR_IO);
    CHECK_EQ(f->erase(f->ctx, 4096), PF_ERR_IO);
    CHECK_EQ(f->prog(f->ctx, 1024, d, 4), PF_ERR_IO);
    pf_nor_reboot(&n);
    CHECK_EQ(f->read(f->ctx, 0, b, 4), PF_OK);
    CHECK_EQ(b[0], 0x00);
    /* a cut erase leaves the unit partly erased at most */
    for (uint32_t o = 4096; o < 8192; o += 256)
        CHECK_EQ(f->prog(f->ctx, o, d, 256), PF_OK);
    pf_nor_cut_after(&n, 1, 9);
    CHECK_EQ(f->erase(f->ctx, 4096), PF_ERR_IO);
    uint32_t k = 4096;
    while (k < 8192 && n.mem[k] == 0xFF)
        k++;
    CHECK(k < 8192); /* not fully erased */
    int rest_kept = 1;
    for (uint32_t i = k; i < 8192; i++)
        rest_kept &= n.mem[i] == 0x00;
    CHECK(rest_kept); /* an erased prefix, the old content after it */
    pf_nor_reboot(&n);
    /* the half-completion is a function of the seed: same seed, same result */
    uint8_t snap1[512], snap2[512];
    for (int rep = 0; rep < 2; rep++) {
        memset(n.mem, 0xFF, 8192);
        pf_nor_cut_after(&n, 1, 1234);
        CHECK_EQ(f->prog(f->ctx, 0, d, 256), PF_ERR_IO);
        memcpy(rep ? snap2 : snap1, n.mem, 512);
        pf_nor_reboot(&n);
    }
    CHECK(memcmp(snap1, snap2, 512) == 0);
    pf_nor_free(&n);
}

static void test_file_backed(void)
{
    char path[] = "/tmp/pf_nor_test_XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    pf_nor n;
    REQUIRE(pf_nor_init(&n, 8192, 1, 4, 4096, 0xFF, path) == PF_OK);
    CHECK_EQ(n.mem[100], 0xFF);
    uint8_t d[4] = {0xA5, 0x5A, 0x00, 0x11};
    CHECK_EQ(n.flash.prog(n.flash.ctx, 100, d, 4), PF_OK);
    pf_nor_free(&n);
    REQUIRE(pf_nor_init(&n, 8192, 1, 4, 4096, 0xFF, path) == PF_OK);
    CHECK_EQ(n.mem[100], 0xA5);
    CHECK_EQ(n.mem[103], 0x11);
    pf_nor_free(&n);
    unlink(path);
}

int main(void)
{
    RUN(test_rules);
    RUN(test_cut);
    RUN(test_file_backed);
    return pf_test_summary();
}
