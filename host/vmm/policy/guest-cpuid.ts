/**
 * The guest CPUID features a policy can turn on or off. The KVM model reads the same names in
 * `createVm({ guestCpuid })`; a feature the policy leaves out keeps the model's default.
 */
export const GUEST_CPUID_FEATURES = [
  'smep', 'smap', 'umip', 'fsgsbase', 'pku', 'la57', 'cet', 'x2apic', 'nx', 'pcid', 'rdtscp',
  'xsave', 'specCtrl', 'vmx',
] as const;

export type GuestCpuidFeature = (typeof GUEST_CPUID_FEATURES)[number];

export type GuestCpuidSettings = Partial<Record<GuestCpuidFeature, boolean>>;
