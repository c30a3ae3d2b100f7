/**
 * JSON text to a value, with the position of a syntax error. V8's JSON.parse does not always
 * say where it stopped (Node 20: "Unexpected token '}', "{"a": }" is not valid JSON"), so on
 * failure a small scanner of the RFC 8259 grammar finds the first offending character and
 * says what it expected there, as line, column and offset.
 */
import { readFileSync } from 'node:fs';

export interface JsonSyntaxProblem {
  readonly message: string;
  /** 0-based offset in the text (UTF-16 code units). */
  readonly offset: number;
  /** 1-based line and column. */
  readonly line: number;
  readonly column: number;
}

export type JsonParseResult = { ok: true; value: unknown } | { ok: false; problem: JsonSyntaxProblem };

/** A byte-order mark is allowed (and dropped): editors on some systems write one. */
export function parseJsonText(text: string): JsonParseResult {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  try {
    return { ok: true, value: JSON.parse(body) };
  } catch (e) {
    const found = locateJsonSyntaxError(body);
    const shift = body === text ? 0 : 1;
    const offset = (found?.offset ?? body.length) + shift;
    const message = found?.message ?? (e as Error).message;
    return { ok: false, problem: { message, offset, ...lineAndColumn(text, offset) } };
  }
}

export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

const MAX_DEPTH = 512;

class JsonSyntaxError {
  constructor(readonly offset: number, readonly message: string) {}
}

/** The first syntax error in `text`, or undefined if it is valid JSON. */
export function locateJsonSyntaxError(text: string): { offset: number; message: string } | undefined {
  let pos = 0;

  const describe = (at: number): string =>
    at >= text.length ? 'the end of the text' : `'${text[at]}'`;
  const fail = (expected: string, at = pos): never => {
    throw new JsonSyntaxError(at, `expected ${expected}, found ${describe(at)}`);
  };
  const skipSpace = (): void => {
    while (pos < text.length) {
      const c = text.charCodeAt(pos);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
      pos++;
    }
  };
  const literal = (word: string): void => {
    for (let i = 0; i < word.length; i++) {
      if (text[pos + i] !== word[i]) fail(`'${word}'`, pos + i);
    }
    pos += word.length;
  };
  const string = (): void => {
    pos++; // opening quote
    for (;;) {
      if (pos >= text.length) fail('a closing \'"\'');
      const c = text.charCodeAt(pos);
      if (c === 0x22) {
        pos++;
        return;
      }
      if (c < 0x20) {
        throw new JsonSyntaxError(pos, 'a control character must be escaped inside a string');
      }
      if (c === 0x5c) {
        const e = text[pos + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(pos + 2, pos + 6))) fail('four hex digits after \\u', pos + 2);
          pos += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) {
          pos += 2;
        } else {
          fail('an escape such as \\n or \\u0041 after \\', pos + 1);
        }
        continue;
      }
      pos++;
    }
  };
  const digits = (what: string): void => {
    if (!/[0-9]/.test(text[pos] ?? '')) fail(what);
    while (/[0-9]/.test(text[pos] ?? '')) pos++;
  };
  const number = (): void => {
    if (text[pos] === '-') pos++;
    if (text[pos] === '0') pos++;
    else digits('a digit');
    if (text[pos] === '.') {
      pos++;
      digits('a digit after the decimal point');
    }
    if (text[pos] === 'e' || text[pos] === 'E') {
      pos++;
      if (text[pos] === '+' || text[pos] === '-') pos++;
      digits('a digit in the exponent');
    }
  };
  /** An object or array body: items separated by commas up to `close`. */
  const sequence = (close: string, itemName: string, item: () => void): void => {
    pos++;
    skipSpace();
    if (text[pos] === close) {
      pos++;
      return;
    }
    for (;;) {
      item();
      skipSpace();
      if (text[pos] === ',') {
        pos++;
        continue;
      }
      if (text[pos] === close) {
        pos++;
        return;
      }
      fail(`',' or '${close}' after the ${itemName}`);
    }
  };
  const value = (depth: number): void => {
    if (depth > MAX_DEPTH) throw new JsonSyntaxError(pos, `nested more than ${MAX_DEPTH} levels deep`);
    skipSpace();
    const c = text[pos];
    if (c === '{') {
      sequence('}', 'property value', () => {
        skipSpace();
        if (text[pos] !== '"') fail('a property name in double quotes');
        string();
        skipSpace();
        if (text[pos] !== ':') fail("':' after the property name");
        pos++;
        value(depth + 1);
      });
    } else if (c === '[') {
      sequence(']', 'array element', () => value(depth + 1));
    } else if (c === '"') {
      string();
    } else if (c === 't') {
      literal('true');
    } else if (c === 'f') {
      literal('false');
    } else if (c === 'n') {
      literal('null');
    } else if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) {
      number();
    } else {
      fail('a value (object, array, string, number, true, false or null)');
    }
  };

  try {
    value(0);
    skipSpace();
    if (pos < text.length) fail('the end of the text after the value');
    return undefined;
  } catch (e) {
    if (e instanceof JsonSyntaxError) return { offset: e.offset, message: e.message };
    throw e;
  }
}

/** A text file's contents, or why it could not be read ("no such file", "is a directory", …). */
export function readTextFile(path: string): { ok: true; text: string } | { ok: false; why: string } {
  try {
    return { ok: true, text: readFileSync(path, 'utf8') };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return { ok: false, why: err.code === 'ENOENT' ? 'no such file' : err.code === 'EISDIR' ? 'is a directory' : err.message };
  }
}
