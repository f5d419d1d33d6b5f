import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, withDotEnv } from '../../config.ts';
import { OttoError } from '../../domain/errors.ts';
import { healthReport } from '../../http/app.ts';
import { createOtto } from '../../http/otto.ts';
import { defaultWebDist } from '../../http/web.ts';
import { schedulePruning } from '../../storage/changes/index.ts';
import { ottoVersion } from '../../version.ts';
import type { Command } from '../command.ts';

export const serveCommand: Command = {
  name: 'serve',
  summary: 'start the HTTP server (what `npm start` runs)',
  help: `Usage: otto serve

Starts Otto's HTTP server on OTTO_HOST:PORT (default 127.0.0.1:8800) on the configured store,
applies pending migrations first (unless OTTO_AUTO_MIGRATE=false), rehydrates bot definitions,
prints a startup block and serves until SIGINT or SIGTERM, then shuts down cleanly.

With no users and no keys, requests on loopback are served as the local admin. Beyond loopback
(OTTO_HOST=0.0.0.0) Otto refuses to start until an admin has an access key
(\`otto users create --username <name> --admin\`) or OTTO_API_KEYS holds one.

Messages of bots with \`retention_days\` are deleted by a sweeper every OTTO_RETENTION_INTERVAL_MS.

Every write is also recorded in the store's change log; each mirror in OTTO_MIRRORS follows it
in the background (see \`otto mirror --help\`).

With OTTO_STORAGE=mongodb, an unreachable server puts Otto in degraded mode instead of stopping
it: reads come from the first mirror in OTTO_MIRRORS, writes are spooled (fsynced) in
OTTO_SPOOL_DIR and replayed when the server returns; every response then carries an
Otto-Degraded header. Without a mirror, requests answer 503 until the server is back (at
startup, Otto waits for it). See the README, "Degraded mode".

Environment: OTTO_STORAGE (sqlite | mongodb | memory), OTTO_DATA_DIR, MONGODB_URI,
MONGODB_DATABASE, PORT, OTTO_HOST, OTTO_API_KEYS, OTTO_LLM_PROVIDER, OTTO_AUTO_MIGRATE, OTTO_MIRRORS,
OTTO_SPOOL_DIR, OTTO_PRIMARY_RETRY_MS, OTTO_PRIMARY_TIMEOUT_MS.
See the README for all settings.`,
  async run({ io }) {
    const config = loadConfig(withDotEnv(io.env, io.cwd), io.cwd);
    let otto;
    try {
      otto = await createOtto({ config, onProgress: (line) => io.err(line), onEvent: (line) => io.err(line) });
    } catch (error) {
      if (error instanceof OttoError && error.code === 'FORBIDDEN') {
        io.err(`otto serve: ${error.message}`);
        return 1;
      }
      throw error;
    }
    // Signal handlers go in before the startup block is printed, so a SIGTERM sent as soon as
    // "listening" appears still shuts down cleanly.
    const stopped = new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        process.off('SIGINT', onInt);
        process.off('SIGTERM', onTerm);
        io.err(`${signal}: shutting down`);
        resolve();
      };
      const onInt = () => stop('SIGINT');
      const onTerm = () => stop('SIGTERM');
      process.on('SIGINT', onInt);
      process.on('SIGTERM', onTerm);
    });
    let address: string;
    try {
      address = await otto.app.listen({ port: config.http.port, host: config.http.host });
    } catch (error) {
      await otto.close();
      throw error;
    }
    otto.services.retention.start({
      intervalMs: config.retention.intervalMs,
      onError: (error) => {
        if (!otto.degraded?.explains(error)) io.err(`retention: ${(error as Error).message}`);
      },
      onProgress: (line) => io.err(`retention: ${line}`),
    });
    const stopPruning =
      config.changes.pruneIntervalMs > 0
        ? schedulePruning({
            log: () => otto.changes,
            keepMs: config.changes.keepDays * 86_400_000,
            intervalMs: config.changes.pruneIntervalMs,
            onError: (error) => {
              if (!otto.degraded?.explains(error)) io.err(`change log: pruning failed: ${(error as Error).message}`);
            },
            onPruned: (result) => io.err(`change log: pruned ${result.deleted} record(s) through seq ${result.through} (read by every mirror and webhook, older than ${config.changes.keepDays} day(s))`),
          })
        : () => {};
    const report = await healthReport(otto, Date.now());
    const caps = Object.entries(report.storage.capabilities).filter(([, on]) => on).map(([name]) => name);
    const m = otto.storage.migrations;
    const llm = config.llm.provider === 'offline' ? 'offline rules (no key needed)' : `${config.llm.model} at ${config.llm.baseUrl}`;
    io.out(
      [
        `Otto ${ottoVersion}`,
        `  storage       ${report.storage.engine} — ${report.storage.location}${report.storage.server_version ? ` (${report.storage.server_version})` : ''}`,
        `  capabilities  ${caps.join(', ') || 'none'}`,
        `  migrations    ${m.total === 0 && report.degraded?.active ? 'not known until the primary is reached' : `${m.applied}/${m.total} applied`}${m.appliedNow.length ? ` (${m.appliedNow.length} just now)` : ''}${m.pending ? `, ${m.pending} pending — run \`otto migrate up\`` : ''}`,
        `  bots          Rehydrated ${otto.services.rehydrated} bot(s); Otto the bot-builder is at bot_id "otto"`,
        `  replies       ${llm}`,
        ...(report.mirrors.length === 0
          ? [`  mirrors       none (set OTTO_MIRRORS to keep copies: jsonl:<dir>, sqlite:<file>, mongodb://…/<db>)`]
          : report.mirrors.map((mirror, i) => `  ${i === 0 ? 'mirrors ' : '        '}      ${mirror.url} — ${mirror.status}, at seq ${mirror.seq}${mirror.lag ? `, ${mirror.lag} change(s) behind` : ''}${mirror.last_error ? ` (${mirror.last_error})` : ''}`)),
        ...(report.degraded === undefined
          ? []
          : report.degraded.active
            ? [`  degraded      ON: ${report.degraded.reason}; ${report.degraded.reads_from ? `reads from ${report.degraded.reads_from}, writes ${report.degraded.writes === 'spool' ? `spooled in ${report.degraded.spool_dir}` : 'refused'}` : 'no mirror: 503'}; retrying the primary every ${config.degraded.retryMs} ms`]
            : [`  degraded      if the primary goes down: ${report.degraded.reads_from ? `reads from ${report.degraded.reads_from}, writes spooled in ${report.degraded.spool_dir}` : 'no mirror configured, so requests answer 503 (set OTTO_MIRRORS to keep serving)'}${report.degraded.conflicts ? `; ${report.degraded.conflicts} open conflict(s), see \`otto doctor\`` : ''}`]),
        `  access        ${otto.services.keys.required ? `access key required${config.apiKeys.length ? ` (${config.apiKeys.length} configured in OTTO_API_KEYS)` : ''}` : 'local admin on loopback, no key (until `otto users create`)'}`,
        `  secrets       ${config.secrets.configured ? `AES-256-GCM, encrypting with key ${config.secrets.ids[0]}${config.secrets.ids.length > 1 ? ` (also decrypting with ${config.secrets.ids.slice(1).join(', ')}; run \`otto secrets rotate\`)` : ''}` : 'OTTO_SECRET_KEY not set: provider keys, channels and webhooks cannot be stored (make one: openssl rand -base64 32)'}`,
        `  channels      ${config.channels.publicUrl ? `platforms reach Otto at ${config.channels.publicUrl}` : 'OTTO_PUBLIC_URL not set: Telegram cannot be connected'}`,
        ...(config.storage === 'memory' ? ['  warning       OTTO_STORAGE=memory: everything is lost when Otto stops'] : []),
        ...(!report.storage.capabilities.multiProcess && config.storage !== 'memory' ? ['  warning       this store cannot be shared safely by several Otto processes'] : []),
        `  web page      ${existsSync(join(defaultWebDist, 'index.html')) ? `${address}/` : 'not built (run `npm run build:web`, then reload)'}`,
        `  listening     ${address}  (API docs: ${address}/docs)`,
      ].join('\n'),
    );

    await stopped;
    stopPruning();
    await otto.close();
    io.out('Otto stopped');
    return 0;
  },
};
