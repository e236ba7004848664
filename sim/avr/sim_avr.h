/* `peerflash sim avr`: real Optiboot on a simulated ATmega328P (libsimavr). */
#ifndef PEERFLASH_SIM_AVR_H
#define PEERFLASH_SIM_AVR_H

/* The command's entry point: argv[0] is "avr". Returns an exit status. */
int pf_sim_avr_main(int argc, char **argv);

#endif
