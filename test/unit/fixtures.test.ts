import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { CpuSet } from '../../src/cpus/cpuset.ts';
import {
  PF_KTHREAD,
  PF_NO_SETAFFINITY,
  buildFixture,
  fixtureModel,
  fixtureTmpBase,
  listMachines,
  removeFixture,
  type MachineName,
} from '../fixtures/build.ts';

const ALL: MachineName[] = [
  'ryzen-5950x',
  'tr-1920x',
  'intel-6c12t',
  'server-2s',
  'hybrid-v1v2',
  'v2-nocpuset',
  'guest-l3-ids',
];

function rd(root: string, p: string): string {
  return fs.readFileSync(path.join(root, p), 'utf8');
}
function set(root: string, p: string): CpuSet {
  return CpuSet.parseList(rd(root, p));
}
function ids(text: string): number[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => Number(l));
}
function numbered(dir: string, prefix: string): number[] {
  const re = new RegExp(`^${prefix}(\\d+)$`);
  return fs
    .readdirSync(dir)
    .map((n) => re.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}
/** Fields of a stat line: index n = field n (1-based), comm without parentheses. */
function statFields(text: string): string[] {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  return [
    '',
    text.slice(0, open - 1),
    text.slice(open + 1, close),
    ...text
      .slice(close + 2)
      .trim()
      .split(' '),
  ];
}
function cgroupDirs(dir: string, out: string[] = []): string[] {
  out.push(dir);
  for (const d of fs.readdirSync(dir, { withFileTypes: true }))
    if (d.isDirectory()) cgroupDirs(path.join(dir, d.name), out);
  return out;
}
function hierarchyLine(cgroupFile: string, key: string): string | undefined {
  for (const line of cgroupFile.split('\n')) {
    const [id, ctrls, ...rest] = line.split(':');
    if ((key === '' && id === '0') || (key !== '' && ctrls === key)) return rest.join(':');
  }
  return undefined;
}

describe('fixture machines', () => {
  it('lists exactly the seven machines', () => {
    assert.deepEqual([...listMachines()].sort(), [...ALL].sort());
  });

  for (const name of ALL) {
    describe(name, () => {
      const root = buildFixture(name);
      const model = fixtureModel(name);
      const m = model.machine;
      const nCores = m.packages * m.coresPerPackage;

      it('cpu masks: possible ⊇ present ⊇ online, one cpuN dir per present CPU', () => {
        const possible = set(root, '/sys/devices/system/cpu/possible');
        const present = set(root, '/sys/devices/system/cpu/present');
        const online = set(root, '/sys/devices/system/cpu/online');
        assert.ok(present.isSubsetOf(possible) && online.isSubsetOf(present));
        assert.equal(present.size, nCores * m.threadsPerCore);
        assert.deepEqual(numbered(path.join(root, 'sys/devices/system/cpu'), 'cpu'), present.toArray());
        assert.ok(
          !fs.existsSync(path.join(root, 'sys/devices/system/cpu/cpu0/online')),
          'cpu0 has no online file',
        );
        assert.equal(rd(root, '/sys/devices/system/cpu/cpu1/online'), '1\n');
        assert.equal(rd(root, '/sys/devices/system/cpu/offline'), `${possible.minus(online).toList()}\n`);
      });

      it('SMT siblings are n, n+cores, ... (threadsPerCore of them), symmetric, and cores/packages partition the CPUs', () => {
        const pkgs = new Map<number, number[]>();
        for (const c of model.present) {
          const t = `/sys/devices/system/cpu/cpu${c}/topology`;
          const sib = set(root, `${t}/thread_siblings_list`);
          const core = c % nCores;
          assert.deepEqual(
            sib.toArray(),
            Array.from({ length: m.threadsPerCore }, (_, t) => core + t * nCores),
            `cpu${c}`,
          );
          for (const s of sib)
            assert.ok(set(root, `/sys/devices/system/cpu/cpu${s}/topology/thread_siblings_list`).equals(sib));
          assert.ok(set(root, `${t}/core_cpus_list`).equals(sib));
          const pkg = Number(rd(root, `${t}/physical_package_id`));
          (pkgs.get(pkg) ?? pkgs.set(pkg, []).get(pkg)!).push(c);
          assert.equal(rd(root, `${t}/core_siblings_list`), rd(root, `${t}/package_cpus_list`));
          assert.equal(Number(rd(root, `${t}/die_id`)), 0);
          // siblings share a core id, different cores of a package do not
          assert.equal(
            rd(root, `${t}/core_id`),
            rd(root, `/sys/devices/system/cpu/cpu${sib.first!}/topology/core_id`),
          );
        }
        assert.equal(pkgs.size, m.packages);
        for (const [pkg, cpus] of pkgs) {
          const list = set(root, `/sys/devices/system/cpu/cpu${cpus[0]!}/topology/package_cpus_list`);
          assert.deepEqual(
            list.toArray(),
            cpus.sort((a, b) => a - b),
            `package ${pkg}`,
          );
          const coreIds = new Set(
            cpus.map((c) => rd(root, `/sys/devices/system/cpu/cpu${c}/topology/core_id`)),
          );
          assert.equal(coreIds.size, m.coresPerPackage);
        }
      });

      it('NUMA node cpulists partition the online CPUs; cpumap matches; meminfo has MemTotal', () => {
        const nodes = numbered(path.join(root, 'sys/devices/system/node'), 'node');
        assert.equal(nodes.length, m.nodes.length);
        let union = CpuSet.EMPTY;
        for (const k of nodes) {
          const cpus = set(root, `/sys/devices/system/node/node${k}/cpulist`);
          assert.ok(!cpus.overlaps(union), `node${k} overlaps another node`);
          union = union.union(cpus);
          assert.ok(CpuSet.parseMask(rd(root, `/sys/devices/system/node/node${k}/cpumap`)).equals(cpus));
          const mem = /Node \d+ MemTotal:\s+(\d+) kB/.exec(
            rd(root, `/sys/devices/system/node/node${k}/meminfo`),
          );
          assert.equal(Number(mem?.[1]), (m.nodeMemMiB[k] ?? 0) * 1024);
        }
        assert.ok(union.equals(model.online));
        assert.equal(
          rd(root, '/sys/devices/system/node/online'),
          `${CpuSet.range(0, nodes.length - 1).toList()}\n`,
        );
      });

      it('L3 domains are as described, with index0-2 present', () => {
        const byId = new Map<string, number[]>();
        for (const c of model.online) {
          const d = `/sys/devices/system/cpu/cpu${c}/cache/index3`;
          assert.equal(rd(root, `${d}/level`), '3\n');
          assert.equal(rd(root, `${d}/type`), 'Unified\n');
          const shared = set(root, `${d}/shared_cpu_list`);
          assert.ok(shared.has(c));
          const id = rd(root, `${d}/id`).trim();
          if (m.l3IdPerCpu) assert.equal(id, `${c}`, 'the id is the CPU number');
          // domains by what the kernel says is shared (the id too, unless it is per CPU)
          const key = m.l3IdPerCpu ? shared.toList() : id;
          (byId.get(key) ?? byId.set(key, []).get(key)!).push(c);
          assert.ok(shared.equals(CpuSet.of(byId.get(key)!).union(shared)));
          for (const i of [0, 1, 2])
            assert.ok(fs.existsSync(path.join(root, `sys/devices/system/cpu/cpu${c}/cache/index${i}/level`)));
        }
        const lists = [...byId.values()].map((l) => CpuSet.of(l).toList());
        assert.deepEqual(lists.sort(), [...m.l3].sort());
      });

      it('cpufreq: cpuN/cpufreq is a relative link to a policy that covers the CPU; governor is available', () => {
        for (const c of model.present) {
          const link = path.join(root, `sys/devices/system/cpu/cpu${c}/cpufreq`);
          const target = fs.readlinkSync(link);
          assert.match(target, /^\.\.\/cpufreq\/policy\d+$/);
          const real = fs.realpathSync(link);
          assert.ok(real.startsWith(fs.realpathSync(root) + '/'), 'link stays inside the tree');
          const related = rd(root, `/sys/devices/system/cpu/cpu${c}/cpufreq/related_cpus`)
            .trim()
            .split(' ')
            .map(Number);
          assert.ok(related.includes(c));
          const gov = rd(root, `/sys/devices/system/cpu/cpu${c}/cpufreq/scaling_governor`).trim();
          assert.ok(
            rd(root, `/sys/devices/system/cpu/cpu${c}/cpufreq/scaling_available_governors`)
              .trim()
              .split(' ')
              .includes(gov),
          );
          assert.equal(
            rd(root, `/sys/devices/system/cpu/cpu${c}/cpufreq/scaling_driver`).trim(),
            m.cpufreq.driver,
          );
        }
      });

      it('mountinfo: cgroup mounts in the right order; /proc/mounts links to self/mounts', () => {
        const mi = rd(root, '/proc/self/mountinfo')
          .trim()
          .split('\n')
          .map((l) => {
            const p = l.split(' ');
            const dash = p.indexOf('-');
            return { point: p[4]!, type: p[dash + 1]!, superOpts: p[dash + 3]!.split(',') };
          });
        const cg = mi.filter((x) => x.type.startsWith('cgroup'));
        const first = cg[0]!;
        if (m.cgroup === 'v2') {
          assert.deepEqual(
            cg.map((x) => [x.point, x.type]),
            [['/sys/fs/cgroup', 'cgroup2']],
          );
        } else if (m.cgroup === 'hybrid') {
          assert.deepEqual([first.point, first.type], ['/sys/fs/cgroup/unified', 'cgroup2']);
          assert.ok(
            cg.some(
              (x) =>
                x.type === 'cgroup' && x.superOpts.includes('cpuset') && x.point === '/sys/fs/cgroup/cpuset',
            ),
          );
          assert.ok(cg.some((x) => x.superOpts.includes('name=systemd')));
        } else {
          assert.deepEqual(
            [first.point, first.type, first.superOpts.includes('cpuset')],
            ['/sys/fs/cgroup/cpuset', 'cgroup', true],
          );
          assert.ok(!cg.some((x) => x.type === 'cgroup2'));
        }
        if (name === 'hybrid-v1v2') {
          assert.deepEqual(
            cg.map((x) => x.point),
            [
              '/sys/fs/cgroup/unified',
              '/sys/fs/cgroup/systemd',
              '/sys/fs/cgroup/cpu,cpuacct',
              '/sys/fs/cgroup/cpuset',
              '/sys/fs/cgroup/memory',
            ],
          );
          assert.equal(fs.readlinkSync(path.join(root, 'sys/fs/cgroup/cpu')), 'cpu,cpuacct');
        }
        assert.equal(fs.readlinkSync(path.join(root, 'proc/mounts')), 'self/mounts');
        assert.equal(fs.readlinkSync(path.join(root, 'proc/self')), String(model.selfPid));
        const mounts = rd(root, '/proc/mounts')
          .trim()
          .split('\n')
          .map((l) => l.split(' ')[1]);
        assert.deepEqual(
          mounts,
          mi.map((x) => x.point),
        );
        for (const x of cg) assert.ok(fs.statSync(path.join(root, x.point)).isDirectory(), x.point);
      });

      it('every process is in exactly one cgroup per hierarchy, consistent with /proc/PID/cgroup', () => {
        const pids = numbered(path.join(root, 'proc'), '').filter((p) => p > 0);
        assert.deepEqual(
          pids,
          model.procs.map((p) => p.pid),
        );
        for (const h of model.hierarchies) {
          const seen = new Map<number, string>();
          const seenTids = new Map<number, string>();
          for (const dir of cgroupDirs(path.join(root, h.mount))) {
            const cg = dir === path.join(root, h.mount) ? '/' : dir.slice(path.join(root, h.mount).length);
            for (const pid of ids(fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8'))) {
              assert.ok(!seen.has(pid), `${h.mount}: pid ${pid} in ${seen.get(pid)} and ${cg}`);
              seen.set(pid, cg);
            }
            if (h.version === 1) {
              for (const tid of ids(fs.readFileSync(path.join(dir, 'tasks'), 'utf8'))) {
                assert.ok(!seenTids.has(tid), `tid ${tid} twice`);
                seenTids.set(tid, cg);
              }
            }
          }
          assert.deepEqual(
            [...seen.keys()].sort((a, b) => a - b),
            pids,
            `${h.mount} lists every pid`,
          );
          if (h.version === 1) {
            const allTids = model.procs.flatMap((p) => p.threads.map((t) => t.tid)).sort((a, b) => a - b);
            assert.deepEqual(
              [...seenTids.keys()].sort((a, b) => a - b),
              allTids,
            );
          }
          const key = h.version === 2 ? '' : h.controllers.join(',');
          for (const [pid, cg] of seen)
            assert.equal(hierarchyLine(rd(root, `/proc/${pid}/cgroup`), key), cg, `pid ${pid}`);
        }
      });

      it('v2 cgroups: controllers = parent subtree_control; cpuset files iff the parent enabled cpuset', () => {
        for (const h of model.hierarchies.filter((x) => x.version === 2)) {
          const base = path.join(root, h.mount);
          for (const dir of cgroupDirs(base)) {
            if (dir === base) {
              assert.equal(fs.existsSync(path.join(dir, 'cpuset.cpus')), false, 'root has no cpuset.cpus');
              continue;
            }
            const parentSt = fs.readFileSync(path.join(path.dirname(dir), 'cgroup.subtree_control'), 'utf8');
            assert.equal(fs.readFileSync(path.join(dir, 'cgroup.controllers'), 'utf8'), parentSt);
            assert.equal(fs.readFileSync(path.join(dir, 'cgroup.type'), 'utf8'), 'domain\n');
            const has = parentSt.trim().split(' ').includes('cpuset');
            for (const f of [
              'cpuset.cpus',
              'cpuset.mems',
              'cpuset.cpus.effective',
              'cpuset.mems.effective',
              'cpuset.cpus.partition',
            ]) {
              assert.equal(fs.existsSync(path.join(dir, f)), has, `${dir}/${f}`);
            }
            const excl = has && (model.version[0] > 6 || (model.version[0] === 6 && model.version[1] >= 7));
            assert.equal(fs.existsSync(path.join(dir, 'cpuset.cpus.exclusive')), excl);
            if (has)
              assert.equal(fs.readFileSync(path.join(dir, 'cpuset.cpus'), 'utf8'), '\n', 'empty = inherit');
            // no process sits in a cgroup that has children (no-internal-process rule)
            const kids = fs.readdirSync(dir, { withFileTypes: true }).some((d) => d.isDirectory());
            if (kids) assert.equal(fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8'), '');
          }
        }
      });

      it('per-CPU kernel threads are pinned to their CPU and flagged PF_NO_SETAFFINITY', () => {
        const perCpu = model.procs.filter((p) => p.kind === 'kthread-percpu');
        assert.equal(perCpu.length, 4 * model.present.size);
        for (const p of perCpu) {
          const cpu = Number(/(\d+)(?::0H)?$/.exec(p.comm)?.[1]);
          const st = statFields(rd(root, `/proc/${p.pid}/stat`));
          assert.equal(st[2], p.comm);
          assert.equal(Number(st[4]), 2, 'ppid 2');
          const flags = Number(st[9]);
          assert.ok((flags & PF_KTHREAD) !== 0 && (flags & PF_NO_SETAFFINITY) !== 0, `${p.comm} flags`);
          assert.equal(Number(st[39]), cpu);
          const status = rd(root, `/proc/${p.pid}/status`);
          assert.match(status, new RegExp(`^Cpus_allowed_list:\\t${cpu}$`, 'm'));
          assert.equal(rd(root, `/proc/${p.pid}/cmdline`), '');
          assert.equal(st.length, 53, '52 fields');
        }
        for (const p of model.procs.filter((x) => x.kind === 'kthread-movable')) {
          const flags = Number(statFields(rd(root, `/proc/${p.pid}/stat`))[9]);
          assert.ok((flags & PF_KTHREAD) !== 0 && (flags & PF_NO_SETAFFINITY) === 0, p.comm);
        }
        const mig = perCpu.find((p) => p.comm === `migration/${model.present.last!}`)!;
        const st = statFields(rd(root, `/proc/${mig.pid}/stat`));
        assert.deepEqual(
          [st[18], st[40], st[41]],
          ['-100', '99', '1'],
          'migration threads are SCHED_FIFO 99',
        );
      });

      it('status and stat agree for every thread; Cpus_allowed mask matches the list', () => {
        for (const p of model.procs) {
          const tids = fs
            .readdirSync(path.join(root, `proc/${p.pid}/task`))
            .map(Number)
            .sort((a, b) => a - b);
          assert.deepEqual(
            tids,
            p.threads.map((t) => t.tid),
          );
          for (const t of p.threads) {
            const status = rd(root, `/proc/${p.pid}/task/${t.tid}/status`);
            const field = (k: string): string => new RegExp(`^${k}:\\t(.*)$`, 'm').exec(status)?.[1] ?? '';
            assert.equal(field('Name'), t.comm);
            assert.equal(Number(field('Tgid')), p.pid);
            assert.equal(Number(field('Pid')), t.tid);
            assert.equal(Number(field('PPid')), p.ppid);
            assert.ok(
              CpuSet.parseMask(field('Cpus_allowed')).equals(CpuSet.parseList(field('Cpus_allowed_list'))),
            );
            assert.equal(field('Cpus_allowed').replace(/,/g, '').length, Math.ceil(model.nrCpuIds / 4));
            const st = statFields(rd(root, `/proc/${p.pid}/task/${t.tid}/stat`));
            assert.equal(Number(st[1]), t.tid);
            assert.equal(st[2], t.comm);
            assert.equal(rd(root, `/proc/${p.pid}/task/${t.tid}/comm`), `${t.comm}\n`);
          }
          assert.equal(rd(root, `/proc/${p.pid}/stat`), rd(root, `/proc/${p.pid}/task/${p.pid}/stat`));
        }
      });

      it('IRQs: refusing ones are marked with the kernel-version errno; masks agree with lists', () => {
        const errno =
          model.version[0] > 6 || (model.version[0] === 6 && model.version[1] >= 12) ? 'EPERM' : 'EIO';
        const dirs = numbered(path.join(root, 'proc/irq'), '');
        assert.ok(dirs.length >= 20 && dirs.length <= 45, `${dirs.length} IRQs`);
        assert.deepEqual(
          dirs,
          model.irqs.map((q) => q.irq),
        );
        for (const q of model.irqs) {
          const d = `/proc/irq/${q.irq}`;
          const refuse = path.join(root, d, '.sim-refuse');
          assert.equal(fs.existsSync(refuse), q.desc.refuse === true, `IRQ ${q.irq}`);
          if (q.desc.refuse) assert.equal(fs.readFileSync(refuse, 'utf8'), `${errno}\n`);
          const list = set(root, `${d}/smp_affinity_list`);
          assert.ok(CpuSet.parseMask(rd(root, `${d}/smp_affinity`)).equals(list));
          assert.equal(rd(root, `${d}/smp_affinity`).trim(), list.toMask(model.nrCpuIds));
          if (q.irq === 0) assert.ok(!fs.existsSync(path.join(root, d, 'effective_affinity')));
          else {
            const eff = set(root, `${d}/effective_affinity_list`);
            assert.equal(eff.size, 1);
            assert.ok(eff.isSubsetOf(list) || list.intersect(model.online).isEmpty);
          }
        }
        assert.ok(fs.existsSync(path.join(root, 'proc/irq/0/.sim-refuse')), 'the timer refuses');
        assert.ok(model.irqs.some((q) => q.desc.name?.startsWith('nvme0q1') && q.refuse === errno));
        assert.ok(CpuSet.parseMask(rd(root, '/proc/irq/default_smp_affinity')).equals(model.possible));
        const interrupts = rd(root, '/proc/interrupts').split('\n');
        assert.deepEqual(
          interrupts[0]!.trim().split(/\s+/),
          model.online.toArray().map((c) => `CPU${c}`),
        );
        const named = model.irqs.filter((q) => q.desc.name !== undefined);
        const lines = interrupts.filter((l) => /^\s*\d+:/.test(l));
        assert.equal(lines.length, named.length);
        for (const q of named) {
          const line = lines.find((l) => l.trimStart().startsWith(`${q.irq}:`))!;
          assert.ok(line.endsWith(q.desc.name!), line);
          assert.equal(line.split(':')[1]!.trim().split(/\s+/).length >= model.online.size + 2, true);
          for (const n of q.desc.name!.split(', '))
            assert.ok(fs.statSync(path.join(root, `proc/irq/${q.irq}/${n}`)).isDirectory());
        }
        assert.ok(!interrupts.some((l) => l.includes('vfio')));
      });

      it('system files: vm sysctls, boot id, osrelease, workqueue masks, run/etc dirs', () => {
        assert.equal(rd(root, '/proc/sys/vm/drop_caches'), '0\n');
        assert.equal(rd(root, '/proc/sys/vm/stat_interval'), '1\n');
        assert.ok(fs.existsSync(path.join(root, 'proc/sys/vm/compact_memory')));
        assert.match(
          rd(root, '/proc/sys/kernel/random/boot_id'),
          /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\n$/,
        );
        assert.equal(rd(root, '/proc/sys/kernel/osrelease'), `${m.kernel}\n`);
        assert.equal(rd(root, '/proc/cmdline'), `${m.cmdline}\n`);
        assert.ok(
          CpuSet.parseMask(rd(root, '/sys/devices/virtual/workqueue/cpumask')).equals(model.possible),
        );
        assert.equal(
          fs.readlinkSync(path.join(root, 'sys/bus/workqueue/devices/writeback')),
          '../../../devices/virtual/workqueue/writeback',
        );
        assert.equal(
          rd(root, '/sys/bus/workqueue/devices/writeback/cpumask'),
          rd(root, '/sys/devices/virtual/workqueue/cpumask'),
        );
        assert.ok(fs.statSync(path.join(root, 'run')).isDirectory());
        assert.ok(fs.statSync(path.join(root, 'etc/libvirt/hooks')).isDirectory());
        assert.equal(fs.readdirSync(path.join(root, 'etc/libvirt/hooks')).length, 0);
        assert.equal(fs.existsSync(path.join(root, 'run/systemd/system')), m.systemd);
        assert.match(rd(root, '/proc/uptime'), /^\d+\.\d+ \d+\.\d+\n$/);
        for (const f of ['isolated', 'nohz_full', 'kernel_max'])
          assert.ok(fs.existsSync(path.join(root, `sys/devices/system/cpu/${f}`)));
      });

      it('realistic task mix: comms with spaces and parentheses parse back; kthreads have ppid 2 and no cmdline', () => {
        const tasks = model.procs.reduce((n, p) => n + p.threads.length, 0);
        assert.ok(tasks >= 40, `${tasks} tasks`);
        const kthreads = model.procs.filter((p) => p.kind.startsWith('kthread-'));
        assert.ok(kthreads.every((p) => p.ppid === 2 && rd(root, `/proc/${p.pid}/cmdline`) === ''));
        const tmux = model.procs.find((p) => p.comm === 'tmux: server')!;
        assert.equal(statFields(rd(root, `/proc/${tmux.pid}/stat`))[2], 'tmux: server');
        assert.ok(
          rd(root, `/proc/${model.procs[0]!.pid}/cmdline`).endsWith('\0'),
          'pid 1 cmdline is NUL-terminated',
        );
        if (m.systemd) {
          const sdpam = model.procs.find((p) => p.comm === '(sd-pam)')!;
          assert.ok(rd(root, `/proc/${sdpam.pid}/stat`).startsWith(`${sdpam.pid} ((sd-pam)) S `));
        }
        assert.equal(
          model.procs.some((p) => p.comm === 'irqbalance'),
          name === 'ryzen-5950x',
        );
        assert.equal(
          model.procs.some((p) => p.comm === 'qemu-system-x86'),
          name === 'ryzen-5950x',
        );
      });
    });
  }
});

describe('fixture specifics', () => {
  it('ryzen-5950x: qemu with CPU n/KVM threads in machine.slice, irqbalance in system.slice', () => {
    const root = buildFixture('ryzen-5950x');
    const qemu = ids(
      rd(root, '/sys/fs/cgroup/machine.slice/machine-qemu\\x2d1\\x2dwin10.scope/cgroup.procs'),
    );
    assert.deepEqual(qemu, [2400]);
    const comms = fs
      .readdirSync(path.join(root, 'proc/2400/task'))
      .map((t) => rd(root, `/proc/2400/task/${t}/comm`).trim());
    for (const n of [0, 1, 2, 3]) assert.ok(comms.includes(`CPU ${n}/KVM`));
    assert.ok(rd(root, '/proc/2400/task/2403/stat').startsWith('2403 (CPU 0/KVM) S '));
    assert.equal(rd(root, '/proc/2400/cgroup'), '0::/machine.slice/machine-qemu\\x2d1\\x2dwin10.scope\n');
    assert.deepEqual(ids(rd(root, '/sys/fs/cgroup/system.slice/irqbalance.service/cgroup.procs')), [740]);
    assert.equal(rd(root, '/sys/fs/cgroup/cgroup.subtree_control'), 'cpuset cpu io memory pids\n');
    assert.equal(rd(root, '/sys/fs/cgroup/system.slice/cpuset.cpus'), '\n');
    assert.equal(rd(root, '/sys/fs/cgroup/system.slice/cpuset.cpus.effective'), '0-31\n');
    assert.ok(!fs.existsSync(path.join(root, 'sys/fs/cgroup/system.slice/ssh.service/cpuset.cpus')));
    assert.equal(rd(root, '/sys/fs/cgroup/cpuset.cpus.isolated'), '\n', '6.8 has cpuset.cpus.isolated');
    const rootProcs = ids(rd(root, '/sys/fs/cgroup/cgroup.procs'));
    assert.ok(rootProcs.includes(2) && rootProcs.includes(380), 'kthreads and mdadm in the root cgroup');
    removeFixture(root);
  });

  it('tr-1920x: 32 possible CPUs, 24 present; masks are 32 bits wide', () => {
    const root = buildFixture('tr-1920x');
    assert.equal(rd(root, '/sys/devices/system/cpu/possible'), '0-31\n');
    assert.equal(rd(root, '/sys/devices/system/cpu/present'), '0-23\n');
    assert.equal(rd(root, '/proc/irq/default_smp_affinity'), 'ffffffff\n');
    assert.equal(rd(root, '/proc/1/status').match(/^Cpus_allowed:\t(.*)$/m)?.[1], 'ffffffff');
    assert.equal(rd(root, '/sys/fs/cgroup/cpuset/cpuset.cpus'), '0-23\n');
    assert.equal(rd(root, '/sys/fs/cgroup/unified/cgroup.controllers'), '\n', 'controller-less cgroup2');
    assert.equal(rd(root, '/proc/1/cgroup'), '2:cpuset:/\n1:name=systemd:/init.scope\n0::/init.scope\n');
    assert.equal(rd(root, '/sys/devices/system/node/node1/cpulist'), '6-11,18-23\n');
    const kswapd1 = fixtureModel('tr-1920x').procs.find((p) => p.comm === 'kswapd1')!;
    assert.match(rd(root, `/proc/${kswapd1.pid}/status`), /^Cpus_allowed_list:\t6-11,18-23$/m);
    removeFixture(root);
  });

  it('intel-6c12t: pure v1, no systemd, intel_pstate offers performance and powersave', () => {
    const root = buildFixture('intel-6c12t');
    assert.equal(
      rd(root, '/sys/devices/system/cpu/cpufreq/policy0/scaling_available_governors'),
      'performance powersave\n',
    );
    assert.equal(rd(root, '/sys/devices/system/cpu/cpu5/cpufreq/scaling_governor'), 'powersave\n');
    assert.equal(rd(root, '/proc/1/comm'), 'init\n');
    assert.equal(rd(root, '/proc/1/cgroup'), '1:cpuset:/\n');
    assert.equal(rd(root, '/sys/fs/cgroup/cpuset/cpuset.cpu_exclusive'), '1\n');
    assert.equal(rd(root, '/sys/fs/cgroup/cpuset/cpuset.sched_load_balance'), '1\n');
    for (const f of [
      'cpuset.mem_exclusive',
      'cpuset.memory_migrate',
      'cgroup.clone_children',
      'notify_on_release',
      'release_agent',
    ]) {
      assert.ok(fs.existsSync(path.join(root, 'sys/fs/cgroup/cpuset', f)), f);
    }
    removeFixture(root);
  });

  it('server-2s: 6.12 has cpuset.cpus.exclusive and isolated; refusing IRQs use EPERM; policies per core', () => {
    const root = buildFixture('server-2s');
    assert.ok(fs.existsSync(path.join(root, 'sys/fs/cgroup/cpuset.cpus.isolated')));
    assert.ok(fs.existsSync(path.join(root, 'sys/fs/cgroup/system.slice/cpuset.cpus.exclusive')));
    assert.equal(rd(root, '/proc/irq/0/.sim-refuse'), 'EPERM\n');
    assert.equal(
      fs.realpathSync(path.join(root, 'sys/devices/system/cpu/cpu40/cpufreq')),
      path.join(fs.realpathSync(root), 'sys/devices/system/cpu/cpufreq/policy8'),
    );
    assert.equal(rd(root, '/sys/devices/system/cpu/cpufreq/policy8/affected_cpus'), '8 40\n');
    assert.equal(rd(root, '/sys/devices/system/node/node1/cpulist'), '16-31,48-63\n');
    assert.equal(rd(root, '/sys/devices/system/cpu/cpu17/topology/physical_package_id'), '1\n');
    assert.equal(rd(root, '/proc/irq/default_smp_affinity'), 'ffffffff,ffffffff\n');
    const rescuer = fixtureModel('server-2s').procs.find((p) => p.comm.startsWith('kworker/R-'));
    assert.ok(rescuer, '6.9+ names workqueue rescuers kworker/R-*');
    removeFixture(root);
  });

  it('v2-nocpuset: root subtree_control lacks cpuset; slices have no cpuset files; 6.1 has partition, no exclusive', () => {
    const root = buildFixture('v2-nocpuset');
    assert.equal(rd(root, '/sys/fs/cgroup/cgroup.subtree_control'), 'cpu io memory pids\n');
    assert.ok(rd(root, '/sys/fs/cgroup/cgroup.controllers').includes('cpuset'));
    assert.ok(!fs.existsSync(path.join(root, 'sys/fs/cgroup/user.slice/cpuset.cpus')));
    assert.ok(fs.existsSync(path.join(root, 'sys/fs/cgroup/cpuset.cpus.effective')));
    assert.ok(!fs.existsSync(path.join(root, 'sys/fs/cgroup/cpuset.cpus.isolated')));
    removeFixture(root);
  });

  it('hybrid-v1v2: every task in the root of cpuset/memory/cpu,cpuacct; slices in name=systemd and unified', () => {
    const root = buildFixture('hybrid-v1v2');
    assert.equal(
      rd(root, '/proc/800/cgroup'),
      '4:memory:/\n3:cpuset:/\n2:cpu,cpuacct:/\n1:name=systemd:/system.slice/ssh.service\n0::/system.slice/ssh.service\n',
    );
    assert.deepEqual(ids(rd(root, '/sys/fs/cgroup/systemd/system.slice/ssh.service/cgroup.procs')), [800]);
    assert.deepEqual(ids(rd(root, '/sys/fs/cgroup/unified/system.slice/ssh.service/cgroup.procs')), [800]);
    assert.ok(ids(rd(root, '/sys/fs/cgroup/cpuset/tasks')).includes(800));
    removeFixture(root);
  });
});

describe('fixture options', () => {
  it('offline: CPUs leave online, lose topology, per-CPU kthreads stay', () => {
    const root = buildFixture('hybrid-v1v2', { offline: '3,7' });
    assert.equal(rd(root, '/sys/devices/system/cpu/online'), '0-2,4-6\n');
    assert.equal(rd(root, '/sys/devices/system/cpu/offline'), '3,7\n');
    assert.equal(rd(root, '/sys/devices/system/cpu/cpu3/online'), '0\n');
    assert.ok(!fs.existsSync(path.join(root, 'sys/devices/system/cpu/cpu3/topology')));
    assert.equal(rd(root, '/sys/fs/cgroup/cpuset/cpuset.cpus'), '0-2,4-6\n');
    assert.ok(fixtureModel('hybrid-v1v2', { offline: '3,7' }).procs.some((p) => p.comm === 'ksoftirqd/3'));
    assert.ok(!rd(root, '/proc/interrupts').split('\n')[0]!.includes('CPU3'));
    assert.throws(() => fixtureModel('hybrid-v1v2', { offline: '0' }));
    removeFixture(root);
  });

  it('isolcpus and nohz_full: cmdline, sysfs lists, housekeeping-only unbound kthreads and workqueues', () => {
    const opts = { isolcpus: '8-15,24-31', nohzFull: '8-15,24-31' };
    const root = buildFixture('ryzen-5950x', opts);
    const model = fixtureModel('ryzen-5950x', opts);
    assert.match(rd(root, '/proc/cmdline'), / isolcpus=8-15,24-31 nohz_full=8-15,24-31\n$/);
    assert.equal(rd(root, '/sys/devices/system/cpu/isolated'), '8-15,24-31\n');
    assert.equal(rd(root, '/sys/devices/system/cpu/nohz_full'), '8-15,24-31\n');
    assert.equal(rd(root, '/sys/devices/virtual/workqueue/cpumask'), '00ff00ff\n');
    const kthreadd = model.procs.find((p) => p.pid === 2)!;
    assert.match(rd(root, `/proc/${kthreadd.pid}/status`), /^Cpus_allowed_list:\t0-7,16-23$/m);
    removeFixture(root);
  });

  it('irqbalance, kernel, bootId and extraProcs knobs', () => {
    assert.ok(!fixtureModel('ryzen-5950x', { irqbalance: false }).procs.some((p) => p.comm === 'irqbalance'));
    const withIrqb = fixtureModel('intel-6c12t', { irqbalance: true });
    assert.equal(withIrqb.procs.find((p) => p.comm === 'irqbalance')?.pid, 740);
    const m612 = fixtureModel('ryzen-5950x', { kernel: '6.12.1-arch1-1' });
    assert.equal(m612.irqs.find((q) => q.irq === 0)?.refuse, 'EPERM');
    const leak = fixtureModel('ryzen-5950x', {
      extraProcs: [
        { pid: 3000, comm: 'stress-ng', cmdline: ['stress-ng', '--cpu', '1'], cgroup: '/', affinity: '12' },
      ],
    });
    const p = leak.procs.find((x) => x.pid === 3000)!;
    assert.deepEqual([p.kind, p.cgroup, p.threads[0]!.affinity.toList()], ['user', '/', '12']);
    const root = buildFixture('ryzen-5950x', {
      bootId: '11111111-2222-4333-8444-555555555555',
      extraProcs: [{ pid: 3000, comm: 'stress-ng', cmdline: ['stress-ng'], cgroup: '/', affinity: '12' }],
    });
    assert.equal(rd(root, '/proc/sys/kernel/random/boot_id'), '11111111-2222-4333-8444-555555555555\n');
    assert.ok(ids(rd(root, '/sys/fs/cgroup/cgroup.procs')).includes(3000));
    assert.equal(
      rd(root, '/proc/3000/task/3000/.sim-user-affinity'),
      '12\n',
      'a pinned task records its user mask',
    );
    assert.throws(
      () => fixtureModel('ryzen-5950x', { extraProcs: [{ pid: 2400, comm: 'x', cmdline: [], cgroup: '/' }] }),
      /used twice/,
    );
    removeFixture(root);
  });

  it('dir option writes into an empty directory and refuses a non-empty one', () => {
    const dir = fs.mkdtempSync(path.join(fixtureTmpBase(), 'fx-'));
    const root = buildFixture('v2-nocpuset', { dir });
    assert.equal(root, fs.realpathSync(dir));
    assert.ok(fs.existsSync(path.join(dir, 'proc/self/mountinfo')));
    assert.throws(() => buildFixture('v2-nocpuset', { dir }), /not empty/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('CLI writes one tree for inspection', () => {
    const dir = fs.mkdtempSync(path.join(fixtureTmpBase(), 'fx-cli-'));
    const target = path.join(dir, 'tree');
    const script = path.join(import.meta.dirname, '../fixtures/build.ts');
    const r = spawnSync(process.execPath, ['--import', 'tsx', script, 'intel-6c12t', target], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), fs.realpathSync(target));
    assert.equal(
      fs.readFileSync(path.join(target, 'proc/sys/kernel/osrelease'), 'utf8'),
      '5.10.0-33-amd64\n',
    );
    const bad = spawnSync(process.execPath, ['--import', 'tsx', script, 'nope', target], {
      encoding: 'utf8',
    });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /usage/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('builds quickly (each machine well under 5 s, about 50-450 ms unloaded; every fixture test builds some)', (t) => {
    const times: string[] = [];
    const slow: string[] = [];
    for (const name of ALL) {
      const t0 = performance.now();
      const root = buildFixture(name);
      const ms = performance.now() - t0;
      times.push(`${name} ${ms.toFixed(0)} ms`);
      // 10x the slowest unloaded build: a machine shared by several test runs stays under it, a build that went
      // quadratic (e.g. per-thread rewrites of the whole cgroup tree) does not.
      if (ms > 5000) slow.push(`${name} ${ms.toFixed(0)} ms`);
      removeFixture(root);
    }
    t.diagnostic(times.join(', '));
    assert.deepEqual(slow, [], 'fixtures that took more than 5 s to build');
  });
});
