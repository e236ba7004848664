/* An in-memory NOR flash target for unit tests of the flash job: it keeps
 * NOR rules (program only clears bits), counts operations, and can be told
 * to fail or corrupt. It is not a simulator of any real bootloader. */
#ifndef PEERFLASH_FAKE_TARGET_H
#define PEERFLASH_FAKE_TARGET_H

#include "peerflash/peerflash.h"

typedef struct fake_target {
    uint8_t flash[65536];
    pf_target_info info;
    int erase_calls, write_calls, digest_calls, read_calls, begin_calls;
    int known_erased_calls;              /* the job's hint, and its last range */
    uint32_t known_erased_addr, known_erased_len;
    uint32_t erased_bytes;
    int fail_write_at;      /* nonzero: the Nth write fails with PF_ERR_TARGET */
    uint32_t corrupt_addr;  /* nonzero: writes to this address store a wrong byte */
    int ran;
    uint32_t in_run_end;    /* write_begin/end bracket */
} fake_target;

extern const pf_target_ops fake_ops;
void fake_init(fake_target *f, pf_erase_style style, uint32_t erase_unit, int digest, int can_read);

#endif
