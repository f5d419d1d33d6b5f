/**
 * A fake Slack on loopback: the Web API methods Otto uses (`POST /api/auth.test`,
 * `POST /api/chat.postMessage`, Bearer token, `{ok, …}` / `{ok: false, error}` answers) and
 * Slack's side of the Events API: `sendEvent` signs a body with a signing secret (v0 HMAC-SHA256
 * of `v0:timestamp:body`) and POSTs it to Otto as Slack does, retries included.
 */
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SlackCall {
  method: string;
  token: string | undefined;
  body: any;
  headers: IncomingHttpHeaders;
}

export interface FakeSlack {
  /** What OTTO_SLACK_API_BASE is set to, e.g. `http://127.0.0.1:41234/api`. */
  base: string;
  calls: SlackCall[];
  /** Registers a valid bot token and the bot user it belongs to. */
  addBot(token: string, bot: { user_id: string; bot_id: string; team_id: string }): void;
  /** Messages posted with chat.postMessage. */
  posted(): Array<{ channel: string; text: string; thread_ts?: string }>;
  /** Signs and POSTs an Events API body to `url`. */
  sendEvent(url: string, signingSecret: string, body: unknown, options?: { timestamp?: number; retryNum?: number; signature?: string; raw?: string }): Promise<{ status: number; json: any }>;
  close(): Promise<void>;
}

/** Slack's v0 signature of a body. */
export function slackSignature(secret: string, timestamp: number | string, body: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

export async function startFakeSlack(): Promise<FakeSlack> {
  const bots = new Map<string, { user_id: string; bot_id: string; team_id: string }>();
  const calls: SlackCall[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const send = (json: unknown) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(json));
      };
      const method = /^\/api\/([a-zA-Z.]+)$/.exec(req.url ?? '')?.[1];
      if (!method || req.method !== 'POST') {
        res.writeHead(404).end();
        return;
      }
      const auth = req.headers.authorization;
      const token = typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7) : undefined;
      let body: any = {};
      try {
        body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
      } catch {
        return send({ ok: false, error: 'invalid_json' });
      }
      calls.push({ method, token, body, headers: req.headers });
      const bot = token ? bots.get(token) : undefined;
      if (!bot) return send({ ok: false, error: token ? 'invalid_auth' : 'not_authed' });
      if (method === 'auth.test') return send({ ok: true, url: 'https://fake.slack.com/', team: 'Fake', user: 'otto', team_id: bot.team_id, user_id: bot.user_id, bot_id: bot.bot_id });
      if (method === 'chat.postMessage') {
        if (typeof body.channel !== 'string' || typeof body.text !== 'string' || body.text === '') return send({ ok: false, error: 'no_text' });
        return send({ ok: true, channel: body.channel, ts: `${Date.now() / 1000}`, message: { text: body.text, user: bot.user_id, bot_id: bot.bot_id } });
      }
      return send({ ok: false, error: 'unknown_method' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}/api`,
    calls,
    addBot: (token, bot) => void bots.set(token, bot),
    posted: () => calls.filter((c) => c.method === 'chat.postMessage' && c.token && bots.has(c.token)).map((c) => ({ channel: c.body.channel, text: c.body.text, ...(c.body.thread_ts ? { thread_ts: c.body.thread_ts } : {}) })),
    async sendEvent(url, signingSecret, body, options = {}) {
      const raw = options.raw ?? JSON.stringify(body);
      const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'x-slack-request-timestamp': String(timestamp),
        'x-slack-signature': options.signature ?? slackSignature(signingSecret, timestamp, raw),
      };
      if (options.retryNum !== undefined) {
        headers['x-slack-retry-num'] = String(options.retryNum);
        headers['x-slack-retry-reason'] = 'http_timeout';
      }
      const response = await fetch(url, { method: 'POST', headers, body: raw });
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
