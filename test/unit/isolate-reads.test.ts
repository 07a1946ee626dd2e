/**
 * Issue 17: isolate reads a thread's stat, cgroup and mask (status) only when its mask may hold a VM CPU: one
 * sched_getaffinity per thread tells the rest apart, for the affinity step and for the closing leak check.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { CpuSet } from '../../src/cpus/cpuset.ts';
import { findIrqbalance } from '../../src/kernel/irqbalance.ts';
import { Kernel } from '../../src/kernel/kernel.ts';
import { Procs } from '../../src/kernel/procs.ts';
import { USERMODE_HELPER, buildFixture } from '../fixtures/build.ts';
import { cliOn } from '../support/cli.ts';
import { SimFs } from '../support/simfs.ts';

/** Counts the per-task reads (stat, status, cgroup) of each pid. */
class TaskReads extends SimFs {
  taskReads = new Map<number, string[]>();
  override read(p: string): string {
    const m = /^\/proc\/(\d+)\/(?:task\/\d+\/)?(stat|status|cgroup)$/.exec(p);
    if (m) this.taskReads.set(Number(m[1]), [...(this.taskReads.get(Number(m[1])) ?? []), m[2]!]);
    return super.read(p);
  }
  /** pids whose task/ directory was listed */
  listed = new Set<number>();
  override list(p: string) {
    const m = /^\/proc\/(\d+)\/task$/.exec(p);
    if (m) this.listed.add(Number(m[1]));
    return super.list(p);
  }
}

describe('isolate: no per-task read of a process whose threads have no VM CPU, no task/ listing of a kernel thread', () => {
  for (const [name, kernel, hostonlyReads] of [
    ['ryzen-5950x', undefined, []],
    ['intel-6c12t', '6.12.12-amd64', []],
    // before 6.2 the move to /host.slice loses its mask: its start time is read to journal the mask
    ['intel-6c12t', '5.10.0-30-amd64', ['stat']],
  ] as const) {
    it(`${name}${kernel ? `, ${kernel}` : ''}`, async () => {
      const root = buildFixture(name, {
        ...(kernel ? { kernel } : {}),
        extraProcs: [
          { pid: 4600, comm: 'hostonly', cmdline: ['hostonly'], cgroup: '/user.slice', affinity: '0-1' },
          { pid: 4700, comm: 'anywhere', cmdline: ['anywhere'], cgroup: '/', threads: ['worker'] },
          USERMODE_HELPER,
        ],
      });
      const v2 = fs.existsSync(path.join(root, 'sys/fs/cgroup/cgroup.controllers'));
      const fsx = new TaskReads(root);
      const undo = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-undo-')), 'undo');
      const r = await cliOn(fsx, ['-u', undo, 'isolate', 'C4-5']);
      assert.ok(r.code === 0 || r.code === 1, r.stderr);
      assert.deepEqual(fsx.taskReads.get(4600) ?? [], hostonlyReads, 'hostonly (CPUs 0-1)');
      // v2: a task of the root cgroup keeps the VM CPUs until its affinity is set (read: stat, cgroup, mask)
      if (v2) {
        // a root task that may run on the VM CPUs: its stat and cgroup are read; its mask is the one
        // sched_getaffinity showed (every possible CPU is online here), so no status; it loses the VM CPUs
        const sys = (f: string) =>
          fs.readFileSync(path.join(root, 'sys/devices/system/cpu', f), 'utf8').trim();
        assert.equal(sys('possible'), sys('online'));
        const reads = fsx.taskReads.get(4700) ?? [];
        assert.ok(reads.includes('stat') && reads.includes('cgroup'), reads.join(' '));
        assert.ok(!reads.includes('status'), reads.join(' '));
        for (const tid of fs.readdirSync(path.join(root, 'proc/4700/task'))) {
          const mask = /^Cpus_allowed_list:\s*(.*)$/m.exec(
            fs.readFileSync(path.join(root, `proc/4700/task/${tid}/status`), 'utf8'),
          )?.[1];
          const vm = /Isolated CPUs (\S+) for the VM/.exec(r.stdout + r.stderr)?.[1];
          assert.ok(vm && mask && !CpuSet.parseList(mask).overlaps(CpuSet.parseList(vm)), `${tid}: ${mask}`);
        }
        // its cgroup: read once by the affinity step, not once per thread (the leak check then finds its threads
        // off the VM CPUs and reads nothing more of it)
        assert.equal(fsx.taskReads.get(4700)?.filter((f) => f === 'cgroup').length, 1);
      }
      // kernel threads are never thread groups: their task/ directories are not listed
      const kthreads = fs
        .readFileSync(path.join(root, 'proc/2/task/2/children'), 'utf8')
        .trim()
        .split(/\s+/)
        .map(Number);
      assert.ok(kthreads.length > 10);
      assert.deepEqual(
        kthreads.filter((id) => id !== USERMODE_HELPER.pid && fsx.listed.has(id)),
        [],
      );
      // a process of one thread is its own only task where /proc/PID/task counts its links (procfs, most fake
      // trees): not listed; a process of two threads is
      if (new Procs(new SimFs(root)).threadCount(4600) === 1) {
        assert.ok(fsx.listed.has(4700), 'a process of two threads is listed');
        assert.ok(fsx.listed.has(4800), 'a kernel-started helper of two threads is listed');
        assert.ok(!fsx.listed.has(4600), 'a process of one thread is not listed');
        // a kernel thread bound to CPU 0 (never a VM CPU): nothing of it is read, in the whole run
        const onCpu0 = kthreads.filter((id) =>
          /^Cpus_allowed_list:\s*0$/m.test(fs.readFileSync(path.join(root, `proc/${id}/status`), 'utf8')),
        );
        assert.ok(onCpu0.length >= 3, `kernel threads bound to CPU 0: ${onCpu0.join(' ')}`);
        assert.deepEqual(
          onCpu0.filter((id) => fsx.taskReads.has(id)).map((id) => [id, fsx.taskReads.get(id)]),
          [],
        );
      } else
        assert.ok(fsx.listed.has(4700), 'a user process is listed (no link count to tell its threads by)');
      assert.equal((await cliOn(new SimFs(root), ['restore', undo])).code, 0);
    });
  }
});

describe('isolate with an offline VM CPU (allowed, with a warning)', () => {
  it('a root task allowed on the offline VM CPU loses it, although sched_getaffinity does not show it', async () => {
    // sched_getaffinity shows the online part of a mask: 0-3 for 0-3,7 with CPU 7 offline; once CPU 7 comes
    // online, the task would run on the VM's CPU
    const root = buildFixture('ryzen-5950x', {
      offline: '7',
      extraProcs: [{ pid: 4700, comm: 'anywhere', cmdline: ['anywhere'], cgroup: '/', affinity: '0-3,7' }],
    });
    const allowed = () =>
      /^Cpus_allowed_list:\s*(.*)$/m.exec(
        fs.readFileSync(path.join(root, 'proc/4700/task/4700/status'), 'utf8'),
      )?.[1];
    assert.equal(allowed(), '0-3,7');
    const undo = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-undo-')), 'undo');
    const r = await cliOn(new SimFs(root), ['-u', undo, 'isolate', 'C4-7']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /CPU 7 .* offline/);
    assert.equal(allowed(), '0-3');
    // (SimFs intersects a root task's new mask with the root's effective CPUs, where the kernel keeps the offline
    // CPUs of a task in the top cpuset: its mask after the restore is not compared here)
    assert.equal((await cliOn(new SimFs(root), ['restore', undo])).code, 0);
  });
});

describe('isolate while a host CPU goes offline (hotplug during the affinity step)', () => {
  it('the mask journalled is the whole one: release gives the task back the CPU that went offline', async () => {
    // sched_getaffinity shows a mask's active CPUs only: once a CPU went offline (or, before that, was deactivated
    // on its way down), a mask read by it lacks that CPU, which Cpus_allowed_list (the task's cpus_mask) still has
    const root = buildFixture('ryzen-5950x', {
      extraProcs: [{ pid: 4700, comm: 'anywhere', cmdline: ['anywhere'], cgroup: '/' }],
    });
    const onlineFile = path.join(root, 'sys/devices/system/cpu/online');
    const allowed = () =>
      /^Cpus_allowed_list:\s*(.*)$/m.exec(
        fs.readFileSync(path.join(root, 'proc/4700/task/4700/status'), 'utf8'),
      )?.[1];
    const before = allowed();
    assert.equal(before, '0-31');
    assert.equal(fs.readFileSync(onlineFile, 'utf8').trim(), '0-31');
    /** CPU 31 goes offline when the affinity step first asks about task 4700 (the tool takes no CPU offline). */
    class Hotplug extends SimFs {
      done = false;
      override getAffinity(tid: number): number[] {
        if (tid === 4700 && !this.done) {
          this.done = true;
          fs.writeFileSync(onlineFile, '0-30\n');
        }
        return super.getAffinity(tid);
      }
    }
    const fsx = new Hotplug(root);
    const undo = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-undo-')), 'undo');
    const r = await cliOn(fsx, ['-u', undo, 'isolate', 'C4-7']);
    assert.ok(fsx.done, 'the affinity step asked about task 4700');
    assert.ok(r.code === 0 || r.code === 1, r.stderr);
    assert.equal(allowed(), '0-3,8-31', 'the VM CPUs are taken from the whole mask');
    // CPU 31 comes back; release brings the task back exactly as it was
    fs.writeFileSync(onlineFile, '0-31\n');
    const re = await cliOn(new SimFs(root), ['-u', undo, 'release']);
    assert.equal(re.code, 0, re.stderr);
    assert.equal(allowed(), before);
  });
});

describe('isolate and a user process whose parent is kthreadd (a usermode helper: a core dump pipe handler)', () => {
  it('every thread of it loses the VM CPUs, and the leak check sees them all', async () => {
    // the kernel starts usermode helpers with CLONE_PARENT from a kworker: they are kthreadd's children, in the
    // root cgroup, and a program the kernel runs may start threads
    const root = buildFixture('ryzen-5950x', {
      extraProcs: [USERMODE_HELPER],
    });
    assert.match(fs.readFileSync(path.join(root, 'proc/2/task/2/children'), 'utf8'), /\b4800\b/);
    const allowed = (tid: number) =>
      /^Cpus_allowed_list:\s*(.*)$/m.exec(
        fs.readFileSync(path.join(root, `proc/4800/task/${tid}/status`), 'utf8'),
      )?.[1];
    const undo = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-undo-')), 'undo');
    const r = await cliOn(new SimFs(root), ['-u', undo, 'isolate', 'C8-15']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(allowed(4800), '0-7,16-31');
    assert.equal(allowed(4801), '0-7,16-31', 'its second thread');
    assert.equal((await cliOn(new SimFs(root), ['restore', undo])).code, 0);
    assert.equal(allowed(4801), '0-31');
  });
});

describe('reads of kernel threads: once each, and never to look for irqbalance', () => {
  it('allTasks reads no stat and lists only the task/ of a process of several threads', (t) => {
    const root = buildFixture('ryzen-5950x', { irqbalance: true, extraProcs: [USERMODE_HELPER] });
    const fsx = new TaskReads(root);
    const k = new Kernel(fsx, { systemctl: '', euid: 0 });
    if (k.procs.threadCount(1) === undefined) return t.skip('the fixture directory counts no links (btrfs)');
    const tasks = k.procs.allTasks();
    assert.deepEqual([...fsx.taskReads.keys()], [], 'no stat, status or cgroup read');
    const pids = fs
      .readdirSync(path.join(root, 'proc'))
      .filter((d) => /^\d+$/.test(d))
      .map(Number);
    const threadsOf = (pid: number) => fs.readdirSync(path.join(root, `proc/${pid}/task`)).map(Number);
    const several = pids.filter((pid) => threadsOf(pid).length > 1);
    assert.ok(several.includes(4800) && several.length > 1, `${several.join(' ')}`);
    assert.deepEqual(
      [...fsx.listed].sort(),
      several.sort(),
      'only the task/ of a process of several threads is listed',
    );
    assert.deepEqual(
      tasks.map((x) => `${x.pid}/${x.tid}`).sort(),
      pids.flatMap((pid) => threadsOf(pid).map((tid) => `${pid}/${tid}`)).sort(),
      'every thread of every process, once',
    );
  });

  it('where the links cannot be told: allTasks hands out the stat it read of a kthreadd child; findIrqbalance reads no kernel thread', () => {
    const root = buildFixture('ryzen-5950x', { irqbalance: true });
    class NoLinks extends TaskReads {
      override linkCount(): number | undefined {
        return undefined;
      }
    }
    const fsx = new NoLinks(root);
    const k = new Kernel(fsx, { systemctl: '', euid: 0 });
    // kthreadd and its children
    const kthreads = [
      2,
      ...fs.readFileSync(path.join(root, 'proc/2/task/2/children'), 'utf8').trim().split(/\s+/).map(Number),
    ];
    const tasks = k.procs.allTasks();
    for (const id of kthreads) {
      const t = tasks.find((x) => x.pid === id)!;
      assert.equal(t.stat?.comm, k.procs.stat(id)?.comm, `${id}: its stat is handed out`);
    }
    assert.ok(tasks.filter((t) => !kthreads.includes(t.pid)).every((t) => t.stat === undefined));
    fsx.taskReads.clear();
    const comms: number[] = [];
    class CommReads extends TaskReads {
      override read(p: string): string {
        const m = /^\/proc\/(\d+)\/comm$/.exec(p);
        if (m) comms.push(Number(m[1]));
        return super.read(p);
      }
    }
    const pid = findIrqbalance(new Kernel(new CommReads(root), { systemctl: '', euid: 0 }));
    assert.equal(pid, 740);
    assert.deepEqual(
      comms.filter((id) => kthreads.includes(id)),
      [],
    );
  });
});
