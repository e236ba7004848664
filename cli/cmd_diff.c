/* `peerflash diff OLD NEW PATCH`: the delta patch from one image file to
 * another (docs/DELTA.md), as the agent would receive it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_delta.h"
#include "cli.h"
#include "peerflash/pf_delta.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: peerflash diff OLD NEW PATCH\n\n"
               "Writes the patch that turns the file OLD into NEW (docs/DELTA.md): what\n"
               "`peerflash flash --target agent --delta-from OLD NEW@0` sends. With --check, reads\n"
               "PATCH back, applies it to OLD and compares the result with NEW.\n");
}

int pf_cmd_diff(int argc, char **argv)
{
    int check = 0, a = 1;
    for (; a < argc && argv[a][0] == '-' && argv[a][1]; a++) {
        if (!strcmp(argv[a], "--help") || !strcmp(argv[a], "-h")) {
            usage(stdout);
            return PF_EXIT_OK;
        }
        if (!strcmp(argv[a], "--check")) {
            check = 1;
            continue;
        }
        pf_cli_error("diff: unknown option '%s'", argv[a]);
        usage(stderr);
        return PF_EXIT_USAGE;
    }
    if (argc - a != 3) {
        pf_cli_error("diff takes OLD NEW PATCH");
        usage(stderr);
        return PF_EXIT_USAGE;
    }
    const char *old_path = argv[a], *new_path = argv[a + 1], *patch_path = argv[a + 2];
    uint8_t *old = NULL, *neu = NULL, *file = NULL, *res = NULL;
    size_t old_len = 0, new_len = 0, flen = 0;
    pf_diag d = {0};
    pf_delta patch = {0}, back = {0};
    int rc = PF_EXIT_OK, r;
    if (pf_cli_read_file(old_path, &old, &old_len) < 0 || pf_cli_read_file(new_path, &neu, &new_len) < 0) {
        pf_cli_error("diff: cannot read %s: %s", old ? new_path : old_path, strerror(errno));
        rc = PF_EXIT_IMAGE;
        goto out;
    }
    if (old_len > PF_DELTA_MAX_SIZE || new_len > PF_DELTA_MAX_SIZE) {
        pf_cli_error("diff: files over %lu MiB are not supported", (unsigned long)(PF_DELTA_MAX_SIZE >> 20));
        rc = PF_EXIT_IMAGE;
        goto out;
    }
    if ((r = pf_delta_make(old, (uint32_t)old_len, neu, (uint32_t)new_len, &patch, &d)) < 0 ||
        (r = pf_delta_encode_file(&patch, &file, &flen, &d)) < 0) {
        pf_cli_error("diff: %s", d.text);
        rc = pf_exit_status(r);
        goto out;
    }
    FILE *f = fopen(patch_path, "wb");
    if (!f || fwrite(file, 1, flen, f) != flen || fclose(f) != 0) {
        pf_cli_error("diff: cannot write %s: %s", patch_path, strerror(errno));
        rc = PF_EXIT_FAIL;
        goto out;
    }
    printf("%s: %zu bytes (body %lu bytes, %lu records) turn %s (%zu bytes) into %s (%zu bytes): %.1f%%\n",
           patch_path, flen, (unsigned long)patch.body_len, (unsigned long)patch.hdr.records, old_path, old_len,
           new_path, new_len, new_len ? 100.0 * (double)flen / (double)new_len : 0.0);
    if (check) {
        if ((r = pf_delta_decode_file(file, flen, &back, &d)) < 0 ||
            (r = pf_delta_apply(&back, old, (uint32_t)old_len, &res, &d)) < 0) {
            pf_cli_error("diff --check: %s", d.text);
            rc = pf_exit_status(r);
            goto out;
        }
        if (back.hdr.new_size != new_len || memcmp(res, neu, new_len)) {
            pf_cli_error("diff --check: the patched OLD differs from NEW");
            rc = PF_EXIT_VERIFY;
            goto out;
        }
        printf("checked: applying it to %s gives %s byte for byte\n", old_path, new_path);
    }
out:
    free(old);
    free(neu);
    free(file);
    free(res);
    pf_delta_free(&patch);
    pf_delta_free(&back);
    return rc;
}
