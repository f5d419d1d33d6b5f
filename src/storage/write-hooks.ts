import type { ChangeOp, Doc, WriteEvent, WriteHook } from './contract.ts';

/** The hooks registered on a store, run in registration order for every committed write. */
export class WriteHooks {
  private readonly hooks = new Set<WriteHook>();

  /** Registers a hook; returns a function that removes it. */
  add(hook: WriteHook): () => void {
    this.hooks.add(hook);
    return () => this.hooks.delete(hook);
  }

  /** True when at least one hook is registered (so engines can skip building events). */
  get active(): boolean {
    return this.hooks.size > 0;
  }

  /** Runs every hook with the event; a throwing hook aborts the write that produced it. */
  run(event: WriteEvent): void {
    for (const hook of this.hooks) hook(event);
  }
}

/**
 * The event of a write whose document the engine stored as the JSON text `json`. Its `doc` is
 * parsed from that text when a hook first reads it (a fresh copy, as `WriteEvent` promises),
 * so hooks that only need the text, like a change log storing it, do not pay for the copy.
 */
export function storedDocEvent(args: { collection: string; op: ChangeOp; id: string; json: string }): WriteEvent {
  return new StoredDocEvent(args.collection, args.op, args.id, args.json);
}

class StoredDocEvent implements WriteEvent {
  readonly collection: string;
  readonly op: ChangeOp;
  readonly id: string;
  readonly json: string;
  private parsed: Doc | undefined;

  constructor(collection: string, op: ChangeOp, id: string, json: string) {
    this.collection = collection;
    this.op = op;
    this.id = id;
    this.json = json;
  }

  get doc(): Doc {
    this.parsed ??= JSON.parse(this.json) as Doc;
    return this.parsed;
  }
}
