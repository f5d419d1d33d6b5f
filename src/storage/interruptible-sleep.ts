/**
 * The pause of a background loop (a mirror, the webhook dispatcher): it sleeps between rounds
 * and is woken early when there is work (a commit, a new delivery) or when it stops.
 */
export class InterruptibleSleep {
  private wakeCurrent: (() => void) | undefined;

  /** Resolves after `ms`, or sooner when `wake()` is called. Never rejects; never keeps the process alive. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        if (this.wakeCurrent === done) this.wakeCurrent = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      this.wakeCurrent = done;
    });
  }

  /** Ends the sleep in progress, if any, at once. */
  wake(): void {
    this.wakeCurrent?.();
  }
}
