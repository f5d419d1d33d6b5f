/**
 * A loopback TCP proxy in front of a MongoDB-wire server that counts the wire messages
 * clients send (client → server), so a benchmark can report round trips per operation.
 *
 * Every MongoDB wire message starts with a 16-byte header whose first field is the
 * message's total length (int32, little-endian). The proxy forwards bytes untouched and,
 * on a copy, reassembles messages from that length prefix, so a message split across TCP
 * chunks counts once and several messages in one chunk count separately. It also reads
 * the command name (the first key of an OP_MSG body, or of a legacy OP_QUERY), so
 * connection handshakes and server monitoring (`hello`, `isMaster`) can be left out.
 *
 * Requests with the moreToCome flag (unacknowledged writes) and exhaust cursors are not
 * used by Otto; such a message still counts as one.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

/** Commands the driver sends on its own (handshake, heartbeat, RTT probes): not counted by default. */
export const MONITORING_COMMANDS: ReadonlySet<string> = new Set(['hello', 'isMaster', 'ismaster']);

/** Larger than any valid message (MongoDB's maxMessageSizeBytes is 48 MB). */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/** Bytes of each message kept to read its command name. */
const HEAD_BYTES = 512;

const OP_QUERY = 2004;
const OP_COMPRESSED = 2012;
const OP_MSG = 2013;

export interface CountingProxyOptions {
  /** The server to forward to. */
  targetHost: string;
  targetPort: number;
  /** Command names not counted in `messages` (still listed by `commands()`). Default: {@link MONITORING_COMMANDS}. */
  ignore?: Iterable<string>;
}

export interface CountingProxy {
  /** Always `127.0.0.1`. */
  readonly host: string;
  /** The port the proxy listens on (picked by the OS). */
  readonly port: number;
  /** Client → server messages since start or the last `reset()`, except ignored commands. */
  readonly messages: number;
  /** Client → server messages by command name since start or the last `reset()`, ignored ones included. */
  commands(): Record<string, number>;
  /** Sets the counters to zero. */
  reset(): void;
  /** Stops listening and closes every proxied connection. */
  close(): Promise<void>;
}

/** Starts a counting proxy on 127.0.0.1 (a free port) forwarding to `targetHost:targetPort`. */
export async function startCountingProxy(options: CountingProxyOptions): Promise<CountingProxy> {
  const ignore = new Set(options.ignore ?? MONITORING_COMMANDS);
  const sockets = new Set<Socket>();
  let counted = 0;
  let byCommand = new Map<string, number>();

  const record = (name: string): void => {
    byCommand.set(name, (byCommand.get(name) ?? 0) + 1);
    if (!ignore.has(name)) counted++;
  };

  const server: Server = createServer({ noDelay: true }, (client) => {
    const upstream = connect({ host: options.targetHost, port: options.targetPort, noDelay: true });
    sockets.add(client);
    sockets.add(upstream);
    const reader = new MessageReader(record);
    client.on('data', (chunk: Buffer) => reader.push(chunk));
    client.pipe(upstream);
    upstream.pipe(client);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('counting proxy: cannot read its port');

  return {
    host: '127.0.0.1',
    port: address.port,
    get messages() {
      return counted;
    },
    commands() {
      return Object.fromEntries([...byCommand].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    },
    reset() {
      counted = 0;
      byCommand = new Map();
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      sockets.clear();
      await closed;
    },
  };
}

/**
 * Splits one direction of a connection into wire messages by their length prefix and
 * reports each message's command name. Keeps only the first bytes of each message.
 */
export class MessageReader {
  private readonly onMessage: (command: string) => void;
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private broken = false;

  constructor(onMessage: (command: string) => void) {
    this.onMessage = onMessage;
  }

  push(chunk: Buffer): void {
    if (this.broken || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (this.buffered >= 4) {
      const length = this.peekLength();
      if (length < 16 || length > MAX_MESSAGE_BYTES) {
        // Not the MongoDB wire protocol (or TLS): count it once and stop parsing this connection.
        this.broken = true;
        this.chunks.length = 0;
        this.buffered = 0;
        this.onMessage('<unparseable>');
        return;
      }
      if (this.buffered < length) return;
      this.onMessage(commandName(this.consume(length)));
    }
  }

  /** The int32 length prefix of the next message (which may span chunks). */
  private peekLength(): number {
    const first = this.chunks[0]!;
    if (first.length >= 4) return first.readInt32LE(0);
    const prefix = Buffer.alloc(4);
    let copied = 0;
    for (const c of this.chunks) {
      copied += c.copy(prefix, copied, 0, Math.min(c.length, 4 - copied));
      if (copied === 4) break;
    }
    return prefix.readInt32LE(0);
  }

  /** Drops the next `length` bytes; returns (a copy of) their first HEAD_BYTES. */
  private consume(length: number): Buffer {
    const head = Buffer.alloc(Math.min(length, HEAD_BYTES));
    let copied = 0;
    let left = length;
    while (left > 0) {
      const c = this.chunks[0]!;
      const n = Math.min(c.length, left);
      if (copied < head.length) copied += c.copy(head, copied, 0, Math.min(n, head.length - copied));
      if (n === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(n);
      left -= n;
    }
    this.buffered -= length;
    return head;
  }
}

/** The command of a client message: the first key of its body; `compressed` or `op_<code>` otherwise. */
export function commandName(message: Buffer): string {
  if (message.length < 16) return '<short>';
  const opCode = message.readInt32LE(12);
  if (opCode === OP_COMPRESSED) return 'compressed';
  if (opCode === OP_MSG) {
    // flagBits (4 bytes), then sections: kind 0 = one body document, kind 1 = a document sequence.
    let pos = 20;
    while (pos < message.length) {
      const kind = message[pos]!;
      if (kind === 0) return firstKey(message, pos + 1) ?? 'op_msg';
      if (kind !== 1 || pos + 5 > message.length) break;
      pos += 1 + message.readInt32LE(pos + 1);
    }
    return 'op_msg';
  }
  if (opCode === OP_QUERY) {
    // flags (4), fullCollectionName (cstring), numberToSkip (4), numberToReturn (4), query document.
    const end = message.indexOf(0, 20);
    return (end < 0 ? undefined : firstKey(message, end + 1 + 8)) ?? 'op_query';
  }
  return `op_${opCode}`;
}

/** The first key of the BSON document at `offset` (int32 size, type byte, cstring name), if it fits. */
function firstKey(message: Buffer, offset: number): string | undefined {
  const nameStart = offset + 5;
  if (nameStart >= message.length) return undefined;
  const end = message.indexOf(0, nameStart);
  return end < 0 ? undefined : message.toString('utf8', nameStart, end);
}
