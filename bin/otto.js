#!/usr/bin/env node
// Otto's command-line entry. Checks the Node version, enables TypeScript type stripping on
// Nodes that still need the flag, then hands over to src/cli/main.ts.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nodeIsSupported, nodeRequirement } from './require-node.js';

if (!nodeIsSupported) {
  console.error(nodeRequirement);
  process.exit(1);
}

if (!process.features.typescript) {
  const result = spawnSync(process.execPath, ['--experimental-strip-types', '--no-warnings=ExperimentalWarning', fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(result.status ?? 1);
}

const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
