// Stops with one line when this Node is older than Otto needs. Plain JavaScript on purpose:
// it must run on any Node, before TypeScript is involved.
const [major, minor] = process.versions.node.split('.').map(Number);
export const nodeIsSupported = major > 22 || (major === 22 && minor >= 13);
export const nodeRequirement =
  `Otto needs Node.js 22.13 or newer (24 LTS recommended); this is ${process.version}. ` +
  'Run it through npm (`npm install && npm start` uses the bundled Node 24) or install Node 24 from https://nodejs.org.';

if (import.meta.url === `file://${process.argv[1]}` && !nodeIsSupported) {
  console.error(nodeRequirement);
  process.exit(1);
}
