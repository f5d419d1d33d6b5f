/**
 * The shapes the page works with. Entities come from the generated OpenAPI types (routes'
 * responses), so they follow the server. Routes whose OpenAPI schema is still being written
 * elsewhere in Otto (/health's body, /me, /users, /usage, /admin/doctor) have hand-written
 * shapes here; the page reads them defensively and shows their views only when the running
 * server lists the route.
 */
import type { paths } from './openapi';

type Json<T> = T extends { content: { 'application/json': infer R } } ? R : never;

/**
 * A PATCH body: the API's patch schemas require no field (any non-empty subset), while the
 * generated types (built with `propertiesRequiredByDefault`, true of stored entities) list
 * them all. Field names and value types are still checked against the API.
 */
export const patchBody = <T,>(body: Partial<T>) => body as T;

export type Bot = Json<paths['/bots/{id}']['get']['responses'][200]>;
export type Guideline = Json<paths['/bots/{id}/guidelines/{child_id}']['patch']['responses'][200]>;
export type Journey = Json<paths['/bots/{id}/journeys/{child_id}']['patch']['responses'][200]>;
export type Tool = Json<paths['/bots/{id}/tools']['post']['responses'][201]>;
export type ToolMapping = Json<paths['/bots/{id}/tool-mappings']['post']['responses'][201]>;
export type Conversation = Json<paths['/conversations']['post']['responses'][201]>;
export type MessagePage = Json<paths['/conversations/{id}/messages']['get']['responses'][200]>;
export type Message = MessagePage['items'][number];

export type BotCreate = paths['/bots']['post']['requestBody']['content']['application/json'];
export type GuidelineCreate = paths['/bots/{id}/guidelines']['post']['requestBody']['content']['application/json'];
export type JourneyCreate = paths['/bots/{id}/journeys']['post']['requestBody']['content']['application/json'];
export type BotPatch = paths['/bots/{id}']['patch']['requestBody']['content']['application/json'];
export type GuidelinePatch = paths['/bots/{id}/guidelines/{child_id}']['patch']['requestBody']['content']['application/json'];
export type JourneyPatch = paths['/bots/{id}/journeys/{child_id}']['patch']['requestBody']['content']['application/json'];
export type ToolCreate = paths['/bots/{id}/tools']['post']['requestBody']['content']['application/json'];

/** One step of how a reply was made (`message.agent_steps[]`). */
export interface AgentStep {
  type: string;
  [key: string]: unknown;
}

/** `GET /health` */
export interface Health {
  status: 'ok' | 'down' | 'degraded' | string;
  version?: string;
  uptime_s?: number;
  storage?: {
    engine?: string;
    location?: string;
    ok?: boolean;
    latency_ms?: number;
    server_version?: string;
    error?: string;
    capabilities?: Record<string, boolean>;
    migrations?: { applied?: number; pending?: number; total?: number };
  };
  bots?: { rehydrated?: number; loaded?: number };
  mirrors?: Array<{ url: string; seq?: number; lag?: number; seconds_behind?: number; status?: string; last_error?: string }>;
  degraded?: { active?: boolean; since?: string | null; reason?: string | null; reads_from?: string | null; spool_backlog?: number; conflicts?: number };
  spool?: { backlog?: number };
}

/** `GET /me` */
export interface Me {
  user: { id: string; username: string; email?: string | null; display_name?: string | null; role: string };
  permissions: string[];
  auth: 'local' | 'key' | 'config' | string;
}

/** A user (`GET /users`). */
export interface User {
  id: string;
  username: string;
  email?: string | null;
  display_name?: string | null;
  role: string;
  disabled?: boolean;
  created_at?: string;
}

/** An access key's public record (never its secret). */
export interface ApiKey {
  id: string;
  prefix: string;
  name: string;
  created_at: string;
  expires_at?: string | null;
  last_used_at?: string | null;
  revoked_at?: string | null;
}

/** `GET /usage` */
export interface UsageReport {
  from: string;
  to: string;
  group_by: string;
  rows: Array<{ key: string; calls: number; tokens_in: number; tokens_out: number; cost_usd: number }>;
  totals: { calls?: number; tokens_in?: number; tokens_out?: number; cost_usd?: number };
}

/** `GET /admin/doctor` */
export interface DoctorReport {
  findings: Array<{ check: string; status: 'ok' | 'warn' | 'fail' | string; message: string; fix?: string }>;
}
