/** libvirt cputune: the vCPU order, guest topology and XML, checked line by line against the 0.5.2 README. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CpuSet } from '../../src/cpus/cpuset.ts';
import {
  defaultEmulatorCpus,
  guestTopology,
  planCputune,
  renderCputuneXml,
  vcpuOrder,
  type CoreLike,
} from '../../src/libvirt/cputune.ts';
import { buildFixture } from '../fixtures/build.ts';
import { cli } from '../support/cli.ts';

/** The pinning of the 0.5.2 README (PyPI page), example 1, verbatim. */
const SEED_5950X = `  <vcpu placement='static'>16</vcpu>
    <vcpupin vcpu='0' cpuset='8'/>
    <vcpupin vcpu='1' cpuset='24'/>
    <vcpupin vcpu='2' cpuset='9'/>
    <vcpupin vcpu='3' cpuset='25'/>
    <vcpupin vcpu='4' cpuset='10'/>
    <vcpupin vcpu='5' cpuset='26'/>
    <vcpupin vcpu='6' cpuset='11'/>
    <vcpupin vcpu='7' cpuset='27'/>
    <vcpupin vcpu='8' cpuset='12'/>
    <vcpupin vcpu='9' cpuset='28'/>
    <vcpupin vcpu='10' cpuset='13'/>
    <vcpupin vcpu='11' cpuset='29'/>
    <vcpupin vcpu='12' cpuset='14'/>
    <vcpupin vcpu='13' cpuset='30'/>
    <vcpupin vcpu='14' cpuset='15'/>
    <vcpupin vcpu='15' cpuset='31'/>
    <emulatorpin cpuset='7,23'/>
    <iothreadpin iothread='1' cpuset='7,23'/>
    <vcpusched vcpus='0' scheduler='rr' priority='1'/>
    <vcpusched vcpus='1' scheduler='rr' priority='1'/>
    <vcpusched vcpus='2' scheduler='rr' priority='1'/>
    <vcpusched vcpus='3' scheduler='rr' priority='1'/>
    <vcpusched vcpus='4' scheduler='rr' priority='1'/>
    <vcpusched vcpus='5' scheduler='rr' priority='1'/>
    <vcpusched vcpus='6' scheduler='rr' priority='1'/>
    <vcpusched vcpus='7' scheduler='rr' priority='1'/>
    <vcpusched vcpus='8' scheduler='rr' priority='1'/>
    <vcpusched vcpus='9' scheduler='rr' priority='1'/>
    <vcpusched vcpus='10' scheduler='rr' priority='1'/>
    <vcpusched vcpus='11' scheduler='rr' priority='1'/>
    <vcpusched vcpus='12' scheduler='rr' priority='1'/>
    <vcpusched vcpus='13' scheduler='rr' priority='1'/>
    <vcpusched vcpus='14' scheduler='rr' priority='1'/>
    <vcpusched vcpus='15' scheduler='rr' priority='1'/>
    <iothreadsched iothreads='1' scheduler='fifo' priority='98'/>`;

/** Example 2 (Intel 6c/12t), verbatim: this one is written with double quotes. */
const SEED_INTEL = `<vcpu placement='static'>8</vcpu>
  <vcpupin vcpu="0" cpuset="2"/>
  <vcpupin vcpu="1" cpuset="8"/>
  <vcpupin vcpu="2" cpuset="3"/>
  <vcpupin vcpu="3" cpuset="9"/>
  <vcpupin vcpu="4" cpuset="4"/>
  <vcpupin vcpu="5" cpuset="10"/>
  <vcpupin vcpu="6" cpuset="5"/>
  <vcpupin vcpu="7" cpuset="11"/>
  <emulatorpin cpuset="0-1,6-7"/>
  <iothreadpin iothread="1" cpuset="0-1,6-7"/>`;

/** Seed lines, trimmed, with the quote style of our output (libvirt's own: single quotes). */
const seedLines = (text: string): string[] => text.split('\n').map((l) => l.trim().replace(/"/g, "'"));

/**
 * Our output without the lines the README leaves out (<iothreads>, the <cputune> wrapper, <cpu>/<numatune>):
 * what is left must be the README's lines, in its order.
 */
function pinningLines(xml: string): string[] {
  const lines = xml
    .trimEnd()
    .split('\n')
    .map((l) => l.trim());
  const end = lines.indexOf('</cputune>');
  return lines.slice(0, end).filter((l) => l !== '<cputune>' && !l.startsWith('<iothreads>'));
}

/** n cores, SMT siblings n and n + cores (the numbering of the fixture machines). */
function smtCores(cores: number, packages = 1): CoreLike[] {
  const per = cores / packages;
  return Array.from({ length: cores }, (_, i) => ({
    package: Math.floor(i / per),
    cpus: CpuSet.of([i, i + cores]),
  }));
}

describe('vcpuOrder', () => {
  it('pairs SMT siblings as consecutive vCPUs, cores in order of their first CPU', () => {
    assert.deepEqual(
      vcpuOrder(smtCores(16), CpuSet.parseList('8-15,24-31')),
      [8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31],
    );
    assert.deepEqual(vcpuOrder(smtCores(6), CpuSet.parseList('2-5,8-11')), [2, 8, 3, 9, 4, 10, 5, 11]);
  });
  it('keeps a core with one VM thread as one vCPU, and orders by core not by CPU number', () => {
    assert.deepEqual(vcpuOrder(smtCores(6), CpuSet.parseList('3,8-9')), [8, 3, 9]);
  });
  it('groups the cores of a package together', () => {
    const cores: CoreLike[] = [
      { package: 0, cpus: CpuSet.of([0, 4]) },
      { package: 1, cpus: CpuSet.of([1, 5]) },
      { package: 0, cpus: CpuSet.of([2, 6]) },
      { package: 1, cpus: CpuSet.of([3, 7]) },
    ];
    assert.deepEqual(vcpuOrder(cores, CpuSet.range(0, 7)), [0, 4, 2, 6, 1, 5, 3, 7]);
  });
  it('gives a CPU that no core lists a vCPU of its own, last', () => {
    assert.deepEqual(vcpuOrder(smtCores(2), CpuSet.of([1, 3, 9])), [1, 3, 9]);
  });
});

describe('guestTopology', () => {
  it('whole cores: threads 2', () => {
    assert.deepEqual(guestTopology(smtCores(16), CpuSet.parseList('8-15,24-31')).topology, {
      sockets: 1,
      dies: 1,
      cores: 8,
      threads: 2,
    });
  });
  it('one thread of each core: threads 1, no warning', () => {
    const r = guestTopology(smtCores(16), CpuSet.parseList('8-15'));
    assert.deepEqual(r.topology, { sockets: 1, dies: 1, cores: 8, threads: 1 });
    assert.deepEqual(r.warnings, []);
  });
  it('mixed: threads 1 and a warning naming the partial cores', () => {
    const r = guestTopology(smtCores(6), CpuSet.parseList('2-5,8-10'));
    assert.deepEqual(r.topology, { sockets: 1, dies: 1, cores: 7, threads: 1 });
    assert.match(r.warnings[0]!, /cores with CPUs 5:/);
  });
  it('the same number of cores from two packages: two sockets', () => {
    const r = guestTopology(smtCores(32, 2), CpuSet.parseList('8-15,40-47,24-31,56-63'));
    assert.deepEqual(r.topology, { sockets: 2, dies: 1, cores: 8, threads: 2 });
  });
});

describe('defaultEmulatorCpus', () => {
  it("is the host's last core", () => {
    assert.equal(defaultEmulatorCpus(smtCores(16), CpuSet.parseList('0-7,16-23')).toList(), '7,23');
    assert.equal(defaultEmulatorCpus(smtCores(6), CpuSet.parseList('0-1,6-7')).toList(), '1,7');
    assert.equal(defaultEmulatorCpus(smtCores(6), CpuSet.EMPTY).toList(), '');
  });
});

describe('renderCputuneXml', () => {
  it('renders every element, vcpusched per vCPU, iothreadsched per I/O thread', () => {
    const topo = {
      cores: smtCores(2),
      online: CpuSet.range(0, 3),
      nodes: new Map([[0, CpuSet.range(0, 3)]]),
      l3: [CpuSet.range(0, 3)],
    };
    const plan = planCputune(topo, {
      vm: CpuSet.of([1, 3]),
      emulator: CpuSet.of([0, 2]),
      iothreads: 2,
      vcpuSched: { policy: 'fifo', priority: 5 },
      iothreadSched: { policy: 'rr', priority: 2 },
    });
    assert.equal(
      renderCputuneXml(plan),
      [
        "<vcpu placement='static'>2</vcpu>",
        '<iothreads>2</iothreads>',
        '<cputune>',
        "  <vcpupin vcpu='0' cpuset='1'/>",
        "  <vcpupin vcpu='1' cpuset='3'/>",
        "  <emulatorpin cpuset='0,2'/>",
        "  <iothreadpin iothread='1' cpuset='0,2'/>",
        "  <iothreadpin iothread='2' cpuset='0,2'/>",
        "  <vcpusched vcpus='0' scheduler='fifo' priority='5'/>",
        "  <vcpusched vcpus='1' scheduler='fifo' priority='5'/>",
        "  <iothreadsched iothreads='1' scheduler='rr' priority='2'/>",
        "  <iothreadsched iothreads='2' scheduler='rr' priority='2'/>",
        '</cputune>',
        "<cpu mode='host-passthrough'>",
        "  <topology sockets='1' dies='1' cores='1' threads='2'/>",
        '</cpu>',
        '',
      ].join('\n'),
    );
  });
  it('no I/O threads: no <iothreads>, no iothreadpin', () => {
    const topo = {
      cores: smtCores(2),
      online: CpuSet.range(0, 3),
      nodes: new Map([[0, CpuSet.range(0, 3)]]),
      l3: [],
    };
    const xml = renderCputuneXml(
      planCputune(topo, { vm: CpuSet.of([1, 3]), emulator: CpuSet.of([0]), iothreads: 0 }),
    );
    assert.doesNotMatch(xml, /iothread/);
  });
});

describe('libvirt cputune on the fixture machines', () => {
  it('5950X, --vm C8-15,24-31 --emulator C7,23: the README pinning line by line', async () => {
    const root = buildFixture('ryzen-5950x');
    const r = await cli(root, [
      'libvirt',
      'cputune',
      '--vm',
      'C8-15,24-31',
      '--emulator',
      'C7,23',
      '--sched',
      'rr',
      '--priority',
      '1',
      '--iothread-sched',
      'fifo',
      '--iothread-priority',
      '98',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.deepEqual(pinningLines(r.stdout), seedLines(SEED_5950X));
    const lines = r.stdout.split('\n');
    assert.equal(lines[1], '<iothreads>1</iothreads>');
    assert.deepEqual(lines.slice(-5), [
      '</cputune>',
      "<cpu mode='host-passthrough'>",
      "  <topology sockets='1' dies='1' cores='8' threads='2'/>",
      '</cpu>',
      '',
    ]);
    assert.doesNotMatch(r.stdout, /numatune/, 'one NUMA node: no <numatune>');
  });

  it('5950X without scheduling options: the same pinning, no vcpusched/iothreadsched', async () => {
    const root = buildFixture('ryzen-5950x');
    const r = await cli(root, ['libvirt', 'cputune', '--vm', 'C8-15,24-31', '--emulator', 'C7,23']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      pinningLines(r.stdout),
      seedLines(SEED_5950X).filter((l) => !/sched/.test(l)),
    );
  });

  it('5950X defaults: the suggested split (L1) and the last host core for the emulator, as in the README', async () => {
    const root = buildFixture('ryzen-5950x');
    const r = await cli(root, ['libvirt', 'cputune']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      pinningLines(r.stdout),
      seedLines(SEED_5950X).filter((l) => !/sched/.test(l)),
    );
  });

  it('Intel 6c/12t, --vm C2-5,8-11 --emulator C0-1,6-7: the README pinning line by line', async () => {
    const root = buildFixture('intel-6c12t');
    const r = await cli(root, ['libvirt', 'cputune', '--vm', 'C2-5,8-11', '--emulator', 'C0-1,6-7']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(pinningLines(r.stdout), seedLines(SEED_INTEL));
    assert.match(r.stdout, /<topology sockets='1' dies='1' cores='4' threads='2'\/>/);
  });

  it('Threadripper 1920X (2 NUMA nodes): the last node by default, with <numatune>', async () => {
    const root = buildFixture('tr-1920x');
    const r = await cli(root, ['libvirt', 'cputune']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines[0], "<vcpu placement='static'>12</vcpu>");
    assert.deepEqual(
      lines.filter((l) => l.includes('vcpupin')).map((l) => /cpuset='(\d+)'/.exec(l)![1]),
      ['6', '18', '7', '19', '8', '20', '9', '21', '10', '22', '11', '23'],
    );
    assert.ok(lines.includes("  <emulatorpin cpuset='5,17'/>"));
    assert.ok(lines.includes("  <topology sockets='1' dies='1' cores='6' threads='2'/>"));
    assert.deepEqual(lines.slice(-3), ['<numatune>', "  <memory mode='strict' nodeset='1'/>", '</numatune>']);
  });

  it('server-2s: 8 cores of each socket → two guest sockets, package by package, and a NUMA warning', async () => {
    const root = buildFixture('server-2s');
    const r = await cli(root, [
      'libvirt',
      'cputune',
      '--vm',
      'C8-15,24-31,40-47,56-63',
      '--emulator',
      'C7,39',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const pins = r.stdout
      .split('\n')
      .filter((l) => l.includes('vcpupin'))
      .map((l) => Number(/cpuset='(\d+)'/.exec(l)![1]));
    assert.deepEqual(pins.slice(0, 4), [8, 40, 9, 41]);
    assert.deepEqual(pins.slice(16, 20), [24, 56, 25, 57]);
    assert.match(r.stdout, /<topology sockets='2' dies='1' cores='8' threads='2'\/>/);
    assert.match(r.stdout, /<memory mode='strict' nodeset='0-1'\/>/);
    assert.match(r.stderr, /warning: the VM CPUs span NUMA nodes 0-1/);
  });

  it('--json gives the plan and the XML', async () => {
    const root = buildFixture('ryzen-5950x');
    const r = await cli(root, ['libvirt', 'cputune', '--vm', 'C8-15,24-31', '--emulator', 'C7,23', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as {
      vcpus: number;
      vcpupin: { vcpu: number; cpu: number }[];
      emulatorpin: string;
      topology: unknown;
      xml: string;
    };
    assert.equal(j.vcpus, 16);
    assert.deepEqual(j.vcpupin[1], { vcpu: 1, cpu: 24 });
    assert.equal(j.emulatorpin, '7,23');
    assert.deepEqual(j.topology, { sockets: 1, dies: 1, cores: 8, threads: 2 });
    assert.match(j.xml, /^<vcpu placement='static'>16<\/vcpu>/);
    const g = await cli(root, ['--json', 'libvirt', 'cputune', '--vm', 'C8-15,24-31', '--emulator', 'C7,23']);
    assert.deepEqual(JSON.parse(g.stdout), j, 'the global --json works too');
  });

  it('warns when the emulator CPUs overlap the VM CPUs', async () => {
    const root = buildFixture('ryzen-5950x');
    const r = await cli(root, ['libvirt', 'cputune', '--vm', 'C8-15,24-31', '--emulator', 'C8']);
    assert.equal(r.code, 0);
    assert.match(r.stderr, /warning: the emulator CPUs 8 overlap the VM CPUs/);
  });

  it('usage errors exit 2', async () => {
    const root = buildFixture('ryzen-5950x');
    const cases: [string[], RegExp][] = [
      [['--vm', 'C8-40'], /CPU|present/],
      [['--vm', 'C15-8'], /revers/],
      [['--sched', 'deadline'], /--sched must be fifo or rr/],
      [['--sched', 'rr', '--priority', '100'], /--priority must be a number from 1 to 99/],
      [['--priority', '5'], /--priority needs --sched/],
      [['--iothreads', 'x'], /--iothreads must be a number/],
      [['--iothreads', '0', '--iothread-sched', 'fifo'], /needs at least one I\/O thread/],
      [['--vm', 'C0-31'], /no host CPU/],
    ];
    for (const [args, re] of cases) {
      const r = await cli(root, ['libvirt', 'cputune', ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re, args.join(' '));
      assert.equal(r.stdout, '');
    }
  });
});
