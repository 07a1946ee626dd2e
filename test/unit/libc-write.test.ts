/** write(2) through koffi (src/kernel/libc-write.ts) and the move loop's use of it (writeIds). Host-safe: temp files and /dev/full only. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { loadRawWrite } from '../../src/kernel/libc-write.ts';
import { writeIds } from '../../src/kernel/tasks.ts';
import type { Fs, Writer } from '../../src/kernel/fs.ts';
import { ErrnoError } from '../../src/kernel/fs.ts';

describe('raw write(2) through koffi', () => {
  const raw = loadRawWrite();
  test('writes the text with one write and tells a refusal by its errno name, without throwing', (t) => {
    assert.ok(raw, 'koffi loads on this machine');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-raw-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'f');
    const fd = fs.openSync(file, 'w');
    assert.equal(raw(fd, '1234'), undefined);
    assert.equal(raw(fd, '56'), undefined);
    fs.closeSync(fd);
    assert.equal(fs.readFileSync(file, 'utf8'), '123456');
    const full = fs.openSync('/dev/full', 'w');
    assert.equal(raw(full, '7'), 'ENOSPC');
    fs.closeSync(full);
    const ro = fs.openSync(file, 'r');
    assert.equal(raw(ro, '8'), 'EBADF');
    fs.closeSync(ro);
  });
});

/** An Fs whose writer refuses some ids with an errno, counting how it was called. */
function fakeFs(
  refuse: Map<number, string>,
  withTry: boolean,
): { fs: Fs; calls: { write: number; tryWrite: number } } {
  const calls = { write: 0, tryWrite: 0 };
  const writer: Writer = {
    write(v) {
      calls.write++;
      const code = refuse.get(Number(v));
      if (code) throw new ErrnoError(code, 'write', '/x/tasks');
    },
    ...(withTry
      ? {
          tryWrite(v: string) {
            calls.tryWrite++;
            return refuse.get(Number(v));
          },
        }
      : {}),
    close() {},
  };
  return { fs: { openWriter: () => writer } as unknown as Fs, calls };
}

describe('writeIds: refusals told by the write, with or without exceptions', () => {
  const refuse = new Map([
    [3, 'EINVAL'],
    [4, 'ESRCH'],
    [6, 'EBUSY'],
  ]);
  for (const withTry of [true, false]) {
    test(`${withTry ? 'a writer with tryWrite is used through it (no exception)' : 'a writer without it: write and catch'}`, () => {
      const { fs: f, calls } = fakeFs(refuse, withTry);
      const res = writeIds(f, '/x/tasks', [1, 2, 3, 4, 5, 6]);
      assert.deepEqual(res.moved, [1, 2, 5]);
      assert.deepEqual(res.gone, [4]);
      assert.deepEqual(res.unmovable, [
        { id: 3, code: 'EINVAL' },
        { id: 6, code: 'EBUSY' },
      ]);
      assert.deepEqual(calls, withTry ? { write: 0, tryWrite: 6 } : { write: 6, tryWrite: 0 });
    });
  }
  test('an error of the destination (ENOSPC: a cpuset without CPUs) ends the move with that errno', () => {
    const { fs: f } = fakeFs(new Map([[2, 'ENOSPC']]), true);
    assert.throws(
      () => writeIds(f, '/x/tasks', [1, 2, 3]),
      (e: unknown) => e instanceof ErrnoError && e.code === 'ENOSPC' && e.path === '/x/tasks',
    );
  });
});
