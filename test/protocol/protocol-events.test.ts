/**
 * PROTOCOL.md §6.2 lists every event with every field, generated from the catalogue
 * (protocol/events/reference.ts): this test fails when the two differ, and with
 * PINBOX_WRITE_PROTOCOL=1 writes the list into PROTOCOL.md instead. The push vector of §9.8 is an
 * event of the catalogue, with exactly its fields.
 */
import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { eventReference } from '../../protocol/events/reference.js';
import { eventProblems, eventFromWire, EVENT_NAMES } from '../../protocol/events/index.js';
import { parseServerMessage } from '../../protocol/envelope.js';
import { readVectors } from './vectors.js';

const PROTOCOL = 'protocol/PROTOCOL.md';
const BEGIN = '<!-- events:begin -->\n';
const END = '<!-- events:end -->';

test('PROTOCOL.md §6.2 is the catalogue, every event and field', (t) => {
  const text = readFileSync(PROTOCOL, 'utf8');
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  t.true(start > 0 && end > start, 'the generated block\'s markers are in §6.2');
  const generated = '\n' + eventReference() + '\n';
  if (process.env.PINBOX_WRITE_PROTOCOL === '1') {
    writeFileSync(PROTOCOL, text.slice(0, start + BEGIN.length) + generated + text.slice(end));
    t.pass();
    return;
  }
  t.is(text.slice(start + BEGIN.length, end), generated, 'run: PINBOX_WRITE_PROTOCOL=1 npx ava build/test/protocol/protocol-events.test.js');
  for (const name of EVENT_NAMES) t.true(text.includes(`#### \`${name}\``), name);
});

test('the push vector carries an event of the catalogue, with its fields as a VMM sends them', (t) => {
  const push = readVectors().find((v) => v.kind === 'push');
  t.truthy(push);
  const message = parseServerMessage(push!.value);
  if (message.kind !== 'push') throw new Error('not a push');
  t.deepEqual(eventProblems(eventFromWire(message.event)), []);
});
