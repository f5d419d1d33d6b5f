import { parseArgs, type ParseArgsConfig } from 'node:util';

/**
 * Parses a benchmark's flags (its options should include `help: {type: 'boolean', short: 'h'}`).
 * Returns the values, or the exit code for the benchmark to return: 0 once `--help` printed the
 * usage, 2 once a bad flag was reported with the usage.
 */
export function parseBenchArgs<const T extends ParseArgsConfig>(config: T, usage: string): ReturnType<typeof parseArgs<T>>['values'] | number {
  let values: ReturnType<typeof parseArgs<T>>['values'];
  try {
    ({ values } = parseArgs(config));
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${usage}`);
    return 2;
  }
  if ((values as { help?: boolean }).help) {
    console.log(usage);
    return 0;
  }
  return values;
}
