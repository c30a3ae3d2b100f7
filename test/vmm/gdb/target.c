/*
 * The guest the gdb tests debug (gdb.test.ts): a function with a loop and locals to break in,
 * step through and read, then the Heki story — pin CR0.WP, try to clear it (a denial, then the
 * #GP the guest does not handle). Built at test time with -O0 -g; no library, so that it
 * depends on nothing but the boot state `pinbox run` gives (CPL0, 64-bit, a stack).
 */
volatile unsigned long counter;

/* KVM_HC_LOCK_CR_UPDATE (13): a0 = the control register, a1 = the bits to pin (docs/heki.md). */
static unsigned long heki_lock_cr(unsigned long cr, unsigned long bits) {
    unsigned long ret;
    __asm__ volatile("vmcall" : "=a"(ret) : "a"(13UL), "b"(cr), "c"(bits), "d"(0UL) : "memory");
    return ret;
}

__attribute__((noinline)) unsigned long accumulate(unsigned long n) {
    unsigned long total = 0;
    for (unsigned long i = 1; i <= n; i++) {
        total += i * i;
    }
    counter = total;
    return total;
}

__attribute__((noinline)) void clear_wp(void) {
    unsigned long cr0;
    __asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
    cr0 &= ~(1UL << 16);
    __asm__ volatile("mov %0, %%cr0" : : "r"(cr0) : "memory");
}

void _start(void) {
    unsigned long sum = accumulate(10);
    heki_lock_cr(0, 1UL << 16);
    clear_wp();
    __asm__ volatile("hlt" : : "a"(sum) : "memory");
    for (;;) __asm__ volatile("hlt");
}
