/**
 * How the VMM refuses or ends a guest operation. These are ProtocolErrors, so the servers send
 * them as they are; in-process callers get the same typed values.
 *
 * Besides the protocol's general codes (`limit`, `not_found`, `invalid_message`, `internal`), the
 * VMM uses six for what happens to a VM or vCPU (PROTOCOL.md §7 lists them with the others):
 *
 *   vm_killed            the VM was killed (onDenial "kill", onShutdown "kill", or killVm):
 *                        the operation and every later one on the VM fail; a VM reset revives it
 *   vm_reset             the VM was reset while the operation waited (paused, or in an exit
 *                        handler): the operation is abandoned; later ones run on the reset VM
 *   vcpu_init            the vCPU got INIT (initVcpu) while the operation waited: abandoned, as
 *                        for vm_reset, but only on that vCPU
 *   guest_shutdown       the vCPU shut down (triple fault) during an operation that has no
 *                        `stop` to report it (every op but exec); what became of the VM is
 *                        the policy's onShutdown
 *   invalid_guest_state  KVM refused to enter the guest (KVM_EXIT_FAIL_ENTRY): a control client
 *                        loaded a state the core cannot run; initVcpu or resetVm mends it
 *   host_unsupported     the host's KVM cannot do what the operation needs: on a real kernel
 *                        whose CPL0 hypercalls never complete (a PVM host), a hypercall that
 *                        KVM_RUN's deadline ended with the VMCALL not retired
 */
import { ProtocolError } from '../../protocol/errors.js';
import { KvmError } from '../kvm/api/errors.js';

export type VmmErrorCode = 'vm_killed' | 'vm_reset' | 'vcpu_init' | 'guest_shutdown' | 'invalid_guest_state' | 'host_unsupported';

export class VmmError extends ProtocolError {
  override readonly code: VmmErrorCode;

  constructor(code: VmmErrorCode, message: string) {
    super(code, message);
    this.name = 'VmmError';
    this.code = code;
  }
}

/** A resource limit (PROTOCOL.md `limit`), naming the limit and how to raise it. */
export function limitError(message: string): ProtocolError {
  return new ProtocolError('limit', message);
}

export function notFound(message: string, path?: string): ProtocolError {
  return new ProtocolError('not_found', message, path === undefined ? {} : { path });
}

/**
 * A KVM refusal as the protocol carries it: `kvm_error` with the errno's name. (KvmError keeps
 * the number in `errno` and the name in `code`; the protocol wants the name.)
 */
export function kvmRefusal(error: unknown): unknown {
  if (error instanceof KvmError) return new ProtocolError('kvm_error', error.message, { errno: error.code });
  return error;
}
