/* What a board port gives the updater firmware (firmware/updater/updater.c):
 * the link to the target, the image storage, a console for progress, the
 * job, and a way to end. firmware/boards/template/board.c shows each piece to fill in;
 * firmware/boards/mps2-an385/board.c is the QEMU board. */
#ifndef PF_FIRMWARE_BOARD_H
#define PF_FIRMWARE_BOARD_H

#include <stddef.h>

#include "peerflash/pf_port.h"
#include "pf_storage.h"

typedef struct pf_board {
    const char *name;          /* "mps2-an385" */
    const pf_port *link;       /* UART to the target, with deadlines on the board clock */
    const pf_storage *storage; /* where images come from (SD card, semihosting) */
    /* Prints one line of progress or result (no newline in `line`). */
    void (*console)(const char *line);
    /* Fills buf with the job, the same words as the CLI:
     * "flash --target avr --image /sd/app.hex [--baud 115200]". Returns its
     * length or a negative pf_err. QEMU: the -append text; a real board
     * might read job.txt from the card. */
    int (*job)(char *buf, size_t size);
    /* Optional (may be NULL): a second clock in ms to check the link's clock
     * against, used by the link-test self-test (QEMU: the host's clock
     * through semihosting). */
    uint32_t (*reference_ms)(void);
} pf_board;

/* Brings up clocks, the link and the storage and fills *b. */
int pf_board_init(pf_board *b);
/* Ends the run with the updater's exit status (QEMU: the process exit status;
 * a real board: halt with a status LED, or reset into the application). */
__attribute__((noreturn)) void pf_board_exit(int status);

/* The updater: runs the job and returns its exit status (0 only when the
 * image was written and verified; the CLI's codes otherwise, see updater.c). */
int pf_updater_run(const pf_board *b);

#endif
