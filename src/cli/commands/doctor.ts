import { diagnose, type Finding } from '../../doctor/index.ts';
import type { CliIO, Command } from '../command.ts';

export { diagnose, type Finding } from '../../doctor/index.ts';

/** Prints the findings, one line each, with the fix under each warning or failure. */
export function printFindings(io: CliIO, findings: Finding[]): void {
  const width = Math.max(...findings.map((f) => f.check.length));
  for (const f of findings) {
    io.out(`${(f.status === 'fail' ? 'FAIL' : f.status).padEnd(5)} ${f.check.padEnd(width)}  ${f.message}`);
    if (f.fix && f.status !== 'ok') io.out(`${' '.repeat(width + 8)}fix: ${f.fix}`);
  }
  const failed = findings.filter((f) => f.status === 'fail').length;
  const warned = findings.filter((f) => f.status === 'warn').length;
  io.out(failed ? `${failed} problem(s) to fix${warned ? `, ${warned} warning(s)` : ''}` : warned ? `healthy, with ${warned} warning(s)` : 'healthy');
}

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'check configuration, connection, migrations, indexes and disk; say how to fix',
  options: { fix: { type: 'boolean' } },
  help: `Usage: otto doctor [--fix]

Checks the configured store and prints one line per finding (ok, warn or FAIL), each problem
with a one-line fix:
  configuration   the environment (and ./.env) is valid
  data dir        (SQLite) the data folder is writable; disk space left
  spool           (MongoDB) writes spooled in degraded mode and not yet replayed (OTTO_SPOOL_DIR)
  connection      the store opens and answers; engine, location, server version, latency
  capabilities    what the engine can do (durable, safe for several processes, …)
  migrations      applied, pending, and unknown ones (written by a newer Otto)
  indexes         every collection has exactly the indexes Otto declares (missing or extra)
  conflicts       (MongoDB) spooled writes not applied because the primary changed meanwhile
A running server answers the same checks (plus mirrors and degraded mode) at GET /admin/doctor.
Reads only, except with --fix.

Options:
  --fix   create missing collections and indexes (what \`otto serve\` does at startup)

Examples:
  otto doctor
  OTTO_STORAGE=mongodb MONGODB_URI=mongodb://127.0.0.1:27017/ otto doctor
  otto doctor --fix

Exit code: 0 when nothing failed (warnings allowed), 1 when a check failed.`,
  async run({ values, io }) {
    const findings = await diagnose({ env: io.env, cwd: io.cwd, fix: values.fix === true });
    printFindings(io, findings);
    return findings.some((f) => f.status === 'fail') ? 1 : 0;
  },
};
