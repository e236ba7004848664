/* Host side of the agent protocol: options and statistics of the
 * `--target agent` driver (pf_target_agent, src/targets/agent.c).
 *
 * Deflate (docs/PROTOCOL.md, "Compression") is used by default when the
 * agent offers it: the image is sent as a zlib stream with the window the
 * agent announced (at most 2^15 in host builds, 2^12 in the MCU updater's).
 * To send it plain, call pf_agent_host_set_options with deflate = 0 between
 * open() and connect(). How the stream is made: the driver option
 * "compress" (`--compress fast|best|auto`, ops->set_option; host builds):
 * fast = zlib in line at the agent's window; best = zopfli on a second
 * thread in 32 KiB segments; auto (the default) = those segments by zopfli
 * only while the line has enough to send, else by zlib. zopfli's window is
 * 2^15: for an agent that offers less, best and auto send zlib in line at
 * its window and say so in the log. */
#ifndef PEERFLASH_PF_AGENT_HOST_H
#define PEERFLASH_PF_AGENT_HOST_H

#include <stdint.h>

#include "pf_mcuboot.h"
#include "pf_target.h"

#ifdef __cplusplus
extern "C" {
#endif

extern const pf_target_ops pf_target_agent;

typedef struct pf_agent_host_options {
    int deflate; /* 1 = compress when the agent offers it (default), 0 = never */
    int level;   /* zlib level 1..9 (default 9) */
    /* Before a byte is sent, write() checks the image's SHA-256 TLV and,
     * with a key here, that it is signed with it (as the device will):
     * DER SubjectPublicKeyInfo and a pf_sig_verify_fn (the host has
     * pf_ecdsa_p256_verify in pf_sign.h). NULL = hash only. */
    const uint8_t *pubkey;
    size_t pubkey_len;
    pf_sig_verify_fn sig_verify;
    void *sig_user;
} pf_agent_host_options;

#define PF_AGENT_HOST_OPTIONS_DEFAULT() \
    { .deflate = 1, .level = 9, .pubkey = NULL, .pubkey_len = 0, .sig_verify = NULL, .sig_user = NULL }

/* self: the driver state given to open(); call after open(). */
int pf_agent_host_set_options(void *self, const pf_agent_host_options *opt);

/* What the last write() sent. */
typedef struct pf_agent_host_stats {
    uint32_t image_bytes;   /* the image */
    uint32_t resumed_from;  /* image offset the last transfer started at */
    uint32_t stream_bytes;  /* bytes of that transfer's DATA stream (compressed or plain) */
    uint32_t data_sent;     /* DATA payload bytes sent, retransmissions included */
    uint8_t deflate_bits;   /* window bits of the zlib stream; 0 = sent plain */
    uint16_t zsegs_fast;    /* `--compress best|auto` (host builds): 32 KiB segments compressed by zlib */
    uint32_t retransmits;   /* go-backs */
    uint8_t delta;          /* 1: the transfer was a patch against the running image */
    uint16_t zsegs_best;    /* and by zopfli, on the compressor thread; 0, 0: one zlib stream in line
                             * (both in padding: the MCU updater's state does not grow) */
    uint32_t patch_bytes;   /* delta: bytes of the patch body sent (from the resume point) */
} pf_agent_host_stats;

void pf_agent_host_get_stats(const void *self, pf_agent_host_stats *st);

/* Delta updates (docs/PROTOCOL.md "Delta", docs/DELTA.md). When the agent
 * offers delta, write() asks the provider for a patch from the image the
 * device runs (running_hash: its SHA-256 TLV from HELLO, zeros if none) to
 * `image`. The provider fills *out and returns 1, returns 0 to send the
 * image whole, or an error. The body stays the provider's; it must remain
 * valid until write() returns. The driver itself never computes a diff (it
 * also runs on MCUs without malloc): the host links pf_delta.h for that. */
typedef struct pf_agent_delta_patch {
    const uint8_t *body;     /* the records (pf_patch.h) */
    uint32_t body_len;
    uint32_t base_size;      /* the base image file the patch was made against */
    uint8_t base_sha256[32]; /* its whole-file SHA-256 */
    int fallback;            /* 1: if the device runs another image, send the image whole
                              * (a guess from a cache); 0: fail (the user named the base) */
} pf_agent_delta_patch;
typedef pf_delta_provider_fn pf_agent_delta_fn; /* pf_target.h: the same hook for every driver (ops->set_delta) */
/* self: the driver state given to open(); call after open(). fn NULL = no delta. */
int pf_agent_host_set_delta(void *self, pf_agent_delta_fn fn, void *user);

#ifdef __cplusplus
}
#endif
#endif
