import type { WriteEvent, WriteHook } from './contract.ts';

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
