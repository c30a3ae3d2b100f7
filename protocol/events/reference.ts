/**
 * The event catalogue as Markdown: PROTOCOL.md §6.2's list of every event and field is this
 * text, and a test keeps the two the same (test/protocol/protocol-events.test.ts, which also
 * writes it back when asked).
 */
import { EVENT_CATALOGUE, EVENT_NAMES, type EventFieldSpec, type EventFieldType, type EventSpec } from './catalogue.js';
import { isHexField } from './json.js';

/** The wire type of a catalogue field (PROTOCOL.md §4.2). */
const WIRE_TYPE: Readonly<Record<EventFieldType, string>> = { u64: 'u64', u32: 'u32', number: 'i32', string: 'str', bool: 'bool' };

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function fieldRow(name: string, spec: EventFieldSpec): string {
  const notation = spec.type === 'string' || spec.type === 'bool' ? '' : isHexField(spec) ? 'hex' : 'decimal';
  const names = spec.symbols === undefined ? '' : ` Names: ${Object.entries(spec.symbols).map(([v, n]) => `${v} ${n}`).join(', ')}.`;
  return `| \`${name}\`${spec.optional ? '?' : ''} | ${WIRE_TYPE[spec.type]} | ${notation} | ${cell(spec.description + names)} |`;
}

/** Every event, in catalogue order, with its fields. */
export function eventReference(): string {
  const parts = EVENT_NAMES.map((name) => {
    const spec: EventSpec = EVENT_CATALOGUE[name];
    const fields = Object.entries(spec.fields as Readonly<Record<string, EventFieldSpec>>);
    const source = spec.tracepoint === undefined ? 'pinbox\'s own' : `the kernel tracepoint \`${spec.tracepoint}\``;
    const table = fields.length === 0
      ? 'No fields.'
      : ['| field | type | written in | meaning |', '| --- | --- | --- | --- |', ...fields.map(([f, s]) => fieldRow(f, s))].join('\n');
    return `#### \`${name}\`\n\n${cell(spec.description)} (${source}.)\n\n${table}`;
  });
  return parts.join('\n\n') + '\n';
}
