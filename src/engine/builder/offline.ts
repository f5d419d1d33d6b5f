/** Otto without a language model: the command language, run against BuilderActions. */
import { builderHelpText, builderShortHelp } from './help.ts';
import * as ops from './operations.ts';
import { parseBuilderCommand } from './parse-command.ts';

/** Parses the message and runs its command. Never throws: failures come back as replies. */
export async function runOfflineCommand(ctx: ops.OpContext): Promise<ops.OpResult & { command: string }> {
  const command = parseBuilderCommand(ctx.message);
  const done = (result: ops.OpResult): ops.OpResult & { command: string } => ({ ...result, command: command.kind });
  switch (command.kind) {
    case 'help':
      return done({ ok: true, reply: builderHelpText, steps: [] });
    case 'greeting':
      return done({ ok: true, reply: 'Hi, I\'m Otto. I build bots for you: say "create a bot called SupportBot for answering order questions" to start, or "help" for everything I can do.', steps: [] });
    case 'thanks':
      return done({ ok: true, reply: 'You\'re welcome! Anything else to build?', steps: [] });
    case 'confirm':
      return done(await ops.answerPendingOp(ctx, true));
    case 'decline':
      return done(await ops.answerPendingOp(ctx, false));
    case 'list':
      return done(await ops.listBotsOp(ctx));
    case 'describe':
      return done(await ops.describeBotOp(ctx, command.bot));
    case 'create':
      return done(await ops.createBotOp(ctx, command));
    case 'add_guideline':
      return done(await ops.addGuidelineOp(ctx, command));
    case 'add_journey':
      return done(await ops.addJourneyOp(ctx, command));
    case 'add_tool':
      return done(await ops.addToolOp(ctx, command));
    case 'map_tool':
      return done(await ops.mapToolOp(ctx, command));
    case 'rename':
      return done(await ops.renameBotOp(ctx, command));
    case 'set_description':
      return done(await ops.setDescriptionOp(ctx, command));
    case 'delete':
      return done(await ops.deleteBotOp(ctx, command));
    case 'incomplete':
      return done({ ok: false, reply: command.reply, steps: [] });
    case 'unknown':
      return done({ ok: false, reply: builderShortHelp, steps: [] });
  }
}
