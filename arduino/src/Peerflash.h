/* peerflash for Arduino: flash another MCU from this board.
 *
 * PeerflashPort        a pf_port over a Stream (Serial1, ...) and a reset pin
 * PeerflashHexUpdater  receives an Intel HEX file on a Stream (with credit
 *                      flow control) and writes it page by page into an AVR
 *                      with Optiboot, checking the whole text before the
 *                      first write
 * The peerflash C core is underneath (the peerflash/ headers): the AVR driver
 * (pf_target_avr), the Intel HEX reader (pf_ihex) and pf_hexflash. */
#ifndef PEERFLASH_ARDUINO_H
#define PEERFLASH_ARDUINO_H

#include "PeerflashPort.h"
#include "PeerflashUpdater.h"
#include "peerflash/pf_avr.h"
#include "peerflash/pf_err.h"
#include "peerflash/pf_image.h"
#include "peerflash/pf_port.h"
#include "peerflash/pf_target.h"
#include "pf_hexflash.h"

#endif
