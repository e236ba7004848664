/* `peerflash keygen` and `peerflash sign`: ECDSA-P256 keys and MCUboot-layout
 * images for the agent (pf_sign.h, mbedTLS). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "peerflash/pf_manifest.h"
#include "peerflash/pf_mcuboot.h"
#include "peerflash/pf_sign.h"

static int read_all(const char *path, uint8_t **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t cap = 65536, n = 0;
    uint8_t *buf = malloc(cap + 1);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        if (k == 0)
            break;
        n += k;
    }
    fclose(f);
    buf[n] = 0;
    *data = buf;
    *len = n;
    return 0;
}

static int parse_version(const char *s, pf_mcuboot_version *v)
{
    unsigned maj = 0, min = 0, rev = 0;
    unsigned long build = 0;
    char tail = 0;
    int n = sscanf(s, "%u.%u.%u+%lu%c", &maj, &min, &rev, &build, &tail);
    if (n < 1 || n > 4 || maj > 255 || min > 255 || rev > 65535 || build > 0xFFFFFFFFul)
        return -1;
    v->major = (uint8_t)maj;
    v->minor = (uint8_t)min;
    v->revision = (uint16_t)rev;
    v->build = (uint32_t)build;
    return 0;
}

static int keygen(int argc, char **argv)
{
    const char *out = NULL, *pub_out = NULL;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-o") || !strcmp(argv[i], "--out")) && i + 1 < argc)
            out = argv[++i];
        else if (!strcmp(argv[i], "--pub") && i + 1 < argc)
            pub_out = argv[++i];
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: peerflash keygen -o KEY.pem [--pub PUB.der]\n"
                   "  new ECDSA-P256 private key (PEM); --pub also writes the public key as DER\n"
                   "  SubjectPublicKeyInfo (what a bootloader embeds)\n");
            return PF_EXIT_OK;
        } else {
            pf_cli_error("keygen: unexpected '%s' (see peerflash keygen --help)", argv[i]);
            return PF_EXIT_USAGE;
        }
    }
    if (!out) {
        pf_cli_error("keygen: -o KEY.pem is required");
        return PF_EXIT_USAGE;
    }
    char pem[1024];
    pf_diag d;
    pf_diag_clear(&d);
    if (pf_sign_keygen(pem, sizeof pem, &d) < 0) {
        pf_cli_error("keygen: %s", d.text);
        return PF_EXIT_FAIL;
    }
    /* A private key: readable by its owner only, and never written over an
     * existing file (a key that signed deployed images cannot be recreated). */
    int fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            pf_cli_error("keygen: %s exists already; refusing to overwrite a key (remove it first if you mean to)",
                         out);
        else
            pf_cli_error("keygen: cannot create %s: %s", out, strerror(errno));
        return PF_EXIT_FAIL;
    }
    size_t pem_len = strlen(pem);
    if (fchmod(fd, 0600) < 0 || write(fd, pem, pem_len) != (ssize_t)pem_len || close(fd) < 0) {
        pf_cli_error("keygen: cannot write %s: %s", out, strerror(errno));
        unlink(out);
        return PF_EXIT_FAIL;
    }
    if (pub_out) {
        uint8_t der[128];
        int n = pf_sign_pubkey_der(pem, der, sizeof der, &d);
        FILE *g = n > 0 ? fopen(pub_out, "wb") : NULL;
        if (!g || fwrite(der, 1, (size_t)n, g) != (size_t)n) {
            pf_cli_error("keygen: cannot write %s", pub_out);
            if (g)
                fclose(g);
            return PF_EXIT_FAIL;
        }
        fclose(g);
    }
    fprintf(stderr, "peerflash: wrote ECDSA-P256 key %s\n", out);
    return PF_EXIT_OK;
}

/* Images listed by a relative URL that exist next to the manifest are
 * checked against their size and SHA-256 before the manifest is signed:
 * a wrong hash found now is a fleet that refuses its update later. */
static int check_local_images(const char *manifest_path, const pf_manifest *m)
{
    int bad = 0;
    for (unsigned i = 0; i < m->n_images; i++) {
        const pf_manifest_image *im = &m->images[i];
        char path[2048];
        if (strstr(im->url, "://") || pf_manifest_resolve_url(manifest_path, im->url, path, sizeof path) < 0)
            continue;
        uint8_t *data;
        size_t len;
        if (read_all(path, &data, &len) < 0) {
            fprintf(stderr, "peerflash: sign: %s not found here: its size and sha256 are not checked\n", path);
            continue;
        }
        uint8_t h[32];
        pf_digest dg;
        pf_digest_begin(&dg, PF_DIGEST_SHA256);
        pf_digest_update(&dg, data, len);
        pf_digest_finish(&dg, h);
        free(data);
        if (len != im->size) {
            pf_cli_error("sign: image %u (%s) is %zu bytes, the manifest says %lu", i, path, len,
                         (unsigned long)im->size);
            bad = 1;
        } else if (memcmp(h, im->sha256, 32)) {
            pf_cli_error("sign: image %u (%s): its SHA-256 differs from the manifest's sha256", i, path);
            bad = 1;
        }
    }
    return bad ? -1 : 0;
}

static int sign_manifest(const char *in, const char *key, const char *out)
{
    if (!key) {
        pf_cli_error("sign --manifest: --key KEY.pem is required (a manifest is always signed)");
        return PF_EXIT_USAGE;
    }
    uint8_t *text = NULL, *pem = NULL;
    size_t len, pem_len;
    if (read_all(in, &text, &len) < 0) {
        pf_cli_error("sign: cannot read %s: %s", in, strerror(errno));
        return PF_EXIT_IMAGE;
    }
    if (read_all(key, &pem, &pem_len) < 0) {
        pf_cli_error("sign: cannot read key %s: %s", key, strerror(errno));
        free(text);
        return PF_EXIT_USAGE;
    }
    pf_diag d;
    pf_diag_clear(&d);
    pf_manifest m;
    int rc = PF_EXIT_OK;
    char *env = NULL;
    size_t env_len = 0;
    if (pf_manifest_parse_payload((const char *)text, len, &m, &d) < 0) {
        pf_cli_error("sign: %s: %s", in, d.text);
        rc = PF_EXIT_IMAGE;
    } else {
        if (check_local_images(in, &m) < 0)
            rc = PF_EXIT_IMAGE;
        else if (pf_manifest_sign((const char *)text, len, (const char *)pem, &env, &env_len, &d) < 0) {
            pf_cli_error("sign: %s", d.text);
            rc = PF_EXIT_FAIL;
        }
        if (rc == PF_EXIT_OK) {
            FILE *f = fopen(out, "wb");
            if (!f || fwrite(env, 1, env_len, f) != env_len || fclose(f) != 0) {
                pf_cli_error("sign: cannot write %s", out);
                rc = PF_EXIT_FAIL;
            } else
                fprintf(stderr, "peerflash: %s: manifest with %u image%s, signed ECDSA-P256\n", out, m.n_images,
                        m.n_images == 1 ? "" : "s");
        }
        pf_manifest_free(&m);
    }
    free(env);
    free(text);
    free(pem);
    return rc;
}

static int sign(int argc, char **argv)
{
    int manifest = 0;
    pf_sign_params p = PF_SIGN_PARAMS_DEFAULT();
    const char *key = NULL, *in = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: peerflash sign [--key KEY.pem] --version MAJ.MIN.REV[+BUILD] [--header-size N]\n"
                   "                      [--load-addr ADDR] IN.bin OUT.img\n"
                   "       peerflash sign --manifest --key KEY.pem MANIFEST.json SIGNED.json\n"
                   "  MCUboot-layout image: 32-byte header (magic 0x96f3b83d), the binary, TLVs with\n"
                   "  SHA-256 and, with --key, the key hash and an ECDSA-P256 signature\n"
                   "  --manifest: check an update manifest (docs/MANIFEST.md) and wrap it with an\n"
                   "  ECDSA-P256 signature for `peerflash update`; images it lists by a relative URL\n"
                   "  that exist next to it are checked against their size and sha256 first\n");
            return PF_EXIT_OK;
        }
        if (!strcmp(a, "--manifest")) {
            manifest = 1;
            continue;
        }
        if (a[0] == '-' && a[1] && i + 1 >= argc) {
            pf_cli_error("sign: %s needs a value", a);
            return PF_EXIT_USAGE;
        }
        if (!strcmp(a, "--key"))
            key = argv[++i];
        else if (!strcmp(a, "--version")) {
            if (parse_version(argv[++i], &p.version) < 0) {
                pf_cli_error("sign: bad version '%s' (want MAJ.MIN.REV[+BUILD])", argv[i]);
                return PF_EXIT_USAGE;
            }
        } else if (!strcmp(a, "--header-size"))
            p.hdr_size = (uint16_t)strtoul(argv[++i], NULL, 0);
        else if (!strcmp(a, "--load-addr"))
            p.load_addr = (uint32_t)strtoul(argv[++i], NULL, 0);
        else if (a[0] == '-' && a[1]) {
            pf_cli_error("sign: unknown option %s", a);
            return PF_EXIT_USAGE;
        } else if (!in)
            in = a;
        else if (!out)
            out = a;
        else {
            pf_cli_error("sign: too many arguments");
            return PF_EXIT_USAGE;
        }
    }
    if (!in || !out) {
        pf_cli_error(manifest ? "sign: need MANIFEST.json and SIGNED.json (see peerflash sign --help)"
                              : "sign: need IN.bin and OUT.img (see peerflash sign --help)");
        return PF_EXIT_USAGE;
    }
    if (manifest)
        return sign_manifest(in, key, out);
    uint8_t *body, *pem = NULL;
    size_t len, pem_len;
    if (read_all(in, &body, &len) < 0) {
        pf_cli_error("sign: cannot read %s", in);
        return PF_EXIT_IMAGE;
    }
    pf_mcuboot_info signed_already;
    if (len >= PF_MCUBOOT_HEADER_SIZE && pf_mcuboot_parse_header(body, &signed_already, NULL) == PF_OK) {
        pf_cli_error("sign: %s is already an MCUboot image (magic 0x96f3b83d, version %u.%u.%u+%lu): sign the "
                     "plain binary instead",
                     in, signed_already.version.major, signed_already.version.minor, signed_already.version.revision,
                     (unsigned long)signed_already.version.build);
        free(body);
        return PF_EXIT_IMAGE;
    }
    if (key) {
        if (read_all(key, &pem, &pem_len) < 0) {
            pf_cli_error("sign: cannot read key %s", key);
            free(body);
            return PF_EXIT_USAGE;
        }
        p.key_pem = (const char *)pem;
    }
    size_t cap = pf_sign_image_size_max(&p, len);
    uint8_t *img = malloc(cap);
    pf_diag d;
    pf_diag_clear(&d);
    int n = pf_sign_image(&p, body, len, img, cap, &d);
    int rc = PF_EXIT_OK;
    if (n < 0) {
        pf_cli_error("sign: %s", d.text);
        rc = PF_EXIT_FAIL;
    } else {
        FILE *f = fopen(out, "wb");
        if (!f || fwrite(img, 1, (size_t)n, f) != (size_t)n) {
            pf_cli_error("sign: cannot write %s", out);
            rc = PF_EXIT_FAIL;
        }
        if (f)
            fclose(f);
        if (rc == PF_EXIT_OK)
            fprintf(stderr, "peerflash: %s: %d bytes, version %u.%u.%u+%lu, %s\n", out, n, p.version.major,
                    p.version.minor, p.version.revision, (unsigned long)p.version.build,
                    key ? "signed ECDSA-P256" : "unsigned (SHA-256 only)");
    }
    free(img);
    free(body);
    free(pem);
    return rc;
}

int pf_cmd_sign(int argc, char **argv)
{
    if (!strcmp(argv[0], "keygen"))
        return keygen(argc, argv);
    return sign(argc, argv);
}
