/**
 * The real-kernel suite's snapshot diff, on synthetic snapshots, and takeSnapshot on a small fake tree (pure: it
 * only reads files under a temporary directory).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, type PathOrFileDescriptor } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { withFsSpy } from '../support/fs-spy.ts';
import {
  diffSnapshots,
  parseStat,
  readUnitProperties,
  takeSnapshot,
  type Snapshot,
  type TaskState,
} from '../vm/snapshot.ts';

function task(tid: number, extra: Partial<TaskState> = {}): TaskState {
  return {
    tid,
    tgid: tid,
    comm: `t${tid}`,
    startTime: 1000 + tid,
    cpusAllowedList: '0-7',
    policy: 0,
    rtPriority: 0,
    ...extra,
  };
}

function base(): Snapshot {
  return {
    root: '/',
    cgroupMounts: [
      {
        mountPoint: '/sys/fs/cgroup',
        fsType: 'cgroup2',
        root: '/',
        superOptions: ['nsdelegate'],
        cpuset: true,
      },
    ],
    cpuset: { mountPoint: '/sys/fs/cgroup', version: 2 },
    cgroups: {
      '/': { files: { 'cgroup.subtree_control': '', 'cpuset.cpus.effective': '0-7' }, pids: [1, 2, 3] },
      '/system.slice': { files: { 'cpuset.cpus': '' }, pids: [10, 11] },
      '/user.slice': { files: { 'cpuset.cpus': '' }, pids: [20] },
    },
    irqs: { '0': '0', '24': '0-7', '25': '0-7' },
    defaultSmpAffinity: 'ff',
    workqueueCpumask: 'ff',
    writebackCpumask: 'ff',
    statInterval: '1',
    tasks: Object.fromEntries([1, 2, 3, 10, 11, 20, 21].map((t) => [String(t), task(t)])),
  };
}

const clone = (s: Snapshot): Snapshot => structuredClone(s);

/** A new fake tree (a temporary directory) and a writer of its files. */
function fakeRoot(): { root: string; put: (path: string, value: string) => void } {
  const root = mkdtempSync(join(tmpdir(), 'vm-snapshot-'));
  const put = (path: string, value: string): void => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), value);
  };
  return { root, put };
}

/** A cgroup v2 tree with cpuset at /sys/fs/cgroup whose root cgroup lists `pids`. */
function putV2Root(put: (path: string, value: string) => void, pids: readonly number[]): void {
  put('/proc/self/mountinfo', '23 1 0:21 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n');
  put('/sys/fs/cgroup/cgroup.controllers', 'cpuset\n');
  put('/sys/fs/cgroup/cgroup.procs', pids.map((p) => `${p}\n`).join(''));
}

/** A one-thread process: its stat line and a status allowed on CPUs 0-7. */
function putTask(put: (path: string, value: string) => void, pid: number, stat: string, name: string): void {
  put(`/proc/${pid}/task/${pid}/stat`, stat);
  put(`/proc/${pid}/task/${pid}/status`, `Name:\t${name}\nCpus_allowed_list:\t0-7\n`);
}

/** A task's stat line (proc(5)): `state` in field 3, `flags` in field 9, the start time in field 22. */
function statLine(pid: number, comm: string, state: string, flags: number, start: number): string {
  const fields = Array.from({ length: 50 }, (_, i) => (i + 4 === 22 ? start : i + 4 === 9 ? flags : 0));
  return `${pid} (${comm}) ${state} ${fields.join(' ')}\n`;
}

describe('diffSnapshots', () => {
  test('identical snapshots give no lines', () => {
    assert.deepEqual(diffSnapshots(base(), base()), []);
  });

  test('cgroup files, created and removed cgroups', () => {
    const b = clone(base());
    b.cgroups['/']!.files['cgroup.subtree_control'] = 'cpuset';
    b.cgroups['/system.slice']!.files['cpuset.cpus'] = '0-3';
    delete b.cgroups['/user.slice'];
    b.cgroups['/machine.slice'] = { files: { 'cpuset.cpus': '4-7', 'cpuset.mems': '' }, pids: [] };
    assert.deepEqual(diffSnapshots(base(), b), [
      'cgroup / cgroup.subtree_control: "" → "cpuset"',
      'cgroup /machine.slice created (cpuset.cpus "4-7", cpuset.mems "")',
      'cgroup /system.slice cpuset.cpus: "" → "0-3"',
      'cgroup /user.slice removed',
    ]);
  });

  test('a file that appears or vanishes is shown as (absent)', () => {
    const b = clone(base());
    b.cgroups['/system.slice']!.files['cpuset.cpus.partition'] = 'root';
    assert.deepEqual(diffSnapshots(base(), b), [
      'cgroup /system.slice cpuset.cpus.partition: (absent) → "root"',
    ]);
  });

  test('member pids are compared only over tasks present in both snapshots', () => {
    const a = base();
    const b = clone(a);
    // 2 moves to system.slice; 3 exits; 30 is born in user.slice; 11 exits and its pid is reused in the root.
    b.cgroups['/']!.pids = [1, 11];
    b.cgroups['/system.slice']!.pids = [2, 10];
    b.cgroups['/user.slice']!.pids = [20, 30];
    delete b.tasks['3'];
    b.tasks['30'] = task(30);
    b.tasks['11'] = task(11, { startTime: 99999 });
    assert.deepEqual(diffSnapshots(a, b), [
      'cgroup / cgroup.procs: lost 2 (t2)',
      'cgroup /system.slice cgroup.procs: gained 2 (t2)',
    ]);
  });

  test('a task that may be born after the first snapshot read its member lists, and is in none of them, is not compared', () => {
    const a = base();
    a.membersReadAt = 2000;
    // 40 and 42 are born while `a` is taken (after its member lists, before its tasks): among a's tasks, in none of
    // its lists; 39 within the tick before the lists were read (it may have been born after them too); 41 two ticks
    // before (born before the lists: a difference)
    a.tasks['39'] = task(39, { startTime: 1999 });
    a.tasks['40'] = task(40, { startTime: 2000 });
    a.tasks['41'] = task(41, { startTime: 1998 });
    a.tasks['42'] = task(42, { startTime: 2003 });
    const b = clone(a);
    b.cgroups['/']!.pids = [1, 2, 3, 39, 40, 41, 42];
    assert.deepEqual(diffSnapshots(a, b), ['cgroup / cgroup.procs: gained 41 (t41)']);
    // without the time of the first reads every task in both is compared
    delete a.membersReadAt;
    assert.deepEqual(diffSnapshots(a, b), [
      'cgroup / cgroup.procs: gained 39 (t39) 40 (t40) 41 (t41) 42 (t42)',
    ]);
  });

  test('a task born late that the first snapshot did list is compared: a move of it is a difference', () => {
    const a = base();
    a.membersReadAt = 2000;
    a.tasks['50'] = task(50, { startTime: 2000, comm: 'victim' });
    a.cgroups['/']!.pids.push(50);
    const b = clone(a);
    b.cgroups['/']!.pids = [1, 2, 3];
    b.cgroups['/system.slice']!.pids.push(50);
    assert.deepEqual(diffSnapshots(a, b), [
      'cgroup / cgroup.procs: lost 50 (victim)',
      'cgroup /system.slice cgroup.procs: gained 50 (victim)',
    ]);
  });

  test("a workqueue rescuer's mask is the kernel's and not compared; any other thread's is", () => {
    const a = base();
    a.tasks['2'] = task(2, { comm: 'kworker/R-rcu_gp', rescuer: true });
    a.tasks['3'] = task(3, { comm: 'kswapd0' });
    const b = clone(a);
    b.tasks['2']!.cpusAllowedList = '0-3';
    b.tasks['3']!.cpusAllowedList = '0-3';
    assert.deepEqual(diffSnapshots(a, b), ['task 3 (kswapd0) Cpus_allowed_list: 0-7 → 0-3']);
  });

  test('v1 hierarchies name the tasks file', () => {
    const a = base();
    a.cpuset = { mountPoint: '/sys/fs/cgroup/cpuset', version: 1 };
    const b = clone(a);
    b.cgroups['/']!.pids = [1, 2];
    b.cgroups['/user.slice']!.pids = [3, 20];
    assert.deepEqual(diffSnapshots(a, b), [
      'cgroup / tasks: lost 3 (t3)',
      'cgroup /user.slice tasks: gained 3 (t3)',
    ]);
  });

  test('long pid lists are shortened', () => {
    const a = base();
    const many = Array.from({ length: 20 }, (_, i) => 100 + i);
    for (const p of many) a.tasks[String(p)] = task(p);
    a.cgroups['/']!.pids.push(...many);
    const b = clone(a);
    b.cgroups['/']!.pids = [1, 2, 3];
    b.cgroups['/system.slice']!.pids.push(...many);
    const lines = diffSnapshots(a, b);
    assert.equal(lines.length, 2);
    assert.equal(
      lines[0],
      'cgroup / cgroup.procs: lost 100 (t100) 101 (t101) 102 (t102) 103 (t103) 104 (t104) 105 (t105) 106 (t106) ' +
        '107 (t107) 108 (t108) 109 (t109) 110 (t110) 111 (t111) (+8 more)',
    );
  });

  test('IRQs, default affinity, workqueues and stat_interval', () => {
    const b = clone(base());
    b.irqs['24'] = '0-3';
    delete b.irqs['25'];
    b.irqs['40'] = '0-7';
    b.defaultSmpAffinity = '0f';
    b.workqueueCpumask = '0f';
    b.writebackCpumask = '0f';
    b.statInterval = '10';
    assert.deepEqual(diffSnapshots(base(), b), [
      'irq 24 smp_affinity_list: 0-7 → 0-3',
      'irq 25 gone (smp_affinity_list was 0-7)',
      'irq 40 appeared: smp_affinity_list 0-7',
      'irq default_smp_affinity: ff → 0f',
      'workqueue cpumask: ff → 0f',
      'workqueue writeback cpumask: ff → 0f',
      'vm.stat_interval: 1 → 10',
    ]);
  });

  test('task affinity and scheduling; born, exited and reused tids are ignored', () => {
    const a = base();
    const b = clone(a);
    b.tasks['10'] = { ...b.tasks['10']!, cpusAllowedList: '0-3' };
    b.tasks['20'] = { ...b.tasks['20']!, policy: 1, rtPriority: 10 };
    b.tasks['21'] = task(21, { startTime: 5, cpusAllowedList: '4' }); // reused tid
    delete b.tasks['11'];
    b.tasks['99'] = task(99, { cpusAllowedList: '1' });
    assert.deepEqual(diffSnapshots(a, b), [
      'task 10 (t10) Cpus_allowed_list: 0-7 → 0-3',
      'task 20 (t20) sched: SCHED_OTHER 0 → SCHED_FIFO 10',
    ]);
  });

  test('a change of cpuset hierarchy is one line, not a per-cgroup listing', () => {
    const b = clone(base());
    b.cgroupMounts = [];
    delete b.cpuset;
    b.cgroups = {};
    assert.deepEqual(diffSnapshots(base(), b), [
      'cgroup mounts: [cgroup2 /sys/fs/cgroup (cpuset)] → []',
      'cpuset hierarchy: /sys/fs/cgroup (v2) → none',
    ]);
  });
});

describe('systemd unit properties', () => {
  const show =
    (text: string, seen: string[][] = []) =>
    (args: readonly string[]): string => {
      seen.push([...args]);
      return text;
    };

  test('one systemctl show for all units, parsed per unit in order', () => {
    const seen: string[][] = [];
    const props = readUnitProperties(
      ['system.slice', 'user.slice'],
      show('AllowedCPUs=0-3\nAllowedMemoryNodes=\n\nAllowedCPUs=\nAllowedMemoryNodes=0\n', seen),
    );
    assert.deepEqual(seen, [
      ['show', '-p', 'AllowedCPUs,AllowedMemoryNodes', '--', 'system.slice', 'user.slice'],
    ]);
    assert.deepEqual(props, {
      'system.slice': { AllowedCPUs: '0-3', AllowedMemoryNodes: '' },
      'user.slice': { AllowedCPUs: '', AllowedMemoryNodes: '0' },
    });
    assert.deepEqual(readUnitProperties([], show('unused')), {});
  });

  test('a block count that does not match the units is an error, not a silent misattribution', () => {
    assert.throws(
      () => readUnitProperties(['a.slice', 'b.slice'], show('AllowedCPUs=\n')),
      /1 blocks for 2 units/,
    );
  });

  test('takeSnapshot records them on request, and the diff names unit and property', () => {
    const root = mkdtempSync(join(tmpdir(), 'vm-snap-units-'));
    try {
      const a = takeSnapshot(root, {
        units: ['system.slice'],
        systemctl: show('AllowedCPUs=\nAllowedMemoryNodes=\n'),
      });
      assert.deepEqual(a.units, { 'system.slice': { AllowedCPUs: '', AllowedMemoryNodes: '' } });
      assert.equal(takeSnapshot(root).units, undefined);
      const b = clone(a);
      b.units = { 'system.slice': { AllowedCPUs: '0-3', AllowedMemoryNodes: '' }, 'init.scope': {} };
      assert.deepEqual(diffSnapshots(a, b), [
        'unit init.scope: recorded after only',
        'unit system.slice AllowedCPUs: "" → "0-3"',
      ]);
      assert.deepEqual(diffSnapshots(a, clone(a)), []);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('parseStat', () => {
  test('comm with spaces and parentheses; fields numbered as in proc(5)', () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
    const s = parseStat(`42 (a) b (c)) ${fields.join(' ')}`);
    assert.equal(s?.comm, 'a) b (c)');
    assert.equal(s?.field(3), 3);
    assert.equal(s?.field(22), 22);
    assert.equal(s?.field(41), 41);
    assert.equal(parseStat(`42 (a) Z 1 2`)?.state, 'Z');
  });
});

describe('takeSnapshot on a fake tree', () => {
  test('reads a hybrid layout, IRQs, sysctls and tasks from under the root', () => {
    const { root, put } = fakeRoot();
    try {
      put(
        '/proc/self/mountinfo',
        [
          '22 1 0:20 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755',
          '23 22 0:21 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate',
          '24 22 0:22 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset',
          '',
        ].join('\n'),
      );
      put('/sys/fs/cgroup/unified/cgroup.controllers', '\n');
      put('/sys/fs/cgroup/cpuset/cpuset.cpus', '0-7\n');
      put('/sys/fs/cgroup/cpuset/cpuset.mems', '0-1\n');
      put('/sys/fs/cgroup/cpuset/cpuset.memory_pressure', '0\n'); // changes on its own: not captured
      put('/sys/fs/cgroup/cpuset/tasks', '1\n7\n2\n');
      put('/sys/fs/cgroup/cpuset/vm/cpuset.cpus', '4-7\n');
      put('/sys/fs/cgroup/cpuset/vm/tasks', '');
      put('/proc/irq/24/smp_affinity_list', '0-7\n');
      put('/proc/irq/24/effective_affinity_list', '3\n');
      put('/proc/irq/default_smp_affinity', 'ff\n');
      put('/proc/sys/vm/stat_interval', '1\n');
      put('/sys/devices/virtual/workqueue/cpumask', 'ff\n');
      const stat = (pid: number, comm: string, policy: number): string =>
        `${pid} (${comm}) S ${Array.from({ length: 50 }, (_, i) => (i + 4 === 22 ? 777 : i + 4 === 41 ? policy : 0)).join(' ')}\n`;
      put('/proc/7/task/7/stat', stat(7, 'qemu system', 0));
      put('/proc/7/task/7/status', 'Name:\tqemu\nCpus_allowed_list:\t0-7\n');
      put('/proc/7/task/8/stat', stat(8, 'CPU 0/KVM', 1));
      put('/proc/7/task/8/status', 'Name:\tCPU 0/KVM\nCpus_allowed_list:\t4\n');
      // 6.1: a rescuer named after its workqueue, bound to no CPU of its own (PF_NO_SETAFFINITY), waiting in
      // rescuer_thread; another kernel thread bound to a CPU waits elsewhere
      const kstat = (pid: number, comm: string): string =>
        `${pid} (${comm}) S ${Array.from({ length: 50 }, (_, i) => (i + 4 === 9 ? 0x04208040 : i + 4 === 22 ? 5 : 0)).join(' ')}\n`;
      put('/proc/11/task/11/stat', kstat(11, 'mm_percpu_wq'));
      put('/proc/11/task/11/status', 'Name:\tmm_percpu_wq\nCpus_allowed_list:\t4\n');
      put('/proc/11/task/11/wchan', 'rescuer_thread');
      put('/proc/12/task/12/stat', kstat(12, 'ksoftirqd/0'));
      put('/proc/12/task/12/status', 'Name:\tksoftirqd/0\nCpus_allowed_list:\t0\n');
      put('/proc/12/task/12/wchan', 'smpboot_thread_fn');

      const s = takeSnapshot(root);
      assert.deepEqual(
        s.cgroupMounts.map((m) => [m.mountPoint, m.fsType, m.cpuset]),
        [
          ['/sys/fs/cgroup/unified', 'cgroup2', false],
          ['/sys/fs/cgroup/cpuset', 'cgroup', true],
        ],
      );
      assert.deepEqual(s.cpuset, { mountPoint: '/sys/fs/cgroup/cpuset', version: 1 });
      assert.deepEqual(s.cgroups, {
        '/': { files: { 'cpuset.cpus': '0-7', 'cpuset.mems': '0-1' }, pids: [1, 2, 7] },
        '/vm': { files: { 'cpuset.cpus': '4-7' }, pids: [] },
      });
      assert.deepEqual(s.irqs, { '24': '0-7' });
      assert.equal(s.defaultSmpAffinity, 'ff');
      assert.equal(s.statInterval, '1');
      assert.equal(s.workqueueCpumask, 'ff');
      assert.equal(s.writebackCpumask, undefined);
      assert.deepEqual(s.tasks['8'], {
        tid: 8,
        tgid: 7,
        comm: 'CPU 0/KVM',
        startTime: 777,
        cpusAllowedList: '4',
        policy: 1,
        rtPriority: 0,
      });
      assert.equal(s.tasks['7']?.comm, 'qemu system');
      assert.deepEqual(Object.keys(takeSnapshot(root, { tasks: false }).tasks), []);
      assert.deepEqual(Object.keys(takeSnapshot(root, { tasks: [7] }).tasks), ['7', '8']);
      assert.deepEqual(diffSnapshots(s, takeSnapshot(root)), []);
      assert.equal(s.tasks['11']?.rescuer, true);
      assert.equal(s.tasks['12']?.rescuer, undefined);
      // the rescuer runs (its wait channel reads 0) and the kernel binds it to another CPU: not a difference
      put('/proc/11/task/11/wchan', '0');
      put('/proc/11/task/11/status', 'Name:\tmm_percpu_wq\nCpus_allowed_list:\t5\n');
      put('/proc/12/task/12/status', 'Name:\tksoftirqd/0\nCpus_allowed_list:\t1\n');
      assert.deepEqual(diffSnapshots(s, takeSnapshot(root)), [
        'task 12 (ksoftirqd/0) Cpus_allowed_list: 0 → 1',
      ]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('a process that is exiting, or exited and not reaped yet (a zombie), which cgroup.procs no longer lists, is gone', () => {
    const { root, put } = fakeRoot();
    const stat = (pid: number, state: string, flags = 0): string =>
      statLine(pid, 'helper', state, flags, 500);
    try {
      putV2Root(put, [1, 34]);
      for (const pid of [1, 34]) putTask(put, pid, stat(pid, 'S'), 'helper');
      const before = takeSnapshot(root);
      assert.deepEqual(before.cgroups['/']?.pids, [1, 34]);
      put('/sys/fs/cgroup/cgroup.procs', '1\n');
      put('/proc/34/task/34/stat', stat(34, 'Z'));
      assert.deepEqual(diffSnapshots(before, takeSnapshot(root)), []);
      // one that is exiting (PF_EXITING, still running its exit: an idle kworker the kernel retires) is gone too
      put('/proc/34/task/34/stat', stat(34, 'R', 0x4 | 0x00200000));
      assert.deepEqual(diffSnapshots(before, takeSnapshot(root)), []);
      // one that left the cgroup alive is still a difference
      put('/proc/34/task/34/stat', stat(34, 'S', 0x00200000));
      assert.deepEqual(diffSnapshots(before, takeSnapshot(root)), [
        'cgroup / cgroup.procs: lost 34 (helper)',
      ]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('a kworker the kernel retires while the snapshot is taken is gone, not "lost" from its cgroup', () => {
    const { root, put } = fakeRoot();
    const stat = (pid: number, flags: number): string => statLine(pid, 'kworker/0:2', 'S', flags, 500);
    const procs = join(root, '/sys/fs/cgroup/cgroup.procs');
    try {
      putV2Root(put, [1, 52]);
      for (const pid of [1, 52]) putTask(put, pid, stat(pid, 0x00200000), 'kworker');
      const before = takeSnapshot(root);
      assert.deepEqual(before.cgroups['/']?.pids, [1, 52]);
      // it exits just as the member list is read: PF_EXITING first, then it leaves cgroup.procs (cgroup_exit)
      const after = withFsSpy(
        'readFileSync',
        (read) =>
          ((p: PathOrFileDescriptor, o?: unknown) => {
            if (p === procs) {
              put('/proc/52/task/52/stat', stat(52, 0x4 | 0x00200000));
              put('/sys/fs/cgroup/cgroup.procs', '1\n');
            }
            return (read as (p: PathOrFileDescriptor, o?: unknown) => unknown)(p, o);
          }) as typeof read,
        () => takeSnapshot(root),
      );
      assert.deepEqual(diffSnapshots(before, after), []);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('a kworker the kernel starts while the first snapshot is taken is not "gained" by the root cgroup', () => {
    const { root, put } = fakeRoot();
    const addTask = (pid: number, start: number): void =>
      putTask(put, pid, statLine(pid, 'kworker/u8:3', 'S', 0x00200000, start), 'kworker');
    const procs = join(root, '/sys/fs/cgroup/cgroup.procs');
    try {
      putV2Root(put, [1]);
      put('/proc/uptime', '20.24 35.10\n');
      addTask(1, 5);
      // it is born just after the root's member list is read, and before the tasks are
      let born = false;
      const before = withFsSpy(
        'readFileSync',
        (read) =>
          ((p: PathOrFileDescriptor, o?: unknown) => {
            const out = (read as (p: PathOrFileDescriptor, o?: unknown) => unknown)(p, o);
            if (p === procs && !born) {
              born = true;
              // after the member list was read (uptime moves on)
              put('/proc/uptime', '20.29 35.20\n');
              addTask(470, 2024);
              put('/sys/fs/cgroup/cgroup.procs', '1\n470\n');
            }
            return out;
          }) as typeof read,
        () => takeSnapshot(root),
      );
      assert.ok(born);
      assert.deepEqual(before.cgroups['/']?.pids, [1]);
      assert.equal(before.tasks['470']?.startTime, 2024);
      // 20.24 s is 2024 ticks (as a float times 100, 2023.999…)
      assert.equal(before.membersReadAt, 2024);
      assert.deepEqual(diffSnapshots(before, takeSnapshot(root)), []);
      // a task older than the first member lists that turns up in the root is still a difference
      addTask(471, 1000);
      const withOld = takeSnapshot(root);
      put('/sys/fs/cgroup/cgroup.procs', '1\n470\n471\n');
      assert.deepEqual(diffSnapshots(withOld, takeSnapshot(root)), [
        'cgroup / cgroup.procs: gained 471 (kworker/u8:3)',
      ]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
