/**
 * Compile-time checks of the types the schemas derive (run by `tsc --noEmit` in `npm test`; not
 * an ava file). A wrong derivation fails the type check.
 */
import type { Event, Exit, Fault, HelloParams, ParamsOf, Regs, Request, ResultOf } from '../../protocol/index.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
function expectType<_T extends true>(): void {}

expectType<Equal<ParamsOf<'rdmsr'>, { index: number; cpl?: 0 | 3 }>>();
expectType<Equal<ParamsOf<'wrmsr'>, { index: number; value: bigint; cpl?: 0 | 3 }>>();
expectType<Equal<ParamsOf<'readCr'>['cr'], 0 | 2 | 3 | 4 | 8>>();
expectType<Equal<ResultOf<'rdmsr'>, { value?: bigint; fault?: Fault; exits: Exit[]; exitsDropped?: number }>>();
expectType<Equal<ResultOf<'hypercall'>['ret'], bigint | undefined>>();
expectType<Equal<ResultOf<'exec'>['stop'], 'end' | 'hlt' | 'fault' | 'budget' | 'shutdown' | 'exception_loop' | 'exits' | 'time'>>();
expectType<Equal<ResultOf<'exec'>['regs'], Regs>>();
expectType<Equal<Regs['rflags'], bigint>>();
expectType<Equal<ParamsOf<'exec'>['code'], Uint8Array>>();
expectType<Equal<ParamsOf<'setMsrFilter'>['ranges'][number]['bitmap'], Uint8Array | null>>();
expectType<Equal<ResultOf<'checkExtension'>, { value: number }>>();
expectType<Equal<ParamsOf<'setMsrExitReply'>['msr'], { error: number; data: bigint } | 'untouched' | null>>();
expectType<Equal<ResultOf<'releaseExit'>, { held: boolean }>>();
expectType<Equal<Event['fields'], Record<string, bigint | string | boolean>>>();
expectType<Equal<HelloParams['role'], 'guest' | 'control' | 'monitor'>>();
expectType<Equal<Extract<Request, { op: 'lmsw' }>, { op: 'lmsw'; value: number; cpl?: 0 | 3 }>>();
expectType<Equal<ParamsOf<'batch'>['ops'][number]['op'], 'hypercall' | 'rdmsr' | 'wrmsr' | 'readCr' | 'writeCr' | 'lmsw' | 'clts' | 'cpuid' | 'exec'>>();
