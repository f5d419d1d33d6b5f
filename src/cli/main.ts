import { ConfigError } from '../config.ts';
import { isStorageError } from '../storage/contract.ts';
import { ottoVersion } from '../version.ts';
import { UsageError, parseCommandArgs, type CliIO, type Command } from './command.ts';
import { migrateCommand } from './commands/migrate.ts';
import { mirrorCommand } from './commands/mirror.ts';
import { serveCommand } from './commands/serve.ts';
import { transferCommand } from './commands/transfer.ts';
import { verifyCommand } from './commands/verify.ts';
import { exportCommand } from './commands/export.ts';
import { importCommand } from './commands/import.ts';
import { doctorCommand } from './commands/doctor.ts';
import { secretsCommand } from './commands/secrets.ts';
import { webhooksCommand } from './commands/webhooks.ts';
import { usageCommand } from './commands/usage.ts';
import { keysCommand, purgeCommand, usersCommand } from './commands/accounts.ts';

/** Every command, in the order `otto --help` lists them. */
export const commands: Command[] = [serveCommand, migrateCommand, mirrorCommand, transferCommand, verifyCommand, exportCommand, importCommand, doctorCommand, usersCommand, keysCommand, purgeCommand, secretsCommand, webhooksCommand, usageCommand];

function overview(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    `Otto ${ottoVersion} — a self-hosted bot platform`,
    '',
    'Usage: otto <command> [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `otto <command> --help` for a command\'s options.',
    'Configuration comes from the environment (and ./.env); see the README.',
  ].join('\n');
}

const defaultIO: CliIO = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
  cwd: process.cwd(),
};

/** Runs the CLI with argv (without node and script); returns the exit code. Never calls process.exit. */
export async function main(argv: string[], io: CliIO = defaultIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(overview());
    return 0;
  }
  if (name === '--version' || name === '-v') {
    io.out(ottoVersion);
    return 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    io.err(`otto: unknown command ${JSON.stringify(name)}. Run \`otto --help\` to list commands.`);
    return 2;
  }
  try {
    const parsed = parseCommandArgs(command, rest);
    if (parsed.help) {
      io.out(command.help);
      return 0;
    }
    return await command.run({ values: parsed.values, positionals: parsed.positionals, io });
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`otto ${command.name}: ${error.message}. Run \`otto ${command.name} --help\`.`);
      return 2;
    }
    if (error instanceof ConfigError) {
      io.err(`otto: ${error.message}`);
      return 78;
    }
    if (isStorageError(error)) {
      io.err(`otto ${command.name}: storage ${error.code}: ${error.message}`);
      return 1;
    }
    io.err(`otto ${command.name}: ${(error as Error).stack ?? String(error)}`);
    return 1;
  }
}
