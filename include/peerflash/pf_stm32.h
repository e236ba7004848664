/* The STM32 system-memory bootloader driver (ST AN3155, USART, 8E1).
 *
 * `--target stm32`: pf_target_stm32 implements pf_target_ops. The caller
 * provides ctx_size bytes of state and a pf_target_config; no allocation.
 *
 * Entry/exit sequences (pf_target_config.reset):
 *   NULL or "auto"  the common wiring: RTS drives BOOT0 (asserted = BOOT0 high),
 *                   DTR drives NRST (asserted = in reset). Same as
 *                   "rts,dtr,20,-dtr,50:-rts,dtr,20,-dtr".
 *   "none"          the chip is already in its bootloader: no line changes.
 *   "ENTRY[:EXIT]"  comma-separated steps run in order: "dtr"/"rts" assert the
 *                   line, "-dtr"/"-rts" release it, a number waits that many
 *                   milliseconds. ENTRY runs in connect(); EXIT runs in run()
 *                   after the Go command (so BOOT0 can be released and the
 *                   chip reset into its application).
 * On a link without modem lines (pty, TCP bridge) the steps and their waits
 * are skipped.
 *
 * Verification: where the ROM lists Get Checksum (0xA1) in its Get reply,
 * info.caps has PF_CAP_DIGEST with PF_DIGEST_CRC32_STM32 (one command per
 * range instead of reading it back); otherwise the job reads back.
 *
 * Protection: a read-protected (RDP) chip NACKs Read/Write/Erase/Go; the
 * driver reports it naming the fix. pf_stm32_readout_unprotect() removes RDP
 * and THE CHIP MASS-ERASES ITS WHOLE FLASH; pf_stm32_write_unprotect() removes
 * write protection (flash content stays). Both make the chip reset; the driver
 * re-synchronises afterwards. The CLI exposes them only behind explicit flags. */
#ifndef PEERFLASH_PF_STM32_H
#define PEERFLASH_PF_STM32_H

#include <stddef.h>
#include <stdint.h>

#include "pf_target.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One product (PID) in the device table (src/targets/stm32_chips.c). */
typedef struct pf_stm32_chip {
    const char *name;    /* "STM32F103xB": the largest part sharing this PID */
    const char *family;  /* "F1" */
    uint16_t pid;        /* Get ID answer */
    uint32_t flash_start;
    uint32_t flash_size;
    unsigned n_regions;  /* erase geometry: runs of equal pages/sectors */
    pf_erase_region regions[8];
    uint32_t ram_start;  /* for Go and Write Memory to RAM */
    uint32_t ram_size;
    /* What the simulated ROM offers (the driver reads it from Get instead). */
    uint8_t bl_version;  /* 0x22 = v2.2 */
    uint8_t erase_op;    /* PF_AN3155_ERASE (0x43) or PF_AN3155_EXT_ERASE (0x44) */
    uint8_t has_checksum;/* Get Checksum 0xA1 offered (assumed for newer ROMs, see the table) */
    uint8_t no_mass_erase; /* the ROM refuses mass erase: erase page by page */
} pf_stm32_chip;

extern const pf_stm32_chip pf_stm32_chips[];
extern const unsigned pf_stm32_n_chips;
/* Lookup by PID, or by name (case-insensitive; "STM32" prefix optional, a
 * prefix such as "F103" matches the first entry that starts with it). */
const pf_stm32_chip *pf_stm32_chip_by_pid(uint16_t pid);
const pf_stm32_chip *pf_stm32_chip_by_name(const char *name);
/* The i-th name --chip takes (ops->chip): each table entry, then the
 * smaller parts that share a PID with one (STM32F103x8 -> STM32F103xB). */
int pf_stm32_chip_name(unsigned i, pf_target_chip *out);
/* Erase unit index (page/sector number as the Erase command counts them)
 * of addr, and the unit's start and size; -1 if outside flash. */
int pf_stm32_unit_index(const pf_stm32_chip *chip, uint32_t addr, uint32_t *start, uint32_t *size);
/* Total erase units. */
unsigned pf_stm32_unit_count(const pf_stm32_chip *chip);

/* Counters for tests and benchmarks. */
typedef struct pf_stm32_stats {
    uint32_t commands;  /* commands sent */
    uint32_t replies;   /* reply bytes waited for (round trips) */
    uint32_t resyncs;
    uint32_t retries;
    uint32_t nacks;
} pf_stm32_stats;

/* The driver's state is opaque: pf_target_stm32.ctx_size bytes of the
 * caller's, zeroed (pf_session_state_size("stm32")); the functions below
 * take that storage as self. */
void pf_stm32_get_stats(const void *self, pf_stm32_stats *out);
/* The chip connect found (NULL before). */
const pf_stm32_chip *pf_stm32_connected_chip(const void *self);

extern const pf_target_ops pf_target_stm32;

/* Option bytes (src/targets/stm32_options.c): where the family keeps them
 * (1, or 0 when not known: F2/F4/F7/H7/L0/L1 are not decoded), the bytes an
 * unprotected chip holds (all pages write-protected when wrp; for the
 * simulator), and readout/write protection described from them. */
int pf_stm32_ob_where(const pf_stm32_chip *chip, uint32_t *addr, uint32_t *len);
void pf_stm32_ob_factory(const pf_stm32_chip *chip, int wrp, uint8_t *out);
void pf_stm32_ob_describe(const pf_stm32_chip *chip, const uint8_t *ob, char *rdp, size_t rn, char *wrp, size_t wn);
/* Reads the connected chip's option bytes into out (64 bytes room), *len
 * set. PF_ERR_PROTECTED: readout protection is active (the ROM NACKs Read
 * Memory); PF_ERR_UNSUPPORTED: the family's layout is not known, or the ROM
 * refuses the address. */
int pf_stm32_read_option_bytes(void *self, uint8_t *out, uint32_t *len);

/* Whether spec is a reset sequence the driver accepts ("auto", "none" or
 * ENTRY[:EXIT] steps, see above), checked without any I/O: 1 yes, 0 no. */
int pf_stm32_reset_valid(const char *spec);

/* Removes readout protection. THIS ERASES THE WHOLE FLASH (the chip does it
 * before lifting RDP). The chip resets; the driver re-synchronises. */
int pf_stm32_readout_unprotect(void *self);
/* Removes write protection of all sectors (flash content stays); the chip
 * resets and the driver re-synchronises. */
int pf_stm32_write_unprotect(void *self);
/* Sets readout protection (for tests); the chip resets. */
int pf_stm32_readout_protect(void *self);

#ifdef __cplusplus
}
#endif
#endif
