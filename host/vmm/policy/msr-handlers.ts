/**
 * A policy's `msrHandlers` to a lookup by MSR index. Defaults: a read is denied unless a value
 * is given; a write is denied unless "accept" or "store"; with "store", reads return what this
 * vCPU last wrote (the given read value, or 0, until then) — so "deny" for reads contradicts it.
 */
import type { MsrHandler, MsrReadAnswer } from './compiled.js';
import type { MsrHandlerText } from './document.js';
import { pointer, type IssueList } from './errors.js';
import { toBigInt, toU32 } from './numbers.js';
import { hex } from '../../../protocol/notation.js';

export function compileMsrHandlers(
  texts: Readonly<Record<string, MsrHandlerText>> | undefined,
  path: string,
  issues: IssueList,
): Map<number, MsrHandler> {
  const table = new Map<number, MsrHandler>();
  const keyOf = new Map<number, string>();
  for (const [key, text] of Object.entries(texts ?? {})) {
    const here = path + pointer(key);
    const index = toU32(key.startsWith('0x') ? key : Number(key));
    if (index > 0xffffffff) {
      issues.add(here, `${key} is not a 32-bit MSR index`);
      continue;
    }
    const earlier = keyOf.get(index);
    if (earlier !== undefined) {
      issues.add(here, `names MSR ${hex(index)} again (as ${path + pointer(earlier)} does)`);
      continue;
    }
    keyOf.set(index, key);
    const write = text.write ?? 'deny';
    let read: MsrReadAnswer;
    if (write === 'store') {
      if (text.read === 'deny') {
        issues.add(here + '/read', '"deny" contradicts write "store", whose stored value later reads return');
        continue;
      }
      read = { kind: 'stored', initial: text.read === undefined ? 0n : toBigInt(text.read) };
    } else if (text.read === undefined || text.read === 'deny') {
      read = { kind: 'deny' };
    } else {
      read = { kind: 'value', value: toBigInt(text.read) };
    }
    table.set(index, { index, read, write });
  }
  return table;
}
