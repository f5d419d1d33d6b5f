/**
 * `otto import --parlant <folder|mongodb://…/<db>>`: the CLI side of the Parlant import. It
 * opens the configured store (with its change log, so mirrors get the new bots), runs
 * `importParlant` and prints the report; the library does the work.
 */
import { resolve } from 'node:path';
import { loadConfig, withDotEnv } from '../../config.ts';
import { importParlant, readParlant, type ParlantImportReport } from '../../import/parlant/index.ts';
import { BotRegistry } from '../../services/registry.ts';
import { BotService } from '../../services/bots.ts';
import { UsageError, type CliIO } from '../command.ts';
import { openImportTarget } from './export.ts';

/** The options `otto import` takes for a Parlant import. */
export const parlantOptions = {
  parlant: { type: 'string' },
  owner: { type: 'string' },
  'tool-base-url': { type: 'string' },
  json: { type: 'boolean' },
} as const;

export const parlantHelp = `Importing from Parlant:
  otto import --parlant <folder|mongodb://host[:port]/<database>> [--owner <id>] [--tool-base-url <url>] [--json]

Reads Parlant's JSON-file stores (a folder with agents.json, guidelines.json, journeys.json,
guideline_tool_associations.json, tags.json, …) or its MongoDB database, and creates a bot per
Parlant agent with its guidelines, journeys, tools and tool mappings. Guidelines and journeys go
to the agents Parlant gives them to (agent:<id> tags, tags the agent carries, or every agent when
untagged). Run it again at any time: what was imported is updated, never duplicated (each bot
remembers its Parlant ids in metadata.parlant). What Otto cannot hold (guideline relationships,
custom tags, context variables, evaluations, observational guidelines, …) is listed with counts.

  --parlant <source>    the Parlant home folder, or mongodb://host[:port]/<database>
  --owner <id>          who owns the bots (default: local, the owner used without keys)
  --tool-base-url <url> where tools of services without a per-tool URL (openapi, mcp, built-in)
                        are reached: <url>/<service>/<tool>; without it they are listed as not mapped
  --json                print the whole report as JSON`;

function printReport(io: CliIO, report: ParlantImportReport): void {
  io.out(`imported from ${report.source}`);
  io.out('  kind           read  created  updated  unchanged');
  for (const kind of ['agents', 'guidelines', 'journeys', 'tools', 'tool_mappings'] as const) {
    const c = report[kind];
    io.out(`  ${kind.padEnd(13)} ${String(c.read).padStart(5)} ${String(c.created).padStart(8)} ${String(c.updated).padStart(8)} ${String(c.unchanged).padStart(10)}`);
  }
  for (const bot of report.bots) io.out(`  bot ${bot.name} (${bot.bot_id}) ← agent ${bot.parlant_id}`);
  if (report.not_mapped.length === 0) {
    io.out('everything was mapped');
    return;
  }
  io.out('not mapped:');
  for (const n of report.not_mapped) io.out(`  ${String(n.count).padStart(5)}  ${n.kind}: ${n.reason} (e.g. ${n.examples.join(', ')})`);
}

/** Runs a Parlant import for `otto import --parlant`. Returns the exit code (0 when imported, even with items not mapped). */
export async function runParlantImport(args: { values: Record<string, string | boolean | undefined>; io: CliIO }): Promise<number> {
  const { values, io } = args;
  const source = values.parlant;
  if (typeof source !== 'string' || source.trim() === '') throw new UsageError('--parlant needs a folder or a mongodb://host/<database> URL');
  if (values.from !== undefined) throw new UsageError('use either --from (an Otto store) or --parlant (Parlant data), not both');
  const owner = typeof values.owner === 'string' ? values.owner : 'local';
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(owner)) throw new UsageError('--owner must be 1-128 letters, digits, _ or -');
  const toolBaseUrl = typeof values['tool-base-url'] === 'string' ? values['tool-base-url'] : undefined;
  if (toolBaseUrl !== undefined && !/^https?:\/\/[^\s]+$/.test(toolBaseUrl)) throw new UsageError('--tool-base-url must be an http:// or https:// URL');
  const config = loadConfig(withDotEnv(io.env, io.cwd), io.cwd);
  io.err(`reading Parlant data from ${/^mongodb/i.test(source) ? 'MongoDB' : source} …`);
  const data = await readParlant(/^mongodb/i.test(source) ? source : resolve(io.cwd, source));
  // Writes go through the change log, so mirrors and other Otto processes see the new bots.
  const store = await openImportTarget({ config, io });
  try {
    const registry = await BotRegistry.open(store, []);
    const bots = await BotService.open(store, registry);
    const report = await importParlant({ data, bots, caller: { owner_id: owner, admin: false }, toolBaseUrl, onProgress: (line) => io.err(line) });
    if (values.json === true) io.out(JSON.stringify(report, null, 2));
    else printReport(io, report);
    return 0;
  } finally {
    await store.close();
  }
}
