/**
 * Deleting a bot needs confirmation. Otto asks, recording a `confirm_delete_bot` step on
 * its reply; the next user message confirms ("yes") or declines ("no"). Only Otto's most
 * recent reply counts, so an old question cannot be answered later by accident.
 */
import type { Message } from '../../domain/entities.ts';

/** The id of the bot Otto's last reply asked to confirm deleting, or null. */
export function pendingDeletion(history: readonly Message[]): string | null {
  for (let i = history.length - 1; i >= 0; i--) {
    const message = history[i]!;
    if (message.role !== 'assistant') continue;
    for (const step of message.agent_steps ?? []) {
      if (step.type === 'builder_action' && step.action === 'confirm_delete_bot' && step.ok && step.target) return step.target;
    }
    return null;
  }
  return null;
}

/** True for a short yes: "yes", "y", "sure", "confirm", "go ahead", "yes, delete it" — but not "yes, don't". */
export function isAffirmative(message: string): boolean {
  const s = message.trim().toLowerCase();
  return /^(?:y|yes|yep|yeah|sure|confirm(?:ed)?|do it|go ahead|ok|okay|i'?m sure)\b/.test(s) && !/\b(?:not|don'?t|no)\b/.test(s.slice(1));
}

/** True when the message itself confirms a deletion: "delete bot X, confirm" / "yes, delete X" / "…, I'm sure". */
export function explicitlyConfirmsDeletion(message: string): boolean {
  const s = message.trim().toLowerCase();
  return /\b(?:delete|remove|destroy|erase)\b/.test(s) && (/\b(?:confirm(?:ed)?|i'?m sure|for sure)\b/.test(s) || /^(?:yes|yep|yeah|confirm)\b/.test(s));
}
