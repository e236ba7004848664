/* ELF reader (host only): PT_LOAD segments with file bytes, at p_paddr.
 *
 * libelf (elfutils) decodes the headers of either class and byte order
 * through gelf; the segment bytes themselves are taken straight from the
 * caller's buffer after their bounds are checked here, so nothing relies on
 * libelf for bounds. elf_memory() takes a non-const pointer, but in read
 * mode it only reads (byte-swapped headers are converted into copies that
 * libelf allocates); the tests run a big-endian file from a read-only
 * mapping to hold it to that. */
#include <gelf.h>
#include <libelf.h>
#include <string.h>

#include "peerflash/pf_image.h"

static int elf_fail(pf_diag *diag, const char *what)
{
    return pf_diag_set(diag, PF_ERR_FORMAT, "ELF: %s: %s", what, elf_errmsg(-1));
}

static const char *type_name(unsigned t)
{
    switch (t) {
    case ET_REL: return "a relocatable object file (.o), not a linked executable";
    case ET_CORE: return "a core dump";
    default: return "not an executable";
    }
}

int pf_elf_parse(const uint8_t *file, size_t size, pf_image_sink sink, void *user, pf_diag *diag)
{
    if ((!file && size) || !sink)
        return PF_ERR_ARG;
    if (size < SELFMAG || memcmp(file, ELFMAG, SELFMAG) != 0)
        return pf_diag_set(diag, PF_ERR_FORMAT, "ELF: not an ELF file (no \\177ELF magic at offset 0)");
    if (size < EI_NIDENT)
        return pf_diag_set(diag, PF_ERR_FORMAT, "ELF: file of %zu bytes is shorter than the ELF header", size);
    unsigned cls = file[EI_CLASS], data = file[EI_DATA];
    if (cls != ELFCLASS32 && cls != ELFCLASS64)
        return pf_diag_set(diag, PF_ERR_FORMAT, "ELF: offset 0x%x: unknown class %u (expected 1 for ELF32 or 2 for ELF64)",
                           (unsigned)EI_CLASS, cls);
    if (data != ELFDATA2LSB && data != ELFDATA2MSB)
        return pf_diag_set(diag, PF_ERR_FORMAT, "ELF: offset 0x%x: unknown byte order %u", (unsigned)EI_DATA, data);
    size_t ehsize = cls == ELFCLASS32 ? sizeof(Elf32_Ehdr) : sizeof(Elf64_Ehdr);
    if (size < ehsize)
        return pf_diag_set(diag, PF_ERR_FORMAT, "ELF: file of %zu bytes is shorter than the %zu-byte ELF header", size,
                           ehsize);

    if (elf_version(EV_CURRENT) == EV_NONE)
        return pf_diag_set(diag, PF_ERR_UNSUPPORTED, "ELF: libelf is out of date: %s", elf_errmsg(-1));
    Elf *elf = elf_memory((char *)(uintptr_t)file, size);
    if (!elf)
        return elf_fail(diag, "cannot read");
    int rc = PF_OK;
    GElf_Ehdr eh;
    size_t phnum = 0, loaded = 0;
    uint64_t tab_end;
    if (elf_kind(elf) != ELF_K_ELF) {
        rc = pf_diag_set(diag, PF_ERR_FORMAT, "ELF: not an ELF file");
        goto out;
    }
    if (!gelf_getehdr(elf, &eh)) {
        rc = elf_fail(diag, "bad ELF header");
        goto out;
    }
    /* Firmware is ET_EXEC (ET_DYN for position-independent builds); a .o
     * given by mistake is the common case of the rest. */
    if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN) {
        rc = pf_diag_set(diag, PF_ERR_FORMAT, "ELF: file type %u is %s", (unsigned)eh.e_type, type_name(eh.e_type));
        goto out;
    }
    /* e_phnum as written (PN_XNUM means the count is in section 0); libelf
     * would quietly clamp a table that runs off the end of the file. */
    phnum = eh.e_phnum;
    if (phnum == PN_XNUM && elf_getphdrnum(elf, &phnum) != 0) {
        rc = elf_fail(diag, "cannot count program headers");
        goto out;
    }
    if (phnum == 0) {
        rc = pf_diag_set(diag, PF_ERR_FORMAT, "ELF: no program headers, so nothing to load");
        goto out;
    }
    /* Bounds of the table itself, checked here for a message with offsets. */
    tab_end = (uint64_t)eh.e_phoff + (uint64_t)phnum * eh.e_phentsize;
    if (eh.e_phoff > size || tab_end > size) {
        rc = pf_diag_set(diag, PF_ERR_FORMAT,
                         "ELF: program header table at offset 0x%llx (%lu entries of %u bytes) runs past end of file "
                         "(%zu bytes)",
                         (unsigned long long)eh.e_phoff, (unsigned long)phnum, (unsigned)eh.e_phentsize, size);
        goto out;
    }
    size_t libelf_phnum = 0;
    if (elf_getphdrnum(elf, &libelf_phnum) != 0 || libelf_phnum != phnum) {
        rc = pf_diag_set(diag, PF_ERR_FORMAT, "ELF: program header table at offset 0x%llx unreadable: %s",
                         (unsigned long long)eh.e_phoff, elf_errmsg(-1));
        goto out;
    }
    for (size_t i = 0; i < phnum && rc == PF_OK; i++) {
        GElf_Phdr ph;
        if (!gelf_getphdr(elf, (int)i, &ph)) {
            rc = pf_diag_set(diag, PF_ERR_FORMAT, "ELF: program header %zu unreadable: %s", i, elf_errmsg(-1));
            break;
        }
        if (ph.p_type != PT_LOAD || ph.p_filesz == 0)
            continue;
        if (ph.p_offset > size || ph.p_filesz > size - ph.p_offset) {
            rc = pf_diag_set(diag, PF_ERR_FORMAT,
                             "ELF: segment %zu at offset 0x%llx (%llu bytes) runs past end of file (%zu bytes)", i,
                             (unsigned long long)ph.p_offset, (unsigned long long)ph.p_filesz, size);
            break;
        }
        if (ph.p_filesz > ph.p_memsz) {
            rc = pf_diag_set(diag, PF_ERR_FORMAT, "ELF: segment %zu has %llu file bytes but only %llu in memory", i,
                             (unsigned long long)ph.p_filesz, (unsigned long long)ph.p_memsz);
            break;
        }
        if (ph.p_paddr > 0xFFFFFFFFull || ph.p_filesz > 0x100000000ull - ph.p_paddr) {
            rc = pf_diag_set(diag, PF_ERR_FORMAT,
                             "ELF: segment %zu at address 0x%llx (%llu bytes) lies beyond the 4 GiB address space", i,
                             (unsigned long long)ph.p_paddr, (unsigned long long)ph.p_filesz);
            break;
        }
        if (diag)
            diag->text[0] = '\0';
        int src = sink(user, (uint32_t)ph.p_paddr, file + ph.p_offset, (size_t)ph.p_filesz);
        if (src < 0) {
            char where[40];
            pf_format(where, sizeof where, "ELF: segment %zu", i);
            if (diag && diag->text[0])
                pf_diag_prefix(diag, where);
            else
                pf_diag_set(diag, src, "%s: cannot store %llu bytes at 0x%08lx: %s", where,
                            (unsigned long long)ph.p_filesz, (unsigned long)ph.p_paddr, pf_strerror(src));
            rc = src;
            break;
        }
        loaded++;
    }
    if (rc == PF_OK && loaded == 0)
        rc = pf_diag_set(diag, PF_ERR_FORMAT, "ELF: no PT_LOAD segment has file bytes, so nothing to load");
out:
    elf_end(elf);
    return rc;
}
