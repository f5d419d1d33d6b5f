// `npm run mongodb:local`: a local MongoDB-wire server for trying Otto's MongoDB storage
// without installing MongoDB. Builds FerretDB (tools/ferretdb, SQLite backend), keeps its
// data in ./data/ferretdb, and runs it in the foreground until Ctrl-C.
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startFerretDb, type FerretDbServer } from '../test/support/mongodb-server.ts';

const usage = `Usage: npm run mongodb:local [-- --port PORT]

Runs a local MongoDB-compatible server (FerretDB with its SQLite backend, built from
tools/ferretdb with Go 1.24+) on 127.0.0.1:PORT, keeping its data in ./data/ferretdb.
Stays in the foreground; Ctrl-C stops it. The data is kept for next time.

Options:
  --port PORT   port to listen on (default 27017)
  --verbose     also show FerretDB's warnings (every failed command, e.g. the driver's
                unsupported endSessions on each client close, and dropped connections)
  -h, --help    show this help`;

const dataDir = fileURLToPath(new URL('../data/ferretdb/', import.meta.url));

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        port: { type: 'string', default: '27017' },
        verbose: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${usage}`);
    return 2;
  }
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    console.error(`--port must be a port number (1-65535), not ${JSON.stringify(values.port)}`);
    return 2;
  }
  if (!(await portIsFree(port))) {
    console.error(
      `Port ${port} on 127.0.0.1 is already in use (a MongoDB, or another mongodb:local, running?). ` +
        'Stop it, or pick another port: npm run mongodb:local -- --port 27018',
    );
    return 1;
  }

  await mkdir(dataDir, { recursive: true });
  let server: FerretDbServer;
  let stopping = false;
  const exited = Promise.withResolvers<number>();
  try {
    server = await startFerretDb({
      port,
      dataDir,
      keepAlive: true,
      // FerretDB logs at warn level and above, one record per line; its warnings are chatty.
      log: (line) => {
        if (values.verbose || !line.includes(' level=WARN ')) console.error(line);
      },
      onUnexpectedExit: (code, signal) => {
        if (stopping) return; // the terminal's Ctrl-C reached the server too
        console.error(`FerretDB exited unexpectedly (${signal ?? `exit code ${code}`})`);
        exited.resolve(1);
      },
    });
  } catch (err) {
    console.error((err as Error).message);
    return 1;
  }

  console.log(`MongoDB-wire server (FerretDB, SQLite) listening: ${server.uri}
Data: ${dataDir}

Run Otto against it:
  OTTO_STORAGE=mongodb MONGODB_URI=${server.uri} npm start
Run the tests against it:
  OTTO_TEST_MONGODB_URI=${server.uri} npm test

Press Ctrl-C to stop.`);

  const shutDown = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    console.log('\nStopping FerretDB…');
    await server.stop();
    console.log('Stopped; data kept in', dataDir);
    exited.resolve(0);
  };
  process.on('SIGINT', shutDown);
  process.on('SIGTERM', shutDown);
  return exited.promise;
}

/** Whether nothing listens on 127.0.0.1:port (checked by binding it for a moment). */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

process.exitCode = await main();
