/**
 * Summarizes a V8 .cpuprofile (e.g. from `npm run bench -- http --cpu-prof DIR`): where the
 * sampled time went, by function (self time) and by source file / package (self time), and
 * the inclusive time of functions whose name matches a filter.
 *
 * Usage: node bench/support/cpuprofile-summary.ts FILE.cpuprofile [--top N] [--match REGEX]
 *
 * Sampled time is wall time on the main thread: a synchronous native call (e.g. a SQLite
 * COMMIT waiting for fsync) shows up as self time of the JS function that made it.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Summary {
  totalMs: number;
  bySelf: Array<{ name: string; ms: number }>;
  byFile: Array<{ name: string; ms: number }>;
  inclusive: Array<{ name: string; ms: number }>;
}

/** Self and inclusive times of a profile. `match` selects the functions whose inclusive time is reported. */
export function summarize(profile: Profile, match?: RegExp): Summary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const label = (f: CallFrame) => `${f.functionName || '(anonymous)'} ${short(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;
  const add = (m: Map<string, number>, k: string, us: number) => m.set(k, (m.get(k) ?? 0) + us);
  const self = new Map<string, number>();
  const file = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  for (const [id, us] of selfUs) {
    total += us;
    const node = byId.get(id)!;
    add(self, label(node.callFrame), us);
    add(file, fileKey(node.callFrame), us);
    if (match) {
      // Each matching function on the stack once (recursion counted once).
      const seen = new Set<string>();
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        const f = byId.get(at)!.callFrame;
        const key = label(f);
        if (!seen.has(key) && match.test(f.functionName)) {
          seen.add(key);
          add(inclusive, key, us);
        }
      }
    }
  }
  const sorted = (m: Map<string, number>) => [...m].map(([name, us]) => ({ name, ms: us / 1000 })).sort((a, b) => b.ms - a.ms);
  return { totalMs: total / 1000, bySelf: sorted(self), byFile: sorted(file), inclusive: sorted(inclusive) };
}

function short(url: string): string {
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length);
  const src = url.search(/\/(src|bench|bin)\//);
  return src >= 0 ? url.slice(src + 1) : url.replace(/^file:\/\//, '');
}

function fileKey(f: CallFrame): string {
  if (!f.url) return f.functionName.startsWith('(') ? f.functionName : '(native/builtin)';
  if (f.url.startsWith('node:')) return f.url;
  const nm = f.url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = f.url.slice(nm + '/node_modules/'.length).split('/');
    return `npm:${rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  return short(f.url);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '30' }, match: { type: 'string' } } });
  const path = positionals[0];
  if (!path) {
    console.error('Usage: node bench/support/cpuprofile-summary.ts FILE.cpuprofile [--top N] [--match REGEX]');
    process.exit(2);
  }
  const top = Number(values.top);
  const s = summarize(JSON.parse(readFileSync(path, 'utf8')) as Profile, values.match ? new RegExp(values.match) : undefined);
  const pct = (ms: number) => `${((ms / s.totalMs) * 100).toFixed(1).padStart(5)}%  ${ms.toFixed(0).padStart(7)} ms`;
  console.log(`sampled ${s.totalMs.toFixed(0)} ms\n\nself time by function:`);
  for (const r of s.bySelf.slice(0, top)) console.log(`  ${pct(r.ms)}  ${r.name}`);
  console.log('\nself time by file / package:');
  for (const r of s.byFile.slice(0, top)) console.log(`  ${pct(r.ms)}  ${r.name}`);
  if (values.match) {
    console.log(`\ninclusive time of functions matching /${values.match}/:`);
    for (const r of s.inclusive.slice(0, top)) console.log(`  ${pct(r.ms)}  ${r.name}`);
  }
}
