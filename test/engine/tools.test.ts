import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createOfflineRulesProvider, runTurn } from '../../src/engine/index.ts';
import { conversation, definition, mapping, refundGuideline, tool } from './fixtures.ts';

interface Hit {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

const provider = createOfflineRulesProvider();
let server: Server;
let base: string;
const hits: Hit[] = [];

before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hits.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const path = (req.url ?? '').split('?')[0];
      if (path === '/orders') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'shipped', eta: '2 days' }));
      else if (path === '/slow') setTimeout(() => res.writeHead(200).end('late'), 2000).unref();
      else if (path === '/big') res.writeHead(200, { 'content-type': 'text/plain' }).end('x'.repeat(10_000));
      else if (path === '/broken') res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"down"}');
      else res.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
beforeEach(() => {
  hits.length = 0;
});

function refundBot(path: string, endpoint: Parameters<typeof tool>[2] = {}) {
  return definition({ guidelines: [refundGuideline], tools: [tool('order_status', `${base}${path}`, endpoint)], mappings: [mapping('gl_refund', 'order_status')] });
}

describe('tools over HTTP (offline turns)', () => {
  it('calls the mapped tool with GET when its guideline matches, and reports the result', async () => {
    const out = await runTurn({ definition: refundBot('/orders'), conversation: conversation(), history: [], message: 'can I get my money back?' }, { provider });
    assert.equal(hits.length, 1);
    assert.equal(hits[0]!.method, 'GET');
    assert.equal(hits[0]!.url, `/orders?message=${encodeURIComponent('can I get my money back?').replace(/%20/g, '+')}`);
    assert.equal(out.content, 'Explain the 30-day refund policy. Order status result — status: shipped, eta: 2 days.');
    const step = out.agent_steps.find((s) => s.type === 'tool_called');
    assert.deepEqual({ ...step, duration_ms: 0 }, { type: 'tool_called', tool_name: 'order_status', guideline_id: 'gl_refund', ok: true, status: 200, duration_ms: 0, result: { status: 'shipped', eta: '2 days' } });
    assert.deepEqual(out.source_citations, [{ type: 'tool', tool_name: 'order_status', guideline_id: 'gl_refund' }]);
  });

  it('does not call the tool when its guideline does not match', async () => {
    const out = await runTurn({ definition: refundBot('/orders'), conversation: conversation(), history: [], message: 'tell me a joke' }, { provider });
    assert.equal(hits.length, 0);
    assert.equal(out.agent_steps.length, 0);
  });

  it('POSTs {arguments, conversation_id, bot_id} as JSON with the tool headers', async () => {
    const def = refundBot('/orders', { method: 'POST', headers: { 'x-api-key': 'tool-secret' } });
    const out = await runTurn({ definition: def, conversation: conversation(), history: [], message: 'I want a refund' }, { provider });
    assert.equal(hits.length, 1);
    assert.equal(hits[0]!.method, 'POST');
    assert.equal(hits[0]!.url, '/orders');
    assert.equal(hits[0]!.headers['content-type'], 'application/json');
    assert.equal(hits[0]!.headers['x-api-key'], 'tool-secret');
    assert.deepEqual(JSON.parse(hits[0]!.body), { arguments: { message: 'I want a refund' }, conversation_id: 'conv_1', bot_id: 'bot_1' });
    assert.ok(out.agent_steps.some((s) => s.type === 'tool_called' && s.ok));
  });

  it('times out a slow tool: tool_called ok:false, and the turn still answers', async () => {
    const started = Date.now();
    const out = await runTurn({ definition: refundBot('/slow'), conversation: conversation(), history: [], message: 'refund?' }, { provider, toolTimeoutMs: 150 });
    assert.ok(Date.now() - started < 1500, 'the turn did not wait for the slow tool');
    const step = out.agent_steps.find((s) => s.type === 'tool_called');
    assert.equal(step?.type === 'tool_called' && step.ok, false);
    assert.equal(step?.type === 'tool_called' && step.error, 'timed out after 150 ms');
    assert.equal(out.content, "Explain the 30-day refund policy. I couldn't look up order status just now (timed out after 150 ms), so I can't confirm those details yet.");
  });

  it("uses the tool's own timeout when it is the smaller one", async () => {
    const out = await runTurn({ definition: refundBot('/slow', { timeout_ms: 100 }), conversation: conversation(), history: [], message: 'refund?' }, { provider, toolTimeoutMs: 5000 });
    const step = out.agent_steps.find((s) => s.type === 'tool_called');
    assert.equal(step?.type === 'tool_called' && step.error, 'timed out after 100 ms');
  });

  it('reports non-2xx answers and unreachable endpoints without failing the turn', async () => {
    const broken = await runTurn({ definition: refundBot('/broken'), conversation: conversation(), history: [], message: 'refund?' }, { provider });
    const step = broken.agent_steps.find((s) => s.type === 'tool_called');
    assert.deepEqual(step?.type === 'tool_called' && [step.ok, step.status, step.error, step.result], [false, 503, 'HTTP 503', { error: 'down' }]);
    assert.match(broken.content, /couldn't look up order status just now \(HTTP 503\)/);

    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', () => resolve()));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const def = definition({ guidelines: [refundGuideline], tools: [tool('order_status', `http://127.0.0.1:${port}/x`)], mappings: [mapping('gl_refund', 'order_status')] });
    const unreachable = await runTurn({ definition: def, conversation: conversation(), history: [], message: 'refund?' }, { provider });
    const failed = unreachable.agent_steps.find((s) => s.type === 'tool_called');
    assert.equal(failed?.type === 'tool_called' && failed.ok, false);
    assert.match(failed?.type === 'tool_called' ? failed.error ?? '' : '', /could not reach the tool endpoint \(ECONNREFUSED\)/);
  });

  it('truncates big results in the step to about 2 KB', async () => {
    const out = await runTurn({ definition: refundBot('/big'), conversation: conversation(), history: [], message: 'refund?' }, { provider });
    const step = out.agent_steps.find((s) => s.type === 'tool_called');
    const result = step?.type === 'tool_called' ? step.result : undefined;
    assert.equal(typeof result, 'string');
    assert.equal((result as string).length, 2049);
    assert.ok((result as string).endsWith('…'));
  });
});
