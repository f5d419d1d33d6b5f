import { type BotDefinition, type Conversation, type Message } from '../domain/index.ts';
import { OttoError } from '../domain/errors.ts';
import { validateInput } from '../domain/schemas.ts';
import { isEngineError, runBuilderTurn, runTurn, type BuilderActions, type Provider, type TurnOutput } from '../engine/index.ts';
import { BUILDER_BOT_ID, type BotService } from './bots.ts';
import { canAccess, requirePermission, type Caller } from './caller.ts';
import type { ConversationService } from './conversations.ts';
import type { BotRegistry } from './registry.ts';
import { isBudgetExceeded, type TurnMeter, type UsageService } from './usage.ts';

/** How many recent messages a turn reads. */
export const TURN_WINDOW = 20;

export interface ChatRequest {
  bot_id?: string;
  conversation_id?: string;
  message: string;
  user_id?: string | null;
}

export interface ChatResult {
  conversation_id: string;
  conversation: Conversation;
  message: Message;
  reply: Message;
}

/** A turn: store the user's message, run the bot, store its reply. */
export class ChatService {
  private readonly bots: BotService;
  private readonly conversations: ConversationService;
  private readonly registry: BotRegistry;
  private readonly provider: Provider;
  private readonly toolTimeoutMs: number;
  /**
   * Chooses the provider of a turn by the bot's owner (the caller's, for the bot-builder): set
   * by Otto when provider keys are stored (the owner's key, else a global key, else the
   * configured one). Unset: every turn uses `provider`.
   */
  providerFor: ((ownerId: string) => Promise<Provider>) | undefined;
  /**
   * Records every provider call of a turn (`ai_activity_logs`) and enforces monthly budgets: set
   * by `createServices`. Unset: nothing is recorded and no budget applies.
   */
  usage: UsageService | undefined;

  constructor(parts: { bots: BotService; conversations: ConversationService; registry: BotRegistry; provider: Provider; toolTimeoutMs: number }) {
    this.bots = parts.bots;
    this.conversations = parts.conversations;
    this.registry = parts.registry;
    this.provider = parts.provider;
    this.toolTimeoutMs = parts.toolTimeoutMs;
  }

  /** The bot's definition if the caller may talk to it; throws NOT_FOUND otherwise. */
  definitionFor(caller: Caller, botId: string): BotDefinition {
    const definition = this.registry.get(botId);
    if (!definition || (!definition.builtIn && !canAccess(caller, definition.bot.owner_id))) {
      throw new OttoError('NOT_FOUND', `bot ${botId} not found`, { field: 'bot_id' });
    }
    return definition;
  }

  /**
   * `POST /chat`: sends a message to a bot, in the given conversation or a new one.
   * Throws INVALID, NOT_FOUND, PROVIDER_FAILED / PROVIDER_TIMEOUT / BUDGET_EXCEEDED (the user's message stays
   * stored with the error recorded on it; no reply is stored), StorageError.
   */
  async send(args: { caller: Caller; input: ChatRequest }): Promise<ChatResult> {
    const input = validateInput<ChatRequest>('ChatRequest', args.input);
    let conversation: Conversation;
    if (input.conversation_id) {
      conversation = await this.conversations.get({ caller: args.caller, id: input.conversation_id });
      if (input.bot_id && input.bot_id !== conversation.bot_id) throw new OttoError('INVALID', `conversation ${conversation.id} belongs to bot ${conversation.bot_id}`, { field: 'bot_id' });
    } else {
      if (!input.bot_id) throw new OttoError('INVALID', 'bot_id is required when no conversation_id is given', { field: 'bot_id' });
      this.definitionFor(args.caller, input.bot_id);
      conversation = await this.conversations.create({ caller: args.caller, input: { bot_id: input.bot_id, user_id: input.user_id ?? null } });
    }
    return this.turn({ caller: args.caller, conversation, content: input.message, extras: {} });
  }

  /** `POST /conversations/:id/messages`: appends the user's message and returns the bot's reply. Same errors as `send`. */
  async post(args: { caller: Caller; conversationId: string; input: { content: string; pdf_names?: string[]; meta_data?: Record<string, unknown> } }): Promise<ChatResult> {
    const input = validateInput<{ content: string; pdf_names?: string[]; meta_data?: Record<string, unknown> }>('MessageCreate', args.input);
    const conversation = await this.conversations.get({ caller: args.caller, id: args.conversationId });
    return this.turn({ caller: args.caller, conversation, content: input.content, extras: { pdf_names: input.pdf_names, meta_data: input.meta_data } });
  }

  private async turn(args: { caller: Caller; conversation: Conversation; content: string; extras: { pdf_names?: string[]; meta_data?: Record<string, unknown> } }): Promise<ChatResult> {
    const { caller, conversation } = args;
    const definition = this.definitionFor(caller, conversation.bot_id);
    const { history, message } = await this.conversations.beginTurn({ conversation, message: { role: 'user', content: args.content, ...args.extras }, limit: TURN_WINDOW });
    let output: TurnOutput;
    let provider = this.provider;
    let meter: TurnMeter | undefined;
    const started = performance.now();
    try {
      if (this.providerFor) provider = await this.providerFor(definition.builtIn ? caller.owner_id : definition.bot.owner_id);
      if (this.usage) {
        // Every completion is recorded, and checked against the budgets first (429 BUDGET_EXCEEDED).
        meter = this.usage.meter({ owner_id: conversation.owner_id, bot_id: definition.bot.id, conversation_id: conversation.id, provider });
        provider = meter.provider;
      }
      output = definition.builtIn
        ? await runBuilderTurn({ message: args.content, history }, { actions: this.builderActions(caller), provider })
        : await runTurn({ definition, conversation, history, message: args.content }, { provider, toolTimeoutMs: this.toolTimeoutMs });
    } catch (error) {
      // What the failed turn spent (its completions, or the refusal) is recorded all the same.
      await meter?.flush();
      if (isBudgetExceeded(error)) {
        // As a failed provider: the user's message stays, with the error recorded on it; no reply.
        await this.conversations.recordError({ message, step: { type: 'error', code: error.code, message: error.message } });
        throw new OttoError('BUDGET_EXCEEDED', `${error.message}; your message is saved`, {
          cause: error,
          detail: { ...error.detail, conversation_id: conversation.id, message_id: message.id, offset: message.offset },
        });
      }
      if (!isEngineError(error)) throw error;
      const timeout = error.code === 'PROVIDER_TIMEOUT';
      await this.conversations.recordError({ message, step: { type: 'error', code: error.code, message: error.message } });
      throw new OttoError(timeout ? 'PROVIDER_TIMEOUT' : 'PROVIDER_FAILED', timeout ? 'the language model did not answer in time; your message is saved' : 'the language model failed; your message is saved', {
        cause: error,
        detail: { conversation_id: conversation.id, message_id: message.id, offset: message.offset },
      });
    }
    try {
      if (meter?.offline) await meter.offlineTurn({ latency_ms: performance.now() - started });
      const reply = await this.conversations.append({
        conversation,
        lastKnownOffset: message.offset,
        message: {
          role: 'assistant',
          content: output.content,
          agent_steps: output.agent_steps,
          source_citations: output.source_citations,
          meta_data: { ...output.meta_data, ...(output.usage ? { usage: output.usage } : {}) },
        },
      });
      await this.conversations.saveTurnState({ conversation, journey_state: output.journey_state ?? conversation.journey_state, last_offset: reply.offset });
      return { conversation_id: conversation.id, conversation: { ...conversation, last_offset: reply.offset }, message, reply };
    } finally {
      // After the reply, in the same request; a failed write never fails the turn (see UsageService.record).
      await meter?.flush();
    }
  }

  /** The bot-builder's actions, bound to the caller: they go through the same services as the API. */
  builderActions(caller: Caller): BuilderActions {
    const bots = this.bots;
    // Writing through Otto needs the same permission as writing through the API.
    const mayWrite = (): undefined => {
      requirePermission(caller, 'bots:write');
      return undefined;
    };
    const resolve = async (botId: string) => {
      const bot = await bots.findByNameOrId({ caller, nameOrId: botId });
      if (!bot) throw new OttoError('NOT_FOUND', `no bot called ${botId}`, { field: 'bot_id' });
      return bot;
    };
    return {
      listBots: async () => (await bots.list({ caller, limit: 1000 })).items,
      findBot: async (nameOrId) => {
        const bot = await bots.findByNameOrId({ caller, nameOrId });
        return bot ? bots.definition({ caller, id: bot.id }) : null;
      },
      createBot: async (input) => (mayWrite(), bots.create({ caller, input })),
      addGuideline: async (botId, input) => mayWrite() ?? bots.addGuideline({ caller, bot_id: (await resolve(botId)).id, input }),
      addJourney: async (botId, input) => mayWrite() ?? bots.addJourney({ caller, bot_id: (await resolve(botId)).id, input }),
      addTool: async (botId, input) => mayWrite() ?? bots.addTool({ caller, bot_id: (await resolve(botId)).id, input }),
      mapTool: async (botId, input) => mayWrite() ?? bots.mapTool({ caller, bot_id: (await resolve(botId)).id, input }),
      updateBot: async (botId, patch) => mayWrite() ?? bots.update({ caller, id: (await resolve(botId)).id, patch }),
      deleteBot: async (botId) => mayWrite() ?? bots.delete({ caller, id: (await resolve(botId)).id }),
    };
  }
}

export { BUILDER_BOT_ID };
