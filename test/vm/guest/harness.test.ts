/**
 * Proves the guest is what the real-kernel tests assume: topology, cgroup layout per mode, the slices and their
 * processes, and that snapshots see a change and its undoing. Runs inside the guest only.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { describe, test } from 'node:test';
import { diffSnapshots, takeSnapshot } from '../snapshot.ts';
import { guestMode, guestSetup, notInGuest } from './guest-env.ts';

const mode = guestMode();
const skip = notInGuest();

const read = (p: string): string => readFileSync(p, 'utf8').trim();
const cgroupMountLines = (): string[][] =>
  read('/proc/self/mounts')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[2] === 'cgroup' || f[2] === 'cgroup2');

describe('guest harness', { skip }, () => {
  test('runs the wanted kernel', (t) => {
    assert.equal(release(), process.env.VFIO_VM_KERNEL);
    const wanted = process.env.VFIO_VM_WANTED_SERIES ?? '';
    const note = process.env.VFIO_VM_KERNEL_NOTE;
    if (note) {
      t.skip(note);
      return;
    }
    assert.ok(release().startsWith(`${wanted}.`), `kernel ${release()} is not Linux ${wanted}`);
  });

  test('8 CPUs online in two NUMA nodes with SMT pairs', () => {
    assert.equal(read('/sys/devices/system/cpu/online'), '0-7');
    assert.equal(read('/sys/devices/system/node/node0/cpulist'), '0-3');
    assert.equal(read('/sys/devices/system/node/node1/cpulist'), '4-7');
    for (const [cpu, siblings] of [
      [0, '0-1'],
      [1, '0-1'],
      [2, '2-3'],
      [5, '4-5'],
      [7, '6-7'],
    ] as const) {
      assert.equal(
        read(`/sys/devices/system/cpu/cpu${cpu}/topology/thread_siblings_list`),
        siblings,
        `cpu${cpu}`,
      );
    }
  });

  test("the host's node is on PATH at the same absolute path", () => {
    assert.ok(existsSync(process.execPath));
    assert.equal(process.env.VFIO_VM_MODE, mode);
  });

  test('cgroup layout matches the mode', () => {
    const mounts = cgroupMountLines();
    const snap = takeSnapshot();
    if (mode === 'v1-hybrid') {
      assert.deepEqual(
        mounts[0]?.slice(1, 3),
        ['/sys/fs/cgroup/unified', 'cgroup2'],
        'cgroup2 "unified" comes first',
      );
      const v1 = mounts.find((f) => f[2] === 'cgroup' && f[1] === '/sys/fs/cgroup/cpuset');
      assert.ok(v1, 'v1 cpuset hierarchy mounted');
      assert.ok(v1[3]?.split(',').includes('cpuset'));
      assert.ok(!read('/sys/fs/cgroup/unified/cgroup.controllers').split(' ').includes('cpuset'));
      assert.ok(existsSync('/sys/fs/cgroup/cpuset/cpuset.cpu_exclusive'));
      assert.deepEqual(snap.cpuset, { mountPoint: '/sys/fs/cgroup/cpuset', version: 1 });
    } else {
      assert.deepEqual(
        mounts.map((f) => f.slice(1, 3)),
        [['/sys/fs/cgroup', 'cgroup2']],
      );
      assert.ok(mounts[0]?.[3]?.split(',').includes('nsdelegate'));
      assert.ok(read('/sys/fs/cgroup/cgroup.controllers').split(' ').includes('cpuset'));
      assert.deepEqual(snap.cpuset, { mountPoint: '/sys/fs/cgroup', version: 2 });
      // 6.12 has cpuset.cpus.isolated at the root; 6.1 does not.
      const series = process.env.VFIO_VM_KERNEL_SERIES;
      if (series === '6.12') assert.ok(existsSync('/sys/fs/cgroup/cpuset.cpus.isolated'));
      if (series === '6.1') assert.ok(!existsSync('/sys/fs/cgroup/cpuset.cpus.isolated'));
    }
  });

  test('the root started without cpuset in its subtree_control', () => {
    const setup = guestSetup();
    assert.ok(setup.rootControllers.split(' ').includes('cpuset') === (mode !== 'v1-hybrid'));
    assert.ok(!setup.rootSubtreeControl.split(' ').includes('cpuset'));
  });

  test('the slices exist and hold their processes', () => {
    const setup = guestSetup();
    for (const slice of ['system.slice', 'user.slice', 'init.scope', 'machine.slice']) {
      assert.ok(existsSync(`${setup.cgroup2}/${slice}`), slice);
    }
    assert.ok(setup.threaded.threads >= 21, 'threaded helper has 20 threads besides its main one');
    assert.equal(
      read(`/proc/${setup.threaded.pid}/status`).match(/^Threads:\s*(\d+)/m)?.[1],
      String(setup.threaded.threads),
    );
    for (const [cg, pids] of Object.entries(setup.pids)) {
      assert.ok(pids.length > 0, `${cg} has processes`);
      const members = read(`${setup.cgroup2}${cg === '/' ? '' : cg}/cgroup.procs`)
        .split('\n')
        .map(Number);
      for (const pid of pids) assert.ok(members.includes(pid), `${pid} in ${cg}`);
    }
    if (mode === 'v1-hybrid') {
      // Everything is in the root v1 cpuset: no child cpusets, all helper threads listed in the root's tasks.
      const tasks = read('/sys/fs/cgroup/cpuset/tasks').split('\n').map(Number);
      for (const pid of Object.values(setup.pids).flat())
        assert.ok(tasks.includes(pid), `${pid} in the root cpuset`);
      assert.deepEqual(Object.keys(takeSnapshot().cgroups), ['/']);
    } else {
      // Most processes (all kernel threads among them) stay in the root cgroup.
      const root = read('/sys/fs/cgroup/cgroup.procs').split('\n').filter(Boolean);
      assert.ok(root.length > 50, `${root.length} processes in the root cgroup`);
    }
  });

  test('two snapshots in a row do not differ', () => {
    const a = takeSnapshot();
    assert.ok(Object.keys(a.tasks).length > 100, 'sees the threads of all processes');
    assert.ok(Object.keys(a.irqs).length > 5, 'sees the IRQs');
    assert.ok(
      a.statInterval !== undefined && a.defaultSmpAffinity !== undefined && a.workqueueCpumask !== undefined,
    );
    assert.deepEqual(diffSnapshots(a, takeSnapshot()), []);
  });

  test('a change shows in the diff and disappears when undone', () => {
    const path = '/proc/sys/vm/stat_interval';
    const old = read(path);
    const changed = old === '7' ? '8' : '7';
    const a = takeSnapshot();
    try {
      writeFileSync(path, changed);
      assert.deepEqual(diffSnapshots(a, takeSnapshot()), [`vm.stat_interval: ${old} → ${changed}`]);
    } finally {
      writeFileSync(path, old);
    }
    assert.deepEqual(diffSnapshots(a, takeSnapshot()), []);
  });
});
