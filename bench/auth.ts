/**
 * `npm run bench -- auth`: what access keys cost a chat request. Two `otto serve` children on
 * their own fresh SQLite data dirs (FULL sync, offline replies), set up alike — a bot with
 * guidelines and N conversations:
 *
 * - `auth`: an admin user made with `otto users create`, so every request carries
 *   `Authorization: Bearer otto_…` and goes through key lookup (prefix index, hash compare,
 *   the `auth_revision` check that makes revocation immediate across processes);
 * - `open`: no users and no keys (the local admin on loopback; auth disabled). It still reads
 *   the revision counter (it must notice a first user), so the figure isolates key handling.
 *
 * Both are hit by the same closed-loop load (`POST /conversations/:id/messages`, keep-alive
 * connections), in alternating slices so that machine noise hits both alike. Prints one JSON
 * line with ratio = auth req/s ÷ open req/s (target ≥ 0.9).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { compareLoads, keepAliveAgent, LOAD_OPTIONS, loadSettings, type LoadRequest } from './support/http-load.ts';
import { ottoBin, ottoEnv, startListening, type ListeningChild } from './support/listening-child.ts';
import { parseBenchArgs } from './support/args.ts';
import { benchProgress, round } from './support/figures.ts';

const progress = benchProgress('auth');

const usage = `Usage: npm run bench -- auth [--flags]

POST /conversations/:id/messages (user message stored, offline reply, reply stored) on two
\`otto serve\` children, SQLite FULL sync: one needs an access key (a user made with
\`otto users create\`; every request sends it), the other has no users and no keys (auth off).
Same load, alternating slices. One JSON line:
  auth_req_per_s, auth_p50_ms, auth_p99_ms   with an access key on every request
  open_req_per_s, open_p50_ms, open_p99_ms   auth disabled (local admin on loopback)
  ratio                                      auth_req_per_s / open_req_per_s
  errors                                     non-2xx responses and failed requests, both sides

Flags:
  --duration S          measured seconds per side (default 10), split into alternating slices
  --slices K            slices per side (default 5)
  --warmup S            untimed warm-up seconds per side (default 2)
  --connections C       concurrent keep-alive connections (default 50)
  --conversations N     conversations the load goes round-robin over (default 50)
  --synchronous S       FULL (default) | NORMAL
  --dir DIR             where the data dirs go (default the OS temp dir); removed afterwards
  -h, --help            this help

Target (reported, not asserted): ratio >= 0.9.`;

const TEXTS = ['Hi, I would like a refund for my last order', 'How long does shipping take?', 'thanks a lot, that helps', 'Where is my parcel?'];
const GUIDELINES = [
  { condition: 'the user asks about a refund or their money back', action: 'explain the 30-day refund policy' },
  { condition: 'the user asks about shipping or where their parcel is', action: 'give the usual shipping times' },
  { condition: 'the user says thanks', action: 'say you are glad to help' },
];

export async function run(argv: string[]): Promise<number> {
  const values = parseBenchArgs({ args: argv, options: { ...LOAD_OPTIONS, dir: { type: 'string' }, help: { type: 'boolean', short: 'h' } } }, usage);
  if (typeof values === 'number') return values;
  const settings = loadSettings(values);
  if (typeof settings === 'string') return bad(settings);
  const { connections, conversations, synchronous } = settings;

  const dir = mkdtempSync(join(resolve(values.dir ?? tmpdir()), 'otto-bench-auth-'));
  const children: ListeningChild[] = [];
  const agents = [keepAliveAgent(connections), keepAliveAgent(connections)];
  try {
    progress(`files in ${dir}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    // The authenticated side: an admin user and its key, made by the CLI before the server starts.
    const authDir = join(dir, 'auth');
    const created = execFileSync(process.execPath, [ottoBin, 'users', 'create', '--username', 'bench', '--admin'], { env: ottoEnv(authDir, { OTTO_SQLITE_SYNC: synchronous }), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const secret = /otto_[0-9a-z]{10}_[0-9a-z]{40}/.exec(created)?.[0];
    if (!secret) throw new Error(`otto users create printed no key: ${created}`);
    const auth = await startListening({ label: 'otto serve (access key)', args: [ottoBin, 'serve'], cwd: dir, env: ottoEnv(authDir, { OTTO_SQLITE_SYNC: synchronous }) });
    children.push(auth);
    const open = await startListening({ label: 'otto serve (auth off)', args: [ottoBin, 'serve'], cwd: dir, env: ottoEnv(join(dir, 'open'), { OTTO_SQLITE_SYNC: synchronous }) });
    children.push(open);
    progress(`auth side at ${auth.url} (pid ${auth.pid}), open side at ${open.url} (pid ${open.pid})`);

    const keyHeaders = { authorization: `Bearer ${secret}` };
    const setUp = async (child: ListeningChild, headers: Record<string, string>) => {
      const bot = (await post(child.url, '/bots', { name: 'Bench Bot' }, headers)) as { id: string };
      for (const g of GUIDELINES) await post(child.url, `/bots/${bot.id}/guidelines`, g, headers);
      const ids: string[] = [];
      for (let i = 0; i < conversations; i++) ids.push(((await post(child.url, '/conversations', { bot_id: bot.id, user_id: `user_${i}` }, headers)) as { id: string }).id);
      return ids;
    };
    const authIds = await setUp(auth, keyHeaders);
    const openIds = await setUp(open, {});
    const refused = await fetch(`${auth.url}/conversations/${authIds[0]}/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ content: 'no key' }) });
    if (refused.status !== 401) throw new Error(`the auth side answered ${refused.status} without a key; expected 401`);

    const figures = await compareLoads({
      sides: {
        auth: { url: auth.url, agent: agents[0]!, next: (n: number): LoadRequest => ({ method: 'POST', path: `/conversations/${authIds[n % authIds.length]}/messages`, body: { content: TEXTS[n % TEXTS.length] }, headers: keyHeaders }) },
        open: { url: open.url, agent: agents[1]!, next: (n: number): LoadRequest => ({ method: 'POST', path: `/conversations/${openIds[n % openIds.length]}/messages`, body: { content: TEXTS[n % TEXTS.length] } }) },
      },
      order: ['auth', 'open'],
      settings,
      progress,
    });
    const a = figures.auth;
    const o = figures.open;
    const ratio = a.perS / o.perS;
    progress(`ratio ${ratio.toFixed(3)} (target >= 0.9): ${ratio >= 0.9 ? 'ok' : 'MISSED'}`);
    console.log(
      JSON.stringify({
        bench: 'auth',
        auth_req_per_s: round(a.perS, 1),
        auth_p50_ms: round(a.p50, 2),
        auth_p99_ms: round(a.p99, 2),
        open_req_per_s: round(o.perS, 1),
        open_p50_ms: round(o.p50, 2),
        open_p99_ms: round(o.p99, 2),
        ratio: round(ratio, 3),
        errors: a.errors + o.errors,
      }),
    );
    return 0;
  } finally {
    for (const agent of agents) agent.destroy();
    await Promise.all(children.map((c) => c.stop().catch(() => {})));
    rmSync(dir, { recursive: true, force: true });
  }
}

function bad(message: string): number {
  console.error(`${message}\n\n${usage}`);
  return 2;
}

/** A set-up request; throws with the response body unless it is 2xx. */
async function post(base: string, path: string, body: unknown, headers: Record<string, string>): Promise<unknown> {
  const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), signal: AbortSignal.timeout(30_000) });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${path} -> ${res.status}: ${text}`);
  return JSON.parse(text) as unknown;
}

