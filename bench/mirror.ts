/**
 * `npm run bench -- mirror`: what a JSON-lines mirror costs. Two measurements, one JSON line each
 * (progress on stderr):
 *
 * - `append`: the time a JSONL mirror takes to apply K new changes (`Mirror.syncOnce`, the
 *   real path: read the change log, append to the folder, fsync, move the cursor) when the
 *   mirror already holds 1,000 documents and when it holds 100,000. The ratio (100k / 1k,
 *   per change) shows whether appending slows down as the mirror grows (target <= 1.2).
 * - `primary`: acknowledged writes per second on a SQLite primary (synchronous=FULL, Otto's
 *   default, change log attached as `otto serve` does) with one JSONL mirror following in the
 *   background, against the same kind of primary without a mirror, side by side in the same
 *   run, written in alternating blocks of 500 (the mirror catches up after each of its blocks,
 *   untimed, so its work never lands in the other side's block; its work during its own block
 *   is what is measured). Ratio mirror / none (target >= 0.8).
 *
 * The raw-driver comparison of the storage benchmarks does not apply here: both sides of each
 * ratio are Otto, with and without the thing being measured.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collections } from '../src/domain/collections.ts';
import { newId } from '../src/domain/ids.ts';
import { attachChangeLog, Mirror } from '../src/storage/changes/index.ts';
import type { Store } from '../src/storage/contract.ts';
import { migrationsFor, runMigrations } from '../src/storage/migrations/index.ts';
import { createSqliteStore } from '../src/storage/sqlite/sqlite-store.ts';
import { parseBenchArgs } from './support/args.ts';
import { benchProgress, median, round } from './support/figures.ts';

const progress = benchProgress('mirror');

const usage = `Usage: npm run bench -- mirror [--flags]

What a JSON-lines mirror costs; one JSON line per measurement:
  append    us_per_change at 1k and at 100k documents already in the mirror, ratio (target <= 1.2)
  primary   writes_per_s on a SQLite primary with one JSONL mirror vs none, ratio (target >= 0.8)

Flags:
  --only append|primary   run one measurement (default both)
  --small N               documents already in the mirror, small case (default 1000)
  --large N               documents already in the mirror, large case (default 100000)
  --changes K             changes applied per timed catch-up (default 5000)
  --rounds R              timed catch-ups per size (default 3)
  --writes W              primary writes per side (default 3000)
  --linger-ms MS          the mirror's linger (default Otto's, 100; 0 applies each change at once)
  --dir DIR               where the files go (default the OS temp dir); removed afterwards
  -h, --help              this help`;

function message(i: number): Record<string, unknown> {
  return {
    id: newId('msg'),
    owner_id: 'bench',
    conversation_id: `conv_${i % 200}`,
    offset: i + 1,
    role: i % 2 ? 'assistant' : 'user',
    content: `message ${i}: ${'lorem ipsum dolor sit amet '.repeat(4)}`,
    agent_steps: [],
    pdf_names: [],
    source_citations: [],
    meta_data: {},
  };
}

async function migrated(path: string, synchronous: 'FULL' | 'NORMAL'): Promise<Store> {
  const store = await createSqliteStore({ path, synchronous });
  await runMigrations({ store, migrations: migrationsFor(store.engine), ottoVersion: 'bench' });
  return store;
}

/** Microseconds per change for a mirror already holding `existing` documents. */
async function appendCost(parent: string, existing: number, changes: number, rounds: number): Promise<{ us: number[]; snapshot_s: number }> {
  const dir = mkdtempSync(join(parent, `otto-bench-mirror-${existing}-`));
  try {
    const plain = await migrated(join(dir, 'primary.db'), 'NORMAL');
    const messages = await plain.collection(collections.messages);
    let next = 0;
    for (; next < existing; next += 1000) await messages.insertMany({ docs: Array.from({ length: Math.min(1000, existing - next) }, (_, k) => message(next + k)) as never[] });
    next = existing;
    const { store, log } = await attachChangeLog(plain);
    const mirror = new Mirror(`jsonl:${join(dir, 'backup')}`, log, { batchSize: 500 });
    const started = performance.now();
    await mirror.syncOnce({ timeoutMs: 30 * 60_000 });
    const snapshot_s = (performance.now() - started) / 1000;
    progress(`append: mirror holds ${existing} documents (first copy ${snapshot_s.toFixed(1)} s)`);
    const logged = await store.collection(collections.messages);
    const us: number[] = [];
    for (let r = -1; r < rounds; r++) {
      // Round -1 warms up (JIT, statement caches) and is not counted.
      for (let k = 0; k < changes; k += 500) await logged.insertMany({ docs: Array.from({ length: Math.min(500, changes - k) }, (_, j) => message(next + k + j)) as never[] });
      next += changes;
      const t = performance.now();
      await mirror.syncOnce({ timeoutMs: 30 * 60_000 });
      const per = ((performance.now() - t) * 1000) / changes;
      if (r < 0) continue;
      us.push(per);
      progress(`append: ${existing} existing, round ${r + 1}: ${per.toFixed(1)} us per change`);
    }
    await mirror.stop();
    await store.close();
    return { us, snapshot_s };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A fresh SQLite primary (FULL) with its change log, and optionally one JSONL mirror following it in the background. */
async function primary(dir: string, withMirror: boolean, lingerMs: number | undefined): Promise<{ write(i: number): Promise<void>; caughtUp(): Promise<void>; close(): Promise<void> }> {
  const plain = await migrated(join(dir, `${withMirror ? 'mirrored' : 'plain'}.db`), 'FULL');
  const { store, log } = await attachChangeLog(plain);
  const mirror = withMirror ? new Mirror(`jsonl:${join(dir, 'backup')}`, log, { batchSize: 500, intervalMs: 1000, lingerMs }) : null;
  if (mirror) {
    await mirror.syncOnce(); // the first copy (of an empty primary); then it follows in the background
    mirror.start();
  }
  const messages = await store.collection(collections.messages);
  return {
    write: async (i) => {
      await messages.insert({ doc: message(i) as never });
    },
    caughtUp: async () => {
      if (!mirror) return;
      const deadline = Date.now() + 120_000;
      while ((await mirror.status()).lag > 0) {
        if (Date.now() > deadline) throw new Error(`the mirror did not catch up: ${JSON.stringify(await mirror.status())}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: async () => {
      await mirror?.stop();
      await store.close();
    },
  };
}

/**
 * Writes per second with and without a mirror: both primaries open side by side, written in
 * alternating blocks (the side going first swaps every block), so that the machine's drift
 * hits both alike. After each block of the mirrored primary its mirror catches up, untimed,
 * so that its work never lands in the other side's block.
 */
async function primaryThroughput(parent: string, writes: number, block: number, lingerMs: number | undefined): Promise<{ none: number; mirror: number }> {
  const dir = mkdtempSync(join(parent, 'otto-bench-primary-'));
  try {
    const plain = await primary(dir, false, lingerMs);
    const mirrored = await primary(dir, true, lingerMs);
    for (let i = 0; i < 50; i++) {
      await plain.write(-1 - i);
      await mirrored.write(-1 - i);
    }
    await mirrored.caughtUp();
    const spent = { none: 0, mirror: 0 };
    let done = 0;
    for (let b = 0; done < writes; b++) {
      const n = Math.min(block, writes - done);
      const order = b % 2 === 0 ? ([['none', plain], ['mirror', mirrored]] as const) : ([['mirror', mirrored], ['none', plain]] as const);
      for (const [side, p] of order) {
        const t = performance.now();
        for (let i = 0; i < n; i++) await p.write(done + i);
        spent[side] += performance.now() - t;
        await p.caughtUp();
      }
      done += n;
    }
    await plain.close();
    await mirrored.close();
    return { none: writes / (spent.none / 1000), mirror: writes / (spent.mirror / 1000) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(argv: string[]): Promise<number> {
  const values = parseBenchArgs(
    {
    args: argv,
    options: {
      only: { type: 'string' },
      small: { type: 'string', default: '1000' },
      large: { type: 'string', default: '100000' },
      changes: { type: 'string', default: '5000' },
      rounds: { type: 'string' },
      writes: { type: 'string', default: '3000' },
      dir: { type: 'string' },
      'linger-ms': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    },
    usage,
  );
  if (typeof values === 'number') return values;
  if (values.only !== undefined && values.only !== 'append' && values.only !== 'primary') {
    console.error(`--only must be append or primary\n\n${usage}`);
    return 2;
  }
  const n = (key: 'small' | 'large' | 'changes' | 'writes'): number => Number(values[key]);
  for (const key of ['small', 'large', 'changes', 'writes'] as const) {
    if (!Number.isSafeInteger(n(key)) || n(key) < 1) {
      console.error(`--${key} must be a positive integer\n\n${usage}`);
      return 2;
    }
  }
  const rounds = values.rounds === undefined ? undefined : Number(values.rounds);
  if (rounds !== undefined && (!Number.isSafeInteger(rounds) || rounds < 1)) {
    console.error(`--rounds must be a positive integer\n\n${usage}`);
    return 2;
  }
  const lingerMs = values['linger-ms'] === undefined ? undefined : Number(values['linger-ms']);
  if (lingerMs !== undefined && (!Number.isSafeInteger(lingerMs) || lingerMs < 0)) {
    console.error(`--linger-ms must be a non-negative integer\n\n${usage}`);
    return 2;
  }
  const parent = values.dir ?? tmpdir();

  if (values.only !== 'primary') {
    const r = rounds ?? 3;
    const small = await appendCost(parent, n('small'), n('changes'), r);
    const large = await appendCost(parent, n('large'), n('changes'), r);
    const ratio = median(large.us) / median(small.us);
    console.log(
      JSON.stringify({
        bench: 'mirror',
        measure: 'append',
        changes_per_round: n('changes'),
        rounds: r,
        existing_small: n('small'),
        existing_large: n('large'),
        us_per_change_small: round(median(small.us), 1),
        us_per_change_large: round(median(large.us), 1),
        ratio: round(ratio, 3),
        target_ratio_max: 1.2,
        first_copy_s_large: round(large.snapshot_s, 1),
      }),
    );
  }
  if (values.only !== 'append') {
    const writes = n('writes');
    progress(`primary: ${writes} writes per side in blocks of 500, alternating, SQLite synchronous=FULL`);
    const result = await primaryThroughput(parent, writes, 500, lingerMs);
    progress(`primary: ${Math.round(result.none)} writes/s without a mirror, ${Math.round(result.mirror)} with a JSONL mirror`);
    console.log(
      JSON.stringify({
        bench: 'mirror',
        measure: 'primary',
        engine: 'sqlite',
        synchronous: 'FULL',
        writes_per_side: writes,
        block: 500,
        linger_ms: lingerMs ?? 100,
        writes_per_s_none: Math.round(result.none),
        writes_per_s_mirror: Math.round(result.mirror),
        ratio: round(result.mirror / result.none, 3),
        target_ratio_min: 0.8,
      }),
    );
  }
  return 0;
}
