/**
 * Otto's offline command language: turns one message into a command. Pure; knows nothing
 * about which bots exist (names are resolved when the command runs).
 */
import type { Criticality, JourneyStep } from '../../domain/entities.ts';

/** A parsed builder command. `bot` fields hold a name or id as the user wrote it. */
export type BuilderCommand =
  | { kind: 'help' }
  | { kind: 'greeting' }
  | { kind: 'thanks' }
  | { kind: 'confirm' }
  | { kind: 'decline' }
  | { kind: 'list' }
  | { kind: 'create'; name: string; description?: string }
  | { kind: 'describe'; bot: string }
  | { kind: 'add_guideline'; bot: string; condition: string; action: string; criticality?: Criticality }
  | { kind: 'add_journey'; bot: string; title: string; conditions: string[]; steps: JourneyStep[] }
  | { kind: 'add_tool'; bot: string; name: string; url: string; method?: 'GET' | 'POST'; description?: string }
  | { kind: 'map_tool'; bot: string; tool: string; guideline: string }
  | { kind: 'rename'; bot: string; name: string }
  | { kind: 'set_description'; bot: string; description: string }
  | { kind: 'delete'; bot: string; confirmed: boolean }
  /** A recognised command with a missing part; `reply` says what is missing. */
  | { kind: 'incomplete'; reply: string }
  | { kind: 'unknown' };

const Q = `["“”'‘’\`]`;

/** A name as written: surrounding quotes, a leading "the bot"/"bot" and trailing punctuation removed. */
export function cleanName(raw: string): string {
  let s = raw.trim().replace(/[.!?,;:]+$/, '').trim();
  s = s.replace(/^(?:the\s+)?bot\s+(?=\S)/i, '').trim();
  const quoted = s.match(new RegExp(`^${Q}(.+)${Q}$`));
  if (quoted) s = quoted[1]!.trim();
  return s;
}

function tidy(message: string): string {
  let s = message.trim().replace(/\s+/g, ' ');
  s = s.replace(/^(?:hey |hi |ok |okay )?otto[,:!]?\s+/i, '');
  s = s.replace(/^(?:please|pls|can you|could you|would you|will you|i want to|i'd like to|i would like to|let's|lets|now)\s+/i, '');
  s = s.replace(/^(?:please)\s+/i, '');
  s = s.replace(/\s*,?\s*please[.!?]*$/i, '');
  return s.replace(/[?!]+$/, '').replace(/\.$/, '').trim();
}

function sentenceCase(text: string): string {
  const t = text.trim().replace(/[.\s]+$/, '');
  return t ? `${t[0]!.toUpperCase()}${t.slice(1)}.` : '';
}

/** A description from the clause after a bot's name: "that helps with X" → "Helps with X.", "for testing" → "A bot for testing.". */
export function descriptionFrom(clause: string): string | undefined {
  let c = clause.trim().replace(/^[,:;—–-]+\s*/, '').trim();
  if (!c) return undefined;
  if (/^(?:that|which|who)\s+/i.test(c)) c = c.replace(/^(?:that|which|who)\s+/i, '');
  else if (/^(?:for|to|with|so that)\s+/i.test(c)) c = `A bot ${c}`;
  return sentenceCase(c);
}

const NAME_END = /\s*[,:;—–]\s*|\s+-\s+|\s+(?=(?:for|that|which|who|to|with|so that)\s)/i;

function splitName(text: string): { name: string; rest: string } {
  const t = text.trim();
  const quoted = t.match(new RegExp(`^${Q}([^"“”'‘’\`]+)${Q}\\s*(.*)$`));
  if (quoted) return { name: quoted[1]!.trim(), rest: quoted[2]! };
  const end = t.match(NAME_END);
  if (!end || end.index === undefined) return { name: cleanName(t), rest: '' };
  return { name: cleanName(t.slice(0, end.index)), rest: t.slice(end.index) };
}

function parseCreate(rest: string): BuilderCommand {
  const r = rest.trim().replace(/^(?:with the name|with name|:)\s*/i, '');
  const called = r.match(/(?:^|\s)(?:called|named|titled)\s+/i);
  let name: string;
  const descriptions: string[] = [];
  if (called && called.index !== undefined) {
    const before = r.slice(0, called.index).trim();
    const split = splitName(r.slice(called.index + called[0].length));
    name = split.name;
    for (const clause of [before, split.rest]) {
      const d = descriptionFrom(clause);
      if (d) descriptions.push(d);
    }
  } else {
    const split = splitName(r);
    name = split.name;
    const d = descriptionFrom(split.rest);
    if (d) descriptions.push(d);
  }
  if (!name || /^(?:for|that|which|who|to|with)\b/i.test(name)) {
    return { kind: 'incomplete', reply: 'What should the bot be called? Say e.g. "create a bot called SupportBot for answering order questions".' };
  }
  return descriptions.length > 0 ? { kind: 'create', name, description: descriptions.join(' ') } : { kind: 'create', name };
}

const CRITICALITY_WORDS: Record<string, Criticality> = { high: 'high', critical: 'high', important: 'high', urgent: 'high', medium: 'medium', normal: 'medium', low: 'low' };

/** Splits "when A, B" / "if A then B" / "A -> B" into condition and action, with an optional "(high)" marker. */
export function parseRule(body: string): { condition: string; action: string; criticality?: Criticality } | null {
  let text = body.trim().replace(/[.]+$/, '');
  let criticality: Criticality | undefined;
  const marker = text.match(/\s*[([](high|critical|important|urgent|medium|normal|low)(?:[ -](?:priority|criticality))?[)\]]\s*$/i);
  if (marker && marker.index !== undefined) {
    criticality = CRITICALITY_WORDS[marker[1]!.toLowerCase()];
    text = text.slice(0, marker.index).trim();
  }
  text = text.replace(/^(?:whenever|when|if)\s+/i, '');
  const separators = [/\s*,?\s+then\s+/i, /\s*(?:->|=>|→)\s*/, /\s*,\s*/];
  for (const separator of separators) {
    const m = text.match(separator);
    if (!m || m.index === undefined) continue;
    const condition = text.slice(0, m.index).trim();
    const action = text.slice(m.index + m[0].length).trim().replace(/^then\s+/i, '');
    if (condition && action) return criticality ? { condition, action, criticality } : { condition, action };
  }
  return null;
}

const RULE_HINT = 'Say it as a condition and an action, e.g. "add a guideline to TestBot: when the user asks about refunds, explain the 30-day policy".';

function guidelineCommand(bot: string, body: string, adjective?: string): BuilderCommand {
  const rule = parseRule(body);
  if (!rule) return { kind: 'incomplete', reply: `I need both a condition and an action. ${RULE_HINT}` };
  const fromAdjective = adjective ? CRITICALITY_WORDS[adjective.toLowerCase()] : undefined;
  const criticality = rule.criticality ?? fromAdjective;
  return { kind: 'add_guideline', bot: cleanName(bot), condition: rule.condition, action: rule.action, ...(criticality ? { criticality } : {}) };
}

function splitList(text: string, allowCommas: boolean): string[] {
  let parts = text.split(/\s*(?:;|\n|\s(?=\d+[.)]\s))\s*/);
  if (parts.filter((p) => p.trim()).length <= 1 && allowCommas) parts = text.split(/\s*(?:,|->|→)\s*/);
  return parts.map((p) => p.replace(/^\d+[.)]\s*/, '').replace(/^(?:and|then)\s+/i, '').trim().replace(/[.]+$/, '')).filter(Boolean);
}

function parseStep(text: string): JourneyStep {
  const m = text.match(/\s*[([](?:advance when|advance on|advances when|next when|until|when)\s*:?\s*([^)\]]+)[)\]]\s*$/i);
  if (!m || m.index === undefined) return { instruction: text };
  const words = m[1]!.split(/\s*(?:,|\bor\b|\/)\s*/i).map((w) => w.trim()).filter(Boolean);
  return { instruction: text.slice(0, m.index).trim(), advance_when: words };
}

function journeyCommand(bot: string, title: string, body: string): BuilderCommand {
  const stepsAt = body.match(/\bsteps?\s*:\s*/i);
  if (!stepsAt || stepsAt.index === undefined) {
    return { kind: 'incomplete', reply: 'Which steps? Say e.g. "add a journey to TestBot called Onboarding: when the user says they are new; steps: greet them; ask for their name; show the docs".' };
  }
  const trigger = body.slice(0, stepsAt.index).trim().replace(/^(?:it\s+)?(?:starts\s+)?(?:whenever|when|if)\s+/i, '').replace(/^(?:conditions?|triggers?)\s*:\s*/i, '').replace(/[;,.\s]+$/, '');
  const conditions = trigger ? trigger.split(/\s*(?:;|\s+or\s+)\s*/i).map((c) => c.replace(/^(?:when|if)\s+/i, '').trim()).filter(Boolean) : [];
  const steps = splitList(body.slice(stepsAt.index + stepsAt[0].length), true).map(parseStep).filter((s) => s.instruction);
  if (conditions.length === 0) return { kind: 'incomplete', reply: 'When should the journey start? Put it before the steps, e.g. "…called Onboarding: when the user says they are new; steps: …".' };
  if (steps.length === 0) return { kind: 'incomplete', reply: 'The journey needs at least one step after "steps:".' };
  return { kind: 'add_journey', bot: cleanName(bot), title: cleanName(title), conditions, steps };
}

function toolCommand(bot: string, name: string, url: string, tail: string): BuilderCommand {
  const method = tail.match(/\b(GET|POST)\b/i)?.[1]?.toUpperCase() as 'GET' | 'POST' | undefined;
  const rest = tail.replace(/\(?\s*(?:using\s+|with\s+|method\s+)?\b(?:GET|POST)\b\s*(?:method|request)?\s*\)?/i, ' ').trim();
  const description = rest ? descriptionFrom(rest.replace(/^(?:and\s+)?(?:it\s+)?/i, '')) : undefined;
  return {
    kind: 'add_tool',
    bot: cleanName(bot),
    name: cleanName(name),
    url: url.replace(/[),.;]+$/, ''),
    ...(method ? { method } : {}),
    ...(description ? { description: description.replace(/^A bot /, '') } : {}),
  };
}

/** Longer messages are not parsed as commands (keeps every pattern's work small). */
export const MAX_COMMAND_LENGTH = 4000;

/** Parses one message of the command language (see `builderHelpText`). Never throws. */
export function parseBuilderCommand(message: string): BuilderCommand {
  if (message.length > MAX_COMMAND_LENGTH) {
    return { kind: 'incomplete', reply: `That's too long for one command (over ${MAX_COMMAND_LENGTH} characters). Send one change at a time.` };
  }
  const s = tidy(message);
  let m: RegExpMatchArray | null;
  if (s === '' || /^(?:help|\?|commands|menu|usage|what can you do|what do you do|how does this work|how do i use (?:this|you)|show (?:me )?(?:the )?commands)\b/i.test(s)) return { kind: 'help' };
  if (/^(?:hi|hello|hey|hiya|howdy|good (?:morning|afternoon|evening))(?: there| otto)?$/i.test(s)) return { kind: 'greeting' };
  if (/^(?:thanks|thank you|thx|cheers|great|perfect|awesome|nice)(?: (?:a lot|so much|otto))?$/i.test(s)) return { kind: 'thanks' };

  if ((m = s.match(/^(?:yes|yep|yeah|confirm(?:ed)?|sure)[,.!]?\s+(?:please\s+)?(delete|remove)\s+(.+)$/i))) {
    return { kind: 'delete', bot: cleanName(m[2]!.replace(/\s*,?\s*(?:confirm(?:ed)?|i'?m sure)$/i, '')), confirmed: true };
  }
  if (s.split(' ').length <= 5) {
    if (/^(?:y|yes|yep|yeah|sure|confirm(?:ed)?|do it|go ahead|ok|okay|i'?m sure)\b/i.test(s) && !/\bnot?\b/i.test(s.slice(1))) return { kind: 'confirm' };
    if (/^(?:n|no|nope|cancel|don'?t|do not|stop|never ?mind|abort|keep it)\b/i.test(s)) return { kind: 'decline' };
  }

  if (/^(?:(?:list|show|see|view|display)(?: me)?(?: all)?(?: of)?(?: my| the)? bots|(?:what|which) bots|(?:my|all) bots|bots|how many bots)\b/i.test(s)) return { kind: 'list' };

  if ((m = s.match(/^(?:delete|remove|destroy|drop|erase)\s+(?:the\s+|my\s+)?(guideline|rule|journey|tool|mapping)\b/i))) {
    return { kind: 'incomplete', reply: `I can't delete a ${m[1]!.toLowerCase()} yet — use the REST API or the web app for that. I can delete whole bots ("delete bot TestBot").` };
  }
  if ((m = s.match(/^(?:delete|remove|destroy|drop|erase)\s+(.+)$/i))) {
    const confirm = m[1]!.match(/\s*[,;]?\s*(?:(?:yes,?\s*)?i'?m sure|confirm(?:ed)?|for sure)$/i);
    const target = confirm && confirm.index !== undefined ? m[1]!.slice(0, confirm.index) : m[1]!;
    const bot = cleanName(target.replace(/^(?:the\s+|my\s+)/i, ''));
    if (!bot) return { kind: 'incomplete', reply: 'Which bot should I delete? Say "delete bot NAME".' };
    return { kind: 'delete', bot, confirmed: Boolean(confirm) };
  }
  if ((m = s.match(/^(?:rename|change the name of|change name of)\s+(.+?)\s+(?:to|as|into)\s+(.+)$/i))) {
    return { kind: 'rename', bot: cleanName(m[1]!), name: cleanName(m[2]!) };
  }
  if (
    (m = s.match(/^(?:set|change|update)\s+(?:the\s+)?description\s+(?:of|for)\s+(.+?)\s+to\s*:?\s+(.+)$/i)) ||
    (m = s.match(/^(?:set|change|update)\s+(.+?)(?:'s|’s)\s+description\s+to\s*:?\s+(.+)$/i)) ||
    (m = s.match(/^describe\s+(.+?)\s+as\s+(.+)$/i))
  ) {
    return { kind: 'set_description', bot: cleanName(m[1]!), description: sentenceCase(m[2]!.replace(new RegExp(`^${Q}|${Q}$`, 'g'), '')) };
  }

  if (
    (m = s.match(/^(?:map|connect|link|attach|bind|hook up)\s+(?:the\s+)?(?:tool\s+)?(\S+?)(?:\s+tool)?\s+(?:to|with)\s+(?:the\s+)?(?:guideline|rule)\s+(.+?)\s+(?:of|on|for|in)\s+(.+)$/i))
  ) {
    return { kind: 'map_tool', tool: cleanName(m[1]!), guideline: cleanName(m[2]!), bot: cleanName(m[3]!) };
  }
  if ((m = s.match(/^(?:map|connect|link|attach|bind|hook up)\s+(?:the\s+)?(?:tool\s+)?(\S+?)(?:\s+tool)?\s+(?:to|with)\s+(?:the\s+)?(.+?)\s+(?:guideline|rule)\s+(?:of|on|for|in)\s+(.+)$/i))) {
    return { kind: 'map_tool', tool: cleanName(m[1]!), guideline: cleanName(m[2]!), bot: cleanName(m[3]!) };
  }
  if ((m = s.match(/^when\s+(?:the\s+)?(?:guideline|rule)\s+(\S+)\s+(?:of|on|for|in)\s+(.+?)\s+(?:matches|applies|fires|triggers|is matched)\s*,?\s*(?:then\s+)?(?:call|use|run|invoke)\s+(?:the\s+)?(?:tool\s+)?(\S+?)(?:\s+tool)?$/i))) {
    return { kind: 'map_tool', guideline: cleanName(m[1]!), bot: cleanName(m[2]!), tool: cleanName(m[3]!) };
  }
  if ((m = s.match(/^when\s+(?:the\s+)?(.+?)\s+(?:guideline|rule)\s+(?:of|on|for|in)\s+(.+?)\s+(?:matches|applies|fires|triggers|is matched)\s*,?\s*(?:then\s+)?(?:call|use|run|invoke)\s+(?:the\s+)?(?:tool\s+)?(\S+?)(?:\s+tool)?$/i))) {
    return { kind: 'map_tool', guideline: cleanName(m[1]!), bot: cleanName(m[2]!), tool: cleanName(m[3]!) };
  }

  const ADD = String.raw`^(?:add|create|register|new|give)\s+(?:a\s+|an\s+)?(?:new\s+)?`;
  if ((m = s.match(new RegExp(`${ADD}tool\\s+(?:to|for|on)\\s+(.+?)\\s+(?:called|named)\\s+(${Q}[^"“”'‘’\`]+${Q}|\\S+)\\s+(?:at|with url|url|on|->)\\s+(\\S+)(.*)$`, 'i')))) {
    return toolCommand(m[1]!, m[2]!, m[3]!, m[4]!);
  }
  if ((m = s.match(new RegExp(`${ADD}tool\\s+(?:called\\s+|named\\s+)?(${Q}[^"“”'‘’\`]+${Q}|\\S+)\\s+(?:to|for|on)\\s+(.+?)\\s+(?:at|with url|url|->)\\s+(\\S+)(.*)$`, 'i')))) {
    return toolCommand(m[2]!, m[1]!, m[3]!, m[4]!);
  }
  if (new RegExp(`${ADD}tool\\b`, 'i').test(s)) {
    return { kind: 'incomplete', reply: 'Tell me the bot, the tool\'s name and its URL, e.g. "add a tool to TestBot called order_status at http://127.0.0.1:9000/orders (GET)".' };
  }

  if ((m = s.match(new RegExp(`${ADD}journey\\s+(?:to|for|on)\\s+(.+?)\\s+(?:called|named|titled)\\s+(.+?)\\s*:\\s*(.+)$`, 'i')))) {
    return journeyCommand(m[1]!, m[2]!, m[3]!);
  }
  if ((m = s.match(new RegExp(`${ADD}journey\\s+(?:called|named|titled)\\s+(.+?)\\s+(?:to|for|on)\\s+(.+?)\\s*:\\s*(.+)$`, 'i')))) {
    return journeyCommand(m[2]!, m[1]!, m[3]!);
  }
  if (new RegExp(`${ADD}journey\\b`, 'i').test(s)) {
    return { kind: 'incomplete', reply: 'Say e.g. "add a journey to TestBot called Onboarding: when the user says they are new; steps: greet them; ask for their name; show the docs".' };
  }

  const GUIDELINE = String.raw`(?:(high|critical|important|urgent|medium|normal|low)(?:[ -](?:priority|criticality))?\s+)?(?:guideline|rule)`;
  if ((m = s.match(new RegExp(`${ADD}${GUIDELINE}\\s+(?:to|for|on)\\s+(.+?)\\s*:\\s*(.+)$`, 'i')))) {
    return guidelineCommand(m[2]!, m[3]!, m[1]);
  }
  if ((m = s.match(new RegExp(`${ADD}${GUIDELINE}\\s+(?:to|for|on)\\s+(.+?)\\s+((?:when|whenever|if)\\s.+)$`, 'i')))) {
    return guidelineCommand(m[2]!, m[3]!, m[1]);
  }
  if (new RegExp(`${ADD}${GUIDELINE}\\b`, 'i').test(s)) return { kind: 'incomplete', reply: RULE_HINT };

  if ((m = s.match(/^(?:create|make|build|add|set up|setup|start|new)\s+(?:me\s+)?(?:a\s+|an\s+)?(?:new\s+)?(?:chat)?bot\b\s*(.*)$/i))) {
    return parseCreate(m[1]!);
  }
  if (
    (m = s.match(/^(?:describe|show me|show|details (?:of|for|about)|tell me about|inspect|view|look at|what(?:'s| is) in)\s+(.+)$/i)) ||
    (m = s.match(/^what does\s+(.+?)\s+do$/i))
  ) {
    return { kind: 'describe', bot: cleanName(m[1]!.replace(/^(?:the\s+|my\s+)/i, '')) };
  }
  if ((m = s.match(/^(?:for\s+)?(.+?)\s*[:,]\s*((?:when|whenever|if)\s.+)$/i))) {
    return guidelineCommand(m[1]!, m[2]!);
  }
  return { kind: 'unknown' };
}
