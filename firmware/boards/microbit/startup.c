/* Cortex-M0 start-up for QEMU's microbit (nRF51822): the vector table,
 * .data/.bss set-up, the stack paint, then main().
 *
 * The stack is at the bottom of RAM (nrf51822.ld), so an overflow faults at
 * once. The fault handler is entered naked and first moves SP back to the
 * top of the stack: with SP past the bottom, pushing anything would fault
 * again, and QEMU ends a Cortex-M lockup with an abort (exit 134), not a
 * report. It prints the exception, the faulting SP and, when that SP points
 * into RAM, the stacked PC (CFSR/HFSR read as 0 on ARMv6-M in QEMU), then
 * ends the emulation with status 70. */
#include <stdint.h>
#include <string.h>

#include "peerflash/pf_err.h"
#include "semihost.h"

extern uint32_t __stack_bottom, __stack_top, __data_start, __data_end, __data_load, __bss_start, __bss_end;
int main(void);
void pf_microbit_reset(void);
void pf_microbit_uart0_isr(void);
void pf_microbit_timer0_isr(void);
void pf_microbit_fault(uint32_t sp);
static void fault_entry(void);

#define STACK_PAINT 0xC5C5C5C5u
#define RAM_START 0x20000000u
#define RAM_END 0x20004000u

typedef void (*pf_vector)(void);

/* 16 system exceptions, then the nRF51's 32 interrupts (UART0 is IRQ 2,
 * TIMER0 IRQ 8). ARMv6-M has no MemManage/BusFault/UsageFault: all are HardFault. */
__attribute__((section(".vectors"), used)) static const struct {
    const void *sp;
    pf_vector handlers[15 + 32];
} vectors = {
    &__stack_top,
    {
        pf_microbit_reset, /* 1 reset */
        fault_entry,       /* 2 NMI */
        fault_entry,       /* 3 HardFault */
        0, 0, 0, 0, 0, 0, 0, /* 4-10 reserved on ARMv6-M */
        fault_entry,       /* 11 SVCall */
        0, 0,              /* 12-13 reserved */
        fault_entry,       /* 14 PendSV */
        fault_entry,       /* 15 SysTick: not used (QEMU-only on this part, and it loses ticks) */
        0, 0, pf_microbit_uart0_isr, /* IRQ 0-2 */
        0, 0, 0, 0, 0,     /* IRQ 3-7 */
        pf_microbit_timer0_isr, /* IRQ 8 */
    },
};

void pf_microbit_reset(void)
{
    /* Paint the stack below what this function uses, for the high-water mark. */
    uint32_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *p = &__stack_bottom; (uintptr_t)p < sp - 64u; p++)
        *p = STACK_PAINT;
    memcpy(&__data_start, &__data_load, (size_t)((char *)&__data_end - (char *)&__data_start));
    memset(&__bss_start, 0, (size_t)((char *)&__bss_end - (char *)&__bss_start));
    (void)main();
    pf_sh_exit(1);
}

/* Bytes of stack ever used: from the top down to the lowest word that no
 * longer holds the paint. */
uint32_t pf_microbit_stack_used(void);
uint32_t pf_microbit_stack_used(void)
{
    const uint32_t *p = &__stack_bottom;
    while (p < &__stack_top && *p == STACK_PAINT)
        p++;
    return (uint32_t)((const char *)&__stack_top - (const char *)p);
}

uint32_t pf_microbit_stack_size(void);
uint32_t pf_microbit_stack_size(void)
{
    return (uint32_t)((const char *)&__stack_top - (const char *)&__stack_bottom);
}

__attribute__((naked)) static void fault_entry(void)
{
    __asm__ volatile("mov r0, sp\n"
                     "ldr r1, =__stack_top\n"
                     "mov sp, r1\n"
                     "b pf_microbit_fault\n"
                     ".ltorg\n");
}

void pf_microbit_fault(uint32_t sp)
{
    uint32_t icsr = *(volatile uint32_t *)0xE000ED04u;
    /* the exception frame: r0 r1 r2 r3 r12 lr pc xpsr */
    int framed = sp >= RAM_START && sp + 32u <= RAM_END && (sp & 3u) == 0;
    uint32_t pc = framed ? ((const uint32_t *)(uintptr_t)sp)[6] : 0;
    char line[120];
    pf_format(line, sizeof line, "updater: fault (exception %lu) sp=0x%08lx pc=%s%08lx%s\n",
              (unsigned long)(icsr & 0x3Fu), (unsigned long)sp, framed ? "0x" : "?", (unsigned long)pc,
              sp < RAM_START + 32u ? " (stack overflow)" : "");
    pf_sh_write0(line);
    pf_sh_exit(70);
}
