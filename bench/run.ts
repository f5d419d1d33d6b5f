// `npm run bench -- <name> [--flags]` (or `node bench/run.ts <name> [--flags]`): runs one
// benchmark, i.e. the `run(argv)` exported by the module registered under <name> below.
// A benchmark prints its results as JSON lines on stdout and its progress on stderr, and
// returns the exit code (0 ok, 1 failed, 2 bad usage).
//
// To add a benchmark: write bench/<name>.ts exporting `run(argv: string[]): Promise<number>`
// (its flags and `--help` through `parseBenchArgs` in bench/support/args.ts), and add one entry to `benchmarks`.

import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What a benchmark module exports. */
export interface BenchmarkModule {
  run(argv: string[]): Promise<number>;
}

/** Every benchmark: name → module (relative to this file) and a one-line description. */
export const benchmarks: Record<string, { module: string; description: string }> = {
  storage: {
    module: './storage.ts',
    description: 'chat-history workload (appends, latest-page reads) through the storage contract vs the raw driver, SQLite and MongoDB',
  },
  http: {
    module: './http.ts',
    description: 'POST /conversations/:id/messages on `otto serve` (SQLite) vs a bare Fastify route doing one raw insert, 50 keep-alive connections',
  },
  transfer: {
    module: './transfer.ts',
    description: '`otto transfer` SQLite → MongoDB docs/s vs the raw driver\'s insertMany of the same documents',
  },
  mirror: {
    module: './mirror.ts',
    description: 'JSONL mirror append cost at 1k vs 100k existing documents; SQLite primary writes with one JSONL mirror vs none',
  },
  auth: {
    module: './auth.ts',
    description: 'authenticated POST /conversations/:id/messages (access key on every request) vs the same with auth disabled, `otto serve` on SQLite, same run',
  },
  web: {
    module: './web.ts',
    description: 'first load of the web chat view in Chromium (bytes, time to first message) vs a static HTML page of the same conversation, same server',
  },
  usage: {
    module: './usage.ts',
    description: 'usage report (by day, bot, model, user) over 1,000,000 activity records vs a raw SQL GROUP BY / raw $group pipeline, SQLite and MongoDB',
  },
  startup: {
    module: './startup.ts',
    description: '`otto serve` time to listening on SQLite with 20 bots/100 guidelines, 0 vs 1,000,000 stored messages',
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(benchmarks).map((n) => n.length));
  const list = Object.entries(benchmarks)
    .map(([name, b]) => `  ${name.padEnd(width)}  ${b.description}`)
    .join('\n');
  return `Usage: npm run bench -- <name> [--flags]
       node bench/run.ts <name> [--flags]

Benchmarks:
${list}

Each prints one JSON line per result on stdout (progress on stderr).
\`npm run bench -- <name> --help\` shows a benchmark's flags.`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    console.error(usage());
    return 2;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return 0;
  }
  const entry = Object.hasOwn(benchmarks, name) ? benchmarks[name] : undefined;
  if (!entry) {
    console.error(`Unknown benchmark ${JSON.stringify(name)}.\n\n${usage()}`);
    return 2;
  }
  const module = (await import(new URL(entry.module, import.meta.url).href)) as BenchmarkModule;
  return module.run(rest);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    process.exitCode = await main(process.argv.slice(2));
  } catch (error) {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exitCode = 1;
  }
}
