/**
 * The degraded banner in a real browser: Otto on a MongoDB-wire primary (its own FerretDB
 * server, so stopping it disturbs no other test) with a JSON-lines mirror. Stopping the server
 * brings the banner up (from /health, polled by the page); starting it again takes it away.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { assertNoProblems, browserSkipReason, ensureWebBuilt, launchBrowser, watchContext } from '../support/browser.ts';
import { startFerretDb, type FerretDbServer } from '../support/mongodb-server.ts';
import { startOttoProcess, type OttoProcess } from '../support/otto-process.ts';

const skip = browserSkipReason() ?? process.env.OTTO_TEST_MONGODB_SKIP;

describe('degraded banner in Chromium', { skip }, () => {
  let server: FerretDbServer;
  let otto: OttoProcess;
  let browser: Browser;
  let dir: string;

  before(async () => {
    await ensureWebBuilt();
    dir = mkdtempSync(join(tmpdir(), 'otto-web-degraded-'));
    server = await startFerretDb();
    otto = await startOttoProcess({
      label: 'web-degraded',
      dataDir: dir,
      env: {
        OTTO_STORAGE: 'mongodb',
        MONGODB_URI: server.uri,
        MONGODB_DATABASE: 'otto_web_degraded',
        OTTO_MIRRORS: `jsonl:${join(dir, 'mirror')}`,
        OTTO_PRIMARY_RETRY_MS: '200',
        OTTO_PRIMARY_TIMEOUT_MS: '500',
      },
    });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await otto?.stop();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('shows the banner while the MongoDB-wire server is stopped and removes it when it returns', async (t) => {
    const health = (await (await fetch(`${otto.url}/health`)).json()) as { degraded?: unknown };
    if (health.degraded === undefined) return t.skip('this build of Otto does not report degraded mode in /health');

    const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
    const problems = watchContext(context);
    const page = await context.newPage();
    await page.goto(`${otto.url}/#/storage`);
    await page.getByTestId('engine').waitFor();
    assert.equal(await page.getByTestId('engine').innerText(), 'mongodb');
    assert.equal(await page.getByTestId('degraded-banner').count(), 0);

    await server.kill();
    const banner = page.getByTestId('degraded-banner');
    await banner.waitFor({ timeout: 30_000 });
    assert.match(await banner.innerText(), /running degraded/);
    await page.getByTestId('health-status').filter({ hasText: 'degraded' }).waitFor();

    await server.restart();
    await banner.waitFor({ state: 'detached', timeout: 30_000 });
    await page.getByTestId('health-status').filter({ hasText: 'ok' }).waitFor();
    await context.close();
    // While the primary is away some reads may answer 503; nothing else may go wrong.
    assertNoProblems(problems, [503]);
  });
});
