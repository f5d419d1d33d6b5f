/**
 * Real-browser helpers for test/web: Debian's Chromium (`apt-get install chromium`; `.ci/run`
 * installs it) driven by playwright-core, headless. `OTTO_CHROMIUM` overrides the executable.
 *
 * `watchPage` records everything that must not happen on a page (console errors, uncaught
 * exceptions, failed requests, dialogs such as `alert()`), so a test can assert there were none.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { ensureWebBuild } from '../../scripts/web-build.ts';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

/** The Chromium executable, or undefined when none is installed. */
export function chromiumPath(): string | undefined {
  const configured = process.env.OTTO_CHROMIUM;
  if (configured) return configured;
  return CANDIDATES.find((path) => existsSync(path));
}

/**
 * Why browser tests cannot run here, or undefined when they can. Under CI=true a missing
 * browser is not a reason to skip: the caller fails instead.
 */
export function browserSkipReason(): string | undefined {
  if (chromiumPath()) return undefined;
  if (process.env.CI === 'true') throw new Error('CI=true but no Chromium found: .ci/run installs it with apt-get (apt-get install -y chromium)');
  return 'no Chromium found (apt-get install -y chromium, or set OTTO_CHROMIUM); browser tests skipped';
}

/** Builds web/dist if it is missing or stale (the same step as `npm start`'s prestart). */
export async function ensureWebBuilt(): Promise<void> {
  await ensureWebBuild({ onProgress: (line) => process.stderr.write(`${line}\n`) });
}

/** Launches headless Chromium. Close it in an `after` hook. */
export async function launchBrowser(): Promise<Browser> {
  const executablePath = chromiumPath();
  if (!executablePath) throw new Error(browserSkipReason());
  return chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] });
}

/** What went wrong on a page while it was watched. */
export interface PageProblems {
  consoleErrors: string[];
  /** Chromium's own console line for each non-2xx response (`409 http://…`), kept apart: some are expected (a version conflict). */
  httpErrors: string[];
  pageErrors: string[];
  dialogs: string[];
  failedRequests: string[];
}

/**
 * Records console errors, uncaught exceptions, dialogs (dismissed at once) and failed requests
 * on every page of `context`. Returns the live lists.
 */
export function watchContext(context: BrowserContext): PageProblems {
  const problems: PageProblems = { consoleErrors: [], httpErrors: [], pageErrors: [], dialogs: [], failedRequests: [] };
  const watch = (page: Page) => {
    page.on('console', (message) => {
      if (message.type() !== 'error') return;
      const http = message.text().match(/^Failed to load resource: the server responded with a status of (\d+)/);
      if (http) problems.httpErrors.push(`${http[1]} ${message.location().url}`);
      else problems.consoleErrors.push(`${message.text()} (${message.location().url})`);
    });
    page.on('pageerror', (error) => problems.pageErrors.push(error.stack ?? error.message));
    page.on('dialog', (dialog) => {
      problems.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
      void dialog.dismiss().catch(() => {});
    });
    page.on('requestfailed', (request) => {
      const failure = request.failure()?.errorText ?? 'failed';
      // Streams the page ends itself (leaving a conversation, closing) are aborted on purpose.
      if (failure.includes('ERR_ABORTED')) return;
      problems.failedRequests.push(`${request.method()} ${request.url()}: ${failure}`);
    });
  };
  context.on('page', watch);
  for (const page of context.pages()) watch(page);
  return problems;
}

/**
 * Asserts that nothing went wrong on the pages: no console error, uncaught exception, failed
 * request or dialog, and no non-2xx response except those with a status in `expectedHttp`.
 */
export function assertNoProblems(problems: PageProblems, expectedHttp: number[] = []): void {
  const unexpected = problems.httpErrors.filter((line) => !expectedHttp.includes(Number(line.split(' ')[0])));
  const report = { ...problems, httpErrors: unexpected };
  for (const [kind, list] of Object.entries(report)) {
    if (list.length > 0) throw new Error(`${kind} on the page:\n  ${list.join('\n  ')}`);
  }
}
