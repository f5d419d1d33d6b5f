/**
 * Otto's stored entities (snake_case, as in the seeds). Every document carries
 * `id`, `version`, `created_at`, `updated_at` (StoredMeta) and, when tenant-scoped, `owner_id`.
 */
import type { StoredMeta } from '../storage/contract.ts';
import type { Permission, Role } from './permissions.ts';

/** How a bot composes replies (Parlant's modes). */
export const compositionModes = ['fluid', 'canned_fluid', 'composited_canned', 'strict_canned'] as const;
export type CompositionMode = (typeof compositionModes)[number];

export const criticalities = ['low', 'medium', 'high'] as const;
export type Criticality = (typeof criticalities)[number];

export interface Owned {
  owner_id: string;
}

export interface Bot extends StoredMeta, Owned {
  name: string;
  /** The name lowercased and trimmed: unique per owner, so bots can be found by name. */
  name_key: string;
  description: string;
  composition_mode: CompositionMode;
  max_engine_iterations: number;
  metadata: Record<string, unknown>;
  /** Messages older than this many days are deleted by the retention sweeper; null or absent: kept forever. */
  retention_days?: number | null;
}

export interface Guideline extends StoredMeta, Owned {
  bot_id: string;
  /** When this applies, in words ("the user asks about refunds"). */
  condition: string;
  /** What the bot does then ("explain the 30-day refund policy"). */
  action: string;
  description: string;
  criticality: Criticality;
  enabled: boolean;
}

/** One step of a journey. */
export interface JourneyStep {
  /** What the bot says or does at this step. */
  instruction: string;
  /** Words in the user's message that move the journey past this step; empty: any reply does. */
  advance_when?: string[];
}

export interface Journey extends StoredMeta, Owned {
  bot_id: string;
  title: string;
  description: string;
  /** Phrases that start the journey. */
  conditions: string[];
  steps: JourneyStep[];
}

/** A tool: an HTTP endpoint the bot may call. */
export interface Tool extends StoredMeta, Owned {
  bot_id: string;
  name: string;
  description: string;
  /** JSON Schema of the tool's arguments. */
  input_schema: Record<string, unknown>;
  endpoint: { url: string; method: 'GET' | 'POST'; timeout_ms: number; headers?: Record<string, string> };
}

/** Maps a tool to a guideline: when the guideline matches, the tool is called. */
export interface ToolMapping extends StoredMeta, Owned {
  bot_id: string;
  guideline_id: string;
  tool_name: string;
}

export interface Conversation extends StoredMeta, Owned {
  bot_id: string;
  user_id: string | null;
  title: string;
  context: Record<string, unknown>;
  /** Offset of the last message; offsets start at 1 and have no gaps. */
  last_offset: number;
  /** Journey progress per journey id: the index of the current step. */
  journey_state: Record<string, number>;
}

export type MessageRole = 'user' | 'assistant' | 'system';

/** What happened during a turn, shown on demand. */
export type AgentStep =
  | { type: 'guideline_matched'; guideline_id: string; condition: string; action: string; score: number }
  | { type: 'journey_step'; journey_id: string; title: string; step: number; instruction: string }
  | { type: 'tool_called'; tool_name: string; guideline_id?: string; ok: boolean; status?: number; duration_ms: number; result?: unknown; error?: string }
  | { type: 'provider'; provider: string; model: string; duration_ms: number; tokens_in?: number; tokens_out?: number }
  | { type: 'builder_action'; action: string; target?: string; ok: boolean; detail?: string }
  | { type: 'error'; code: string; message: string };

export interface Message extends StoredMeta, Owned {
  conversation_id: string;
  /** Position in the conversation, 1-based, unique, without gaps. */
  offset: number;
  role: MessageRole;
  content: string;
  agent_steps: AgentStep[];
  /** Attachment names (the seeds' `pdf_names`). */
  pdf_names: string[];
  source_citations: Array<Record<string, unknown>>;
  meta_data: Record<string, unknown>;
}

export interface ApiKeyRecord extends StoredMeta, Owned {
  /** sha256 of the key, hex. The key itself is never stored. */
  key_hash: string;
  /** The key's lookup prefix, stored in the clear and indexed (`otto_<prefix>_<secret>`); first characters for configured keys. */
  prefix: string;
  name: string;
  /** `config`: from OTTO_API_KEYS (an admin key, no user); `user`: an access key of a user. */
  source: 'config' | 'api' | 'user';
  /** The user the key belongs to (= `owner_id`); null for configured keys. */
  user_id?: string | null;
  /** When the key was last presented (updated at most once a minute per process). */
  last_used_at?: string | null;
  /** After this instant the key is refused; null: never expires. */
  expires_at?: string | null;
  /** When it was revoked; a revoked key is refused from the next request on. */
  revoked_at?: string | null;
}

/** A person (or program) that signs in with access keys. Their data carries `owner_id` = their id. */
export interface User extends StoredMeta {
  /** Lowercase, unique. */
  username: string;
  email: string | null;
  display_name: string;
  role: Role;
  /** A disabled user's keys are refused. */
  disabled: boolean;
}

/** One role's permissions (`id` = the role name). */
export interface RolePermissionsRecord extends StoredMeta {
  role: Role;
  permissions: Permission[];
}

/** A bot with everything a turn needs: what the registry keeps in memory. */
export interface BotDefinition {
  bot: Bot;
  guidelines: Guideline[];
  journeys: Journey[];
  tools: Tool[];
  mappings: ToolMapping[];
  /** True for Otto, the built-in bot-builder (never stored). */
  builtIn?: boolean;
}
