/**
 * The web page in a real browser: Debian's Chromium driven by playwright-core against a real
 * `otto serve` (SQLite, fresh data directory, offline replies), on loopback with no key
 * (the local admin). Every test also fails on a console error, an uncaught exception, a failed
 * request or a dialog on the page.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { assertNoProblems, browserSkipReason, ensureWebBuilt, launchBrowser, watchContext, type PageProblems } from '../support/browser.ts';
import { startOttoProcess, type OttoProcess } from '../support/otto-process.ts';

const skip = browserSkipReason();

async function api(otto: OttoProcess, method: string, path: string, body?: unknown): Promise<any> {
  const response = await fetch(`${otto.url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  assert.ok(response.ok, `${method} ${path} → ${response.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

describe('web app in Chromium', { skip }, () => {
  let otto: OttoProcess;
  let browser: Browser;
  let context: BrowserContext;
  let problems: PageProblems;
  let page: Page;

  before(async () => {
    await ensureWebBuilt();
    otto = await startOttoProcess({ label: 'web' });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await otto?.stop();
  });

  const open = async (hash = '', viewport = { width: 1200, height: 800 }) => {
    context = await browser.newContext({ viewport });
    problems = watchContext(context);
    page = await context.newPage();
    await page.goto(`${otto.url}/${hash}`);
    return page;
  };
  /** Closes the page and fails on any console error, exception, failed request or dialog; `expectedHttp` statuses are allowed. */
  const close = async (expectedHttp: number[] = []) => {
    await context.close();
    assertNoProblems(problems, expectedHttp);
  };

  it('a new user creates a bot by chatting with Otto, chats with it, reloads and finds the conversation', async () => {
    await open();
    // Otto, the bot-builder, is the default chat.
    await page.getByRole('heading', { name: 'Otto, the bot-builder' }).waitFor();
    const composer = page.getByLabel('Message to Otto');
    await composer.fill('Create a bot called Helpdesk for testing');
    await composer.press('Enter');
    await page.locator('.msg-assistant').first().waitFor();
    // The new bot is in the bot list without a reload.
    const botLink = page.getByTestId('bot-list').getByRole('link', { name: 'Helpdesk' });
    await botLink.waitFor();
    const bots = await api(otto, 'GET', '/bots');
    const helpdesk = bots.find((b: { name: string }) => b.name === 'Helpdesk');
    assert.ok(helpdesk, 'the bot exists on the server');
    // Agent steps are there on demand: what the builder did.
    const steps = page.locator('.msg-assistant details.steps').first();
    await steps.locator('summary').click();
    assert.match(await steps.innerText(), /Builder/);

    // Give it a guideline through Otto, then chat with it.
    await composer.fill('Add a guideline to Helpdesk: when the user asks about refunds, explain the 30-day policy');
    await composer.press('Enter');
    await page.locator('.msg-assistant').nth(1).waitFor();
    await botLink.click();
    await page.getByRole('heading', { name: 'Helpdesk' }).waitFor();
    const botComposer = page.getByLabel('Message to Helpdesk');
    await botComposer.fill('Can I get a refund for my order?');
    await page.getByRole('button', { name: 'Send' }).click();
    const reply = page.locator('.msg-assistant').first();
    await reply.waitFor();
    assert.match(await reply.locator('.msg-text').innerText(), /30-day/i);
    await page.waitForURL(/#\/chat\/[^/]+\/[^/]+$/);
    const conversationUrl = page.url();
    const conversationId = decodeURIComponent(conversationUrl.split('/').pop()!);

    // Reload: the conversation is listed and opens with its messages.
    await page.goto(`${otto.url}/#/chat/${encodeURIComponent(helpdesk.id)}`);
    await page.reload();
    const listed = page.getByTestId('conversation-list').getByRole('link');
    await listed.first().waitFor();
    assert.equal(await listed.count(), 1);
    await listed.first().click();
    await page.waitForURL(`**/${conversationId}`);
    await page.getByText('Can I get a refund for my order?').waitFor();
    assert.equal(await page.locator('.msg').count(), 2);

    // A message posted by another client arrives live (server-sent events).
    await api(otto, 'POST', `/conversations/${conversationId}/messages`, { content: 'sent from another client' });
    await page.getByText('sent from another client').waitFor();
    await page.locator('.msg').nth(3).waitFor();
    await close();
  });

  it('scrolls back through history by page', async () => {
    const bot = await api(otto, 'POST', '/bots', { name: 'Pager' });
    const conversation = await api(otto, 'POST', '/conversations', { bot_id: bot.id });
    for (let i = 1; i <= 36; i++) await api(otto, 'POST', `/conversations/${conversation.id}/messages`, { content: `numbered message ${i}` });
    await open(`#/chat/${bot.id}/${conversation.id}`);
    await page.getByText('numbered message 36').waitFor();
    // 72 messages: the latest page (50) first, the rest on demand.
    assert.equal(await page.locator('.msg').count(), 50);
    assert.equal(await page.getByText('numbered message 1', { exact: true }).count(), 0);
    await page.getByRole('button', { name: 'Load older messages' }).click();
    await page.getByText('numbered message 1', { exact: true }).waitFor();
    assert.equal(await page.locator('.msg').count(), 72);
    assert.equal(await page.getByRole('button', { name: 'Load older messages' }).count(), 0);
    await close();
  });

  it('shows an edit that lost the version race, offers a reload and never overwrites', async () => {
    const bot = await api(otto, 'POST', '/bots', { name: 'Racer', description: 'first' });
    await open(`#/bots/${bot.id}`);
    const description = page.getByRole('form', { name: 'Bot settings' }).getByLabel('Description');
    await description.waitFor();
    assert.equal(await description.inputValue(), 'first');
    // Someone else saves first.
    await api(otto, 'PATCH', `/bots/${bot.id}`, { version: bot.version, description: 'changed elsewhere' });
    await description.fill('my edit');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    const conflict = page.getByTestId('conflict');
    await conflict.waitFor();
    assert.match(await conflict.innerText(), /someone else changed this bot/i);
    const stored = await api(otto, 'GET', `/bots/${bot.id}`);
    assert.equal(stored.description, 'changed elsewhere', 'the other edit was not overwritten');
    await conflict.getByRole('button', { name: 'Reload the latest version' }).click();
    await page.getByTestId('conflict').waitFor({ state: 'detached' });
    assert.equal(await page.getByRole('form', { name: 'Bot settings' }).getByLabel('Description').inputValue(), 'changed elsewhere');
    // Now the edit goes through, on top of the latest version.
    await page.getByRole('form', { name: 'Bot settings' }).getByLabel('Description').fill('my edit');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByText(`Version ${stored.version + 1}`).waitFor();
    assert.equal((await api(otto, 'GET', `/bots/${bot.id}`)).description, 'my edit');
    await close([409]);
  });

  it('validates forms before sending and shows the server field errors next to the field', async () => {
    const bot = await api(otto, 'POST', '/bots', { name: 'Formal' });
    await open(`#/bots/${bot.id}`);
    await page.getByRole('button', { name: 'Add tool' }).click();
    const form = page.getByRole('form', { name: 'New tool' });
    await form.getByLabel('Name').fill('1 bad name');
    await form.getByLabel('Endpoint URL').fill('ftp://nope');
    let requests = 0;
    page.on('request', (r) => r.method() === 'POST' && r.url().includes('/tools') && requests++);
    await form.getByRole('button', { name: 'Add tool' }).click();
    const nameError = form.locator('#' + (await form.getByLabel('Name').getAttribute('aria-describedby'))!.split(' ')[0]!);
    assert.match(await nameError.innerText(), /letter or _/);
    assert.equal(await form.getByLabel('Endpoint URL').getAttribute('aria-invalid'), 'true');
    assert.equal(requests, 0, 'nothing is sent while a field is invalid');
    // A duplicate tool name passes the page's checks; the server's answer lands by its field.
    await api(otto, 'POST', `/bots/${bot.id}/tools`, { name: 'lookup', endpoint: { url: 'http://127.0.0.1:9/x' } });
    await form.getByLabel('Name').fill('lookup');
    await form.getByLabel('Endpoint URL').fill('http://127.0.0.1:9/y');
    await form.getByRole('button', { name: 'Add tool' }).click();
    await form.locator('.field-error').waitFor();
    assert.equal(requests, 1);
    const invalid = await form.locator('[aria-invalid="true"]').getAttribute('name');
    assert.equal(invalid, 'name', 'the server error is shown next to the name field');
    await close([409]);
  });

  it('renders every server string as text: a message with HTML shows as typed and runs nothing', async () => {
    const evil = '<img src=x onerror=alert(1)> <b>bold?</b>';
    const bot = await api(otto, 'POST', '/bots', { name: '<img src=x onerror=alert(2)>', description: '<script>alert(3)</script>' });
    await open(`#/chat/${bot.id}`);
    await page.getByLabel(/^Message to/).fill(evil);
    await page.getByLabel(/^Message to/).press('Enter');
    await page.locator('.msg-user .msg-text').waitFor();
    assert.equal(await page.locator('.msg-user .msg-text').innerText(), evil);
    await page.locator('.msg-assistant').waitFor();
    await page.goto(`${otto.url}/#/bots`);
    await page.getByText('<script>alert(3)</script>').waitFor();
    assert.equal(await page.locator('main img, main script, main b').count(), 0, 'no element made from server text');
    // The static transcript escapes too.
    const [conversation] = (await api(otto, 'GET', `/conversations?bot_id=${bot.id}`)).items;
    await page.goto(`${otto.url}/conversations/${conversation.id}/transcript`);
    await page.getByText(evil).waitFor();
    assert.equal(await page.locator('article p *').count(), 0, 'message text made no elements');
    await close(); // also asserts that no alert() dialog ever opened
  });

  it('every view loads without a console error, by keyboard, and fits a 375 px phone', async () => {
    await open('', { width: 375, height: 740 });
    // Views light up when the server has their routes.
    const paths = (await api(otto, 'GET', '/openapi.json')).paths as Record<string, unknown>;
    const views = ['Chat', 'Bots', 'Storage & health', ...(paths['/usage'] ? ['Usage'] : []), ...(paths['/users'] ? ['Users & keys'] : [])];
    for (const name of views) {
      const link = page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true });
      await link.focus();
      await page.keyboard.press('Enter');
      await page.waitForFunction((n) => document.querySelector('nav a[aria-current="page"]')?.textContent === n, name);
      await page.waitForLoadState('networkidle').catch(() => {});
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 0, `${name} is wider than the phone by ${overflow}px`);
      // Every form control has an accessible name.
      const unlabelled = await page.evaluate(() =>
        [...document.querySelectorAll('main input, main textarea, main select')]
          .filter((el) => !(el as HTMLInputElement).labels?.length && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
          .map((el) => el.outerHTML),
      );
      assert.deepEqual(unlabelled, [], `unlabelled controls in ${name}`);
    }
    await page.getByRole('link', { name: 'Storage & health' }).click();
    assert.equal(await page.getByTestId('engine').innerText(), 'sqlite');
    await close();
  });
});
