/**
 * Minimal HTTP clients of the platforms' APIs, with configurable base URLs (tests point them
 * at fake servers on loopback). Tokens go in the URL path (Telegram) or an Authorization header
 * (Slack) and never into errors.
 */
import { OttoError } from '../domain/errors.ts';

const TIMEOUT_MS = 10_000;

/** Calls one API method and returns its JSON. Throws OttoError UPSTREAM_FAILED (unreachable, non-JSON) naming the platform and method only. */
async function callJson(platform: string, method: string, url: string, init: RequestInit): Promise<{ status: number; json: Record<string, unknown> }> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, signal: AbortSignal.timeout(TIMEOUT_MS), redirect: 'error' });
  } catch (error) {
    const e = error as { name?: string; cause?: { code?: string } };
    const reason = e.name === 'TimeoutError' ? `no answer within ${TIMEOUT_MS / 1000} s` : (e.cause?.code ?? 'unreachable');
    throw new OttoError('UPSTREAM_FAILED', `${platform} ${method} failed: ${reason}`, { cause: error });
  }
  const text = await response.text();
  try {
    const json = JSON.parse(text) as Record<string, unknown>;
    if (typeof json !== 'object' || json === null) throw new Error('not an object');
    return { status: response.status, json };
  } catch {
    throw new OttoError('UPSTREAM_FAILED', `${platform} ${method} answered HTTP ${response.status} without JSON`);
  }
}

/** The Telegram Bot API (`<base>/bot<token>/<method>`). */
export interface TelegramApi {
  /** The bot's identity. Throws INVALID (field bot_token) when Telegram refuses the token; UPSTREAM_FAILED otherwise. */
  getMe(): Promise<{ id: number; username?: string }>;
  /** Registers Otto's webhook URL with its secret token, for message updates. Throws as `getMe`. */
  setWebhook(args: { url: string; secretToken: string }): Promise<void>;
  /** Removes the webhook. Throws UPSTREAM_FAILED. */
  deleteWebhook(): Promise<void>;
  /** Sends a text message to a chat. Throws UPSTREAM_FAILED. */
  sendMessage(args: { chatId: number | string; text: string; replyTo?: number }): Promise<void>;
}

export function createTelegramApi(args: { base: string; token: string }): TelegramApi {
  const call = async (method: string, body: Record<string, unknown>): Promise<unknown> => {
    const { status, json } = await callJson('Telegram', method, `${args.base}/bot${args.token}/${method}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (json.ok === true) return json.result;
    const description = typeof json.description === 'string' ? json.description.slice(0, 200) : `HTTP ${status}`;
    if (status === 401 || status === 404) throw new OttoError('INVALID', `Telegram refused the bot token (${description}); copy it again from @BotFather`, { field: 'bot_token' });
    throw new OttoError('UPSTREAM_FAILED', `Telegram ${method} failed: ${description}`);
  };
  return {
    async getMe() {
      const result = (await call('getMe', {})) as { id?: unknown; username?: unknown };
      if (typeof result?.id !== 'number') throw new OttoError('UPSTREAM_FAILED', 'Telegram getMe answered without a bot id');
      return { id: result.id, ...(typeof result.username === 'string' ? { username: result.username } : {}) };
    },
    async setWebhook({ url, secretToken }) {
      await call('setWebhook', { url, secret_token: secretToken, allowed_updates: ['message'], drop_pending_updates: false });
    },
    async deleteWebhook() {
      await call('deleteWebhook', {});
    },
    async sendMessage({ chatId, text, replyTo }) {
      await call('sendMessage', { chat_id: chatId, text: text.slice(0, 4096), ...(replyTo ? { reply_parameters: { message_id: replyTo, allow_sending_without_reply: true } } : {}) });
    },
  };
}

/** The Slack Web API (`<base>/<method>`, `Authorization: Bearer <bot token>`). */
export interface SlackApi {
  /** The bot's identity. Throws INVALID (field bot_token) when Slack refuses the token; UPSTREAM_FAILED otherwise. */
  authTest(): Promise<{ user_id: string; bot_id?: string; team_id?: string }>;
  /** Posts a message to a channel (in a thread when `threadTs` is given). Throws UPSTREAM_FAILED. */
  postMessage(args: { channel: string; text: string; threadTs?: string }): Promise<void>;
}

export function createSlackApi(args: { base: string; token: string }): SlackApi {
  const call = async (method: string, body: Record<string, unknown>): Promise<Record<string, unknown>> => {
    const { status, json } = await callJson('Slack', method, `${args.base}/${method}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8', authorization: `Bearer ${args.token}` },
      body: JSON.stringify(body),
    });
    if (json.ok === true) return json;
    const error = typeof json.error === 'string' ? json.error.slice(0, 100) : `HTTP ${status}`;
    if (['invalid_auth', 'not_authed', 'account_inactive', 'token_revoked'].includes(error)) {
      throw new OttoError('INVALID', `Slack refused the bot token (${error}); use the Bot User OAuth Token (xoxb-…)`, { field: 'bot_token' });
    }
    throw new OttoError('UPSTREAM_FAILED', `Slack ${method} failed: ${error}`);
  };
  return {
    async authTest() {
      const json = await call('auth.test', {});
      if (typeof json.user_id !== 'string') throw new OttoError('UPSTREAM_FAILED', 'Slack auth.test answered without a user_id');
      return { user_id: json.user_id, ...(typeof json.bot_id === 'string' ? { bot_id: json.bot_id } : {}), ...(typeof json.team_id === 'string' ? { team_id: json.team_id } : {}) };
    },
    async postMessage({ channel, text, threadTs }) {
      await call('chat.postMessage', { channel, text: text.slice(0, 40000), ...(threadTs ? { thread_ts: threadTs } : {}) });
    },
  };
}
