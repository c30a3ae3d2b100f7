/**
 * Policy in, compiled policy out — or a PolicyError naming every problem: an unreadable file,
 * text that is not JSON (with the line, column and offset where it stops being JSON), schema
 * violations and pinbox's own checks, each with its JSON path.
 */
import { compilePolicy } from './compile.js';
import type { CompiledPolicy } from './compiled.js';
import type { PolicyDocument } from './document.js';
import { PolicyError } from './errors.js';
import { parseJsonText, readTextFile } from './json-text.js';
import { schemaIssues } from './schema-check.js';

/** A parsed JSON value (e.g. from the control endpoint) to a compiled policy. */
export function parsePolicy(value: unknown, source?: string): CompiledPolicy {
  const issues = schemaIssues(value);
  if (issues.length > 0) throw new PolicyError(issues, source);
  return compilePolicy(value as PolicyDocument, source);
}

/** JSON text to a compiled policy; `source` names it in messages (a file name). */
export function parsePolicyText(text: string, source?: string): CompiledPolicy {
  const parsed = parseJsonText(text);
  if (!parsed.ok) {
    const { line, column, offset, message } = parsed.problem;
    throw new PolicyError(
      [{ path: '', message: `not valid JSON at line ${line}, column ${column} (offset ${offset}): ${message}` }],
      source,
    );
  }
  return parsePolicy(parsed.value, source);
}

export function loadPolicyFile(path: string): CompiledPolicy {
  const read = readTextFile(path);
  if (!read.ok) throw new PolicyError([{ path: '', message: `cannot read the policy file: ${read.why}` }], path);
  return parsePolicyText(read.text, path);
}
