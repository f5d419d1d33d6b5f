/**
 * A fake Telegram Bot API on loopback: `POST /bot<token>/<method>` for getMe, setWebhook,
 * deleteWebhook and sendMessage, answering `{ok, result}` / `{ok: false, error_code, description}`
 * as Telegram does, and recording every call. `deliver` plays Telegram's side of a webhook:
 * it POSTs an update to the registered URL with the registered secret token.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TelegramCall {
  token: string;
  method: string;
  body: any;
  headers: IncomingHttpHeaders;
  /** Set when the fake answered it with a failure. */
  failed?: boolean;
}

export interface FakeTelegram {
  /** What OTTO_TELEGRAM_API_BASE is set to, e.g. `http://127.0.0.1:41234`. */
  base: string;
  calls: TelegramCall[];
  /** The webhook registered per token (by setWebhook). */
  webhooks: Map<string, { url: string; secret_token: string }>;
  /** Makes the next `n` calls of `method` fail with 500 (Telegram having a bad moment). */
  failNext(method: string, n: number): void;
  /** Registers a valid bot token (others are refused with 401). */
  addBot(token: string, bot: { id: number; username: string }): void;
  /** The messages sent with sendMessage (and accepted). */
  sent(): Array<{ token: string; chat_id: number | string; text: string }>;
  /** POSTs an update to the webhook registered for `token`; `secret` overrides the header (null: none). */
  deliver(token: string, update: unknown, options?: { secret?: string | null; raw?: string }): Promise<{ status: number; json: any }>;
  close(): Promise<void>;
}

export async function startFakeTelegram(): Promise<FakeTelegram> {
  const bots = new Map<string, { id: number; username: string }>();
  const calls: TelegramCall[] = [];
  const webhooks = new Map<string, { url: string; secret_token: string }>();
  const failures = new Map<string, number>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const match = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(req.url ?? '');
      const send = (status: number, json: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(json));
      };
      if (!match || req.method !== 'POST') return send(404, { ok: false, error_code: 404, description: 'Not Found' });
      const [, token, method] = match as unknown as [string, string, string];
      let body: any = {};
      try {
        body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
      } catch {
        return send(400, { ok: false, error_code: 400, description: 'Bad Request: invalid JSON' });
      }
      const call: TelegramCall = { token, method, body, headers: req.headers };
      calls.push(call);
      const bot = bots.get(token);
      if (!bot) return send(401, { ok: false, error_code: 401, description: 'Unauthorized' });
      const failing = failures.get(method) ?? 0;
      if (failing > 0) {
        failures.set(method, failing - 1);
        call.failed = true;
        return send(500, { ok: false, error_code: 500, description: 'Internal Server Error' });
      }
      switch (method) {
        case 'getMe':
          return send(200, { ok: true, result: { id: bot.id, is_bot: true, first_name: bot.username, username: bot.username } });
        case 'setWebhook':
          if (typeof body.url !== 'string' || !/^https?:\/\//.test(body.url)) return send(400, { ok: false, error_code: 400, description: 'Bad Request: bad webhook URL' });
          webhooks.set(token, { url: body.url, secret_token: body.secret_token });
          return send(200, { ok: true, result: true, description: 'Webhook was set' });
        case 'deleteWebhook':
          webhooks.delete(token);
          return send(200, { ok: true, result: true });
        case 'sendMessage':
          if (body.chat_id === undefined || typeof body.text !== 'string' || body.text === '') return send(400, { ok: false, error_code: 400, description: 'Bad Request: message text is empty' });
          return send(200, { ok: true, result: { message_id: calls.length, chat: { id: body.chat_id }, text: body.text } });
        default:
          return send(404, { ok: false, error_code: 404, description: 'Not Found: method not found' });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    calls,
    webhooks,
    addBot: (token, bot) => void bots.set(token, bot),
    failNext: (method, n) => void failures.set(method, n),
    sent: () => calls.filter((c) => c.method === 'sendMessage' && bots.has(c.token) && !c.failed).map((c) => ({ token: c.token, chat_id: c.body.chat_id, text: c.body.text })),
    async deliver(token, update, options = {}) {
      const hook = webhooks.get(token);
      if (!hook) throw new Error(`no webhook registered for ${token}`);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      const secret = options.secret === undefined ? hook.secret_token : options.secret;
      if (secret !== null) headers['x-telegram-bot-api-secret-token'] = secret;
      const response = await fetch(hook.url, { method: 'POST', headers, body: options.raw ?? JSON.stringify(update) });
      const text = await response.text();
      let json: any;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: response.status, json };
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
