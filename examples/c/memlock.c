/*
 * The other half of kernel hardening, in C: memory locks the guest cannot undo. Its policy
 * (examples/policies/memlock.json) has the hypervisor's second stage (EPT) lock this kernel's
 * memory before it runs — text read+execute, data and the rest of the exec area non-executable,
 * the page tables read-only, and a user page non-executable for kernel and user alike (MBEC) —
 * and have every refused access exit to the VMM, which logs it as a memory_denial event and
 * gives the guest the #PF KVM would have injected. Then the guest plays an attacker who already
 * runs kernel code, and nothing pins CR0.WP or CR4.SMEP here, so the attacker turns both off:
 *
 *   (a) clear CR0.WP, then patch the kernel text — the guest's tables no longer stop a
 *       supervisor write, the second stage does;
 *   (b) make the text writable in its own page-table entry — the tables are locked;
 *   (c) copy code into a data buffer and jump to it — the guest's tables map it executable
 *       (the exec area is RWX), the second stage does not;
 *   (d) clear CR4.SMEP and jump to code on a user page (ret2usr).
 *
 * (d) needs care. With MBEC the second stage has two execute rights, and which one a fetch needs
 * is decided by the page, not by the CPL: a linear address is user-mode when every entry of its
 * walk has U/S = 1, and its fetches need the *user*-execute right even at CPL0 (SDM vol. 3C,
 * EPT "mode-based execute control"; docs/memory-protection.md §2.2). So taking kernel execute
 * away from the user page would not stop this jump; the policy takes user execute away (and
 * kernel execute too, in case the attacker makes the page supervisor — which the locked tables
 * refuse anyway). The price: no user code may run from that page either, so it is a data page
 * of the "user program", as a W^X user mapping would be.
 *
 *   pinbox run --policy examples/policies/memlock.json --image memlock.elf
 *
 * Each attempt prints "attack: … -> blocked: …" or "-> got through: …"; the VMM prints a
 * memory_denial line for each one it refused. Every protection held: it halts (exit status 0).
 * Under a policy without the `memory` section every attack gets through, and it ends through
 * the exit port with their number: exit status (4 << 1) | 1 = 9.
 *
 * Built with guest-sdk/c's compile line and `-T examples/c/memlock.ld` (not pinbox.ld): the
 * policy names fixed addresses, so the linker script fixes them.
 */
#include "pinbox.h"

/* examples/c/memlock.ld */
extern const char _stext[], _etext[], _sdata[], _edata[];

/* The user page the "user program" left its code on (the user region, docs/boot.md §2). */
#define USER_PAYLOAD 0x300000ul

/* mov eax, 0x1337; ret — what every jump tries to run. */
#define PAYLOAD 0xc300001337b8ul
#define PAYLOAD_RESULT 0x1337

/* mov eax, 1; ret — the patch of (a): kernel_check() would say yes to everything. */
#define PATCH 0xc300000001b8ul

#define PTE_RW (1ul << 1)
#define PTE_ADDR 0x000ffffffffff000ul

/* A kernel check the attacker wants to say yes: 16-byte aligned, so an 8-byte patch stays inside it. */
__attribute__((noipa, aligned(16))) static int kernel_check(void)
{
	__asm__ volatile("" ::: "memory");
	return 0;
}

/* Kernel data: where (c) puts its code. */
static uint64_t data_buffer[2] __attribute__((aligned(16)));

/* The page-table entry that maps `va` (4-level paging; the tables are identity-mapped). */
static uint64_t pte_address(uint64_t va)
{
	uint64_t cr3;
	read_cr(3, &cr3);
	uint64_t table = cr3 & PTE_ADDR;
	for (int shift = 39;; shift -= 9) {
		uint64_t entry = table + 8 * ((va >> shift) & 511);
		uint64_t e = *(volatile uint64_t *)entry;
		if (shift == 12 || (shift < 39 && (e & (1ul << 7)))) /* the 4 KiB PTE, or a large page's entry */
			return entry;
		table = e & PTE_ADDR;
	}
}

/* One line per attempt; returns 1 when it got through. */
static int report(const char *what, struct pinbox_fault f, const char *result)
{
	if (pinbox_faulted(f)) {
		uint64_t cr2 = 0;
		read_cr(2, &cr2);
		pinbox_printf("attack: %-40s -> blocked: vector %d (#%s), error code 0x%x, CR2 0x%lx\n", what, f.vector,
			      f.vector == PINBOX_PF ? "PF" : "?", f.error_code, cr2);
		return 0;
	}
	pinbox_printf("attack: %-40s -> got through: %s\n", what, result);
	return 1;
}

/* (a) CR0.WP off, then the patch. */
static int patch_text(void)
{
	uint64_t target = (uint64_t)kernel_check;
	if (pinbox_faulted(set_cr0_wp(0)))
		return report("clear CR0.WP", (struct pinbox_fault){ PINBOX_GP, 0 }, "");
	struct pinbox_fault f = write_u64_safe(target, PATCH);
	set_cr0_wp(1);
	return report("clear CR0.WP, patch kernel text", f, kernel_check() == 1 ? "kernel_check() now returns 1" : "?");
}

/* (b) the text's PTE made writable. */
static int unlock_pte(void)
{
	uint64_t pte = pte_address((uint64_t)kernel_check);
	uint64_t before = *(volatile uint64_t *)pte;
	struct pinbox_fault f = write_u64_safe(pte, before | PTE_RW);
	int fell = report("make the text's PTE writable", f, "the text is writable in its PTE");
	if (fell) {
		write_u64_safe(pte, before);
		invlpg((uint64_t)kernel_check);
	}
	return fell;
}

/* (c) code in a data buffer, then a jump to it. */
static int jump_to_data(void)
{
	data_buffer[0] = PAYLOAD;
	uint64_t ret;
	struct pinbox_fault f = call_safe((uint64_t)data_buffer, &ret);
	return report("jump into kernel data", f, ret == PAYLOAD_RESULT ? "it ran, returned 0x1337" : "?");
}

/* (d) SMEP off, then ret2usr. */
static int ret2usr(void)
{
	stac(); /* SMAP stays on: the kernel writes the user page as copy_to_user() does */
	struct pinbox_fault w = write_u64_safe(USER_PAYLOAD, PAYLOAD);
	clac();
	if (pinbox_faulted(w)) {
		pinbox_printf("ret2usr: the user page could not be written: vector %d\n", w.vector);
		return 0;
	}
	if (pinbox_faulted(set_cr4_smep(0)))
		return report("clear CR4.SMEP", (struct pinbox_fault){ PINBOX_GP, 0 }, "");
	uint64_t ret;
	struct pinbox_fault f = call_safe(USER_PAYLOAD, &ret);
	set_cr4_smep(1);
	return report("clear CR4.SMEP, jump to a user page", f, ret == PAYLOAD_RESULT ? "it ran in ring 0, returned 0x1337" : "?");
}

void pinbox_main(const struct pinbox_boot_info *bi)
{
	uint64_t cr0, cr4;
	read_cr(0, &cr0);
	read_cr(4, &cr4);
	pinbox_printf("boot: text %p-%p, data %p-%p, user payload %p; CR0 0x%lx, CR4 0x%lx, profile v%u\n", (void *)_stext,
		      (void *)_etext, (void *)_sdata, (void *)_edata, (void *)USER_PAYLOAD, cr0, cr4, bi->heki_profile);
	int fell = patch_text();
	fell += unlock_pte();
	fell += jump_to_data();
	fell += ret2usr();
	if (fell == 0) {
		pinbox_printf("verdict: every protection held\n");
		return;
	}
	pinbox_printf("verdict: %d protection%s fell\n", fell, fell == 1 ? "" : "s");
	pinbox_exit(fell);
}
