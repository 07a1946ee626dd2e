/**
 * Procs.threadCount: a process's thread count from the links of /proc/PID/task (procfs: 2 + its threads), on this
 * machine's /proc (read only: one stat each) and on a fake tree, whose directories count links the same way.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { loadLinkCount } from '../../src/kernel/libc-statx.ts';
import { Procs } from '../../src/kernel/procs.ts';
import { RealFs } from '../../src/kernel/realfs.ts';
import { USERMODE_HELPER, buildFixture } from '../fixtures/build.ts';
import { SimFs } from '../support/simfs.ts';

test('on procfs: this process’s threads as /proc/PID/task lists them; kthreadd has one; a gone pid none', async () => {
  const procs = new Procs(new RealFs());
  const w = new Worker('setTimeout(() => {}, 5000)', { eval: true });
  await new Promise((r) => w.once('online', r));
  try {
    const listed = fs.readdirSync(`/proc/${process.pid}/task`).length;
    assert.ok(listed > 1);
    assert.equal(procs.threadCount(process.pid), listed);
  } finally {
    await w.terminate();
  }
  if (fs.existsSync('/proc/2/task')) assert.equal(procs.threadCount(2), 1);
  assert.equal(procs.threadCount(2 ** 22 + 1), undefined);
});

test('on a fake tree: a process of two threads and a kernel thread', (t) => {
  const root = buildFixture('intel-6c12t', { extraProcs: [USERMODE_HELPER] });
  const procs = new Procs(new SimFs(root));
  if (fs.statSync(path.join(root, 'proc/1/task')).nlink !== 3) {
    // btrfs counts one link per directory: no count, and the leak check lists task/ as before
    assert.equal(procs.threadCount(4800), undefined);
    return t.skip('the fixture directory counts no links per subdirectory (btrfs)');
  }
  assert.equal(procs.threadCount(4800), fs.readdirSync(path.join(root, 'proc/4800/task')).length);
  assert.equal(procs.threadCount(4800), 2);
  assert.equal(procs.threadCount(2), 1);
});

test('statx link counts (koffi) are what node:fs stat says, for files, directories, symlinks followed; none for a gone path', () => {
  const statx = loadLinkCount();
  assert.ok(statx, 'koffi and statx load here');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-nlink-'));
  try {
    fs.mkdirSync(path.join(dir, 'a'));
    fs.mkdirSync(path.join(dir, 'b'));
    fs.writeFileSync(path.join(dir, 'f'), '');
    fs.linkSync(path.join(dir, 'f'), path.join(dir, 'g'));
    fs.symlinkSync(path.join(dir, 'f'), path.join(dir, 'l'));
    for (const p of [
      dir,
      path.join(dir, 'a'),
      path.join(dir, 'f'),
      path.join(dir, 'l'),
      '/proc/self/task',
      '/',
    ])
      assert.equal(statx(p), fs.statSync(p).nlink, p);
    assert.equal(statx(path.join(dir, 'f')), 2, 'a file with a second hard link');
    assert.equal(statx(path.join(dir, 'missing')), undefined);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a path with a NUL byte has no link count: statx would count the links of the path cut at the NUL', () => {
  const statx = loadLinkCount();
  assert.ok(statx, 'koffi and statx load here');
  // node:fs refuses such a path (ERR_INVALID_ARG_VALUE); the C string koffi passes ends at the NUL
  assert.throws(() => fs.statSync('/proc/self/task\0/x'));
  assert.equal(statx('/proc/self/task\0/x'), undefined);
  assert.equal(statx('/\0'), undefined);
  assert.equal(new RealFs().linkCount('/proc/self/task\0'), undefined);
  assert.ok((statx('/proc/self/task') ?? 0) >= 3, 'the same path without it is counted');
});
