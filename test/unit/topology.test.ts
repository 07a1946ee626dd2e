/** topology: groups and notation on every fixture machine, and suggestSplit's rules on synthetic topologies. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CpuSet } from '../../src/cpus/cpuset.ts';
import { topologyFromSpec, type TopologySpec } from '../../src/cpus/topology-model.ts';
import { paint, table, visibleWidth, wrapWords } from '../../src/report/table.ts';
import {
  physicalCores,
  shortNotation,
  suggestSplit,
  wholeCores,
  type SplitInput,
} from '../../src/report/topology-view.ts';
import { orderL3Domains } from '../../src/cpus/topology-model.ts';
import { buildFixture, listMachines, type MachineName } from '../fixtures/build.ts';
import { cli } from '../support/cli.ts';

const L = (s: string): CpuSet => CpuSet.parseList(s);
const topo = (spec: TopologySpec, extra: Partial<SplitInput> = {}): SplitInput => ({
  ...topologyFromSpec(spec),
  ...extra,
});

const RYZEN = topo({ cpus: 32, smtOffset: 16, l3: ['0-7,16-23', '8-15,24-31'] });
const TR = topo({
  cpus: 24,
  smtOffset: 12,
  nodes: ['0-5,12-17', '6-11,18-23'],
  l3: ['0-2,12-14', '3-5,15-17', '6-8,18-20', '9-11,21-23'],
});

/** Every SMT sibling of a CPU in `set` is in `set`. */
function siblingComplete(set: CpuSet, t: SplitInput): boolean {
  return [...set].every((c) => (t.siblings.get(c) ?? CpuSet.of([c])).intersect(t.online).isSubsetOf(set));
}

describe('suggestSplit', () => {
  it('several L3 domains, one node: the VM gets every domain but L0 (Ryzen 5950X: CCD1)', () => {
    const s = suggestSplit(RYZEN);
    assert.equal(s.vm.toList(), '8-15,24-31');
    assert.equal(s.host.toList(), '0-7,16-23');
    assert.match(s.reason, /2 L3 cache domains/);
  });

  it('four L3 domains on one node: the VM gets L1-3', () => {
    const s = suggestSplit(
      topo({ cpus: 24, smtOffset: 12, l3: ['0-2,12-14', '3-5,15-17', '6-8,18-20', '9-11,21-23'] }),
    );
    assert.equal(s.host.toList(), '0-2,12-14');
    assert.equal(s.vm.toList(), '3-11,15-23');
    assert.match(s.reason, /L1-3/);
  });

  it('two NUMA nodes win over L3 domains: the VM gets the last node (Threadripper 1920X: N1)', () => {
    const s = suggestSplit(TR);
    assert.equal(s.vm.toList(), '6-11,18-23');
    assert.equal(s.host.toList(), '0-5,12-17');
    assert.match(s.reason, /NUMA/);
  });

  it('a memory-only node is not "the last node"', () => {
    const s = suggestSplit(topo({ cpus: 16, smtOffset: 8, nodes: { 0: '0-3,8-11', 1: '4-7,12-15', 2: '' } }));
    assert.equal(s.vm.toList(), '4-7,12-15');
  });

  it('one L3 domain with up to 8 cores: the host keeps core 0 with its sibling', () => {
    const s = suggestSplit(topo({ cpus: 12, smtOffset: 6 }));
    assert.equal(s.host.toList(), '0,6');
    assert.equal(s.vm.toList(), '1-5,7-11');
  });

  it('one L3 domain with more than 8 cores: the host keeps cores 0 and 1', () => {
    const s = suggestSplit(topo({ cpus: 20, smtOffset: 10 }));
    assert.equal(s.host.toList(), '0-1,10-11');
    assert.equal(s.vm.toList(), '2-9,12-19');
  });

  it('without SMT, cores are single CPUs', () => {
    const s = suggestSplit(topo({ cpus: 4 }));
    assert.equal(s.host.toList(), '0');
    assert.equal(s.vm.toList(), '1-3');
  });

  it('a single core leaves nothing for a VM', () => {
    const s = suggestSplit(topo({ cpus: 2, smtOffset: 1 }));
    assert.ok(s.vm.isEmpty);
    assert.equal(s.host.toList(), '0-1');
    assert.match(s.reason, /single core/);
  });

  it('CPUs isolated at boot (whole cores) are the VM CPUs', () => {
    const s = suggestSplit({ ...RYZEN, isolated: L('4-7,20-23') });
    assert.equal(s.vm.toList(), '4-7,20-23');
    assert.match(s.reason, /isolated at boot/);
  });

  it('isolated CPUs that split a core are ignored', () => {
    const s = suggestSplit({ ...RYZEN, isolated: L('8-15') });
    assert.equal(s.vm.toList(), '8-15,24-31');
  });

  it('works on online CPUs only, and is always sibling-complete and a partition of the online CPUs', () => {
    const cases: SplitInput[] = [
      RYZEN,
      TR,
      topo({ cpus: 12, smtOffset: 6 }),
      topo({ cpus: 32, smtOffset: 16, online: '0-30', l3: ['0-7,16-23', '8-15,24-31'] }),
      topo({ cpus: 24, smtOffset: 12, online: '0-10,12-22', nodes: ['0-5,12-17', '6-11,18-23'] }),
    ];
    for (const t of cases) {
      const s = suggestSplit(t);
      assert.ok(siblingComplete(s.vm, t) && siblingComplete(s.host, t), s.reason);
      assert.ok(s.vm.union(s.host).equals(t.online));
      assert.ok(!s.vm.overlaps(s.host));
      assert.ok(!s.host.isEmpty);
    }
    assert.equal(suggestSplit(cases[3]!).vm.toList(), '8-15,24-30');
  });
});

describe('topology helpers', () => {
  it('physicalCores groups SMT siblings, ordered by lowest CPU', () => {
    assert.deepEqual(
      physicalCores(topo({ cpus: 8, smtOffset: 4 })).map((c) => c.toList()),
      ['0,4', '1,5', '2,6', '3,7'],
    );
  });

  it('wholeCores adds the siblings', () => {
    assert.equal(wholeCores(L('8-9'), RYZEN).toList(), '8-9,24-25');
  });

  it('shortNotation names whole nodes, L3 domains and packages, else nothing', () => {
    assert.equal(shortNotation(L('6-11,18-23'), TR), 'N1');
    assert.equal(shortNotation(L('3-5,15-17'), TR), 'L1');
    assert.equal(shortNotation(L('3-11,15-23'), TR), 'L1-3');
    assert.equal(shortNotation(L('8-15,24-31'), RYZEN), 'L1');
    assert.equal(shortNotation(L('8-15'), RYZEN), undefined);
    assert.equal(shortNotation(L('1-5,7-11'), topo({ cpus: 12, smtOffset: 6 })), undefined);
  });
});

describe('table', () => {
  it('aligns columns by visible width (colour codes ignored), right-aligns on request, trims line ends', () => {
    const red = paint(true).red;
    const out = table(
      [
        ['a', red('xx'), '1'],
        ['bbb', 'y', '100'],
      ],
      { header: ['K', 'V', 'N'], align: ['left', 'left', 'right'], indent: '  ' },
    );
    assert.equal(
      out.replaceAll('\x1b[31m', '').replaceAll('\x1b[0m', ''),
      '  K    V     N\n  a    xx    1\n  bbb  y   100\n',
    );
    assert.equal(visibleWidth(red('abc')), 3);
    assert.equal(paint(false).red('abc'), 'abc');
  });

  it('a multi-line cell makes a taller row; other cells stay on its first line', () => {
    const out = table([
      ['L0', wrapWords(['0/8', '1/9', '2/10'], 8)],
      ['L1', 'x'],
    ]);
    assert.equal(out, 'L0  0/8 1/9\n    2/10\nL1  x\n');
  });
});

interface TopoJson {
  cpus: { online: string; offline: string };
  threadsPerCore: number;
  packages: { id: number; cpuNotation: string }[];
  l3: { notation: string; cpuNotation: string; nodes: number[]; cores: string[] }[];
  nodes: { notation: string; cpuNotation: string | null; memoryKiB: number }[];
  cores: { cpus: string }[];
  suggestion: { host: string; vm: string; vmShort: string | null; reason: string };
}

async function topoJson(root: string): Promise<TopoJson> {
  const r = await cli(root, ['topology', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as TopoJson;
}

const EXPECT: Record<
  MachineName,
  { l3: string[]; nodes: string[]; packages: string[]; vm: string; cores: number; threads?: number }
> = {
  'ryzen-5950x': {
    l3: ['C0-7,16-23', 'C8-15,24-31'],
    nodes: ['C0-31'],
    packages: ['C0-31'],
    vm: '8-15,24-31',
    cores: 16,
  },
  'tr-1920x': {
    l3: ['C0-2,12-14', 'C3-5,15-17', 'C6-8,18-20', 'C9-11,21-23'],
    nodes: ['C0-5,12-17', 'C6-11,18-23'],
    packages: ['C0-23'],
    vm: '6-11,18-23',
    cores: 12,
  },
  'intel-6c12t': { l3: ['C0-11'], nodes: ['C0-11'], packages: ['C0-11'], vm: '1-5,7-11', cores: 6 },
  'server-2s': {
    l3: ['C0-15,32-47', 'C16-31,48-63'],
    nodes: ['C0-15,32-47', 'C16-31,48-63'],
    packages: ['C0-15,32-47', 'C16-31,48-63'],
    vm: '16-31,48-63',
    cores: 32,
  },
  'hybrid-v1v2': { l3: ['C0-7'], nodes: ['C0-7'], packages: ['C0-7'], vm: '1-3,5-7', cores: 4 },
  'v2-nocpuset': { l3: ['C0-7'], nodes: ['C0-7'], packages: ['C0-7'], vm: '1-3,5-7', cores: 4 },
  // index3/id differs per CPU; shared_cpu_list says 0-3 and 4-7: two domains, not eight
  'guest-l3-ids': {
    l3: ['C0-3', 'C4-7'],
    nodes: ['C0-7'],
    packages: ['C0-7'],
    vm: '4-7',
    cores: 8,
    threads: 1,
  },
};

describe('vfio-isolate topology on the fixture machines', () => {
  for (const name of listMachines()) {
    it(`${name}: packages, L3 domains, nodes, cores and the split`, async () => {
      const root = buildFixture(name);
      const j = await topoJson(root);
      const want = EXPECT[name];
      assert.deepEqual(
        j.l3.map((d) => d.cpuNotation),
        want.l3,
      );
      assert.deepEqual(
        j.l3.map((d) => d.notation),
        want.l3.map((_, i) => `L${i}`),
      );
      assert.deepEqual(
        j.nodes.map((n) => n.cpuNotation),
        want.nodes,
      );
      assert.deepEqual(
        j.packages.map((p) => p.cpuNotation),
        want.packages,
      );
      assert.equal(j.cores.length, want.cores);
      assert.equal(j.threadsPerCore, want.threads ?? 2);
      assert.equal(j.suggestion.vm, want.vm);
      assert.ok(j.nodes.every((n) => n.memoryKiB > 0));
      // every core is a sibling group (a pair with SMT), and the groups of an L3 domain cover it exactly
      for (const d of j.l3) {
        const union = d.cores.reduce((a, c) => a.union(L(c)), CpuSet.EMPTY);
        assert.equal(`C${union.toList()}`, d.cpuNotation);
        assert.ok(d.cores.every((c) => L(c).size === (want.threads ?? 2)));
      }
      // the notation printed parses back to the same CPUs on this machine
      const r = await cli(root, ['status', '--json', `C${j.suggestion.vm}`]);
      assert.equal((JSON.parse(r.stdout) as { vmCpus: { cpus: string } }).vmCpus.cpus, want.vm);
    });
  }

  it('guest-l3-ids: index3/id differs per CPU, shared_cpu_list says 0-3 and 4-7: 2 L3 domains, L1 = CPUs 4-7', async () => {
    const root = buildFixture('guest-l3-ids');
    const r = await cli(root, ['topology']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /, 2 L3 cache domains$/m);
    assert.match(r.stdout, /^L1 +N0 +C4-7 /m);
    const plan = await cli(root, ['-n', 'cpuset-modify', '--cpus', 'L1', '/system.slice']);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /cpuset\.cpus: "" -> "4-7"/);
    const bad = await cli(root, ['-n', 'cpuset-modify', '--cpus', 'L2', '/system.slice']);
    assert.equal(bad.code, 2, 'there is no third domain');
  });

  it('orderL3Domains: the same domain seen from each CPU counts once; overlapping lists merge', () => {
    const d = orderL3Domains(['4-7', '0-3', '4-7', '0-3', '', '3,8'].map((l) => CpuSet.parseList(l)));
    assert.deepEqual(
      d.map((s) => s.toList()),
      ['0-3,8', '4-7'],
    );
  });

  it('says when to use isolate, a partition, or both, from the kernel and cgroup version of the machine', async () => {
    const text = async (m: MachineName): Promise<string> =>
      (await cli(buildFixture(m), ['topology'])).stdout.replace(/\n +/g, ' ');
    // 6.12, cgroup v2: both
    assert.match(await text('ryzen-5950x'), /vfio-isolate partition DOMAIN.*Use both for the least jitter\./);
    // 6.1, cgroup v2: no cpuset.cpus.exclusive yet
    assert.match(await text('v2-nocpuset'), /need Linux 6\.7 or newer on cgroup v2: this kernel is 6\.1\./);
    // cgroup v1 cpusets
    assert.match(
      await text('tr-1920x'),
      /need Linux 6\.7 or newer on cgroup v2: this machine has no cgroup v2/,
    );
    assert.doesNotMatch(await text('tr-1920x'), /Use both/);
  });

  it('ryzen-5950x: one row per CCD with sibling pairs, notations to copy, the split and how to apply it', async () => {
    const r = await cli(buildFixture('ryzen-5950x'), ['topology']);
    assert.equal(r.code, 0);
    assert.equal(r.stderr, '');
    const lines = r.stdout.split('\n');
    assert.ok(lines.includes('L0  N0    C0-7,16-23   0/16 1/17 2/18 3/19 4/20 5/21 6/22 7/23'), r.stdout);
    assert.ok(
      lines.includes('L1  N0    C8-15,24-31  8/24 9/25 10/26 11/27 12/28 13/29 14/30 15/31'),
      r.stdout,
    );
    assert.match(
      r.stdout,
      /^Machine: 32 CPUs online \(0-31\), 16 cores, 2 threads per core, 1 package, 1 NUMA node, 2 L3 cache domains$/m,
    );
    assert.match(r.stdout, /^ {2}host {2}C0-7,16-23 {3}= L0 {2}16 CPUs$/m);
    assert.match(r.stdout, /^ {2}vm {4}C8-15,24-31 {2}= L1 {2}16 CPUs$/m);
    assert.match(r.stdout, /To apply it: vfio-isolate isolate L1$/m);
    assert.ok(!r.stdout.includes('\x1b['), 'no colour without a TTY');
  });

  it('tr-1920x: nodes N0 = C0-5,12-17 and N1 = C6-11,18-23, four CCX rows, 24-31 possible but absent', async () => {
    const r = await cli(buildFixture('tr-1920x'), ['topology']);
    const lines = r.stdout.split('\n');
    assert.ok(
      lines.some((l) => /^N0 +C0-5,12-17 +32\.0 GiB +L0,L1$/.test(l)),
      r.stdout,
    );
    assert.ok(
      lines.some((l) => /^N1 +C6-11,18-23 +32\.0 GiB +L2,L3$/.test(l)),
      r.stdout,
    );
    for (const row of ['L0  N0    C0-2,12-14   0/12 1/13 2/14', 'L3  N1    C9-11,21-23  9/21 10/22 11/23']) {
      assert.ok(lines.includes(row), row);
    }
    assert.match(r.stdout, /^Possible but not present: 24-31$/m);
    assert.match(r.stdout, /To apply it: vfio-isolate isolate N1$/m);
  });

  it('server-2s: long core lists wrap inside their column', async () => {
    const r = await cli(buildFixture('server-2s'), ['topology']);
    const lines = r.stdout.split('\n');
    const i = lines.findIndex((l) => l.startsWith('L0 '));
    assert.match(lines[i]!, /^L0 {2}N0 {4}C0-15,32-47 {3}0\/32 1\/33 /);
    assert.match(lines[i + 1]!, /^ {24}\d+\/\d+ /, 'continuation aligned under the CORES column');
    assert.ok(
      lines.every((l) => l.length <= 110),
      'fits 110 columns',
    );
  });

  it('offline CPUs: listed, and left out of cores and the split', async () => {
    const j = await topoJson(buildFixture('tr-1920x', { offline: '11,23' }));
    assert.equal(j.cpus.offline, '11,23');
    assert.equal(j.cpus.online, '0-10,12-22');
    assert.equal(j.cores.length, 11);
    assert.equal(j.suggestion.vm, '6-10,18-22');
  });

  it('global --json and topology --json give the same document', async () => {
    const root = buildFixture('intel-6c12t');
    const a = await cli(root, ['--json', 'topology']);
    const b = await cli(root, ['topology', '--json']);
    assert.equal(a.stdout, b.stdout);
    assert.doesNotThrow(() => JSON.parse(a.stdout));
  });

  it('colour only on a TTY', async () => {
    const { runCli } = await import('../../src/cli/run.ts');
    const { COMMANDS } = await import('../../src/cli/table.ts');
    const { simKernel } = await import('../support/sim.ts');
    const root = buildFixture('intel-6c12t');
    let out = '';
    const run = (env: Record<string, string>) =>
      runCli(['topology'], {
        table: COMMANDS,
        env,
        kernel: () => simKernel(root),
        streams: { out: (s) => void (out += s), err: () => {}, isTTY: true },
      });
    await run({});
    assert.ok(out.includes('\x1b[1m'), 'bold headings on a TTY');
    out = '';
    await run({ NO_COLOR: '1' });
    assert.ok(!out.includes('\x1b['), 'NO_COLOR honoured');
  });
});
