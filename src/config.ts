import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { parseEnv } from 'node:util';
import { absoluteStoreUrl, describeStoreUrl, parseStoreUrl } from './storage/store-url.ts';
import { Keyring, parseSecretKeys } from './secrets/keyring.ts';

export type StorageEngineName = 'sqlite' | 'mongodb' | 'memory';

/** Otto's configuration, read from the environment once at startup. */
export interface OttoConfig {
  storage: StorageEngineName;
  /** Folder for the SQLite file and other local state. */
  dataDir: string;
  sqlite: { path: string; synchronous: 'FULL' | 'NORMAL' };
  mongodb: { uri: string | undefined; database: string };
  http: { port: number; host: string; bodyLimitBytes: number };
  /** Apply pending migrations at startup. */
  autoMigrate: boolean;
  /** API keys from configuration: each owns what it creates. Empty: no keys (loopback only). */
  apiKeys: Array<{ owner: string; key: string }>;
  llm: { provider: 'offline' | 'openai'; baseUrl: string; apiKey: string | undefined; model: string; timeoutMs: number };
  /** Timeout of one tool call. */
  toolTimeoutMs: number;
  /** How often this process looks for changes made by other processes sharing the store. */
  syncIntervalMs: number;
  /**
   * Mirrors fed from the change log (`OTTO_MIRRORS`): `jsonl:<dir>` and `sqlite:<file>` with
   * absolute paths, or `mongodb://…/<db>` as given (it may hold credentials; never print it).
   */
  mirrors: { urls: string[]; intervalMs: number; batchSize: number };
  /** How long a change-log reader waits for a pending write-ahead record before recovering it. */
  /** The change log: recovery window for pending writes; how long read records are kept and how often they are pruned (0: never automatically). */
  changes: { recoveryMs: number; keepDays: number; pruneIntervalMs: number };
  /**
   * Degraded mode (MongoDB primary): where writes are spooled while the primary is unreachable
   * (`OTTO_SPOOL_DIR`), how often it is probed (`OTTO_PRIMARY_RETRY_MS`), and how long one
   * operation waits for a reachable server before the primary counts as down (`OTTO_PRIMARY_TIMEOUT_MS`).
   */
  degraded: { spoolDir: string; retryMs: number; timeoutMs: number };
  /** Message retention sweeper (`otto serve`): how often it runs and how many messages it deletes per write. */
  retention: { intervalMs: number; batchSize: number };
  /** Keys encrypting stored secrets (`OTTO_SECRET_KEY`; the first encrypts). Prints as key ids only. */
  secrets: Keyring;
  /** Channels: Otto's public base URL (for platform webhooks) and the platforms' API base URLs. */
  channels: { publicUrl: string | undefined; telegramApiBase: string; slackApiBase: string };
  /** Outgoing webhooks: per-attempt timeout, attempts before giving up, first retry delay (doubling), idle poll interval. */
  webhooks: { timeoutMs: number; maxAttempts: number; backoffMs: number; intervalMs: number };
}

/** Every problem found in the environment, each naming the variable and what to do. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/**
 * Reads `.env` from `cwd` (when present) under the given environment: variables already
 * set win. Returns the merged environment; the input is not modified.
 */
export function withDotEnv(env: NodeJS.ProcessEnv, cwd = process.cwd()): NodeJS.ProcessEnv {
  const file = join(cwd, '.env');
  if (!existsSync(file)) return env;
  const parsed = parseEnv(readFileSync(file, 'utf8'));
  return { ...parsed, ...env };
}

function flag(value: string | undefined, name: string, fallback: boolean, problems: string[]): boolean {
  if (value === undefined || value === '') return fallback;
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  problems.push(`${name} must be true or false, got ${JSON.stringify(value)}`);
  return fallback;
}

/**
 * Validates the environment and returns the typed configuration.
 * Throws ConfigError listing every problem at once.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): OttoConfig {
  const problems: string[] = [];
  const storage = (env.OTTO_STORAGE || 'sqlite').toLowerCase();
  if (!['sqlite', 'mongodb', 'memory'].includes(storage)) {
    problems.push(`OTTO_STORAGE must be sqlite, mongodb or memory, got ${JSON.stringify(env.OTTO_STORAGE)}`);
  }
  const dataDir = resolve(cwd, env.OTTO_DATA_DIR || 'data');
  const sqliteFile = env.OTTO_SQLITE_FILE || 'otto.db';
  const synchronous = (env.OTTO_SQLITE_SYNC || 'FULL').toUpperCase();
  if (synchronous !== 'FULL' && synchronous !== 'NORMAL') problems.push(`OTTO_SQLITE_SYNC must be FULL or NORMAL, got ${JSON.stringify(env.OTTO_SQLITE_SYNC)}`);
  const uri = env.MONGODB_URI || env.MONGODB_URL || undefined;
  if (storage === 'mongodb' && !uri) {
    problems.push('OTTO_STORAGE=mongodb needs MONGODB_URI (or MONGODB_URL), e.g. MONGODB_URI=mongodb://127.0.0.1:27017/ — `npm run mongodb:local` starts a local one');
  }
  if (uri && !/^mongodb(\+srv)?:\/\//.test(uri)) problems.push('MONGODB_URI must start with mongodb:// or mongodb+srv://');
  const database = env.MONGODB_DATABASE || env.MONGODB_DATABASE_NAME || 'otto';
  if (!/^[A-Za-z0-9_-]{1,63}$/.test(database)) problems.push(`MONGODB_DATABASE must be 1-63 letters, digits, _ or -, got ${JSON.stringify(database)}`);
  const portText = env.PORT || '8800';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) problems.push(`PORT must be a number from 0 to 65535, got ${JSON.stringify(portText)}`);
  const host = env.OTTO_HOST || '127.0.0.1';
  const limitText = env.OTTO_BODY_LIMIT_BYTES || String(1024 * 1024);
  const bodyLimitBytes = Number(limitText);
  if (!/^\d+$/.test(limitText) || bodyLimitBytes < 1024) problems.push('OTTO_BODY_LIMIT_BYTES must be a whole number of at least 1024');
  const autoMigrate = flag(env.OTTO_AUTO_MIGRATE, 'OTTO_AUTO_MIGRATE', true, problems);
  const apiKeys: OttoConfig['apiKeys'] = [];
  for (const entry of (env.OTTO_API_KEYS ?? '').split(',').map((e) => e.trim()).filter(Boolean)) {
    const colon = entry.indexOf(':');
    const owner = colon > 0 ? entry.slice(0, colon) : 'default';
    const key = colon > 0 ? entry.slice(colon + 1) : entry;
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(owner)) problems.push(`OTTO_API_KEYS: owner ${JSON.stringify(owner)} must be 1-64 letters, digits, _ or -`);
    else if (key.length < 16) problems.push(`OTTO_API_KEYS: the key for ${owner} is shorter than 16 characters; generate one with \`openssl rand -hex 24\``);
    else apiKeys.push({ owner, key });
  }
  const llmProvider = (env.OTTO_LLM_PROVIDER || 'offline').toLowerCase();
  if (llmProvider !== 'offline' && llmProvider !== 'openai') problems.push(`OTTO_LLM_PROVIDER must be offline or openai, got ${JSON.stringify(env.OTTO_LLM_PROVIDER)}`);
  const llmKey = env.OTTO_LLM_API_KEY || env.OPENAI_API_KEY || undefined;
  const baseUrl = (env.OTTO_LLM_BASE_URL || 'https://api.openai.com/v1').replace(/\/+$/, '');
  if (!/^https?:\/\//.test(baseUrl)) problems.push('OTTO_LLM_BASE_URL must start with http:// or https://');
  const number = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
      return fallback;
    }
    return n;
  };
  const llmTimeout = number('OTTO_LLM_TIMEOUT_MS', 30000, 100, 600000);
  const toolTimeoutMs = number('OTTO_TOOL_TIMEOUT_MS', 5000, 100, 60000);
  const syncIntervalMs = number('OTTO_SYNC_INTERVAL_MS', 500, 50, 60000);
  const mirrorIntervalMs = number('OTTO_MIRROR_INTERVAL_MS', 1000, 50, 60000);
  const mirrorBatchSize = number('OTTO_MIRROR_BATCH_SIZE', 500, 1, 1000);
  const recoveryMs = number('OTTO_CHANGES_RECOVERY_MS', 5000, 100, 600000);
  const changesKeepDays = number('OTTO_CHANGES_KEEP_DAYS', 7, 0, 36500);
  const changesPruneIntervalMs = number('OTTO_CHANGES_PRUNE_INTERVAL_MS', 3600000, 0, 604800000);
  const primaryRetryMs = number('OTTO_PRIMARY_RETRY_MS', 1000, 50, 600000);
  const primaryTimeoutMs = number('OTTO_PRIMARY_TIMEOUT_MS', 2000, 100, 120000);
  const spoolDir = resolve(cwd, env.OTTO_SPOOL_DIR || join(dataDir, 'spool'));
  const retentionIntervalMs = number('OTTO_RETENTION_INTERVAL_MS', 600000, 1000, 86400000);
  const retentionBatchSize = number('OTTO_RETENTION_BATCH_SIZE', 500, 1, 1000);
  const sqlitePath = isAbsolute(sqliteFile) ? sqliteFile : join(dataDir, sqliteFile);
  const mirrors = mirrorUrls(env.OTTO_MIRRORS, cwd, storage === 'sqlite' ? sqlitePath : undefined, problems);
  const secretKeys = parseSecretKeys(env.OTTO_SECRET_KEY);
  problems.push(...secretKeys.problems);
  const httpUrl = (name: string, fallback: string | undefined): string | undefined => {
    const raw = (env[name] || fallback)?.replace(/\/+$/, '');
    if (raw !== undefined && !/^https?:\/\/[^\s/]+/.test(raw)) problems.push(`${name} must be an http:// or https:// URL`);
    return raw;
  };
  const publicUrl = httpUrl('OTTO_PUBLIC_URL', undefined);
  const telegramApiBase = httpUrl('OTTO_TELEGRAM_API_BASE', 'https://api.telegram.org')!;
  const slackApiBase = httpUrl('OTTO_SLACK_API_BASE', 'https://slack.com/api')!;
  const webhookTimeoutMs = number('OTTO_WEBHOOK_TIMEOUT_MS', 5000, 100, 120000);
  const webhookMaxAttempts = number('OTTO_WEBHOOK_MAX_ATTEMPTS', 8, 1, 50);
  const webhookBackoffMs = number('OTTO_WEBHOOK_BACKOFF_MS', 1000, 10, 3600000);
  const webhookIntervalMs = number('OTTO_WEBHOOK_INTERVAL_MS', 1000, 20, 60000);
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    storage: storage as StorageEngineName,
    dataDir,
    sqlite: { path: sqlitePath, synchronous: synchronous as 'FULL' | 'NORMAL' },
    mongodb: { uri, database },
    http: { port, host, bodyLimitBytes },
    autoMigrate,
    apiKeys,
    llm: { provider: llmProvider as 'offline' | 'openai', baseUrl, apiKey: llmKey, model: env.OTTO_LLM_MODEL || 'gpt-4o-mini', timeoutMs: llmTimeout },
    toolTimeoutMs,
    syncIntervalMs,
    mirrors: { urls: mirrors, intervalMs: mirrorIntervalMs, batchSize: mirrorBatchSize },
    changes: { recoveryMs, keepDays: changesKeepDays, pruneIntervalMs: changesPruneIntervalMs },
    degraded: { spoolDir, retryMs: primaryRetryMs, timeoutMs: primaryTimeoutMs },
    retention: { intervalMs: retentionIntervalMs, batchSize: retentionBatchSize },
    secrets: new Keyring(secretKeys.keys),
    channels: { publicUrl, telegramApiBase, slackApiBase },
    webhooks: { timeoutMs: webhookTimeoutMs, maxAttempts: webhookMaxAttempts, backoffMs: webhookBackoffMs, intervalMs: webhookIntervalMs },
  };
}

/**
 * Reads OTTO_MIRRORS: comma-separated store URLs (`jsonl:<dir>[?fsync=always|batch|never]`, `sqlite:<file>`, relative
 * paths taken from `cwd`, or `mongodb://…/<db>` / `mongodb+srv://…/<db>`). Paths are made
 * absolute; MongoDB URLs are kept as given. Problems name the entry by position and never quote
 * it (a MongoDB URL may hold a password).
 */
function mirrorUrls(value: string | undefined, cwd: string, primaryFile: string | undefined, problems: string[]): string[] {
  const urls: string[] = [];
  const seen = new Set<string>();
  const entries = (value ?? '').split(',').map((e) => e.trim()).filter(Boolean);
  for (const [i, entry] of entries.entries()) {
    const where = `OTTO_MIRRORS entry ${i + 1}`;
    let key: string;
    let absolute: string;
    try {
      const parsed = parseStoreUrl(entry);
      if (parsed.kind === 'memory') throw new Error('memory: cannot be a mirror (it is lost when Otto stops)');
      key = describeStoreUrl(parsed, cwd);
      absolute = absoluteStoreUrl(parsed, cwd);
    } catch (error) {
      problems.push(`${where}: ${(error as Error).message}`);
      continue;
    }
    if (primaryFile !== undefined && key === `sqlite:${resolve(primaryFile)}`) {
      problems.push(`${where} is the primary SQLite file itself; a mirror must be another file`);
      continue;
    }
    if (seen.has(key)) {
      problems.push(`${where} repeats ${key}`);
      continue;
    }
    seen.add(key);
    urls.push(key.startsWith('mongodb') ? entry : absolute);
  }
  return urls;
}
