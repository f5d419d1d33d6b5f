import { describeStoreUrl, openStoreUrl } from '../../storage/store-url.ts';
import { verify, type CollectionComparison, type VerifyReport } from '../../storage/transfer/index.ts';
import type { CliIO, Command } from '../command.ts';
import { printWarnings, requireOption } from './transfer.ts';

function verdict(c: CollectionComparison): string {
  if (c.equal) return 'equal';
  const parts: string[] = [];
  if (c.missing_in_b_count) parts.push(`${c.missing_in_b_count} missing in b`);
  if (c.missing_in_a_count) parts.push(`${c.missing_in_a_count} missing in a`);
  if (c.different_count) parts.push(`${c.different_count} different`);
  return `DIFFERENT: ${parts.join(', ') || 'checksums differ'}`;
}

/** Prints the comparison as a table on stdout; with `verbose`, the ids that differ under each collection. */
export function printReport(io: CliIO, report: VerifyReport, labels: { a: string; b: string }, verbose: boolean): void {
  io.out(`a: ${labels.a}`);
  io.out(`b: ${labels.b}`);
  const width = Math.max(10, ...report.collections.map((c) => c.collection.length));
  io.out(`  ${'collection'.padEnd(width)}  ${'count a'.padStart(9)}  ${'count b'.padStart(9)}  ${'checksum a'.padEnd(12)}  ${'checksum b'.padEnd(12)}  result`);
  for (const c of report.collections) {
    io.out(`  ${c.collection.padEnd(width)}  ${String(c.count_a).padStart(9)}  ${String(c.count_b).padStart(9)}  ${c.checksum_a.slice(0, 12)}  ${c.checksum_b.slice(0, 12)}  ${verdict(c)}`);
    if (!verbose || c.equal) continue;
    const list = (label: string, ids: string[], total: number): void => {
      if (total === 0) return;
      io.out(`      ${label}: ${ids.join(', ')}${total > ids.length ? ` … and ${total - ids.length} more` : ''}`);
    };
    list('missing in b', c.missing_in_b, c.missing_in_b_count);
    list('missing in a', c.missing_in_a, c.missing_in_a_count);
    list('different', c.different, c.different_count);
  }
  if (report.equal) io.out(`equal: ${report.collections.length} collection(s) have the same documents on both sides`);
  else io.out(`DIFFERENT: ${report.collections.filter((c) => !c.equal).map((c) => c.collection).join(', ')}${verbose ? '' : ' (run with --verbose to list the ids)'}`);
}

export const verifyCommand: Command = {
  name: 'verify',
  summary: 'compare two stores: counts, checksums and the ids that differ',
  options: { a: { type: 'string' }, b: { type: 'string' }, collections: { type: 'string' }, verbose: { type: 'boolean', short: 'v' } },
  help: `Usage: otto verify --a <store> --b <store> [--collections a,b] [--verbose]

Compares two stores collection by collection, reading both in id order (streaming, read-only):
document counts, a sha256 checksum of each side's content (ids and documents as canonical JSON
with sorted keys, in id order: equal content gives equal checksums on any engine), and the
documents missing on either side or different. Covers the collections a transfer copies
(domain collections, _counters, other collections not starting with "_").

Stores: sqlite:<file>, jsonl:<folder>, mongodb://host[:port]/<database> (see \`otto transfer --help\`).

Options:
  --a <store>, --b <store>   the two stores
  --collections a,b          only these collections
  --verbose, -v              list the ids that are missing or different (up to 1000 per list)

Examples:
  otto verify --a sqlite:./data/otto.db --b mongodb://127.0.0.1:27017/otto
  otto verify --a sqlite:./data/otto.db --b jsonl:./backup --verbose
  otto verify --a jsonl:./backup --b sqlite:./restored.db --collections bots,messages

Exit code: 0 when every collection is equal, 1 when something differs or fails.`,
  async run({ values, io }) {
    const aText = requireOption(values, 'a', 'sqlite:./data/otto.db');
    const bText = requireOption(values, 'b', 'mongodb://127.0.0.1:27017/otto');
    const verbose = values.verbose === true;
    const collections = typeof values.collections === 'string' ? values.collections.split(',').map((s) => s.trim()).filter(Boolean) : undefined;
    const labels = { a: describeStoreUrl(aText, io.cwd), b: describeStoreUrl(bText, io.cwd) };
    const a = await openStoreUrl(aText, { cwd: io.cwd, source: true });
    try {
      const b = await openStoreUrl(bText, { cwd: io.cwd, source: true });
      try {
        printWarnings(io, a, b);
        const report = await verify({ a, b, collections, verbose });
        printReport(io, report, labels, verbose);
        return report.equal ? 0 : 1;
      } finally {
        await b.close();
      }
    } finally {
      await a.close();
    }
  },
};
