/*
 * An MSR survey from a C guest (examples/msr-probe.ts is its TypeScript twin): RDMSR of each MSR
 * through rdmsr_safe(), printing what the MSR table, the policy's filter and the VMM's answers
 * make of it — a value, or the fault.
 *
 *   pinbox run --policy examples/policies/harden.json --image msr-survey.elf
 *
 * It ends through the exit port with the number of MSRs whose read faulted: exit status
 * (n << 1) | 1.
 */
#include "pinbox.h"

static const struct {
	uint32_t index;
	const char *name;
} msrs[] = {
	{ 0x10, "IA32_TIME_STAMP_COUNTER" },
	{ 0x1b, "IA32_APIC_BASE" },
	{ 0x35, "MSR_CORE_THREAD_COUNT" },
	{ 0x3a, "IA32_FEATURE_CONTROL" },
	{ 0x277, "IA32_PAT" },
	{ 0xc0000080, "EFER" },
	{ 0xc0000081, "STAR" },
	{ 0xc0000082, "LSTAR" },
	{ 0xc0000084, "SFMASK" },
	{ 0xc0000100, "FS_BASE" },
	{ 0x4b564d00, "(not an MSR)" },
};

void pinbox_main(const struct pinbox_boot_info *bi)
{
	(void)bi;
	int faulted = 0;
	pinbox_printf("msr survey: %u MSRs\n", (unsigned)(sizeof(msrs) / sizeof(msrs[0])));
	for (unsigned i = 0; i < sizeof(msrs) / sizeof(msrs[0]); i++) {
		uint64_t value;
		struct pinbox_fault f = rdmsr_safe(msrs[i].index, &value);
		if (pinbox_faulted(f)) {
			faulted++;
			pinbox_printf("  %08x %-24s fault: vector %d, error code %u\n", msrs[i].index, msrs[i].name, f.vector, f.error_code);
		} else {
			pinbox_printf("  %08x %-24s 0x%lx\n", msrs[i].index, msrs[i].name, value);
		}
	}
	/* The write side: LSTAR is write-denied by the harden policy's filter. */
	struct pinbox_fault w = wrmsr_safe(0xc0000082, 0xffffffff81000000ul);
	pinbox_printf("  wrmsr LSTAR: %s\n", pinbox_faulted(w) ? "fault" : "accepted");
	pinbox_printf("msr survey: %d faulted\n", faulted);
	pinbox_exit(faulted);
}
