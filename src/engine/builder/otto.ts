import type { BotDefinition } from '../../domain/entities.ts';

/** Otto's fixed bot id. */
export const OTTO_BOT_ID = 'otto';

/** When this process started: Otto's `created_at`/`updated_at` (fresh on every start). */
const startedAt = new Date().toISOString();

/**
 * Otto, the built-in bot-builder: id `otto`, owner `system`, `builtIn: true`, fluid
 * composition, 3 engine iterations, no guidelines/journeys/tools (its behaviour is
 * `runBuilderTurn`). Returns a new object on every call, timestamped with the process
 * start; never stored.
 */
export function ottoDefinition(): BotDefinition {
  return {
    bot: {
      id: OTTO_BOT_ID,
      version: 1,
      created_at: startedAt,
      updated_at: startedAt,
      owner_id: 'system',
      name: 'Otto',
      name_key: 'otto',
      description:
        'The bot-builder: tell Otto in plain words to create bots and give them guidelines, journeys and tools, list and describe your bots, rename or delete them. Say "help" for the commands.',
      composition_mode: 'fluid',
      max_engine_iterations: 3,
      metadata: { builtIn: true },
    },
    guidelines: [],
    journeys: [],
    tools: [],
    mappings: [],
    builtIn: true,
  };
}
