/** One run at a time (the lock), and the progress line for long task moves. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import type { Fs } from '../../src/kernel/fs.ts';
import { lockFile } from '../../src/kernel/lock.ts';
import { writeIds } from '../../src/kernel/tasks.ts';
import { makeLog } from '../../src/report/log.ts';
import { buildFixture } from '../fixtures/build.ts';
import { cli } from '../support/cli.ts';
import { simWrites, treeHash } from '../support/tree.ts';

describe('the lock', () => {
  it('its directory is made (0700) when missing, and not made again when there', () => {
    const root = buildFixture('ryzen-5950x');
    const dir = path.join(root, 'run/vfio-isolate');
    fs.rmSync(dir, { recursive: true, force: true });
    const nodeFs = createRequire(import.meta.url)('node:fs') as typeof fs;
    const mkdir = nodeFs.mkdirSync;
    const made: string[] = [];
    nodeFs.mkdirSync = ((p: fs.PathLike, o?: fs.MakeDirectoryOptions) => {
      made.push(String(p));
      return mkdir(p, o);
    }) as typeof mkdir;
    syncBuiltinESMExports();
    try {
      lockFile(path.join(dir, 'lock'), 0).release();
      assert.deepEqual(made, [dir]);
      assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
      lockFile(path.join(dir, 'lock'), 0).release();
      assert.deepEqual(made, [dir], 'an existing directory is not made again');
    } finally {
      nodeFs.mkdirSync = mkdir;
      syncBuiltinESMExports();
    }
  });

  it('a second run waits a bounded time for a live holder, then fails clearly and changes nothing', async () => {
    const root = buildFixture('ryzen-5950x');
    const held = lockFile(path.join(root, 'run/vfio-isolate/lock'), 0);
    const h = treeHash(root);
    const t0 = Date.now();
    const r = await cli(root, ['cpuset-modify', '--cpus', 'C0-3', '/user.slice'], {
      VFIO_ISOLATE_LOCK_WAIT_MS: '400',
    });
    held.release();
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`another vfio-isolate run \\(pid ${process.pid}\\) is still running`));
    assert.ok(Date.now() - t0 >= 400, 'it waited');
    assert.equal(treeHash(root), h);
    assert.deepEqual(simWrites(root), []);
  });

  it('a lock file left by a dead run (flock dropped by the kernel) is taken, and released afterwards', async () => {
    const root = buildFixture('ryzen-5950x');
    fs.mkdirSync(path.join(root, 'run/vfio-isolate'), { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(root, 'run/vfio-isolate/lock'), `999999999 1\n`, { mode: 0o600 });
    const r = await cli(root, ['cpuset-modify', '--cpus', 'C0-3', '/user.slice'], {
      VFIO_ISOLATE_LOCK_WAIT_MS: '0',
    });
    assert.equal(r.code, 0, r.stderr);
    // released: it can be taken at once
    lockFile(path.join(root, 'run/vfio-isolate/lock'), 0).release();
  });

  it('a dry run takes no lock', async () => {
    const root = buildFixture('ryzen-5950x');
    const held = lockFile(path.join(root, 'run/vfio-isolate/lock'), 0);
    const r = await cli(root, ['-n', 'cpuset-modify', '--cpus', 'C0-3', '/user.slice'], {
      VFIO_ISOLATE_LOCK_WAIT_MS: '100',
    });
    held.release();
    assert.equal(r.code, 0);
  });
});

describe('progress line', () => {
  const fakeFs = { write: () => {} } as unknown as Fs;
  it('writeIds reports progress every 500 ids', () => {
    const seen: number[] = [];
    writeIds(
      fakeFs,
      '/x/cgroup.procs',
      Array.from({ length: 1200 }, (_, i) => i + 1),
      (d) => seen.push(d),
    );
    assert.deepEqual(seen, [500, 1000]);
  });
  it('is drawn on a terminal only, and cleared at the end', () => {
    let tty = '';
    const onTty = makeLog(
      { out: () => {}, err: (s) => void (tty += s), isTTY: false, errIsTTY: true },
      false,
      false,
      false,
    );
    onTty.progress('moving tasks', 500, 2000);
    onTty.progress('moving tasks', 2000, 2000);
    assert.equal(tty, '\r\x1b[Kmoving tasks: 500/2000\r\x1b[K');
    let piped = '';
    const off = makeLog(
      { out: () => {}, err: (s) => void (piped += s), isTTY: false, errIsTTY: false },
      false,
      false,
      false,
    );
    off.progress('moving tasks', 500, 2000);
    assert.equal(piped, '');
  });
});
