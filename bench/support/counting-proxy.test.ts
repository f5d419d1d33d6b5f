// node --test bench/support/counting-proxy.test.ts
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { commandName, MessageReader, startCountingProxy } from './counting-proxy.ts';

/** An OP_MSG whose body document starts with the key `command`, padded to `extra` more bytes. */
function opMsg(command: string, extra = 0): Buffer {
  const name = Buffer.from(`${command}\0`);
  const body = Buffer.alloc(4 + 1 + name.length + 8 + 1 + extra); // int32 size, type, name, double, terminator
  body.writeInt32LE(body.length, 0);
  body[4] = 0x01;
  name.copy(body, 5);
  const header = Buffer.alloc(21);
  header.writeInt32LE(header.length + body.length, 0);
  header.writeInt32LE(1, 4);
  header.writeInt32LE(0, 8);
  header.writeInt32LE(2013, 12);
  header.writeUInt32LE(0, 16);
  header[20] = 0; // section kind 0
  return Buffer.concat([header, body]);
}

test('reads command names of OP_MSG', () => {
  assert.equal(commandName(opMsg('find')), 'find');
  assert.equal(commandName(opMsg('findAndModify', 1000)), 'findAndModify');
});

test('a message split across chunks counts once; several in a chunk count separately', () => {
  const seen: string[] = [];
  const reader = new MessageReader((c) => seen.push(c));
  const a = opMsg('insert', 3000);
  const b = opMsg('find');
  const c = opMsg('hello');
  const all = Buffer.concat([a, b, c]);
  // Byte by byte at first (a length prefix split too), then the rest at once.
  for (let i = 0; i < 7; i++) reader.push(all.subarray(i, i + 1));
  reader.push(all.subarray(7, 1500));
  assert.deepEqual(seen, []);
  reader.push(all.subarray(1500));
  assert.deepEqual(seen, ['insert', 'find', 'hello']);
});

test('the proxy forwards both ways and counts client messages, ignoring hello', async () => {
  const received: Buffer[] = [];
  const upstream = createServer((socket: Socket) => {
    socket.on('data', (chunk: Buffer) => {
      received.push(chunk);
      socket.write(Buffer.from('ok'));
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const address = upstream.address();
  assert.ok(address && typeof address === 'object');
  const proxy = await startCountingProxy({ targetHost: '127.0.0.1', targetPort: address.port });
  try {
    const client = connect({ host: proxy.host, port: proxy.port });
    await new Promise<void>((resolve) => client.once('connect', resolve));
    const reply = new Promise<void>((resolve) => client.once('data', () => resolve()));
    const message = Buffer.concat([opMsg('hello'), opMsg('insert', 100), opMsg('find')]);
    client.write(message.subarray(0, 10));
    await new Promise((resolve) => setTimeout(resolve, 20));
    client.write(message.subarray(10));
    await reply;
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(Buffer.concat(received).length, message.length);
    assert.equal(proxy.messages, 2);
    assert.deepEqual(proxy.commands(), { find: 1, hello: 1, insert: 1 });
    proxy.reset();
    assert.equal(proxy.messages, 0);
    client.destroy();
  } finally {
    await proxy.close();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  }
});
