/* peerflash update: the signed manifest, the image it names for the
 * connected chip, and what the target already runs (docs/MANIFEST.md).
 * The connection and the job are cmd_flash.c's, as for flash. */
#ifndef PEERFLASH_CLI_UPDATE_H
#define PEERFLASH_CLI_UPDATE_H

#include "peerflash/pf_http.h"
#include "peerflash/pf_image_file.h"
#include "peerflash/pf_manifest.h"

typedef struct pf_cli_update {
    const char *manifest_src; /* --manifest: URL or file */
    const char *key_path;     /* --key: PEM (private or public) or DER public key */
    const char *board;        /* --board, NULL = none */
    int allow_downgrade;      /* --allow-downgrade */
    int force;                /* --force: flash even when the target already runs the image */
    pf_manifest manifest;     /* after pf_cli_update_load */
} pf_cli_update;

/* Fetches the manifest and checks its signature with the key; PF_ERR_AUTH
 * (tampered, other key) or PF_ERR_FORMAT/PF_ERR_IO with the reason. */
int pf_cli_update_load(pf_cli_update *u, const pf_http_options *http, pf_diag *d);
/* Downloads the entry's image, checks its size and SHA-256 against the
 * manifest (PF_ERR_AUTH when they differ: nothing is written) and loads it
 * into set (finished). A raw binary or agent image without an "address"
 * goes to app_address (the driver's pf_target_ops.app_address). */
int pf_cli_update_fetch(const pf_cli_update *u, const pf_manifest_image *im, uint32_t app_address,
                        const pf_http_options *http, pf_image_set *set, pf_diag *d);
/* The version a target reports in its "image version: X" details line
 * (the agent does); 1 when found, 0 when the target cannot tell. */
int pf_cli_update_running_version(const char *details, pf_manifest_version *v);
void pf_cli_update_free(pf_cli_update *u);

#endif
