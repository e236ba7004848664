/* ARM semihosting on Cortex-M (bkpt 0xAB): the host services QEMU gives a
 * bare-metal program when started with -semihosting-config enable=on,target=native.
 * Here it stands in for an SD card (files), a console and a power switch
 * (exit status), and hands over the job (QEMU's -append) as the command line. */
#ifndef PF_FW_SEMIHOST_H
#define PF_FW_SEMIHOST_H

#include <stddef.h>
#include <stdint.h>

/* Opens a host file for binary reading; returns a handle >= 0 or -1. */
int pf_sh_open_read(const char *path);
/* Reads up to n bytes; returns the count read (0 at end of file) or -1. */
int pf_sh_read(int handle, void *buf, size_t n);
/* Length of an open file in bytes, or -1. */
long pf_sh_flen(int handle);
int pf_sh_close(int handle);
/* errno of the host's last failed call. */
int pf_sh_errno(void);
/* Writes a NUL-terminated string to the host console (QEMU's stdout). */
void pf_sh_write0(const char *s);
/* Copies the command line into buf (NUL-terminated); returns its length or -1. */
int pf_sh_cmdline(char *buf, size_t size);
/* The host's monotonic wall clock in ms since QEMU started (SYS_ELAPSED /
 * SYS_TICKFREQ; SYS_CLOCK would be the host process's CPU time, which
 * stands still while the guest sleeps). 0 if the host does not offer it. */
uint32_t pf_sh_elapsed_ms(void);
/* Fills a board's storage (host files as the SD card), console, job
 * (QEMU's -append) and reference clock from the host (semihost_board.c). */
struct pf_board;
void pf_sh_board_services(struct pf_board *b);
/* Ends the emulation with this exit status (any value, not just 0/1). */
__attribute__((noreturn)) void pf_sh_exit(int status);

#endif
