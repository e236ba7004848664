/* Delta updates from the command line: the image cache the host keeps of
 * what it sent to agents, and the patch provider the agent driver calls
 * (the driver's set_delta hook). */
#ifndef PEERFLASH_CLI_AGENT_DELTA_H
#define PEERFLASH_CLI_AGENT_DELTA_H

#include <stddef.h>
#include <stdint.h>

#include "peerflash/pf_err.h"

/* Whole file into a malloc'd buffer; -1 with errno on failure. */
int pf_cli_read_file(const char *path, uint8_t **data, size_t *len);

/* Sets up a driver that takes patches (ops->set_delta: the agent) for delta: against the file delta_from
 * if given (the user named the base: a device running something else is an
 * error), else, when use_cache, against the running image if the cache has
 * it. Every image written is added to the cache (also with --no-delta: the
 * next update can then be a patch against it). */
struct pf_target_ops;
int pf_cli_agent_delta_setup(const struct pf_target_ops *ops, void *state, const char *delta_from, int use_cache,
                             int quiet, pf_diag *diag);

/* The cache directory: $PEERFLASH_CACHE_DIR, else $XDG_CACHE_HOME/peerflash/images,
 * else $HOME/.cache/peerflash/images. Files are <hex SHA-256 TLV>.img. */
int pf_cli_cache_dir(char *out, size_t cap);

#endif
