/**
 * The provider contract: one chat-completions-shaped call. Implementations: the offline
 * rules provider (no model) and any OpenAI-compatible `/chat/completions` endpoint.
 */

/** A tool call the model asked for; `arguments` is already parsed from JSON. */
export interface ToolCall {
  id: string;
  name: string;
  arguments: Record<string, unknown>;
}

/** One chat message, as in the chat-completions API. */
export type ChatMessage =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string }
  | { role: 'assistant'; content: string | null; tool_calls?: ToolCall[] }
  | { role: 'tool'; tool_call_id: string; content: string };

/** A function the model may call; `parameters` is a JSON Schema with `type: 'object'`. */
export interface FunctionDefinition {
  name: string;
  description?: string;
  parameters: Record<string, unknown>;
}

/** What a provider is asked: the conversation so far and, optionally, callable functions. */
export interface CompletionRequest {
  messages: ChatMessage[];
  /** Functions offered with `tool_choice: 'auto'`; omitted or empty: the model must answer in text. */
  tools?: FunctionDefinition[];
  temperature?: number;
  max_tokens?: number;
}

/** Token counts of one completion (0 when the provider does not report them). */
export interface Usage {
  tokens_in: number;
  tokens_out: number;
}

/** What a provider answered: text (possibly empty when it calls tools), tool calls, usage. */
export interface CompletionResult {
  content: string;
  tool_calls: ToolCall[];
  usage: Usage;
}

/**
 * A language-model backend. `complete` resolves with the model's answer or throws
 * EngineError (`PROVIDER_TIMEOUT`, `PROVIDER_FAILED`, `PROVIDER_BAD_RESPONSE`,
 * `PROVIDER_UNSUPPORTED`, `ABORTED`). Implementations hold secrets in closures: the
 * object itself never exposes an API key (safe to log or serialise).
 */
export interface Provider {
  /** `offline` for the rules provider; `openai` for OpenAI-compatible endpoints. */
  readonly name: string;
  readonly model: string;
  complete(request: CompletionRequest, options?: { signal?: AbortSignal }): Promise<CompletionResult>;
}
