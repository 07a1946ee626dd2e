/** The nine 0.5.2 commands on fixture machines: exact values written, and the tree restored exactly. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { CpuSet } from '../../src/cpus/cpuset.ts';
import { buildFixture } from '../fixtures/build.ts';
import { cli, cliOn } from '../support/cli.ts';
import { SimFs } from '../support/simfs.ts';
import { seedHookArgv } from '../support/seed.ts';
import { diffTrees, simWrites, sysExists, sysRead, treeFiles, treeHash } from '../support/tree.ts';

const CG = 'sys/fs/cgroup';
const undoPath = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-undo-')), 'undo');

async function ok(root: string, argv: string[]) {
  const r = await cli(root, argv);
  assert.equal(r.code, 0, `${argv.join(' ')} → ${r.code}\n${r.stderr}`);
  return r;
}

/** Run argv with -u, check `check`, restore, and assert the tree equals the original byte for byte. */
async function roundTrip(root: string, argv: string[], check: () => void) {
  const before = treeFiles(root);
  const undo = undoPath();
  const r = await ok(root, ['-u', undo, ...argv]);
  assert.equal(r.stdout, '', 'compatible commands print nothing on success');
  check();
  await ok(root, ['restore', undo]);
  assert.deepEqual(diffTrees(before, treeFiles(root)), []);
  return undo;
}

function irqLists(root: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const n of fs.readdirSync(path.join(root, 'proc/irq'))) {
    if (!/^\d+$/.test(n)) continue;
    const f = path.join(root, 'proc/irq', n, 'smp_affinity_list');
    if (fs.existsSync(f)) out.set(Number(n), fs.readFileSync(f, 'utf8').trim());
  }
  return out;
}

describe('seed example 1: cgroup v2, Ryzen 5950X, slices restricted', () => {
  it('writes cpuset.cpus of both slices and restores "" (inherit)', async () => {
    const root = buildFixture('ryzen-5950x');
    assert.equal(sysRead(root, `${CG}/system.slice/cpuset.cpus`), '');
    await roundTrip(
      root,
      [
        'cpuset-modify',
        '--cpus',
        'C0-6,16-22',
        '/system.slice',
        'cpuset-modify',
        '--cpus',
        'C0-6,16-22',
        '/user.slice',
      ],
      () => {
        assert.equal(sysRead(root, `${CG}/system.slice/cpuset.cpus`), '0-6,16-22');
        assert.equal(sysRead(root, `${CG}/user.slice/cpuset.cpus`), '0-6,16-22');
        assert.equal(sysRead(root, `${CG}/user.slice/cpuset.cpus.effective`), '0-6,16-22');
        assert.equal(sysRead(root, `${CG}/machine.slice/cpuset.cpus`), '');
      },
    );
  });
});

describe('seed example 2: cgroup v1, Intel 6c/12t, host.slice + move-tasks', () => {
  it('creates host.slice with the given CPUs and the parent mems, moves the movable tasks, restore undoes all', async () => {
    const root = buildFixture('intel-6c12t');
    const rootTasks = sysRead(root, `${CG}/cpuset/tasks`).split('\n');
    await roundTrip(
      root,
      ['cpuset-create', '--cpus', 'C0-1,6-7', '/host.slice', 'move-tasks', '/', '/host.slice'],
      () => {
        assert.equal(sysRead(root, `${CG}/cpuset/host.slice/cpuset.cpus`), '0-1,6-7');
        assert.equal(
          sysRead(root, `${CG}/cpuset/host.slice/cpuset.mems`),
          sysRead(root, `${CG}/cpuset/cpuset.mems`),
        );
        const moved = sysRead(root, `${CG}/cpuset/host.slice/tasks`).split('\n').filter(Boolean);
        const left = sysRead(root, `${CG}/cpuset/tasks`).split('\n').filter(Boolean);
        assert.ok(moved.length > 0, 'tasks moved');
        assert.ok(left.length > 0, 'per-CPU kernel threads stay');
        assert.equal(moved.length + left.length, rootTasks.length);
        for (const tid of left) {
          const stat = fs.readFileSync(path.join(root, 'proc', tid, 'stat'), 'utf8');
          const flags = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[6]);
          assert.ok(flags & 0x04000000, `task ${tid} left behind must be a pinned kernel thread`);
        }
      },
    );
  });

  it('cpuset-delete moves the tasks to the parent and removes the cpuset; restore recreates it with its settings', async () => {
    const root = buildFixture('intel-6c12t');
    await ok(root, ['cpuset-create', '--cpus', 'C0-1,6-7', '/host.slice', 'move-tasks', '/', '/host.slice']);
    const inHost = sysRead(root, `${CG}/cpuset/host.slice/tasks`);
    await roundTrip(root, ['cpuset-delete', '/host.slice'], () => {
      assert.equal(sysExists(root, `${CG}/cpuset/host.slice`), false);
    });
    assert.equal(sysRead(root, `${CG}/cpuset/host.slice/cpuset.cpus`), '0-1,6-7');
    assert.deepEqual(
      sysRead(root, `${CG}/cpuset/host.slice/tasks`).split('\n').sort(),
      inHost.split('\n').sort(),
    );
  });
});

describe('seed example 3: NUMA, Threadripper 1920X (hybrid v1+v2)', () => {
  it('uses the v1 cpuset hierarchy although the controller-less cgroup2 is mounted first', async () => {
    const root = buildFixture('tr-1920x');
    await roundTrip(
      root,
      [
        'cpuset-create',
        '--cpus',
        'N0',
        '--mems',
        'N0',
        '-mm',
        '/host.slice',
        'move-tasks',
        '/',
        '/host.slice',
      ],
      () => {
        assert.equal(sysRead(root, `${CG}/cpuset/host.slice/cpuset.cpus`), '0-5,12-17');
        assert.equal(sysRead(root, `${CG}/cpuset/host.slice/cpuset.mems`), '0');
        assert.equal(sysRead(root, `${CG}/cpuset/host.slice/cpuset.memory_migrate`), '1');
        assert.equal(sysExists(root, `${CG}/unified/host.slice`), false);
      },
    );
  });
});

describe('the seed libvirt hook sequence', () => {
  for (const machine of ['ryzen-5950x', 'server-2s'] as const) {
    it(`${machine}: drop-caches, two cpuset-modify, compact-memory, irq-affinity mask, then restore`, async () => {
      const root = buildFixture(machine);
      const irqsBefore = irqLists(root);
      const host = machine === 'ryzen-5950x' ? 'C0-6,16-22' : 'C0-7,32-39';
      const vm = machine === 'ryzen-5950x' ? 'C7-15,23-31' : 'C8-31,40-63';
      await roundTrip(root, seedHookArgv(host, vm), () => {
        const log = simWrites(root).join('\n');
        assert.match(log, /drop_caches "3"/);
        assert.match(log, /compact_memory "1"/);
        // 0.5.2's rule, written out here rather than taken from the code: the IRQ's CPUs minus the VM's, or every
        // online CPU minus the VM's when that leaves no online CPU.
        const vmCpus = CpuSet.parseList(vm.slice(1));
        const online = CpuSet.parseList(sysRead(root, 'sys/devices/system/cpu/online'));
        let masked = 0;
        for (const [irq, list] of irqLists(root)) {
          const before = irqsBefore.get(irq)!;
          const refuses = sysExists(root, `proc/irq/${irq}/.sim-refuse`);
          if (refuses) {
            assert.equal(list, before, `IRQ ${irq} refuses and must be unchanged`);
            continue;
          }
          const rest = CpuSet.parseList(before).minus(vmCpus);
          const want = rest.intersect(online).isEmpty ? online.minus(vmCpus) : rest;
          assert.equal(list, want.toList(), `IRQ ${irq}: ${before} masked with ${vm}`);
          if (list !== before) masked++;
        }
        assert.ok(masked > 3);
        // Both branches of the rule occur on the Ryzen: an IRQ only on VM CPUs goes to every host CPU.
        const onlyVm = [...irqsBefore].filter(
          ([irq, b]) =>
            !sysExists(root, `proc/irq/${irq}/.sim-refuse`) && CpuSet.parseList(b).minus(vmCpus).isEmpty,
        );
        if (machine === 'ryzen-5950x') assert.ok(onlyVm.length > 0, 'the fixture has an IRQ only on VM CPUs');
        for (const [irq] of onlyVm) assert.equal(irqLists(root).get(irq), online.minus(vmCpus).toList());
      });
    });
  }
});

describe('irq-affinity', () => {
  it('mask keeps IRQs off the CPUs, add puts them back, managed IRQs are skipped and listed with -v', async () => {
    const root = buildFixture('ryzen-5950x');
    const r = await ok(root, ['-v', 'irq-affinity', 'mask', 'C8-15,24-31']);
    assert.match(r.stderr, /skipped \d+: \d+ managed by the kernel/);
    for (const [irq, list] of irqLists(root)) {
      if (sysExists(root, `proc/irq/${irq}/.sim-refuse`)) continue;
      for (const part of list.split(',')) {
        const [a, b] = part.split('-').map(Number);
        for (let c = a!; c <= (b ?? a!); c++)
          assert.ok(c < 8 || (c > 15 && c < 24), `IRQ ${irq} still on CPU ${c}`);
      }
    }
    const masked = irqLists(root);
    await ok(root, ['irq-affinity', 'add', 'C8-15,24-31']);
    // add = the IRQ's CPUs plus the given ones, for every IRQ that accepts a new mask.
    const added = CpuSet.parseList('8-15,24-31');
    let changed = 0;
    for (const [irq, list] of irqLists(root)) {
      const was = masked.get(irq)!;
      if (sysExists(root, `proc/irq/${irq}/.sim-refuse`)) assert.equal(list, was, `IRQ ${irq} refuses`);
      else {
        assert.equal(list, CpuSet.parseList(was).union(added).toList(), `IRQ ${irq}: ${was} + 8-15,24-31`);
        changed++;
      }
    }
    assert.ok(changed > 3);
  });
});

describe('cpu-governor', () => {
  it('writes each policy once, checks the governor, restores the old one', async () => {
    const root = buildFixture('ryzen-5950x');
    await roundTrip(root, ['cpu-governor', 'performance', 'C8-15,24-31'], () => {
      assert.equal(sysRead(root, 'sys/devices/system/cpu/cpu8/cpufreq/scaling_governor'), 'performance');
      assert.equal(sysRead(root, 'sys/devices/system/cpu/cpu0/cpufreq/scaling_governor'), 'schedutil');
    });
    const bad = await cli(root, ['cpu-governor', 'turbo', 'C8']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /governor "turbo" is not available/);
  });
});

describe('cgroup v2 top-down enabling', () => {
  it('enables cpuset in the root subtree_control before writing a slice, and restore disables it again', async () => {
    const root = buildFixture('v2-nocpuset');
    assert.doesNotMatch(sysRead(root, `${CG}/cgroup.subtree_control`), /cpuset/);
    await roundTrip(root, ['cpuset-modify', '--cpus', 'C0-3', '/system.slice'], () => {
      assert.match(sysRead(root, `${CG}/cgroup.subtree_control`), /cpuset/);
      assert.equal(sysRead(root, `${CG}/system.slice/cpuset.cpus`), '0-3');
    });
  });

  it('plans the children of a cgroup that does not enable cpuset without reading their cpuset files (there are none)', async () => {
    const root = buildFixture('v2-nocpuset');
    const missing: string[] = [];
    const fsx = new (class extends SimFs {
      override read(p: string): string {
        try {
          return super.read(p);
        } catch (e) {
          if (/\/cpuset\.(cpus|mems)$/.test(p)) missing.push(p);
          throw e;
        }
      }
    })(root);
    const undo = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-undo-')), 'undo');
    const r = await cliOn(fsx, ['-u', undo, 'cpuset-modify', '--cpus', 'C0-3', '/system.slice']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(missing, []);
    assert.equal(sysRead(root, `${CG}/system.slice/cpuset.cpus`), '0-3');
    assert.equal(sysRead(root, `${CG}/user.slice/cpuset.cpus`), '', 'a sibling: enabled, empty');
    assert.equal((await cliOn(new SimFs(root), ['restore', undo])).code, 0);
    assert.doesNotMatch(sysRead(root, `${CG}/cgroup.subtree_control`), /cpuset/);
  });

  it('cpuset-create of a nested cgroup on v2 leaves unset values empty (inherit)', async () => {
    const root = buildFixture('ryzen-5950x');
    await roundTrip(
      root,
      ['cpuset-create', '/machine.slice/vm1', 'cpuset-modify', '--cpus', 'C8-15', '/machine.slice/vm1'],
      () => {
        assert.equal(sysRead(root, `${CG}/machine.slice/vm1/cpuset.cpus`), '8-15');
        assert.equal(sysRead(root, `${CG}/machine.slice/vm1/cpuset.mems`), '');
      },
    );
  });
});

describe('v1-only flags', () => {
  it('are written on v1 and ignored with a warning on v2 (exit 0)', async () => {
    const v1 = buildFixture('intel-6c12t');
    await ok(v1, ['cpuset-create', '--cpus', 'C0-1,6-7', '-ce', '-nlb', '/host.slice']);
    assert.equal(sysRead(v1, `${CG}/cpuset/host.slice/cpuset.cpu_exclusive`), '1');
    assert.equal(sysRead(v1, `${CG}/cpuset/host.slice/cpuset.sched_load_balance`), '0');
    const v2 = buildFixture('ryzen-5950x');
    const h = treeHash(v2);
    const r = await ok(v2, ['cpuset-modify', '-ce', '/system.slice']);
    assert.match(r.stderr, /-ce has no effect on cgroup v2/);
    assert.equal(treeHash(v2), h);
  });
});

describe('errors change nothing', () => {
  const cases: [string, string[], number, RegExp][] = [
    ['reversed range', ['cpuset-modify', '--cpus', 'C5-2', '/system.slice'], 2, /reversed/],
    ['empty list', ['cpuset-modify', '--cpus', 'C', '/system.slice'], 2, /C/],
    ['CPU beyond the machine', ['irq-affinity', 'mask', 'C0-40'], 2, /do not exist/],
    ['.. in a cgroup path', ['cpuset-modify', '--cpus', 'C0', '/../etc'], 2, /".." is not allowed/],
    ['missing cgroup', ['cpuset-modify', '--cpus', 'C0', '/nope.slice'], 1, /does not exist/],
    ['delete a cgroup with children', ['cpuset-delete', '/'], 2, /root cgroup/],
    ['create an existing cgroup', ['cpuset-create', '/system.slice'], 1, /already exists/],
    ['restore of a missing file', ['restore', '/nonexistent/undo'], 1, /does not exist/],
  ];
  for (const [name, argv, code, re] of cases) {
    it(name, async () => {
      const root = buildFixture('ryzen-5950x');
      const h = treeHash(root);
      const r = await cli(root, argv);
      assert.equal(r.code, code, r.stderr);
      assert.match(r.stderr, re);
      assert.equal(
        r.stderr
          .split('\n')
          .filter(Boolean)
          .filter((l) => !l.startsWith('hint:')).length,
        1,
        'one line',
      );
      assert.equal(treeHash(root), h);
      assert.deepEqual(simWrites(root), []);
    });
  }
});

describe('restore lifecycle', () => {
  it('restoring twice is harmless and says so', async () => {
    const root = buildFixture('ryzen-5950x');
    const undo = await roundTrip(root, ['cpuset-modify', '--cpus', 'C0-3', '/user.slice'], () => {});
    const h = treeHash(root);
    const r = await ok(root, ['restore', undo]);
    assert.match(r.stderr, /already restored/);
    assert.equal(treeHash(root), h);
  });

  it('a journal of an earlier boot applies nothing unless --force', async () => {
    const root = buildFixture('ryzen-5950x');
    const undo = undoPath();
    await ok(root, ['-u', undo, 'cpuset-modify', '--cpus', 'C0-3', '/user.slice']);
    fs.writeFileSync(
      path.join(root, 'proc/sys/kernel/random/boot_id'),
      '11111111-2222-3333-4444-555555555555\n',
    );
    const r = await ok(root, ['restore', undo]);
    assert.match(r.stderr, /earlier boot/);
    assert.equal(sysRead(root, `${CG}/user.slice/cpuset.cpus`), '0-3');
  });

  it('a pickle from 0.5.2 is refused with exit 2 and a way out', async () => {
    const root = buildFixture('ryzen-5950x');
    const undo = undoPath();
    fs.writeFileSync(undo, Buffer.from([0x80, 0x04, 0x95, 0x20, 0, 0, 0, 0, 0, 0, 0, 0x5d, 0x94]));
    for (const argv of [
      ['restore', undo],
      ['-u', undo, 'drop-caches'],
    ]) {
      const r = await cli(root, argv);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /not a vfio-isolate journal/);
      assert.match(r.stderr, /hint: .*0\.5\.2/);
    }
    assert.deepEqual(simWrites(root), []);
  });
});

describe('move-tasks journal without per-task reads (a source other than the root)', () => {
  it('records the pids with the time they were listed; a reused pid is not moved back', async () => {
    const root = buildFixture('ryzen-5950x');
    const src = `${CG}/system.slice/ssh.service`;
    const members = sysRead(root, `${src}/cgroup.procs`).split('\n').filter(Boolean);
    assert.ok(members.length >= 1);
    await ok(root, ['cpuset-create', '/t.slice']);
    const undo = undoPath();
    await ok(root, ['-u', undo, 'move-tasks', '/system.slice/ssh.service', '/t.slice']);
    const rec = fs
      .readFileSync(undo, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { t: string; rec?: { kind: string; pids?: number[]; listedAt?: number } })
      .find((l) => l.rec?.kind === 'tasks')!.rec!;
    assert.deepEqual(rec.pids!.map(String).sort(), [...members].sort());
    assert.equal(rec.listedAt, 8640042, 'clock ticks of /proc/uptime');
    // The first member exits and its pid is reused by a new task (a later start time).
    const reused = members[0]!;
    for (const f of [`proc/${reused}/stat`, `proc/${reused}/task/${reused}/stat`]) {
      const text = fs.readFileSync(path.join(root, f), 'utf8');
      const close = text.lastIndexOf(')');
      const fields = text.slice(close + 2).split(' ');
      fields[19] = '9000000'; // field 22: started after the list was read
      fs.writeFileSync(path.join(root, f), text.slice(0, close + 2) + fields.join(' '));
    }
    await ok(root, ['restore', undo]);
    assert.deepEqual(sysRead(root, `${CG}/t.slice/cgroup.procs`).split('\n').filter(Boolean), [reused]);
    const back = sysRead(root, `${src}/cgroup.procs`).split('\n').filter(Boolean);
    assert.deepEqual(back.sort(), members.filter((m) => m !== reused).sort());
  });
});
