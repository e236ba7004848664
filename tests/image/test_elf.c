/* ELF reader. Test files come from two real producers made at test time:
 * the system compiler and linker (cc -c, ld with a linker script that puts
 * .data in RAM but loads it from flash, so p_paddr != p_vaddr), and
 * libelf's writing API (any class, byte order and program header values,
 * including broken ones). Truncated and corrupted files must fail with the
 * segment and offset named. */
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "image_test.h"

static char tmpdir[64];

typedef struct t_ph {
    uint32_t type;
    uint64_t offset, vaddr, paddr, filesz, memsz;
} t_ph;

typedef struct t_blob {
    uint64_t offset;
    const uint8_t *data;
    size_t n;
} t_blob;

static uint8_t *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    *size = fread(buf, 1, (size_t)n, f);
    fclose(f);
    return buf;
}

/* Writes an ELF file through libelf with exactly the given program headers
 * (ELF_F_LAYOUT: we choose every offset) and returns its bytes. */
static uint8_t *make_elf(int cls, int endian, int etype, const t_ph *ph, size_t nph, const t_blob *bl, size_t nbl,
                         size_t *size)
{
    char path[128];
    snprintf(path, sizeof path, "%s/gen.elf", tmpdir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return NULL;
    Elf *e = elf_begin(fd, ELF_C_WRITE, NULL);
    elf_flagelf(e, ELF_C_SET, ELF_F_LAYOUT);
    gelf_newehdr(e, cls);
    GElf_Ehdr eh;
    gelf_getehdr(e, &eh);
    eh.e_ident[EI_DATA] = (unsigned char)endian;
    eh.e_type = (GElf_Half)etype;
    eh.e_machine = endian == ELFDATA2MSB ? EM_PPC : EM_ARM;
    eh.e_version = EV_CURRENT;
    eh.e_entry = nph ? ph[0].vaddr : 0;
    size_t ehsize = cls == ELFCLASS32 ? sizeof(Elf32_Ehdr) : sizeof(Elf64_Ehdr);
    size_t phsize = cls == ELFCLASS32 ? sizeof(Elf32_Phdr) : sizeof(Elf64_Phdr);
    eh.e_phoff = nph ? ehsize : 0;
    uint64_t end = ehsize + nph * phsize;
    for (size_t i = 0; i < nbl; i++)
        if (bl[i].offset + bl[i].n > end)
            end = bl[i].offset + bl[i].n;
    eh.e_shoff = (end + 7) & ~7ull;
    gelf_update_ehdr(e, &eh); /* before newphdr/newscn, which update it themselves */
    if (nph)
        gelf_newphdr(e, nph);
    for (size_t i = 0; i < nbl; i++) {
        Elf_Scn *scn = elf_newscn(e);
        Elf_Data *d = elf_newdata(scn);
        d->d_buf = (void *)(uintptr_t)bl[i].data;
        d->d_size = bl[i].n;
        d->d_type = ELF_T_BYTE;
        d->d_off = 0;
        d->d_align = 1;
        d->d_version = EV_CURRENT;
        GElf_Shdr sh;
        gelf_getshdr(scn, &sh);
        sh.sh_type = SHT_PROGBITS;
        sh.sh_flags = SHF_ALLOC;
        sh.sh_offset = bl[i].offset;
        sh.sh_size = bl[i].n;
        sh.sh_addralign = 1;
        gelf_update_shdr(scn, &sh);
    }
    for (size_t i = 0; i < nph; i++) {
        GElf_Phdr p;
        memset(&p, 0, sizeof p);
        p.p_type = ph[i].type;
        p.p_offset = ph[i].offset;
        p.p_vaddr = ph[i].vaddr;
        p.p_paddr = ph[i].paddr;
        p.p_filesz = ph[i].filesz;
        p.p_memsz = ph[i].memsz;
        p.p_flags = PF_R;
        p.p_align = 1;
        gelf_update_phdr(e, (int)i, &p);
    }
    if (elf_update(e, ELF_C_WRITE) < 0) {
        fprintf(stderr, "libelf: %s\n", elf_errmsg(-1));
        elf_end(e);
        close(fd);
        return NULL;
    }
    elf_end(e);
    close(fd);
    return read_file(path, size);
}

typedef struct t_elf_res {
    int rc;
    char diag[PF_DIAG_MAX];
    pf_memmap map;
    pf_segment segs[16];
    uint8_t arena[1 << 16];
} t_elf_res;
static t_elf_res er;

static int parse(const uint8_t *buf, size_t size)
{
    pf_diag d = {0};
    pf_memmap_init(&er.map, er.segs, 16, er.arena, sizeof er.arena);
    pf_memmap_dest dest = {&er.map, &d};
    er.rc = pf_elf_parse(buf, size, pf_memmap_dest_sink, &dest, &d);
    if (er.rc == 0)
        er.rc = pf_memmap_finish(&er.map, &d);
    memcpy(er.diag, d.text, sizeof er.diag);
    if (er.rc)
        CHECK(er.diag[0] != '\0');
    return er.rc;
}

static int run(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const uint8_t text_blob[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t data_blob[8] = {0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF, 0x11, 0x22};

/* cc + ld: .text/.rodata in flash at 0x08000000, .data in RAM at
 * 0x20000000 but loaded from flash right after .text, .bss not in the file. */
static void test_toolchain_elf(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "cd %s && printf '%%s\\n' "
             "'const unsigned char text_blob[16] = {1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16};' "
             "'unsigned char data_blob[8] = {0xAA,0xBB,0xCC,0xDD,0xEE,0xFF,0x11,0x22};' "
             "'unsigned char bss_blob[64];' > fw.c && "
             "printf '%%s\\n' 'MEMORY { FLASH (rx) : ORIGIN = 0x08000000, LENGTH = 64K' "
             "'RAM (rwx) : ORIGIN = 0x20000000, LENGTH = 16K }' "
             "'SECTIONS { .text : { *(.text*) *(.rodata*) } > FLASH' "
             "'.data : { *(.data*) } > RAM AT > FLASH' "
             "'.bss : { *(.bss*) *(COMMON) } > RAM' "
             "'/DISCARD/ : { *(.comment) *(.note*) *(.eh_frame*) } }' > fw.ld && "
             "timeout 60 cc -O1 -fno-pic -c fw.c -o fw64.o && timeout 60 ld -T fw.ld -o fw64.elf fw64.o && "
             "timeout 60 cc -m32 -O1 -fno-pic -c fw.c -o fw32.o && timeout 60 ld -m elf_i386 -T fw.ld -o fw32.elf fw32.o",
             tmpdir);
    REQUIRE(run(cmd) == 0);
    static const char *names[] = {"fw64.elf", "fw32.elf"};
    for (int i = 0; i < 2; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s", tmpdir, names[i]);
        size_t size;
        uint8_t *buf = read_file(path, &size);
        REQUIRE(buf);
        CHECK_EQ(buf[EI_CLASS], i == 0 ? ELFCLASS64 : ELFCLASS32);
        CHECK_EQ(pf_image_detect(buf, size, NULL), PF_IMAGE_ELF);
        CHECK_EQ(parse(buf, size), 0);
        /* .text then .data's load image: one contiguous run in flash. */
        CHECK_EQ(er.map.count, 1);
        CHECK_EQ(pf_memmap_bytes(&er.map), 24);
        CHECK(t_map_has(&er.map, 0x08000000, text_blob, 16));
        CHECK(t_map_has(&er.map, 0x08000010, data_blob, 8));
        uint8_t ram[8];
        CHECK_EQ(pf_memmap_read(&er.map, 0x20000000, ram, 8, 0), 0); /* nothing at the RAM address */

        /* Truncated inside the .data segment: named by index and offset. */
        CHECK_EQ(parse(buf, size > 0x2004 ? 0x2004 : size - 1), PF_ERR_FORMAT);
        CHECK_STR_CONTAINS(er.diag, "ELF: segment ");
        CHECK_STR_CONTAINS(er.diag, "runs past end of file (8196 bytes)");
        free(buf);
    }
    /* An object file (.o) is a common mistake. */
    snprintf(cmd, sizeof cmd, "%s/fw64.o", tmpdir);
    size_t size;
    uint8_t *obj = read_file(cmd, &size);
    REQUIRE(obj);
    CHECK_EQ(parse(obj, size), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(er.diag, "ELF: file type 1 is a relocatable object file (.o)");
    free(obj);
}

static void test_libelf_classes_and_byte_orders(void)
{
    uint8_t big[300];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7 + 1);
    for (int cls = ELFCLASS32; cls <= ELFCLASS64; cls++) {
        for (int endian = ELFDATA2LSB; endian <= ELFDATA2MSB; endian++) {
            t_ph ph[4] = {
                {PT_LOAD, 0x200, 0x00000000, 0x00010000, 300, 300},
                {PT_NOTE, 0x400, 0, 0x00050000, 8, 8},         /* not loadable: ignored */
                {PT_LOAD, 0x400, 0x20000000, 0x00011000, 8, 16}, /* paddr != vaddr */
                {PT_LOAD, 0x200, 0x20000100, 0x00090000, 0, 64}, /* .bss-like: no file bytes */
            };
            t_blob bl[2] = {{0x200, big, 300}, {0x400, data_blob, 8}};
            size_t size;
            uint8_t *buf = make_elf(cls, endian, ET_EXEC, ph, 4, bl, 2, &size);
            REQUIRE(buf);
            CHECK_EQ(buf[EI_DATA], endian);
            CHECK_EQ(parse(buf, size), 0);
            CHECK_EQ(er.map.count, 2);
            CHECK(t_map_has(&er.map, 0x10000, big, 300));
            CHECK(t_map_has(&er.map, 0x11000, data_blob, 8));

            /* The reader only reads: a read-only mapping must do. */
            char path[128];
            snprintf(path, sizeof path, "%s/ro.elf", tmpdir);
            FILE *f = fopen(path, "wb");
            REQUIRE(f);
            fwrite(buf, 1, size, f);
            fclose(f);
            int fd = open(path, O_RDONLY);
            void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
            REQUIRE(m != MAP_FAILED);
            CHECK_EQ(parse(m, size), 0);
            CHECK(t_map_has(&er.map, 0x11000, data_blob, 8));
            munmap(m, size);
            close(fd);
            free(buf);
        }
    }
}

/* One broken ELF: builds it, expects PF_ERR_FORMAT and the fragments. */
static void expect_bad(int cls, const t_ph *ph, size_t nph, const char *frag1, const char *frag2)
{
    uint8_t blob[64];
    memset(blob, 0x5A, sizeof blob);
    t_blob bl[1] = {{0x100, blob, sizeof blob}};
    size_t size;
    uint8_t *buf = make_elf(cls, ELFDATA2LSB, ET_EXEC, ph, nph, bl, 1, &size);
    REQUIRE(buf);
    CHECK_EQ(parse(buf, size), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(er.diag, frag1);
    if (frag2)
        CHECK_STR_CONTAINS(er.diag, frag2);
    free(buf);
}

static void test_corrupt(void)
{
    /* The file is 0x140 bytes of data plus section headers after it. */
    t_ph past[2] = {{PT_LOAD, 0x100, 0x1000, 0x1000, 64, 64}, {PT_LOAD, 0x1234, 0x2000, 0x2000, 0x10000, 0x10000}};
    expect_bad(ELFCLASS32, past, 2, "ELF: segment 1 at offset 0x1234 (65536 bytes) runs past end of file", NULL);
    t_ph huge_off[1] = {{PT_LOAD, 0xFFFFFFFFFFFFFF00ull, 0, 0, 0x200, 0x200}};
    expect_bad(ELFCLASS64, huge_off, 1, "ELF: segment 0 at offset 0xffffffffffffff00", "runs past end of file");
    t_ph wrap[1] = {{PT_LOAD, 0x100, 0, 0xFFFFFFF0ull, 64, 64}};
    expect_bad(ELFCLASS32, wrap, 1, "ELF: segment 0 at address 0xfffffff0 (64 bytes) lies beyond the 4 GiB", NULL);
    t_ph high[1] = {{PT_LOAD, 0x100, 0, 0x100000000ull, 64, 64}};
    expect_bad(ELFCLASS64, high, 1, "ELF: segment 0 at address 0x100000000", "beyond the 4 GiB address space");
    t_ph fm[1] = {{PT_LOAD, 0x100, 0, 0x1000, 64, 32}};
    expect_bad(ELFCLASS32, fm, 1, "ELF: segment 0 has 64 file bytes but only 32 in memory", NULL);
    t_ph empty[2] = {{PT_LOAD, 0x100, 0, 0x1000, 0, 64}, {PT_NOTE, 0x100, 0, 0, 64, 64}};
    expect_bad(ELFCLASS64, empty, 2, "ELF: no PT_LOAD segment has file bytes", NULL);
    expect_bad(ELFCLASS32, NULL, 0, "ELF: no program headers", NULL);

    /* Byte-level damage to a good file. */
    t_ph ok[1] = {{PT_LOAD, 0x100, 0x1000, 0x1000, 64, 64}};
    uint8_t blob[64];
    memset(blob, 0x33, sizeof blob);
    t_blob bl[1] = {{0x100, blob, sizeof blob}};
    size_t size;
    uint8_t *buf = make_elf(ELFCLASS32, ELFDATA2LSB, ET_EXEC, ok, 1, bl, 1, &size);
    REQUIRE(buf);
    CHECK_EQ(parse(buf, size), 0);
    CHECK(t_map_has(&er.map, 0x1000, blob, 64));
    /* truncated in the header, in the program header table, in the data */
    CHECK_EQ(parse(buf, 3), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(er.diag, "not an ELF file");
    CHECK_EQ(parse(buf, 10), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(er.diag, "file of 10 bytes is shorter than the ELF header");
    CHECK_EQ(parse(buf, 40), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(er.diag, "file of 40 bytes is shorter than the 52-byte ELF header");
    CHECK_EQ(parse(buf, 60), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(er.diag, "ELF: program header table at offset 0x34 (1 entries of 32 bytes) runs past end of file (60 bytes)");
    CHECK_EQ(parse(buf, 0x120), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(er.diag, "ELF: segment 0 at offset 0x100 (64 bytes) runs past end of file (288 bytes)");
    uint8_t *bad = malloc(size);
    memcpy(bad, buf, size);
    bad[EI_CLASS] = 3;
    CHECK_EQ(parse(bad, size), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(er.diag, "ELF: offset 0x4: unknown class 3");
    memcpy(bad, buf, size);
    bad[EI_DATA] = 0;
    CHECK_EQ(parse(bad, size), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(er.diag, "ELF: offset 0x5: unknown byte order 0");
    memcpy(bad, buf, size);
    bad[0] = 0x7E;
    CHECK_EQ(parse(bad, size), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(er.diag, "not an ELF file");
    memcpy(bad, buf, size);
    bad[0x2A] = 0x40; /* e_phentsize (little-endian u16 at 0x2A) of 64: the table now ends past the file? */
    bad[0x2B] = 0x00;
    int rc = parse(bad, 0x60);
    CHECK_EQ(rc, PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(er.diag, "ELF: ");
    free(bad);

    /* Sink failure: named by segment. */
    pf_segment segs[1];
    uint8_t arena[16];
    pf_memmap map;
    pf_diag d = {0};
    pf_memmap_init(&map, segs, 1, arena, sizeof arena);
    pf_memmap_dest dest = {&map, &d};
    CHECK_EQ(pf_elf_parse(buf, size, pf_memmap_dest_sink, &dest, &d), PF_ERR_NOMEM);
    CHECK_STR_CONTAINS(d.text, "ELF: segment 0: image larger than the 16-byte buffer");
    free(buf);

    /* Overlapping segments: the map reports them. */
    t_ph ov[2] = {{PT_LOAD, 0x100, 0, 0x1000, 64, 64}, {PT_LOAD, 0x100, 0, 0x1020, 64, 64}};
    buf = make_elf(ELFCLASS64, ELFDATA2LSB, ET_EXEC, ov, 2, bl, 1, &size);
    REQUIRE(buf);
    CHECK_EQ(parse(buf, size), PF_ERR_OVERLAP);
    CHECK_STR_CONTAINS(er.diag, "overlaps");
    free(buf);
}

int main(void)
{
    if (elf_version(EV_CURRENT) == EV_NONE)
        return 1;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pf-elf-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_toolchain_elf);
    RUN(test_libelf_classes_and_byte_orders);
    RUN(test_corrupt);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "%s", getenv("KEEP") ? "true" : "rm -rf");
    snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), " %s", tmpdir);
    run(cmd);
    return pf_test_summary();
}
