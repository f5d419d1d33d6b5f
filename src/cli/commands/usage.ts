import { loadConfig, withDotEnv } from '../../config.ts';
import { isDay, utcDay, utcMonth } from '../../domain/index.ts';
import { localAdmin, UsageService, usageGroupings, type UsageReport } from '../../services/index.ts';
import { migrationStatus, migrationsFor, openStore } from '../../storage/index.ts';
import { UsageError, type Command } from '../command.ts';

/** The report as an aligned text table with a totals line. */
export function formatUsageTable(report: UsageReport): string[] {
  const header = [report.group_by, 'calls', 'tokens_in', 'tokens_out', 'cost_usd'];
  const line = (r: { key: string; calls: number; tokens_in: number; tokens_out: number; cost_usd: number }) => [r.key, String(r.calls), String(r.tokens_in), String(r.tokens_out), r.cost_usd.toFixed(6)];
  const rows = [header, ...report.rows.map(line), line({ key: 'total', ...report.totals })];
  const widths = header.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  return [`usage ${report.from} … ${report.to} by ${report.group_by}`, fmt(header), ...report.rows.map((r) => fmt(line(r))), fmt(rows.at(-1)!)];
}

export const usageCommand: Command = {
  name: 'usage',
  summary: 'usage and cost by day, bot, model or user over a date range',
  options: {
    from: { type: 'string' },
    to: { type: 'string' },
    by: { type: 'string' },
    bot: { type: 'string' },
    user: { type: 'string' },
    json: { type: 'boolean' },
  },
  help: `Usage: otto usage [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--by day|bot|model|user] [--bot <id>] [--user <id>] [--json]

Reports provider calls, tokens and cost from the configured store (every user's, as an admin),
computed by the store's own aggregation: the same figures as GET /usage.

  --from   first UTC day included (default: the first day of this month)
  --to     last UTC day included (default: today)
  --by     group by day (default), bot, model or user
  --bot    only this bot's calls
  --user   only this user's (owner's) calls
  --json   print the report as JSON ({from, to, group_by, rows, totals})

Exit code: 0 on success; 1 on failure (e.g. migration 0004_usage not applied: run \`otto migrate up\`).`,
  async run({ values, io }) {
    const now = new Date();
    const from = (values.from as string | undefined) ?? utcMonth(now).first;
    const to = (values.to as string | undefined) ?? utcDay(now);
    const by = (values.by as string | undefined) ?? 'day';
    if (!Object.hasOwn(usageGroupings, by)) throw new UsageError('--by must be day, bot, model or user');
    if (!isDay(from)) throw new UsageError('--from must be a date written YYYY-MM-DD');
    if (!isDay(to)) throw new UsageError('--to must be a date written YYYY-MM-DD');
    if (from > to) throw new UsageError('--from must not be after --to');
    const config = loadConfig(withDotEnv(io.env, io.cwd), io.cwd);
    const store = await openStore(config);
    try {
      const status = await migrationStatus({ store, migrations: migrationsFor(store.engine) });
      if (status.pending.some((m) => m.id === '0004_usage')) {
        io.err(`${store.engine} at ${store.location}: usage is not set up yet (migration 0004_usage pending). Run \`otto migrate up\` or start \`otto serve\`.`);
        return 1;
      }
      const usage = await UsageService.open({ store });
      io.err(`reading usage from ${store.engine} at ${store.location} …`);
      const report = await usage.report({
        caller: localAdmin,
        from,
        to,
        group_by: by,
        ...(values.bot === undefined ? {} : { bot_id: values.bot as string }),
        ...(values.user === undefined ? {} : { user_id: values.user as string }),
      });
      if (values.json) io.out(JSON.stringify(report));
      else for (const line of formatUsageTable(report)) io.out(line);
      return 0;
    } finally {
      await store.close();
    }
  },
};
