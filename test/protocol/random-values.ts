/** Seeded random values of the kinds a frame carries, for the codec's differential tests. */

const WORDS = ['op', 'id', 'index', 'value', 'exits', 'é', '€uro', '__proto__', 'a'.repeat(40), ''];

/** A random value of the kinds a frame carries, nested at most `depth` more levels. */
export function randomValue(next: () => number, depth: number): unknown {
  const pick = next() % (depth > 0 ? 9 : 6);
  switch (pick) {
    case 0: return (next() % 2 ? -1 : 1) * (next() % 3 === 0 ? next() : next() % 300);
    case 1: return BigInt(next()) << BigInt(next() % 32);
    case 2: return WORDS[next() % WORDS.length]!.slice(0, 1 + (next() % 50));
    case 3: return next() % 3 === 0 ? null : next() % 2 === 0;
    case 4: return Uint8Array.from({ length: next() % 20 }, () => next() & 0xff);
    case 5: return 'x'.repeat(next() % 300);
    case 6: case 7: {
      const map: Record<string, unknown> = {};
      const n = next() % 6;
      for (let i = 0; i < n; i++) map[`${WORDS[next() % 5]}${next() % 4}`] = randomValue(next, depth - 1);
      return map;
    }
    default: return Array.from({ length: next() % 5 }, () => randomValue(next, depth - 1));
  }
}
