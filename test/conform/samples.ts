/** Scenario documents the runner's tests share. */

/** The example scenario of issue 6, verbatim. */
export const ISSUE_EXAMPLE = {
  name: 'filtered RDMSR goes to user space and the reply decides',
  source: 'where the expected behaviour comes from (spec section, kernel file, patch)',
  vm: { profile: 'v2', vcpus: 1, hostCr0: '0x80050033', hostCr4: ['smep', 'smap', 'umip', 'fsgsbase'], guestCpuid: { smep: true, smap: true } },
  steps: [
    { host: { enableCap: { cap: 'KVM_CAP_X86_USER_SPACE_MSR', args: ['0x4'] } }, expect: { ok: true } },
    {
      host: { setMsrFilter: { flags: ['DEFAULT_ALLOW'], ranges: [{ flags: ['READ', 'WRITE'], base: '0xda0', nmsrs: 1, bitmap: '00' }] } },
      expect: { ok: true },
    },
    {
      guest: { vcpu: 0, cpl: 0, op: 'rdmsr', index: '0xda0' },
      vmm: { msr: { error: 0, data: '0x1122334455667788' } },
      expect: {
        value: '0x1122334455667788',
        exits: [{ reason: 'KVM_EXIT_X86_RDMSR', msr: { reason: 'FILTER', index: '0xda0', data: '0x0' } }],
      },
    },
    { host: { enableCap: { cap: 'KVM_CAP_HEKI_DENIAL', args: ['0x2'] } }, expect: { ok: true } },
    { guest: { op: 'hypercall', nr: 13, args: ['0x4', '0x100000', '0x0'] }, expect: { ret: '0x0' } },
    {
      guest: { op: 'writeCr', cr: 4, value: '0x6a0' },
      expect: {
        fault: { vector: 13, errorCode: 0 },
        exits: [{ reason: 'KVM_EXIT_HEKI_DENIAL', heki: { reason: 'CR4', value: '0x6a0' } }],
      },
    },
  ],
};

/** A minimal scenario around the given steps (and vm block, if any). */
export function scenarioWith(steps: unknown[], vm?: Record<string, unknown>): Record<string, unknown> {
  return { name: 'sample', source: 'test', ...(vm !== undefined && { vm }), steps };
}
