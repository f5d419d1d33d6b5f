/**
 * The baseline of `npm run bench -- http`: a bare Fastify app whose one route,
 * `POST /conversations/:id/messages` with `{content}`, does ONE raw insert into a node:sqlite
 * table (autocommit, so one transaction) with Otto's durability (busy_timeout 5000, WAL,
 * synchronous FULL unless told otherwise, SQLite syncing inside each COMMIT) and answers 201
 * with the stored row.
 *
 * Usage: node bench/support/bare-http-server.ts <database file> [FULL|NORMAL]
 * Listens on 127.0.0.1 on a port the OS picks, prints `pragmas …` then `listening <url>` on
 * stdout, and stops (closing the database) on SIGTERM or SIGINT.
 */
import { DatabaseSync } from 'node:sqlite';
import Fastify from 'fastify';

const [path, syncArg = 'FULL'] = process.argv.slice(2);
if (path === undefined || (syncArg !== 'FULL' && syncArg !== 'NORMAL')) {
  console.error('Usage: node bench/support/bare-http-server.ts <database file> [FULL|NORMAL]');
  process.exit(2);
}

const db = new DatabaseSync(path);
db.exec('PRAGMA busy_timeout = 5000');
db.exec('PRAGMA journal_mode = WAL');
db.exec(`PRAGMA synchronous = ${syncArg}`);
db.exec('CREATE TABLE IF NOT EXISTS messages (id TEXT PRIMARY KEY NOT NULL, doc TEXT NOT NULL)');
const insert = db.prepare('INSERT INTO messages (id, doc) VALUES (?, ?)');
const pragma = (name: string) => Object.values(db.prepare(`PRAGMA ${name}`).get() as object)[0];

let seq = 0;
const app = Fastify({ logger: false });
app.post<{ Params: { id: string }; Body: { content?: unknown } }>('/conversations/:id/messages', async (request, reply) => {
  const content = request.body?.content;
  if (typeof content !== 'string' || content.length === 0) return reply.status(400).send({ error: { code: 'INVALID', message: 'content is required' } });
  const at = new Date().toISOString();
  seq++;
  const doc = { id: `msg_${process.pid}_${seq}`, conversation_id: request.params.id, offset: seq, role: 'user', content, version: 1, created_at: at, updated_at: at };
  insert.run(doc.id, JSON.stringify(doc));
  return reply.status(201).send(doc);
});

const address = await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`pragmas journal_mode=${pragma('journal_mode')} synchronous=${pragma('synchronous')} busy_timeout=${pragma('busy_timeout')}\n`);
process.stdout.write(`listening ${address}\n`);

const stop = async () => {
  await app.close();
  db.close();
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
