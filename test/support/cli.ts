import { main } from '../../src/cli/main.ts';
import type { CliIO } from '../../src/cli/command.ts';

/** Runs the CLI in this process with `env` (and `cwd`, default this process's). Returns its exit code and what it printed. */
export async function cli(argv: string[], env: NodeJS.ProcessEnv, cwd = process.cwd()): Promise<{ code: number; out: string; err: string }> {
  const captured = captureIO(env, cwd);
  const code = await main(argv, captured.io);
  return { code, out: captured.out.join('\n'), err: captured.err.join('\n') };
}

/**
 * An `io` for `main(argv, io)` that keeps what the CLI prints: `out` and `err` line by line,
 * `text()` both (stdout first), for assertion messages.
 */
export function captureIO(env: NodeJS.ProcessEnv = {}, cwd = process.cwd()): { io: CliIO; out: string[]; err: string[]; text(): string } {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l), env, cwd }, out, err, text: () => [...out, ...err].join('\n') };
}
