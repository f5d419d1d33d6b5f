// `npm test`: runs every test with Node's test runner. It first provides a real
// MongoDB-wire server for the MongoDB suites — OTTO_TEST_MONGODB_URI when set, otherwise
// a FerretDB test server built and started by test/support/mongodb-server.ts — shares it
// with every test file through OTTO_TEST_MONGODB_URI, and stops it afterwards.
// Under CI=true a missing server fails the run; elsewhere MongoDB suites skip loudly.
// Extra arguments are passed to `node --test` (e.g. a file list or --test-name-pattern).
import { spawn } from 'node:child_process';
import { nodeIsSupported, nodeRequirement } from '../bin/require-node.js';

if (!nodeIsSupported) {
  console.error(nodeRequirement);
  process.exit(1);
}

const args = process.argv.slice(2);
const files = args.filter((a) => !a.startsWith('-'));
const flags = args.filter((a) => a.startsWith('-'));
const env = { ...process.env };
let server;

if (!env.OTTO_TEST_MONGODB_URI) {
  const { mongoTestTarget } = await import('../test/support/mongodb-server.ts');
  const target = await mongoTestTarget();
  if ('skip' in target) {
    env.OTTO_TEST_MONGODB_SKIP = target.skip;
    console.error(`\n!!! ${target.skip}\n`);
  } else {
    server = target;
    env.OTTO_TEST_MONGODB_URI = target.uri;
    console.error(`MongoDB-wire test server: ${target.uri} (${target.source})`);
  }
}

const child = spawn(
  process.execPath,
  ['--test', '--test-reporter=spec', '--test-timeout=600000', ...flags, ...(files.length ? files : ['test/**/*.test.ts'])],
  { stdio: 'inherit', env },
);
const stop = () => child.kill('SIGTERM');
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
const code = await new Promise((resolve) => child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))));
await server?.stop();
process.exit(code);
