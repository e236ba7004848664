/* libFuzzer target: ELF reader through libelf. Invariants: no crash or
 * out-of-bounds read (ASan), every record points inside the input and lies
 * in the 32-bit space, the result is PF_OK or PF_ERR_FORMAT with a message
 * that starts with "ELF: ", and the same input gives the same answer twice
 * (libelf keeps no state between calls that changes the result). */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_rec a = {14695981039346656037ull, 0, 0, data, data + size};
    fz_rec b = a;
    pf_diag da = {0}, db = {0};
    int rc = pf_elf_parse(data, size, fz_sink, &a, &da);
    FUZZ_ASSERT(rc == 0 || rc == PF_ERR_FORMAT);
    if (rc) {
        FUZZ_ASSERT(!strncmp(da.text, "ELF: ", 5));
    } else {
        /* No bound on the total: two PT_LOAD headers may map the same file
         * bytes to two addresses (legal ELF; each record is checked to lie
         * inside the input by fz_sink). */
        FUZZ_ASSERT(a.records > 0);
    }
    int rc2 = pf_elf_parse(data, size, fz_sink, &b, &db);
    FUZZ_ASSERT(rc2 == rc && a.digest == b.digest && !strcmp(da.text, db.text));
    return 0;
}
