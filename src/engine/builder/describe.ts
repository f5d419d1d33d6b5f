import type { Bot, BotDefinition } from '../../domain/entities.ts';

function quote(text: string): string {
  return `"${text.trim()}"`;
}

/** A bot as one list line: `- **Name** — description`. */
export function botLine(bot: Bot): string {
  return `- **${bot.name}**${bot.description.trim() ? ` — ${bot.description.trim()}` : ''}`;
}

/**
 * A readable summary of a bot: description, mode, numbered guidelines (the numbers other
 * commands use), journeys with their steps, tools with their endpoints and mappings.
 */
export function describeDefinition(definition: BotDefinition): string {
  const { bot, guidelines, journeys, tools, mappings } = definition;
  const lines = [`**${bot.name}** (${bot.id})${bot.description.trim() ? ` — ${bot.description.trim()}` : ''}`];
  lines.push(`Mode: ${bot.composition_mode}, up to ${bot.max_engine_iterations} engine iteration${bot.max_engine_iterations === 1 ? '' : 's'}.`);
  if (guidelines.length === 0) lines.push('', 'No guidelines yet.');
  else {
    lines.push('', `Guidelines (${guidelines.length}):`);
    guidelines.forEach((g, i) => {
      const flags = [g.criticality !== 'medium' ? g.criticality : '', g.enabled === false ? 'disabled' : ''].filter(Boolean);
      lines.push(`${i + 1}. When ${g.condition.trim()} → ${g.action.trim()}${flags.length ? ` [${flags.join(', ')}]` : ''}`);
    });
  }
  if (journeys.length > 0) {
    lines.push('', `Journeys (${journeys.length}):`);
    for (const j of journeys) {
      const steps = j.steps.map((s, i) => `${i + 1}) ${s.instruction}${s.advance_when?.length ? ` (advance when: ${s.advance_when.join(', ')})` : ''}`).join(' ');
      lines.push(`- ${j.title} — starts when ${j.conditions.map(quote).join(' or ')}; steps: ${steps}`);
    }
  }
  if (tools.length > 0) {
    lines.push('', `Tools (${tools.length}):`);
    for (const t of tools) {
      const mapped = mappings
        .filter((m) => m.tool_name === t.name)
        .map((m) => guidelines.findIndex((g) => g.id === m.guideline_id) + 1)
        .filter((n) => n > 0);
      lines.push(`- ${t.name}: ${t.endpoint.method} ${t.endpoint.url}${mapped.length ? ` (called for guideline ${mapped.join(', ')})` : ' (not mapped to a guideline yet)'}`);
    }
  }
  return lines.join('\n');
}
