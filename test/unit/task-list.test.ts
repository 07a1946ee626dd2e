/**
 * listIds: the numbered entries of a directory, ascending, by names alone where the Fs lists names (RealFs), by
 * typed entries where it must tell directories (dirsOnly) or lists nothing else.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import type { DirEntry, Fs } from '../../src/kernel/fs.ts';
import { RealFs } from '../../src/kernel/realfs.ts';
import { listIds } from '../../src/kernel/task-list.ts';

test('on procfs (read only): this process’s threads, and /proc’s processes ascending with this one', async () => {
  const w = new Worker('setTimeout(() => {}, 5000)', { eval: true });
  await new Promise((r) => w.once('online', r));
  try {
    const real = new RealFs();
    const tids = listIds(real, `/proc/${process.pid}/task`);
    assert.deepEqual(
      tids,
      fs
        .readdirSync(`/proc/${process.pid}/task`)
        .map(Number)
        .sort((a, b) => a - b),
    );
    assert.ok(tids.length > 1 && tids.includes(process.pid));
    const pids = listIds(real, '/proc');
    assert.ok(pids.includes(process.pid) && pids.includes(1));
    assert.ok(pids.every((p, i) => Number.isInteger(p) && (i === 0 || p > pids[i - 1]!)));
  } finally {
    await w.terminate();
  }
});

test('names alone: non-numbers skipped, ascending; dirsOnly asks for the types and skips numbered files', () => {
  const entries: DirEntry[] = [
    { name: '12', isDir: true, isSymlink: false },
    { name: 'self', isDir: false, isSymlink: true },
    { name: '3', isDir: true, isSymlink: false },
    { name: '7', isDir: false, isSymlink: false },
    { name: '12a', isDir: true, isSymlink: false },
    { name: 'default_smp_affinity', isDir: false, isSymlink: false },
  ];
  const calls: string[] = [];
  const fake = {
    list: (p: string) => (calls.push(`list ${p}`), entries),
    listNames: (p: string) => (calls.push(`names ${p}`), entries.map((e) => e.name)),
  } as unknown as Fs;
  assert.deepEqual(listIds(fake, '/proc'), [3, 7, 12]);
  assert.deepEqual(listIds(fake, '/proc/irq', true), [3, 12]);
  assert.deepEqual(calls, ['names /proc', 'list /proc/irq']);
  const unlistable = {
    listNames: () => {
      throw new Error('EACCES');
    },
  } as unknown as Fs;
  assert.deepEqual(listIds(unlistable, '/x'), []);
});
