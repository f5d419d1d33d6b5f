/**
 * `npm run screenshots`: saves screenshots of the web page's main views to docs/ (PNG), as
 * shown in the README. Starts a real `otto serve` on a fresh temp data dir (SQLite, a JSON-lines
 * mirror, offline replies), fills it by chatting with Otto the way a user would, and drives
 * Debian's Chromium (playwright-core, headless).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchBrowser } from '../test/support/browser.ts';
import { startOttoProcess } from '../test/support/otto-process.ts';
import { ensureWebBuild, repoRoot } from './web-build.ts';

const usage = `Usage: npm run screenshots

Saves docs/web-*.png: the bot-builder, a chat with agent steps, a bot's page, storage and
health, usage, and the chat on a 375 px phone. Needs Chromium (apt-get install -y chromium).`;

async function post(base: string, path: string, body: unknown): Promise<any> {
  const response = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`POST ${path} → ${response.status} ${await response.text()}`);
  return response.json();
}

/** Makes the screenshots; returns the files written. Throws when a step fails. */
export async function takeScreenshots(args: { outDir?: string; onProgress?: (line: string) => void } = {}): Promise<string[]> {
  const say = args.onProgress ?? (() => {});
  const outDir = args.outDir ?? join(repoRoot, 'docs');
  mkdirSync(outDir, { recursive: true });
  await ensureWebBuild({ onProgress: say });
  const dir = mkdtempSync(join(tmpdir(), 'otto-screens-'));
  const otto = await startOttoProcess({ label: 'screens', dataDir: dir, env: { OTTO_MIRRORS: `jsonl:${join(dir, 'mirror')}` } });
  const browser = await launchBrowser();
  const written: string[] = [];
  try {
    const url = otto.url;
    const context = await browser.newContext({ viewport: { width: 1200, height: 760 }, colorScheme: 'light' });
    const page = await context.newPage();
    const shot = async (name: string, target = page) => {
      const file = join(outDir, `web-${name}.png`);
      await target.screenshot({ path: file });
      written.push(file);
      say(`saved ${file}`);
    };

    // The bot-builder: a user builds a bot by chatting with Otto.
    await page.goto(`${url}/`);
    const say1 = async (text: string, n: number) => {
      await page.getByLabel('Message to Otto').fill(text);
      await page.getByLabel('Message to Otto').press('Enter');
      await page.locator('.msg-assistant').nth(n).waitFor();
    };
    await say1('Create a bot called Support that answers questions about orders', 0);
    await say1('Add a guideline to Support: when the user asks about refunds, explain the 30-day policy', 1);
    await say1('Add a guideline to Support: if the user asks where their parcel is then give the usual shipping times', 2);
    await page.getByTestId('bot-list').getByRole('link', { name: 'Support' }).waitFor();
    await shot('builder');

    // A chat with the new bot, one reply's agent steps open.
    const bots = (await (await fetch(`${url}/bots`)).json()) as Array<{ id: string; name: string }>;
    const support = bots.find((b) => b.name === 'Support')!;
    await post(url, `/bots/${support.id}/journeys`, { title: 'Returns', conditions: ['the user wants to return an item'], steps: [{ instruction: 'ask for the order number', advance_when: ['order'] }, { instruction: 'explain how to send it back' }] });
    await page.getByTestId('bot-list').getByRole('link', { name: 'Support' }).click();
    const composer = page.getByLabel('Message to Support');
    for (const [i, text] of ['Hi! Can I get a refund for my order?', 'And where is my parcel? It has been a week.'].entries()) {
      await composer.fill(text);
      await composer.press('Enter');
      await page.locator('.msg-assistant').nth(i).waitFor();
    }
    await page.locator('.msg-assistant details.steps summary').first().click();
    await shot('chat');

    // The bot's page.
    await page.goto(`${url}/#/bots/${support.id}`);
    await page.getByRole('heading', { name: 'Guidelines (2)' }).waitFor();
    await shot('bot');

    // Storage and health, usage.
    await page.goto(`${url}/#/storage`);
    await page.getByTestId('engine').waitFor();
    await page.waitForTimeout(1500); // the mirror catches up
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.waitForTimeout(300);
    await shot('storage');
    await page.goto(`${url}/#/usage`);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Usage' }).waitFor();
    await page.getByRole('radio', { name: 'Bot' }).check();
    await page.getByTestId('usage-table').waitFor();
    await shot('usage');

    // The chat on a phone.
    const phone = await browser.newContext({ viewport: { width: 375, height: 740 }, deviceScaleFactor: 2, colorScheme: 'dark' });
    const small = await phone.newPage();
    const [conversation] = ((await (await fetch(`${url}/conversations?bot_id=${support.id}`)).json()) as { items: Array<{ id: string }> }).items;
    await small.goto(`${url}/#/chat/${support.id}/${conversation!.id}`);
    await small.locator('.msg-assistant').first().waitFor();
    await shot('phone', small);
    await phone.close();
    await context.close();
    return written;
  } finally {
    await browser.close();
    await otto.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--help') || process.argv.includes('-h')) console.log(usage);
  else {
    try {
      await takeScreenshots({ onProgress: (line) => console.error(line) });
    } catch (error) {
      console.error(error instanceof Error ? (error.stack ?? error.message) : error);
      process.exitCode = 1;
    }
  }
}
