/**
 * Issue 21, item 1: a move between cgroups and its restore give every thread its mask back exactly, on kernels
 * whose cpuset attach replaces the mask (before 6.2, v1 and v2) and on those that keep a user mask (6.2+).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { SimFs, readSimLog } from '../support/simfs.ts';
import { buildFixture } from '../fixtures/build.ts';
import { cli } from '../support/cli.ts';
import { sysRead } from '../support/tree.ts';

const undoPath = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-undo-')), 'undo');
const PINNED = 4200;

async function ok(root: string, argv: string[]) {
  const r = await cli(root, argv);
  assert.equal(r.code, 0, `${argv.join(' ')} → ${r.code}\n${r.stderr}`);
  return r;
}

function allowed(root: string, tid: number, pid = tid): string {
  const m = /^Cpus_allowed_list:\s*(.*)$/m.exec(sysRead(root, `proc/${pid}/task/${tid}/status`));
  return m![1]!.trim();
}

function ids(root: string, file: string): string[] {
  return sysRead(root, file).split('\n').filter(Boolean);
}

function records(undo: string): { kind: string; tasks?: [number, number, string][] }[] {
  return fs
    .readFileSync(undo, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { rec?: { kind: string; tasks?: [number, number, string][] } })
    .flatMap((l) => (l.rec ? [l.rec] : []));
}

/** A started pid gets a new start time (field 22), as when it exits and its pid is reused. */
function reusePid(root: string, pid: number): void {
  for (const f of [`proc/${pid}/stat`, `proc/${pid}/task/${pid}/stat`]) {
    const text = fs.readFileSync(path.join(root, f), 'utf8');
    const close = text.lastIndexOf(')');
    const fields = text.slice(close + 2).split(' ');
    fields[19] = '9000000';
    fs.writeFileSync(path.join(root, f), text.slice(0, close + 2) + fields.join(' '));
  }
}

/**
 * intel-6c12t (pure cgroup v1): /a.slice and /b.slice with every CPU; a task of /a.slice pinned to 0-1 by its
 * user (sched_setaffinity after it entered /a.slice).
 */
async function v1Setup(kernel?: string): Promise<string> {
  const root = buildFixture('intel-6c12t', {
    ...(kernel ? { kernel } : {}),
    extraProcs: [{ pid: PINNED, comm: 'pinned', cmdline: ['pinned'], cgroup: '/' }],
  });
  await ok(root, [
    'cpuset-create',
    '--cpus',
    'C0-11',
    '/a.slice',
    'cpuset-create',
    '--cpus',
    'C0-11',
    '/b.slice',
  ]);
  const sim = new SimFs(root);
  sim.write('/sys/fs/cgroup/cpuset/a.slice/tasks', String(PINNED));
  sim.setAffinity(PINNED, [0, 1]);
  assert.equal(allowed(root, PINNED), '0-1');
  return root;
}

const CG1 = 'sys/fs/cgroup/cpuset';

describe('move-tasks keeps the masks a cpuset attach would lose', () => {
  it('v1, 5.10 (attach resets): a task pinned to 0-1 in /a.slice, moved to /b.slice, restored, is on 0-1', async () => {
    const root = await v1Setup();
    const undo = undoPath();
    await ok(root, ['-u', undo, 'move-tasks', '/a.slice', '/b.slice']);
    assert.deepEqual(ids(root, `${CG1}/b.slice/tasks`), [String(PINNED)]);
    assert.equal(allowed(root, PINNED), '0-11', 'the 5.10 attach replaced the mask');
    const aff = records(undo).filter((r) => r.kind === 'affinity');
    assert.deepEqual(
      aff.map((r) => r.tasks!.map(([tid, , list]) => [tid, list])),
      [[[PINNED, '0-1']]],
    );
    await ok(root, ['restore', undo]);
    assert.deepEqual(ids(root, `${CG1}/a.slice/tasks`), [String(PINNED)]);
    assert.equal(allowed(root, PINNED), '0-1');
  });

  it('v1, 5.10: the same move from the root restores 0-1', async () => {
    const root = buildFixture('intel-6c12t', {
      extraProcs: [{ pid: PINNED, comm: 'pinned', cmdline: ['pinned'], cgroup: '/', affinity: '0-1' }],
    });
    const undo = undoPath();
    await ok(root, [
      '-u',
      undo,
      'cpuset-create',
      '--cpus',
      'C0-11',
      '/host.slice',
      'move-tasks',
      '/',
      '/host.slice',
    ]);
    assert.equal(allowed(root, PINNED), '0-11');
    await ok(root, ['restore', undo]);
    assert.equal(allowed(root, PINNED), '0-1');
  });

  it('v1, 6.12 (attach keeps the user mask): nothing is read or journalled for the move, restore gives 0-1', async () => {
    const root = await v1Setup('6.12.12-amd64');
    const undo = undoPath();
    await ok(root, ['-u', undo, 'move-tasks', '/a.slice', '/b.slice']);
    assert.equal(allowed(root, PINNED), '0-1', 'the 6.12 attach kept the user mask');
    assert.deepEqual(
      records(undo).map((r) => r.kind),
      ['tasks'],
    );
    await ok(root, ['restore', undo]);
    assert.deepEqual(ids(root, `${CG1}/a.slice/tasks`), [String(PINNED)]);
    assert.equal(allowed(root, PINNED), '0-1');
  });

  it('v1, 5.10: a reused pid (same pid, later start) is neither moved back nor given the old mask', async () => {
    const root = await v1Setup();
    const undo = undoPath();
    await ok(root, ['-u', undo, 'move-tasks', '/a.slice', '/b.slice']);
    reusePid(root, PINNED);
    const before = readSimLog(root).length;
    await ok(root, ['restore', undo]);
    const touched = readSimLog(root)
      .slice(before)
      .filter((e) => e.op === 'setaffinity' || (e.value ?? '').trim() === String(PINNED));
    assert.deepEqual(touched, []);
    assert.deepEqual(ids(root, `${CG1}/b.slice/tasks`), [String(PINNED)]);
    assert.equal(allowed(root, PINNED), '0-11');
  });

  it('v1, 5.10: restore moving a task back keeps a mask set after the move (as 6.2+ kernels do)', async () => {
    const root = await v1Setup();
    const undo = undoPath();
    await ok(root, ['-u', undo, 'move-tasks', '/a.slice', '/b.slice']);
    new SimFs(root).setAffinity(PINNED, [4, 5]); // pinned again while in /b.slice: newer than the journal
    // Only the move back is undone: drop the journalled mask so restore must keep 4-5 on its own.
    const lines = fs.readFileSync(undo, 'utf8').split('\n');
    fs.writeFileSync(undo, lines.filter((l) => !l.includes('"kind":"affinity"')).join('\n'));
    await ok(root, ['restore', undo]);
    assert.deepEqual(ids(root, `${CG1}/a.slice/tasks`), [String(PINNED)]);
    assert.equal(allowed(root, PINNED), '4-5');
  });

  it('v2, 6.1 (attach resets): one pinned thread of a process moved between slices comes back pinned', async () => {
    const root = buildFixture('ryzen-5950x', {
      kernel: '6.1.0-28-amd64',
      extraProcs: [
        {
          pid: PINNED,
          comm: 'qemu',
          cmdline: ['qemu'],
          cgroup: '/a.slice',
          threads: ['CPU 0/KVM', 'CPU 1/KVM'],
        },
      ],
    });
    const cg = 'sys/fs/cgroup';
    await ok(root, ['cpuset-create', '/b.slice']);
    new SimFs(root).setAffinity(PINNED + 1, [3]);
    assert.equal(allowed(root, PINNED + 1, PINNED), '3');
    const undo = undoPath();
    await ok(root, ['-u', undo, 'move-tasks', '/a.slice', '/b.slice']);
    assert.deepEqual(ids(root, `${cg}/b.slice/cgroup.procs`), [String(PINNED)]);
    assert.notEqual(allowed(root, PINNED + 1, PINNED), '3', 'the 6.1 attach replaced the mask');
    await ok(root, ['restore', undo]);
    assert.deepEqual(ids(root, `${cg}/a.slice/cgroup.procs`), [String(PINNED)]);
    assert.equal(allowed(root, PINNED + 1, PINNED), '3');
    assert.equal(allowed(root, PINNED + 2, PINNED), allowed(root, PINNED, PINNED));
  });
});
