/**
 * Otto's engine: providers, the bot turn and Otto the bot-builder. Stateless: it persists
 * nothing; the services layer stores what turns return.
 */
export { EngineError, engineErrorCodes, isEngineError, type EngineErrorCode } from './errors.ts';

export type { ChatMessage, CompletionRequest, CompletionResult, FunctionDefinition, Provider, ToolCall, Usage } from './providers/types.ts';
export { createOfflineRulesProvider, isOfflineProvider, OFFLINE_PROVIDER_NAME } from './providers/offline-rules.ts';
export { createOpenAiCompatibleProvider, type OpenAiCompatibleConfig } from './providers/openai-compatible.ts';
export { createProvider, DEFAULT_OPENAI_BASE_URL, type ProviderConfig } from './providers/create-provider.ts';

export { runTurn, MAX_APPLIED_GUIDELINES, type TurnDeps, type TurnInput, type TurnOutput } from './turn.ts';
export { matchGuidelines, scoreCondition, MATCH_THRESHOLD, type GuidelineMatch } from './matcher.ts';
export { advanceJourneys, type ActiveJourneyStep, type JourneyProgress } from './journeys.ts';
export { callTool, eligibleTools, DEFAULT_TOOL_TIMEOUT_MS, type EligibleTool, type ToolOutcome } from './tool-calls.ts';
export { conceptTable } from './text/concepts.ts';

export {
  runBuilderTurn,
  builderHelpText,
  builderFunctions,
  ottoDefinition,
  OTTO_BOT_ID,
  parseBuilderCommand,
  type BuilderActions,
  type BuilderCommand,
} from './builder.ts';
