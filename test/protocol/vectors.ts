/**
 * Reads the test vectors of protocol/PROTOCOL.md §9: fenced ```vector blocks with a name, a
 * kind, a value in JSON (with `123n` for 64-bit integers and {"$bin": "hex"} for binaries)
 * and the frame's bytes in commented hex.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface Vector {
  name: string;
  kind: 'request' | 'response' | 'push';
  answers: string | undefined;
  encode: boolean;
  value: Record<string, unknown>;
  bytes: Uint8Array;
}

export const PROTOCOL_MD = fileURLToPath(new URL('../../../protocol/PROTOCOL.md', import.meta.url));

export function readProtocolMd(): string {
  return readFileSync(PROTOCOL_MD, 'utf8');
}

export function readVectors(markdown: string = readProtocolMd()): Vector[] {
  const blocks = [...markdown.matchAll(/^```vector\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
  return blocks.map(parseVector);
}

function parseVector(block: string): Vector {
  const [head, hex] = block.split(/^bytes:\n/m) as [string, string];
  const fields = new Map<string, string>();
  for (const line of head.split('\n')) {
    const m = /^(\w+): (.*)$/.exec(line);
    if (m) fields.set(m[1]!, m[2]!);
  }
  const name = fields.get('name')!;
  const bytes = hex
    .split('\n')
    .map((line) => line.replace(/;.*$/, '').trim())
    .filter((line) => line.length > 0)
    .flatMap((line) => line.split(/\s+/))
    .map((pair) => {
      if (!/^[0-9a-f]{2}$/.test(pair)) throw new Error(`vector ${name}: ${JSON.stringify(pair)} is not a hex byte`);
      return parseInt(pair, 16);
    });
  return {
    name,
    kind: fields.get('kind') as Vector['kind'],
    answers: fields.get('answers'),
    encode: fields.get('encode') !== 'no',
    value: parseExtendedJson(fields.get('value')!),
    bytes: Uint8Array.from(bytes),
  };
}

/** JSON where `123n` outside strings is a bigint and {"$bin": "hex"} is a Uint8Array. */
export function parseExtendedJson(text: string): Record<string, unknown> {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      out += c;
      if (c === '\\') out += text[++i];
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') {
      inString = true;
      out += c;
      continue;
    }
    const m = /^-?\d+n/.exec(text.slice(i));
    if (m && !/[\w.]/.test(text[i - 1] ?? '')) {
      out += `{"$bigint":"${m[0].slice(0, -1)}"}`;
      i += m[0].length - 1;
      continue;
    }
    out += c;
  }
  return JSON.parse(out, (_key, v) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      if (typeof v.$bigint === 'string') return BigInt(v.$bigint);
      if (typeof v.$bin === 'string') return Uint8Array.from(Buffer.from(v.$bin, 'hex'));
    }
    return v;
  }) as Record<string, unknown>;
}
