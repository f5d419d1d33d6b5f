/**
 * `POST /admin/sync`: brings a configured backup's documents into the primary (the Normo seed's
 * `/sync-conversations`: backup → primary), idempotently, never taking a primary document back
 * to an older version (see `src/storage/transfer/sync.ts`). Admins only. The backup is one of
 * the stores in OTTO_MIRRORS, named by URL or position, by default the first `jsonl:` one; a
 * request can never point Otto at any other path or server.
 */
import type { FastifyInstance } from 'fastify';
import type { OttoConfig } from '../../config.ts';
import { OttoError } from '../../domain/errors.ts';
import type { Services } from '../../services/index.ts';
import { openTarget, parseTargetUrl } from '../../storage/changes/index.ts';
import { isStorageError, type Store } from '../../storage/contract.ts';
import { describeStoreUrl, openStoreUrl, parseStoreUrl } from '../../storage/store-url.ts';
import { syncFromBackup, type SyncReport } from '../../storage/transfer/sync.ts';
import { errors } from '../schemas.ts';

/** The request body. */
interface SyncBody {
  backup?: string | number;
  collections?: string[];
  dry_run?: boolean;
}

/** A configured mirror chosen as the backup. */
export interface ChosenBackup {
  /** The URL as configured (may hold credentials; never sent). */
  raw: string;
  /** The URL without credentials. */
  display: string;
  /** 1-based position in OTTO_MIRRORS. */
  position: number;
}

/**
 * Picks the backup among the configured mirrors: by position (1 = the first entry of
 * OTTO_MIRRORS), by URL (compared without credentials, relative paths taken from the server's
 * folder), or the first `jsonl:` mirror. Throws OttoError INVALID (field `backup`) when the
 * request names no configured mirror, CONFLICT when nothing suitable is configured. Never
 * repeats the requested text, which may hold a password.
 */
export function chooseBackup(urls: readonly string[], requested: string | number | undefined, cwd = process.cwd()): ChosenBackup {
  const configured = urls.map((raw, i) => ({ raw, display: parseTargetUrl(raw, cwd).display, position: i + 1 }));
  if (configured.length === 0) {
    throw new OttoError('CONFLICT', 'no backup is configured: set OTTO_MIRRORS, e.g. OTTO_MIRRORS=jsonl:./backup, and restart Otto', { field: 'backup' });
  }
  const known = configured.map((c) => `${c.position}: ${c.display}`).join(', ');
  if (requested === undefined) {
    const jsonl = configured.find((c) => c.display.startsWith('jsonl:'));
    if (!jsonl) throw new OttoError('CONFLICT', `OTTO_MIRRORS has no jsonl: backup; name one of the configured mirrors in backup (${known})`, { field: 'backup' });
    return jsonl;
  }
  if (typeof requested === 'number') {
    const chosen = configured[requested - 1];
    if (!Number.isInteger(requested) || !chosen) throw new OttoError('INVALID', `backup ${requested} is not a position in OTTO_MIRRORS (${known})`, { field: 'backup' });
    return chosen;
  }
  let display: string;
  try {
    display = describeStoreUrl(parseStoreUrl(requested), cwd);
  } catch (error) {
    throw new OttoError('INVALID', `backup: ${(error as Error).message}`, { field: 'backup', cause: error });
  }
  const chosen = configured.find((c) => c.display === display);
  if (!chosen) throw new OttoError('INVALID', `backup ${display} is not one of the configured mirrors (${known})`, { field: 'backup' });
  return chosen;
}

/** Opens the chosen backup for reading only (a JSONL folder read-only, without its lock). */
async function openBackup(backup: ChosenBackup): Promise<Store> {
  try {
    const target = parseTargetUrl(backup.raw);
    return target.kind === 'mongodb' ? await openTarget(target) : await openStoreUrl(backup.raw, { source: true });
  } catch (error) {
    if (isStorageError(error, 'INVALID')) throw new OttoError('CONFLICT', `the backup ${backup.display} cannot be read: ${error.message}`, { field: 'backup', cause: error });
    throw error;
  }
}

const counts = {
  read: { type: 'integer' },
  inserted: { type: 'integer' },
  updated: { type: 'integer' },
  unchanged: { type: 'integer' },
  skipped_newer: { type: 'integer', description: 'The primary had a newer version (or was written while the sync ran): left as it is.' },
  conflicts: { type: 'integer', description: 'Same version with different content, or a unique value held by another document: left as it is.' },
} as const;

const responseSchema = {
  type: 'object',
  required: ['backup', 'dry_run', 'collections', 'totals', 'duration_ms'],
  properties: {
    backup: { type: 'string', description: 'The backup synced from, without credentials.' },
    dry_run: { type: 'boolean' },
    collections: {
      type: 'array',
      items: { type: 'object', properties: { collection: { type: 'string' }, ...counts, conflict_ids: { type: 'array', items: { type: 'string' } } } },
    },
    totals: { type: 'object', properties: counts },
    changed_bots: { type: 'array', items: { type: 'string' } },
    duration_ms: { type: 'integer' },
  },
} as const;

/** Registers `POST /admin/sync` (admins only). */
export function registerAdminSyncRoutes(app: FastifyInstance, ctx: { config: OttoConfig; services: Services }): void {
  let running = false;
  app.post<{ Body: SyncBody | undefined }>('/admin/sync', {
    // The body is optional: none means every default.
    preValidation: async (request) => {
      request.body ??= {};
    },
    schema: {
      tags: ['admin'],
      summary: 'Bring a configured backup (an OTTO_MIRRORS store) into the primary: idempotent, never overwrites a newer document',
      description:
        'Copies every document of the backup that the primary lacks or holds in an older version, and reports counts per collection. ' +
        'A primary document with a higher version than the backup’s is never overwritten. Admins only.',
      body: {
        type: 'object',
        additionalProperties: false,
        properties: {
          backup: {
            description: 'Which configured mirror to read: its position in OTTO_MIRRORS (1 = first) or its URL as configured or as /health shows it. Default: the first jsonl: mirror.',
            oneOf: [{ type: 'integer', minimum: 1, maximum: 100 }, { type: 'string', minLength: 1, maxLength: 2000 }],
          },
          collections: { type: 'array', minItems: 1, maxItems: 50, items: { type: 'string', pattern: '^_?[a-z][a-z0-9_]{0,62}$' }, description: 'Default: every collection a transfer copies.' },
          dry_run: { type: 'boolean', description: 'Compare and count only; write nothing.' },
        },
      },
      response: { 200: responseSchema, ...errors(400, 401, 403, 409) },
    },
    handler: async (request): Promise<SyncReport & { backup: string }> => {
      if (!request.caller.admin) throw new OttoError('FORBIDDEN', 'only an admin may sync a backup into the primary');
      const body = request.body ?? {};
      const backup = chooseBackup(ctx.config.mirrors.urls, body.backup);
      if (running) throw new OttoError('CONFLICT', 'a sync is already running; try again when it has finished');
      running = true;
      try {
        const from = await openBackup(backup);
        try {
          const report = await syncFromBackup({ from, to: ctx.services.store, collections: body.collections, dryRun: body.dry_run });
          const [first] = report.changed_bots;
          if (!report.dry_run && first !== undefined) {
            // Reload every bot here, and bump the shared revision so other processes reload too.
            await ctx.services.registry.rehydrate();
            await ctx.services.registry.changed(first);
          }
          return { backup: backup.display, ...report };
        } finally {
          await from.close();
        }
      } finally {
        running = false;
      }
    },
  });
}
