import { EngineError } from '../errors.ts';
import type { ChatMessage, CompletionRequest, CompletionResult, Provider, ToolCall } from './types.ts';

/** Settings of an OpenAI-compatible endpoint (OpenAI, Azure OpenAI, Ollama, vLLM, LM Studio …). */
export interface OpenAiCompatibleConfig {
  /** Base URL up to (not including) `/chat/completions`, e.g. `https://api.openai.com/v1`; a query string (Azure's `api-version`) is kept. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer …`; omit for local servers that need none. Never appears in errors. */
  apiKey?: string;
  model: string;
  /** Per-request timeout; default 60 000 ms. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const MAX_ERROR_DETAIL = 200;

/**
 * A provider for any server speaking the chat-completions API: POSTs to
 * `${baseUrl}/chat/completions` with `Authorization: Bearer <apiKey>`, offers `tools` with
 * `tool_choice: 'auto'`, and parses `choices[0].message` and `usage`.
 * Throws EngineError `INVALID_CONFIG` for an unusable base URL or model. `complete` throws
 * `PROVIDER_TIMEOUT`, `PROVIDER_FAILED` (unreachable or non-2xx, with the status),
 * `PROVIDER_BAD_RESPONSE`, or `ABORTED`; error messages never contain the API key.
 */
export function createOpenAiCompatibleProvider(config: OpenAiCompatibleConfig): Provider {
  const endpoint = completionsUrl(config.baseUrl);
  const model = config.model?.trim();
  if (!model) throw new EngineError('INVALID_CONFIG', 'an OpenAI-compatible provider needs a model name');
  const timeoutMs = config.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new EngineError('INVALID_CONFIG', 'provider timeoutMs must be a positive number');
  const apiKey = config.apiKey || undefined;
  const where = `${endpoint.origin}${endpoint.pathname}`;

  async function complete(request: CompletionRequest, options: { signal?: AbortSignal } = {}): Promise<CompletionResult> {
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (apiKey) headers.authorization = `Bearer ${apiKey}`;
    const body: Record<string, unknown> = { model, messages: request.messages.map(toWire) };
    if (request.tools && request.tools.length > 0) {
      body.tools = request.tools.map((fn) => ({ type: 'function', function: fn }));
      body.tool_choice = 'auto';
    }
    if (request.temperature !== undefined) body.temperature = request.temperature;
    if (request.max_tokens !== undefined) body.max_tokens = request.max_tokens;

    let status: number;
    let text: string;
    try {
      const response = await fetch(endpoint, { method: 'POST', headers, body: JSON.stringify(body), signal });
      status = response.status;
      text = await response.text();
    } catch (error) {
      if (options.signal?.aborted) throw new EngineError('ABORTED', 'the turn was aborted while waiting for the provider');
      if (timeout.aborted) throw new EngineError('PROVIDER_TIMEOUT', `provider did not answer within ${timeoutMs} ms (${where})`);
      throw new EngineError('PROVIDER_FAILED', `could not reach provider at ${where}: ${networkReason(error)}`, { cause: error });
    }
    if (status < 200 || status > 299) {
      const detail = errorDetail(text, apiKey);
      throw new EngineError('PROVIDER_FAILED', `provider answered HTTP ${status} (${where})${detail ? `: ${detail}` : ''}`);
    }
    return parseCompletion(text);
  }

  return Object.freeze({ name: 'openai', model, complete });
}

function completionsUrl(baseUrl: string): URL {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new EngineError('INVALID_CONFIG', 'provider baseUrl must be an absolute http(s) URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new EngineError('INVALID_CONFIG', 'provider baseUrl must use http or https');
  if (url.username || url.password) throw new EngineError('INVALID_CONFIG', 'provider baseUrl must not contain credentials; use apiKey');
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/chat/completions`;
  url.hash = '';
  return url;
}

function toWire(message: ChatMessage): Record<string, unknown> {
  if (message.role === 'assistant' && message.tool_calls && message.tool_calls.length > 0) {
    return {
      role: 'assistant',
      content: message.content,
      tool_calls: message.tool_calls.map((call) => ({
        id: call.id,
        type: 'function',
        function: { name: call.name, arguments: JSON.stringify(call.arguments) },
      })),
    };
  }
  if (message.role === 'assistant') return { role: 'assistant', content: message.content ?? '' };
  return { ...message };
}

function networkReason(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  if (cause && typeof cause.code === 'string') return cause.code;
  if (cause && typeof cause.message === 'string') return cause.message;
  return error instanceof Error ? error.message : 'network error';
}

/** The provider's own error message, if any, with anything key-like removed. */
function errorDetail(text: string, apiKey: string | undefined): string {
  let detail = '';
  try {
    const parsed = JSON.parse(text) as { error?: unknown; message?: unknown };
    const error = parsed?.error;
    if (typeof error === 'string') detail = error;
    else if (error && typeof (error as { message?: unknown }).message === 'string') detail = (error as { message: string }).message;
    else if (typeof parsed?.message === 'string') detail = parsed.message;
  } catch {
    detail = text.trim().startsWith('<') ? '' : text;
  }
  // the key goes first (linear, on the whole text); the pattern scrubbing runs on a short prefix only
  const withoutKey = apiKey ? detail.split(apiKey).join('[redacted]') : detail;
  return redact(withoutKey.slice(0, MAX_ERROR_DETAIL * 4), apiKey).replace(/\s+/g, ' ').trim().slice(0, MAX_ERROR_DETAIL);
}

/** Removes the key itself, key-shaped tokens (`sk-…`) and masked keys (`abc****xyz`). */
export function redact(text: string, apiKey: string | undefined): string {
  let out = apiKey ? text.split(apiKey).join('[redacted]') : text;
  out = out.replace(/\b(?:sk|rk|pk)-[A-Za-z0-9_*.-]{3,}/g, '[redacted]');
  out = out.replace(/\S*\*{3,}\S*/g, '[redacted]');
  out = out.replace(/bearer\s+\S+/gi, 'Bearer [redacted]');
  return out;
}

function bad(message: string): EngineError {
  return new EngineError('PROVIDER_BAD_RESPONSE', `provider answered with ${message}`);
}

function parseCompletion(text: string): CompletionResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw bad('a body that is not JSON');
  }
  const root = parsed as { choices?: unknown; usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } } | null;
  const choice = Array.isArray(root?.choices) ? (root.choices[0] as { message?: unknown } | undefined) : undefined;
  const message = choice?.message as { content?: unknown; tool_calls?: unknown } | undefined;
  if (!message || typeof message !== 'object') throw bad('no choices[0].message');
  return {
    content: contentText(message.content),
    tool_calls: toolCalls(message.tool_calls),
    usage: {
      tokens_in: count(root?.usage?.prompt_tokens),
      tokens_out: count(root?.usage?.completion_tokens),
    },
  };
}

function contentText(content: unknown): string {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content.map((part) => (typeof part === 'string' ? part : typeof part?.text === 'string' ? part.text : '')).join('');
  }
  throw bad('a message content that is neither text nor null');
}

function toolCalls(raw: unknown): ToolCall[] {
  if (raw === null || raw === undefined) return [];
  if (!Array.isArray(raw)) throw bad('tool_calls that is not an array');
  return raw.map((item, index) => {
    const fn = (item as { function?: { name?: unknown; arguments?: unknown } } | null)?.function;
    if (!fn || typeof fn.name !== 'string' || fn.name === '') throw bad(`tool_calls[${index}] without a function name`);
    const id = typeof (item as { id?: unknown }).id === 'string' && (item as { id: string }).id ? (item as { id: string }).id : `call_${index}`;
    return { id, name: fn.name, arguments: toolArguments(fn.arguments, index) };
  });
}

function toolArguments(raw: unknown, index: number): Record<string, unknown> {
  let value = raw;
  if (raw === undefined || raw === null || raw === '') return {};
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw);
    } catch {
      throw bad(`tool_calls[${index}] arguments that are not valid JSON`);
    }
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw bad(`tool_calls[${index}] arguments that are not a JSON object`);
  return value as Record<string, unknown>;
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : 0;
}
