/* peerflash: program one microcontroller from another device.
 * Umbrella header for the portable core; the POSIX port is in pf_posix.h. */
#ifndef PEERFLASH_H
#define PEERFLASH_H

#include "pf_bytes.h"
#include "pf_digest.h"
#include "pf_err.h"
#include "pf_image.h"
#include "pf_job.h"
#include "pf_memmap.h"
#include "pf_port.h"
#include "pf_target.h"

#define PEERFLASH_VERSION "0.1.0"

#endif
