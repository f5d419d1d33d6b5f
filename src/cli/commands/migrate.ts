import { loadConfig, withDotEnv } from '../../config.ts';
import { migrationStatus, migrationsFor, openStore, runMigrations } from '../../storage/index.ts';
import { ottoVersion } from '../../version.ts';
import { UsageError, type Command } from '../command.ts';

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'show or apply schema migrations (status | up)',
  positionals: true,
  help: `Usage: otto migrate status|up

  status   list applied and pending migrations of the configured store
  up       apply pending migrations, in order, and record them in _migrations

Uses the same configuration as \`otto serve\` (OTTO_STORAGE, OTTO_DATA_DIR, MONGODB_URI, …).
\`otto serve\` applies pending migrations at startup unless OTTO_AUTO_MIGRATE=false.
Exit code: 0 when the store is up to date (status) or migrated (up); 3 when status finds pending
migrations; 1 on failure, including a database written by a newer Otto.`,
  async run({ positionals, io }) {
    const action = positionals[0];
    if (action !== 'status' && action !== 'up') throw new UsageError('say `status` or `up`');
    const config = loadConfig(withDotEnv(io.env, io.cwd), io.cwd);
    const store = await openStore(config);
    try {
      const migrations = migrationsFor(store.engine);
      if (action === 'up') {
        const result = await runMigrations({ store, migrations, ottoVersion, onProgress: (line) => io.err(line) });
        io.out(result.appliedNow.length === 0 ? `${store.engine} at ${store.location}: up to date (${result.total} applied)` : `applied ${result.appliedNow.length} migration(s): ${result.appliedNow.join(', ')}`);
        return 0;
      }
      const status = await migrationStatus({ store, migrations });
      io.out(`${store.engine} at ${store.location}`);
      for (const r of status.applied) io.out(`  applied  ${r.id}  (${r.applied_at}, Otto ${r.otto_version})`);
      for (const m of status.pending) io.out(`  pending  ${m.id}  ${m.description}`);
      for (const r of status.unknown) io.out(`  unknown  ${r.id}  (written by Otto ${r.otto_version})`);
      if (status.unknown.length > 0) {
        io.err('This database was written by a newer Otto. Upgrade Otto before using it.');
        return 1;
      }
      if (status.pending.length > 0) {
        io.out(`${status.pending.length} pending: run \`otto migrate up\` (or start \`otto serve\`, which applies them).`);
        return 3;
      }
      io.out('up to date');
      return 0;
    } finally {
      await store.close();
    }
  },
};
