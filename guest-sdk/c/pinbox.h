/*
 * pinbox.h — the C guest library of pinbox: everything a CPL0 C program run by `pinbox run`
 * needs to talk to the machine docs/boot.md describes. Header-only; freestanding.
 *
 *   gcc -ffreestanding -mgeneral-regs-only -mno-red-zone -nostdlib -static -fno-pie -no-pie \
 *       -fno-stack-protector -fno-asynchronous-unwind-tables -O2 -I guest-sdk/c \
 *       -T guest-sdk/c/pinbox.ld -o guest.elf guest.c
 *   pinbox run --policy policy.json --image guest.elf
 *
 * Write `void pinbox_main(const struct pinbox_boot_info *bi)`; the header's _start calls it with
 * the boot-information block (RDI at entry) and halts when it returns (define PINBOX_NO_START to
 * write your own _start). What is here:
 *
 *   - port I/O: outb/outw/outl, inb/inw/inl;
 *   - the console (the 16550 UART at 0x3f8): pinbox_putc, pinbox_puts, pinbox_printf
 *     (%d %i %u %x %X %p %s %c %%, flags 0 and -, a width, the l/ll/z sizes);
 *   - pinbox_exit(code): isa-debug-exit at 0xf4, `pinbox run` exits with (code << 1) | 1;
 *   - faults as values: read_cr, write_cr, update_cr, set_cr0_wp, set_cr4_smep, lmsw, clts,
 *     rdmsr_safe, wrmsr_safe, and the memory probes read_u64_safe, write_u64_safe, call_safe
 *     return a struct pinbox_fault (vector -1: none), through the boot IDT's fault record and
 *     fix-up (docs/boot.md §1.2), as a kernel's exception table lets rdmsr_safe() survive a #GP;
 *     invlpg, stac, clac;
 *   - CPUID, and pinbox_cpu(): this vCPU's number (CPUID.1:EBX[31:24], its initial APIC ID);
 *   - Heki (docs/heki.md): the KVM_HC_LOCK_CR_UPDATE hypercall, its version query, and the
 *     lock-down of a Heki guest kernel under either ABI profile (v2, v3); Heki's memory locks,
 *     RFC v1's KVM_HC_LOCK_MEM_PAGE_RANGES and v2's KVM_HC_PROTECT_MEMORY with their structures
 *     (docs/memory-protection.md).
 *
 * Every function is static inline (memset/memcpy/memmove/memcmp, which gcc may call on its own,
 * are weak), so any number of files may include this one.
 */
#ifndef PINBOX_H
#define PINBOX_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- the boot-information block */

/* docs/boot.md §3.4; host/vmm/boot/boot-info.ts writes it. */
struct pinbox_boot_info {
	uint32_t magic;        /* PINBOX_BOOT_MAGIC, "PBOX" */
	uint32_t version;      /* 1 */
	uint32_t size;         /* 64 */
	uint32_t vcpu;         /* this vCPU's number */
	uint32_t vcpus;        /* how many vCPUs run */
	uint32_t heki_profile; /* 2 or 3: the VM's Heki ABI profile */
	uint64_t memory_size;  /* bytes of guest memory */
	const char *cmdline;   /* `pinbox run --append`, NUL-terminated ("" without it) */
	uint32_t cmdline_len;
	uint32_t reserved0;
	uint64_t fault_record; /* this vCPU's fault record (docs/boot.md §1.2) */
	uint64_t reserved1;
};
_Static_assert(sizeof(struct pinbox_boot_info) == 64, "the boot block is 64 bytes");

#define PINBOX_BOOT_MAGIC 0x584f4250u

void pinbox_main(const struct pinbox_boot_info *bi);

#ifndef PINBOX_NO_START
/* The entry: RSP is the top of the vCPU's 4 KiB kernel stack (16-byte aligned), RDI the block. */
__asm__(".pushsection .text.pinbox_start, \"ax\"\n"
	".globl _start\n"
	"_start:\n"
	"\tcall pinbox_main\n"
	"1:\thlt\n"
	"\tjmp 1b\n"
	".popsection\n");
#endif

/* ---------------------------------------------------------------- the C runtime gcc expects */

__attribute__((weak)) void *memset(void *d, int c, size_t n)
{
	unsigned char *p = d;
	while (n--)
		*p++ = (unsigned char)c;
	return d;
}

__attribute__((weak)) void *memcpy(void *d, const void *s, size_t n)
{
	unsigned char *p = d;
	const unsigned char *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

__attribute__((weak)) void *memmove(void *d, const void *s, size_t n)
{
	unsigned char *p = d;
	const unsigned char *q = s;
	if (p < q)
		while (n--)
			*p++ = *q++;
	else
		while (n--)
			p[n] = q[n];
	return d;
}

__attribute__((weak)) int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *p = a, *q = b;
	for (; n--; p++, q++)
		if (*p != *q)
			return *p - *q;
	return 0;
}

static inline size_t pinbox_strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

static inline int pinbox_streq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

/* ---------------------------------------------------------------- port I/O */

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void pinbox_hlt(void) { __asm__ volatile("hlt" : : : "memory"); }

/* ---------------------------------------------------------------- the console and the exit port */

#define PINBOX_COM1 0x3f8
#define PINBOX_UART_LSR 5
#define PINBOX_LSR_THRE 0x20
#define PINBOX_DEBUG_EXIT_PORT 0xf4

/* What every polling 16550 driver does: wait for THRE, write THR. */
static inline void pinbox_putc(char c)
{
	while (!(inb(PINBOX_COM1 + PINBOX_UART_LSR) & PINBOX_LSR_THRE))
		;
	outb(PINBOX_COM1, (uint8_t)c);
}

static inline void pinbox_puts(const char *s)
{
	while (*s)
		pinbox_putc(*s++);
}

/* Ends `pinbox run` with exit status (code << 1) | 1 (QEMU's isa-debug-exit). */
__attribute__((noreturn)) static inline void pinbox_exit(uint32_t code)
{
	outl(PINBOX_DEBUG_EXIT_PORT, code);
	for (;;)
		pinbox_hlt();
}

/* One number: base 10 or 16, `width` with '0' or ' ' padding, left-aligned with `left`. */
static inline int pinbox_print_number(uint64_t v, int negative, unsigned base, int upper, int width, char pad, int left)
{
	char digits[24];
	const char *set = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	int n = 0, out = 0;
	do {
		digits[n++] = set[v % base];
		v /= base;
	} while (v);
	int len = n + negative;
	if (negative && pad == '0') {
		pinbox_putc('-'), out++;
		negative = 0;
	}
	if (!left)
		for (; width > len; width--)
			pinbox_putc(pad), out++;
	if (negative)
		pinbox_putc('-'), out++;
	while (n)
		pinbox_putc(digits[--n]), out++;
	if (left)
		for (; width > len; width--)
			pinbox_putc(' '), out++;
	return out;
}

static inline int pinbox_vprintf(const char *fmt, va_list ap)
{
	int out = 0;
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			pinbox_putc(*fmt), out++;
			continue;
		}
		char pad = ' ';
		int left = 0, width = 0, size = 0;
		for (;; fmt++) {
			if (fmt[1] == '0')
				pad = '0';
			else if (fmt[1] == '-')
				left = 1;
			else
				break;
		}
		while (fmt[1] >= '0' && fmt[1] <= '9')
			width = width * 10 + (*++fmt - '0');
		while (fmt[1] == 'l' || fmt[1] == 'z')
			size++, fmt++;
		switch (*++fmt) {
		case 'd':
		case 'i': {
			int64_t v = size ? va_arg(ap, int64_t) : va_arg(ap, int);
			out += pinbox_print_number(v < 0 ? -(uint64_t)v : (uint64_t)v, v < 0, 10, 0, width, pad, left);
			break;
		}
		case 'u':
			out += pinbox_print_number(size ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 0, 10, 0, width, pad, left);
			break;
		case 'x':
		case 'X':
			out += pinbox_print_number(size ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 0, 16, *fmt == 'X', width, pad, left);
			break;
		case 'p':
			pinbox_puts("0x"), out += 2;
			out += pinbox_print_number((uintptr_t)va_arg(ap, void *), 0, 16, 0, width, pad, left);
			break;
		case 'c':
			pinbox_putc((char)va_arg(ap, int)), out++;
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			int len = (int)pinbox_strlen(s);
			if (!left)
				for (; width > len; width--)
					pinbox_putc(' '), out++;
			pinbox_puts(s), out += len;
			if (left)
				for (; width > len; width--)
					pinbox_putc(' '), out++;
			break;
		}
		case '%':
			pinbox_putc('%'), out++;
			break;
		case '\0':
			return out;
		default: /* an unknown conversion is printed as written */
			pinbox_putc('%'), pinbox_putc(*fmt), out += 2;
		}
	}
	return out;
}

__attribute__((format(printf, 1, 2))) static inline int pinbox_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = pinbox_vprintf(fmt, ap);
	va_end(ap);
	return n;
}

/* ---------------------------------------------------------------- CPUID */

struct pinbox_cpuid {
	uint32_t eax, ebx, ecx, edx;
};

static inline struct pinbox_cpuid cpuid(uint32_t leaf, uint32_t subleaf)
{
	struct pinbox_cpuid r;
	__asm__ volatile("cpuid" : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx) : "a"(leaf), "c"(subleaf));
	return r;
}

/* This vCPU's number: its initial APIC ID, which pinbox makes the vCPU id. */
static inline unsigned pinbox_cpu(void)
{
	return cpuid(1, 0).ebx >> 24;
}

/* ---------------------------------------------------------------- faults as values */

/* An exception an instruction raised: vector -1 when it raised none. */
struct pinbox_fault {
	int vector;
	uint32_t error_code;
};

#define PINBOX_NO_FAULT ((struct pinbox_fault){ -1, 0 })
#define PINBOX_GP 13
#define PINBOX_UD 6

static inline int pinbox_faulted(struct pinbox_fault f) { return f.vector >= 0; }

/*
 * The fault record of the boot IDT (docs/boot.md §1.2): 64 bytes at the top of each vCPU's
 * exception stack. Its stubs count an exception, note its vector and error code, and resume at
 * the fix-up if it is not 0 (they halt otherwise: `pinbox run` reports the fault).
 */
struct pinbox_fault_record {
	volatile uint64_t count, vector, error_code, fixup, rip;
};

static inline struct pinbox_fault_record *pinbox_fault_record(void)
{
	return (struct pinbox_fault_record *)(uintptr_t)(0x50000 + 4096 * (pinbox_cpu() + 1) - 64);
}

/*
 * Around an instruction: arm the fault record — count 0, fix-up at the label after the
 * instruction — and disarm it after (fix-up 0 again: a later fault nobody expects halts the
 * program, and `pinbox run` reports it). R11 carries the fix-up's address; %[rec] is the record.
 */
#define PINBOX_ARM "movq $0, (%[rec])\n\tleaq 1f(%%rip), %%r11\n\tmovq %%r11, 24(%[rec])\n\t"
#define PINBOX_DISARM "\n1:\n\tmovq $0, 24(%[rec])"

/*
 * The fault the guarded instruction raised, if any; the count goes back to 0, as `pinbox run`
 * reads a count above 0 when the program halts as a fault it did not handle.
 */
static inline struct pinbox_fault pinbox_fault_of(struct pinbox_fault_record *rec)
{
	if (rec->count == 0)
		return PINBOX_NO_FAULT;
	struct pinbox_fault f = { (int)rec->vector, (uint32_t)rec->error_code };
	rec->count = 0;
	return f;
}

/* RDMSR of `msr`, the value in *value (0 on a fault), as the kernel's rdmsr_safe(). */
static inline struct pinbox_fault rdmsr_safe(uint32_t msr, uint64_t *value)
{
	struct pinbox_fault_record *rec = pinbox_fault_record();
	uint32_t lo = 0, hi = 0;
	__asm__ volatile(PINBOX_ARM "rdmsr" PINBOX_DISARM : "+a"(lo), "+d"(hi) : [rec] "r"(rec), "c"(msr) : "r11", "memory");
	struct pinbox_fault f = pinbox_fault_of(rec);
	*value = pinbox_faulted(f) ? 0 : ((uint64_t)hi << 32 | lo);
	return f;
}

static inline struct pinbox_fault wrmsr_safe(uint32_t msr, uint64_t value)
{
	struct pinbox_fault_record *rec = pinbox_fault_record();
	__asm__ volatile(PINBOX_ARM "wrmsr" PINBOX_DISARM
			 : : [rec] "r"(rec), "c"(msr), "a"((uint32_t)value), "d"((uint32_t)(value >> 32)) : "r11", "memory");
	return pinbox_fault_of(rec);
}

/* MOV from CRn (n = 0, 2, 3, 4, 8); any other n is #UD, as the instruction would be. */
static inline struct pinbox_fault read_cr(int cr, uint64_t *value)
{
	struct pinbox_fault_record *rec = pinbox_fault_record();
	uint64_t v = 0;
	switch (cr) {
	case 0: __asm__ volatile(PINBOX_ARM "mov %%cr0, %[v]" PINBOX_DISARM : [v] "+r"(v) : [rec] "r"(rec) : "r11", "memory"); break;
	case 2: __asm__ volatile(PINBOX_ARM "mov %%cr2, %[v]" PINBOX_DISARM : [v] "+r"(v) : [rec] "r"(rec) : "r11", "memory"); break;
	case 3: __asm__ volatile(PINBOX_ARM "mov %%cr3, %[v]" PINBOX_DISARM : [v] "+r"(v) : [rec] "r"(rec) : "r11", "memory"); break;
	case 4: __asm__ volatile(PINBOX_ARM "mov %%cr4, %[v]" PINBOX_DISARM : [v] "+r"(v) : [rec] "r"(rec) : "r11", "memory"); break;
	case 8: __asm__ volatile(PINBOX_ARM "mov %%cr8, %[v]" PINBOX_DISARM : [v] "+r"(v) : [rec] "r"(rec) : "r11", "memory"); break;
	default: *value = 0; return (struct pinbox_fault){ PINBOX_UD, 0 };
	}
	struct pinbox_fault f = pinbox_fault_of(rec);
	*value = pinbox_faulted(f) ? 0 : v;
	return f;
}

/* MOV to CRn: a write Heki denies (a pinned bit cleared) comes back as #GP(0). */
static inline struct pinbox_fault write_cr(int cr, uint64_t value)
{
	struct pinbox_fault_record *rec = pinbox_fault_record();
	switch (cr) {
	case 0: __asm__ volatile(PINBOX_ARM "mov %[v], %%cr0" PINBOX_DISARM : : [rec] "r"(rec), [v] "r"(value) : "r11", "memory"); break;
	case 2: __asm__ volatile(PINBOX_ARM "mov %[v], %%cr2" PINBOX_DISARM : : [rec] "r"(rec), [v] "r"(value) : "r11", "memory"); break;
	case 3: __asm__ volatile(PINBOX_ARM "mov %[v], %%cr3" PINBOX_DISARM : : [rec] "r"(rec), [v] "r"(value) : "r11", "memory"); break;
	case 4: __asm__ volatile(PINBOX_ARM "mov %[v], %%cr4" PINBOX_DISARM : : [rec] "r"(rec), [v] "r"(value) : "r11", "memory"); break;
	case 8: __asm__ volatile(PINBOX_ARM "mov %[v], %%cr8" PINBOX_DISARM : : [rec] "r"(rec), [v] "r"(value) : "r11", "memory"); break;
	default: return (struct pinbox_fault){ PINBOX_UD, 0 };
	}
	return pinbox_fault_of(rec);
}

/* LMSW: loads CR0 bits 3:0 (it can set PE but never clear it). */
static inline struct pinbox_fault lmsw(uint16_t msw)
{
	struct pinbox_fault_record *rec = pinbox_fault_record();
	__asm__ volatile(PINBOX_ARM "lmsw %w[v]" PINBOX_DISARM : : [rec] "r"(rec), [v] "r"(msw) : "r11", "memory");
	return pinbox_fault_of(rec);
}

/* CLTS: clears CR0.TS. */
static inline struct pinbox_fault clts(void)
{
	struct pinbox_fault_record *rec = pinbox_fault_record();
	__asm__ volatile(PINBOX_ARM "clts" PINBOX_DISARM : : [rec] "r"(rec) : "r11", "memory");
	return pinbox_fault_of(rec);
}

/* Control-register bits (SDM vol. 3A §2.5). */
#define X86_CR0_WP (1ul << 16)
#define X86_CR4_UMIP (1ul << 11)
#define X86_CR4_FSGSBASE (1ul << 16)
#define X86_CR4_SMEP (1ul << 20)
#define X86_CR4_SMAP (1ul << 21)
#define X86_CR4_CET (1ul << 23)
#define X86_CR4_FRED (1ul << 32)

/* CRn = (CRn & ~clear) | set: the fault of the read or of the write (a pinned bit cleared: #GP(0)). */
static inline struct pinbox_fault update_cr(int cr, uint64_t clear, uint64_t set)
{
	uint64_t v;
	struct pinbox_fault f = read_cr(cr, &v);
	return pinbox_faulted(f) ? f : write_cr(cr, (v & ~clear) | set);
}

/* CR0.WP: with it clear, supervisor writes ignore the guest's read-only pages (SDM vol. 3A §4.6). */
static inline struct pinbox_fault set_cr0_wp(int on) { return update_cr(0, X86_CR0_WP, on ? X86_CR0_WP : 0); }

/* CR4.SMEP: with it clear, supervisor code may fetch from user pages (ret2usr). */
static inline struct pinbox_fault set_cr4_smep(int on) { return update_cr(4, X86_CR4_SMEP, on ? X86_CR4_SMEP : 0); }

/* ---------------------------------------------------------------- memory as values */

#define PINBOX_PF 14
/* The #PF error code's bits (SDM vol. 3A §4.7). */
#define PINBOX_PF_P (1u << 0)
#define PINBOX_PF_W (1u << 1)
#define PINBOX_PF_U (1u << 2)
#define PINBOX_PF_I (1u << 4)

/* A 64-bit load from `addr` (*value 0 on a fault). */
static inline struct pinbox_fault read_u64_safe(uint64_t addr, uint64_t *value)
{
	struct pinbox_fault_record *rec = pinbox_fault_record();
	uint64_t v = 0;
	__asm__ volatile(PINBOX_ARM "movq (%[a]), %[v]" PINBOX_DISARM : [v] "+r"(v) : [rec] "r"(rec), [a] "r"(addr) : "r11", "memory");
	struct pinbox_fault f = pinbox_fault_of(rec);
	*value = pinbox_faulted(f) ? 0 : v;
	return f;
}

/* A 64-bit store of `value` to `addr`: a page the guest's tables or the hypervisor refuse comes back as #PF. */
static inline struct pinbox_fault write_u64_safe(uint64_t addr, uint64_t value)
{
	struct pinbox_fault_record *rec = pinbox_fault_record();
	__asm__ volatile(PINBOX_ARM "movq %[v], (%[a])" PINBOX_DISARM : : [rec] "r"(rec), [a] "r"(addr), [v] "r"(value) : "r11", "memory");
	return pinbox_fault_of(rec);
}

/*
 * CALL `addr` as a function of no arguments and return its RAX in *ret (0 on a fault): an
 * execute probe. A fault resumes after the CALL with the return address still pushed, so RSP
 * comes back from R12 and the record's address from RBX — registers a callee keeps (System V
 * ABI), and that a fault in the fetch of the target itself, what this probe is for, leaves as
 * they were. The callee may clobber what the ABI lets it.
 */
static inline struct pinbox_fault call_safe(uint64_t addr, uint64_t *ret)
{
	struct pinbox_fault_record *rec = pinbox_fault_record();
	uint64_t rax = addr;
	__asm__ volatile(PINBOX_ARM "movq %%rsp, %%r12\n\tcall *%%rax\n1:\n\tmovq %%r12, %%rsp\n\tmovq $0, 24(%[rec])"
			 : "+a"(rax)
			 : [rec] "b"(rec)
			 : "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "cc", "memory");
	struct pinbox_fault f = pinbox_fault_of(rec);
	*ret = pinbox_faulted(f) ? 0 : rax;
	return f;
}

/* INVLPG: drops the TLB's translation of `addr` after its page-table entry changed. */
static inline void invlpg(uint64_t addr) { __asm__ volatile("invlpg (%0)" : : "r"(addr) : "memory"); }

/* STAC/CLAC: supervisor access to user pages allowed/refused again under CR4.SMAP (copy_to_user()'s brackets). */
static inline void stac(void) { __asm__ volatile("stac" : : : "cc", "memory"); }
static inline void clac(void) { __asm__ volatile("clac" : : : "cc", "memory"); }

/* ---------------------------------------------------------------- Heki (docs/heki.md) */

#define KVM_HC_LOCK_CR_UPDATE 13
#define KVM_LOCK_CR_UPDATE_VERSION (1u << 0)
/* The guest kernel's cr4_pinned_mask: SMEP|SMAP|UMIP|FSGSBASE|CET; v3 adds FRED (docs/heki.md §0.1). */
#define HEKI_CR4_PINNABLE_V2 (X86_CR4_SMEP | X86_CR4_SMAP | X86_CR4_UMIP | X86_CR4_FSGSBASE | X86_CR4_CET)
#define HEKI_CR4_PINNABLE_V3 (HEKI_CR4_PINNABLE_V2 | X86_CR4_FRED)

/* KVM's hypercall ABI: nr in RAX, a0..a3 in RBX, RCX, RDX, RSI; the result in RAX (VMCALL). */
static inline long kvm_hypercall(unsigned long nr, unsigned long a0, unsigned long a1, unsigned long a2, unsigned long a3)
{
	long ret;
	__asm__ volatile("vmcall" : "=a"(ret) : "a"(nr), "b"(a0), "c"(a1), "d"(a2), "S"(a3) : "memory");
	return ret;
}

/* The version query of kvm_init_heki(): 1 on a Heki host; below 1 means no Heki (docs/heki.md §4.2). */
static inline long heki_version(void)
{
	return kvm_hypercall(KVM_HC_LOCK_CR_UPDATE, 0, 0, KVM_LOCK_CR_UPDATE_VERSION, 0);
}

/* KVM_HC_LOCK_CR_UPDATE(cr, pin, 0): 0, or a negated KVM error (-22 KVM_EINVAL, …). */
static inline long heki_lock_cr(unsigned cr, uint64_t pin)
{
	return kvm_hypercall(KVM_HC_LOCK_CR_UPDATE, cr, pin, 0, 0);
}

/*
 * What a Heki guest kernel does at the end of its boot (kvm_lock_crs()): pin CR0.WP, then its
 * own CR4 masked with the pinnable bits of its ABI profile (the boot block's heki_profile: 2 or
 * 3). Returns 0 when both pins were taken; otherwise the failing call's result, or -1 when the
 * host has no Heki.
 */
static inline long heki_lock_down(uint32_t profile)
{
	if (heki_version() < 1)
		return -1;
	long r = heki_lock_cr(0, X86_CR0_WP);
	if (r != 0)
		return r;
	uint64_t cr4;
	if (pinbox_faulted(read_cr(4, &cr4)))
		return -1;
	return heki_lock_cr(4, cr4 & (profile == 3 ? HEKI_CR4_PINNABLE_V3 : HEKI_CR4_PINNABLE_V2));
}

/* ---------------------------------------------------------------- Heki's memory locks (docs/memory-protection.md §4–§6) */

/*
 * The structures go by guest-physical address; pinbox's boot maps memory one to one, so a
 * pointer is its own GPA here (a kernel would pass __pa() of it). Which number the host answers
 * is the VM's Heki profile's business: RFC v1 has 13 for memory (and its CR lock at 14), v2 has
 * 14 for memory (and the CR lock at 13); a host without the call answers -KVM_ENOSYS (-1000).
 */

/* RFC v1 (20230505152046.6575-5/-9-mic@digikod.net): a0 = the array, a1 = its size in bytes, a2 = 0. */
#define KVM_HC_LOCK_MEM_PAGE_RANGES 13
#define HEKI_ATTR_MEM_NOWRITE (1ul << 0) /* the range loses write */
#define HEKI_ATTR_MEM_EXEC (1ul << 1)    /* an allow-list: pages outside every EXEC range lose kernel execute (MBEC) */
#define HEKI_GFN_MAX 16                  /* ranges of each kind per VM, for its whole life, and per call */

struct heki_pa_range {
	uint64_t gfn_start;
	uint64_t gfn_end; /* inclusive */
	uint64_t attributes;
};
_Static_assert(sizeof(struct heki_pa_range) == 24, "struct heki_pa_range is 24 bytes");

/*
 * Locks `n` ranges for good: 0, or a negated KVM error — -22 EINVAL (a bad range or attribute),
 * -7 E2BIG (more than 16 per call, or no slot left), -14 EFAULT, -95 EOPNOTSUPP (EXEC without
 * MBEC). Not transactional: ranges before a failing one stay locked.
 */
static inline long heki_lock_mem_page_ranges(const struct heki_pa_range *ranges, size_t n)
{
	return kvm_hypercall(KVM_HC_LOCK_MEM_PAGE_RANGES, (uintptr_t)ranges, n * sizeof *ranges, 0, 0);
}

/* RFC v2 (20231113022326.24388-11/-12-mic@digikod.net): a0 = the first page list. */
#define KVM_HC_PROTECT_MEMORY 14
#define MEM_ATTR_READ (1ul << 0)
#define MEM_ATTR_WRITE (1ul << 1)
#define MEM_ATTR_EXEC (1ul << 2)      /* without it the page loses kernel execute (MBEC); put back silently without MBEC */
#define MEM_ATTR_IMMUTABLE (1ul << 3) /* no later call may change the page */

struct heki_pages {
	uint64_t pa;
	uint64_t epa; /* exclusive */
	uint64_t permissions;
};
_Static_assert(sizeof(struct heki_pages) == 24, "struct heki_pages is 24 bytes");

/* One node of the chain: one 4 KiB page (page-aligned, so it never straddles two). */
struct heki_page_list {
	struct heki_page_list *next; /* the guest's own link: KVM does not use it */
	uint64_t next_pa;            /* the next node's GPA; 0 ends the chain */
	uint64_t npages;
	struct heki_pages pages[];
};
_Static_assert(sizeof(struct heki_page_list) == 24, "the heki_page_list header is 24 bytes");

#define HEKI_PAGE_LIST_MAX_PAGES ((4096 - sizeof(struct heki_page_list)) / sizeof(struct heki_pages)) /* 169 */

/*
 * Sets the permissions of every entry of the chain at `list`: 0, or a negated errno — -22
 * (unaligned, no permission or an unknown one, epa <= pa), -1 EPERM (a page already IMMUTABLE),
 * -14 EFAULT, -7 E2BIG. Not transactional: earlier entries stay.
 */
static inline long heki_protect_memory(const struct heki_page_list *list)
{
	return kvm_hypercall(KVM_HC_PROTECT_MEMORY, (uintptr_t)list, 0, 0, 0);
}

/* One range [pa, epa) in a one-node list written to `node` (a 4 KiB page of the caller's), then the call. */
static inline long heki_protect_range(struct heki_page_list *node, uint64_t pa, uint64_t epa, uint64_t permissions)
{
	node->next = 0;
	node->next_pa = 0;
	node->npages = 1;
	node->pages[0] = (struct heki_pages){ pa, epa, permissions };
	return heki_protect_memory(node);
}

#endif /* PINBOX_H */
