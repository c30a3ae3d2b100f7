/** Runs `pinbox` in this process with captured output. */
import { pinboxMain } from '../../host/cli/main.js';

export interface Ran {
  code: number;
  out: string;
  err: string;
}

export async function pinbox(argv: string[], untilStopped: () => Promise<unknown> = () => new Promise(() => {})): Promise<Ran> {
  let out = '';
  let err = '';
  const code = await pinboxMain(argv, { out: (t) => void (out += t), err: (t) => void (err += t) }, { untilStopped });
  return { code, out, err };
}
