#!/usr/bin/env bash
# The freestanding link check can fail: a library that calls strdup (heap) and
# snprintf (stdio) is linked the way the firmware is, and the check must stop
# it, naming the chain and our functions; a clean library passes.
source "$(dirname "$0")/lib.sh"
need_gcc
check_script=$PF_SRC/firmware/check-freestanding.cmake
ld=$PF_SRC/firmware/check/check.ld
forbidden="malloc;free;_malloc_r;_free_r;_sbrk_r;snprintf;_svfprintf_r;_write_r"
cflags=(-mcpu=cortex-m0plus -mthumb -Os -ffunction-sections -fdata-sections)
cd "$tmp" || exit 1
cat >bad.c <<'C'
#include <stdio.h>
#include <string.h>
char *pf_dup(const char *s) { return strdup(s); }
int pf_show(int x) { char b[16]; return snprintf(b, sizeof b, "%d", x); }
C
cat >good.c <<'C'
#include <string.h>
void pf_copy(char *d, const char *s, unsigned n) { memcpy(d, s, n); }
C
cat >main.c <<'C'
extern char *pf_dup(const char *);
extern int pf_show(int);
extern void pf_copy(char *, const char *, unsigned);
extern unsigned __stack_top;
void pf_check_reset(void);
void pf_check_reset(void) {
    static char b[4];
#ifdef BAD
    pf_dup("x"); pf_show(3);
#endif
    pf_copy(b, "abc", 3);
    for (;;) {}
}
__attribute__((section(".vectors"), used)) static const struct { const void *sp; void (*r)(void); } v = { &__stack_top, pf_check_reset };
C
link() { # link NAME LIB [-DBAD]
    "$PF_ARM_GCC" "${cflags[@]}" $3 -c main.c -o "$1-main.o" &&
        "$PF_ARM_GCC" "${cflags[@]}" --specs=nano.specs -nostartfiles -T "$ld" -Wl,--gc-sections \
            -Wl,-Map="$1.map",--cref -Wl,--defsym=_sbrk=0,--defsym=_write=0,--defsym=_read=0,--defsym=_close=0 \
            -Wl,--defsym=_lseek=0,--defsym=_fstat=0,--defsym=_isatty=0,--defsym=_exit=0,--defsym=_kill=0,--defsym=_getpid=0 \
            "$1-main.o" "$2" -o "$1.elf"
}
"$PF_ARM_GCC" "${cflags[@]}" -c bad.c -o bad.c.obj && "$PF_ARM_GCC" "${cflags[@]}" -c good.c -o good.c.obj &&
    arm-none-eabi-ar rcs libpf_bad.a bad.c.obj good.c.obj || { echo "FAIL: could not compile"; exit 1; }
run_check() {
    out=$(cmake -DELF="$1.elf" -DMAP="$1.map" -DNM=arm-none-eabi-nm -DOBJDUMP=arm-none-eabi-objdump \
        "-DFORBIDDEN=$forbidden" -P "$check_script" 2>&1)
    rc=$?
}
link bad libpf_bad.a -DBAD || { echo "FAIL: bad link did not complete"; exit 1; }
run_check bad
[[ $rc -ne 0 ]] && rc=1
check "heap and stdio refused" 1 "pulls in heap or stdio"
check "strdup chain named" 1 "_malloc_r <- .*strdup.* <- libpf_bad.a\(bad.c.obj\) \(strdup\)"
check "calling function named (heap)" 1 "called from bad.c: pf_dup"
check "calling function named (stdio)" 1 "called from bad.c: pf_show"
link good libpf_bad.a || { echo "FAIL: good link failed"; exit 1; }
run_check good
check "clean library passes" 0 "none of the 8 heap and stdio symbols"
finish
