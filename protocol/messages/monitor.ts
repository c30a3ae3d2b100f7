/**
 * Monitor-role ops (PROTOCOL.md §6.3; docs/register-intercepts.md): a monitor stands for the
 * higher VTL of one VM — the VM its hello names — in the manner of Hyper-V's VSM. It sets which
 * register accesses of that VM's vCPUs are intercepted (HV_REGISTER_CR_INTERCEPT_CONTROL and its
 * masks, per vCPU or on all) and decides each intercept: by a standing reply, or one by one — the
 * VMM pushes an `intercept_pending` event, whose `seq` the monitor's answerIntercept names, and
 * the vCPU waits meanwhile. A connection that said hello as `monitor` with the server's token
 * reaches these ops and nothing else.
 */
import { nullable, object, optional, u32, u64 } from '../schema/index.js';
import { pinboxAnswer, pinboxAction } from './common.js';
import { type OpSpec, op } from './op.js';

const empty = object({});
const intercepts = { control: u64, cr0Mask: u64, cr4Mask: u64, miscEnableMask: u64 };

export const MONITOR_OPS = {
  /** PINBOX_SET_REG_INTERCEPTS on one vCPU, or on every vCPU of the VM; masks left out are all ones. */
  setRegisterIntercepts: op(
    'monitor',
    object({ vcpu: optional(u32), control: u64, cr0Mask: optional(u64), cr4Mask: optional(u64), miscEnableMask: optional(u64) }),
    empty,
  ),
  /** PINBOX_GET_REG_INTERCEPTS on one vCPU. */
  getRegisterIntercepts: op('monitor', object({ vcpu: u32 }), object(intercepts)),
  /**
   * From now on each intercept of the VM is pushed as an `intercept_pending` event (with `vm_reset`
   * and `vcpu_init`, which a monitor arms again after) and waits for answerIntercept, unless a
   * standing reply answers it. Without it, intercepts take the standing reply or the policy's answer.
   */
  watchIntercepts: op('monitor', empty, object({ sub: u32 })),
  /** Decides the pending intercept whose `intercept_pending` event had this `seq`. */
  answerIntercept: op('monitor', object({ seq: u64, action: pinboxAction, value: optional(u64), limit: optional(u32) }), empty),
  /** A standing answer to every intercept of the VM (null: none; ask, or the policy). */
  setInterceptReply: op('monitor', object({ reply: nullable(pinboxAnswer) }), empty),
} satisfies Record<string, OpSpec>;

export type MonitorOp = keyof typeof MONITOR_OPS;
