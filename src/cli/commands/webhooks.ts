import { loadConfig, withDotEnv } from '../../config.ts';
import { openStorage } from '../../storage/index.ts';
import { listDeliveries } from '../../webhooks/index.ts';
import { UsageError, type Command } from '../command.ts';

export const webhooksCommand: Command = {
  name: 'webhooks',
  summary: 'recent outgoing webhook deliveries and their outcomes (deliveries)',
  positionals: true,
  options: { limit: { type: 'string' }, webhook: { type: 'string' }, json: { type: 'boolean' } },
  help: `Usage: otto webhooks deliveries [--limit <n>] [--webhook <id>] [--json]

Lists recent outgoing webhook deliveries, newest first: when, which webhook, event and event id,
status (pending, sending, delivered, failed, cancelled), attempts and the last error.

Options:
  --limit <n>      how many (1-1000, default 20)
  --webhook <id>   only this webhook's deliveries
  --json           one JSON document with every attempt

Exit code: 0, or 1 on failure.`,
  async run({ positionals, values, io }) {
    if (positionals[0] !== 'deliveries' || positionals.length > 1) throw new UsageError('say `otto webhooks deliveries`');
    const limit = values.limit === undefined ? 20 : Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new UsageError('--limit must be a whole number from 1 to 1000');
    const webhookId = values.webhook as string | undefined;
    if (webhookId !== undefined && !/^[A-Za-z0-9_-]{1,100}$/.test(webhookId)) throw new UsageError('--webhook must be a webhook id');
    const config = loadConfig(withDotEnv(io.env, io.cwd), io.cwd);
    const { store } = await openStorage({ config, migrate: false });
    try {
      const page = await listDeliveries({ store, webhookId, limit });
      if (values.json) {
        io.out(JSON.stringify(page.items, null, 2));
        return 0;
      }
      if (page.items.length === 0) {
        io.out(webhookId ? `no deliveries for webhook ${webhookId}` : 'no webhook deliveries yet (create a webhook with POST /webhooks)');
        return 0;
      }
      io.out(['created_at', 'delivery', 'webhook', 'event', 'event_id', 'status', 'attempts', 'last_error'].join('\t'));
      for (const d of page.items) {
        io.out([d.created_at, d.id, d.webhook_id, d.event, d.event_id, d.status, String(d.attempt_count), d.last_error ?? ''].join('\t'));
      }
      return 0;
    } finally {
      await store.close();
    }
  },
};
