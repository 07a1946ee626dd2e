/**
 * Several isolations at once (issue 15, item 4): each VM isolates with its own journal, released in any order;
 * while a VM runs its CPUs stay isolated, and after the last release the tree is the one before the first isolate.
 * Intermediate states are compared with a fresh fixture that isolated only the remaining VMs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import * as v from 'valibot';
import { CpuSet } from '../../src/cpus/cpuset.ts';
import { StatusJson } from '../../src/report/json-schema.ts';
import { buildFixture } from '../fixtures/build.ts';
import { testBundle } from '../support/bundle.ts';
import { cli } from '../support/cli.ts';
import { diffTrees, simWrites, sysExists, sysRead, treeFiles, treeHash } from '../support/tree.ts';

const CG = 'sys/fs/cgroup';
const REGISTRY = 'run/vfio-isolate/reservations.json';
const HOST_JOURNAL = 'run/vfio-isolate/host.journal';

function allowedOf(root: string, pid: number): CpuSet {
  const m = /Cpus_allowed_list:\s*(.*)/.exec(fs.readFileSync(path.join(root, `proc/${pid}/status`), 'utf8'));
  return CpuSet.parseList(m?.[1] ?? '');
}
function journals(): (name: string) => string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-compose-'));
  return (name) => path.join(dir, `${name}.journal`);
}
function restored(file: string): boolean {
  return fs.readFileSync(file, 'utf8').includes('"t":"restored"');
}
async function ok(root: string, argv: string[], env: Record<string, string> = {}): Promise<string> {
  const r = await cli(root, argv, env);
  assert.equal(r.code, 0, `${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
/** The tree of a fresh fixture with only these VMs isolated (in this order). */
async function isolatedOnly(vms: string[]): Promise<Map<string, string>> {
  const root = buildFixture('ryzen-5950x');
  const j = journals();
  for (const [i, vm] of vms.entries()) await ok(root, ['-u', j(`only${i}`), 'isolate', vm]);
  return treeFiles(root);
}
function registry(root: string): { journal: string; vm: string }[] {
  if (!sysExists(root, REGISTRY)) return [];
  return JSON.parse(fs.readFileSync(path.join(root, REGISTRY), 'utf8')).reservations;
}

describe('the last release and a host journal with a malformed record', () => {
  it('refuses the whole host journal (exit 2, nothing changed) instead of leaving the host restricted', async () => {
    const root = buildFixture('ryzen-5950x');
    const a = journals()('a');
    await ok(root, ['-u', a, 'isolate', 'C8-15']);
    const host = path.join(root, HOST_JOURNAL);
    const lines = fs.readFileSync(host, 'utf8').split('\n');
    lines.splice(2, 0, JSON.stringify({ t: 'rec', run: 1, rec: { kind: 'nonsense' } }));
    fs.writeFileSync(host, lines.join('\n'));
    const before = treeHash(root);
    const r = await cli(root, ['-u', a, 'release']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /host\.journal line 3/);
    assert.equal(treeHash(root), before, 'nothing changed');
    assert.ok(!restored(a), 'the VM journal is not marked restored');
  });
});

describe('two VMs (A = C8-15, B = C24-31) on cgroup v2', () => {
  for (const order of ['A then B', 'B then A'] as const) {
    it(`released ${order}: the other VM stays isolated, then the tree before the first isolate comes back`, async () => {
      const root = buildFixture('ryzen-5950x');
      const j = journals();
      const a = j('a');
      const b = j('b');
      const before0 = treeFiles(root);
      await ok(root, ['-u', a, 'isolate', 'C8-15']);
      await ok(root, ['-u', b, 'isolate', 'C24-31']);
      for (const slice of ['system.slice', 'user.slice', 'init.scope'])
        assert.equal(sysRead(root, `${CG}/${slice}/cpuset.cpus`), '0-7,16-23', slice);
      assert.equal(allowedOf(root, 2).toList(), '0-7,16-23', 'kthreadd');
      assert.equal(sysRead(root, 'sys/devices/virtual/workqueue/cpumask'), '00ff00ff');
      assert.deepEqual(
        registry(root).map((r) => [r.journal, r.vm]),
        [
          [a, '8-15'],
          [b, '24-31'],
        ],
      );
      assert.deepEqual(diffTrees(await isolatedOnly(['C8-15', 'C24-31']), treeFiles(root)), []);
      const [first, second, firstVm, secondVm] =
        order === 'A then B' ? [a, b, 'C8-15', 'C24-31'] : [b, a, 'C24-31', 'C8-15'];
      await ok(root, ['release', first]);
      assert.ok(restored(first), 'the released journal is marked restored');
      assert.ok(!restored(second), 'the other journal is untouched');
      assert.deepEqual(
        registry(root).map((r) => r.journal),
        [second],
      );
      // exactly the state of a machine where only the remaining VM was isolated
      assert.deepEqual(diffTrees(await isolatedOnly([secondVm]), treeFiles(root)), []);
      const vm2 = CpuSet.parseList(secondVm.slice(1));
      assert.equal(allowedOf(root, 2).overlaps(vm2), false, 'kthreadd stays off the running VM');
      assert.ok(
        allowedOf(root, 2).has(CpuSet.parseList(firstVm.slice(1)).first!),
        'and may use the released CPUs',
      );
      const st = await cli(root, ['status']);
      assert.equal(st.code, 0, st.stdout);
      assert.match(st.stdout, new RegExp(`VM CPUs: ${vm2.toList()}`));
      await ok(root, ['release', second]);
      assert.ok(restored(second));
      assert.deepEqual(diffTrees(before0, treeFiles(root)), []);
      assert.equal(sysExists(root, REGISTRY), false, 'the registry is gone with the last reservation');
      assert.ok(restored(path.join(root, HOST_JOURNAL)), 'the host journal is restored');
    });
  }

  it('a release repeated, and restore FILE of a registered journal, behave like release', async () => {
    const root = buildFixture('ryzen-5950x');
    const j = journals();
    const before0 = treeFiles(root);
    await ok(root, ['-u', j('a'), 'isolate', 'C8-15']);
    await ok(root, ['-u', j('b'), 'isolate', 'C24-31']);
    await ok(root, ['restore', j('a')]);
    assert.deepEqual(diffTrees(await isolatedOnly(['C24-31']), treeFiles(root)), []);
    const again = await cli(root, ['release', j('a')]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /already restored/);
    assert.deepEqual(diffTrees(await isolatedOnly(['C24-31']), treeFiles(root)), []);
    await ok(root, ['-u', j('b'), 'release']);
    assert.deepEqual(diffTrees(before0, treeFiles(root)), []);
  });
});

describe('two VMs on cgroup v1 (tr-1920x: 2 nodes, A = C6-7, B = C9-10)', () => {
  it('released A first: node-bound kernel threads get their mask before the first isolate minus B', async () => {
    const root = buildFixture('tr-1920x');
    const j = journals();
    const before0 = treeFiles(root);
    const kthreads = fs
      .readFileSync(path.join(root, 'proc/2/task/2/children'), 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    const comm = (pid: number) => /^Name:\s*(.*)$/m.exec(sysRead(root, `proc/${pid}/status`))![1]!.trim();
    const kswapd = ['kswapd0', 'kswapd1'].map((name) => kthreads.find((id) => comm(id) === name)!);
    const nodes = kswapd.map((id) => allowedOf(root, id));
    assert.deepEqual(
      nodes.map((n) => n.toList()),
      ['0-5,12-17', '6-11,18-23'],
    );
    await ok(root, ['-u', j('a'), 'isolate', 'C6-7']);
    await ok(root, ['-u', j('b'), 'isolate', 'C9-10']);
    await ok(root, ['-u', j('a'), 'release']);
    // the CPUs A gave back return to each node's kswapd; B's stay off
    const b = CpuSet.parseList('9-10');
    assert.deepEqual(
      kswapd.map((id) => allowedOf(root, id).toList()),
      nodes.map((n) => n.minus(b).toList()),
    );
    await ok(root, ['-u', j('b'), 'release']);
    assert.deepEqual(diffTrees(before0, treeFiles(root)), []);
  });
});

describe('status lists the reservations', () => {
  it('human and --json (valid against the schema); the default VM CPUs are their union', async () => {
    const root = buildFixture('ryzen-5950x');
    const j = journals();
    await ok(root, ['-u', j('a'), 'isolate', 'C8-15']);
    await ok(root, ['-u', j('b'), 'isolate', 'C24-31']);
    const human = await cli(root, ['status']);
    assert.equal(human.code, 0, human.stdout);
    assert.match(human.stdout, /Active isolations:/);
    assert.match(human.stdout, new RegExp(`8-15 +${j('a')} +/machine\\.slice +\\S+ +active`));
    assert.match(human.stdout, new RegExp(`24-31 +${j('b')} +/machine\\.slice +\\S+ +active`));
    assert.match(human.stdout, /VM CPUs: 8-15,24-31 .*\n.*reserved by 2 active isolations/);
    const r = await cli(root, ['status', '--json']);
    const doc = v.parse(StatusJson, JSON.parse(r.stdout));
    assert.deepEqual(doc.vmCpus.source, 'reservations');
    assert.equal(doc.vmCpus.cpus, '8-15,24-31');
    assert.deepEqual(
      doc.reservations.map((x) => [x.journal, x.vmCpus, x.vmCgroup, x.journalState]),
      [
        [j('a'), '8-15', '/machine.slice', 'active'],
        [j('b'), '24-31', '/machine.slice', 'active'],
      ],
    );
    await ok(root, ['release', j('a')]);
    await ok(root, ['release', j('b')]);
    const none = v.parse(StatusJson, JSON.parse((await cli(root, ['status', '--json'])).stdout));
    assert.deepEqual(none.reservations, []);
    assert.doesNotMatch((await cli(root, ['status'])).stdout, /Active isolations/);
  });
});

describe('three VMs', () => {
  const VMS = { a: 'C8-15', b: 'C16-23', c: 'C24-31' } as const;
  for (const order of [
    ['b', 'a', 'c'],
    ['c', 'b', 'a'],
    ['a', 'c', 'b'],
  ] as const) {
    it(`released ${order.join(', ')}: each step equals isolating only the rest; then the original tree`, async () => {
      const root = buildFixture('ryzen-5950x');
      const j = journals();
      const before0 = treeFiles(root);
      for (const [name, vm] of Object.entries(VMS)) await ok(root, ['-u', j(name), 'isolate', vm]);
      assert.equal(sysRead(root, `${CG}/system.slice/cpuset.cpus`), '0-7');
      const left: string[] = ['a', 'b', 'c'];
      for (const name of order) {
        await ok(root, ['release', j(name)]);
        left.splice(left.indexOf(name), 1);
        if (left.length > 0)
          assert.deepEqual(
            diffTrees(await isolatedOnly(left.map((n) => VMS[n as keyof typeof VMS])), treeFiles(root)),
            [],
            `after releasing ${name}`,
          );
      }
      assert.deepEqual(diffTrees(before0, treeFiles(root)), []);
    });
  }
});

describe('overlapping VM CPUs', () => {
  it('are refused (exit 2, nothing changed), naming the journal that holds them', async () => {
    const root = buildFixture('ryzen-5950x');
    const j = journals();
    await ok(root, ['-u', j('a'), 'isolate', 'C8-15']);
    const h = treeHash(root);
    const writes = simWrites(root).length;
    const r = await cli(root, ['-u', j('b'), 'isolate', 'C12-19']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /CPUs 12-15 are already isolated for the VM of .*a\.journal/);
    assert.match(r.stderr, /--force/);
    assert.equal(treeHash(root), h);
    assert.equal(simWrites(root).length, writes, 'no write at all');
    assert.equal(fs.existsSync(j('b')), false, 'not even a journal');
    assert.equal(registry(root).length, 1);
  });

  it('--force shares them: the shared CPUs stay isolated until both are released', async () => {
    const root = buildFixture('ryzen-5950x');
    const j = journals();
    const before0 = treeFiles(root);
    await ok(root, ['-u', j('a'), 'isolate', 'C8-15']);
    await ok(root, ['--force', '-u', j('b'), 'isolate', 'C12-19']);
    assert.equal(sysRead(root, `${CG}/system.slice/cpuset.cpus`), '0-7,20-31');
    await ok(root, ['release', j('a')]);
    assert.equal(sysRead(root, `${CG}/system.slice/cpuset.cpus`), '0-11,20-31');
    assert.equal(allowedOf(root, 2).toList(), '0-11,20-31');
    await ok(root, ['release', j('b')]);
    assert.deepEqual(diffTrees(before0, treeFiles(root)), []);
  });

  it('leave no CPU for the host: refused', async () => {
    const root = buildFixture('ryzen-5950x');
    const j = journals();
    await ok(root, ['-u', j('a'), 'isolate', 'C8-31']);
    const h = treeHash(root);
    const r = await cli(root, ['--force', '-u', j('b'), 'isolate', 'C0-7']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /no CPU would be left for the host/);
    assert.equal(treeHash(root), h);
  });
});

describe('steps differ between the VMs', () => {
  it('a VM isolated with --no-irqs does not keep the IRQs of the other VM off its CPUs', async () => {
    const root = buildFixture('ryzen-5950x');
    const j = journals();
    const before0 = treeFiles(root);
    await ok(root, ['-u', j('a'), 'isolate', '--no-irqs', '--governor', 'performance', 'C8-15']);
    await ok(root, ['-u', j('b'), 'isolate', '--stat-interval', '10', 'C24-31']);
    const dflt = CpuSet.parseMask(sysRead(root, 'proc/irq/default_smp_affinity'));
    assert.equal(dflt.overlaps(CpuSet.parseList('24-31')), false);
    assert.ok(dflt.has(8), 'IRQs may still use the CPUs of the --no-irqs VM');
    assert.equal(sysRead(root, 'proc/sys/vm/stat_interval'), '10');
    await ok(root, ['release', j('b')]);
    assert.equal(sysRead(root, 'sys/devices/system/cpu/cpu8/cpufreq/scaling_governor'), 'performance');
    await ok(root, ['release', j('a')]);
    assert.deepEqual(diffTrees(before0, treeFiles(root)), []);
  });
});

describe('lost state', () => {
  it('a reservation whose journal was deleted: status says so; release gives its CPUs back', async () => {
    const root = buildFixture('ryzen-5950x');
    const j = journals();
    const before0 = treeFiles(root);
    await ok(root, ['-u', j('a'), 'isolate', 'C8-15']);
    await ok(root, ['-u', j('b'), 'isolate', 'C24-31']);
    fs.rmSync(j('a'));
    const st = await cli(root, ['status']);
    assert.match(st.stdout, /a\.journal .*journal missing/);
    const r = await cli(root, ['release', j('a')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /is missing/);
    assert.deepEqual(diffTrees(await isolatedOnly(['C24-31']), treeFiles(root)), []);
    await ok(root, ['release', j('b')]);
    assert.deepEqual(diffTrees(before0, treeFiles(root)), []);
  });

  it('a reservation whose journal was marked restored by hand, then a blank line added: it is over', async () => {
    const root = buildFixture('ryzen-5950x');
    const j = journals();
    const before0 = treeFiles(root);
    await ok(root, ['-u', j('a'), 'isolate', 'C8-15']);
    await ok(root, ['-u', j('b'), 'isolate', 'C24-31']);
    // a whole read skips blank lines: the journal is restored, whatever its last line is
    fs.appendFileSync(j('a'), JSON.stringify({ t: 'restored', at: new Date().toISOString() }) + '\n\n');
    const st = await cli(root, ['status']);
    assert.match(st.stdout, /a\.journal .*journal restored/);
    // its CPUs 8-15 are free again
    await ok(root, ['-u', j('c'), 'isolate', 'C12-13']);
    await ok(root, ['release', j('c')]);
    await ok(root, ['release', j('b')]);
    assert.deepEqual(diffTrees(before0, treeFiles(root)), []);
  });

  it('a reservation registered twice (a registry edited by hand): release drops both and gives its CPUs back', async () => {
    const root = buildFixture('ryzen-5950x');
    const j = journals();
    await ok(root, ['-u', j('a'), 'isolate', 'C8-15']);
    await ok(root, ['-u', j('b'), 'isolate', 'C24-31']);
    const file = path.join(root, REGISTRY);
    const reg = JSON.parse(fs.readFileSync(file, 'utf8')) as { reservations: { journal: string }[] };
    reg.reservations.push({ ...reg.reservations.find((r) => r.journal === j('a'))! });
    fs.writeFileSync(file, JSON.stringify(reg), { mode: 0o600 });
    await ok(root, ['release', j('a')]);
    assert.deepEqual(
      registry(root).map((r) => r.journal),
      [j('b')],
    );
    assert.deepEqual(diffTrees(await isolatedOnly(['C24-31']), treeFiles(root)), []);
  });

  it('release of a journal that is not registered undoes it alone and keeps the reservations right', async () => {
    const root = buildFixture('ryzen-5950x');
    const j = journals();
    await ok(root, ['-u', j('a'), 'isolate', 'C8-15']);
    const afterA = treeFiles(root);
    await ok(root, ['-u', j('x'), 'cpu-governor', 'performance', 'C16-17']);
    assert.equal(sysRead(root, 'sys/devices/system/cpu/cpu16/cpufreq/scaling_governor'), 'performance');
    await ok(root, ['release', j('x')]);
    assert.deepEqual(diffTrees(afterA, treeFiles(root)), []);
    assert.equal(registry(root).length, 1);
  });

  it('reset clears the registry and the host journal; the journals can still be released', async () => {
    const root = buildFixture('ryzen-5950x');
    const j = journals();
    await ok(root, ['-u', j('a'), 'isolate', 'C8-15']);
    await ok(root, ['-u', j('b'), 'isolate', 'C24-31']);
    const r = await cli(root, ['reset']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sysExists(root, REGISTRY), false);
    assert.ok(restored(path.join(root, HOST_JOURNAL)));
    assert.equal(allowedOf(root, 2).toList(), '0-31');
    const h = treeHash(root);
    await ok(root, ['release', j('a')]);
    await ok(root, ['release', j('b')]);
    assert.equal(treeHash(root), h, 'releases after reset change nothing');
    // and a new isolation starts from the reset state
    await ok(root, ['-u', j('c'), 'isolate', 'C8-15']);
    await ok(root, ['release', j('c')]);
    assert.equal(treeHash(root), h);
  });

  it('a registry and a host journal of an earlier boot are ignored: a reboot reset what they describe', async () => {
    const root = buildFixture('ryzen-5950x');
    const j = journals();
    await ok(root, ['-u', j('a'), 'isolate', 'C8-15']);
    // "reboot": a new boot id; the kernel state is what the fixture had
    const fresh = buildFixture('ryzen-5950x');
    fs.cpSync(path.join(root, 'run'), path.join(fresh, 'run'), { recursive: true });
    fs.writeFileSync(
      path.join(fresh, 'proc/sys/kernel/random/boot_id'),
      '11111111-2222-3333-4444-555555555555\n',
    );
    const before0 = treeFiles(fresh);
    await ok(fresh, ['-u', j('b'), 'isolate', 'C24-31']);
    assert.equal(
      sysRead(fresh, `${CG}/system.slice/cpuset.cpus`),
      '0-23',
      'A of the old boot is not reserved',
    );
    assert.deepEqual(
      registry(fresh).map((r) => r.vm),
      ['24-31'],
    );
    await ok(fresh, ['release', j('b')]);
    assert.deepEqual(diffTrees(before0, treeFiles(fresh)), []);
  });

  it('a registry owned by another user is refused (exit 2, naming it) by isolate, restore and release', async () => {
    const root = buildFixture('ryzen-5950x');
    const j = journals();
    await ok(root, ['-u', j('a'), 'isolate', 'C8-15']);
    fs.chownSync(path.join(root, REGISTRY), 1000, 1000);
    const h = treeHash(root);
    for (const argv of [
      ['-u', j('b'), 'isolate', 'C24-31'],
      ['restore', j('a')],
      ['release', j('a')],
    ]) {
      const r = await cli(root, argv);
      assert.equal(r.code, 2, `${argv.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /reservations\.json.*owned by uid 1000/);
      assert.equal(treeHash(root), h, argv.join(' '));
    }
  });

  it('a registry that others could write is refused (exit 2, naming it); reset removes it', async () => {
    const root = buildFixture('ryzen-5950x');
    const j = journals();
    await ok(root, ['-u', j('a'), 'isolate', 'C8-15']);
    fs.chmodSync(path.join(root, REGISTRY), 0o666);
    const h = treeHash(root);
    const r = await cli(root, ['-u', j('b'), 'isolate', 'C24-31']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /reservations\.json.*writable by/);
    assert.equal(treeHash(root), h);
    await ok(root, ['reset']);
    assert.equal(sysExists(root, REGISTRY), false);
  });
});

describe('crashes (SIGKILL) while two VMs compose', () => {
  let bundle = '';
  before(() => {
    bundle = testBundle();
  });
  const kill = (root: string, argv: string[], point: string): void => {
    const r = spawnSync(process.execPath, [bundle, ...argv], {
      env: { ...process.env, VFIO_ISOLATE_ROOT: root, VFIO_ISOLATE_FAULT: point },
      encoding: 'utf8',
    });
    // crash-before:K fires once step K's undo record is on disk; a step that records nothing (the registry
    // update) runs to the end instead, and the state is that of crash-after:K
    if (point.startsWith('crash-before:') && r.status === 0) return;
    assert.equal(r.signal, 'SIGKILL', `expected the process to be killed at ${point}: ${r.stderr}`);
  };
  const stepsOf = async (root: string, argv: string[]): Promise<number> => {
    const r = await cli(root, ['-n', '--json', ...argv]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).steps.length;
  };
  const points = (n: number): string[] =>
    Array.from({ length: n }, (_, i) => [`crash-before:${i + 1}`, `crash-after:${i + 1}`]).flat();

  it("B's isolate killed at every point: release B brings back A alone, release A the original tree", async () => {
    const probe = buildFixture('ryzen-5950x');
    const j0 = journals();
    await ok(probe, ['-u', j0('a'), 'isolate', 'C8-15']);
    const n = await stepsOf(probe, ['-u', j0('b'), 'isolate', 'C24-31']);
    assert.ok(n >= 6, `isolate of B has ${n} steps`);
    const onlyA = await isolatedOnly(['C8-15']);
    let exact = 0;
    for (const point of points(n)) {
      const root = buildFixture('ryzen-5950x');
      const j = journals();
      const before0 = treeFiles(root);
      await ok(root, ['-u', j('a'), 'isolate', 'C8-15']);
      kill(root, ['-u', j('b'), 'isolate', 'C24-31'], point);
      await ok(root, ['release', j('b')]);
      assert.deepEqual(diffTrees(onlyA, treeFiles(root)), [], `${point}: after release B`);
      await ok(root, ['release', j('a')]);
      assert.deepEqual(diffTrees(before0, treeFiles(root)), [], `${point}: after release A`);
      exact++;
    }
    assert.equal(exact, 2 * n);
  });

  it('release A killed at every point: release A again, then B; the original tree', async () => {
    const probe = buildFixture('ryzen-5950x');
    const j0 = journals();
    await ok(probe, ['-u', j0('a'), 'isolate', 'C8-15']);
    await ok(probe, ['-u', j0('b'), 'isolate', 'C24-31']);
    const n = await stepsOf(probe, ['release', j0('a')]);
    const onlyB = await isolatedOnly(['C24-31']);
    for (const point of points(n)) {
      const root = buildFixture('ryzen-5950x');
      const j = journals();
      const before0 = treeFiles(root);
      await ok(root, ['-u', j('a'), 'isolate', 'C8-15']);
      await ok(root, ['-u', j('b'), 'isolate', 'C24-31']);
      kill(root, ['release', j('a')], point);
      await ok(root, ['release', j('a')]);
      assert.deepEqual(diffTrees(onlyB, treeFiles(root)), [], `${point}: after release A`);
      await ok(root, ['release', j('b')]);
      assert.deepEqual(diffTrees(before0, treeFiles(root)), [], `${point}: after release B`);
    }
  });

  it('the last release killed at every point: release again; the original tree', async () => {
    const probe = buildFixture('ryzen-5950x');
    const j0 = journals();
    await ok(probe, ['-u', j0('a'), 'isolate', 'C8-15']);
    await ok(probe, ['-u', j0('b'), 'isolate', 'C24-31']);
    await ok(probe, ['release', j0('a')]);
    const n = await stepsOf(probe, ['release', j0('b')]);
    for (const point of points(n)) {
      const root = buildFixture('ryzen-5950x');
      const j = journals();
      const before0 = treeFiles(root);
      await ok(root, ['-u', j('a'), 'isolate', 'C8-15']);
      await ok(root, ['-u', j('b'), 'isolate', 'C24-31']);
      await ok(root, ['release', j('a')]);
      kill(root, ['release', j('b')], point);
      await ok(root, ['release', j('b')]);
      assert.deepEqual(diffTrees(before0, treeFiles(root)), [], `${point}`);
      assert.equal(sysExists(root, REGISTRY), false);
    }
  });
});
