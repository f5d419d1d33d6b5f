/**
 * `npm run bench -- http`: chat throughput over HTTP. Otto (`otto serve`, SQLite in a fresh
 * temp data dir, FULL sync, offline replies) in a child process, against a bare Fastify app
 * (bench/support/bare-http-server.ts, also a child) whose one route does ONE raw insert into
 * a node:sqlite table in WAL mode with the same durability (FULL: every acknowledged write's
 * WAL fsynced; SQLite does it in the bare route's COMMIT, Otto's store on the thread pool)
 * and busy timeout; SQLite's default checkpoint interval there. Both are hit the same way:
 * `POST /conversations/:id/messages` with `{content}` from a closed-loop generator
 * (node:http keep-alive Agent, C concurrent connections), round-robin over N conversations.
 *
 * Both servers run for the whole benchmark; the measured time is split into slices that
 * alternate between them (the side going first swaps every slice), so that machine noise
 * hits both alike. Each side gets an untimed warm-up first. Prints one JSON line on stdout;
 * progress (and per-side CPU time, status counts, error samples) on stderr.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { compareLoads, keepAliveAgent, LOAD_OPTIONS, loadSettings, type LoadRequest } from './support/http-load.ts';
import { cleanEnv, ottoBin, ottoEnv, repoRoot, startListening, type ListeningChild } from './support/listening-child.ts';
import { parseBenchArgs } from './support/args.ts';
import { benchProgress, round } from './support/figures.ts';

const progress = benchProgress('http');

const usage = `Usage: npm run bench -- http [--flags]

Otto's POST /conversations/:id/messages (user message stored, offline reply, reply stored)
against a bare Fastify route doing one raw node:sqlite insert per request, same durability
(WAL, synchronous FULL), each server in its own child process, hit by the same closed-loop
load (keep-alive connections, round-robin over conversations). One JSON line:
  otto_req_per_s, otto_p50_ms, otto_p99_ms   Otto: 2xx responses per second, latency
  bare_req_per_s, bare_p50_ms, bare_p99_ms   the bare baseline, likewise
  ratio                                      otto_req_per_s / bare_req_per_s
  errors                                     non-2xx responses and failed requests, both sides

Flags:
  --duration S          measured seconds per side (default 10), split into alternating slices
  --slices K            how many slices per side (default 5)
  --warmup S            untimed warm-up seconds per side (default 2)
  --connections C       concurrent keep-alive connections (default 50)
  --conversations N     Otto conversations the load goes round-robin over (default 50)
  --guidelines G        guidelines of the bot (default 3)
  --synchronous S       FULL (default, Otto's default) | NORMAL, for both servers
  --cpu-prof DIR        run the Otto child with --cpu-prof, writing its .cpuprofile to DIR
                        (summarize it with: node bench/support/cpuprofile-summary.ts FILE)
  --dir DIR             where the data dirs go (default the OS temp dir); removed afterwards
  -h, --help            this help

Target (reported, not asserted): ratio >= 0.5.`;

/** Message texts: some match the bot's guidelines, some don't. */
const TEXTS = [
  'Hi, I would like a refund for my last order, it arrived broken',
  'How long does shipping take to Lisbon?',
  'thanks a lot, that helps',
  'Can you tell me the status of order 4411?',
  'I want my money back, the refund policy says 30 days',
  'Where is my parcel? shipping seems stuck',
  'What are your opening hours on Sunday?',
  'My account is locked, can you help?',
];

const GUIDELINES = [
  { condition: 'the user asks about a refund or their money back', action: 'explain the 30-day refund policy and offer to start a refund' },
  { condition: 'the user asks about shipping or where their parcel is', action: 'give the usual shipping times and offer to look up the tracking number' },
  { condition: 'the user says thanks', action: 'say you are glad to help and ask whether there is anything else' },
  { condition: 'the user asks about an order status', action: 'ask for the order number and look it up' },
  { condition: 'the user cannot log in to their account', action: 'explain how to reset the password' },
];

export async function run(argv: string[]): Promise<number> {
  const values = parseBenchArgs(
    { args: argv, options: { ...LOAD_OPTIONS, guidelines: { type: 'string', default: '3' }, 'cpu-prof': { type: 'string' }, dir: { type: 'string' }, help: { type: 'boolean', short: 'h' } } },
    usage,
  );
  if (typeof values === 'number') return values;
  const settings = loadSettings(values);
  if (typeof settings === 'string') return bad(settings);
  const { synchronous } = settings;
  const guidelines = Number(values.guidelines);
  if (!Number.isSafeInteger(guidelines) || guidelines < 0 || guidelines > GUIDELINES.length) return bad(`--guidelines must be an integer from 0 to ${GUIDELINES.length}`);
  const { conversations } = settings;
  const profileDir = values['cpu-prof'] === undefined ? undefined : resolve(values['cpu-prof']);

  const dir = mkdtempSync(join(resolve(values.dir ?? tmpdir()), 'otto-bench-http-'));
  const children: ListeningChild[] = [];
  const agents = [keepAliveAgent(settings.connections), keepAliveAgent(settings.connections)];
  try {
    progress(`files in ${dir}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} on this machine`);

    // Otto, in a child, on a fresh SQLite data dir.
    const ottoDir = join(dir, 'otto');
    const ottoArgs = [...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), ottoBin, 'serve'];
    const otto = await startListening({ label: 'otto serve', args: ottoArgs, cwd: dir, env: ottoEnv(ottoDir, { OTTO_SQLITE_SYNC: synchronous }) });
    children.push(otto);
    progress(`otto serve listening at ${otto.url} (pid ${otto.pid}, ${Math.round(otto.startupMs)} ms to start)`);

    // The bare baseline, in a child.
    const bare = await startListening({
      label: 'bare server',
      args: [join(repoRoot, 'bench', 'support', 'bare-http-server.ts'), join(dir, 'bare.db'), synchronous],
      cwd: dir,
      env: cleanEnv({}),
    });
    children.push(bare);
    progress(`bare server listening at ${bare.url} (pid ${bare.pid}): ${/^pragmas (.*)$/m.exec(bare.stdout())?.[1] ?? '?'}`);

    // A bot with guidelines, and the conversations (setup, not measured).
    const bot = (await post(otto.url, '/bots', { name: 'Bench Bot', description: 'answers shop questions' })) as { id: string };
    for (const g of GUIDELINES.slice(0, guidelines)) await post(otto.url, `/bots/${bot.id}/guidelines`, g);
    const conversationIds: string[] = [];
    for (let i = 0; i < conversations; i++) {
      conversationIds.push(((await post(otto.url, '/conversations', { bot_id: bot.id, user_id: `user_${i}` })) as { id: string }).id);
    }
    // One turn, to show what the load does.
    const probe = (await post(otto.url, `/conversations/${conversationIds[0]}/messages`, { content: TEXTS[0] })) as { reply: { content: string; agent_steps: Array<{ type: string }> } };
    progress(`bot ${bot.id} with ${guidelines} guideline(s), ${conversations} conversation(s); a turn replies ${JSON.stringify(probe.reply.content.slice(0, 120))} (steps: ${probe.reply.agent_steps.map((s) => s.type).join(', ')})`);

    const figures = await compareLoads({
      sides: {
        otto: { url: otto.url, agent: agents[0]!, cpuMs: () => otto.cpuMs(), next: (n: number): LoadRequest => ({ method: 'POST', path: `/conversations/${conversationIds[n % conversationIds.length]}/messages`, body: { content: TEXTS[n % TEXTS.length] } }) },
        bare: { url: bare.url, agent: agents[1]!, cpuMs: () => bare.cpuMs(), next: (n: number): LoadRequest => ({ method: 'POST', path: `/conversations/conv_${n % conversations}/messages`, body: { content: TEXTS[n % TEXTS.length] } }) },
      },
      order: ['otto', 'bare'],
      settings,
      progress,
    });
    const o = figures.otto;
    const b = figures.bare;
    for (const name of ['otto', 'bare'] as const) {
      const t = figures[name];
      const cpu = t.cpuMs === null ? 'server CPU unknown' : `server CPU ${(t.cpuMs / 1000).toFixed(1)} s = ${(t.cpuMs / Math.max(1, t.ok + t.errors)).toFixed(2)} ms/request (${((t.cpuMs / t.elapsedMs) * 100).toFixed(0)}% of a core)`;
      progress(`${name}: ${t.ok} ok + ${t.errors} errors in ${(t.elapsedMs / 1000).toFixed(1)} s; statuses ${JSON.stringify(t.outcomes)}; ${cpu}`);
    }
    const ratio = o.perS / b.perS;
    progress(`ratio ${ratio.toFixed(3)} (target >= 0.5): ${ratio >= 0.5 ? 'ok' : 'MISSED'}`);

    // What the servers stored: every 2xx Otto request is a user message and a reply.
    await Promise.all(children.map((c) => c.stop()));
    const stored = storedCounts(join(ottoDir, 'otto.db'), join(dir, 'bare.db'));
    progress(`stored: otto ${stored.otto} messages (journal_mode ${stored.ottoJournal}), bare ${stored.bare} rows; data dir ${megabytes(ottoDir)} MB`);
    if (profileDir) progress(`Otto CPU profile(s) in ${profileDir}: ${readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile')).join(', ')}`);

    console.log(
      JSON.stringify({
        bench: 'http',
        otto_req_per_s: round(o.perS, 1),
        otto_p50_ms: round(o.p50, 2),
        otto_p99_ms: round(o.p99, 2),
        bare_req_per_s: round(b.perS, 1),
        bare_p50_ms: round(b.p50, 2),
        bare_p99_ms: round(b.p99, 2),
        ratio: round(ratio, 3),
        errors: o.errors + b.errors,
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

/** A setup request; throws with the response body unless it is 2xx. */
async function post(base: string, path: string, body: unknown): Promise<unknown> {
  const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(30_000) });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${path} -> ${res.status}: ${text}`);
  return JSON.parse(text) as unknown;
}

function storedCounts(ottoDb: string, bareDb: string): { otto: number; bare: number; ottoJournal: string } {
  const count = (file: string, sql: string) => {
    const db = new DatabaseSync(file, { readOnly: true });
    try {
      return db.prepare(sql).get() as Record<string, unknown>;
    } finally {
      db.close();
    }
  };
  return {
    otto: Number(count(ottoDb, 'SELECT COUNT(*) AS n FROM messages').n),
    ottoJournal: String(count(ottoDb, 'PRAGMA journal_mode').journal_mode),
    bare: Number(count(bareDb, 'SELECT COUNT(*) AS n FROM messages').n),
  };
}

function megabytes(dir: string): string {
  let bytes = 0;
  for (const f of readdirSync(dir)) bytes += statSync(join(dir, f)).size;
  return (bytes / 1e6).toFixed(1);
}

