import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { pathToFileURL } from 'node:url';
import { ErrnoError } from '../../src/kernel/fs.ts';
import { SimFs, readSimLog } from '../support/simfs.ts';
import {
  buildFixture,
  exitProcess,
  fixtureModel,
  removeFixture,
  type FixtureOptions,
  type MachineName,
} from '../fixtures/build.ts';

const CG = '/sys/fs/cgroup';
const V1 = '/sys/fs/cgroup/cpuset';

function fresh(t: TestContext, name: MachineName, opts: FixtureOptions = {}): { root: string; s: SimFs } {
  const root = buildFixture(name, opts);
  t.after(() => removeFixture(root));
  return { root, s: new SimFs(root) };
}
function pidOf(name: MachineName, comm: string, opts: FixtureOptions = {}): number {
  const p = fixtureModel(name, opts).procs.find((x) => x.comm === comm);
  assert.ok(p, `no ${comm} on ${name}`);
  return p.pid;
}
function ids(s: SimFs, file: string): number[] {
  return s.read(file).split('\n').filter(Boolean).map(Number);
}
function allowed(s: SimFs, statusPath: string): string {
  return /^Cpus_allowed_list:\t(.*)$/m.exec(s.read(statusPath))?.[1] ?? '?';
}
function mask(s: SimFs, statusPath: string): string {
  return /^Cpus_allowed:\t(.*)$/m.exec(s.read(statusPath))?.[1] ?? '?';
}
function statField(s: SimFs, p: string, n: number): string {
  const text = s.read(p);
  return text
    .slice(text.lastIndexOf(')') + 2)
    .trim()
    .split(' ')[n - 3]!;
}
function code(c: string): { code: string } {
  return { code: c };
}

describe('SimFs paths', () => {
  it('follows relative symlinks inside the root: cpufreq, /proc/self, /proc/mounts', (t) => {
    const { s } = fresh(t, 'ryzen-5950x');
    assert.equal(
      s.realpath('/sys/devices/system/cpu/cpu3/cpufreq'),
      '/sys/devices/system/cpu/cpufreq/policy3',
    );
    assert.equal(
      s.realpath('/sys/devices/system/cpu/cpu3/cpufreq/scaling_governor'),
      '/sys/devices/system/cpu/cpufreq/policy3/scaling_governor',
    );
    assert.equal(s.realpath('/proc/self'), '/proc/1512');
    assert.equal(s.realpath('/proc/mounts'), '/proc/1512/mounts');
    assert.match(s.read('/proc/mounts'), /^cgroup2 \/sys\/fs\/cgroup cgroup2 /m);
    assert.equal(
      s.realpath('/sys/bus/workqueue/devices/writeback'),
      '/sys/devices/virtual/workqueue/writeback',
    );
    assert.equal(s.isDir('/proc/self'), true);
    const self = s.list('/proc').find((e) => e.name === 'self')!;
    assert.deepEqual(self, { name: 'self', isDir: false, isSymlink: true });
  });

  it('re-roots absolute symlinks: a link to /etc/passwd never reaches the host file', (t) => {
    const { root, s } = fresh(t, 'v2-nocpuset');
    fs.symlinkSync('/etc/passwd', path.join(root, 'run/passwd'));
    fs.symlinkSync('/etc', path.join(root, 'run/etc'));
    fs.symlinkSync('/', path.join(root, 'run/slash'));
    assert.ok(fs.existsSync('/etc/passwd'), 'the host has the file');
    assert.equal(s.exists('/run/passwd'), false);
    assert.throws(() => s.read('/run/passwd'), code('ENOENT'));
    assert.throws(() => s.write('/run/passwd', 'x'), code('ENOENT'));
    assert.equal(s.realpath('/run/etc'), '/etc');
    assert.deepEqual(
      s.list('/run/etc').map((e) => e.name),
      ['libvirt'],
    );
    assert.deepEqual(
      s
        .list('/run/slash')
        .map((e) => e.name)
        .sort(),
      s
        .list('/')
        .map((e) => e.name)
        .sort(),
    );
    assert.equal(s.realpath('/run/slash/proc/self'), '/proc/1512');
  });

  it('clamps .. at the root, also inside relative link targets', (t) => {
    const { root, s } = fresh(t, 'v2-nocpuset');
    assert.equal(s.realpath('/../../proc/../../sys/..'), '/');
    assert.equal(s.read('/../../../proc/cmdline'), fs.readFileSync(path.join(root, 'proc/cmdline'), 'utf8'));
    fs.symlinkSync('../../../../../../../../../etc', path.join(root, 'run/up'));
    assert.equal(s.realpath('/run/up'), '/etc');
    assert.equal(s.realpath('/run/up/libvirt/hooks'), '/etc/libvirt/hooks');
    assert.equal(s.realpath('sys//devices/./system/cpu/'), '/sys/devices/system/cpu');
    // `..` is physical: it leaves the link target, not the link
    assert.equal(
      s.realpath('/sys/devices/system/cpu/cpu1/cpufreq/../policy2'),
      '/sys/devices/system/cpu/cpufreq/policy2',
    );
  });

  it('reports ELOOP, ENOENT and ENOTDIR', (t) => {
    const { root, s } = fresh(t, 'v2-nocpuset');
    fs.symlinkSync('b', path.join(root, 'run/a'));
    fs.symlinkSync('a', path.join(root, 'run/b'));
    assert.throws(() => s.realpath('/run/a'), code('ELOOP'));
    assert.throws(() => s.read('/run/a'), code('ELOOP'));
    assert.throws(() => s.realpath('/nope/x'), code('ENOENT'));
    assert.throws(() => s.read('/proc/cmdline/x'), code('ENOTDIR'));
    assert.throws(() => s.list('/proc/cmdline'), code('ENOTDIR'));
    assert.throws(
      () => new SimFs(path.join(root, 'does-not-exist')),
      (e: unknown) => e instanceof ErrnoError && e.code === 'ENOENT',
    );
  });

  it('hides .sim-* bookkeeping files from list, read and exists', (t) => {
    const { s } = fresh(t, 'ryzen-5950x');
    s.write('/proc/sys/vm/drop_caches', '3');
    assert.ok(!s.list('/proc/irq/0').some((e) => e.name.startsWith('.sim-')));
    assert.ok(!s.list('/').some((e) => e.name.startsWith('.sim-')));
    assert.equal(s.exists('/proc/irq/0/.sim-refuse'), false);
    assert.throws(() => s.read('/proc/irq/0/.sim-refuse'), code('ENOENT'));
    assert.throws(() => s.read('/.sim-log'), code('ENOENT'));
    assert.throws(() => s.mkdir('/run/.sim-x'), code('EPERM'));
  });

  it('resolves /proc/TID of a non-leader thread to its task dir; /proc lists only processes', (t) => {
    const { s } = fresh(t, 'ryzen-5950x');
    assert.equal(s.exists('/proc/2403'), true);
    assert.equal(s.read('/proc/2403/comm'), 'CPU 0/KVM\n');
    assert.equal(s.realpath('/proc/2403'), '/proc/2400/task/2403');
    assert.match(s.read('/proc/2403/status'), /^Tgid:\t2400$/m);
    const pids = s.list('/proc').map((e) => e.name);
    assert.ok(pids.includes('2400') && !pids.includes('2403'));
    assert.equal(s.exists('/proc/99999'), false);
  });
});

describe('SimFs plain writes and read-only files', () => {
  it('never creates files; EISDIR for directories; plain files take the value as written', (t) => {
    const { root, s } = fresh(t, 'v2-nocpuset');
    assert.throws(() => s.write('/proc/sys/vm/nope', '1'), code('ENOENT'));
    assert.equal(fs.existsSync(path.join(root, 'proc/sys/vm/nope')), false);
    assert.throws(() => s.write('/sys/fs/cgroup/user.slice', '1'), code('EISDIR'));
    assert.throws(() => s.openWriter('/proc/sys/vm/nope'), code('ENOENT'));
    // an integer sysctl reads back as the number and a newline, as the kernel prints it
    s.write('/proc/sys/vm/stat_interval', '10');
    assert.equal(s.read('/proc/sys/vm/stat_interval'), '10\n');
    assert.throws(() => s.write('/proc/sys/vm/stat_interval', 'ten'), code('EINVAL'));
    s.write('/proc/sys/kernel/timer_migration', '0\n');
    assert.equal(s.read('/proc/sys/kernel/timer_migration'), '0\n');
  });

  it('refuses writes to derived and read-only files with the kernel errno, leaving them unchanged', (t) => {
    const { s } = fresh(t, 'ryzen-5950x');
    const cases: [string, string][] = [
      [`${CG}/user.slice/cpuset.cpus.effective`, 'EACCES'],
      [`${CG}/user.slice/cgroup.controllers`, 'EACCES'],
      [`${CG}/cpuset.cpus.isolated`, 'EACCES'],
      ['/sys/devices/system/cpu/online', 'EACCES'],
      ['/sys/devices/system/cpu/cpu2/topology/core_id', 'EACCES'],
      ['/sys/devices/system/cpu/cpufreq/policy0/scaling_available_governors', 'EACCES'],
      ['/proc/1/stat', 'EINVAL'],
      ['/proc/1600/task/1601/status', 'EINVAL'],
      ['/proc/irq/9/effective_affinity_list', 'EIO'],
      ['/proc/interrupts', 'EIO'],
    ];
    for (const [p, errno] of cases) {
      const before = s.read(p);
      assert.throws(() => s.write(p, '0'), code(errno), p);
      assert.equal(s.read(p), before);
    }
  });

  it('logs every write/mkdir/rmdir attempt with its errno, never reads', (t) => {
    const { root, s } = fresh(t, 'ryzen-5950x');
    s.read('/proc/sys/vm/drop_caches');
    assert.deepEqual(readSimLog(root), []);
    s.write('/proc/sys/vm/drop_caches', '3');
    assert.throws(() => s.write('/proc/irq/0/smp_affinity_list', '1'));
    s.mkdir(`${CG}/my slice`);
    s.write(`${CG}/my slice/cpuset.cpus`, '0-3\n');
    assert.throws(() => s.mkdir(`${CG}/my slice`));
    s.rmdir(`${CG}/my slice`);
    s.setAffinity(1600, [0, 1]);
    s.setScheduler(1600, 1, 10);
    assert.deepEqual(readSimLog(root), [
      { op: 'write', path: '/proc/sys/vm/drop_caches', value: '3' },
      { op: 'write', path: '/proc/irq/0/smp_affinity_list', value: '1', error: 'EIO' },
      { op: 'mkdir', path: `${CG}/my slice` },
      { op: 'write', path: `${CG}/my slice/cpuset.cpus`, value: '0-3\n' },
      { op: 'mkdir', path: `${CG}/my slice`, error: 'EEXIST' },
      { op: 'rmdir', path: `${CG}/my slice` },
      { op: 'setaffinity', path: '/proc/1600', value: '0-1' },
      { op: 'setscheduler', path: '/proc/1600', value: '1 10' },
    ]);
    assert.match(
      fs.readFileSync(path.join(root, '.sim-log'), 'utf8'),
      /^mkdir \/sys\/fs\/cgroup\/my\\040slice$/m,
    );
  });

  it('keeps state in files only: a second instance and another process see the same machine', (t) => {
    const { root, s } = fresh(t, 'v2-nocpuset');
    s.write(`${CG}/cgroup.subtree_control`, '+cpuset');
    const other = new SimFs(root);
    assert.ok(other.exists(`${CG}/user.slice/cpuset.cpus`));
    const script = [
      `import { SimFs } from ${JSON.stringify(pathToFileURL(path.resolve(import.meta.dirname, '../support/simfs.ts')).href)};`,
      `const s = new SimFs(${JSON.stringify(root)});`,
      `s.write('${CG}/user.slice/cpuset.cpus', '0-3');`,
      `process.stdout.write(s.read('${CG}/user.slice/cpuset.cpus.effective'));`,
    ].join('\n');
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '0-3\n');
    assert.equal(s.read(`${CG}/user.slice/cpuset.cpus.effective`), '0-3\n');
    assert.deepEqual(
      s.getAffinity(1512),
      [0, 1, 2, 3],
      'the child process moved the affinity of tasks in user.slice',
    );
    assert.equal(readSimLog(root).length, 2);
  });
});

describe('SimFs cgroup v2 attach (cgroup.procs)', () => {
  it('moves a whole process: lists, /proc/PID/cgroup and every thread affinity follow', (t) => {
    const { s } = fresh(t, 'ryzen-5950x');
    const from = `${CG}/user.slice/user-1000.slice/user@1000.service/app.slice/app-firefox-4242.scope`;
    s.mkdir(`${CG}/host.slice`);
    s.write(`${CG}/host.slice/cpuset.cpus`, '0-7,16-23');
    s.write(`${CG}/host.slice/cgroup.procs`, '1600\n');
    assert.deepEqual(ids(s, `${CG}/host.slice/cgroup.procs`), [1600]);
    assert.deepEqual(ids(s, `${from}/cgroup.procs`), []);
    assert.equal(s.read('/proc/1600/cgroup'), '0::/host.slice\n');
    for (let tid = 1600; tid <= 1606; tid++)
      assert.equal(allowed(s, `/proc/1600/task/${tid}/status`), '0-7,16-23');
    assert.equal(allowed(s, '/proc/1600/status'), '0-7,16-23');
    assert.equal(mask(s, '/proc/1600/status'), '00ff00ff');
    assert.ok(
      [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23].includes(
        Number(statField(s, '/proc/1600/stat', 39)),
      ),
    );
  });

  it('a thread id moves its whole thread group; pid 0 means the writer (/proc/self)', (t) => {
    const { s } = fresh(t, 'ryzen-5950x');
    s.mkdir(`${CG}/host.slice`);
    s.write(`${CG}/host.slice/cgroup.procs`, '2404');
    assert.deepEqual(ids(s, `${CG}/host.slice/cgroup.procs`), [2400]);
    assert.deepEqual(ids(s, `${CG}/machine.slice/machine-qemu\\x2d1\\x2dwin10.scope/cgroup.procs`), []);
    s.write(`${CG}/host.slice/cgroup.procs`, '0');
    assert.deepEqual(ids(s, `${CG}/host.slice/cgroup.procs`), [2400, 1512]);
  });

  it('errors: ESRCH, EINVAL (per-CPU kthread, bad value), EBUSY (domain controllers in subtree_control)', (t) => {
    const { s } = fresh(t, 'ryzen-5950x');
    const ksoftirqd = pidOf('ryzen-5950x', 'ksoftirqd/3');
    s.mkdir(`${CG}/host.slice`);
    const file = `${CG}/host.slice/cgroup.procs`;
    assert.throws(() => s.write(file, '99999'), code('ESRCH'));
    assert.throws(() => s.write(file, String(ksoftirqd)), code('EINVAL'));
    assert.throws(
      () => s.write(`${CG}/cgroup.procs`, String(ksoftirqd)),
      code('EINVAL'),
      'not even to the root',
    );
    const unbound = pidOf('ryzen-5950x', 'kworker/u64:0');
    assert.throws(
      () => s.write(file, String(unbound)),
      code('EINVAL'),
      'workqueue workers are PF_NO_SETAFFINITY',
    );
    assert.throws(() => s.write(file, '1600 1601'), code('EINVAL'));
    assert.throws(() => s.write(file, 'abc'), code('EINVAL'));
    assert.throws(() => s.write(file, '-5'), code('EINVAL'));
    assert.throws(() => s.write(`${CG}/system.slice/cgroup.procs`, '1600'), code('EBUSY'));
    assert.deepEqual(ids(s, file), []);
    s.write(file, String(pidOf('ryzen-5950x', 'rcu_preempt')));
    s.write(file, '0x640');
    assert.deepEqual(ids(s, file), [pidOf('ryzen-5950x', 'rcu_preempt'), 1600]);
  });

  it('a process that exited is gone from the lists and fails with ESRCH (exitProcess helper)', (t) => {
    const { root, s } = fresh(t, 'hybrid-v1v2');
    exitProcess(root, 1520);
    assert.equal(s.exists('/proc/1520'), false);
    assert.ok(!ids(s, '/sys/fs/cgroup/cpuset/tasks').includes(1520));
    assert.ok(!ids(s, '/sys/fs/cgroup/systemd/cgroup.procs').includes(1520));
    const scope =
      '/sys/fs/cgroup/unified/user.slice/user-1000.slice/user@1000.service/app.slice/tmux-spawn-3b1c.scope';
    assert.deepEqual(ids(s, `${scope}/cgroup.procs`), []);
    assert.throws(() => s.write('/sys/fs/cgroup/cpuset/tasks', '1520'), code('ESRCH'));
    assert.throws(() => s.getAffinity(1520), code('ESRCH'));
  });

  it('ENOSPC when the destination has no effective CPUs', (t) => {
    const { root, s } = fresh(t, 'ryzen-5950x');
    s.mkdir(`${CG}/empty`);
    fs.writeFileSync(path.join(root, 'sys/fs/cgroup/empty/cpuset.cpus.effective'), '\n'); // a state only hotplug makes
    assert.throws(() => s.write(`${CG}/empty/cgroup.procs`, '1600'), code('ENOSPC'));
  });

  it('openWriter takes one id per write and survives a failing one', (t) => {
    const { root, s } = fresh(t, 'ryzen-5950x');
    s.mkdir(`${CG}/host.slice`);
    const w = s.openWriter(`${CG}/host.slice/cgroup.procs`);
    w.write('1600');
    assert.throws(() => w.write('424242'), code('ESRCH'));
    w.write('2400');
    w.close();
    assert.deepEqual(ids(s, `${CG}/host.slice/cgroup.procs`), [1600, 2400]);
    assert.equal(readSimLog(root).filter((e) => e.path.endsWith('/host.slice/cgroup.procs')).length, 3);
  });

  it('hybrid: moving in the cpuset v1 hierarchy changes affinity; name=systemd moves only its own line', (t) => {
    const { s } = fresh(t, 'tr-1920x');
    s.mkdir(`${V1}/host`);
    s.write(`${V1}/host/cpuset.cpus`, '0-5,12-17');
    s.write(`${V1}/host/cpuset.mems`, '0');
    s.write(`${V1}/host/cgroup.procs`, '780');
    assert.equal(
      s.read('/proc/780/cgroup'),
      '2:cpuset:/host\n1:name=systemd:/system.slice/libvirtd.service\n0::/system.slice/libvirtd.service\n',
    );
    assert.equal(allowed(s, '/proc/780/task/782/status'), '0-5,12-17');
    s.mkdir('/sys/fs/cgroup/systemd/x');
    s.write('/sys/fs/cgroup/systemd/x/cgroup.procs', '1600');
    assert.equal(
      s.read('/proc/1600/cgroup'),
      '2:cpuset:/\n1:name=systemd:/x\n0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-firefox-7311.scope\n',
    );
    assert.equal(allowed(s, '/proc/1600/status'), '0-31', 'non-cpuset hierarchies do not touch affinity');
    assert.ok(!s.exists('/sys/fs/cgroup/systemd/x/cpuset.cpus'));
  });
});

describe('SimFs cgroup v1 (tasks, cpusets)', () => {
  it('a new cpuset starts empty and refuses tasks with ENOSPC until cpus and mems are set', (t) => {
    const { s } = fresh(t, 'intel-6c12t');
    s.mkdir(`${V1}/host`);
    assert.equal(s.read(`${V1}/host/cpuset.cpus`), '\n');
    assert.equal(s.read(`${V1}/host/cpuset.cpu_exclusive`), '0\n');
    assert.equal(s.read(`${V1}/host/cpuset.sched_load_balance`), '1\n');
    assert.equal(s.read(`${V1}/host/tasks`), '');
    assert.throws(() => s.write(`${V1}/host/tasks`, '1102'), code('ENOSPC'));
    s.write(`${V1}/host/cpuset.cpus`, '0-5');
    assert.throws(() => s.write(`${V1}/host/tasks`, '1102'), code('ENOSPC'));
    s.write(`${V1}/host/cpuset.mems`, '0');
    s.write(`${V1}/host/tasks`, '1102');
    assert.deepEqual(ids(s, `${V1}/host/tasks`), [1102]);
    assert.ok(!ids(s, `${V1}/tasks`).includes(1102));
    assert.equal(allowed(s, '/proc/1102/status'), '0-5');
  });

  it('tasks moves one thread; cgroup.procs lists every process with a thread there; cgroup.procs moves all', (t) => {
    const { s } = fresh(t, 'intel-6c12t');
    s.mkdir(`${V1}/host`);
    s.write(`${V1}/host/cpuset.cpus`, '0-5');
    s.write(`${V1}/host/cpuset.mems`, '0');
    s.write(`${V1}/host/tasks`, '1201');
    assert.deepEqual(ids(s, `${V1}/host/tasks`), [1201]);
    assert.deepEqual(ids(s, `${V1}/host/cgroup.procs`), [1200]);
    assert.ok(ids(s, `${V1}/cgroup.procs`).includes(1200), 'the leader is still in the root');
    assert.equal(s.read('/proc/1200/cgroup'), '1:cpuset:/\n');
    assert.equal(allowed(s, '/proc/1200/task/1201/status'), '0-5');
    assert.equal(allowed(s, '/proc/1200/task/1200/status'), '0-11');
    s.write(`${V1}/host/cgroup.procs`, '1200');
    assert.deepEqual(
      ids(s, `${V1}/host/tasks`).sort((a, b) => a - b),
      [1200, 1201, 1202, 1203, 1204, 1205, 1206],
    );
    assert.ok(!ids(s, `${V1}/cgroup.procs`).includes(1200));
    assert.ok(!ids(s, `${V1}/tasks`).includes(1203));
    assert.equal(s.read('/proc/1200/cgroup'), '1:cpuset:/host\n');
    s.write(`${V1}/tasks`, '1205');
    assert.deepEqual(ids(s, `${V1}/host/cgroup.procs`), [1200]);
    assert.ok(ids(s, `${V1}/cgroup.procs`).includes(1200));
    assert.equal(allowed(s, '/proc/1205/status'), '0-11', 'thread 1205 back in the root');
  });

  it('per-CPU kthreads: EINVAL; gone tasks: ESRCH', (t) => {
    const { s } = fresh(t, 'intel-6c12t');
    s.mkdir(`${V1}/host`);
    s.write(`${V1}/host/cpuset.cpus`, '0-5');
    s.write(`${V1}/host/cpuset.mems`, '0');
    assert.throws(
      () => s.write(`${V1}/host/tasks`, String(pidOf('intel-6c12t', 'migration/4'))),
      code('EINVAL'),
    );
    assert.throws(() => s.write(`${V1}/host/tasks`, '31337'), code('ESRCH'));
    s.write(`${V1}/host/tasks`, String(pidOf('intel-6c12t', 'khugepaged')));
  });

  it('validates cpus/mems like the kernel: EACCES root and non-subset, EINVAL offline/garbage, EBUSY children', (t) => {
    const { s } = fresh(t, 'intel-6c12t');
    assert.throws(() => s.write(`${V1}/cpuset.cpus`, '0-3'), code('EACCES'));
    assert.throws(() => s.write(`${V1}/cpuset.mems`, '0'), code('EACCES'));
    s.mkdir(`${V1}/a`);
    assert.throws(() => s.write(`${V1}/a/cpuset.cpus`, '0-12'), code('EINVAL'));
    assert.throws(() => s.write(`${V1}/a/cpuset.cpus`, 'zero'), code('EINVAL'));
    assert.throws(() => s.write(`${V1}/a/cpuset.mems`, '1'), code('EINVAL'));
    s.write(`${V1}/a/cpuset.cpus`, '0-3');
    s.write(`${V1}/a/cpuset.mems`, '0');
    s.mkdir(`${V1}/a/b`);
    assert.throws(() => s.write(`${V1}/a/b/cpuset.cpus`, '4'), code('EACCES'));
    s.write(`${V1}/a/b/cpuset.cpus`, '2-3');
    assert.throws(() => s.write(`${V1}/a/cpuset.cpus`, '0-1'), code('EBUSY'));
    assert.equal(s.read(`${V1}/a/cpuset.cpus`), '0-3\n');
    assert.equal(s.read(`${V1}/a/cpuset.effective_cpus`), '0-3\n');
  });

  it('exclusive cpusets: siblings may not overlap (EINVAL); exclusive needs an exclusive parent (EACCES)', (t) => {
    const { s } = fresh(t, 'intel-6c12t');
    for (const n of ['vm', 'host']) s.mkdir(`${V1}/${n}`);
    s.write(`${V1}/vm/cpuset.cpus`, '3-5,9-11');
    s.write(`${V1}/vm/cpuset.cpu_exclusive`, '1');
    assert.throws(
      () => s.write(`${V1}/host/cpuset.cpus`, '0-11'),
      code('EINVAL'),
      'the 0.5.2 copy-parent bug',
    );
    s.write(`${V1}/host/cpuset.cpus`, '0-2,6-8');
    s.mkdir(`${V1}/misc`);
    s.write(`${V1}/misc/cpuset.cpus`, '0-1');
    assert.throws(() => s.write(`${V1}/host/cpuset.cpu_exclusive`, '1'), code('EINVAL'), 'overlaps misc');
    assert.equal(s.read(`${V1}/host/cpuset.cpu_exclusive`), '0\n');
    s.write(`${V1}/misc/cpuset.cpus`, '\n');
    s.write(`${V1}/host/cpuset.cpu_exclusive`, '1');
    s.write(`${V1}/host/cpuset.cpu_exclusive`, '0');
    s.mkdir(`${V1}/host/sub`);
    s.write(`${V1}/host/sub/cpuset.cpus`, '0');
    assert.throws(() => s.write(`${V1}/host/sub/cpuset.cpu_exclusive`, '1'), code('EACCES'));
    assert.throws(() => s.write(`${V1}/host/cpuset.memory_migrate`, 'yes'), code('EINVAL'));
    s.write(`${V1}/host/cpuset.memory_migrate`, '2');
    assert.equal(s.read(`${V1}/host/cpuset.memory_migrate`), '1\n');
  });

  it('emptying a populated cpuset fails with ENOSPC; cpus changes re-affine its tasks (user mask dropped < 6.2)', (t) => {
    const { root, s } = fresh(t, 'intel-6c12t');
    s.mkdir(`${V1}/host`);
    s.write(`${V1}/host/cpuset.cpus`, '0-5');
    s.write(`${V1}/host/cpuset.mems`, '0');
    s.setAffinity(1102, [2]);
    assert.ok(
      !fs.existsSync(path.join(root, 'proc/1102/task/1102/.sim-user-affinity')),
      '5.10 keeps no user mask',
    );
    s.write(`${V1}/host/tasks`, '1102');
    assert.equal(allowed(s, '/proc/1102/status'), '0-5');
    assert.throws(() => s.write(`${V1}/host/cpuset.cpus`, '\n'), code('ENOSPC'));
    s.write(`${V1}/host/cpuset.cpus`, '1-2');
    assert.equal(allowed(s, '/proc/1102/status'), '1-2');
  });

  it('clone_children copies the parent cpus/mems into a new cpuset', (t) => {
    const { s } = fresh(t, 'intel-6c12t');
    s.write(`${V1}/cgroup.clone_children`, '1');
    s.mkdir(`${V1}/c`);
    assert.equal(s.read(`${V1}/c/cpuset.cpus`), '0-11\n');
    assert.equal(s.read(`${V1}/c/cpuset.mems`), '0\n');
  });
});

describe('SimFs cgroup v2 subtree_control', () => {
  it('enables cpuset top-down: ENOENT below a parent without it; files appear in every child', (t) => {
    const { s } = fresh(t, 'v2-nocpuset');
    assert.throws(() => s.write(`${CG}/system.slice/cgroup.subtree_control`, '+cpuset'), code('ENOENT'));
    assert.throws(
      () => s.write(`${CG}/user.slice/cgroup.subtree_control`, '+cpuset'),
      code('ENOENT'),
      'the 0.5.2 ensure bug (#8)',
    );
    s.write(`${CG}/cgroup.subtree_control`, '+cpuset');
    assert.equal(s.read(`${CG}/cgroup.subtree_control`), 'cpuset cpu io memory pids\n');
    for (const slice of ['init.scope', 'system.slice', 'user.slice', 'machine.slice']) {
      assert.equal(s.read(`${CG}/${slice}/cgroup.controllers`), 'cpuset cpu io memory pids\n');
      assert.equal(s.read(`${CG}/${slice}/cpuset.cpus`), '\n');
      assert.equal(s.read(`${CG}/${slice}/cpuset.cpus.effective`), '0-7\n');
      assert.equal(s.read(`${CG}/${slice}/cpuset.mems.effective`), '0\n');
      assert.equal(s.read(`${CG}/${slice}/cpuset.cpus.partition`), 'member\n');
      assert.equal(
        s.exists(`${CG}/${slice}/cpuset.cpus.exclusive`),
        false,
        '6.1 has no cpuset.cpus.exclusive',
      );
    }
    assert.equal(s.exists(`${CG}/system.slice/ssh.service/cpuset.cpus`), false);
    s.write(`${CG}/user.slice/cgroup.subtree_control`, '+cpuset');
    assert.equal(s.read(`${CG}/user.slice/cgroup.subtree_control`), 'cpuset memory pids\n');
    assert.equal(s.read(`${CG}/user.slice/user-1000.slice/cpuset.cpus.effective`), '0-7\n');
  });

  it('disabling: EBUSY while a child still enables it; removes the files afterwards', (t) => {
    const { s } = fresh(t, 'v2-nocpuset');
    s.write(`${CG}/cgroup.subtree_control`, '+cpuset');
    s.write(`${CG}/user.slice/cgroup.subtree_control`, '+cpuset');
    assert.throws(() => s.write(`${CG}/cgroup.subtree_control`, '-cpuset'), code('EBUSY'));
    s.write(`${CG}/user.slice/cgroup.subtree_control`, '-cpuset');
    assert.equal(s.exists(`${CG}/user.slice/user-1000.slice/cpuset.cpus`), false);
    assert.equal(s.read(`${CG}/user.slice/user-1000.slice/cgroup.controllers`), 'memory pids\n');
    s.write(`${CG}/cgroup.subtree_control`, '-cpuset');
    assert.equal(s.exists(`${CG}/user.slice/cpuset.cpus`), false);
    assert.equal(s.read(`${CG}/cgroup.subtree_control`), 'cpu io memory pids\n');
  });

  it('rejects bad tokens with EINVAL, all or nothing; domain controllers on a populated leaf: EBUSY', (t) => {
    const { s } = fresh(t, 'v2-nocpuset');
    const f = `${CG}/cgroup.subtree_control`;
    assert.throws(() => s.write(f, '+bogus'), code('EINVAL'));
    assert.throws(() => s.write(f, 'cpuset'), code('EINVAL'));
    assert.throws(() => s.write(f, '+cpuset +nope'), code('EINVAL'));
    assert.equal(s.read(f), 'cpu io memory pids\n');
    const leaf = `${CG}/system.slice/ssh.service/cgroup.subtree_control`;
    assert.throws(() => s.write(leaf, '+memory'), code('EBUSY'));
    s.write(leaf, '+pids');
    assert.equal(s.read(leaf), 'pids\n');
  });

  it('hybrid: the controller-less unified hierarchy offers no cpuset (ENOENT)', (t) => {
    const { s } = fresh(t, 'tr-1920x');
    assert.throws(() => s.write('/sys/fs/cgroup/unified/cgroup.subtree_control', '+cpuset'), code('ENOENT'));
  });
});

describe('SimFs cgroup v2 cpusets and partitions', () => {
  it('cpuset.cpus: EINVAL outside possible or unparsable; empty inherits; descendants and their tasks follow', (t) => {
    const { s } = fresh(t, 'ryzen-5950x');
    const f = `${CG}/system.slice/cpuset.cpus`;
    assert.throws(() => s.write(f, '0-40'), code('EINVAL'));
    assert.throws(() => s.write(f, 'a-b'), code('EINVAL'));
    assert.throws(() => s.write(`${CG}/system.slice/cpuset.mems`, '1'), code('EINVAL'));
    s.write(f, '7,0-3\n');
    assert.equal(s.read(f), '0-3,7\n');
    assert.equal(s.read(`${CG}/system.slice/cpuset.cpus.effective`), '0-3,7\n');
    assert.equal(allowed(s, '/proc/800/status'), '0-3,7', 'sshd in system.slice/ssh.service');
    assert.equal(allowed(s, '/proc/780/task/783/status'), '0-3,7');
    assert.equal(allowed(s, '/proc/1600/status'), '0-31', 'user.slice untouched');
    // A populated cgroup cannot go back to "" (ENOSPC, as validate_change() on 6.12); an empty one can.
    assert.throws(() => s.write(f, '\n'), code('ENOSPC'));
    s.write(f, '0-31');
    assert.equal(s.read(`${CG}/system.slice/cpuset.cpus.effective`), '0-31\n');
    assert.equal(allowed(s, '/proc/800/status'), '0-31');
    s.mkdir(`${CG}/empty.slice`);
    s.write(`${CG}/empty.slice/cpuset.cpus`, '0-3');
    s.write(`${CG}/empty.slice/cpuset.cpus`, '\n');
    assert.equal(s.read(`${CG}/empty.slice/cpuset.cpus`), '\n');
    assert.equal(s.read(`${CG}/empty.slice/cpuset.cpus.effective`), '0-31\n');
  });

  it('nested cpusets: effective = configured ∩ parent effective, else the parent effective', (t) => {
    const { s } = fresh(t, 'ryzen-5950x');
    s.mkdir(`${CG}/vm`);
    s.write(`${CG}/vm/cgroup.subtree_control`, '+cpuset');
    s.mkdir(`${CG}/vm/a`);
    s.write(`${CG}/vm/cpuset.cpus`, '8-15');
    s.write(`${CG}/vm/a/cpuset.cpus`, '12-20');
    assert.equal(s.read(`${CG}/vm/a/cpuset.cpus.effective`), '12-15\n');
    s.write(`${CG}/vm/a/cpuset.cpus`, '16-20');
    assert.equal(s.read(`${CG}/vm/a/cpuset.cpus.effective`), '8-15\n');
    s.write(`${CG}/vm/cpuset.cpus`, '\n');
    assert.equal(s.read(`${CG}/vm/a/cpuset.cpus.effective`), '16-20\n');
    s.write(`${CG}/vm/a/cgroup.procs`, '2400');
    assert.equal(allowed(s, '/proc/2400/task/2406/status'), '16-20');
  });

  it('an isolated partition takes its CPUs from the root and the siblings', (t) => {
    const { s } = fresh(t, 'server-2s');
    const vm = `${CG}/machine.slice`;
    s.write(`${vm}/cpuset.cpus`, '16-31,48-63');
    s.write(`${vm}/cpuset.cpus.partition`, 'isolated\n');
    assert.equal(s.read(`${vm}/cpuset.cpus.partition`), 'isolated\n');
    assert.equal(s.read(`${vm}/cpuset.cpus.effective`), '16-31,48-63\n');
    assert.equal(s.read(`${vm}/cpuset.cpus.exclusive.effective`), '16-31,48-63\n');
    assert.equal(s.read(`${CG}/cpuset.cpus.effective`), '0-15,32-47\n');
    assert.equal(s.read(`${CG}/cpuset.cpus.isolated`), '16-31,48-63\n');
    assert.equal(s.read(`${CG}/user.slice/cpuset.cpus.effective`), '0-15,32-47\n');
    assert.equal(allowed(s, '/proc/1512/status'), '0-15,32-47');
    assert.equal(allowed(s, '/proc/2/status'), '0-15,32-47', 'kthreadd (root cgroup) follows the root');
    const ksoftirqd = pidOf('server-2s', 'ksoftirqd/20');
    assert.equal(allowed(s, `/proc/${ksoftirqd}/status`), '20', 'per-CPU kthreads stay');
    s.write(`${vm}/cpuset.cpus.partition`, 'member');
    assert.equal(s.read(`${CG}/cpuset.cpus.effective`), '0-63\n');
    assert.equal(s.read(`${CG}/cpuset.cpus.isolated`), '\n');
    assert.equal(allowed(s, '/proc/1512/status'), '0-63');
    assert.throws(() => s.write(`${vm}/cpuset.cpus.partition`, 'bogus'), code('EINVAL'));
  });

  it('invalid partitions read back "<mode> invalid (<reason>)" and heal when the conflict goes', (t) => {
    const { s } = fresh(t, 'server-2s');
    s.write(`${CG}/user.slice/cpuset.cpus`, '0-31');
    s.write(`${CG}/machine.slice/cpuset.cpus`, '16-31');
    s.write(`${CG}/machine.slice/cpuset.cpus.partition`, 'isolated');
    assert.equal(
      s.read(`${CG}/machine.slice/cpuset.cpus.partition`),
      'isolated invalid (Cpu list in cpuset.cpus not exclusive)\n',
    );
    assert.equal(s.read(`${CG}/cpuset.cpus.effective`), '0-63\n');
    assert.equal(s.read(`${CG}/cpuset.cpus.isolated`), '\n');
    s.write(`${CG}/user.slice/cpuset.cpus`, '0-15');
    assert.equal(s.read(`${CG}/machine.slice/cpuset.cpus.partition`), 'isolated\n');
    assert.equal(s.read(`${CG}/cpuset.cpus.isolated`), '16-31\n');

    s.write(`${CG}/system.slice/cpuset.cpus.partition`, 'root');
    assert.equal(
      s.read(`${CG}/system.slice/cpuset.cpus.partition`),
      'root invalid (cpuset.cpus and cpuset.cpus.exclusive are empty)\n',
    );
    s.write(`${CG}/machine.slice/cgroup.subtree_control`, '+cpuset');
    s.mkdir(`${CG}/machine.slice/vm1`);
    s.write(`${CG}/user.slice/cgroup.subtree_control`, '+cpuset');
    s.write(`${CG}/user.slice/user-1000.slice/cpuset.cpus`, '1');
    s.write(`${CG}/user.slice/user-1000.slice/cpuset.cpus.partition`, 'root');
    assert.equal(
      s.read(`${CG}/user.slice/user-1000.slice/cpuset.cpus.partition`),
      'root invalid (Parent is not a partition root)\n',
    );
    // A partition that would take every CPU from siblings that inherit (a fresh machine: the populated user.slice
    // above can no longer go back to "inherit").
    const { s: s2 } = fresh(t, 'server-2s');
    s2.write(`${CG}/init.scope/cpuset.cpus`, '0-63');
    s2.write(`${CG}/init.scope/cpuset.cpus.partition`, 'root');
    assert.equal(
      s2.read(`${CG}/init.scope/cpuset.cpus.partition`),
      'root invalid (Parent unable to distribute cpu downstream)\n',
    );
  });

  it('cpuset.cpus.exclusive (6.7+): subset of the parent, no overlap with siblings (EINVAL); absent on 6.1', (t) => {
    const { s } = fresh(t, 'server-2s');
    s.write(`${CG}/machine.slice/cpuset.cpus.exclusive`, '16-31');
    assert.throws(() => s.write(`${CG}/user.slice/cpuset.cpus.exclusive`, '20'), code('EINVAL'));
    assert.throws(() => s.write(`${CG}/user.slice/cpuset.cpus.exclusive`, '0-70'), code('EINVAL'));
    s.write(`${CG}/user.slice/cpuset.cpus.exclusive`, '0-3');
    s.write(`${CG}/machine.slice/cpuset.cpus.partition`, 'root');
    assert.equal(s.read(`${CG}/machine.slice/cpuset.cpus.partition`), 'root\n');
    assert.equal(s.read(`${CG}/machine.slice/cpuset.cpus.effective`), '16-31\n');
    assert.equal(s.read(`${CG}/cpuset.cpus.isolated`), '\n', 'root partitions are not isolated');
    const { s: old } = fresh(t, 'v2-nocpuset', {
      extraProcs: [
        { pid: 3000, comm: 'pinned', cmdline: ['pinned'], cgroup: '/user.slice/pinned.scope', affinity: '6' },
      ],
    });
    assert.equal(allowed(old, '/proc/3000/status'), '6');
    old.write(`${CG}/cgroup.subtree_control`, '+cpuset');
    assert.throws(() => old.write(`${CG}/machine.slice/cpuset.cpus.exclusive`, '4-7'), code('ENOENT'));
    old.write(`${CG}/machine.slice/cpuset.cpus`, '4-7');
    old.write(`${CG}/machine.slice/cpuset.cpus.partition`, 'isolated');
    assert.equal(
      old.read(`${CG}/machine.slice/cpuset.cpus.partition`),
      'isolated\n',
      '6.1 has isolated partitions',
    );
    assert.equal(old.read(`${CG}/cpuset.cpus.effective`), '0-3\n');
  });
});

describe('SimFs mkdir / rmdir', () => {
  it('v2: a new cgroup has the core files and, under cpuset, the cpuset files; EEXIST; ENOENT', (t) => {
    const { s } = fresh(t, 'ryzen-5950x');
    s.mkdir(`${CG}/host.slice`);
    assert.equal(s.read(`${CG}/host.slice/cgroup.controllers`), 'cpuset cpu io memory pids\n');
    assert.equal(s.read(`${CG}/host.slice/cgroup.subtree_control`), '\n');
    assert.equal(s.read(`${CG}/host.slice/cgroup.type`), 'domain\n');
    assert.equal(s.read(`${CG}/host.slice/cgroup.procs`), '');
    assert.equal(s.read(`${CG}/host.slice/cpuset.cpus`), '\n');
    assert.equal(s.read(`${CG}/host.slice/cpuset.cpus.effective`), '0-31\n');
    assert.equal(s.read(`${CG}/host.slice/cpuset.cpus.exclusive`), '\n');
    assert.throws(() => s.mkdir(`${CG}/host.slice`), code('EEXIST'));
    assert.throws(() => s.mkdir(`${CG}/nope/child`), code('ENOENT'));
    s.mkdir(`${CG}/host.slice/child`);
    assert.equal(s.exists(`${CG}/host.slice/child/cpuset.cpus`), false);
    assert.equal(s.read(`${CG}/host.slice/child/cgroup.controllers`), '\n');
  });

  it('rmdir: EBUSY with children, members or on the mount; removes an empty cgroup', (t) => {
    const { s } = fresh(t, 'ryzen-5950x');
    s.mkdir(`${CG}/host.slice`);
    s.mkdir(`${CG}/host.slice/child`);
    assert.throws(() => s.rmdir(`${CG}/host.slice`), code('EBUSY'));
    s.rmdir(`${CG}/host.slice/child`);
    s.write(`${CG}/host.slice/cgroup.procs`, '1600');
    assert.throws(() => s.rmdir(`${CG}/host.slice`), code('EBUSY'));
    s.write(`${CG}/cgroup.procs`, '1600');
    s.rmdir(`${CG}/host.slice`);
    assert.equal(s.exists(`${CG}/host.slice`), false);
    assert.throws(() => s.rmdir(CG), code('EBUSY'));
    assert.throws(() => s.rmdir(`${CG}/host.slice`), code('ENOENT'));
  });

  it('v1: tasks keep a cpuset busy; name=systemd cgroups get no cpuset files', (t) => {
    const { s } = fresh(t, 'hybrid-v1v2');
    s.mkdir(`${V1}/vm`);
    s.write(`${V1}/vm/cpuset.cpus`, '2-3');
    s.write(`${V1}/vm/cpuset.mems`, '0');
    s.write(`${V1}/vm/tasks`, '1512');
    assert.throws(() => s.rmdir(`${V1}/vm`), code('EBUSY'));
    s.write(`${V1}/tasks`, '1512');
    s.rmdir(`${V1}/vm`);
    s.mkdir('/sys/fs/cgroup/systemd/x');
    assert.deepEqual(
      s
        .list('/sys/fs/cgroup/systemd/x')
        .map((e) => e.name)
        .sort(),
      ['cgroup.clone_children', 'cgroup.procs', 'notify_on_release', 'tasks'],
    );
    s.mkdir('/sys/fs/cgroup/cpu/y');
    assert.equal(s.realpath('/sys/fs/cgroup/cpu/y'), '/sys/fs/cgroup/cpu,cpuacct/y');
    assert.ok(s.exists('/sys/fs/cgroup/cpu,cpuacct/y/tasks'));
  });

  it('outside cgroup mounts mkdir/rmdir are plain', (t) => {
    const { s } = fresh(t, 'v2-nocpuset');
    s.mkdir('/run/vfio-isolate');
    assert.deepEqual(s.list('/run/vfio-isolate'), []);
    s.mkdir('/run/vfio-isolate/x');
    assert.throws(() => s.rmdir('/run/vfio-isolate'), code('ENOTEMPTY'));
    s.rmdir('/run/vfio-isolate/x');
    s.rmdir('/run/vfio-isolate');
    assert.equal(s.exists('/run/vfio-isolate'), false);
  });
});

describe('SimFs IRQs', () => {
  it('managed IRQs and the timer refuse with EIO before 6.12 and EPERM from 6.12; nothing changes', (t) => {
    const { s } = fresh(t, 'ryzen-5950x');
    for (const irq of [0, 45, 52]) {
      const before = s.read(`/proc/irq/${irq}/smp_affinity_list`);
      assert.throws(() => s.write(`/proc/irq/${irq}/smp_affinity_list`, '0-7'), code('EIO'));
      assert.throws(() => s.write(`/proc/irq/${irq}/smp_affinity`, 'ff'), code('EIO'));
      assert.equal(s.read(`/proc/irq/${irq}/smp_affinity_list`), before);
    }
    assert.equal(s.read('/proc/irq/45/smp_affinity_list'), '0-1,16-17\n');
    const { s: srv } = fresh(t, 'server-2s');
    assert.throws(() => srv.write('/proc/irq/41/smp_affinity_list', '0'), code('EPERM'));
    assert.throws(() => srv.write('/proc/irq/0/smp_affinity', '1'), code('EPERM'));
  });

  it('list and mask writes update both files and the effective CPU', (t) => {
    const { s } = fresh(t, 'ryzen-5950x');
    s.write('/proc/irq/53/smp_affinity_list', '8-15\n');
    assert.equal(s.read('/proc/irq/53/smp_affinity_list'), '8-15\n');
    assert.equal(s.read('/proc/irq/53/smp_affinity'), '0000ff00\n');
    assert.equal(s.read('/proc/irq/53/effective_affinity_list'), '8\n');
    assert.equal(s.read('/proc/irq/53/effective_affinity'), '00000100\n');
    s.write('/proc/irq/8/smp_affinity', 'F0000');
    assert.equal(s.read('/proc/irq/8/smp_affinity_list'), '16-19\n');
    assert.equal(s.read('/proc/irq/8/smp_affinity'), '000f0000\n');
    assert.throws(() => s.write('/proc/irq/53/smp_affinity_list', '0-40'), code('ERANGE'));
    assert.throws(() => s.write('/proc/irq/53/smp_affinity', '1,00000000'), code('EOVERFLOW'));
    assert.throws(() => s.write('/proc/irq/53/smp_affinity_list', 'xyz'), code('EINVAL'));
    assert.throws(() => s.write('/proc/irq/53/smp_affinity', '0'), code('EINVAL'));
    assert.equal(s.read('/proc/irq/53/smp_affinity_list'), '8-15\n');
  });

  it('a mask without an online CPU is EINVAL; offline CPUs are kept but never effective', (t) => {
    const { s } = fresh(t, 'hybrid-v1v2', { offline: '3' });
    assert.throws(() => s.write('/proc/irq/122/smp_affinity_list', '3'), code('EINVAL'));
    s.write('/proc/irq/122/smp_affinity_list', '3-4');
    assert.equal(s.read('/proc/irq/122/smp_affinity_list'), '3-4\n');
    assert.equal(s.read('/proc/irq/122/effective_affinity_list'), '4\n');
  });

  it('masks are as wide as nr_cpu_ids (possible), not present', (t) => {
    const { s } = fresh(t, 'tr-1920x');
    s.write('/proc/irq/47/smp_affinity_list', '0-3');
    assert.equal(s.read('/proc/irq/47/smp_affinity'), '0000000f\n');
    assert.throws(
      () => s.write('/proc/irq/47/smp_affinity_list', '30'),
      code('EINVAL'),
      'possible but not online',
    );
  });

  it('default_smp_affinity takes a hex mask with an online CPU', (t) => {
    const { s } = fresh(t, 'ryzen-5950x');
    s.write('/proc/irq/default_smp_affinity', 'ff00ff');
    assert.equal(s.read('/proc/irq/default_smp_affinity'), '00ff00ff\n');
    assert.throws(() => s.write('/proc/irq/default_smp_affinity', '0'), code('EINVAL'));
    assert.throws(() => s.write('/proc/irq/default_smp_affinity', '0-3'), code('EINVAL'));
    assert.equal(s.read('/proc/irq/default_smp_affinity'), '00ff00ff\n');
  });
});

describe('SimFs workqueues, cpufreq, vm', () => {
  it('workqueue cpumask: kernel-format mask, EINVAL without an online CPU, unbound workers follow', (t) => {
    const { s } = fresh(t, 'ryzen-5950x');
    s.write('/sys/devices/virtual/workqueue/cpumask', 'ff');
    assert.equal(s.read('/sys/devices/virtual/workqueue/cpumask'), '000000ff\n');
    assert.equal(allowed(s, `/proc/${pidOf('ryzen-5950x', 'kworker/u64:1')}/status`), '0-7');
    assert.throws(() => s.write('/sys/devices/virtual/workqueue/cpumask', '0'), code('EINVAL'));
    assert.throws(() => s.write('/sys/devices/virtual/workqueue/cpumask', 'zz'), code('EINVAL'));
    s.write('/sys/bus/workqueue/devices/writeback/cpumask', 'f0');
    assert.equal(s.read('/sys/devices/virtual/workqueue/writeback/cpumask'), '000000f0\n');
    assert.equal(s.read('/sys/devices/virtual/workqueue/cpumask'), '000000ff\n');
  });

  it('scaling_governor: must be listed in scaling_available_governors (EINVAL); shared policies', (t) => {
    const { s } = fresh(t, 'ryzen-5950x');
    s.write('/sys/devices/system/cpu/cpu3/cpufreq/scaling_governor', 'performance');
    assert.equal(s.read('/sys/devices/system/cpu/cpufreq/policy3/scaling_governor'), 'performance\n');
    assert.equal(s.read('/sys/devices/system/cpu/cpu4/cpufreq/scaling_governor'), 'schedutil\n');
    assert.throws(
      () => s.write('/sys/devices/system/cpu/cpu3/cpufreq/scaling_governor', 'turbo'),
      code('EINVAL'),
    );
    const { s: intel } = fresh(t, 'intel-6c12t');
    assert.throws(
      () => intel.write('/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor', 'schedutil'),
      code('EINVAL'),
    );
    intel.write('/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor', 'performance\n');
    assert.equal(intel.read('/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor'), 'performance\n');
    const { s: srv } = fresh(t, 'server-2s');
    srv.write('/sys/devices/system/cpu/cpu40/cpufreq/scaling_governor', 'powersave');
    assert.equal(srv.read('/sys/devices/system/cpu/cpu8/cpufreq/scaling_governor'), 'powersave\n');
  });

  it('drop_caches takes 1-4, compact_memory takes 1 (EINVAL otherwise); both are logged', (t) => {
    const { root, s } = fresh(t, 'v2-nocpuset');
    for (const bad of ['0', '5', 'x', '\n'])
      assert.throws(() => s.write('/proc/sys/vm/drop_caches', bad), code('EINVAL'));
    s.write('/proc/sys/vm/drop_caches', '3');
    assert.equal(s.read('/proc/sys/vm/drop_caches'), '3\n');
    assert.throws(() => s.write('/proc/sys/vm/compact_memory', '2'), code('EINVAL'));
    s.write('/proc/sys/vm/compact_memory', '1\n');
    const ok = readSimLog(root).filter((e) => e.error === undefined);
    assert.deepEqual(ok, [
      { op: 'write', path: '/proc/sys/vm/drop_caches', value: '3' },
      { op: 'write', path: '/proc/sys/vm/compact_memory', value: '1\n' },
    ]);
  });
});

describe('SimFs affinity and scheduling', () => {
  it('getAffinity/setAffinity update status (list and mask) and the stat processor', (t) => {
    const { root, s } = fresh(t, 'ryzen-5950x');
    assert.deepEqual(s.getAffinity(pidOf('ryzen-5950x', 'ksoftirqd/5')), [5]);
    s.setAffinity(1600, [16, 17]);
    assert.deepEqual(s.getAffinity(1600), [16, 17]);
    assert.equal(mask(s, '/proc/1600/status'), '00030000');
    assert.equal(mask(s, '/proc/1600/task/1600/status'), '00030000');
    assert.ok(['16', '17'].includes(statField(s, '/proc/1600/stat', 39)));
    assert.equal(
      fs.readFileSync(path.join(root, 'proc/1600/task/1600/.sim-user-affinity'), 'utf8'),
      '16-17\n',
    );
    assert.equal(allowed(s, '/proc/1600/task/1601/status'), '0-31', 'other threads keep theirs');
    s.setAffinity(2405, [4]);
    assert.deepEqual(s.getAffinity(2405), [4]);
    assert.equal(allowed(s, '/proc/2400/status'), '0-31');
  });

  it('errors: ESRCH, EINVAL for PF_NO_SETAFFINITY, no online CPU, or outside the cpuset', (t) => {
    const { s } = fresh(t, 'ryzen-5950x');
    assert.throws(() => s.setAffinity(99999, [0]), code('ESRCH'));
    assert.throws(() => s.getAffinity(99999), code('ESRCH'));
    assert.throws(() => s.setAffinity(pidOf('ryzen-5950x', 'migration/2'), [0]), code('EINVAL'));
    assert.throws(() => s.setAffinity(1600, []), code('EINVAL'));
    assert.throws(() => s.setAffinity(1600, [40]), code('EINVAL'));
    assert.throws(() => s.setAffinity(1600, [-1]), code('EINVAL'));
    s.setAffinity(pidOf('ryzen-5950x', 'kthreadd'), [0, 1]);
    assert.deepEqual(s.getAffinity(2), [0, 1]);
    s.write(`${CG}/user.slice/cpuset.cpus`, '0-7');
    assert.throws(() => s.setAffinity(1600, [8, 9]), code('EINVAL'), 'issue #5: taskset outside the cpuset');
    s.setAffinity(1600, [4, 5, 6, 7, 8, 9, 10, 11]);
    assert.deepEqual(s.getAffinity(1600), [4, 5, 6, 7]);
  });

  it('>= 6.2 keeps the requested mask across cpuset changes; < 6.2 resets it', (t) => {
    const { s } = fresh(t, 'ryzen-5950x', {
      extraProcs: [
        {
          pid: 3000,
          comm: 'pinned',
          cmdline: ['pinned'],
          cgroup: '/user.slice/pinned.scope',
          affinity: '12',
        },
      ],
    });
    s.setAffinity(1512, [2, 3]);
    s.write(`${CG}/user.slice/cpuset.cpus`, '0-7');
    assert.equal(allowed(s, '/proc/1512/status'), '2-3');
    assert.equal(allowed(s, '/proc/1600/status'), '0-7');
    assert.equal(allowed(s, '/proc/3000/status'), '0-7', 'its CPU 12 is not in the cpuset');
    s.write(`${CG}/user.slice/cpuset.cpus`, '8-15');
    assert.equal(allowed(s, '/proc/1512/status'), '8-15');
    assert.equal(allowed(s, '/proc/3000/status'), '12', 'the leak comes back');
    s.write(`${CG}/user.slice/cpuset.cpus`, '0-31');
    assert.equal(allowed(s, '/proc/1512/status'), '2-3');

    const { s: old } = fresh(t, 'v2-nocpuset', {
      extraProcs: [
        { pid: 3000, comm: 'pinned', cmdline: ['pinned'], cgroup: '/user.slice/pinned.scope', affinity: '6' },
      ],
    });
    assert.equal(allowed(old, '/proc/3000/status'), '6');
    old.write(`${CG}/cgroup.subtree_control`, '+cpuset');
    old.setAffinity(1512, [1]);
    old.write(`${CG}/user.slice/cpuset.cpus`, '0-3');
    assert.equal(allowed(old, '/proc/1512/status'), '0-3');
    assert.equal(allowed(old, '/proc/3000/status'), '0-3');
    old.write(`${CG}/user.slice/cpuset.cpus`, '0-7');
    assert.equal(allowed(old, '/proc/1512/status'), '0-7');
    assert.equal(
      allowed(old, '/proc/3000/status'),
      '0-7',
      'the taskset mask was reset by the first cpuset change',
    );
  });

  it('getScheduler/setScheduler: policy and rt_priority in stat; FIFO/RR need 1..99, others 0', (t) => {
    const { s } = fresh(t, 'ryzen-5950x');
    assert.deepEqual(s.getScheduler(pidOf('ryzen-5950x', 'migration/0')), { policy: 1, priority: 99 });
    assert.deepEqual(s.getScheduler(2403), { policy: 0, priority: 0 });
    s.setScheduler(2403, 1, 50);
    assert.deepEqual(s.getScheduler(2403), { policy: 1, priority: 50 });
    const st = '/proc/2400/task/2403/stat';
    assert.deepEqual([statField(s, st, 18), statField(s, st, 40), statField(s, st, 41)], ['-51', '50', '1']);
    assert.equal(statField(s, '/proc/2400/stat', 41), '0', 'the process stat shows the leader');
    s.setScheduler(2400, 2, 1);
    assert.equal(statField(s, '/proc/2400/stat', 41), '2');
    s.setScheduler(2403, 0, 0);
    assert.deepEqual([statField(s, st, 18), statField(s, st, 41)], ['20', '0']);
    s.setScheduler(2403, 5, 0);
    assert.deepEqual(s.getScheduler(2403), { policy: 5, priority: 0 });
    for (const [p, prio] of [
      [1, 0],
      [2, 100],
      [0, 5],
      [3, 1],
      [7, 0],
      [6, 0],
    ] as const) {
      assert.throws(() => s.setScheduler(2403, p, prio), code('EINVAL'), `${p}/${prio}`);
    }
    assert.throws(() => s.setScheduler(99999, 0, 0), code('ESRCH'));
    assert.throws(() => s.getScheduler(99999), code('ESRCH'));
  });
});

describe('SimFs zero-length writes', () => {
  it('never reach the control file (as on the real kernel); the tool writes "\\n" for an empty value', async () => {
    const { buildFixture } = await import('../fixtures/build.ts');
    const { Kernel } = await import('../../src/kernel/kernel.ts');
    const root = buildFixture('ryzen-5950x');
    const s = new SimFs(root);
    s.mkdir('/sys/fs/cgroup/zl.slice');
    s.write('/sys/fs/cgroup/zl.slice/cpuset.cpus', '0-3');
    s.write('/sys/fs/cgroup/zl.slice/cpuset.cpus', '');
    assert.equal(s.read('/sys/fs/cgroup/zl.slice/cpuset.cpus'), '0-3\n');
    new Kernel(s).write('/sys/fs/cgroup/zl.slice/cpuset.cpus', '');
    assert.equal(s.read('/sys/fs/cgroup/zl.slice/cpuset.cpus'), '\n');
  });
});
