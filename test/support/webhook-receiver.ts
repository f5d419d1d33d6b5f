/**
 * A real HTTP receiver of Otto's webhooks on loopback: records each request with its raw body
 * and headers, verifies `Otto-Signature` with the webhook's secret, and answers with the status
 * `respond` chooses (200 by default).
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyWebhookSignature } from '../../src/webhooks/index.ts';

export interface ReceivedDelivery {
  headers: IncomingHttpHeaders;
  body: string;
  json: any;
  /** Whether Otto-Signature verified with the secret set at that time. */
  signed: boolean;
  /** The status this receiver answered with. */
  answered?: number;
}

export interface WebhookReceiver {
  url: string;
  received: ReceivedDelivery[];
  /** The secret signatures are checked with. */
  secret: string;
  /** Chooses the status of each answer (e.g. 500 for the first few). */
  respond: (n: number, delivery: ReceivedDelivery) => number;
  /** Event ids accepted (valid signature, answered 2xx), deduplicated as a receiver should (by Otto-Event-Id). */
  eventIds(): Set<string>;
  waitFor(predicate: (received: ReceivedDelivery[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const receiver: WebhookReceiver = {
    url: '',
    received: [],
    secret: '',
    respond: () => 200,
    eventIds: () => new Set(receiver.received.filter((r) => r.signed && r.answered! >= 200 && r.answered! < 300).map((r) => String(r.headers['otto-event-id']))),
    async waitFor(predicate, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(receiver.received)) {
        if (Date.now() > deadline) throw new Error(`webhook receiver: condition not met within ${timeoutMs} ms (${receiver.received.length} received)`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: any;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      const header = req.headers['otto-signature'];
      const delivery: ReceivedDelivery = { headers: req.headers, body, json, signed: verifyWebhookSignature({ secret: receiver.secret, header: typeof header === 'string' ? header : undefined, body }) };
      receiver.received.push(delivery);
      delivery.answered = receiver.respond(receiver.received.length, delivery);
      res.writeHead(delivery.answered).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/otto`;
  return receiver;
}
