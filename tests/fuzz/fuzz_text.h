/* One libFuzzer target body for both line readers (Intel HEX, S-record):
 * the whole input in one feed and the same input in random slices must give
 * the same records, start address, error code and message; records stay in
 * the 32-bit space; every error is PF_ERR_FORMAT with a message that names
 * a line (or says the end record is missing); errors are sticky. */
#include "fuzz_common.h"

#define FZ_CAT_(a, b) a##b
#define FZ_CAT(a, b) FZ_CAT_(a, b)
#define FZ_INIT FZ_CAT(FZ_READER, _init)
#define FZ_FEED FZ_CAT(FZ_READER, _feed)
#define FZ_FINISH FZ_CAT(FZ_READER, _finish)

typedef struct fz_out {
    int rc;
    fz_rec rec;
    pf_diag diag;
    uint32_t start;
    int has_start;
} fz_out;

static void fz_run(const uint8_t *data, size_t size, int split, fz_out *o)
{
    memset(o, 0, sizeof *o);
    o->rec.digest = 14695981039346656037ull;
    FZ_TYPE p;
    FZ_INIT(&p, fz_sink, &o->rec, &o->diag);
    uint32_t rng = fz_seed(data, size);
    size_t pos = 0;
    int rc = 0;
    while (pos < size && rc == 0) {
        size_t k = split ? fz_next(&rng, size - pos) : size - pos;
        rc = FZ_FEED(&p, data + pos, k);
        pos += k;
    }
    if (rc == 0)
        rc = FZ_FINISH(&p);
    if (rc) {
        /* sticky */
        FUZZ_ASSERT(FZ_FEED(&p, (const uint8_t *)"\n", 1) == rc);
        FUZZ_ASSERT(FZ_FINISH(&p) == rc);
    }
    o->rc = rc;
    o->start = p.start_addr;
    o->has_start = p.has_start;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fz_out a, b;
    fz_run(data, size, 0, &a);
    fz_run(data, size, 1, &b);
    FUZZ_ASSERT(a.rc == 0 || a.rc == PF_ERR_FORMAT);
    FUZZ_ASSERT(a.rc == b.rc);
    FUZZ_ASSERT(!strcmp(a.diag.text, b.diag.text));
    FUZZ_ASSERT(a.rec.digest == b.rec.digest && a.rec.records == b.rec.records);
    FUZZ_ASSERT(a.has_start == b.has_start && a.start == b.start);
    if (a.rc) {
        FUZZ_ASSERT(a.diag.text[0] != '\0');
        FUZZ_ASSERT(strstr(a.diag.text, "line ") || strstr(a.diag.text, "missing end"));
    }
    /* Every data byte costs two hex digits. */
    FUZZ_ASSERT(a.rec.bytes * 2 <= size);
    return 0;
}
