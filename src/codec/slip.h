/* The SLIP codec (src/codec/slip.c); its declarations are public in
 * peerflash/pf_slip.h. Drivers include this name, which is how the firmware
 * build sees which driver uses which codec. */
#ifndef PEERFLASH_CODEC_SLIP_H
#define PEERFLASH_CODEC_SLIP_H

#include "peerflash/pf_slip.h"

#endif
