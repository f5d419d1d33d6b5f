import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { commands } from '../src/cli/main.ts';
import { builderHelpText } from '../src/engine/index.ts';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('README stays true', () => {
  it('documents the bot-builder command language exactly as Otto answers "help"', () => {
    const table = builderHelpText.split('\n').filter((line) => line.startsWith('| '));
    assert.ok(table.length > 5);
    for (const line of table) assert.ok(readme.includes(line), `README is missing: ${line}`);
  });

  it('lists every CLI command', () => {
    for (const command of commands) assert.match(readme, new RegExp(`\\| \`otto ${command.name}[ \`]`), `README lacks otto ${command.name}`);
  });

  it('names every configuration variable the code reads', () => {
    const config = readFileSync(new URL('../src/config.ts', import.meta.url), 'utf8');
    const names = new Set([...config.matchAll(/\b(OTTO_[A-Z_]+|MONGODB_[A-Z_]+|PORT|OPENAI_API_KEY)\b/g)].map((m) => m[1]!));
    for (const name of names) assert.ok(readme.includes(name), `README lacks ${name}`);
  });
});
