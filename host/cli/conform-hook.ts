/**
 * Where `pinbox conform` plugs in: the conformance runner (host/conform, another part of
 * pinbox) registers its command here; until it does, the command says so and exits 2.
 */
import type { ParsedCommand } from './args.js';
import type { Output } from './output.js';

export type ConformCommand = (args: ParsedCommand, io: Output) => Promise<number>;

let registered: ConformCommand | undefined;

export function registerConformCommand(command: ConformCommand): void {
  registered = command;
}

export function conformCommand(args: ParsedCommand, io: Output): Promise<number> {
  if (registered !== undefined) return registered(args, io);
  io.err('pinbox conform: the conformance runner is not part of this build yet\n');
  return Promise.resolve(2);
}
