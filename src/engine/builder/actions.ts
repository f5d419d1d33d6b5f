import type { Bot, BotDefinition, Criticality, Guideline, Journey, JourneyStep, Tool, ToolMapping } from '../../domain/entities.ts';

/**
 * What Otto may do, implemented by the services layer and already bound to the caller's
 * owner. Every method throws on failure with an error that has a `.message` and maybe a
 * `.code` / `.field` (duplicate name, not found, invalid field …); Otto answers those in
 * words and never lets them escape a builder turn. `botId` arguments receive bot ids.
 */
export interface BuilderActions {
  /** The caller's bots. */
  listBots(): Promise<Bot[]>;
  /** The bot's full definition by name (case-insensitive) or id; null when there is none. */
  findBot(nameOrId: string): Promise<BotDefinition | null>;
  /** Creates a bot; throws (e.g. DUPLICATE on `name`, INVALID) when it cannot. */
  createBot(input: { name: string; description?: string }): Promise<Bot>;
  /** Adds a guideline to the bot with this id. */
  addGuideline(botId: string, input: { condition: string; action: string; criticality?: Criticality }): Promise<Guideline>;
  /** Adds a journey to the bot with this id. */
  addJourney(botId: string, input: { title: string; description?: string; conditions: string[]; steps: JourneyStep[] }): Promise<Journey>;
  /** Adds an HTTP tool to the bot with this id (method defaults in the services). */
  addTool(botId: string, input: { name: string; description?: string; endpoint: { url: string; method?: 'GET' | 'POST' } }): Promise<Tool>;
  /** Makes the bot call `tool_name` when the guideline `guideline_id` matches. */
  mapTool(botId: string, input: { guideline_id: string; tool_name: string }): Promise<ToolMapping>;
  /** Renames the bot or changes its description; returns the updated bot. */
  updateBot(botId: string, patch: { description?: string; name?: string }): Promise<Bot>;
  /** Deletes the bot and everything it owns. */
  deleteBot(botId: string): Promise<void>;
}
