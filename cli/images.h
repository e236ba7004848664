/* Loading the IMAGE[@ADDR] arguments of flash/verify into one memory map. */
#ifndef PEERFLASH_CLI_IMAGES_H
#define PEERFLASH_CLI_IMAGES_H

#include "peerflash/peerflash.h"

typedef struct pf_cli_images {
    pf_memmap map;
    uint32_t lo, hi; /* bounds of the data */
    void *_storage;
} pf_cli_images;

/* Parses every spec; on failure diag names the file and the cause. */
int pf_cli_images_load(pf_cli_images *im, int n, char **specs, pf_diag *diag);
void pf_cli_images_free(pf_cli_images *im);

#endif
