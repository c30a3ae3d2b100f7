/** What the protocol knows about one op: who may send it, its parameters, its result. */
import type { ObjectSchema, Schema } from '../schema/index.js';

/** guest: a guest kernel on one vCPU; control: the host's user space; monitor: a VM's higher VTL (docs/register-intercepts.md). */
export type Role = 'guest' | 'control' | 'monitor';
export const ROLES: readonly Role[] = ['guest', 'control', 'monitor'];

export interface OpSpec<P = any, R = any> {
  /** The role whose connections may send the op; `any` is hello alone. */
  readonly role: Role | 'any';
  readonly params: ObjectSchema<any, P>;
  /** The result schema for a request with these params (only batch's depends on them). */
  resultFor(params: P): Schema<R>;
}

export function op<P, R>(role: Role | 'any', params: ObjectSchema<any, P>, result: Schema<R>): OpSpec<P, R> {
  return { role, params, resultFor: () => result };
}

export type ParamsOfSpec<S> = S extends OpSpec<infer P, any> ? P : never;
export type ResultOfSpec<S> = S extends OpSpec<any, infer R> ? R : never;
