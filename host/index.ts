/** pinbox/host: the modelled x86-64 core, the KVM model and the test VMM. */
export type { Intercept, InterceptKind } from './x86/intercept.js';
export type { Regs, Sregs, Segment, DescriptorTable } from './x86/state.js';
export * from './kvm/index.js';
