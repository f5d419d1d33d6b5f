import { readFileSync } from 'node:fs';

/** Otto's version, from package.json. */
export const ottoVersion: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
