/* `peerflash sim NAME ...`: simulated targets. Each simulator lives in sim/
 * and registers one line in this table. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "esp32.h"

typedef struct sim_entry {
    const char *name;
    pf_cli_fn fn;
    const char *summary;
} sim_entry;

int pf_sim_agent_main(int argc, char **argv); /* sim/agent */
int pf_sim_avr_main(int argc, char **argv); /* sim/avr */
int pf_sim_stm32_main(int argc, char **argv); /* sim/stm32.c */
static const sim_entry sims[] = {
    {"agent", pf_sim_agent_main, "peerflash agent + bootloader over simulated NOR flash, with resets"},
    {"avr", pf_sim_avr_main, "real Optiboot on a simulated ATmega328P (libsimavr), UART0 on a pty"},
    {"stm32", pf_sim_stm32_main, "STM32 system-memory bootloader (AN3155 USART), with stm32flash-checked fidelity"},
    {"esp32", pf_sim_esp32_main, "ESP32-family ROM serial loader (+ flasher stub): esptool, esptool-js, --target esp"},
    {NULL, NULL, NULL},
};

int pf_cmd_sim(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("usage: peerflash sim NAME --port PATH [options]   (peerflash sim NAME --help)\n\nsimulators:\n");
        for (size_t i = 0; sims[i].name; i++)
            printf("  %-8s %s\n", sims[i].name, sims[i].summary);
        if (!sims[0].name)
            printf("  (none built yet)\n");
        return argc < 2 ? PF_EXIT_USAGE : PF_EXIT_OK;
    }
    for (size_t i = 0; sims[i].name; i++)
        if (!strcmp(argv[1], sims[i].name))
            return sims[i].fn(argc - 1, argv + 1);
    pf_cli_error("unknown simulator '%s' (see peerflash sim --help)", argv[1]);
    return PF_EXIT_USAGE;
}
