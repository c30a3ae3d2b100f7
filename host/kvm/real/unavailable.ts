/**
 * Why the real backend cannot be had on this host at all, as opposed to an ioctl failing
 * (a KvmError): each reason has its one-line answer in `pinbox probe`.
 */
export type UnavailableReason =
  /** Not Linux: /dev/kvm is a Linux device. */
  | 'not-linux'
  /** Not x86-64: KVM runs guests of the host's own architecture, and pinbox's guests are x86-64. */
  | 'not-x86-64'
  /** The optional package koffi is not installed or does not load. */
  | 'no-ffi'
  /** /dev/kvm answers an API version other than 12. */
  | 'api-version';

export class RealKvmUnavailable extends Error {
  override readonly name = 'RealKvmUnavailable';

  constructor(
    readonly reason: UnavailableReason,
    message: string,
  ) {
    super(message);
  }
}
