/** status: the pure leak finder, the default VM CPUs, and the command on fixture machines with planted leaks. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { CpuSet } from '../../src/cpus/cpuset.ts';
import {
  defaultVmCpus,
  findLeaks,
  findingLine,
  isolcpusList,
  maybeManaged,
  parseIsolationParams,
  type CgroupNode,
  type IrqEntry,
  type StatusModel,
  type TaskEntry,
} from '../../src/report/status-model.ts';
import {
  buildFixture,
  fixtureModel,
  listMachines,
  type FixtureOptions,
  type MachineName,
} from '../fixtures/build.ts';
import type { ProcDesc } from '../fixtures/machines.ts';
import { cli } from '../support/cli.ts';

const L = (s: string): CpuSet => CpuSet.parseList(s);

// ---------------------------------------------------------------------------------------------------------------
// pure

function node(
  name: string,
  effective: string,
  tasks: number,
  children: CgroupNode[] = [],
  cpuset = true,
): CgroupNode {
  const sub = tasks + children.reduce((a, c) => a + c.subtreeTasks, 0);
  return {
    name,
    cpuset,
    effectiveCpus: cpuset ? L(effective) : undefined,
    tasks,
    subtreeTasks: sub,
    children,
  };
}

function model(over: Partial<StatusModel> = {}): StatusModel {
  const siblings = new Map<number, CpuSet>();
  for (let c = 0; c < 16; c++) siblings.set(c, CpuSet.of([c % 8, (c % 8) + 8]));
  return {
    kernel: '6.8.0',
    possible: L('0-15'),
    present: L('0-15'),
    online: L('0-15'),
    siblings,
    boot: { cmdline: {} },
    tasks: [],
    irqs: [],
    workqueues: [],
    governors: new Map(),
    reservations: [],
    knobs: { wakeupLatency: new Map() },
    notVisible: [],
    hooks: [],
    ...over,
  };
}

const task = (pid: number, comm: string, allowed: string, over: Partial<TaskEntry> = {}): TaskEntry => ({
  pid,
  comm,
  kind: 'user',
  threads: [{ tid: pid, allowed: L(allowed) }],
  cgroup: '/user.slice/app.scope',
  vm: false,
  ...over,
});
const irq = (n: number, names: string[], affinity: string, over: Partial<IrqEntry> = {}): IrqEntry => ({
  irq: n,
  names,
  affinity: L(affinity),
  writable: true,
  ...over,
});

const VM = L('4-7,12-15');

describe('findLeaks (pure)', () => {
  it('nothing to check when the VM CPUs are empty', () => {
    const r = findLeaks(model({ tasks: [task(1, 'init', '0-15')] }), CpuSet.EMPTY);
    assert.deepEqual([r.leaks, r.unmovable, r.warnings], [[], [], []]);
  });

  it('a user task allowed on VM CPUs is a movable leak, with its cgroup fix; one kept off them is not', () => {
    const m = model({
      cgroups: {
        version: 2,
        mount: '/sys/fs/cgroup',
        hybrid: false,
        taskFile: 'cgroup.procs',
        root: node('/', '0-15', 0),
      },
      tasks: [task(1234, 'firefox', '0-15'), task(99, 'sshd', '0-3,8-11')],
    });
    const r = findLeaks(m, VM);
    assert.equal(r.leaks.length, 1);
    assert.equal(
      findingLine(r.leaks[0]!),
      'task 1234 (firefox) may run on 4-7,12-15: move it with "vfio-isolate isolate" or: vfio-isolate cpuset-modify --cpus C0-3,8-11 /user.slice',
    );
    assert.equal(r.leaks[0]!.movable, true);
  });

  it('counts only the threads that may run there', () => {
    const t = task(50, 'game', '0-3', {
      threads: [
        { tid: 50, allowed: L('0-3') },
        { tid: 51, allowed: L('0-15') },
        { tid: 52, allowed: L('0-3') },
      ],
    });
    const r = findLeaks(model({ tasks: [t] }), VM);
    assert.match(r.leaks[0]!.message, /^task 50 \(game, 1 of 3 threads\) may run on 4-7,12-15$/);
    assert.match(r.leaks[0]!.fix!, /taskset -apc 0-3,8-11 50/, 'no cgroup info: taskset');
  });

  it('tasks of the VM (machine.slice, qemu) are expected, not leaks', () => {
    const r = findLeaks(model({ tasks: [task(2400, 'qemu-system-x86', '0-15', { vm: true })] }), VM);
    assert.equal(r.leaks.length, 0);
    assert.equal(r.vmTasks, 1);
  });

  it('v1: a task in the root cpuset gets the cpuset-create + move-tasks fix', () => {
    const m = model({
      cgroups: {
        version: 1,
        mount: '/sys/fs/cgroup/cpuset',
        hybrid: false,
        taskFile: 'tasks',
        root: node('/', '0-15', 5),
      },
      tasks: [task(700, 'cron', '0-15', { cgroup: '/' })],
    });
    assert.match(
      findLeaks(m, VM).leaks[0]!.fix!,
      /vfio-isolate cpuset-create --cpus C0-3,8-11 \/host\.slice move-tasks \/ \/host\.slice$/,
    );
  });

  it('kernel threads: movable ones leak (taskset fix), kernel-pinned ones are expected', () => {
    const r = findLeaks(
      model({
        tasks: [
          task(41, 'kauditd', '0-15', { kind: 'kthread', cgroup: '/' }),
          task(30, 'ksoftirqd/5', '5', { kind: 'pinned', cgroup: '/' }),
          task(90, 'kworker/u32:1', '0-15', { kind: 'pinned', cgroup: '/' }),
          task(31, 'ksoftirqd/1', '1', { kind: 'pinned', cgroup: '/' }),
        ],
      }),
      VM,
    );
    assert.deepEqual(
      r.leaks.map((f) => [f.kind, f.id]),
      [['kthread', 41]],
    );
    assert.match(
      findingLine(r.leaks[0]!),
      /^kernel thread 41 \(kauditd\) may run on 4-7,12-15: .* taskset -pc 0-3,8-11 41$/,
    );
    assert.deepEqual(
      r.unmovable.map((f) => [f.kind, f.id]),
      [
        ['pinned-kthread', 30],
        ['pinned-kthread', 90],
      ],
    );
    assert.match(r.unmovable[1]!.fix!, /workqueue cpumask/);
  });

  it('IRQs: movable ones leak with their count on the VM CPUs; managed, idle and host-only ones do not', () => {
    const counts = new Map([
      [0, 10],
      [5, 7],
      [13, 3],
    ]);
    const r = findLeaks(
      model({
        irqs: [
          irq(56, ['enp5s0'], '0-15', { counts }),
          irq(45, ['nvme0q1'], '4-5,12-13', { effective: L('4') }),
          irq(44, ['nvme0q0'], '0-15'),
          irq(60, ['vfio-msix[0]'], '4', { writable: false }),
          irq(3, [], '0-15'),
          irq(61, ['xhci_hcd'], '0-3'),
          irq(0, ['timer'], '0-15'),
        ],
      }),
      VM,
    );
    assert.deepEqual(
      r.leaks.map((f) => f.id),
      [56, 44],
    );
    assert.equal(
      findingLine(r.leaks[0]!),
      'IRQ 56 (enp5s0) may fire on 4-7,12-15 (10 interrupts there since boot): move it with "vfio-isolate isolate" or: vfio-isolate irq-affinity mask C4-7,12-15',
    );
    assert.deepEqual(
      r.unmovable.map((f) => f.id),
      [45, 60, 0],
    );
    assert.match(r.unmovable[0]!.message, /now delivered on 4/);
    assert.deepEqual(r.idleIrqs, [3]);
    assert.equal(r.interruptsOnVm, 10);
  });

  it('maybeManaged: read-only affinity, NVMe/virtio queue names, the timer; not the NVMe admin queue', () => {
    assert.equal(maybeManaged(irq(1, ['nvme0q3'], '0')), true);
    assert.equal(maybeManaged(irq(1, ['nvme1q12'], '0')), true);
    assert.equal(maybeManaged(irq(1, ['virtio2-req.0'], '0')), true);
    assert.equal(maybeManaged(irq(1, ['nvme0q0'], '0')), false);
    assert.equal(maybeManaged(irq(1, ['enp5s0-TxRx-0'], '0')), false);
    assert.equal(maybeManaged(irq(1, ['enp5s0'], '0', { writable: false })), true);
    assert.equal(maybeManaged(irq(0, ['timer'], '0')), true);
  });

  it('default_smp_affinity and workqueue cpumasks that allow VM CPUs leak, with the host mask in the fix', () => {
    const r = findLeaks(
      model({
        defaultSmpAffinity: L('0-15'),
        workqueues: [
          { path: '/sys/devices/virtual/workqueue/cpumask', cpus: L('0-15') },
          { path: '/sys/bus/workqueue/devices/writeback/cpumask', cpus: L('0-3,8-11') },
        ],
      }),
      VM,
    );
    assert.deepEqual(
      r.leaks.map((f) => [f.kind, f.id]),
      [
        ['default-irq', 'default_smp_affinity'],
        ['workqueue', '/sys/devices/virtual/workqueue/cpumask'],
      ],
    );
    assert.match(r.leaks[0]!.fix!, /mask 0f0f\)$/);
  });

  it('warnings: irqbalance (unless the VM CPUs are banned), invalid partitions, shared cores, offline CPUs', () => {
    const root = node('/', '0-15', 3, [node('/vm', '4-7,12-15', 0)]);
    root.children[0]!.partition = 'isolated invalid (Parent is not a partition root)';
    const m = model({
      irqbalance: { pid: 740 },
      cgroups: { version: 2, mount: '/sys/fs/cgroup', hybrid: false, taskFile: 'cgroup.procs', root },
      online: L('0-14'),
    });
    const r = findLeaks(m, L('4-7,12-15'));
    assert.deepEqual(
      r.warnings.map((w) => w.kind),
      ['irqbalance', 'partition', 'offline'],
    );
    assert.match(
      r.warnings[1]!.message,
      /^cgroup \/vm: partition isolated invalid \(Parent is not a partition root\)$/,
    );
    const banned = findLeaks({ ...m, irqbalance: { pid: 740, banned: L('4-7,12-15') } }, L('4-7,12-15'));
    assert.ok(!banned.warnings.some((w) => w.kind === 'irqbalance'));
    const smt = findLeaks(model(), L('4-7'));
    assert.equal(smt.warnings.length, 1);
    assert.match(smt.warnings[0]!.message, /share physical cores with host CPUs \(4\/12 5\/13 6\/14 7\/15\)/);
  });
});

describe('defaultVmCpus (pure)', () => {
  const v2 = (root: CgroupNode): StatusModel['cgroups'] => ({
    version: 2,
    mount: '/sys/fs/cgroup',
    hybrid: false,
    taskFile: 'cgroup.procs',
    root,
  });

  it('online CPUs minus the populated top-level host cgroups; machine.slice and empty cgroups do not count', () => {
    const root = node('/', '0-15', 40, [
      node('/init.scope', '0-3,8-11', 1),
      node('/system.slice', '0-3,8-11', 12),
      node('/user.slice', '0-3,8-11', 7),
      node('/machine.slice', '0-15', 3),
      node('/empty.slice', '0-15', 0),
    ]);
    const c = defaultVmCpus(model({ cgroups: v2(root) }));
    assert.equal(c.source, 'cgroups');
    assert.equal(c.cpus.toList(), '4-7,12-15');
  });

  it('a top-level cgroup without cpuset files uses the root CPUs: nothing isolated', () => {
    const root = node('/', '0-15', 40, [
      node('/system.slice', '', 5, [], false),
      node('/user.slice', '0-3', 2),
    ]);
    const c = defaultVmCpus(model({ cgroups: v2(root) }));
    assert.equal(c.source, 'none');
    assert.ok(c.cpus.isEmpty);
  });

  it('v1 with only the root cpuset: nothing isolated; with a populated /host.slice: the rest', () => {
    const v1 = (root: CgroupNode): StatusModel['cgroups'] => ({
      version: 1,
      mount: '/x',
      hybrid: false,
      taskFile: 'tasks',
      root,
    });
    assert.equal(defaultVmCpus(model({ cgroups: v1(node('/', '0-15', 200)) })).source, 'none');
    const c = defaultVmCpus(model({ cgroups: v1(node('/', '0-15', 60, [node('/host.slice', '0,8', 140)])) }));
    assert.equal(c.cpus.toList(), '1-7,9-15');
  });

  it('falls back to CPUs isolated at boot or in isolated partitions', () => {
    const c = defaultVmCpus(
      model({
        cgroups: v2(node('/', '0-15', 3)),
        boot: { cmdline: {}, isolated: L('6-7'), cpusetIsolated: L('14-15') },
      }),
    );
    assert.equal(c.source, 'boot');
    assert.equal(c.cpus.toList(), '6-7,14-15');
  });
});

describe('boot parameters', () => {
  it('parseIsolationParams keeps the last value of each', () => {
    assert.deepEqual(
      parseIsolationParams('ro quiet isolcpus=1 nohz_full=2-3 isolcpus=domain,managed_irq,4-7 rcu_nocbs=4-7'),
      {
        isolcpus: 'domain,managed_irq,4-7',
        nohz_full: '2-3',
        rcu_nocbs: '4-7',
      },
    );
    assert.equal(isolcpusList('nohz,domain,managed_irq,4-7,12'), '4-7,12');
  });
});

// ---------------------------------------------------------------------------------------------------------------
// the command on fixture machines

const VM_OF: Record<MachineName, string> = {
  'ryzen-5950x': '8-15,24-31',
  'tr-1920x': '6-11,18-23',
  'intel-6c12t': '1-5,7-11',
  'server-2s': '16-31,48-63',
  'hybrid-v1v2': '1-3,5-7',
  'v2-nocpuset': '1-3,5-7',
  'guest-l3-ids': '4-7',
};

const LEAKY: ProcDesc = {
  pid: 4000,
  comm: 'leaky-game',
  cmdline: ['/opt/game/bin/game'],
  cgroup: '/user.slice/user-1000.slice/session-3.scope',
  uid: 1000,
  threads: ['render', 'audio'],
};

function write(root: string, p: string, value: string): void {
  fs.writeFileSync(path.join(root, p), value);
}

function setAllowed(root: string, p: string, cpus: CpuSet, nr: number): void {
  const f = path.join(root, p);
  const text = fs
    .readFileSync(f, 'utf8')
    .replace(/^Cpus_allowed:\t.*$/m, `Cpus_allowed:\t${cpus.toMask(nr)}`)
    .replace(/^Cpus_allowed_list:\t.*$/m, `Cpus_allowed_list:\t${cpus.toList()}`);
  fs.writeFileSync(f, text);
}

interface Planted {
  root: string;
  host: CpuSet;
  vm: CpuSet;
  kthread: { pid: number; comm: string };
  irq: { irq: number; name: string };
  refused: number[];
}

/**
 * A fixture in the state isolate leaves, done by hand: every movable task, IRQ and mask kept on the host CPUs;
 * the VM (machine.slice) and kernel-pinned threads untouched. With `plant`, four leaks stay: the extra user
 * task 4000, one movable kernel thread, one movable IRQ and the unbound-workqueue cpumask.
 */
function isolatedByHand(name: MachineName, plant: boolean, opts: FixtureOptions = {}): Planted {
  const o: FixtureOptions = {
    irqbalance: false,
    ...opts,
    extraProcs: [...(opts.extraProcs ?? []), ...(plant ? [LEAKY] : [])],
  };
  const root = buildFixture(name, o);
  const fm = fixtureModel(name, o);
  const vm = L(VM_OF[name]);
  const host = fm.online.minus(vm);
  const kthread = fm.procs.find((p) => p.kind === 'kthread-movable' && p.comm === 'kauditd')!;
  const named = fm.irqs.filter((q) => q.desc.name !== undefined && !q.refuse && q.affinity.overlaps(vm));
  const leakIrq = named[named.length - 1]!;
  for (const p of fm.procs) {
    if (p.kind === 'kthread-pinned' || p.kind === 'kthread-percpu') continue;
    if (p.cgroup.startsWith('/machine.slice') || p.comm.startsWith('qemu')) continue;
    if (plant && (p.pid === LEAKY.pid || p.pid === kthread.pid)) continue;
    setAllowed(root, `proc/${p.pid}/status`, host, fm.nrCpuIds);
    for (const t of p.threads) setAllowed(root, `proc/${p.pid}/task/${t.tid}/status`, host, fm.nrCpuIds);
  }
  for (const q of fm.irqs) {
    if (q.refuse || (plant && q.irq === leakIrq.irq)) continue;
    write(root, `proc/irq/${q.irq}/smp_affinity_list`, `${host.toList()}\n`);
    write(root, `proc/irq/${q.irq}/smp_affinity`, `${host.toMask(fm.nrCpuIds)}\n`);
  }
  write(root, 'proc/irq/default_smp_affinity', `${host.toMask(fm.nrCpuIds)}\n`);
  if (!plant) write(root, 'sys/devices/virtual/workqueue/cpumask', `${host.toMask(fm.nrCpuIds)}\n`);
  write(root, 'sys/devices/virtual/workqueue/writeback/cpumask', `${host.toMask(fm.nrCpuIds)}\n`);
  return {
    root,
    host,
    vm,
    kthread: { pid: kthread.pid, comm: kthread.comm },
    irq: { irq: leakIrq.irq, name: leakIrq.desc.name! },
    refused: fm.irqs.filter((q) => q.refuse && q.affinity.overlaps(vm)).map((q) => q.irq),
  };
}

interface StatusOut {
  ok: boolean;
  vmCpus: { cpus: string; source: string };
  leaks: { kind: string; id: number | string; line: string }[];
  unmovable: { kind: string; id: number | string }[];
  warnings: { kind: string; line: string }[];
  tasks: { vm: number; pinnedKthreads: number };
  notVisible: string[];
}

async function statusJson(root: string, argv: string[] = []): Promise<{ code: number; j: StatusOut }> {
  const r = await cli(root, ['status', '--json', ...argv]);
  return { code: r.code, j: JSON.parse(r.stdout) as StatusOut };
}

describe('vfio-isolate status on the fixture machines', () => {
  for (const name of listMachines()) {
    it(`${name}: a clean state exits 0; managed IRQs and kernel-pinned threads are expected`, async () => {
      const s = isolatedByHand(name, false);
      const r = await cli(s.root, ['status', `C${s.vm.toList()}`]);
      assert.equal(r.code, 0, r.stdout);
      assert.match(
        r.stdout,
        new RegExp(`^Result: no movable leaks on the VM CPUs ${s.vm.toList()}\\.$`, 'm'),
      );
      assert.ok(!r.stdout.includes('Leaks'), r.stdout);
      const { j } = await statusJson(s.root, [`C${s.vm.toList()}`]);
      assert.equal(j.ok, true);
      assert.deepEqual(
        j.unmovable
          .filter((f) => f.kind === 'managed-irq')
          .map((f) => f.id)
          .sort((a, b) => Number(a) - Number(b)),
        s.refused,
        'the managed-IRQ heuristic finds exactly the IRQs that refuse affinity writes',
      );
      assert.ok(j.tasks.pinnedKthreads > 0);
    });

    it(`${name}: planted leaks (task, kernel thread, IRQ, workqueue mask) exit 1, one line each`, async () => {
      const s = isolatedByHand(name, true);
      const vm = s.vm.toList();
      const h = s.host.toList();
      const r = await cli(s.root, ['status', `C${vm}`]);
      assert.equal(r.code, 1, r.stdout);
      const { j } = await statusJson(s.root, [`C${vm}`]);
      assert.deepEqual(
        j.leaks.map((f) => [f.kind, f.id]),
        [
          ['task', 4000],
          ['kthread', s.kthread.pid],
          ['irq', s.irq.irq],
          ['workqueue', '/sys/devices/virtual/workqueue/cpumask'],
        ],
      );
      const v2 =
        name === 'ryzen-5950x' || name === 'server-2s' || name === 'v2-nocpuset' || name === 'guest-l3-ids';
      const taskFix = v2
        ? `vfio-isolate cpuset-modify --cpus C${h} /user.slice`
        : `vfio-isolate cpuset-create --cpus C${h} /host.slice move-tasks / /host.slice`;
      const lines = r.stdout.split('\n');
      for (const want of [
        `  task 4000 (leaky-game) may run on ${vm}: move it with "vfio-isolate isolate" or: ${taskFix}`,
        `  kernel thread ${s.kthread.pid} (kauditd) may run on ${vm}: move it with "vfio-isolate isolate" or: taskset -pc ${h} ${s.kthread.pid}`,
      ]) {
        assert.ok(lines.includes(want), `missing line:\n${want}\nin:\n${r.stdout}`);
      }
      assert.ok(
        lines.some(
          (l) =>
            l.startsWith(`  IRQ ${s.irq.irq} (${s.irq.name}) may fire on ${vm}`) &&
            l.endsWith(`vfio-isolate irq-affinity mask C${vm}`),
        ),
        r.stdout,
      );
      assert.ok(
        lines.some((l) =>
          l.startsWith(`  workqueue cpumask /sys/devices/virtual/workqueue/cpumask allows ${vm}`),
        ),
      );
      assert.match(r.stdout, /^Result: 4 movable leaks on the VM CPUs/m);
    });
  }

  it('a fresh machine: nothing is isolated yet, exit 0, and the suggested CPUs to check', async () => {
    const root = buildFixture('ryzen-5950x');
    const r = await cli(root, ['status']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^VM CPUs: none: nothing is isolated yet/m);
    assert.match(r.stdout, /To check CPUs for a VM: vfio-isolate status C8-15,24-31/);
    assert.match(r.stdout, /^Result: no VM CPUs to check\.$/m);
    const { j } = await statusJson(root);
    assert.equal(j.vmCpus.source, 'none');
    assert.equal(j.leaks.length, 0);
  });

  it('without CPUS, the VM CPUs are those no host cgroup may use (machine.slice excluded)', async () => {
    const s = isolatedByHand('ryzen-5950x', false);
    for (const cg of ['init.scope', 'system.slice', 'user.slice']) {
      write(s.root, `sys/fs/cgroup/${cg}/cpuset.cpus`, `${s.host.toList()}\n`);
      write(s.root, `sys/fs/cgroup/${cg}/cpuset.cpus.effective`, `${s.host.toList()}\n`);
    }
    const r = await cli(s.root, ['status']);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /^VM CPUs: 8-15,24-31 {3}host CPUs: 0-7,16-23$/m);
    assert.match(
      r.stdout,
      /\(the default: no host cgroup may use them \(\/init\.scope, \/system\.slice, \/user\.slice: 0-7,16-23\)\)/,
    );
    assert.match(r.stdout, /^\|- init\.scope {5}0-7,16-23 {2}0-7,16-23 /m);
    const { j } = await statusJson(s.root);
    assert.deepEqual([j.vmCpus.cpus, j.vmCpus.source], ['8-15,24-31', 'cgroups']);
  });

  it('the VM itself is not a leak: the qemu in machine.slice, and a qemu started by hand', async () => {
    const qemu: ProcDesc = {
      pid: 4100,
      comm: 'qemu-system-x86',
      cmdline: ['/usr/bin/qemu-system-x86_64', '-enable-kvm'],
      cgroup: '/',
    };
    for (const name of ['ryzen-5950x', 'intel-6c12t'] as const) {
      const s = isolatedByHand(name, false, { extraProcs: [qemu] });
      const { code, j } = await statusJson(s.root, [`C${s.vm.toList()}`]);
      assert.equal(code, 0, JSON.stringify(j.leaks));
      assert.equal(j.tasks.vm, name === 'ryzen-5950x' ? 2 : 1);
    }
  });

  it('CPUs isolated at boot are the default VM CPUs', async () => {
    const root = buildFixture('intel-6c12t', { isolcpus: '2-5,8-11' });
    const { code, j } = await statusJson(root);
    assert.deepEqual([j.vmCpus.cpus, j.vmCpus.source], ['2-5,8-11', 'boot']);
    assert.equal(code, 1, 'user tasks may still run there');
    const r = await cli(root, ['status']);
    assert.match(r.stdout, /^ {2}isolcpus= {26}2-5,8-11$/m);
    assert.match(r.stdout, /^ {2}\/sys\/devices\/system\/cpu\/isolated {3}2-5,8-11$/m);
  });

  it('without -v the leak list is cut per kind; -v (own or global) lists everything', async () => {
    const root = buildFixture('ryzen-5950x');
    const short = await cli(root, ['status', 'L1']);
    assert.match(short.stdout, /^ {2}\.\.\. and \d+ more user tasks \(-v lists all\)$/m);
    assert.match(short.stdout, /^20 deeper cgroups without cpuset files/m);
    for (const argv of [
      ['status', '-v', 'L1'],
      ['-v', 'status', 'L1'],
      ['status', 'L1', '--verbose'],
    ]) {
      const full = await cli(root, argv);
      assert.equal(full.code, 1);
      assert.ok(!full.stdout.includes('more user tasks'), argv.join(' '));
      assert.match(full.stdout, /task 1600 \(firefox\) may run on 8-15,24-31/);
      assert.match(full.stdout, /\| {2}`- machine-qemu\\x2d1\\x2dwin10\.scope/);
      assert.match(
        full.stdout,
        /kernel thread \d+ \(ksoftirqd\/8\) may run on 8: only the kernel sets its affinity/,
      );
    }
  });

  it('reports what it could not read and still runs', async () => {
    const root = buildFixture('ryzen-5950x');
    fs.rmSync(path.join(root, 'proc/interrupts'));
    fs.rmSync(path.join(root, 'proc/self/mountinfo'));
    const r = await cli(root, ['status', 'L1']);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^Not visible \(run as root to see everything\):$/m);
    assert.match(r.stdout, /^ {2}the cpuset cgroup hierarchy: cannot read \/proc\/self\/mountinfo/m);
    assert.match(r.stdout, /^ {2}interrupt counts \(ENOENT\)$/m);
    assert.match(r.stdout, /^Cgroups: no cpuset hierarchy found$/m);
  });

  it('shows partitions, root cpuset.cpus.isolated and warns about an invalid partition', async () => {
    const root = buildFixture('ryzen-5950x', { irqbalance: false });
    write(root, 'sys/fs/cgroup/machine.slice/cpuset.cpus', '8-15,24-31\n');
    write(
      root,
      'sys/fs/cgroup/machine.slice/cpuset.cpus.partition',
      'isolated invalid (Cpu list in cpuset.cpus not exclusive)\n',
    );
    write(root, 'sys/fs/cgroup/cpuset.cpus.isolated', '\n');
    const r = await cli(root, ['status', 'L1']);
    assert.match(
      r.stdout,
      /^\|- machine\.slice {2}8-15,24-31 +0-31 +0 +isolated invalid \(Cpu list in cpuset\.cpus not exclusive\) +0 \(1\)$/m,
    );
    assert.match(r.stdout, /^ {2}cpuset\.cpus\.isolated \(root\) +none$/m);
    assert.match(r.stdout, /^ {2}cgroup \/machine\.slice: partition isolated invalid/m);
  });

  it('irqbalance: a warning unless it was told to leave the VM CPUs alone', async () => {
    const root = buildFixture('ryzen-5950x');
    let { j } = await statusJson(root, ['L1']);
    assert.ok(
      j.warnings.some((w) => w.kind === 'irqbalance' && /irqbalance \(pid 740\) is running/.test(w.line)),
    );
    write(root, 'proc/740/environ', 'PATH=/usr/bin\0IRQBALANCE_BANNED_CPULIST=8-15,24-31\0');
    ({ j } = await statusJson(root, ['L1']));
    assert.ok(!j.warnings.some((w) => w.kind === 'irqbalance'));
  });

  it('a bad CPU argument is a usage error', async () => {
    const r = await cli(buildFixture('intel-6c12t'), ['status', 'C5-2']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^vfio-isolate: status: invalid CPU set/);
  });

  it('after isolate, status (no arguments) finds the VM CPUs and no movable leak', async () => {
    for (const name of ['ryzen-5950x', 'intel-6c12t', 'tr-1920x'] as const) {
      const root = buildFixture(name, { irqbalance: false });
      const iso = await cli(root, ['isolate', `C${VM_OF[name]}`]);
      assert.equal(iso.code, 0, iso.stderr);
      assert.match(
        iso.stdout,
        new RegExp(`^Isolated CPUs ${VM_OF[name]} for the VM .*: no movable leaks;`, 'm'),
      );
      const { code, j } = await statusJson(root);
      assert.equal(j.vmCpus.cpus, VM_OF[name], `${name}: ${JSON.stringify(j.vmCpus)}`);
      assert.equal(code, 0, `${name}: ${j.leaks.map((l) => l.line).join('\n')}`);
    }
  });
});

describe('status text: names others chose reach the terminal escaped', () => {
  it('a task name (comm) and a cgroup name with escape sequences, C1 controls and a line separator', async () => {
    const evil = 'a\x1b[2Jb\u009b31mc\u2028d';
    const root = buildFixture('ryzen-5950x', {
      extraProcs: [
        {
          pid: 4000,
          comm: evil,
          cmdline: ['/x'],
          cgroup: '/user.slice/user-1000.slice/session-3.scope',
          uid: 1000,
        },
      ],
    });
    // a cgroup a user made in a tree delegated to them: a copy of user.slice's first child under that name
    const base = path.join(root, 'sys/fs/cgroup/user.slice');
    const first = fs.readdirSync(base).find((n) => fs.statSync(path.join(base, n)).isDirectory())!;
    fs.cpSync(path.join(base, first), path.join(base, `x${evil}`), { recursive: true });
    const r = await cli(root, ['status', '-v', 'C8-15']);
    // eslint-disable-next-line no-control-regex
    assert.doesNotMatch(r.stdout + r.stderr, /[\x00-\x09\x0b-\x1f\u007f-\u009f\u2028\u2029]/);
    const escaped = 'a\\x1b[2Jb\\x9b31mc\\u2028d';
    assert.match(r.stdout, new RegExp(`task 4000 \\(${escaped.replace(/[\\[\]()]/g, '\\$&')}\\)`));
    assert.ok(r.stdout.includes(`x${escaped}`), 'the cgroup, escaped, in the tree');
    // the JSON document keeps the names as they are (written with \u escapes)
    const js = JSON.parse((await cli(root, ['status', '--json', 'C8-15'])).stdout) as {
      leaks: { name: string | null; line: string }[];
    };
    const leak = js.leaks.find((l) => l.name === evil);
    assert.ok(leak, 'the task among the leaks, by its own name');
    assert.ok(leak.line.includes(escaped), 'its line is the escaped text');
  });
});
