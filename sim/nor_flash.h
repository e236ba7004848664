/* Simulated NOR flash with the limits of silicon and power cuts.
 *
 * - erase sets a whole erase unit to the erase value; prog only programs
 *   bytes that are erased (a second program of a byte is refused, as MCUboot's
 *   simulator does, and so is any 0->1 bit change), offsets and lengths must be
 *   aligned to prog_size / read_size / erase_size;
 * - every prog and erase is counted (ops); pf_nor_cut_at(n) makes operation n
 *   fail: a program leaves a random prefix of its bytes written (and possibly
 *   one byte with only some of its bits), an erase leaves a random prefix of
 *   the unit erased; from then on every call fails with PF_ERR_IO until
 *   pf_nor_reboot() (power back on);
 * - memory-backed, or file-backed (mmap, so the content outlives the process:
 *   `peerflash sim agent --flash FILE`).
 * Host-only (allocates). */
#ifndef PEERFLASH_SIM_NOR_FLASH_H
#define PEERFLASH_SIM_NOR_FLASH_H

#include <stdint.h>

#include "peerflash/pf_flash.h"

typedef struct pf_nor {
    pf_flash flash;   /* the port table; flash.ctx points to this struct */
    uint8_t *mem;
    int fd;           /* backing file or -1 */
    uint64_t ops;     /* prog + erase operations attempted (including a cut one) */
    uint64_t progs, erases, reads;
    uint64_t cut_at;  /* 0 = never; else the operation number (1-based) that is cut */
    int powered;      /* 0 after a cut, until pf_nor_reboot */
    uint32_t rng;     /* seed of the partial-completion choices */
    int half;         /* 1 (default): a cut op half-completes; 0: it does nothing */
    char error[160];  /* explanation of the last refused operation */
} pf_nor;

/* Creates a flash of size bytes, erased. path NULL = memory only; else the
 * file is created (erased) if it does not exist or has another size, and
 * mapped; its content is kept otherwise. Returns 0 or a pf_err. */
int pf_nor_init(pf_nor *n, uint32_t size, uint32_t read_size, uint32_t prog_size, uint32_t erase_size,
                uint8_t erase_value, const char *path);
void pf_nor_free(pf_nor *n);
/* Cuts power at operation number op (counted from now: the op-th prog or
 * erase after this call); 0 cancels. seed chooses how far the cut op got. */
void pf_nor_cut_after(pf_nor *n, uint64_t op, uint32_t seed);
/* Power back on: operations work again (the content is what the cut left). */
void pf_nor_reboot(pf_nor *n);

#endif
