/**
 * Issue 17: `move-tasks / DST` (the seed's path) reads nothing per task before its write. Identities are journalled
 * as pids + the list time, kernel threads are found through kthreadd's children, and why a task did not move is
 * told by the write (ESRCH: exited; EINVAL: a kernel thread bound to a CPU). Restore never touches a reused pid.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Kernel } from '../../src/kernel/kernel.ts';
import type { Writer } from '../../src/kernel/fs.ts';
import { parseIds } from '../../src/kernel/task-list.ts';
import { masksToKeep } from '../../src/kernel/tasks.ts';
import { CpuSet } from '../../src/cpus/cpuset.ts';
import { buildFixture, exitProcess } from '../fixtures/build.ts';
import { cli, cliOn } from '../support/cli.ts';
import { SimFs, readSimLog } from '../support/simfs.ts';
import { sysRead } from '../support/tree.ts';

const undoPath = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-undo-')), 'undo');
const CG1 = 'sys/fs/cgroup/cpuset';
const USER = 4300;

/** A fake kernel that counts per-task reads and can make a task exit right before its id is written. */
class WatchedFs extends SimFs {
  perTaskReads: string[] = [];
  exitBeforeWrite = new Set<number>();
  /** ids written through a writer (one per write) */
  written: number[] = [];
  /** reads of every path */
  readCount = new Map<string, number>();
  /** threads whose mask was asked with sched_getaffinity */
  affinityAsked: number[] = [];
  override getAffinity(tid: number): number[] {
    this.affinityAsked.push(tid);
    return super.getAffinity(tid);
  }
  override read(p: string): string {
    this.readCount.set(p, (this.readCount.get(p) ?? 0) + 1);
    if (/^\/proc\/\d+\/(task\/\d+\/)?(stat|status)$/.test(p)) this.perTaskReads.push(p);
    return super.read(p);
  }
  override openWriter(p: string): Writer {
    const w = super.openWriter(p);
    return {
      write: (v: string) => {
        const id = Number(v);
        this.written.push(id);
        if (this.exitBeforeWrite.has(id)) exitProcess(this.root, id);
        w.write(v);
      },
      close: () => w.close(),
    };
  }
}

/** A fake kernel that counts the mask reads of masksToKeep: sched_getaffinity calls and status reads. */
class CountingFs extends SimFs {
  getAffinityCalls = 0;
  statusReads = 0;
  override read(p: string): string {
    if (/^\/proc\/\d+\/task\/\d+\/status$/.test(p)) this.statusReads++;
    return super.read(p);
  }
  override getAffinity(tid: number): number[] {
    this.getAffinityCalls++;
    return super.getAffinity(tid);
  }
}

function records(undo: string): Record<string, unknown>[] {
  return fs
    .readFileSync(undo, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { rec?: Record<string, unknown> })
    .flatMap((l) => (l.rec ? [l.rec] : []));
}

function kthreadComm(root: string, pid: number): string {
  const t = sysRead(root, `proc/${pid}/stat`);
  return t.slice(t.indexOf('(') + 1, t.lastIndexOf(')'));
}

/** intel-6c12t (cgroup v1) with /host.slice on CPUs 0-5 and a user process of three threads in the root. */
async function setup(kernel: string): Promise<{ root: string; fsx: WatchedFs }> {
  const root = buildFixture('intel-6c12t', {
    kernel,
    extraProcs: [{ pid: USER, comm: 'worker', cmdline: ['worker'], cgroup: '/', threads: ['a', 'b'] }],
  });
  const r = await cli(root, ['cpuset-create', '--cpus', 'C0-5', '/host.slice']);
  assert.equal(r.code, 0, r.stderr);
  return { root, fsx: new WatchedFs(root) };
}

describe('move-tasks / DST: per-task work is the write', () => {
  it('6.12: journals pids + list time and the movable kernel threads’ masks; reads only kernel threads', async () => {
    const { root, fsx } = await setup('6.12.12-amd64');
    const listed = parseIds(sysRead(root, `${CG1}/tasks`));
    const kthreads = new Set([2, ...parseIds(sysRead(root, 'proc/2/task/2/children'))]);
    const undo = undoPath();
    const r = await cliOn(fsx, ['-u', undo, 'move-tasks', '/', '/host.slice']);
    assert.equal(r.code, 0, r.stderr);
    const recs = records(undo);
    const tasks = recs.find((x) => x.kind === 'tasks')!;
    assert.deepEqual(tasks.ids, []);
    assert.deepEqual(tasks.pids, listed);
    assert.equal(tasks.listedAt, 8640042);
    // no stat or status read of any task: kernel threads are asked their mask with sched_getaffinity, and those
    // whose mask is not every CPU (the per-CPU ones here; kcompactd0/kswapd0 of a 1-node machine have every CPU)
    // are journalled by the list time
    const users = listed.filter((id) => !kthreads.has(id));
    assert.ok(users.includes(USER) && users.includes(USER + 2));
    assert.deepEqual(fsx.perTaskReads, []);
    assert.deepEqual(
      [...new Set(fsx.affinityAsked)].sort((a, b) => a - b),
      listed.filter((id) => kthreads.has(id)),
    );
    const aff = recs.find((x) => x.kind === 'affinity')!;
    assert.deepEqual(aff.tasks, []);
    assert.equal(aff.listedAt, 8640042);
    const perCpu = (aff.listed as [number, string][]).map(([tid]) => tid);
    assert.ok(perCpu.length >= 12 && perCpu.every((tid) => kthreads.has(tid)), String(perCpu));
  });

  it('classifies after the write: a task that exits first is counted as exited, CPU-bound kernel threads cannot move', async () => {
    const { root, fsx } = await setup('6.12.12-amd64');
    fsx.exitBeforeWrite.add(USER);
    const r = await cliOn(fsx, ['-d', 'move-tasks', '/', '/host.slice']);
    assert.equal(r.code, 0, r.stderr);
    // the process exits with its three threads: each write of theirs fails with ESRCH
    assert.match(r.stderr, /, 3 exited\n/);
    // the per-CPU kernel threads refuse (EINVAL) and are named as before: "task ID (comm)"
    const cpuBound = [...r.stderr.matchAll(/skipped task (\d+) \(([^)]*)\): kernel thread bound to a CPU/g)];
    assert.ok(cpuBound.length >= 12, r.stderr);
    for (const [, id, comm] of cpuBound) assert.equal(comm, kthreadComm(root, Number(id)));
    assert.ok(
      !cpuBound.some(([, id]) => Number(id) === USER),
      'the exited task is not reported as unmovable',
    );
    assert.doesNotMatch(r.stderr, new RegExp(`task ${USER}\\b`));
  });

  it('reads the source list twice (the move, then the tasks that appeared meanwhile); a dry run counts it', async () => {
    const { root, fsx } = await setup('6.12.12-amd64');
    const listed = parseIds(sysRead(root, `${CG1}/tasks`)).length;
    const r = await cliOn(fsx, ['move-tasks', '/', '/host.slice']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fsx.readCount.get('/sys/fs/cgroup/cpuset/tasks'), 2);
    const { fsx: fresh } = await setup('6.12.12-amd64');
    const dry = await cliOn(fresh, ['-n', 'move-tasks', '/', '/host.slice']);
    assert.match(dry.stdout, new RegExp(`every task of / \\(${listed} now\\)`));
  });

  it('reads no stat of a kernel thread: all are written, those bound to a CPU refuse, their names read only for a listing report', async () => {
    const { root, fsx } = await setup('6.12.12-amd64');
    const kthreads = new Set([2, ...parseIds(sysRead(root, 'proc/2/task/2/children'))]);
    const listedKernel = parseIds(sysRead(root, `${CG1}/tasks`)).filter((id) => kthreads.has(id));
    const r = await cliOn(fsx, ['-v', 'move-tasks', '/', '/host.slice']);
    assert.equal(r.code, 0, r.stderr);
    const refused = Number(/, (\d+) cannot move/.exec(r.stderr)?.[1]);
    assert.ok(refused >= 12, r.stderr);
    assert.match(r.stderr, new RegExp(`skipped ${refused}: ${refused} kernel thread bound to a CPU`));
    assert.deepEqual(fsx.perTaskReads, [], 'no stat read: the writes tell which cannot move');
    assert.ok(listedKernel.length >= 12 && listedKernel.every((id) => fsx.written.includes(id)));
    assert.ok(fsx.written.includes(USER));
    // with -d each is listed by name: only then are their stats read, one each
    const { fsx: fresh } = await setup('6.12.12-amd64');
    const d = await cliOn(fresh, ['-d', 'move-tasks', '/', '/host.slice']);
    const named = [...d.stderr.matchAll(/skipped task (\d+) \([^)]+\): kernel thread bound to a CPU/g)];
    assert.equal(named.length, refused);
    assert.equal(fresh.perTaskReads.length, refused);
  });

  it('--json names each kernel thread bound to a CPU, "task ID (comm)" (the name read for the report)', async () => {
    const { root, fsx } = await setup('6.12.12-amd64');
    const r = await cliOn(fsx, ['--json', 'move-tasks', '/', '/host.slice']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { steps: { skipped: { what: string; why: string }[] }[] };
    const bound = out.steps.flatMap((s) => s.skipped).filter((s) => s.why === 'kernel thread bound to a CPU');
    assert.ok(bound.length >= 12, r.stdout);
    for (const { what } of bound) {
      const m = /^task (\d+) \(([^)]+)\)$/.exec(what);
      assert.ok(m, what);
      assert.equal(m[2], kthreadComm(root, Number(m[1])));
    }
  });

  it('restore moves back the listed tasks but never a reused pid', async () => {
    const { root, fsx } = await setup('6.12.12-amd64');
    const undo = undoPath();
    assert.equal((await cliOn(fsx, ['-u', undo, 'move-tasks', '/', '/host.slice'])).code, 0);
    assert.ok(parseIds(sysRead(root, `${CG1}/host.slice/tasks`)).includes(USER + 1));
    // thread USER+1 exits and its id is reused by a task started after the list was read, still in /host.slice
    for (const f of [`proc/${USER}/task/${USER + 1}/stat`]) {
      const text = fs.readFileSync(path.join(root, f), 'utf8');
      const close = text.lastIndexOf(')');
      const fields = text.slice(close + 2).split(' ');
      fields[19] = '9000000';
      fs.writeFileSync(path.join(root, f), text.slice(0, close + 2) + fields.join(' '));
    }
    const before = readSimLog(root).length;
    // restore reads the start time of the listed tasks that are still in /host.slice, and of no other
    const inDst = parseIds(sysRead(root, `${CG1}/host.slice/tasks`));
    fsx.perTaskReads = [];
    assert.equal((await cliOn(fsx, ['restore', undo])).code, 0);
    const readBack = [...new Set(fsx.perTaskReads.map((p) => Number(/^\/proc\/(\d+)/.exec(p)![1])))];
    assert.deepEqual(
      readBack.sort((x, y) => x - y),
      inDst.sort((x, y) => x - y),
    );
    const touched = readSimLog(root)
      .slice(before)
      .filter((e) => (e.value ?? '').trim() === String(USER + 1));
    assert.deepEqual(touched, []);
    assert.deepEqual(parseIds(sysRead(root, `${CG1}/host.slice/tasks`)), [USER + 1]);
    assert.ok(parseIds(sysRead(root, `${CG1}/tasks`)).includes(USER));
  });

  it('5.10 (attach resets): a pinned thread of the root is journalled and restored, the others are not read twice', async () => {
    const { root, fsx } = await setup('5.10.0-30-amd64');
    new SimFs(root).setAffinity(USER + 2, [0, 1]);
    const undo = undoPath();
    assert.equal((await cliOn(fsx, ['-u', undo, 'move-tasks', '/', '/host.slice'])).code, 0);
    const aff = records(undo).filter((x) => x.kind === 'affinity');
    const entries = aff.flatMap((x) => x.tasks as [number, number, string][]);
    assert.deepEqual(
      entries.filter(([tid]) => tid >= USER).map(([tid, , list]) => [tid, list]),
      [[USER + 2, '0-1']],
    );
    assert.equal((await cli(root, ['restore', undo])).code, 0);
    const m = /^Cpus_allowed_list:\s*(.*)$/m.exec(sysRead(root, `proc/${USER}/task/${USER + 2}/status`));
    assert.equal(m![1]!.trim(), '0-1');
  });

  it('without kthreadd’s children file (CONFIG_PROC_CHILDREN off): the same journal and report', async () => {
    const a = await setup('6.12.12-amd64');
    const b = await setup('6.12.12-amd64');
    fs.rmSync(path.join(b.root, 'proc/2/task/2/children'));
    const ua = undoPath();
    const ub = undoPath();
    const ra = await cliOn(a.fsx, ['-d', '-u', ua, 'move-tasks', '/', '/host.slice']);
    const rb = await cliOn(b.fsx, ['-d', '-u', ub, 'move-tasks', '/', '/host.slice']);
    assert.equal(ra.code, 0);
    assert.equal(rb.code, 0);
    const strip = (s: string) =>
      s
        .replaceAll(ua, 'U')
        .replaceAll(ub, 'U')
        .replace(/\d+(\.\d+)? ?ms/g, '');
    assert.deepEqual(records(ua), records(ub));
    assert.equal(strip(ra.stderr), strip(rb.stderr));
    assert.ok(
      b.fsx.affinityAsked.length > a.fsx.affinityAsked.length,
      'the fallback asks every task of the root its mask',
    );
  });

  it('masksToKeep: sched_getaffinity (the default) and status reads find the same masks', async () => {
    const { root } = await setup('5.10.0-30-amd64');
    const sim = new SimFs(root);
    sim.setAffinity(USER + 1, [2, 3]);
    sim.setAffinity(USER + 2, [0, 1, 4]);
    const k = new Kernel(sim, { systemctl: '', euid: 0 });
    const tids = parseIds(sysRead(root, `${CG1}/tasks`));
    const home = CpuSet.parseList('0-11');
    const byStatus = masksToKeep(k, tids, home, { listedAt: 8640042, reader: 'status' });
    const counted = new CountingFs(root);
    const bySyscall = masksToKeep(new Kernel(counted, { systemctl: '', euid: 0 }), tids, home, {
      listedAt: 8640042,
    });
    assert.deepEqual(bySyscall, byStatus);
    assert.equal(counted.getAffinityCalls, tids.length, 'one sched_getaffinity per thread');
    assert.equal(counted.statusReads, 0, 'no status read');
    // without koffi (the syscall cannot be made) the status reads take over: the journal is the same
    class NoFfi extends SimFs {
      override getAffinity(): number[] {
        throw new Error('koffi cannot be loaded');
      }
    }
    const k2 = new Kernel(new NoFfi(root), { systemctl: '', euid: 0 });
    assert.deepEqual(masksToKeep(k2, tids, home, { listedAt: 8640042 }), byStatus);
    const users = byStatus.filter(([tid]) => tid >= USER).map(([tid, , list]) => [tid, list]);
    assert.deepEqual(users, [
      [USER + 1, '2-3'],
      [USER + 2, '0-1,4'],
    ]);
  });

  it('masksToKeep with an offline CPU: the syscall for a cpuset within the online CPUs, status reads for the root (its masks may name offline CPUs)', async () => {
    const { root } = await setup('5.10.0-30-amd64');
    fs.writeFileSync(path.join(root, 'sys/devices/system/cpu/online'), '0-10\n');
    const tids = parseIds(sysRead(root, `${CG1}/tasks`));
    // a thread of the root whose mask is every possible CPU, CPU 11 (offline) included: what attaching back gives
    const sim = new SimFs(root);
    sim.setAffinity(USER + 1, [...CpuSet.parseList('0-11').toArray()]);
    sim.setAffinity(USER + 2, [...CpuSet.parseList('0-10').toArray()]);
    const possible = CpuSet.parseList('0-11');
    const counted = new CountingFs(root);
    const rootMasks = masksToKeep(new Kernel(counted, { systemctl: '', euid: 0 }), tids, possible, {
      listedAt: 8640042,
    });
    assert.equal(counted.getAffinityCalls, 0, 'the syscall would see 0-10 for both threads');
    assert.deepEqual(
      rootMasks.filter(([tid]) => tid === USER + 1 || tid === USER + 2).map(([tid, , list]) => [tid, list]),
      [[USER + 2, '0-10']],
    );
    // a cpuset of online CPUs: the syscall, exact there
    const counted2 = new CountingFs(root);
    const k2 = new Kernel(counted2, { systemctl: '', euid: 0 });
    masksToKeep(k2, tids, CpuSet.parseList('0-5'), { listedAt: 8640042 });
    assert.equal(counted2.getAffinityCalls, tids.length);
    assert.equal(counted2.statusReads, 0);
  });

  it('tr-1920x, 6.12: the node masks of kswapd/kcompactd (found through kthreadd) are journalled and restored', async () => {
    const root = buildFixture('tr-1920x', { kernel: '6.12.12-amd64' });
    const cg = fs.existsSync(path.join(root, CG1)) ? CG1 : 'sys/fs/cgroup';
    assert.equal((await cli(root, ['cpuset-create', '--cpus', 'C0-5', '/host.slice'])).code, 0);
    const fsx = new WatchedFs(root);
    const node = (comm: string): number =>
      parseIds(sysRead(root, 'proc/2/task/2/children')).find((id) => kthreadComm(root, id) === comm)!;
    const mask = (id: number): string =>
      /^Cpus_allowed_list:\s*(.*)$/m.exec(sysRead(root, `proc/${id}/task/${id}/status`))![1]!.trim();
    const kswapd1 = node('kswapd1');
    const kcompactd1 = node('kcompactd1');
    const before = [mask(kswapd1), mask(kcompactd1)];
    assert.equal(before[0], '6-11,18-23');
    const undo = undoPath();
    const r = await cliOn(fsx, ['-u', undo, 'move-tasks', '/', '/host.slice']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(
      parseIds(sysRead(root, `${cg}/host.slice/${cg === CG1 ? 'tasks' : 'cgroup.procs'}`)).includes(kswapd1),
    );
    // journalled by the list time (no stat read per kernel thread)
    const kept = records(undo)
      .filter((x) => x.kind === 'affinity')
      .flatMap((x) => (x.listed ?? []) as [number, string][]);
    assert.deepEqual(
      kept.filter(([tid]) => tid === kswapd1 || tid === kcompactd1),
      [
        [kcompactd1, before[1]],
        [kswapd1, before[0]],
      ].sort((a, b) => (a[0] as number) - (b[0] as number)),
    );
    assert.equal((await cli(root, ['restore', undo])).code, 0);
    assert.deepEqual([mask(kswapd1), mask(kcompactd1)], before);
  });
});

describe('affinity records by the list time (kernel threads moved from the root)', () => {
  /** tr-1920x on 6.12 with /host.slice, kswapd1's tid and mask; `undo` holds a move of / to /host.slice. */
  async function moved(): Promise<{ root: string; kswapd1: number; undo: string; before: string }> {
    const root = buildFixture('tr-1920x', { kernel: '6.12.12-amd64' });
    assert.equal((await cli(root, ['cpuset-create', '--cpus', 'C0-5', '/host.slice'])).code, 0);
    const kswapd1 = parseIds(sysRead(root, 'proc/2/task/2/children')).find(
      (id) => kthreadComm(root, id) === 'kswapd1',
    )!;
    const before = maskOf(root, kswapd1);
    const undo = undoPath();
    assert.equal((await cli(root, ['-u', undo, 'move-tasks', '/', '/host.slice'])).code, 0);
    assert.notEqual(maskOf(root, kswapd1), before, 'the move replaced the node mask');
    return { root, kswapd1, undo, before };
  }

  it('restore never sets the mask of a reused tid (a thread started after the list)', async () => {
    const { root, kswapd1, undo, before } = await moved();
    // kswapd1 is gone and its tid now names a task that started after the move's list was read
    for (const f of [`proc/${kswapd1}/stat`, `proc/${kswapd1}/task/${kswapd1}/stat`]) {
      const stat = path.join(root, f);
      if (!fs.existsSync(stat)) continue;
      const text = fs.readFileSync(stat, 'utf8');
      const close = text.lastIndexOf(')');
      const fields = text.slice(close + 2).split(' ');
      fields[19] = '9000000';
      fs.writeFileSync(stat, text.slice(0, close + 2) + fields.join(' '));
    }
    // ... in the root, where the journalled node mask could be set
    new SimFs(root).write(`/${CG1}/tasks`, String(kswapd1));
    const reused = maskOf(root, kswapd1);
    assert.notEqual(reused, before);
    assert.equal((await cli(root, ['restore', undo])).code, 0);
    assert.equal(maskOf(root, kswapd1), reused);
  });

  it('a record with threads by the list time but no list time is refused before anything is written (exit 2)', async () => {
    const { root, kswapd1, undo } = await moved();
    const lines = fs.readFileSync(undo, 'utf8').split('\n');
    const i = lines.findIndex((l) => l.includes('"listed"'));
    const line = JSON.parse(lines[i]!) as { rec: Record<string, unknown> };
    delete line.rec.listedAt;
    lines[i] = JSON.stringify(line);
    fs.writeFileSync(undo, lines.join('\n'));
    const moved1 = maskOf(root, kswapd1);
    const r = await cli(root, ['restore', undo]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /without that time \(listedAt\)/);
    assert.equal(maskOf(root, kswapd1), moved1);
    assert.ok(parseIds(sysRead(root, `${CG1}/host.slice/tasks`)).includes(kswapd1), 'nothing moved back');
  });
});

describe('restore with CPUs that are possible but offline (sched_getaffinity shows the online part of a mask)', () => {
  it('tr-1920x (5.15, CPUs 24-31 offline): threads whose mask was the online CPUs get it back, not every possible CPU', async () => {
    const root = buildFixture('tr-1920x', {
      extraProcs: [{ pid: USER, comm: 'worker', cmdline: ['worker'], cgroup: '/', threads: ['a'] }],
    });
    assert.equal(sysRead(root, 'sys/devices/system/cpu/possible').trim(), '0-31');
    assert.equal(sysRead(root, 'sys/devices/system/cpu/online').trim(), '0-23');
    const kswapd0 = parseIds(sysRead(root, 'proc/2/task/2/children')).find(
      (id) => kthreadComm(root, id) === 'kswapd0',
    )!;
    // `taskset -p -c 0-31` before 6.2 stores the online CPUs: 0-23; attaching to the root gives 0-31
    const sim = new SimFs(root);
    sim.setAffinity(USER + 1, CpuSet.parseList('0-31').toArray());
    sim.setAffinity(kswapd0, CpuSet.parseList('0-31').toArray());
    const before = [threadMask(root, USER, USER + 1), maskOf(root, kswapd0)];
    assert.deepEqual(before, ['0-23', '0-23']);
    assert.equal((await cli(root, ['cpuset-create', '--cpus', 'C0-5', '/host.slice'])).code, 0);
    const undo = undoPath();
    assert.equal((await cli(root, ['-u', undo, 'move-tasks', '/', '/host.slice'])).code, 0);
    assert.deepEqual([threadMask(root, USER, USER + 1), maskOf(root, kswapd0)], ['0-5', '0-5']);
    const r = await cli(root, ['restore', undo]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([threadMask(root, USER, USER + 1), maskOf(root, kswapd0)], before);
  });
});

function threadMask(root: string, pid: number, tid: number): string {
  return /^Cpus_allowed_list:\s*(.*)$/m.exec(sysRead(root, `proc/${pid}/task/${tid}/status`))![1]!.trim();
}

function maskOf(root: string, tid: number): string {
  return /^Cpus_allowed_list:\s*(.*)$/m.exec(sysRead(root, `proc/${tid}/task/${tid}/status`))![1]!.trim();
}

describe('sched_getaffinity through koffi (the reader masksToKeep uses where it is exact)', () => {
  it('reads this process’s own mask as /proc/self/status prints it (read only)', async () => {
    const { loadSched } = await import('../../src/kernel/sched.ts');
    const got = CpuSet.of(loadSched().getAffinity(process.pid));
    const m = /^Cpus_allowed_list:\s*(.*)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    const online = CpuSet.parseList(fs.readFileSync('/sys/devices/system/cpu/online', 'utf8').trim());
    // sched_getaffinity leaves CPUs that are not active out (status does not)
    assert.equal(got.toList(), CpuSet.parseList(m![1]!.trim()).intersect(online).toList());
    assert.equal(loadSched().getAffinity(process.pid).length, got.size);
  });
});
