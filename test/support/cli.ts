import { main } from '../../src/cli/main.ts';

/** Runs the CLI in this process with `env` (and `cwd`, default this process's). Returns its exit code and what it printed. */
export async function cli(argv: string[], env: NodeJS.ProcessEnv, cwd = process.cwd()): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (l) => out.push(l), err: (l) => err.push(l), env, cwd });
  return { code, out: out.join('\n'), err: err.join('\n') };
}
