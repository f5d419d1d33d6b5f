/**
 * Otto's command language (Markdown), as shown for "help" and suitable for the README.
 * Offline, Otto understands exactly these forms (and close variants); with a language
 * model configured, any phrasing works and the same actions run through tool calling.
 */
export const builderHelpText = `### Talking to Otto, the bot-builder

Otto builds bots from plain sentences. Bot names may be quoted (\`"Support Bot"\`) or not, and are looked up case-insensitively.

| To … | Say, for example |
| --- | --- |
| create a bot | \`Create a bot called TestBot for testing\` · \`make a new bot named Helper that helps with orders\` · \`create bot TestBot\` |
| add a guideline | \`Add a guideline to TestBot: when the user asks about refunds, explain the 30-day policy\` · \`TestBot: if the user says hello then greet them by name\` |
| … with criticality | \`Add a high priority guideline to TestBot: when …, …\` or end it with \`(high)\` |
| add a journey | \`Add a journey to TestBot called Onboarding: when the user says they are new; steps: greet them; ask for their name (advance when: name, called); show the docs\` |
| add a tool | \`Add a tool to TestBot called order_status at http://127.0.0.1:9000/orders (GET)\` (POST also works; add \`that …\` for a description) |
| call a tool when a guideline matches | \`Map tool order_status to guideline 1 of TestBot\` · \`When the refund guideline of TestBot matches, call order_status\` |
| list your bots | \`List my bots\` · \`what bots do I have\` |
| see a bot | \`Describe TestBot\` · \`show TestBot\` |
| rename a bot | \`Rename TestBot to HelpBot\` |
| change a description | \`Set the description of TestBot to answers billing questions\` |
| delete a bot | \`Delete bot TestBot\` — Otto asks first; answer \`yes\`, or say \`delete bot TestBot, confirm\` |
| see this list | \`help\` |

Guidelines are numbered as \`describe\` shows them; refer to one by number, by id, or by a word from it ("the refund guideline").
Journey steps are separated by \`;\`; a step moves on when the user's reply contains one of its \`advance when\` words, or on any reply when it has none.`;

/** The short answer to something Otto did not understand. */
export const builderShortHelp =
  'I didn\'t catch that. Try "create a bot called SupportBot for answering order questions", "add a guideline to SupportBot: when the user asks about refunds, explain the 30-day policy", "list my bots", or "help" for everything I can do.';
