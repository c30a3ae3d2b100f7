/*
 * The demo's story in C (examples/harden.ts is its TypeScript twin): a guest kernel locks its
 * control registers with Heki at the end of its boot, then plays the attacker — kernel code
 * execution trying to turn SMEP and CR0.WP off — and prints a verdict.
 *
 *   pinbox run --policy examples/policies/harden.json --image harden.elf
 *   pinbox run --policy examples/policies/harden.json --image harden.elf --vcpus 2
 *   pinbox run --policy examples/policies/harden.json --image harden.elf --append nopin
 *
 * With one vCPU it does both; with more, vCPU 0 pins and the last vCPU attacks (pins are per VM:
 * they hold on every vCPU). `--append nopin` skips the pinning, to see the attack succeed.
 * Every protection held: it halts (exit status 0). Otherwise it ends through the exit port with
 * the number of protections that fell: exit status (n << 1) | 1.
 */
#include "pinbox.h"

static volatile int pinned;

static void lock(const struct pinbox_boot_info *bi)
{
	long version = heki_version();
	pinbox_printf("heki: version %ld\n", version);
	if (bi->cmdline_len > 0 && pinbox_streq(bi->cmdline, "nopin")) {
		pinbox_printf("heki: not pinning (command line \"%s\")\n", bi->cmdline);
		return;
	}
	long r = heki_lock_down(bi->heki_profile);
	pinbox_printf("heki: lock-down %s (%ld), profile v%u\n", r == 0 ? "done" : "FAILED", r, bi->heki_profile);
}

/* One attack: write `value` to CRn; it is refused when it faults. Returns 1 when it got through. */
static int attack(const char *what, int cr, uint64_t value)
{
	struct pinbox_fault f = write_cr(cr, value);
	if (pinbox_faulted(f)) {
		pinbox_printf("attack: %-22s -> blocked: vector %d (#%s), error code %u\n", what, f.vector,
			      f.vector == PINBOX_GP ? "GP" : "?", f.error_code);
		return 0;
	}
	pinbox_printf("attack: %-22s -> got through: CR%d is now 0x%lx\n", what, cr, value);
	return 1;
}

void pinbox_main(const struct pinbox_boot_info *bi)
{
	int attacker = bi->vcpu == bi->vcpus - 1;
	if (bi->vcpu == 0) {
		pinbox_printf("boot: vCPU %u of %u, %lu MiB, command line \"%s\"\n", bi->vcpu, bi->vcpus,
			      bi->memory_size >> 20, bi->cmdline);
		lock(bi);
		pinned = 1;
	}
	if (!attacker)
		return;
	while (!pinned)
		;
	uint64_t cr0, cr4;
	read_cr(0, &cr0);
	read_cr(4, &cr4);
	pinbox_printf("vCPU %u attacks: CR0 0x%lx, CR4 0x%lx\n", bi->vcpu, cr0, cr4);
	int fell = attack("clear CR4.SMEP", 4, cr4 & ~X86_CR4_SMEP);
	fell += attack("clear CR0.WP", 0, cr0 & ~X86_CR0_WP);
	if (fell == 0) {
		pinbox_printf("verdict: every protection held\n");
		return;
	}
	pinbox_printf("verdict: %d protection%s fell\n", fell, fell == 1 ? "" : "s");
	pinbox_exit(fell);
}
