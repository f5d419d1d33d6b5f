import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startOttoProcess } from '../support/otto-process.ts';

describe('otto serve shuts down cleanly', () => {
  it('on SIGTERM or SIGINT sent the moment "listening" is printed', async () => {
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGTERM'] as const) {
      const otto = await startOttoProcess({ env: { OTTO_STORAGE: 'sqlite' } });
      const result = await otto.stop(signal);
      assert.equal(result.code, 0, `${signal}: ${otto.output()}`);
      assert.match(result.stdout, /Otto stopped/, signal);
    }
  });
});
