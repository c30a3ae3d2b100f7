import test from 'ava';
import { lineAndColumn, locateJsonSyntaxError, parseJsonText } from '../../host/vmm/policy/json-text.js';

test('valid JSON has no syntax error, whatever JSON.parse accepts', (t) => {
  for (const text of ['{}', '[]', ' {"a": [1, -2.5e+3, true, false, null, "x\\u0041\\n"]} ', '0', '"s"', '[[[]]]']) {
    t.is(locateJsonSyntaxError(text), undefined, text);
    t.notThrows(() => JSON.parse(text));
  }
});

test('the first offending character and what was expected there', (t) => {
  const cases: [string, number, RegExp][] = [
    ['', 0, /expected a value.*found the end of the text/],
    ['{"a": 1', 7, /',' or '}' after the property value/],
    ['{"a" 1}', 5, /':' after the property name/],
    ['[1 2]', 3, /',' or ']' after the array element/],
    ['{"a": tru}', 9, /expected 'true'/],
    ['{"a": "x\ny"}', 8, /control character/],
    ['"\\q"', 2, /escape/],
    ['"\\u12g4"', 3, /four hex digits/],
    ['{"a": 01}', 7, /',' or '}'/],
    ['-', 1, /a digit/],
    ['1.', 2, /after the decimal point/],
    ['{"a": "unterminated', 19, /closing '"'/],
    ['{} {}', 3, /end of the text after the value/],
    ['['.repeat(600), 513, /nested more than 512 levels/],
  ];
  for (const [text, offset, message] of cases) {
    t.true(((): boolean => { try { JSON.parse(text); return false; } catch { return true; } })(), `JSON.parse also rejects ${text.slice(0, 20)}`);
    const found = locateJsonSyntaxError(text);
    t.is(found?.offset, offset, text.slice(0, 20));
    t.regex(found?.message ?? '', message, text.slice(0, 20));
  }
});

test('positions count lines and columns from 1, after an optional byte-order mark', (t) => {
  t.deepEqual(lineAndColumn('ab\ncd\nef', 7), { line: 3, column: 2 });
  const r = parseJsonText('\ufeff{\n "a": }');
  t.false(r.ok);
  if (!r.ok) t.like(r.problem, { line: 2, column: 7, offset: 9 }); // offsets count the mark, as the file holds it
  const ok = parseJsonText('\ufeff{"a": 1}');
  t.deepEqual(ok, { ok: true, value: { a: 1 } });
});
