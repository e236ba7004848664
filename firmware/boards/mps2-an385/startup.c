/* Cortex-M3 start-up for QEMU mps2-an385: the vector table, copying .data
 * and clearing .bss, then main(). Faults print where they happened on the
 * semihosting console and end the emulation with status 70, so a test never
 * hangs on a crashed updater. */
#include <stdint.h>
#include <string.h>

#include "peerflash/pf_err.h"
#include "semihost.h"

extern uint32_t __stack_top, __data_start, __data_end, __data_load, __bss_start, __bss_end;
int main(void);
void pf_mps2_reset(void);
void pf_mps2_systick_isr(void);
void pf_mps2_uart0_rx_isr(void);
static void fault_isr(void);

typedef void (*pf_vector)(void);

/* 16 system exceptions, then external interrupts: IRQ 0 is UART0 RX. */
__attribute__((section(".vectors"), used)) static const struct {
    const void *sp;
    pf_vector handlers[15 + 1];
} vectors = {
    &__stack_top,
    {
        pf_mps2_reset, /* 1 reset */
        fault_isr,     /* 2 NMI */
        fault_isr,     /* 3 HardFault */
        fault_isr,     /* 4 MemManage */
        fault_isr,     /* 5 BusFault */
        fault_isr,     /* 6 UsageFault */
        0, 0, 0, 0,    /* 7-10 reserved */
        fault_isr,     /* 11 SVCall */
        fault_isr,     /* 12 DebugMonitor */
        0,             /* 13 reserved */
        fault_isr,     /* 14 PendSV */
        pf_mps2_systick_isr, /* 15 SysTick */
        pf_mps2_uart0_rx_isr, /* IRQ 0: UART0 RX */
    },
};

void pf_mps2_reset(void)
{
    memcpy(&__data_start, &__data_load, (size_t)((char *)&__data_end - (char *)&__data_start));
    memset(&__bss_start, 0, (size_t)((char *)&__bss_end - (char *)&__bss_start));
    (void)main();
    pf_sh_exit(1);
}

static void fault_isr(void)
{
    volatile uint32_t *scb = (volatile uint32_t *)0xE000ED00u;
    uint32_t icsr = scb[1], cfsr = scb[0x28 / 4], hfsr = scb[0x2C / 4], bfar = scb[0x38 / 4];
    char line[120];
    pf_format(line, sizeof line, "updater: fault (exception %lu) CFSR=0x%08lx HFSR=0x%08lx BFAR=0x%08lx\n",
              (unsigned long)(icsr & 0x1FFu), (unsigned long)cfsr, (unsigned long)hfsr, (unsigned long)bfar);
    pf_sh_write0(line);
    pf_sh_exit(70);
}
