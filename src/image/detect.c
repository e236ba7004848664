/* Image format detection from content, with the file name as a tie-breaker.
 *
 * Order: the binary magics that cannot be mistaken (ELF, MCUboot), then the
 * text formats, then the weak ESP magic, and raw binary for everything else.
 * A text format is "strong" when the first record line looks complete and
 * well-formed, and "weak" when the head is printable text that merely starts
 * with the record marker; a weak guess loses to a .bin/.img name. Choosing
 * the text reader for a broken text file is deliberate: its error names the
 * line ("line 3: bad checksum ..."), where a raw-binary guess would only say
 * that a load address is missing. */
#include <stddef.h>

#include "peerflash/pf_bytes.h"
#include "peerflash/pf_image.h"
#include "text.h"

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static int ends_with(const char *name, const char *ext)
{
    if (!name)
        return 0;
    size_t n = 0, e = 0;
    while (name[n])
        n++;
    while (ext[e])
        e++;
    if (n < e)
        return 0;
    for (size_t i = 0; i < e; i++)
        if (lower((unsigned char)name[n - e + i]) != ext[i])
            return 0;
    return 1;
}

static int name_is_binary(const char *name) { return ends_with(name, ".bin") || ends_with(name, ".img"); }

/* 2: first record line well-formed, 1: printable text that starts with the
 * marker, 0: neither. */
static int text_kind(const uint8_t *h, size_t n, char marker, size_t min_digits)
{
    size_t i = 0;
    while (i < n && (h[i] == '\n' || pf_text_space((char)h[i])))
        i++;
    if (i == n || h[i] != (uint8_t)marker)
        return 0;
    int printable = 1;
    for (size_t k = 0; k < n; k++)
        if (!(h[k] >= 0x20 && h[k] < 0x7F) && h[k] != '\n' && !pf_text_space((char)h[k]))
            printable = 0;
    size_t j = i + 1;
    if (marker == 'S') {
        if (j >= n || h[j] < '0' || h[j] > '9')
            return 0; /* "Some text" is not an S-record */
        j++;
    }
    size_t digits = 0;
    while (j < n && pf_text_hexval((char)h[j]) >= 0) {
        digits++;
        j++;
    }
    /* The line must end here (or the head ends mid-line). */
    while (j < n && pf_text_space((char)h[j]))
        j++;
    int line_ok = j == n || h[j] == '\n';
    if (line_ok && digits >= min_digits && (digits % 2 == 0 || j == n))
        return 2;
    return printable ? 1 : 0;
}

/* An ESP app image header that makes sense: segment count, SPI flash mode
 * and size code in range, and an entry point in the 0x4xxxxxxx instruction
 * space every ESP chip uses. */
static int esp_plausible(const uint8_t *h, size_t n)
{
    if (n < 8 || h[0] != 0xE9)
        return 0;
    uint32_t entry = pf_get_le32(h + 4);
    return h[1] >= 1 && h[1] <= 16 && h[2] <= 5 && (h[3] >> 4) <= 9 && (entry >> 28) == 4;
}

pf_image_format pf_image_detect(const uint8_t *head, size_t n, const char *name)
{
    if (!head || n == 0)
        return PF_IMAGE_UNKNOWN;
    if (n >= 4 && head[0] == 0x7F && head[1] == 'E' && head[2] == 'L' && head[3] == 'F')
        return PF_IMAGE_ELF;
    if (n >= 4 && pf_get_le32(head) == 0x96f3b83du)
        return PF_IMAGE_MCUBOOT;
    /* Shortest records: ":00000001FF" (10 digits), "S9030000FC" (8 digits). */
    int hex = text_kind(head, n, ':', 10);
    int srec = text_kind(head, n, 'S', 8);
    if (hex == 2 || (hex == 1 && !name_is_binary(name)))
        return PF_IMAGE_IHEX;
    if (srec == 2 || (srec == 1 && !name_is_binary(name)))
        return PF_IMAGE_SREC;
    if (head[0] == 0xE9 && (name_is_binary(name) || esp_plausible(head, n)))
        return PF_IMAGE_ESP;
    return PF_IMAGE_BIN;
}

const char *pf_image_format_name(pf_image_format f)
{
    switch (f) {
    case PF_IMAGE_BIN: return "raw binary";
    case PF_IMAGE_IHEX: return "Intel HEX";
    case PF_IMAGE_SREC: return "Motorola S-record";
    case PF_IMAGE_ELF: return "ELF";
    case PF_IMAGE_ESP: return "ESP app image";
    case PF_IMAGE_MCUBOOT: return "MCUboot image";
    default: return "unknown";
    }
}
