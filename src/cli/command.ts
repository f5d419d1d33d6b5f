import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Where a command writes: stdout for results, stderr for progress and problems. */
export interface CliIO {
  out(line: string): void;
  err(line: string): void;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/** One `otto` command. `run` returns the exit code; only the CLI's main turns it into an exit. */
export interface Command {
  name: string;
  summary: string;
  /** Full `--help` text (usage, options, examples). */
  help: string;
  options?: ParseArgsConfig['options'];
  /** Whether positional arguments are accepted. */
  positionals?: boolean;
  run(args: { values: Record<string, string | boolean | undefined>; positionals: string[]; io: CliIO }): Promise<number>;
}

/** An error in how a command was called; main prints it with a pointer to `--help`. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Parses argv for a command; throws UsageError for unknown options or stray arguments. */
export function parseCommandArgs(command: Command, argv: string[]): { values: Record<string, string | boolean | undefined>; positionals: string[]; help: boolean } {
  try {
    const parsed = parseArgs({
      args: argv,
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    const { help, ...values } = parsed.values as Record<string, string | boolean | undefined>;
    if (!command.positionals && parsed.positionals.length > 0) throw new UsageError(`unexpected argument ${parsed.positionals[0]}`);
    return { values, positionals: parsed.positionals, help: help === true };
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError((error as Error).message);
  }
}
