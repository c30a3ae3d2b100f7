/**
 * How the examples tell what happened: numbered steps, what the guest did and saw, and — with
 * an embedded VMM — what the VMM saw, indented under the step, wrapped for a terminal.
 */
export interface Story {
  /** A numbered step: "1. Does the hypervisor support Heki?" */
  step(title: string): void;
  /** What the guest did or saw. */
  guest(text: string): void;
  /** What the VMM saw. */
  vmm(text: string): void;
  /** What a control client did or saw. */
  control(text: string): void;
  /** What a monitor, the higher trust level (VTL1) of register intercepts, decided. */
  vtl1(text: string): void;
  /** A paragraph of its own. */
  text(paragraph: string): void;
  /** An item of a list. */
  bullet(text: string): void;
}

const WIDTH = 100;

function wrap(text: string, first: string, rest: string): string {
  const lines: string[] = [];
  let line = first;
  let empty = true;
  for (const word of text.split(' ')) {
    if (!empty && line.length + 1 + word.length > WIDTH) {
      lines.push(line);
      line = rest + word;
    } else {
      line += (empty ? '' : ' ') + word;
    }
    empty = false;
  }
  lines.push(line);
  return lines.join('\n') + '\n';
}

export function printedStory(write: (text: string) => void): Story {
  let n = 0;
  return {
    step: (title) => write('\n' + wrap(title, `${++n}. `, '   ')),
    guest: (text) => write(wrap(text, '   guest  ', '          ')),
    vmm: (text) => write(wrap(text, '   VMM    ', '          ')),
    control: (text) => write(wrap(text, '   ctl    ', '          ')),
    vtl1: (text) => write(wrap(text, '   VTL1   ', '          ')),
    text: (paragraph) => write(wrap(paragraph, '', '')),
    bullet: (text) => write(wrap(text, '  - ', '    ')),
  };
}
