/* Where the updater reads images from: one file at a time, read front to
 * back. Shaped so that the usual MCU file systems fit without glue code:
 *   FatFs on an SD card: open = f_open(FA_READ), read = f_read, size = f_size, close = f_close
 *   littlefs:            lfs_file_open(LFS_O_RDONLY), lfs_file_read, lfs_file_size, lfs_file_close
 *   QEMU semihosting:    SYS_OPEN, SYS_READ, SYS_FLEN, SYS_CLOSE (boards/mps2-an385/board.c)
 * The implementation keeps its open file (FIL, lfs_file_t, a handle) in ctx. */
#ifndef PF_FIRMWARE_STORAGE_H
#define PF_FIRMWARE_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#include "peerflash/pf_err.h"

typedef struct pf_storage {
    void *ctx;
    /* Opens path for reading. PF_ERR_IO with the cause in diag ("no such
     * file", "card not present") when it cannot. */
    int (*open)(void *ctx, const char *path, pf_diag *diag);
    /* Reads up to n bytes; returns the count (0 at the end) or a negative pf_err. */
    int (*read)(void *ctx, uint8_t *buf, size_t n);
    /* Size of the open file in bytes, or a negative pf_err. */
    long (*size)(void *ctx);
    void (*close)(void *ctx);
} pf_storage;

#endif
