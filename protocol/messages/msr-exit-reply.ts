/**
 * How user space answers a user-space MSR exit (setMsrExitReply): `{ error, data }` written to
 * kvm_run.msr before KVM_RUN is called again, or "untouched" — KVM_RUN again without writing
 * kvm_run.msr at all, so the guest gets what KVM left there (docs/msr-filter.md §7 case 6: a
 * read returns 0 and retires).
 */
import { type Infer, Schema, object, u64, u8 } from '../schema/index.js';

export const UNTOUCHED = 'untouched';

const answer = object({ error: u8, data: u64 });
export type MsrExitReply = Infer<typeof answer> | typeof UNTOUCHED;

export class MsrExitReplySchema extends Schema<MsrExitReply> {
  readonly expected = `a map { error: u8, data: u64 } or the string "${UNTOUCHED}"`;

  parse(v: unknown): MsrExitReply {
    if (v === UNTOUCHED) return UNTOUCHED;
    return typeof v === 'string' ? this.fail(v) : answer.parse(v);
  }
  override wire(v: unknown): unknown {
    if (v === UNTOUCHED) return UNTOUCHED;
    return typeof v === 'string' ? this.fail(v) : answer.wire(v);
  }
}

export const msrExitReply = new MsrExitReplySchema();
