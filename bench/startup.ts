/**
 * `npm run bench -- startup`: how long `otto serve` takes to start (from spawn to its
 * `listening` line) on a SQLite data dir holding the same bot definitions (20 bots, 100
 * guidelines) and either no messages or a large history (1,000,000 messages by default).
 * Startup rehydrates definitions only, so the two should start equally fast.
 *
 * Setup (not measured): `otto migrate up` on a fresh data dir; `otto serve` on it to create
 * the bots and guidelines over HTTP and to store one turn, whose conversation and messages,
 * read back from the file, are the templates of the bulk rows and are then deleted. The file
 * is copied to a second data dir, which gets N messages (in conversations of up to 1,000)
 * inserted with raw node:sqlite in one transaction, in the format Otto's SQLite engine
 * stores: `(id, doc)` rows whose generated columns and unique index SQLite maintains.
 *
 * Measured: R startups of each data dir, alternating (the side going first swaps every
 * round), after one untimed warm-up start of each. Prints one JSON line per data dir
 * (median, every run, bots rehydrated) and one with the ratio; progress on stderr.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { newId } from '../src/domain/ids.ts';
import { ottoBin, ottoEnv, runOtto, startListening, type ListeningChild } from './support/listening-child.ts';
import { parseBenchArgs } from './support/args.ts';
import { benchProgress, median, round } from './support/figures.ts';

const progress = benchProgress('startup');

const usage = `Usage: npm run bench -- startup [--flags]

Time from spawning \`otto serve\` to its "listening" line, on two SQLite data dirs with the
same definitions (20 bots, 100 guidelines): one with no messages, one with a large history.
One JSON line per data dir:
  messages          messages stored
  startup_ms_p50    median startup time (spawn to "listening"), ms
  startup_ms        every run, in order
  startup_cpu_ms_p50  median CPU time (user + system) Otto had used by then, ms (Linux):
                    less sensitive than wall time to other load on the machine
  rehydrated        N of "Rehydrated N bot(s)" (the same in every run, or the run fails)
then one line with ratio = startup_ms_p50(large) / startup_ms_p50(0), and cpu_ratio likewise.

Flags:
  --messages N          messages in the large data dir (default 1000000)
  --per-conversation K  messages per conversation (default 1000)
  --bots B              bots (default 20)
  --guidelines G        guidelines in all, spread over the bots (default 100)
  --runs R              timed startups per data dir (default 5)
  --warmup W            untimed startups per data dir first (default 1)
  --dir DIR             where the data dirs go (default the OS temp dir); removed afterwards
  -h, --help            this help

Expected: ratio about 1 (startup reads definitions only, never messages).`;

export async function run(argv: string[]): Promise<number> {
  const values = parseBenchArgs(
    {
    args: argv,
    options: {
      messages: { type: 'string', default: '1000000' },
      'per-conversation': { type: 'string', default: '1000' },
      bots: { type: 'string', default: '20' },
      guidelines: { type: 'string', default: '100' },
      runs: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      dir: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    },
    usage,
  );
  if (typeof values === 'number') return values;
  const n: Record<'messages' | 'per-conversation' | 'bots' | 'guidelines' | 'runs' | 'warmup', number> = { messages: 0, 'per-conversation': 0, bots: 0, guidelines: 0, runs: 0, warmup: 0 };
  const ranges = { messages: [0, 100_000_000], 'per-conversation': [1, 1_000_000], bots: [1, 1000], guidelines: [0, 100_000], runs: [1, 100], warmup: [0, 10] } as const;
  for (const key of Object.keys(n) as Array<keyof typeof n>) {
    const v = Number(values[key]);
    const [min, max] = ranges[key];
    if (!Number.isSafeInteger(v) || v < min || v > max) return bad(`--${key} must be an integer from ${min} to ${max}`);
    n[key] = v;
  }

  const root = mkdtempSync(join(resolve(values.dir ?? tmpdir()), 'otto-bench-startup-'));
  const small = join(root, 'small');
  const large = join(root, 'large');
  try {
    progress(`files in ${root}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} on this machine`);
    const templates = await seedDefinitions(small, n.bots, n.guidelines);
    mkdirSync(large);
    for (const suffix of ['', '-wal', '-shm']) if (existsSync(join(small, `otto.db${suffix}`))) copyFileSync(join(small, `otto.db${suffix}`), join(large, `otto.db${suffix}`));
    const sample = bulkInsert(join(large, 'otto.db'), templates, n.messages, n['per-conversation']);
    progress(`otto.db: ${megabytes(join(small, 'otto.db'))} MB with 0 messages, ${megabytes(join(large, 'otto.db'))} MB with ${n.messages}`);

    const sides = [
      { name: 'small', dir: small, messages: 0, times: [] as number[], cpu: [] as number[], rehydrated: new Set<number>() },
      { name: 'large', dir: large, messages: n.messages, times: [] as number[], cpu: [] as number[], rehydrated: new Set<number>() },
    ];
    for (let r = 0; r < n.warmup + n.runs; r++) {
      const timed = r >= n.warmup;
      for (const side of r % 2 === 0 ? sides : [...sides].reverse()) {
        const otto = await startOtto(side.dir, `otto serve (${side.messages} messages)`);
        try {
          const rehydrated = Number(/Rehydrated (\d+) bot\(s\)/.exec(otto.stdout())?.[1] ?? Number.NaN);
          // Also what /health says. (Answering a request also means serve has finished its
          // startup block and installed its SIGTERM handler, which it does just after
          // printing "listening"; a SIGTERM before that kills it without a clean stop.)
          const health = (await (await fetch(`${otto.url}/health`, { signal: AbortSignal.timeout(30_000) })).json()) as { bots?: { rehydrated?: number } };
          if (health.bots?.rehydrated !== rehydrated) throw new Error(`${side.name}: the startup block says ${rehydrated} bot(s), /health says ${JSON.stringify(health.bots)}`);
          side.rehydrated.add(rehydrated);
          if (timed) {
            side.times.push(otto.startupMs);
            if (otto.startupCpuMs !== undefined) side.cpu.push(otto.startupCpuMs);
          }
          progress(`${timed ? `run ${r - n.warmup + 1}/${n.runs}` : 'warm-up'}: ${side.messages} messages: ${otto.startupMs.toFixed(0)} ms to listening (${otto.startupCpuMs ?? '?'} ms CPU), rehydrated ${rehydrated} bot(s); load average ${loadavg()[0]!.toFixed(2)}`);
          // Once: the bulk history reads back through Otto like any other.
          if (r === 0 && side.messages > 0 && sample) await checkReadable(otto, sample);
        } finally {
          const exit = await otto.stop();
          if (exit.code !== 0) throw new Error(`otto serve exited with ${exit.signal ?? `code ${exit.code}`}:\n${otto.stderr()}`);
        }
      }
    }
    for (const side of sides) {
      if (side.rehydrated.size !== 1) throw new Error(`${side.name}: rehydrated counts differ between runs: ${[...side.rehydrated].join(', ')}`);
    }

    const p50 = sides.map((s) => median(s.times));
    for (const [i, side] of sides.entries()) {
      console.log(JSON.stringify({ bench: 'startup', messages: side.messages, startup_ms_p50: round(p50[i]!, 1), startup_ms: side.times.map((t) => round(t, 1)), ...(side.cpu.length === side.times.length ? { startup_cpu_ms_p50: median(side.cpu) } : {}), rehydrated: [...side.rehydrated][0] }));
    }
    const ratio = p50[1]! / p50[0]!;
    const cpuRatio = sides.every((s) => s.cpu.length > 0) ? median(sides[1]!.cpu) / median(sides[0]!.cpu) : undefined;
    progress(`ratio ${ratio.toFixed(3)} (expected about 1)${cpuRatio === undefined ? '' : `; CPU-time ratio ${cpuRatio.toFixed(3)}`}; load average now ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    console.log(JSON.stringify({ bench: 'startup', ratio: round(ratio, 3), ...(cpuRatio === undefined ? {} : { cpu_ratio: round(cpuRatio, 3) }), small_messages: 0, large_messages: n.messages }));
    return 0;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

function bad(message: string): number {
  console.error(`${message}\n\n${usage}`);
  return 2;
}

function startOtto(dataDir: string, label: string): Promise<ListeningChild> {
  return startListening({ label, args: [ottoBin, 'serve'], cwd: dataDir, env: ottoEnv(dataDir) });
}

interface Templates {
  /** Stored documents (parsed), as Otto's SQLite engine wrote them. */
  conversation: Record<string, unknown>;
  user: Record<string, unknown>;
  assistant: Record<string, unknown>;
  botIds: string[];
}

/**
 * Migrates a fresh data dir, creates the bots and guidelines through Otto's HTTP API, stores
 * one turn to learn the stored format, and deletes that turn again. Returns the templates.
 */
async function seedDefinitions(dataDir: string, bots: number, guidelines: number): Promise<Templates> {
  mkdirSync(dataDir, { recursive: true });
  progress(`otto migrate up: ${(await runOtto(['migrate', 'up'], { cwd: dataDir, env: ottoEnv(dataDir) })).trim().split('\n').at(-1)}`);
  const otto = await startOtto(dataDir, 'otto serve (seeding)');
  const botIds: string[] = [];
  let conversationId: string;
  try {
    for (let b = 0; b < bots; b++) {
      botIds.push(((await post(otto.url, '/bots', { name: `Startup Bot ${b}`, description: `bot number ${b}` })) as { id: string }).id);
    }
    for (let g = 0; g < guidelines; g++) {
      await post(otto.url, `/bots/${botIds[g % bots]}/guidelines`, { condition: `the user asks about topic ${g} or refunds`, action: `explain topic ${g} and the refund policy` });
    }
    conversationId = ((await post(otto.url, '/conversations', { bot_id: botIds[0], user_id: 'template' })) as { id: string }).id;
    await post(otto.url, `/conversations/${conversationId}/messages`, { content: 'Can I get a refund for topic 0?' });
  } finally {
    await otto.stop();
  }
  progress(`created ${bots} bots and ${guidelines} guidelines through the API`);

  const db = new DatabaseSync(join(dataDir, 'otto.db'));
  try {
    const docs = (db.prepare('SELECT doc FROM messages WHERE json_extract(doc, \'$.conversation_id\') = ? ORDER BY json_extract(doc, \'$.offset\')').all(conversationId) as Array<{ doc: string }>).map(
      (r) => JSON.parse(r.doc) as Record<string, unknown>,
    );
    const conversation = JSON.parse((db.prepare('SELECT doc FROM conversations WHERE id = ?').get(conversationId) as { doc: string }).doc) as Record<string, unknown>;
    const user = docs.find((d) => d.role === 'user');
    const assistant = docs.find((d) => d.role === 'assistant');
    if (!user || !assistant) throw new Error(`the template turn stored ${docs.length} message(s), not a user message and a reply`);
    // Back to definitions only.
    db.exec('BEGIN IMMEDIATE');
    db.prepare('DELETE FROM messages').run();
    db.prepare('DELETE FROM conversations').run();
    db.exec('COMMIT');
    const counts = db.prepare('SELECT (SELECT COUNT(*) FROM bots) AS bots, (SELECT COUNT(*) FROM guidelines) AS guidelines, (SELECT COUNT(*) FROM messages) AS messages').get() as Record<string, number>;
    progress(`definitions data dir: ${JSON.stringify(counts)}`);
    db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
    return { conversation, user, assistant, botIds };
  } finally {
    db.close();
  }
}

/** The layout Otto's SQLite engine gave `messages`: plain columns id and doc, the rest generated. */
function checkLayout(db: DatabaseSync): void {
  const columns = db.prepare('PRAGMA table_xinfo(messages)').all() as Array<{ name: string; hidden: number }>;
  const plain = columns.filter((c) => c.hidden === 0).map((c) => c.name);
  if (plain.join(',') !== 'id,doc') throw new Error(`messages has plain columns ${plain.join(', ')}; expected id, doc (the rest generated)`);
  const generated = columns.filter((c) => c.hidden !== 0).map((c) => c.name);
  const indexes = (db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages'").all() as Array<{ name: string; sql: string | null }>).map((i) => i.sql ?? `${i.name} (automatic)`);
  progress(`messages table: (id, doc) + generated ${generated.join(', ')}; indexes: ${indexes.join('; ')}`);
}

/**
 * Inserts `total` messages (conversations of up to `perConversation`, cycling over the bots)
 * into the database in one transaction, built from the templates exactly as Otto stores them.
 * Returns one of the conversations (id, message count) to read back, or undefined when total is 0.
 */
function bulkInsert(file: string, t: Templates, total: number, perConversation: number): { conversationId: string; messages: number } | undefined {
  if (total === 0) return undefined;
  const started = performance.now();
  const db = new DatabaseSync(file);
  try {
    db.exec('PRAGMA busy_timeout = 5000');
    db.exec('PRAGMA journal_mode = WAL');
    db.exec('PRAGMA cache_size = -262144'); // 256 MiB: the primary-key index of random ids stays in memory
    checkLayout(db);
    const insertConversation = db.prepare('INSERT INTO conversations (id, doc) VALUES (?, ?)');
    const insertMessage = db.prepare('INSERT INTO messages (id, doc) VALUES (?, ?)');
    const conversations = Math.ceil(total / perConversation);
    const texts = ['Can I get a refund for my order?', 'Where is my parcel, shipping is slow', 'thanks!', 'How do I reset my password?', 'What is the status of order 1234?'];
    const base = Date.now() - total - 1000;
    let written = 0;
    let sample: { conversationId: string; messages: number } | undefined;
    db.exec('BEGIN IMMEDIATE');
    try {
      for (let c = 0; c < conversations; c++) {
        const count = Math.min(perConversation, total - written);
        const conversationId = newId('conv');
        const at = new Date(base + written).toISOString();
        const last = new Date(base + written + count - 1).toISOString();
        const conversation = { ...t.conversation, id: conversationId, bot_id: t.botIds[c % t.botIds.length], user_id: `user_${c}`, last_offset: count, created_at: at, updated_at: last };
        insertConversation.run(conversationId, JSON.stringify(conversation));
        for (let offset = 1; offset <= count; offset++, written++) {
          const template = offset % 2 === 1 ? t.user : t.assistant;
          const when = new Date(base + written).toISOString();
          const id = newId('msg');
          const message = {
            ...template,
            id,
            conversation_id: conversationId,
            offset,
            ...(offset % 2 === 1 ? { content: texts[written % texts.length] } : {}),
            created_at: when,
            updated_at: when,
          };
          insertMessage.run(id, JSON.stringify(message));
        }
        sample ??= { conversationId, messages: count };
        if ((c + 1) % Math.max(1, Math.floor(conversations / 10)) === 0) progress(`inserting: ${written}/${total} messages (${((performance.now() - started) / 1000).toFixed(1)} s)`);
      }
      db.exec('COMMIT');
    } catch (error) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw error;
    }
    db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
    const stored = Number((db.prepare('SELECT COUNT(*) AS n FROM messages').get() as { n: number }).n);
    if (stored !== total) throw new Error(`${stored} messages stored, expected ${total}`);
    const seconds = (performance.now() - started) / 1000;
    progress(`inserted ${total} messages in ${conversations} conversations in ${seconds.toFixed(1)} s (${Math.round(total / seconds)}/s), one transaction`);
    return sample;
  } finally {
    db.close();
  }
}

/** Reads the latest page of a bulk conversation through Otto's API: the rows are in Otto's format. */
async function checkReadable(otto: ListeningChild, sample: { conversationId: string; messages: number }): Promise<void> {
  const res = await fetch(`${otto.url}/conversations/${sample.conversationId}/messages?limit=5`, { signal: AbortSignal.timeout(30_000) });
  const body = (await res.json()) as { items?: Array<{ offset: number }>; last_offset?: number };
  const offsets = body.items?.map((m) => m.offset).join(',');
  const expected = Array.from({ length: Math.min(5, sample.messages) }, (_, i) => sample.messages - Math.min(5, sample.messages) + 1 + i).join(',');
  if (res.status !== 200 || offsets !== expected || body.last_offset !== sample.messages) {
    throw new Error(`reading bulk conversation ${sample.conversationId} through Otto: ${res.status} ${JSON.stringify(body).slice(0, 500)}`);
  }
  progress(`bulk conversation ${sample.conversationId} reads back through Otto: offsets ${offsets}, last_offset ${body.last_offset}`);
}

async function post(base: string, path: string, body: unknown): Promise<unknown> {
  const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(30_000) });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${path} -> ${res.status}: ${text}`);
  return JSON.parse(text) as unknown;
}

function megabytes(file: string): string {
  return (statSync(file).size / 1e6).toFixed(1);
}

