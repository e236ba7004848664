/* Host image loader: PATH[@ADDR] rules, errors that name the file, several
 * files in one map, and a cross-check against a real third-party producer:
 * the same bytes as .bin, as Intel HEX and S-record written by objcopy
 * (binutils), and as ELF32/ELF64 executables made by objcopy + ld, must load
 * to identical memory maps. */
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "peerflash/pf_image_file.h"
#include "pf_test.h"

static char dir[64];

static const char *P(const char *fmt, ...)
{
    static char bufs[8][512];
    static int k;
    char *b = bufs[k++ % 8];
    int n = snprintf(b, 512, "%s/", dir);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b + n, 512 - (size_t)n, fmt, ap);
    va_end(ap);
    return b;
}

static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "command failed: %s\n", cmd);
        return -1;
    }
    return 0;
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return;
    fwrite(data, 1, n, f);
    fclose(f);
}

static int same_map(const pf_memmap *a, const pf_memmap *b)
{
    if (a->count != b->count)
        return 0;
    for (size_t i = 0; i < a->count; i++)
        if (a->segs[i].addr != b->segs[i].addr || a->segs[i].len != b->segs[i].len ||
            memcmp(a->segs[i].data, b->segs[i].data, a->segs[i].len))
            return 0;
    return 1;
}

/* Loads spec, expecting the error code and a fragment of the message. */
static void expect_fail(const char *spec, int code, const char *frag)
{
    pf_image_file f;
    pf_diag d = {0};
    int rc = pf_image_file_load(&f, spec, &d);
    CHECK_EQ(rc, code);
    CHECK_STR_CONTAINS(d.text, frag);
    CHECK(f.path == NULL && f._arena == NULL); /* nothing left to free */
    pf_image_file_free(&f);
}

static void write_str(const char *path, const char *s) { write_file(path, s, strlen(s)); }

static uint8_t *random_bytes(size_t n, uint32_t seed)
{
    uint8_t *b = malloc(n);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        b[i] = (uint8_t)(seed >> 24);
    }
    return b;
}

/* The same bytes in five encodings by two producers load identically. */
static void test_cross_check_objcopy(void)
{
    const char *objcopy = PF_OBJCOPY;
    REQUIRE(objcopy[0] != '\0');
    static const struct {
        size_t size;
        uint32_t addr;
    } cases[] = {
        {3000, 0x08000000},  /* one 64 KiB page: HEX needs one 04 record */
        {200000, 0x0800FF00}, /* crosses four 64 KiB boundaries: several 04 records, S3 */
        {1000, 0x00000100},  /* low: HEX without 04, S1/S9 */
        {70000, 0x00FFFF00}, /* S2/S8 range */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint8_t *data = random_bytes(cases[c].size, (uint32_t)c + 1);
        write_file(P("x.bin"), data, cases[c].size);
        REQUIRE(sh("cd %s && timeout 60 %s -I binary -O ihex --change-addresses 0x%x x.bin x.hex", dir, objcopy,
                   cases[c].addr) == 0);
        REQUIRE(sh("cd %s && timeout 60 %s -I binary -O srec --change-addresses 0x%x x.bin x.srec", dir, objcopy,
                   cases[c].addr) == 0);
        REQUIRE(sh("cd %s && timeout 60 %s -I binary -O srec --srec-forceS3 --srec-len 64 --change-addresses 0x%x "
                   "x.bin x.s3",
                   dir, objcopy, cases[c].addr) == 0);
        /* ELF executables: objcopy wraps the bytes in an object, ld places it. */
        REQUIRE(sh("cd %s && timeout 60 %s -I binary -O elf32-i386 -B i386 x.bin x32.o && "
                   "timeout 60 ld -m elf_i386 -N -e 0x%x --section-start=.data=0x%x -o x32.elf x32.o && "
                   "timeout 60 %s -I binary -O elf64-x86-64 -B i386:x86-64 x.bin x64.o && "
                   "timeout 60 ld -N -e 0x%x --section-start=.data=0x%x -o x64.elf x64.o",
                   dir, objcopy, cases[c].addr, cases[c].addr, objcopy, cases[c].addr, cases[c].addr) == 0);
        char binspec[600];
        snprintf(binspec, sizeof binspec, "%s@0x%x", P("x.bin"), cases[c].addr);
        const char *specs[] = {binspec, P("x.hex"), P("x.srec"), P("x.s3"), P("x32.elf"), P("x64.elf")};
        static const pf_image_format want[] = {PF_IMAGE_BIN,  PF_IMAGE_IHEX, PF_IMAGE_SREC,
                                               PF_IMAGE_SREC, PF_IMAGE_ELF,  PF_IMAGE_ELF};
        pf_image_file f[6];
        int ok = 1;
        for (int i = 0; i < 6; i++) {
            pf_diag d = {0};
            int rc = pf_image_file_load(&f[i], specs[i], &d);
            if (rc)
                fprintf(stderr, "%s: %s\n", specs[i], d.text);
            CHECK_EQ(rc, 0);
            ok &= rc == 0;
        }
        if (ok) {
            for (int i = 0; i < 6; i++) {
                CHECK_EQ(f[i].format, want[i]);
                CHECK_EQ(f[i].map.count, 1);
                CHECK_EQ(f[i].bytes, cases[c].size);
                CHECK_EQ(f[i].lo, cases[c].addr);
                CHECK_EQ(f[i].last, cases[c].addr + cases[c].size - 1);
                CHECK(same_map(&f[0].map, &f[i].map));
            }
            CHECK(f[0].map.count == 1 && !memcmp(f[0].map.segs[0].data, data, cases[c].size));
            /* objcopy's start address record: 05 in HEX, S7/S8/S9 in S-record */
            CHECK_EQ(f[1].has_start, 1);
            CHECK_EQ(f[2].has_start, 1);
            CHECK_EQ(f[2].start_addr, cases[c].addr);
        }
        for (int i = 0; i < 6; i++)
            if (ok || f[i].path)
                pf_image_file_free(&f[i]);
        free(data);
    }
}

static void test_spec_rules(void)
{
    uint8_t data[256];
    for (int i = 0; i < 256; i++)
        data[i] = (uint8_t)i;
    write_file(P("fw.bin"), data, sizeof data);
    write_str(P("fw.hex"), ":0400000001020304F2\n:00000001FF\n");
    write_file(P("empty.bin"), "", 0);
    write_str(P("bad.hex"), ":0400000001020304F2\n\n:0400040001020304F3\n:00000001FF\n");
    write_str(P("eofonly.hex"), ":00000001FF\n");

    pf_image_file f;
    pf_diag d = {0};
    char spec[600];
    snprintf(spec, sizeof spec, "%s@4096", P("fw.bin"));
    REQUIRE(pf_image_file_load(&f, spec, &d) == 0);
    CHECK_EQ(f.format, PF_IMAGE_BIN);
    CHECK_EQ(f.has_addr, 1);
    CHECK_EQ(f.addr, 4096);
    CHECK_EQ(f.lo, 4096);
    CHECK_EQ(f.bytes, 256);
    CHECK_EQ(f.file_size, 256);
    CHECK(!strcmp(f.path, P("fw.bin")));
    CHECK(!strcmp(f.spec, spec));
    pf_image_file_free(&f);
    pf_image_file_free(&f); /* twice is harmless */

    char want[700];
    snprintf(want, sizeof want, "%s: raw binary needs a load address: %s@0x08000000", P("fw.bin"), P("fw.bin"));
    expect_fail(P("fw.bin"), PF_ERR_ARG, want);
    snprintf(spec, sizeof spec, "%s@0x1000", P("fw.hex"));
    snprintf(want, sizeof want, "%s: Intel HEX file carries its own addresses; drop the @0x1000", P("fw.hex"));
    expect_fail(spec, PF_ERR_ARG, want);
    snprintf(spec, sizeof spec, "%s@", P("fw.bin"));
    expect_fail(spec, PF_ERR_ARG, "missing load address after '@'");
    snprintf(spec, sizeof spec, "%s@0x8000000G", P("fw.bin"));
    expect_fail(spec, PF_ERR_ARG, "bad load address '0x8000000G'");
    snprintf(spec, sizeof spec, "%s@0x", P("fw.bin"));
    expect_fail(spec, PF_ERR_ARG, "bad load address '0x'");
    snprintf(spec, sizeof spec, "%s@0x100000000", P("fw.bin"));
    expect_fail(spec, PF_ERR_ARG, "load address 0x100000000 is beyond the 4 GiB address space");
    snprintf(spec, sizeof spec, "%s@99999999999999999999999", P("fw.bin"));
    expect_fail(spec, PF_ERR_ARG, "beyond the 4 GiB address space");
    expect_fail("@0x1000", PF_ERR_ARG, "empty file name");
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", P("nope.hex"));
    expect_fail(P("nope.hex"), PF_ERR_IO, want);
    snprintf(spec, sizeof spec, "%s@0", P("empty.bin"));
    expect_fail(spec, PF_ERR_FORMAT, "empty.bin: file is empty");
    snprintf(want, sizeof want, "%s: line 3: bad checksum 0xF3, expected 0xEE", P("bad.hex"));
    expect_fail(P("bad.hex"), PF_ERR_FORMAT, want);
    expect_fail(P("eofonly.hex"), PF_ERR_FORMAT, "eofonly.hex: no data records");
    expect_fail(dir, PF_ERR_IO, "cannot read");

    /* '@' inside a path is part of the path when no number follows it. */
    REQUIRE(sh("mkdir -p %s/user@host && cp %s %s/user@host/fw.hex", dir, P("fw.hex"), dir) == 0);
    REQUIRE(pf_image_file_load(&f, P("user@host/fw.hex"), &d) == 0);
    CHECK_EQ(f.format, PF_IMAGE_IHEX);
    CHECK_EQ(f.lo, 0);
    CHECK_EQ(f.bytes, 4);
    pf_image_file_free(&f);

    /* ESP app image: needs @ADDR, then loads as raw bytes. */
    uint8_t esp[64] = {0xE9, 0x02, 0x02, 0x20, 0x00, 0x00, 0x08, 0x40};
    write_file(P("app.bin"), esp, sizeof esp);
    snprintf(want, sizeof want, "%s: ESP app image needs a load address: %s@0x10000", P("app.bin"), P("app.bin"));
    expect_fail(P("app.bin"), PF_ERR_ARG, want);
    snprintf(spec, sizeof spec, "%s@0x10000", P("app.bin"));
    REQUIRE(pf_image_file_load(&f, spec, &d) == 0);
    CHECK_EQ(f.format, PF_IMAGE_ESP);
    CHECK_EQ(f.lo, 0x10000);
    CHECK_EQ(f.bytes, 64);
    pf_image_file_free(&f);

    /* pf_image_spec_parse on its own */
    char path[16];
    uint32_t a;
    int has;
    CHECK_EQ(pf_image_spec_parse("a.bin@0X1F", path, sizeof path, &a, &has, &d), 0);
    CHECK(!strcmp(path, "a.bin") && has == 1 && a == 0x1F);
    CHECK_EQ(pf_image_spec_parse("a.hex", path, sizeof path, &a, &has, &d), 0);
    CHECK(!strcmp(path, "a.hex") && has == 0);
    CHECK_EQ(pf_image_spec_parse("a-very-long-name.hex", path, sizeof path, &a, &has, &d), PF_ERR_ARG);
    CHECK_STR_CONTAINS(d.text, "file name too long");
}

static void test_set(void)
{
    uint8_t *boot = random_bytes(0x800, 11), *part = random_bytes(0xC00, 12), *app = random_bytes(0x3000, 13);
    write_file(P("boot.bin"), boot, 0x800);
    write_file(P("part.bin"), part, 0xC00);
    write_file(P("app.bin"), app, 0x3000);
    REQUIRE(sh("cd %s && timeout 60 %s -I binary -O ihex --change-addresses 0x10000 app.bin app.hex", dir, PF_OBJCOPY) ==
            0);
    char s1[600], s2[600];
    snprintf(s1, sizeof s1, "%s@0x1000", P("boot.bin"));
    snprintf(s2, sizeof s2, "%s@0x8000", P("part.bin"));
    pf_image_set set;
    pf_diag d = {0};
    pf_image_set_init(&set);
    /* added out of address order on purpose */
    REQUIRE(pf_image_set_add(&set, P("app.hex"), &d) == 0);
    REQUIRE(pf_image_set_add(&set, s2, &d) == 0);
    REQUIRE(pf_image_set_add(&set, s1, &d) == 0);
    /* a failing add leaves the set as it was */
    CHECK_EQ(pf_image_set_add(&set, P("boot.bin"), &d), PF_ERR_ARG);
    CHECK_EQ(set.count, 3);
    CHECK_EQ(set.map.count, 3);
    REQUIRE(pf_image_set_finish(&set, &d) == 0);
    REQUIRE(set.map.count == 3);
    CHECK_EQ(set.map.segs[0].addr, 0x1000);
    CHECK_EQ(set.map.segs[1].addr, 0x8000);
    CHECK_EQ(set.map.segs[2].addr, 0x10000);
    CHECK_EQ(pf_memmap_bytes(&set.map), 0x800 + 0xC00 + 0x3000);
    uint8_t back[0x3000];
    CHECK_EQ(pf_memmap_read(&set.map, 0x10000, back, 0x3000, 0xFF), 0x3000);
    CHECK(!memcmp(back, app, 0x3000));
    CHECK_EQ(pf_memmap_read(&set.map, 0x8000, back, 0xC00, 0xFF), 0xC00);
    CHECK(!memcmp(back, part, 0xC00));
    CHECK_EQ(set.files[0].format, PF_IMAGE_IHEX);
    CHECK_EQ(set.files[2].addr, 0x1000);
    pf_image_set_free(&set);

    /* Overlap between two files: both named, with their ranges. */
    pf_image_set_init(&set);
    snprintf(s1, sizeof s1, "%s@0x1000", P("boot.bin"));
    snprintf(s2, sizeof s2, "%s@0x1700", P("part.bin"));
    REQUIRE(pf_image_set_add(&set, s1, &d) == 0);
    REQUIRE(pf_image_set_add(&set, s2, &d) == 0);
    CHECK_EQ(pf_image_set_finish(&set, &d), PF_ERR_OVERLAP);
    char want[1400];
    snprintf(want, sizeof want, "%s (0x00001000-0x000017ff) and %s (0x00001700-0x000022ff) overlap at 0x00001700-0x000017ff",
             s1, s2);
    CHECK_STR_CONTAINS(d.text, want);
    pf_image_set_free(&set);

    /* The plain pf_memmap_finish on set.map finds it too. */
    pf_image_set_init(&set);
    REQUIRE(pf_image_set_add(&set, s2, &d) == 0);
    REQUIRE(pf_image_set_add(&set, s1, &d) == 0);
    CHECK_EQ(pf_memmap_finish(&set.map, &d), PF_ERR_OVERLAP);
    pf_image_set_free(&set);

    /* Touching files are fine; an empty set is refused. */
    pf_image_set_init(&set);
    CHECK_EQ(pf_image_set_finish(&set, &d), PF_ERR_ARG);
    snprintf(s2, sizeof s2, "%s@0x1800", P("part.bin"));
    REQUIRE(pf_image_set_add(&set, s1, &d) == 0);
    REQUIRE(pf_image_set_add(&set, s2, &d) == 0);
    CHECK_EQ(pf_image_set_finish(&set, &d), 0);
    CHECK_EQ(pf_memmap_bytes(&set.map), 0x800 + 0xC00);
    pf_image_set_free(&set);
    free(boot);
    free(part);
    free(app);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/pf-imgfile-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_cross_check_objcopy);
    RUN(test_spec_rules);
    RUN(test_set);
    sh("rm -rf %s", dir);
    return pf_test_summary();
}
