import { loadConfig, withDotEnv } from '../../config.ts';
import { describeStoreUrl, openStoreUrl } from '../../storage/store-url.ts';
import { UsageError, type Command } from '../command.ts';
import { configuredLabel, openImportTarget } from './export.ts';
import { parlantHelp, parlantOptions, runParlantImport } from './import-parlant.ts';
import { copyOptions, copyOptionsHelp, parseCopyOptions, printWarnings, requireOption, runCopy } from './transfer.ts';

export const importCommand: Command = {
  name: 'import',
  summary: 'copy another store (e.g. a JSONL backup folder) or Parlant data into the configured store',
  options: { from: { type: 'string' }, ...copyOptions, ...parlantOptions },
  help: `Usage: otto import --from <store> [--collections a,b] [--batch-size n] [--restart]

Copies everything from another store into the store Otto is configured with (OTTO_STORAGE,
OTTO_DATA_DIR, MONGODB_URI, …), after applying its pending migrations. Documents keep their
ids, versions and timestamps; a document that exists already is replaced by the imported one;
nothing is deleted. The source is only read (a JSONL folder is opened read-only). Every write
goes through the configured store's change log, so its mirrors receive the imported documents.
Resumable like \`otto transfer\`: if it stops, run it again. Stop \`otto serve\` while importing.

Options:
  --from <store>      jsonl:<folder>, sqlite:<file> or mongodb://host[:port]/<database>
${copyOptionsHelp}

Examples:
  otto import --from jsonl:./backups/otto-2025-01-31
  OTTO_STORAGE=mongodb MONGODB_URI=mongodb://127.0.0.1:27017/ otto import --from sqlite:./data/otto.db
  otto import --from jsonl:./backup --collections bots,guidelines,journeys,tools,tool_mappings

Exit code: 0 when imported, 1 on failure, 130 when interrupted (run it again to resume).

${parlantHelp}`,
  async run({ values, io }) {
    if (values.parlant !== undefined) return runParlantImport({ values, io });
    const parlantOnly = ['owner', 'tool-base-url', 'json'].find((k) => values[k] !== undefined);
    if (parlantOnly) throw new UsageError(`--${parlantOnly} goes with --parlant`);
    const fromText = requireOption(values, 'from', 'jsonl:./backup');
    const options = parseCopyOptions(values);
    const config = loadConfig(withDotEnv(io.env, io.cwd), io.cwd);
    const fromLabel = describeStoreUrl(fromText, io.cwd);
    const from = await openStoreUrl(fromText, { cwd: io.cwd, source: true });
    try {
      const to = await openImportTarget({
        config,
        io,
        check: (plain) => {
          if (configuredLabel(plain) === fromLabel && plain.engine !== 'memory') throw new UsageError('--from names the configured store itself');
        },
      });
      try {
        const toLabel = configuredLabel(to);
        printWarnings(io, from);
        return await runCopy({ io, from, to, labels: { from: fromLabel, to: toLabel }, options, verifyHint: `otto verify --a ${fromLabel} --b ${toLabel}` });
      } finally {
        await to.close();
      }
    } finally {
      await from.close();
    }
  },
};
