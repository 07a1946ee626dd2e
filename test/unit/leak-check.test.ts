/**
 * Issue 17: isolate's closing leak check reads only what its verdict needs (readStatusModel with `leaksOn`): the
 * verdict is the same as from the full status model, on every fixture and with a VM's kernel thread whose VM
 * process itself is not on the VM CPUs.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { readStatusModel } from '../../src/commands/status-collect.ts';
import { CpuSet } from '../../src/cpus/cpuset.ts';
import type { Fs } from '../../src/kernel/fs.ts';
import { Kernel } from '../../src/kernel/kernel.ts';
import { findLeaks } from '../../src/report/status-model.ts';
import { USERMODE_HELPER, buildFixture, type FixtureOptions } from '../fixtures/build.ts';
import { SimFs } from '../support/simfs.ts';

class CountingFs extends SimFs {
  procReads = 0;
  /** pids whose thread status (the mask) was read */
  statusOf = new Set<number>();
  /** pids whose cgroup file was read */
  cgroupOf = new Set<number>();
  /** IRQs whose directory was listed (their actions' names) */
  irqListed = new Set<number>();
  /** CPUs whose topology was read */
  topologyOf = new Set<number>();
  /** pids whose stat file (the process's or a thread's) was read */
  statOf = new Set<number>();
  override read(p: string): string {
    if (/^\/proc\/\d+\//.test(p)) this.procReads++;
    const s = /^\/proc\/(\d+)\/(?:task\/\d+\/)?stat$/.exec(p);
    if (s) this.statOf.add(Number(s[1]));
    const m = /^\/proc\/(\d+)\/task\/\d+\/status$/.exec(p);
    if (m) this.statusOf.add(Number(m[1]));
    const c = /^\/proc\/(\d+)\/cgroup$/.exec(p);
    if (c) this.cgroupOf.add(Number(c[1]));
    const t = /^\/sys\/devices\/system\/cpu\/cpu(\d+)\/topology\//.exec(p);
    if (t) this.topologyOf.add(Number(t[1]));
    return super.read(p);
  }
  override list(p: string) {
    const m = /^\/proc\/irq\/(\d+)$/.exec(p);
    if (m) this.irqListed.add(Number(m[1]));
    return super.list(p);
  }
}

function both(name: Parameters<typeof buildFixture>[0], vm: string, opts: FixtureOptions = {}) {
  const root = buildFixture(name, opts);
  const cpus = CpuSet.parseList(vm);
  const fa = new CountingFs(root);
  const fb = new CountingFs(root);
  const full = findLeaks(readStatusModel(new Kernel(fa as Fs, { systemctl: '', euid: 0 })), cpus);
  const quick = findLeaks(
    readStatusModel(new Kernel(fb as Fs, { systemctl: '', euid: 0 }), { leaksOn: cpus }),
    cpus,
  );
  // the processes one of whose threads may run on the VM CPUs, from the fixture's own status files
  const onVm = new Set<number>();
  for (const pid of fs.readdirSync(path.join(root, 'proc')).filter((n) => /^\d+$/.test(n)))
    for (const tid of fs.readdirSync(path.join(root, 'proc', pid, 'task'))) {
      const st = fs.readFileSync(path.join(root, 'proc', pid, 'task', tid, 'status'), 'utf8');
      const list = /^Cpus_allowed_list:\s*(.*)$/m.exec(st)?.[1]?.trim();
      if (list !== undefined && CpuSet.parseList(list).overlaps(cpus)) onVm.add(Number(pid));
    }
  // the IRQs whose affinity has a VM CPU, and the kernel threads bound to a CPU, from the fixture's files
  const irqsOnVm = new Set<number>();
  for (const n of fs.readdirSync(path.join(root, 'proc/irq')).filter((x) => /^\d+$/.test(x))) {
    const f = path.join(root, 'proc/irq', n, 'smp_affinity_list');
    if (fs.existsSync(f) && CpuSet.parseList(fs.readFileSync(f, 'utf8').trim()).overlaps(cpus))
      irqsOnVm.add(Number(n));
  }
  const pinned = new Set(full.unmovable.filter((u) => u.kind === 'pinned-kthread').map((u) => Number(u.id)));
  return {
    full,
    quick,
    root,
    fullFs: fa,
    fullReads: fa.procReads,
    quickReads: fb.procReads,
    quickFs: fb,
    onVm,
    irqsOnVm,
    pinned,
  };
}

describe('isolate leak check: the verdict of the full status model from fewer reads', () => {
  for (const [name, vm] of [
    ['ryzen-5950x', '8-15,24-31'],
    ['intel-6c12t', '4-5,10-11'],
    ['tr-1920x', '6-11,18-23'],
    ['server-2s', '2-3'],
  ] as const) {
    it(`${name}, VM CPUs ${vm}`, () => {
      const r = both(name, vm);
      assert.deepEqual(r.quick, r.full);
      assert.ok(r.full.leaks.length > 0, 'a fixture with leaks');
      assert.ok(r.quickReads < r.fullReads, `${r.quickReads} reads vs ${r.fullReads}`);
      // masks by sched_getaffinity: no status read; no cgroup read of a kernel thread bound to a CPU; the names
      // of the IRQs that may fire on the VM CPUs only; the topology of the VM CPUs only
      const cpus = CpuSet.parseList(vm);
      assert.ok(r.onVm.size > 0);
      assert.deepEqual([...r.quickFs.statusOf], []);
      assert.ok(r.pinned.size > 0, 'a fixture with per-CPU kernel threads on the VM CPUs');
      assert.deepEqual(
        [...r.quickFs.cgroupOf].filter((pid) => r.pinned.has(pid)),
        [],
      );
      assert.deepEqual(
        [...r.quickFs.irqListed].filter((irq) => !r.irqsOnVm.has(irq)),
        [],
      );
      assert.ok(r.quickFs.irqListed.size > 0 || r.irqsOnVm.size === 0);
      assert.deepEqual(
        [...r.quickFs.topologyOf].filter((cpu) => !cpus.has(cpu)),
        [],
      );
    });
  }

  it("a VM's vhost thread on the VM CPUs is the VM's even when its qemu process runs only on host CPUs", () => {
    const r = both('intel-6c12t', '4-5,10-11', {
      extraProcs: [
        { pid: 4400, comm: 'qemu-system-x86', cmdline: ['qemu-system-x86_64'], cgroup: '/', affinity: '0-3' },
        { pid: 4500, comm: 'vhost-4400', cmdline: [], cgroup: '/', ppid: 2 },
      ],
    });
    assert.deepEqual(r.quick, r.full);
    assert.ok(!r.full.leaks.some((l) => l.id === 4500), 'vhost-4400 is part of the VM, not a leak');
    assert.ok(r.full.leaks.some((l) => l.kind === 'task'));
  });
});

describe('isolate leak check with an offline VM CPU (allowed, with a warning)', () => {
  // sched_getaffinity leaves offline CPUs out of a mask: a task allowed on 0-3 and the offline VM CPU, and the
  // per-CPU kernel threads of that CPU, may run there once it comes online; the full status model says so
  for (const [name, vm, offline] of [
    ['ryzen-5950x', '4-7', '7'],
    ['intel-6c12t', '4-5,10-11', '11'],
  ] as const) {
    it(`${name}, VM CPUs ${vm}, CPU ${offline} offline: the verdict of the full status model`, () => {
      const r = both(name, vm, {
        offline,
        extraProcs: [
          { pid: 4700, comm: 'anywhere', cmdline: ['anywhere'], cgroup: '/', affinity: `0-3,${offline}` },
        ],
      });
      assert.ok(r.full.leaks.some((l) => l.id === 4700));
      assert.deepEqual(r.quick, r.full);
    });
  }
});

/** Whether the fake tree's file system counts a directory's links as procfs counts task/'s (ext4, tmpfs: 2 + subdirs). */
function countsSubdirLinks(root: string): boolean {
  const task = path.join(root, 'proc/1/task');
  return fs.statSync(task).nlink === 2 + fs.readdirSync(task).length;
}

describe('the leak check tells a process of one thread by the links of its task/ directory', () => {
  it('a kernel thread whose mask has no VM CPU: its stat is not read; the full status model reads it', (t) => {
    const r = both('ryzen-5950x', '8-15,24-31');
    if (!countsSubdirLinks(r.root))
      return t.skip('the fixture directory counts no links per subdirectory (btrfs): the stat path is used');
    const kthreads = fs
      .readFileSync(path.join(r.root, 'proc/2/task/2/children'), 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    const off = kthreads.filter((pid) => !r.onVm.has(pid));
    assert.ok(off.length > 10, `${off.length} kernel threads off the VM CPUs`);
    assert.deepEqual(
      off.filter((pid) => r.quickFs.statOf.has(pid)),
      [],
    );
    assert.deepEqual(
      off.filter((pid) => !r.fullFs.statOf.has(pid)),
      [],
    );
    // those whose mask has a VM CPU are read for their kind (a per-CPU kernel thread is expected there)
    assert.ok(r.pinned.size > 0 && [...r.pinned].every((pid) => r.quickFs.statOf.has(pid)));
  });

  it('a helper of two threads whose first thread keeps off the VM CPUs and whose second is on them is a leak', () => {
    const root = buildFixture('ryzen-5950x', { extraProcs: [USERMODE_HELPER] });
    const mask = (tid: number, list: string): void => {
      const f = path.join(root, `proc/4800/task/${tid}/status`);
      fs.writeFileSync(
        f,
        fs.readFileSync(f, 'utf8').replace(/^Cpus_allowed_list:.*$/m, `Cpus_allowed_list:\t${list}`),
      );
    };
    mask(4800, '0-3');
    mask(4801, '8');
    const cpus = CpuSet.parseList('8-15');
    const model = readStatusModel(new Kernel(new SimFs(root) as Fs, { systemctl: '', euid: 0 }), {
      leaksOn: cpus,
    });
    assert.deepEqual(
      model.tasks.find((x) => x.pid === 4800)?.threads.map((th) => [th.tid, th.allowed?.toList()]),
      [
        [4800, '0-3'],
        [4801, '8'],
      ],
    );
    assert.ok(findLeaks(model, cpus).leaks.some((l) => l.id === 4800));
  });
});

describe('/proc/interrupts: read once for the counts and the names', () => {
  it('an IRQ with no action directory is named by its line there; its counts per CPU come from the same read', () => {
    const root = buildFixture('ryzen-5950x');
    fs.rmSync(path.join(root, 'proc/irq/9/acpi'), { recursive: true });
    for (const opts of [{}, { leaksOn: CpuSet.parseList('0-31') }]) {
      let reads = 0;
      const counting = new (class extends SimFs {
        override read(p: string): string {
          if (p === '/proc/interrupts') reads++;
          return super.read(p);
        }
      })(root);
      const model = readStatusModel(new Kernel(counting as Fs, { systemctl: '', euid: 0 }), opts);
      const e = model.irqs.find((q) => q.irq === 9);
      assert.deepEqual(e?.names, ['acpi'], JSON.stringify(opts));
      assert.equal(e?.counts?.get(9), 72271);
      assert.equal(e?.counts?.get(0), 20);
      assert.equal(reads, 1, JSON.stringify(opts));
    }
  });
});

describe('a user process whose parent is kthreadd (a usermode helper the kernel started)', () => {
  it('has its threads listed, by the full status model and by the leak check', () => {
    const root = buildFixture('ryzen-5950x', {
      extraProcs: [USERMODE_HELPER],
    });
    const cpus = CpuSet.parseList('8-15');
    for (const opts of [{}, { leaksOn: cpus }]) {
      const model = readStatusModel(new Kernel(new SimFs(root) as Fs, { systemctl: '', euid: 0 }), opts);
      const t = model.tasks.find((x) => x.pid === 4800);
      assert.deepEqual(
        t?.threads.map((th) => th.tid),
        [4800, 4801],
        JSON.stringify(opts),
      );
    }
  });
});

describe('an IRQ affinity file: one read each, no test of its existence first', () => {
  it('an IRQ whose smp_affinity_list is gone has no affinity and is not writable, and hides nothing', () => {
    const root = buildFixture('ryzen-5950x');
    fs.rmSync(path.join(root, 'proc/irq/9/smp_affinity_list'));
    for (const opts of [{}, { leaksOn: CpuSet.parseList('0-31') }]) {
      const exists: string[] = [];
      const counting = new (class extends SimFs {
        override exists(p: string): boolean {
          if (p.startsWith('/proc/irq/')) exists.push(p);
          return super.exists(p);
        }
      })(root);
      const model = readStatusModel(new Kernel(counting as Fs, { systemctl: '', euid: 0 }), opts);
      const e = model.irqs.find((q) => q.irq === 9);
      assert.ok(e, JSON.stringify(opts));
      assert.equal(e.affinity, undefined);
      assert.equal(e.writable, undefined);
      assert.deepEqual(model.notVisible, [], JSON.stringify(opts));
      assert.ok(model.irqs.find((q) => q.irq === 10)?.affinity, 'the others are read');
      assert.deepEqual(exists, [], JSON.stringify(opts));
    }
  });
});

describe("kthreadd's children: read only where a process's threads are not told by its task/ links", () => {
  it('the leak check reads it only to look for irqbalance where links count threads; the full model once more', (t) => {
    const root = buildFixture('ryzen-5950x', { extraProcs: [USERMODE_HELPER] });
    if (fs.statSync(path.join(root, 'proc/1/task')).nlink !== 3) return t.skip('no link counts (btrfs)');
    for (const [opts, want] of [
      [{ leaksOn: CpuSet.parseList('8-15') }, 1],
      [{}, 2],
    ] as const) {
      let reads = 0;
      const counting = new (class extends SimFs {
        override read(p: string): string {
          if (p === '/proc/2/task/2/children') reads++;
          return super.read(p);
        }
      })(root);
      const model = readStatusModel(new Kernel(counting as Fs, { systemctl: '', euid: 0 }), opts);
      assert.equal(reads, want, JSON.stringify(opts));
      assert.ok(model.tasks.some((x) => x.pid === 4800 && x.threads.length === 2) || 'leaksOn' in opts);
    }
  });
});
