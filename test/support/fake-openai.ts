/**
 * A fake OpenAI-compatible server for tests: a real `node:http` server on loopback that
 * answers `POST <base>/chat/completions` from a script and records every request.
 *
 *   const fake = await startFakeOpenAi();
 *   fake.enqueue({ tool_calls: [{ name: 'order_status', arguments: { id: '42' } }] }, { content: 'Shipped.' });
 *   createOpenAiCompatibleProvider({ baseUrl: fake.baseUrl, apiKey: 'sk-test', model: 'fake-model' });
 *   fake.requests[0].headers.authorization; fake.requests[0].body.tools; …
 *
 * Scripted replies are used in order; when the queue is empty the `fallback` answers (by
 * default a 500 saying nothing was scripted, so a missing script fails loudly).
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the fake answers with. Every variant may wait `delayMs` first (for timeouts). */
export type FakeReply =
  | { content: string; usage?: { prompt_tokens: number; completion_tokens: number }; delayMs?: number }
  | {
      tool_calls: Array<{ id?: string; name: string; arguments: Record<string, unknown> | string }>;
      content?: string | null;
      usage?: { prompt_tokens: number; completion_tokens: number };
      delayMs?: number;
    }
  | { status: number; body?: unknown; delayMs?: number }
  /** A raw body (e.g. not JSON), with an optional status (default 200). */
  | { raw: string; status?: number; delayMs?: number };

/** A reply, or a function choosing one from the request. */
export type FakeResponder = FakeReply | ((request: RecordedRequest) => FakeReply);

/** One request as the fake received it. */
export interface RecordedRequest {
  method: string;
  /** Path and query, e.g. `/v1/chat/completions`. */
  url: string;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body (undefined when it was not JSON). */
  // `any`: tests read arbitrary fields of the request body
  body: any;
}

/** A running fake. */
export interface FakeOpenAi {
  /** Base URL to give a provider, e.g. `http://127.0.0.1:41234/v1`. */
  baseUrl: string;
  requests: RecordedRequest[];
  /** Appends replies to the script. */
  enqueue(...replies: FakeResponder[]): void;
  /** Answers when the script is empty. */
  fallback: FakeResponder;
  /** Clears the script and the recorded requests. */
  reset(): void;
  close(): Promise<void>;
}

const DEFAULT_USAGE = { prompt_tokens: 11, completion_tokens: 7 };

function completion(reply: Exclude<FakeReply, { status: number } | { raw: string }>, model: string, n: number): unknown {
  const message =
    'tool_calls' in reply
      ? {
          role: 'assistant',
          content: reply.content ?? null,
          tool_calls: reply.tool_calls.map((call, i) => ({
            id: call.id ?? `call_${n}_${i}`,
            type: 'function',
            function: { name: call.name, arguments: typeof call.arguments === 'string' ? call.arguments : JSON.stringify(call.arguments) },
          })),
        }
      : { role: 'assistant', content: reply.content };
  return {
    id: `chatcmpl-fake-${n}`,
    object: 'chat.completion',
    created: 0,
    model,
    choices: [{ index: 0, message, finish_reason: 'tool_calls' in reply ? 'tool_calls' : 'stop' }],
    usage: { ...(reply.usage ?? DEFAULT_USAGE), total_tokens: (reply.usage ?? DEFAULT_USAGE).prompt_tokens + (reply.usage ?? DEFAULT_USAGE).completion_tokens },
  };
}

/** Starts the fake on 127.0.0.1 with a free port, serving under `prefix` (default `/v1`). */
export async function startFakeOpenAi(options: { prefix?: string; fallback?: FakeResponder } = {}): Promise<FakeOpenAi> {
  const prefix = options.prefix ?? '/v1';
  const script: FakeResponder[] = [];
  const requests: RecordedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let served = 0;
  const fake: FakeOpenAi = {
    baseUrl: '',
    requests,
    enqueue: (...replies) => void script.push(...replies),
    fallback: options.fallback ?? { status: 500, body: { error: { message: 'fake-openai: no scripted response left' } } },
    reset: () => {
      script.length = 0;
      requests.length = 0;
    },
    close: async () => {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      const recorded: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      const path = (req.url ?? '').split('?')[0];
      if (req.method !== 'POST' || path !== `${prefix}/chat/completions`) {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: `no route ${req.method} ${path}` } }));
        return;
      }
      requests.push(recorded);
      const next = script.shift() ?? fake.fallback;
      const reply = typeof next === 'function' ? next(recorded) : next;
      const n = ++served;
      const send = (): void => {
        if (res.destroyed) return;
        if ('raw' in reply) res.writeHead(reply.status ?? 200, { 'content-type': 'text/plain' }).end(reply.raw);
        else if ('status' in reply) res.writeHead(reply.status, { 'content-type': 'application/json' }).end(JSON.stringify(reply.body ?? {}));
        else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(completion(reply, String((body as { model?: unknown })?.model ?? ''), n)));
      };
      if (reply.delayMs) {
        const timer = setTimeout(() => {
          timers.delete(timer);
          send();
        }, reply.delayMs);
        timers.add(timer);
        res.on('close', () => {
          clearTimeout(timer);
          timers.delete(timer);
        });
      } else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  fake.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}${prefix}`;
  return fake;
}
