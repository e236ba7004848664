/* libFuzzer target: the HEX text arduinoOTA uploads with its line breaks
 * removed (src/serve/arduino_hex.c), restored and then read by the Intel HEX
 * reader, as `peerflash serve --arduino-ota` does. Invariants: a copy only
 * for text of ':' and hex digits starting with ':'; the copy without its
 * line breaks is the input; every line starts with ':'; and the reader then
 * reads the same records, or fails with the same error, as it does on the
 * input's records given one per line by hand. */
#include "arduino_hex.h"
#include "fuzz_common.h"

static int fz_read(const uint8_t *text, size_t n, fz_rec *rec, pf_diag *diag)
{
    memset(rec, 0, sizeof *rec);
    rec->digest = 14695981039346656037ull;
    pf_ihex p;
    pf_ihex_init(&p, fz_sink, rec, diag);
    int rc = pf_ihex_feed(&p, text, n);
    return rc ? rc : pf_ihex_finish(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n = 0;
    uint8_t *lines = serve_arduino_hex_lines(data, size, &n);
    int hexlike = size > 0 && data[0] == ':';
    for (size_t i = 0; hexlike && i < size; i++)
        hexlike = data[i] == ':' || (data[i] >= '0' && data[i] <= '9') || (data[i] >= 'a' && data[i] <= 'f') ||
                  (data[i] >= 'A' && data[i] <= 'F');
    FUZZ_ASSERT(!lines == !hexlike);
    if (!lines)
        return 0;
    FUZZ_ASSERT(n > size && lines[n - 1] == '\n');
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (lines[i] == '\n') {
            FUZZ_ASSERT(i + 1 == n || lines[i + 1] == ':');
            continue;
        }
        FUZZ_ASSERT(k < size && lines[i] == data[k]);
        k++;
    }
    FUZZ_ASSERT(k == size);
    /* the same records split into lines independently of the function */
    uint8_t *byhand = malloc(3 * size + 2);
    FUZZ_ASSERT(byhand);
    size_t m = 0;
    for (size_t i = 0; i < size; i++) {
        if (data[i] == ':' && i)
            byhand[m++] = '\r', byhand[m++] = '\n';
        byhand[m++] = data[i];
    }
    byhand[m++] = '\r', byhand[m++] = '\n';
    static fz_rec a, b;
    pf_diag da = {0}, db = {0};
    int ra = fz_read(lines, n, &a, &da);
    int rb = fz_read(byhand, m, &b, &db);
    FUZZ_ASSERT(ra == 0 || ra == PF_ERR_FORMAT);
    FUZZ_ASSERT(ra == rb && a.digest == b.digest && a.records == b.records);
    free(byhand);
    free(lines);
    return 0;
}
