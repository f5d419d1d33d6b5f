/**
 * Bot tools: which tools a turn may call (those mapped to its matched guidelines) and one
 * HTTP call to a tool endpoint. A failing tool never throws; it reports `ok: false`.
 */
import type { AgentStep, BotDefinition, Tool } from '../domain/entities.ts';
import { EngineError } from './errors.ts';
import type { GuidelineMatch } from './matcher.ts';

/** Default tool timeout when neither the tool nor the caller sets one. */
export const DEFAULT_TOOL_TIMEOUT_MS = 10_000;
/** `tool_called` steps keep at most this many characters of the result. */
export const TOOL_RESULT_STEP_LIMIT = 2048;
/** Bodies are read up to this many bytes; the rest is ignored. */
const MAX_BODY_BYTES = 64 * 1024;

/** A tool the turn may call, and the guideline that made it eligible. */
export interface EligibleTool {
  tool: Tool;
  guideline_id: string;
}

/**
 * The tools mapped (definition.mappings → definition.tools by name) to the matched
 * guidelines, in match order then mapping order, each tool once (credited to the first
 * guideline that brought it). Mappings naming a missing tool are skipped.
 */
export function eligibleTools(definition: BotDefinition, matches: readonly GuidelineMatch[]): EligibleTool[] {
  const out: EligibleTool[] = [];
  const seen = new Set<string>();
  for (const { guideline } of matches) {
    for (const mapping of definition.mappings) {
      if (mapping.guideline_id !== guideline.id || seen.has(mapping.tool_name)) continue;
      const tool = definition.tools.find((t) => t.name === mapping.tool_name);
      if (!tool) continue;
      seen.add(tool.name);
      out.push({ tool, guideline_id: guideline.id });
    }
  }
  return out;
}

/** The outcome of one tool call. */
export interface ToolOutcome {
  ok: boolean;
  status?: number;
  duration_ms: number;
  /** The parsed body (JSON, else text), up to 64 KB read; absent when nothing was received. */
  value?: unknown;
  /** Why the call failed, in words (`HTTP 503`, `timed out after 200 ms`, …); never includes headers. */
  error?: string;
}

/** What a tool call needs besides the tool and its arguments. */
export interface ToolCallContext {
  conversation_id: string;
  bot_id: string;
  fetch?: typeof fetch;
  /** Operator cap: the effective timeout is the smaller of this and the tool's `endpoint.timeout_ms`. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** The timeout a call uses: the smaller positive value of the caller's cap and the tool's own, else the default. */
export function toolTimeout(tool: Tool, capMs?: number): number {
  const values = [capMs, tool.endpoint?.timeout_ms].filter((v): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0);
  return values.length > 0 ? Math.min(...values) : DEFAULT_TOOL_TIMEOUT_MS;
}

/**
 * Calls a tool endpoint: GET with each argument as a query parameter (non-strings as
 * JSON), or POST with JSON `{arguments, conversation_id, bot_id}`; the tool's headers are
 * sent as given. Resolves `ok: true` for 2xx. Never rejects for tool problems (bad URL,
 * unreachable, non-2xx, timeout); rejects with EngineError `ABORTED` only when the
 * caller's signal fires.
 */
export async function callTool(tool: Tool, args: Record<string, unknown>, context: ToolCallContext): Promise<ToolOutcome> {
  const started = performance.now();
  const elapsed = (): number => Math.round(performance.now() - started);
  const timeoutMs = toolTimeout(tool, context.timeoutMs);
  let url: URL;
  try {
    url = new URL(tool.endpoint.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('protocol');
  } catch {
    return { ok: false, duration_ms: elapsed(), error: 'the tool endpoint URL is not a valid http(s) URL' };
  }
  const method = tool.endpoint.method === 'POST' ? 'POST' : 'GET';
  const headers: Record<string, string> = { accept: 'application/json, text/plain;q=0.9, */*;q=0.5', ...(tool.endpoint.headers ?? {}) };
  let body: string | undefined;
  if (method === 'GET') {
    for (const [key, value] of Object.entries(args)) {
      if (value !== undefined) url.searchParams.set(key, typeof value === 'string' ? value : JSON.stringify(value));
    }
  } else {
    headers['content-type'] = 'application/json';
    body = JSON.stringify({ arguments: args, conversation_id: context.conversation_id, bot_id: context.bot_id });
  }
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = context.signal ? AbortSignal.any([timeout, context.signal]) : timeout;
  const doFetch = context.fetch ?? fetch;
  try {
    const response = await doFetch(url, { method, headers, body, signal });
    const text = await readBounded(response);
    const value = parseBody(text);
    if (response.ok) return { ok: true, status: response.status, duration_ms: elapsed(), value };
    return { ok: false, status: response.status, duration_ms: elapsed(), value, error: `HTTP ${response.status}` };
  } catch (error) {
    if (context.signal?.aborted) throw new EngineError('ABORTED', 'the turn was aborted while calling a tool');
    if (timeout.aborted) return { ok: false, duration_ms: elapsed(), error: `timed out after ${timeoutMs} ms` };
    return { ok: false, duration_ms: elapsed(), error: `could not reach the tool endpoint (${reason(error)})` };
  }
}

async function readBounded(response: Response): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (size < MAX_BODY_BYTES) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
  }
  if (size >= MAX_BODY_BYTES) await reader.cancel().catch(() => {});
  return Buffer.concat(chunks).subarray(0, MAX_BODY_BYTES).toString('utf8');
}

function parseBody(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function reason(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown } } | null)?.cause;
  if (cause && typeof cause.code === 'string') return cause.code;
  return error instanceof Error ? error.message : 'network error';
}

/** `value` as a string of at most `limit` characters (JSON for non-strings), marked `…` when cut. */
export function truncateResult(value: unknown, limit = TOOL_RESULT_STEP_LIMIT): unknown {
  if (value === undefined) return undefined;
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  if (text.length <= limit) return value;
  return `${text.slice(0, limit)}…`;
}

/** The `tool_called` agent step for an outcome (result truncated to ~2 KB). */
export function toolStep(name: string, guidelineId: string | undefined, outcome: ToolOutcome): AgentStep {
  const step: AgentStep = { type: 'tool_called', tool_name: name, ok: outcome.ok, duration_ms: outcome.duration_ms };
  if (guidelineId !== undefined) step.guideline_id = guidelineId;
  if (outcome.status !== undefined) step.status = outcome.status;
  if (outcome.value !== undefined) step.result = truncateResult(outcome.value);
  if (outcome.error !== undefined) step.error = outcome.error;
  return step;
}
