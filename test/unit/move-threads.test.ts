/**
 * Issue 17: on cgroup v2 before 6.2 (attach replaces every thread's mask), move-tasks finds the threads behind the
 * listed processes with one read of the source's cgroup.threads, not one /proc/PID/task listing per process,
 * where that file lists them all. Where a threaded cgroup lies below the source (its processes' threads may live
 * there, and cgroup.threads leaves them out) it lists each process's threads as before. Either way every pinned
 * thread's mask is journalled and comes back on restore.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Kernel } from '../../src/kernel/kernel.ts';
import { attachCpus, masksLostByMove } from '../../src/kernel/tasks.ts';
import { buildFixture } from '../fixtures/build.ts';
import { cliOn } from '../support/cli.ts';
import { SimFs } from '../support/simfs.ts';
import { sysRead } from '../support/tree.ts';

const undoPath = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-undo-')), 'undo');
const CG = 'sys/fs/cgroup';
const QEMU = 4200;
const OTHER = 4300;

/** Counts the listings of /proc/PID/task and the reads of cgroup.threads. */
class ThreadWatch extends SimFs {
  taskListings: string[] = [];
  threadsReads: string[] = [];
  override list(p: string) {
    if (/^\/proc\/\d+\/task$/.test(p)) this.taskListings.push(p);
    return super.list(p);
  }
  override read(p: string): string {
    if (p.endsWith('/cgroup.threads')) this.threadsReads.push(p);
    return super.read(p);
  }
}

function allowed(root: string, tid: number, pid: number): string {
  return /^Cpus_allowed_list:\s*(.*)$/m.exec(sysRead(root, `proc/${pid}/task/${tid}/status`))![1]!.trim();
}

/** The affinity records' kept threads: [tid, CPU list]. */
function keptMasks(undo: string): [number, string][] {
  return fs
    .readFileSync(undo, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { rec?: { kind: string; tasks?: [number, number, string][] } })
    .flatMap((l) => (l.rec?.kind === 'affinity' ? (l.rec.tasks ?? []) : []))
    .map(([tid, , list]) => [tid, list] as [number, string])
    .sort((a, b) => a[0] - b[0]);
}

/** ryzen-5950x on 6.1, cgroup v2: a qemu of three threads and a worker of two in /a.slice; /b.slice beside it. */
function setup(): string {
  return buildFixture('ryzen-5950x', {
    kernel: '6.1.0-28-amd64',
    extraProcs: [
      { pid: QEMU, comm: 'qemu', cmdline: ['qemu'], cgroup: '/a.slice', threads: ['CPU 0/KVM', 'CPU 1/KVM'] },
      { pid: OTHER, comm: 'worker', cmdline: ['worker'], cgroup: '/a.slice', threads: ['io'] },
    ],
  });
}

async function moveAndRestore(root: string, fsx: ThreadWatch): Promise<[number, string][]> {
  const sim = new SimFs(root);
  sim.setAffinity(QEMU + 1, [3]);
  sim.setAffinity(QEMU + 2, [4, 5]);
  sim.setAffinity(OTHER + 1, [7]);
  const undo = undoPath();
  const r = await cliOn(fsx, ['-u', undo, 'move-tasks', '/a.slice', '/b.slice']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(sysRead(root, `${CG}/b.slice/cgroup.procs`).split('\n').filter(Boolean).sort(), [
    String(QEMU),
    String(OTHER),
  ]);
  assert.notEqual(allowed(root, QEMU + 1, QEMU), '3', 'the 6.1 attach replaced the mask');
  const kept = keptMasks(undo);
  const rr = await cliOn(new SimFs(root), ['restore', undo]);
  assert.equal(rr.code, 0, rr.stderr);
  assert.deepEqual(
    [allowed(root, QEMU + 1, QEMU), allowed(root, QEMU + 2, QEMU), allowed(root, OTHER + 1, OTHER)],
    ['3', '4-5', '7'],
  );
  return kept;
}

const PINNED: [number, string][] = [
  [QEMU + 1, '3'],
  [QEMU + 2, '4-5'],
  [OTHER + 1, '7'],
];

describe('move-tasks on cgroup v2 before 6.2: the threads behind the processes', () => {
  it('a domain cgroup: one read of its cgroup.threads, no /proc/PID/task listing', async () => {
    const root = setup();
    const create = await cliOn(new SimFs(root), ['cpuset-create', '/b.slice']);
    assert.equal(create.code, 0, create.stderr);
    const fsx = new ThreadWatch(root);
    assert.deepEqual(await moveAndRestore(root, fsx), PINNED);
    assert.deepEqual(fsx.threadsReads, ['/sys/fs/cgroup/a.slice/cgroup.threads']);
    assert.deepEqual(fsx.taskListings, []);
  });

  it('a threaded cgroup below the source ("domain threaded"): each process’s threads listed, as before', async () => {
    const root = setup();
    const create = await cliOn(new SimFs(root), ['cpuset-create', '/b.slice']);
    assert.equal(create.code, 0, create.stderr);
    fs.mkdirSync(path.join(root, CG, 'a.slice/t'));
    fs.writeFileSync(path.join(root, CG, 'a.slice/t/cgroup.type'), 'threaded\n');
    fs.writeFileSync(path.join(root, CG, 'a.slice/cgroup.type'), 'domain threaded\n');
    const fsx = new ThreadWatch(root);
    assert.deepEqual(await moveAndRestore(root, fsx), PINNED);
    assert.deepEqual(fsx.threadsReads, []);
    assert.deepEqual(fsx.taskListings.sort(), [`/proc/${QEMU}/task`, `/proc/${OTHER}/task`]);
  });

  for (const type of ['threaded', undefined] as const) {
    it(`the root with a child whose cgroup.type ${type ? `reads "${type}"` : 'cannot be read'}: listed per process`, async () => {
      const root = setup();
      fs.mkdirSync(path.join(root, CG, 'odd'));
      if (type) fs.writeFileSync(path.join(root, CG, 'odd/cgroup.type'), `${type}\n`);
      const fsx = new ThreadWatch(root);
      const r = await cliOn(fsx, ['-u', undoPath(), 'move-tasks', '/', '/a.slice']);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(fsx.threadsReads, []);
      assert.ok(fsx.taskListings.length > 0, 'each process of the root listed');
    });
  }

  it('the root whose children are all domains: one read of its cgroup.threads', async () => {
    const root = setup();
    const fsx = new ThreadWatch(root);
    const r = await cliOn(fsx, ['-u', undoPath(), 'move-tasks', '/', '/a.slice']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(fsx.threadsReads, ['/sys/fs/cgroup/cgroup.threads']);
    assert.deepEqual(fsx.taskListings, []);
  });
});

describe('move-tasks from the root on cgroup v2 6.1 through cgroup.threads: every thread gets its mask back', () => {
  const HELPER = 4400;
  for (const children of [true, false]) {
    it(`a usermode helper (kthreadd's child) with threads and a user process${children ? '' : ', without kthreadd’s children file'}`, async () => {
      const root = buildFixture('ryzen-5950x', {
        kernel: '6.1.0-28-amd64',
        extraProcs: [
          { pid: QEMU, comm: 'qemu', cmdline: ['qemu'], cgroup: '/', threads: ['CPU 0/KVM', 'CPU 1/KVM'] },
          {
            pid: HELPER,
            ppid: 2,
            comm: 'modprobe',
            cmdline: ['modprobe'],
            cgroup: '/',
            threads: ['h1', 'h2'],
          },
        ],
      });
      const create = await cliOn(new SimFs(root), ['cpuset-create', '/a.slice']);
      assert.equal(create.code, 0, create.stderr);
      if (!children) fs.rmSync(path.join(root, 'proc/2/task/2/children'));
      else assert.ok(sysRead(root, 'proc/2/task/2/children').split(' ').includes(String(HELPER)));
      const sim = new SimFs(root);
      sim.setAffinity(QEMU, [2]);
      sim.setAffinity(QEMU + 1, [3]);
      sim.setAffinity(HELPER, [5]);
      sim.setAffinity(HELPER + 2, [6, 7]);
      const fsx = new ThreadWatch(root);
      const undo = undoPath();
      const r = await cliOn(fsx, ['-u', undo, 'move-tasks', '/', '/a.slice']);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(fsx.threadsReads, ['/sys/fs/cgroup/cgroup.threads']);
      assert.notEqual(allowed(root, QEMU + 1, QEMU), '3', 'the 6.1 attach replaced the mask');
      assert.notEqual(allowed(root, HELPER + 2, HELPER), '6-7', 'the 6.1 attach replaced the mask');
      const rr = await cliOn(new SimFs(root), ['restore', undo]);
      assert.equal(rr.code, 0, rr.stderr);
      assert.deepEqual(
        [QEMU, QEMU + 1, QEMU + 2, HELPER, HELPER + 1, HELPER + 2].map((t) =>
          allowed(root, t, t < HELPER ? QEMU : HELPER),
        ),
        ['2', '3', '0-31', '5', '0-31', '6-7'],
      );
    });
  }
});

describe('move-tasks never reads cgroup.threads where the attach keeps the masks or on cgroup v1', () => {
  for (const [what, machine, kernel] of [
    ['cgroup v2, 6.12 (the attach keeps user masks)', 'ryzen-5950x', '6.12.12-amd64'],
    ['cgroup v1, 5.10 (tasks files)', 'intel-6c12t', '5.10.0-30-amd64'],
  ] as const) {
    it(what, async () => {
      const root = buildFixture(machine, {
        kernel,
        extraProcs: [{ pid: QEMU, comm: 'qemu', cmdline: ['qemu'], cgroup: '/', threads: ['CPU 0/KVM'] }],
      });
      const create = await cliOn(new SimFs(root), ['cpuset-create', '/a.slice']);
      assert.equal(create.code, 0, create.stderr);
      new SimFs(root).setAffinity(QEMU + 1, [3]);
      for (const from of ['/', '/a.slice']) {
        const fsx = new ThreadWatch(root);
        const r = await cliOn(fsx, ['-u', undoPath(), 'move-tasks', from, from === '/' ? '/a.slice' : '/']);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(fsx.threadsReads, [], from);
      }
    });
  }
});

describe('cgroup.threads only for the source’s whole list', () => {
  it('a pass that lists some processes of the source does not journal the threads of the others', () => {
    const root = setup();
    const sim = new SimFs(root);
    sim.setAffinity(QEMU + 1, [3]);
    sim.setAffinity(OTHER + 1, [7]);
    const fsx = new ThreadWatch(root);
    const k = new Kernel(fsx);
    const from = `${k.cgroups.mount}/a.slice`;
    const home = () => attachCpus(k, from);
    // a later pass: QEMU forked meanwhile; OTHER is still there from the first pass (it did not move)
    const later = masksLostByMove(k, [QEMU], 'cgroup.procs', from, home, k.uptimeTicks(), false);
    assert.deepEqual(
      later.kept.map(([tid, , list]) => [tid, list]),
      [[QEMU + 1, '3']],
    );
    assert.deepEqual(fsx.threadsReads, []);
    // the first pass lists the whole source: one read of cgroup.threads
    const first = masksLostByMove(k, [QEMU, OTHER], 'cgroup.procs', from, home, k.uptimeTicks(), true);
    assert.deepEqual(
      first.kept.map(([tid, , list]) => [tid, list]).sort((a, b) => Number(a[0]) - Number(b[0])),
      [
        [QEMU + 1, '3'],
        [OTHER + 1, '7'],
      ],
    );
    assert.deepEqual(fsx.threadsReads, ['/sys/fs/cgroup/a.slice/cgroup.threads']);
  });
});

describe('cgroup.threads only on a move’s first pass, through move-tasks', () => {
  it('a later pass (a process forked meanwhile) journals its threads only, not those of a process that stayed', async () => {
    const NEW = 4400;
    const root = buildFixture('ryzen-5950x', {
      kernel: '6.1.0-28-amd64',
      extraProcs: [
        { pid: QEMU, comm: 'qemu', cmdline: ['qemu'], cgroup: '/a.slice', threads: ['CPU 0/KVM'] },
        { pid: OTHER, comm: 'worker', cmdline: ['worker'], cgroup: '/a.slice', threads: ['io'] },
        { pid: NEW, comm: 'child', cmdline: ['child'], cgroup: '/a.slice', threads: ['w'] },
      ],
    });
    assert.equal((await cliOn(new SimFs(root), ['cpuset-create', '/b.slice'])).code, 0);
    const procs = path.join(root, CG, 'a.slice/cgroup.procs');
    const listed = fs.readFileSync(procs, 'utf8').split('\n').filter(Boolean);
    // NEW is forked while the first pass moves QEMU; OTHER refuses to move (stays behind)
    fs.writeFileSync(procs, listed.filter((p) => p !== String(NEW)).join('\n') + '\n');
    const sim = new SimFs(root);
    sim.setAffinity(QEMU + 1, [3]);
    sim.setAffinity(OTHER + 1, [7]);
    sim.setAffinity(NEW + 1, [9]);
    class Forking extends SimFs {
      override openWriter(p: string) {
        const w = super.openWriter(p);
        if (!p.endsWith('/b.slice/cgroup.procs')) return w;
        return {
          ...w,
          write: (v: string) => {
            if (v === String(OTHER)) throw Object.assign(new Error('EINVAL'), { code: 'EINVAL' });
            w.write(v);
            if (v === String(QEMU)) fs.appendFileSync(procs, `${NEW}\n`);
          },
        };
      }
    }
    const undo = undoPath();
    const r = await cliOn(new Forking(root), ['-u', undo, 'move-tasks', '/a.slice', '/b.slice']);
    assert.ok(r.code === 0 || r.code === 1, r.stderr);
    assert.ok(
      sysRead(root, `${CG}/b.slice/cgroup.procs`).split('\n').includes(String(NEW)),
      'moved on pass 2',
    );
    const affinity = fs
      .readFileSync(undo, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { rec?: { kind: string; tasks?: [number, number, string][] } })
      .filter((l) => l.rec?.kind === 'affinity')
      .map((l) =>
        (l.rec!.tasks ?? []).map(([tid, , list]) => [tid, list]).sort((a, b) => Number(a[0]) - Number(b[0])),
      );
    assert.deepEqual(affinity, [
      [
        [QEMU + 1, '3'],
        [OTHER + 1, '7'],
      ],
      [[NEW + 1, '9']],
    ]);
  });
});
