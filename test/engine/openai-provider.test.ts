import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createOpenAiCompatibleProvider, createProvider, EngineError, isEngineError, runTurn } from '../../src/engine/index.ts';
import { startFakeOpenAi, type FakeOpenAi } from '../support/fake-openai.ts';
import { conversation, definition, guideline, mapping, message, refundGuideline, tool } from './fixtures.ts';

const KEY = 'sk-test-SECRET-0123456789';
let fake: FakeOpenAi;
let toolServer: Server;
let toolBase: string;
const toolHits: string[] = [];

before(async () => {
  fake = await startFakeOpenAi();
  toolServer = createServer((req, res) => {
    toolHits.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ order: '42', status: 'shipped' }));
  });
  await new Promise<void>((resolve) => toolServer.listen(0, '127.0.0.1', () => resolve()));
  toolBase = `http://127.0.0.1:${(toolServer.address() as AddressInfo).port}`;
});
after(async () => {
  await fake.close();
  toolServer.closeAllConnections();
  await new Promise<void>((resolve) => toolServer.close(() => resolve()));
});
beforeEach(() => {
  fake.reset();
  toolHits.length = 0;
});

const provider = () => createOpenAiCompatibleProvider({ baseUrl: fake.baseUrl, apiKey: KEY, model: 'fake-model', timeoutMs: 2000 });

async function rejection(promise: Promise<unknown>): Promise<EngineError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isEngineError(error), `expected an EngineError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a rejection');
}

describe('OpenAI-compatible provider (against a fake server on loopback)', () => {
  it('sends the key as a bearer token, the model and messages; parses content and usage', async () => {
    fake.enqueue({ content: 'Hello there.', usage: { prompt_tokens: 12, completion_tokens: 3 } });
    const result = await provider().complete({ messages: [{ role: 'user', content: 'hi' }] });
    assert.deepEqual(result, { content: 'Hello there.', tool_calls: [], usage: { tokens_in: 12, tokens_out: 3 } });
    const request = fake.requests[0]!;
    assert.equal(request.url, '/v1/chat/completions');
    assert.equal(request.headers.authorization, `Bearer ${KEY}`);
    assert.equal(request.body.model, 'fake-model');
    assert.deepEqual(request.body.messages, [{ role: 'user', content: 'hi' }]);
    assert.equal(request.body.tools, undefined);
  });

  it('runs a turn with a tool-calling round trip', async () => {
    const def = definition({
      guidelines: [refundGuideline, guideline('gl_hours', 'the user asks about opening hours', 'list the opening hours')],
      tools: [
        tool('order_status', `${toolBase}/orders`, {}, { description: 'Looks up an order', input_schema: { type: 'object', properties: { order_id: { type: 'string' } }, required: ['order_id'] } }),
        tool('unmapped', `${toolBase}/unmapped`),
      ],
      mappings: [mapping('gl_refund', 'order_status')],
    });
    fake.enqueue(
      { tool_calls: [{ id: 'call_1', name: 'order_status', arguments: { order_id: '42' } }], usage: { prompt_tokens: 100, completion_tokens: 10 } },
      { content: 'Order 42 has shipped; refunds are possible within 30 days.', usage: { prompt_tokens: 150, completion_tokens: 20 } },
    );
    const history = [message('user', 'hello'), message('assistant', 'Hi! How can I help?')];
    const out = await runTurn({ definition: def, conversation: conversation(), history, message: 'can I get my money back for order 42?' }, { provider: provider() });

    assert.equal(out.content, 'Order 42 has shipped; refunds are possible within 30 days.');
    assert.deepEqual(toolHits, ['/orders?order_id=42']);
    const [first, second] = fake.requests;
    // only the tool mapped to the matched guideline is offered
    assert.deepEqual(first!.body.tools, [
      { type: 'function', function: { name: 'order_status', description: 'Looks up an order', parameters: { type: 'object', properties: { order_id: { type: 'string' } }, required: ['order_id'] } } },
    ]);
    assert.equal(first!.body.tool_choice, 'auto');
    const system = first!.body.messages[0];
    assert.equal(system.role, 'system');
    assert.match(system.content, /You are ShopBot/);
    assert.match(system.content, /- When the user asks about refunds: explain the 30-day refund policy/);
    assert.doesNotMatch(system.content, /opening hours/);
    assert.deepEqual(first!.body.messages.slice(1).map((m: { role: string }) => m.role), ['user', 'assistant', 'user']);
    // the tool result goes back to the model
    const toolMessage = second!.body.messages.at(-1);
    assert.equal(toolMessage.role, 'tool');
    assert.equal(toolMessage.tool_call_id, 'call_1');
    assert.deepEqual(JSON.parse(toolMessage.content), { ok: true, result: { order: '42', status: 'shipped' } });
    assert.deepEqual(second!.body.messages.at(-2).tool_calls, [{ id: 'call_1', type: 'function', function: { name: 'order_status', arguments: '{"order_id":"42"}' } }]);

    assert.deepEqual(out.agent_steps.map((s) => s.type), ['guideline_matched', 'provider', 'tool_called', 'provider']);
    const providerStep = out.agent_steps[1]!;
    assert.equal(providerStep.type === 'provider' && providerStep.tokens_in, 100);
    assert.deepEqual({ ...out.usage, latency_ms: 0 }, { provider: 'openai', model: 'fake-model', tokens_in: 250, tokens_out: 30, latency_ms: 0 });
    assert.deepEqual(out.source_citations, [{ type: 'tool', tool_name: 'order_status', guideline_id: 'gl_refund' }]);
    assert.equal(out.meta_data.mode, 'llm');
  });

  it('offers no tools when no guideline matched, and says so in the prompt', async () => {
    const def = definition({ guidelines: [refundGuideline], tools: [tool('order_status', `${toolBase}/orders`)], mappings: [mapping('gl_refund', 'order_status')] });
    fake.enqueue({ content: 'I can help with orders.' });
    const out = await runTurn({ definition: def, conversation: conversation(), history: [], message: 'tell me a joke' }, { provider: provider() });
    assert.equal(out.content, 'I can help with orders.');
    assert.equal(fake.requests[0]!.body.tools, undefined);
    assert.match(fake.requests[0]!.body.messages[0].content, /No specific guideline applies/);
  });

  it('asks once more without tools when the model keeps calling them past max_engine_iterations', async () => {
    const def = definition({ guidelines: [refundGuideline], tools: [tool('order_status', `${toolBase}/orders`)], mappings: [mapping('gl_refund', 'order_status')] });
    def.bot.max_engine_iterations = 1;
    fake.enqueue({ tool_calls: [{ name: 'order_status', arguments: {} }] }, { content: 'Done.' });
    const out = await runTurn({ definition: def, conversation: conversation(), history: [], message: 'refund' }, { provider: provider() });
    assert.equal(out.content, 'Done.');
    assert.equal(fake.requests.length, 2);
    assert.equal(fake.requests[1]!.body.tools, undefined);
  });

  it('turns a 500 into PROVIDER_FAILED with the status and without the key', async () => {
    fake.enqueue({ status: 500, body: { error: { message: `Internal error for key ${KEY} (sk-test****6789)` } } });
    const error = await rejection(runTurn({ definition: definition(), conversation: conversation(), history: [], message: 'hi' }, { provider: provider() }));
    assert.equal(error.code, 'PROVIDER_FAILED');
    assert.match(error.message, /HTTP 500/);
    assert.ok(!error.message.includes(KEY), error.message);
    assert.ok(!error.message.includes('SECRET'), error.message);
    assert.ok(!inspect(error).includes(KEY));
  });

  it('turns a slow server into PROVIDER_TIMEOUT', async () => {
    fake.enqueue({ content: 'too late', delayMs: 3000 });
    const slow = createOpenAiCompatibleProvider({ baseUrl: fake.baseUrl, apiKey: KEY, model: 'fake-model', timeoutMs: 200 });
    const started = Date.now();
    const error = await rejection(slow.complete({ messages: [{ role: 'user', content: 'hi' }] }));
    assert.equal(error.code, 'PROVIDER_TIMEOUT');
    assert.ok(Date.now() - started < 2000);
    assert.ok(!error.message.includes(KEY));
  });

  it('turns unusable answers into PROVIDER_BAD_RESPONSE', async () => {
    fake.enqueue({ raw: 'not json' }, { status: 200, body: { choices: [] } }, { tool_calls: [{ name: 'x', arguments: '{broken' }] });
    for (let i = 0; i < 3; i++) {
      const error = await rejection(provider().complete({ messages: [{ role: 'user', content: 'hi' }] }));
      assert.equal(error.code, 'PROVIDER_BAD_RESPONSE');
    }
  });

  it('turns an unreachable server into PROVIDER_FAILED', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', () => resolve()));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const error = await rejection(createOpenAiCompatibleProvider({ baseUrl: `http://127.0.0.1:${port}/v1`, apiKey: KEY, model: 'm' }).complete({ messages: [] }));
    assert.equal(error.code, 'PROVIDER_FAILED');
    assert.match(error.message, /ECONNREFUSED/);
  });

  it('keeps an Azure-style query string and works without a key', async () => {
    const azure = await startFakeOpenAi({ prefix: '/openai/deployments/gpt' });
    try {
      azure.enqueue({ content: 'ok' });
      const p = createOpenAiCompatibleProvider({ baseUrl: `${azure.baseUrl}?api-version=2024-06-01`, model: 'gpt' });
      await p.complete({ messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(azure.requests[0]!.url, '/openai/deployments/gpt/chat/completions?api-version=2024-06-01');
      assert.equal(azure.requests[0]!.headers.authorization, undefined);
    } finally {
      await azure.close();
    }
  });

  it('never exposes the key on the provider object', () => {
    const p = provider();
    assert.ok(!JSON.stringify(p).includes(KEY));
    assert.ok(!inspect(p, { showHidden: true, depth: 5 }).includes(KEY));
  });

  it('createProvider validates its configuration', async () => {
    assert.equal(createProvider({ provider: 'offline' }).name, 'offline');
    assert.equal(createProvider({ provider: 'openai', model: 'gpt-4o-mini', apiKey: KEY }).model, 'gpt-4o-mini');
    assert.throws(() => createProvider({ provider: 'openai' }), (e: unknown) => isEngineError(e, 'INVALID_CONFIG'));
    assert.throws(() => createProvider({ provider: 'openai', model: 'm', baseUrl: 'ftp://x' }), (e: unknown) => isEngineError(e, 'INVALID_CONFIG'));
    assert.throws(() => createProvider({ provider: 'openai', model: 'm', baseUrl: 'http://user:pw@host/v1' }), (e: unknown) => isEngineError(e, 'INVALID_CONFIG'));
    const error = await rejection(createProvider({ provider: 'offline' }).complete({ messages: [] }));
    assert.equal(error.code, 'PROVIDER_UNSUPPORTED');
  });
});
