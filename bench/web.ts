/**
 * `npm run bench -- web`: the first load of the chat view in Chromium against a static HTML
 * page of the same conversation (`GET /conversations/:id/transcript`), both served by the same
 * `otto serve` (SQLite, fresh temp data dir) in the same run.
 *
 * Each round opens each page in a fresh browser context (cold cache), alternating which goes
 * first, and measures:
 *   - time to the first rendered message: `performance.now()` (ms since navigation start) at
 *     the first animation frame where a message's text is in the DOM;
 *   - transferred bytes: the sum of Chromium's `encodedDataLength` (headers + body as sent,
 *     gzip where the server compresses) of the responses finished by then, and of all of the
 *     load once the network is idle (the page's event stream, never finished, is not counted);
 *   - for the app, a reload in the same context (warm cache: content-hashed assets come from it).
 * Prints one JSON line with medians and the ratios app / static.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ensureWebBuild } from '../scripts/web-build.ts';
import { chromiumPath, launchBrowser } from '../test/support/browser.ts';
import { ottoBin, ottoEnv, repoRoot, startListening } from './support/listening-child.ts';
import { parseBenchArgs } from './support/args.ts';
import { median, round } from './support/figures.ts';

const usage = `Usage: npm run bench -- web [--flags]

First load of the web app's chat view vs a static HTML page of the same conversation
(/conversations/:id/transcript), same server, same run, Chromium (headless, cold cache).
One JSON line:
  app_first_message_ms, static_first_message_ms    median time to the first rendered message
  app_bytes_to_first_message, static_bytes         transferred bytes until then
  app_bytes_total                                  transferred bytes of the whole first load
  app_reload_bytes                                 a reload with a warm cache
  time_ratio, bytes_ratio                          app / static

Flags:
  --rounds N      page loads per side (default 4; on this machine headless Chromium was seen
                  to drop out after about 7 rounds, whatever the browser's lifetime)
  --messages N    user messages in the conversation (each gets a reply; default 20)
  -h, --help      this help`;

interface Load {
  firstMessageMs: number;
  bytesToFirstMessage: number;
  bytesTotal: number;
}

/** Counts transferred bytes of every finished response on `page` (Chrome DevTools Protocol). */
async function byteCounter(context: BrowserContext, page: Page): Promise<() => number> {
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  let bytes = 0;
  cdp.on('Network.loadingFinished', (event: { encodedDataLength: number }) => {
    bytes += event.encodedDataLength;
  });
  return () => bytes;
}

/** Loads `url` in `page` and measures until a message is on screen, then until the network is idle. */
async function measure(page: Page, bytes: () => number, url: string): Promise<Load> {
  const before = bytes();
  await page.goto(url, { waitUntil: 'commit' });
  const handle = await page.waitForFunction(
    () => {
      const text = document.querySelector('.msg-text, main article p');
      return text && text.textContent ? performance.now() : false;
    },
    undefined,
    { polling: 'raf', timeout: 30_000 },
  );
  const firstMessageMs = (await handle.jsonValue()) as number;
  const bytesToFirstMessage = bytes() - before;
  await page.waitForLoadState('networkidle').catch(() => {});
  await page.waitForTimeout(300);
  return { firstMessageMs, bytesToFirstMessage, bytesTotal: bytes() - before };
}

async function coldLoad(browser: Browser, url: string, reload: boolean): Promise<Load & { reloadBytes?: number }> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  try {
    const page = await context.newPage();
    const bytes = await byteCounter(context, page);
    const first = await measure(page, bytes, url);
    if (!reload) return first;
    const again = await measure(page, bytes, `${url.split('#')[0]}?again${url.includes('#') ? `#${url.split('#')[1]}` : ''}`);
    return { ...first, reloadBytes: again.bytesTotal };
  } finally {
    await context.close();
  }
}

async function post(url: string, body: unknown): Promise<any> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`POST ${url} → ${response.status} ${await response.text()}`);
  return response.json();
}

export async function run(argv: string[]): Promise<number> {
  const values = parseBenchArgs({ args: argv, options: { rounds: { type: 'string', default: '4' }, messages: { type: 'string', default: '20' }, help: { type: 'boolean', short: 'h' } } }, usage);
  if (typeof values === 'number') return values;
  const rounds = Number(values.rounds);
  const messages = Number(values.messages);
  if (!Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(messages) || messages < 1) {
    console.error(`--rounds and --messages take whole numbers ≥ 1\n\n${usage}`);
    return 2;
  }
  if (!chromiumPath()) {
    console.error('Chromium is needed: apt-get install -y chromium (or set OTTO_CHROMIUM)');
    return 1;
  }

  console.error('web: making sure web/dist is built');
  await ensureWebBuild({ onProgress: (line) => console.error(line) });
  const dir = mkdtempSync(join(tmpdir(), 'otto-bench-web-'));
  const otto = await startListening({ label: 'otto serve', args: [ottoBin, 'serve'], cwd: repoRoot, env: ottoEnv(dir) });
  // A new browser for every round: each load starts from nothing, and a long-lived headless
  // Chromium on a busy machine was seen to drop its pages after a few dozen contexts.
  let browser = await launchBrowser();
  const load = (url: string, reload: boolean) => coldLoad(browser, url, reload);
  const fresh = async () => {
    await browser.close();
    browser = await launchBrowser();
  };
  try {
    const bot = await post(`${otto.url}/bots`, { name: 'Support' });
    await post(`${otto.url}/bots/${bot.id}/guidelines`, { condition: 'the user asks about a refund', action: 'explain the 30-day refund policy' });
    const conversation = await post(`${otto.url}/conversations`, { bot_id: bot.id });
    for (let i = 0; i < messages; i++) await post(`${otto.url}/conversations/${conversation.id}/messages`, { content: i % 2 ? `Where is my parcel number ${i}?` : `Can I get a refund for order ${i}?` });
    console.error(`web: conversation with ${messages * 2} messages; ${rounds} rounds per side`);

    const appUrl = `${otto.url}/#/chat/${bot.id}/${conversation.id}`;
    const staticUrl = `${otto.url}/conversations/${conversation.id}/transcript`;
    // Untimed warm-up of the server and the browser.
    await load(appUrl, false);
    await load(staticUrl, false);

    const app: Array<Load & { reloadBytes?: number }> = [];
    const stat: Load[] = [];
    for (let i = 0; i < rounds; i++) {
      await fresh();
      if (i % 2 === 0) {
        app.push(await load(appUrl, true));
        stat.push(await load(staticUrl, false));
      } else {
        stat.push(await load(staticUrl, false));
        app.push(await load(appUrl, true));
      }
      console.error(`web: round ${i + 1}/${rounds}: app ${round(app.at(-1)!.firstMessageMs, 1)} ms, static ${round(stat.at(-1)!.firstMessageMs, 1)} ms`);
    }
    const appMs = median(app.map((l) => l.firstMessageMs));
    const staticMs = median(stat.map((l) => l.firstMessageMs));
    const appBytes = median(app.map((l) => l.bytesToFirstMessage));
    const staticBytes = median(stat.map((l) => l.bytesTotal));
    console.log(
      JSON.stringify({
        bench: 'web',
        messages: messages * 2,
        rounds,
        app_first_message_ms: round(appMs, 1),
        static_first_message_ms: round(staticMs, 1),
        app_bytes_to_first_message: appBytes,
        app_bytes_total: median(app.map((l) => l.bytesTotal)),
        app_reload_bytes: median(app.map((l) => l.reloadBytes ?? 0)),
        static_bytes: staticBytes,
        time_ratio: round(appMs / staticMs, 2),
        bytes_ratio: round(appBytes / staticBytes, 2),
      }),
    );
    return 0;
  } finally {
    await browser.close();
    await otto.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
