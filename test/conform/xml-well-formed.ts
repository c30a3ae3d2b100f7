/**
 * A strict reader for the XML subset the JUnit reporter writes (XML 1.0: a declaration, one
 * root element, elements, attributes, text, entity and character references; no DTD, comments,
 * CDATA or processing instructions). It throws on anything not well-formed and gives back the
 * tree, so tests can check the document's content as a CI system would read it.
 */

export interface XmlElement {
  readonly name: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly children: XmlElement[];
  text: string;
}

const NAME = /^[A-Za-z_:][A-Za-z0-9_.:-]*/;
const ENTITY = /^&(amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);/;
const PREDEFINED: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
const NOT_XML_CHAR = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

/** Character data with its references resolved; throws on a raw '<' or a bad '&'. */
function decode(raw: string, where: string): string {
  if (NOT_XML_CHAR.test(raw)) throw new Error(`a character XML cannot hold in ${where}`);
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === '<') throw new Error(`raw '<' in ${where}`);
    if (c !== '&') {
      out += c;
      continue;
    }
    const m = ENTITY.exec(raw.slice(i));
    if (m === null) throw new Error(`bad reference in ${where}: ${raw.slice(i, i + 12)}`);
    const ref = m[1]!;
    out += ref.startsWith('#x') ? String.fromCodePoint(parseInt(ref.slice(2), 16)) : ref.startsWith('#') ? String.fromCodePoint(Number(ref.slice(1))) : PREDEFINED[ref]!;
    i += m[0].length - 1;
  }
  return out;
}

export function parseXml(text: string): XmlElement {
  let at = 0;
  const decl = /^<\?xml version="1\.0" encoding="UTF-8"\?>\n/.exec(text);
  if (decl === null) throw new Error('no XML declaration');
  at = decl[0].length;
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  while (at < text.length) {
    const lt = text.indexOf('<', at);
    const chunk = lt === -1 ? text.slice(at) : text.slice(at, lt);
    const content = decode(chunk, 'text');
    if (stack.length === 0) {
      if (content.trim() !== '') throw new Error(`text outside the root element: ${JSON.stringify(content)}`);
    } else {
      stack[stack.length - 1]!.text += content;
    }
    if (lt === -1) break;
    at = lt + 1;
    if (text[at] === '/') {
      const name = NAME.exec(text.slice(at + 1))?.[0];
      const open = stack.pop();
      if (name === undefined || open?.name !== name || text[at + 1 + name.length] !== '>') throw new Error(`mismatched end tag at ${lt}`);
      at += name.length + 2;
      continue;
    }
    const name = NAME.exec(text.slice(at))?.[0];
    if (name === undefined) throw new Error(`bad tag at ${lt}`);
    at += name.length;
    const attributes: Record<string, string> = {};
    for (;;) {
      const m = /^\s+([A-Za-z_:][A-Za-z0-9_.:-]*)="([^"]*)"/.exec(text.slice(at));
      if (m === null) break;
      if (Object.hasOwn(attributes, m[1]!)) throw new Error(`attribute ${m[1]} twice on <${name}>`);
      attributes[m[1]!] = decode(m[2]!, `attribute ${m[1]}`);
      at += m[0].length;
    }
    const end = /^\s*(\/?)>/.exec(text.slice(at));
    if (end === null) throw new Error(`bad tag <${name}> at ${lt}`);
    at += end[0].length;
    const element: XmlElement = { name, attributes, children: [], text: '' };
    if (stack.length > 0) stack[stack.length - 1]!.children.push(element);
    else if (root === undefined) root = element;
    else throw new Error('a second root element');
    if (end[1] !== '/') stack.push(element);
  }
  if (stack.length > 0) throw new Error(`<${stack[stack.length - 1]!.name}> is never closed`);
  if (root === undefined) throw new Error('no root element');
  return root;
}
