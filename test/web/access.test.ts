/**
 * Access in the browser: with keys configured the page asks for one and keeps it in
 * sessionStorage only; an admin creates a user and a key (shown once) and revokes it; what a
 * viewer may not do is not offered. Real `otto serve`, real Chromium.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { assertNoProblems, browserSkipReason, ensureWebBuilt, launchBrowser, watchContext } from '../support/browser.ts';
import { startOttoProcess, type OttoProcess } from '../support/otto-process.ts';

const skip = browserSkipReason();
const adminKey = randomBytes(24).toString('hex');

async function signIn(page: Page, key: string): Promise<void> {
  await page.getByRole('heading', { name: 'Sign in to Otto' }).waitFor();
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

describe('access in Chromium (keys configured)', { skip }, () => {
  let otto: OttoProcess;
  let browser: Browser;

  before(async () => {
    await ensureWebBuilt();
    otto = await startOttoProcess({ label: 'web-access', env: { OTTO_API_KEYS: `admin:${adminKey}` } });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await otto?.stop();
  });

  it('asks for a key, keeps it for the session only, and offers each role only what it may do', async () => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
    const problems = watchContext(context);
    const page = await context.newPage();
    await page.goto(`${otto.url}/`);

    // A wrong key is refused, in words.
    await signIn(page, 'not-a-real-key-0000000000');
    await page.getByText('That key was not accepted').waitFor();
    await signIn(page, adminKey);
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('otto.api_key')), adminKey);
    assert.equal(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');

    // The admin creates a viewer and a key for them; the secret is shown once.
    await page.getByRole('link', { name: 'Users & keys' }).click();
    await page.getByRole('button', { name: 'New user' }).click();
    const userForm = page.getByRole('form', { name: 'New user' });
    await userForm.getByLabel('Username').fill('vera');
    await userForm.getByLabel('Role').selectOption('viewer');
    await userForm.getByRole('button', { name: 'Create user' }).click();
    await page.getByRole('form', { name: 'New key for vera' }).waitFor();
    const keyForm = page.getByRole('form', { name: 'New key for vera' });
    await keyForm.getByLabel('Key name').fill('laptop');
    await keyForm.getByRole('button', { name: 'Create key' }).click();
    const secretBox = page.getByTestId('new-secret');
    await secretBox.waitFor();
    const viewerKey = (await secretBox.locator('.secret-value').innerText()).trim();
    assert.ok(viewerKey.length >= 16);
    await secretBox.getByRole('button', { name: 'I have saved it' }).click();
    await secretBox.waitFor({ state: 'detached' });
    assert.equal(await page.getByText(viewerKey).count(), 0, 'the secret is not shown again');
    await page.getByText('laptop').waitFor();

    // The viewer sees no bot editing and no user admin.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn(page, viewerKey);
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
    assert.equal(await page.getByRole('link', { name: 'Users & keys' }).count(), 0);
    await page.getByRole('link', { name: 'Bots', exact: true }).click();
    await page.getByRole('heading', { name: 'Bots' }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'New bot' }).count(), 0);

    // The admin revokes the key; the viewer's next sign-in is refused.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn(page, adminKey);
    await page.getByRole('link', { name: 'Users & keys' }).click();
    await page.getByRole('button', { name: 'Keys' }).click();
    await page.getByRole('button', { name: 'Revoke' }).click();
    await page.getByRole('button', { name: 'Revoke' }).last().click();
    await page.getByText('revoked').waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn(page, viewerKey);
    await page.getByText('That key was not accepted').waitFor();

    await context.close();
    assertNoProblems(problems, [401]);
  });
});
