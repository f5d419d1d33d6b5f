import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newId } from '../../src/domain/ids.ts';

describe('newId', () => {
  it('makes ids that sort in the order they were made, many per millisecond', () => {
    const ids = Array.from({ length: 20_000 }, (_, i) => newId(i % 2 ? 'conv' : 'msg').replace(/^[a-z]+_/, ''));
    const perMs = new Map<string, number>();
    for (const id of ids) perMs.set(id.slice(0, 10), (perMs.get(id.slice(0, 10)) ?? 0) + 1);
    assert.ok(Math.max(...perMs.values()) > 1, 'several ids were made in one millisecond');
    for (let i = 1; i < ids.length; i++) assert.ok(ids[i - 1]! < ids[i]!, `id ${i} (${ids[i]}) sorts after id ${i - 1} (${ids[i - 1]})`);
    assert.equal(new Set(ids).size, ids.length);
  });

  it('keeps the order when the clock steps back', (t) => {
    const before = newId('bot');
    t.mock.method(Date, 'now', () => 0);
    const after = [newId('bot'), newId('bot')];
    t.mock.restoreAll();
    assert.ok(before < after[0]! && after[0]! < after[1]!, `${before} < ${after.join(' < ')}`);
  });

  it('has the shape prefix_ + 20 Crockford base32 characters, starting with the time', () => {
    const id = newId('bot');
    assert.match(id, /^bot_[0-9a-hjkmnp-tv-z]{20}$/);
    const time = [...id.slice(4, 14)].reduce((n, c) => n * 32 + '0123456789abcdefghjkmnpqrstvwxyz'.indexOf(c), 0);
    assert.ok(Math.abs(time - Date.now()) < 5_000, 'the first ten characters are the time in ms');
  });
});
