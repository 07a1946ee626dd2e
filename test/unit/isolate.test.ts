/** isolate / release / reset on fixture machines: every step's writes, and release restores the tree exactly. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { CpuSet } from '../../src/cpus/cpuset.ts';
import { buildFixture } from '../fixtures/build.ts';
import { cli } from '../support/cli.ts';
import { fakeSystemd, flakySystemctl } from '../support/systemd.ts';
import { diffTrees, simWrites, sysExists, sysRead, treeFiles, treeHash } from '../support/tree.ts';

const CG = 'sys/fs/cgroup';

function allowedOf(root: string, pid: number): CpuSet {
  const m = /Cpus_allowed_list:\s*(.*)/.exec(fs.readFileSync(path.join(root, `proc/${pid}/status`), 'utf8'));
  return CpuSet.parseList(m?.[1] ?? '');
}
function statFlags(root: string, pid: number): number {
  const s = fs.readFileSync(path.join(root, `proc/${pid}/stat`), 'utf8');
  return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[6]);
}
function pids(root: string): number[] {
  return fs
    .readdirSync(path.join(root, 'proc'))
    .filter((d) => /^\d+$/.test(d))
    .map(Number);
}
describe('isolate on cgroup v2 (Ryzen 5950X, VM = CCD1)', () => {
  it('restricts the slices, moves kthreads, workqueues and IRQs; release restores the tree byte for byte', async () => {
    const root = buildFixture('ryzen-5950x');
    const before = treeFiles(root);
    const vm = CpuSet.parseList('8-15,24-31');
    const r = await cli(root, ['isolate', 'L1']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Isolated CPUs 8-15,24-31 for the VM .*no movable leaks/);
    assert.match(r.stderr, /irqbalance \(pid \d+\) is running/);
    for (const slice of ['system.slice', 'user.slice', 'init.scope']) {
      assert.equal(sysRead(root, `${CG}/${slice}/cpuset.cpus`), '0-7,16-23', slice);
    }
    assert.equal(sysRead(root, `${CG}/machine.slice/cpuset.cpus`), '', 'the VM cgroup keeps every CPU');
    assert.equal(allowedOf(root, 2).overlaps(vm), false, 'kthreadd');
    for (const pid of pids(root)) {
      const flags = statFlags(root, pid);
      if (flags & 0x00200000 && !(flags & 0x04000000))
        assert.equal(allowedOf(root, pid).overlaps(vm), false, `kthread ${pid}`);
    }
    assert.equal(sysRead(root, 'sys/devices/virtual/workqueue/cpumask'), '00ff00ff');
    assert.equal(CpuSet.parseMask(sysRead(root, 'proc/irq/default_smp_affinity')).toList(), '0-7,16-23');
    const status = await cli(root, ['status', 'C8-15,24-31']);
    assert.equal(status.code, 0, status.stdout);
    const rel = await cli(root, ['release']);
    assert.equal(rel.code, 0, rel.stderr);
    assert.deepEqual(diffTrees(before, treeFiles(root)), []);
  });

  it('a second isolate with the same journal is refused, naming the active one; another -u works', async () => {
    const root = buildFixture('ryzen-5950x');
    assert.equal((await cli(root, ['isolate', 'C8-15,24-31'])).code, 0);
    const h = treeHash(root);
    const again = await cli(root, ['isolate', 'C12-15']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /an isolation is already active in .*isolate\.journal/);
    assert.equal(treeHash(root), h);
    const other = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-j-')), 'vm2');
    // CPUs of another active isolation are refused (exit 2, nothing changed); other CPUs are not
    const overlap = await cli(root, ['-u', other, 'isolate', '--no-cgroups', 'C12-15']);
    assert.equal(overlap.code, 2, overlap.stderr);
    assert.match(overlap.stderr, /CPUs 12-15 are already isolated for the VM of .*isolate\.journal/);
    assert.equal(treeHash(root), h);
    const first = treeFiles(root);
    assert.equal((await cli(root, ['-u', other, 'isolate', '--no-cgroups', 'C4-7'])).code, 0);
    assert.notDeepEqual(diffTrees(first, treeFiles(root)), [], 'the second isolate changed something');
    assert.equal((await cli(root, ['-u', other, 'release'])).code, 0);
    assert.deepEqual(diffTrees(first, treeFiles(root)), [], 'release undoes only its own isolation');
  });

  it('--stop-irqbalance stops it through systemd and release starts it; --irqbalance-ban is a drop-in under /run that release and reset remove', async () => {
    const root = buildFixture('ryzen-5950x');
    fs.mkdirSync(path.join(root, 'etc/default'), { recursive: true });
    // systemd manages this machine: the fake also takes the units' AllowedCPUs (the irqbalance calls are checked)
    const sd = fakeSystemd(root);
    const before = treeFiles(root);
    const env = sd.env;
    const irqb = (): string =>
      sd
        .calls()
        .filter((c) => c.includes('irqbalance'))
        .join('\n') + '\n';
    assert.equal((await cli(root, ['isolate', '--stop-irqbalance', 'C8-15,24-31'], env)).code, 0);
    assert.equal(irqb(), 'stop irqbalance.service\n');
    assert.equal((await cli(root, ['release'], env)).code, 0);
    assert.equal(irqb(), 'stop irqbalance.service\nstart irqbalance.service\n');
    assert.equal((await cli(root, ['isolate', '--irqbalance-ban', 'C8-15,24-31'], env)).code, 0);
    // runtime only: a drop-in under /run, nothing under /etc
    assert.equal(sysExists(root, 'etc/default/irqbalance'), false);
    assert.match(
      sysRead(root, 'run/systemd/system/irqbalance.service.d/50-vfio-isolate.conf'),
      /^EnvironmentFile=\/run\/vfio-isolate\/irqbalance.env$/m,
    );
    assert.match(sysRead(root, 'run/vfio-isolate/irqbalance.env'), /^IRQBALANCE_BANNED_CPULIST=8-15,24-31$/m);
    assert.match(sd.calls().join('\n') + '\n', /daemon-reload\ntry-restart irqbalance.service\n$/);
    assert.equal((await cli(root, ['release'], env)).code, 0);
    assert.equal(sysExists(root, 'run/systemd/system/irqbalance.service.d/50-vfio-isolate.conf'), false);
    assert.equal(sysExists(root, 'run/vfio-isolate/irqbalance.env'), false);
    assert.deepEqual(diffTrees(before, treeFiles(root)), []);
    // reset clears a ban left behind (journal lost)
    assert.equal((await cli(root, ['isolate', '--irqbalance-ban', 'C8-15,24-31'], env)).code, 0);
    fs.rmSync(path.join(root, 'run/vfio-isolate/isolate.journal'));
    assert.equal((await cli(root, ['reset'], env)).code, 0);
    assert.equal(sysExists(root, 'run/systemd/system/irqbalance.service.d/50-vfio-isolate.conf'), false);
    assert.match(sd.calls().join('\n') + '\n', /daemon-reload\ntry-restart irqbalance.service\n$/);
  });

  it("a systemctl call for irqbalance that fails says systemctl's reason, and the run is rolled back", async () => {
    const root = buildFixture('ryzen-5950x');
    fs.mkdirSync(path.join(root, 'etc/default'), { recursive: true });
    const sd = fakeSystemd(root);
    const flaky = flakySystemctl(sd);
    const before = treeFiles(root);
    const why = /Failed to set unit properties: Transport endpoint is not connected/;
    flaky.arm('stop irqbalance.service', 0, 1);
    let r = await cli(root, ['isolate', '--stop-irqbalance', 'C8-15,24-31'], flaky.env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /systemctl stop irqbalance\.service failed: /);
    assert.match(r.stderr, why);
    assert.deepEqual(diffTrees(before, treeFiles(root)), [], 'rolled back');
    flaky.arm('try-restart irqbalance.service', 0, 1);
    r = await cli(root, ['isolate', '--irqbalance-ban', 'C8-15,24-31'], flaky.env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /systemctl try-restart irqbalance\.service failed: /);
    assert.match(r.stderr, why);
    assert.deepEqual(diffTrees(before, treeFiles(root)), [], 'rolled back');
  });

  it('optional steps: governor on the VM CPUs, stat_interval, and --no-irqs leaves IRQs alone', async () => {
    const root = buildFixture('ryzen-5950x');
    const irq5 = sysRead(root, 'proc/irq/5/smp_affinity_list');
    const r = await cli(root, [
      'isolate',
      '--governor',
      'performance',
      '--stat-interval',
      '10',
      '--no-irqs',
      'C8-15,24-31',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sysRead(root, 'sys/devices/system/cpu/cpu8/cpufreq/scaling_governor'), 'performance');
    assert.equal(sysRead(root, 'sys/devices/system/cpu/cpu0/cpufreq/scaling_governor'), 'schedutil');
    assert.equal(sysRead(root, 'proc/sys/vm/stat_interval'), '10');
    assert.equal(sysRead(root, 'proc/irq/5/smp_affinity_list'), irq5);
  });
});

describe('isolate on cgroup v1 (Intel 6c/12t)', () => {
  it('creates /host.slice, moves every movable task into it; release restores the tree', async () => {
    const root = buildFixture('intel-6c12t');
    const before = treeFiles(root);
    const r = await cli(root, ['isolate', 'S2-5']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sysRead(root, `${CG}/cpuset/host.slice/cpuset.cpus`), '0-1,6-7');
    const left = sysRead(root, `${CG}/cpuset/tasks`).split('\n').filter(Boolean).map(Number);
    for (const tid of left)
      assert.ok(statFlags(root, tid) & 0x04000000, `task ${tid} left in the root must be pinned`);
    assert.equal((await cli(root, ['release'])).code, 0);
    assert.deepEqual(diffTrees(before, treeFiles(root)), []);
  });
});

describe('isolate refuses bad input before any change', () => {
  const cases: [string, string[], RegExp][] = [
    ['CPU 0', ['isolate', 'C0-3'], /CPU 0 would go to the VM/],
    ['every CPU, even with --force', ['--force', 'isolate', 'C0-31'], /leaving none for the host/],
    ['no CPUs at all', ['isolate'], /which CPUs should the VM get/],
    ['both VMCPUS and --host', ['isolate', '--host', 'C0-7', 'C8-15'], /either VMCPUS or --host/],
    ['a CPU that does not exist', ['isolate', 'C8-40'], /do not exist/],
    ['a bad stat interval', ['isolate', '--stat-interval', 'x', 'C8-15'], /--stat-interval takes a number/],
  ];
  for (const [name, argv, re] of cases) {
    it(name, async () => {
      const root = buildFixture('ryzen-5950x');
      const h = treeHash(root);
      const r = await cli(root, argv);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, re);
      assert.equal(treeHash(root), h);
      assert.deepEqual(simWrites(root), []);
    });
  }
  it('--force allows CPU 0', async () => {
    const root = buildFixture('ryzen-5950x');
    assert.equal((await cli(root, ['--force', 'isolate', '--no-cgroups', 'C0-3'])).code, 0);
  });
});

describe('reset', () => {
  it('without a journal, puts cgroups, kthreads, workqueues and IRQs back to the defaults', async () => {
    const root = buildFixture('ryzen-5950x');
    assert.equal((await cli(root, ['isolate', 'C8-15,24-31'])).code, 0);
    fs.rmSync(path.join(root, 'run/vfio-isolate/isolate.journal'));
    const plan = await cli(root, ['-n', 'reset']);
    assert.equal(plan.code, 0);
    assert.match(plan.stdout, /Plan \(dry run/);
    const r = await cli(root, ['reset']);
    assert.equal(r.code, 0, r.stderr);
    // user.slice has tasks: the kernel does not let it go back to "" (ENOSPC), so it gets every CPU explicitly
    assert.equal(sysRead(root, `${CG}/user.slice/cpuset.cpus`), '0-31');
    assert.equal(sysRead(root, `${CG}/user.slice/cpuset.cpus.effective`), '0-31');
    assert.equal(sysRead(root, 'sys/devices/virtual/workqueue/cpumask'), 'ffffffff');
    assert.equal(allowedOf(root, 2).toList(), '0-31');
    assert.equal(CpuSet.parseMask(sysRead(root, 'proc/irq/default_smp_affinity')).toList(), '0-31');
  });
});
