/** Arithmetic and output helpers every benchmark shares. */

/** `value` rounded to `digits` decimal places. */
export function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** The median of `values` (the mean of the middle two for an even count); NaN when empty. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Nearest-rank percentile (`p` from 0 to 1); NaN when empty. */
export function percentile(values: number[], p: number): number {
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] ?? Number.NaN;
}

/** A progress writer for benchmark `name`: one `[bench name] …` line on stderr (stdout holds the JSON results). */
export function benchProgress(name: string): (line: string) => void {
  return (line) => process.stderr.write(`[bench ${name}] ${line}\n`);
}
