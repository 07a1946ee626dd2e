import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CpuSet } from '../../src/cpus/cpuset.ts';
import {
  NOTATION_HELP,
  NotationError,
  formatCpuList,
  formatNotation,
  parseCpuSpec,
  parseNodeSpec,
} from '../../src/cpus/notation.ts';
import { orderL3Domains, topologyFromSpec, type CpuTopology } from '../../src/cpus/topology-model.ts';

// ----- machines ------------------------------------------------------------------------------------------------

/** AMD Ryzen 9 5950X: 16 cores / 32 threads, siblings n / n+16, two CCDs with one L3 each, one node. */
const R5950X = topologyFromSpec({ cpus: 32, smtOffset: 16, l3: ['0-7,16-23', '8-15,24-31'] });

/** AMD Threadripper 1920X (NUMA mode): 12c/24t, two nodes, four CCXs with one L3 each. */
const TR1920X = topologyFromSpec({
  cpus: 24,
  smtOffset: 12,
  nodes: ['0-5,12-17', '6-11,18-23'],
  l3: ['9-11,21-23', '0-2,12-14', '6-8,18-20', '3-5,15-17'], // given unordered: L-numbers follow the lowest CPU
});

/** Intel 6 cores / 12 threads, siblings n / n+6. */
const INTEL6 = topologyFromSpec({ cpus: 12, smtOffset: 6 });

/** Two sockets, 64 CPUs, one node and one L3 per package. */
const DUAL64 = topologyFromSpec({
  cpus: 64,
  smtOffset: 32,
  packages: ['0-15,32-47', '16-31,48-63'],
  nodes: ['0-15,32-47', '16-31,48-63'],
  l3: ['16-31,48-63', '0-15,32-47'],
});

/** 8 present CPUs (16 possible), CPU 7 offline, node 0 with all CPUs, node 2 memory only (no node 1). */
const ODD = topologyFromSpec({
  possible: '0-15',
  present: '0-7',
  online: '0-6',
  smtOffset: 4,
  nodes: { 0: '0-7', 2: '' },
});

const MACHINES: Record<string, CpuTopology> = { R5950X, TR1920X, INTEL6, DUAL64, ODD };

// ----- helpers -------------------------------------------------------------------------------------------------

function cpus(value: string, topo: CpuTopology): string {
  return parseCpuSpec(value, topo).cpus.toList();
}

function expectError(fn: () => unknown, fragments: readonly string[]): NotationError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof NotationError, `expected a NotationError, got ${String(caught)}`);
  for (const f of fragments)
    assert.ok(caught.message.includes(f), `${JSON.stringify(caught.message)} lacks ${f}`);
  assert.ok(!caught.message.includes('\n'), 'message is one line');
  return caught;
}

// ----- accepted values -----------------------------------------------------------------------------------------

type Ok = [machine: keyof typeof MACHINES, value: string, want: string];

const OK: Ok[] = [
  // C lists (0.5.2)
  ['R5950X', 'C0', '0'],
  ['R5950X', 'C31', '31'],
  ['R5950X', 'C0-3', '0-3'],
  ['R5950X', 'C0-3,8', '0-3,8'],
  ['R5950X', 'C8-15,24-31', '8-15,24-31'],
  ['R5950X', 'C3,1,2', '1-3'],
  ['R5950X', 'C0,0,0-1', '0-1'],
  ['R5950X', 'C0-3,2-5', '0-5'],
  ['R5950X', 'C3-3', '3'],
  ['R5950X', 'C0-31', '0-31'],
  // C masks (0.5.2): exactly 8 lowercase hex digits per group, most significant first
  ['R5950X', 'C12345678', '3-6,9-10,12,14,18,20-21,25,28'],
  ['R5950X', 'C10000000', '28'],
  ['R5950X', 'C00000001', '0'],
  ['R5950X', 'C80000000', '31'],
  ['R5950X', 'Cffffffff', '0-31'],
  ['R5950X', 'C0000ffff', '0-15'],
  ['R5950X', 'Cffff0000', '16-31'],
  ['R5950X', 'C00000000,ffff0000', '16-31'],
  ['R5950X', 'C00000000,00000000,00000003', '0-1'],
  ['DUAL64', 'C00000001,00000000', '32'],
  ['DUAL64', 'Cdeadbeef,00000001', '0,32-35,37-39,41-45,47-48,50-51,53,55,57-60,62-63'],
  ['DUAL64', 'Cffffffff,ffffffff', '0-63'],
  ['DUAL64', 'C0000ffff,0000ffff', '0-15,32-47'],
  // N (0.5.2)
  ['R5950X', 'N0', '0-31'],
  ['TR1920X', 'N0', '0-5,12-17'],
  ['TR1920X', 'N1', '6-11,18-23'],
  ['TR1920X', 'N0-1', '0-23'],
  ['TR1920X', 'N1,0', '0-23'],
  ['TR1920X', 'N00000002', '6-11,18-23'],
  ['DUAL64', 'N1', '16-31,48-63'],
  ['ODD', 'N0', '0-7'],
  // trailing whitespace is stripped (0.5.2 PR #13)
  ['R5950X', 'C0-3\n', '0-3'],
  ['R5950X', 'C0-3 \t\r\n', '0-3'],
  ['R5950X', 'Cffffffff\n', '0-31'],
  ['R5950X', 'L1+C7\n', '7-15,24-31'],
  // 0x masks: any width, any case, commas optional, short groups
  ['R5950X', '0x1', '0'],
  ['R5950X', '0xff', '0-7'],
  ['R5950X', '0xFF', '0-7'],
  ['R5950X', '0XfF', '0-7'],
  ['R5950X', '0xffff0000', '16-31'],
  ['R5950X', '0x00000001', '0'],
  ['R5950X', '0x000000000000000f', '0-3'],
  ['R5950X', '0x0,f', '0-3'],
  ['R5950X', '0x00000000,0000000f', '0-3'],
  ['R5950X', '0xffffffff', '0-31'],
  ['INTEL6', '0xfff', '0-11'],
  ['INTEL6', '0x3f', '0-5'],
  ['DUAL64', '0x1,0', '32'],
  ['DUAL64', '0x100000000', '32'],
  ['DUAL64', '0xffffffffffffffff', '0-63'],
  ['DUAL64', '0xFFFFFFFF,FFFFFFFF', '0-63'],
  ['DUAL64', '0xffff,0000ffff', '0-15,32-47'],
  // L: L3 cache domains, numbered by their lowest CPU
  ['R5950X', 'L0', '0-7,16-23'],
  ['R5950X', 'L1', '8-15,24-31'],
  ['R5950X', 'L0-1', '0-31'],
  ['TR1920X', 'L0', '0-2,12-14'],
  ['TR1920X', 'L1', '3-5,15-17'],
  ['TR1920X', 'L2', '6-8,18-20'],
  ['TR1920X', 'L3', '9-11,21-23'],
  ['TR1920X', 'L0,3', '0-2,9-14,21-23'],
  ['TR1920X', 'L1-2', '3-8,15-20'],
  ['DUAL64', 'L0', '0-15,32-47'],
  ['DUAL64', 'L1', '16-31,48-63'],
  ['INTEL6', 'L0', '0-11'],
  // P: packages
  ['R5950X', 'P0', '0-31'],
  ['DUAL64', 'P0', '0-15,32-47'],
  ['DUAL64', 'P1', '16-31,48-63'],
  ['DUAL64', 'P0-1', '0-63'],
  // S: CPUs plus their SMT siblings
  ['R5950X', 'S3', '3,19'],
  ['R5950X', 'S19', '3,19'],
  ['R5950X', 'S3,4', '3-4,19-20'],
  ['R5950X', 'S0-15', '0-31'],
  ['R5950X', 'S8-15', '8-15,24-31'],
  ['TR1920X', 'S0', '0,12'],
  ['INTEL6', 'S0-2', '0-2,6-8'],
  ['INTEL6', 'S6', '0,6'],
  ['DUAL64', 'S0', '0,32'],
  ['ODD', 'S3', '3'], // sibling 7 is offline, so it is no sibling in sysfs
  ['ODD', 'S0', '0,4'],
  // + joins selectors
  ['R5950X', 'L1+C7', '7-15,24-31'],
  ['R5950X', 'N0+S3', '0-31'],
  ['R5950X', 'C0-3+C2-5', '0-5'],
  ['R5950X', 'L1+C7+S0', '0,7-16,24-31'],
  ['R5950X', '0xf+C8', '0-3,8'],
  ['R5950X', 'C12345678+C0', '0,3-6,9-10,12,14,18,20-21,25,28'],
  ['TR1920X', 'N0+L2', '0-8,12-20'],
  ['TR1920X', 'P0+S1', '0-23'],
  ['INTEL6', 'C0+C0', '0'],
];

describe('parseCpuSpec: accepted values', () => {
  for (const [machine, value, want] of OK) {
    it(`${machine}: ${JSON.stringify(value)} → ${want}`, () => {
      const res = parseCpuSpec(value, MACHINES[machine]!);
      assert.equal(res.cpus.toList(), want);
      if (machine !== 'ODD') assert.deepEqual(res.warnings, []);
    });
  }

  it('C12345678 on a 32-CPU machine is the mask 0x12345678, as in 0.5.2', () => {
    // 0x12345678 = bits 3-6, 9-10, 12, 14, 18, 20-21, 25, 28 (worked out by hand, not by the parser).
    const want = '3-6,9-10,12,14,18,20-21,25,28';
    assert.equal(parseCpuSpec('C12345678', R5950X).cpus.toList(), want);
    assert.equal(parseCpuSpec('0x12345678', R5950X).cpus.toList(), want);
  });

  it('mask groups are most significant first: 00000001,00000000 is CPU 32', () => {
    assert.equal(cpus('C00000001,00000000', DUAL64), '32');
    assert.equal(cpus('C00000000,00000001', DUAL64), '0');
  });

  it('deadbeef,00000001 agrees bit by bit', () => {
    const word = 0xdeadbeef;
    const want = [0];
    for (let bit = 0; bit < 32; bit++) if ((word >>> bit) & 1) want.push(32 + bit);
    assert.deepEqual(parseCpuSpec('Cdeadbeef,00000001', DUAL64).cpus.toArray(), want);
  });

  it('a C mask and a 0x mask agree on every 8-digit group', () => {
    for (const hex of ['00000001', '80000000', 'ffffffff', '0000ffff', 'aaaaaaaa', '12345678']) {
      assert.ok(parseCpuSpec('C' + hex, R5950X).cpus.equals(parseCpuSpec('0x' + hex, R5950X).cpus), hex);
    }
  });
});

// ----- offline CPUs --------------------------------------------------------------------------------------------

describe('parseCpuSpec: offline CPUs are allowed with a warning', () => {
  const cases: [string, string, string | undefined][] = [
    ['C0-7', '0-7', 'CPU 7 in "C0-7" is present but offline'],
    ['C7', '7', 'CPU 7 in "C7" is present but offline'],
    ['S7', '7', 'CPU 7 in "S7" is present but offline'],
    ['N0', '0-7', 'CPU 7 in "N0" is present but offline'],
    ['0xff', '0-7', 'CPU 7 in "0xff" is present but offline'],
    ['C0-6', '0-6', undefined],
    ['C00000007', '0-2', undefined],
  ];
  for (const [value, want, warning] of cases) {
    it(`${JSON.stringify(value)} → ${want}${warning ? ' + warning' : ''}`, () => {
      const res = parseCpuSpec(value, ODD);
      assert.equal(res.cpus.toList(), want);
      assert.deepEqual(res.warnings, warning ? [warning] : []);
    });
  }

  it('a CPU list or mask of online CPUs is taken without reading the present CPUs; one with an offline CPU reads them', () => {
    let reads = 0;
    // the kernel layer's topology reads sysfs's cpu/present on first use of the getter
    const counting = Object.defineProperty({ ...ODD }, 'present', {
      get: () => {
        reads++;
        return ODD.present;
      },
    }) as CpuTopology;
    for (const v of ['C0-6', 'C2', '0x7f', 'C00000007']) {
      assert.equal(parseCpuSpec(v, counting).cpus.toList(), cpus(v, ODD), v);
    }
    assert.equal(reads, 0);
    assert.equal(parseCpuSpec('C7', counting).warnings.length, 1);
    assert.ok(reads > 0, 'an offline CPU is checked against the present ones');
    reads = 0;
    expectError(
      () => parseCpuSpec('C5-8', counting),
      ['CPU 8 in "C5-8" does not exist on this machine (present: 0-7)'],
    );
    assert.ok(reads > 0);
  });

  it('several offline CPUs are named in one warning', () => {
    const topo = topologyFromSpec({ cpus: 8, online: '0-3,5' });
    const res = parseCpuSpec('C0-7', topo, { what: '--cpus' });
    assert.deepEqual(res.warnings, ['--cpus: CPUs 4,6-7 in "C0-7" are present but offline']);
  });
});

// ----- rejected values -----------------------------------------------------------------------------------------

type Bad = [machine: keyof typeof MACHINES, value: string, fragments: string[]];

const BAD: Bad[] = [
  // reversed ranges (0.5.2: silently empty)
  ['R5950X', 'C5-2', ['invalid CPU set "C5-2": range 5-2 is reversed']],
  ['R5950X', 'C0-3,5-2', ['range 5-2 is reversed']],
  ['R5950X', 'S5-2', ['range 5-2 is reversed']],
  ['TR1920X', 'N1-0', ['range 1-0 is reversed']],
  ['TR1920X', 'L3-1', ['range 3-1 is reversed']],
  // empty values and lists (0.5.2: "empty" or "not given")
  ['R5950X', '', ['the CPU set is empty']],
  ['R5950X', '   ', ['the CPU set is empty']],
  ['R5950X', '\n', ['the CPU set is empty']],
  ['R5950X', 'C', ['invalid CPU set "C": empty list after "C"', 'C0-3,8']],
  ['R5950X', 'N', ['empty list after "N"', 'N0 or N0-1']],
  ['R5950X', 'L', ['empty list after "L"']],
  ['R5950X', 'P', ['empty list after "P"']],
  ['R5950X', 'S', ['empty list after "S"']],
  ['R5950X', 'C\n', ['empty list after "C"']],
  ['R5950X', 'C+L1', ['empty list after "C"']],
  // whitespace
  ['R5950X', ' C0', ['invalid CPU set " C0": leading whitespace is not allowed']],
  ['R5950X', '\tC0', ['leading whitespace']],
  ['R5950X', 'C0, 1', ['whitespace is not allowed inside the value']],
  ['R5950X', 'C0 +C1', ['whitespace is not allowed']],
  // malformed lists
  ['R5950X', 'Cx', ['invalid CPU set "Cx": expected a CPU list like C0-3,8 or a hex mask']],
  ['R5950X', 'C1-2-3', ['malformed range "1-2-3"']],
  ['R5950X', 'C0--3', ['malformed range "0--3"']],
  ['R5950X', 'C-3', ['malformed range "-3"']],
  ['R5950X', 'C3-', ['malformed range "3-"']],
  ['R5950X', 'C,0', ['leading comma']],
  ['R5950X', 'C0,', ['trailing comma']],
  ['R5950X', 'C0,,1', ['empty entry between two commas']],
  ['R5950X', 'C0-7:2/4', ['expected a CPU list like C0-3,8']],
  ['R5950X', 'C1.5', ['expected a CPU list']],
  ['R5950X', 'C0;1', ['expected a CPU list']],
  ['TR1920X', 'Nx', ['expected a NUMA node list like N0 or N0-1']],
  ['TR1920X', 'Lx', ['expected an L3 cache domain list']],
  ['DUAL64', 'P0x', ['expected a package list']],
  ['R5950X', 'Sx', ['expected a CPU list like S0-3']],
  ['R5950X', 'L0,', ['trailing comma']],
  // leading zeros (0.5.2)
  ['R5950X', 'C01', ['number 01 has a leading zero (write 1)']],
  ['R5950X', 'C00', ['number 00 has a leading zero (write 0)']],
  ['R5950X', 'C0-03', ['number 03 has a leading zero']],
  ['R5950X', 'C0,012', ['number 012 has a leading zero']],
  ['R5950X', 'C0001', ['leading zero']],
  ['TR1920X', 'N01', ['leading zero']],
  // numbers that do not fit
  ['R5950X', 'C1,99999999999999999999', ['number "99999999999999999999" is too large']],
  // C masks: exactly 8 lowercase hex digits per group
  ['R5950X', 'CFFFFFFFF', ['hex digits after "C" must be lowercase', 'write 0xFFFFFFFF or Cffffffff']],
  ['R5950X', 'CDEADBEEF', ['write 0xDEADBEEF']],
  ['DUAL64', 'Cffffffff,0000000F', ['must be lowercase']],
  ['DUAL64', 'CFFFFFFFF,00000000', ['must be lowercase']],
  ['R5950X', 'Cff', ['write 0xff']],
  ['R5950X', 'Cffff', ['write 0xffff']],
  ['R5950X', 'C123456789', ['mask group "123456789" is not 8 lowercase hex digits']],
  ['R5950X', 'C99999999999', ['not 8 lowercase hex digits']],
  ['R5950X', 'Cffffffff,0-3', ['mask group "0-3"']],
  ['R5950X', 'Cffffffff,ff', ['mask group "ff"']],
  ['R5950X', 'Cffffffff,', ['trailing comma']],
  ['R5950X', 'C12345678-9', ['mask group "12345678-9"']],
  ['R5950X', 'C0,deadbeef', ['expected a CPU list']],
  ['TR1920X', 'N0000000F', ['hex digits after "N" must be lowercase; write N0000000f']],
  // after a comma in list form only numbers: C0,12345678 is CPU 12345678 (0.5.2)
  ['R5950X', 'C0,12345678', ['CPU 12345678 in "C0,12345678" does not exist']],
  ['R5950X', 'C1234567', ['CPU 1234567 in "C1234567" does not exist']],
  // masks that select nothing
  ['R5950X', 'C00000000', ['invalid CPU set "C00000000": selects no CPU']],
  ['R5950X', 'C00000000,00000000', ['selects no CPU']],
  ['R5950X', '0x0', ['invalid CPU set "0x0": selects no CPU']],
  ['R5950X', '0x00,00000000', ['selects no CPU']],
  ['R5950X', 'C0+0x0', ['"0x0" selects no CPU']],
  ['TR1920X', 'N00000000', ['selects no CPU']],
  // 0x syntax
  ['R5950X', '0x', ['empty mask after "0x"']],
  ['R5950X', '0X', ['empty mask after "0X"']],
  ['R5950X', '0xg', ['"0xg" is not a hex mask']],
  ['R5950X', '0x-1', ['is not a hex mask']],
  ['R5950X', '0x,f', ['leading comma']],
  ['R5950X', '0xf,', ['trailing comma']],
  ['R5950X', '0xf,,f', ['empty entry']],
  ['R5950X', '0x123456789,0', ['mask group "123456789" has more than 8 hex digits']],
  // prefixes: case-sensitive, required
  ['R5950X', 'c0-3', ['invalid CPU set "c0-3"', 'case-sensitive', 'did you mean "C0-3"?']],
  ['R5950X', 'n0', ['did you mean "N0"?']],
  ['R5950X', 'l1+C7', ['did you mean "L1+C7"?']],
  ['R5950X', 'L1+c7', ['did you mean "L1+C7"?']],
  ['R5950X', 's3', ['did you mean "S3"?']],
  ['R5950X', 'p0', ['did you mean "P0"?']],
  ['R5950X', '0-3', ['starts with C, N, L, P, S or 0x', 'did you mean "C0-3"?']],
  ['R5950X', '8', ['did you mean "C8"?']],
  ['R5950X', '00000001,00000000', ['did you mean "C00000001,00000000"?']],
  ['R5950X', '1-2-3', ['starts with C, N, L, P, S or 0x']],
  ['R5950X', 'ff', ['expected a CPU list like C0-3,8 or a hex mask']],
  ['R5950X', '3ff', ['did you mean "0x3ff"?']],
  ['R5950X', 'all', ['invalid CPU set "all": expected a CPU list like C0-3,8 or a hex mask']],
  ['R5950X', 'X0', ['expected a CPU list']],
  ['R5950X', '-C0', ['expected a CPU list']],
  // +
  ['R5950X', '+C0', ['nothing before "+"']],
  ['R5950X', 'C0+', ['nothing after "+"']],
  ['R5950X', 'C0++C1', ['nothing between two "+"']],
  ['R5950X', '+', ['nothing before "+"']],
  // CPUs that are not present
  ['R5950X', 'C40', ['CPU 40 in "C40" does not exist on this machine (present: 0-31)']],
  ['R5950X', 'C0-40', ['CPUs 32-40 in "C0-40" do not exist on this machine (present: 0-31)']],
  ['R5950X', 'C0-4000000000', ['CPUs 32-4000000000 in "C0-4000000000" do not exist']],
  ['R5950X', 'C32,0,33,40', ['CPUs 32-33,40 in']],
  ['R5950X', 'S32', ['CPU 32 in "S32" does not exist']],
  ['R5950X', 'C00000001,00000000', ['CPU 32 in "C00000001,00000000" does not exist']],
  ['R5950X', '0x1ffffffff', ['CPU 32 in "0x1ffffffff" does not exist', '(present: 0-31)']],
  ['R5950X', '0x1,0', ['CPU 32']],
  ['INTEL6', 'C12', ['CPU 12 in "C12" does not exist on this machine (present: 0-11)']],
  ['INTEL6', 'Cffffffff', ['CPUs 12-31 in "Cffffffff" do not exist']],
  ['ODD', 'C8', ['CPU 8 in "C8" does not exist on this machine (present: 0-7)']], // possible, not present
  ['ODD', 'C0-15', ['CPUs 8-15']],
  // nodes
  ['R5950X', 'N1', ['NUMA node 1 in "N1" does not exist on this machine (nodes: 0)']],
  ['TR1920X', 'N0-3', ['NUMA nodes 2-3 in "N0-3" do not exist on this machine (nodes: 0-1)']],
  ['ODD', 'N1', ['NUMA node 1 in "N1" does not exist on this machine (nodes: 0,2)']],
  ['ODD', 'N2', ['NUMA node 2 in "N2" has no CPUs', '--mems']],
  ['ODD', 'N0,2', ['NUMA node 2 in "N0,2" has no CPUs']],
  ['ODD', 'C0+N2', ['node 2 in "C0+N2" has no CPUs']],
  // L3 domains and packages
  ['R5950X', 'L2', ['L3 cache domain 2 in "L2" does not exist on this machine (L3 domains: 0-1']],
  ['TR1920X', 'L4', ['(L3 domains: 0-3']],
  ['TR1920X', 'L0-7', ['L3 cache domains 4-7 in "L0-7" do not exist']],
  ['R5950X', 'P1', ['package 1 in "P1" does not exist on this machine (packages: 0)']],
  ['DUAL64', 'P0-2', ['package 2 in "P0-2" does not exist on this machine (packages: 0-1)']],
];

describe('parseCpuSpec: rejected values', () => {
  for (const [machine, value, fragments] of BAD) {
    it(`${machine}: ${JSON.stringify(value)} → ${fragments.join(' … ')}`, () => {
      const err = expectError(() => parseCpuSpec(value, MACHINES[machine]!), fragments);
      assert.equal(err.value, value.trimEnd());
    });
  }

  it('NotationError is an Error with name NotationError and exit code 2', () => {
    const err = expectError(() => parseCpuSpec('C5-2', R5950X), []);
    assert.ok(err instanceof Error);
    assert.equal(err.name, 'NotationError');
    assert.equal(err.exitCode, 2);
    assert.equal(err.value, 'C5-2');
  });

  it('prefixes messages with `what`', () => {
    expectError(
      () => parseCpuSpec('C5-2', R5950X, { what: '--cpus' }),
      ['--cpus: invalid CPU set "C5-2": range 5-2 is reversed'],
    );
    expectError(
      () => parseCpuSpec('C0-40', R5950X, { what: 'irq-affinity' }),
      ['irq-affinity: CPUs 32-40 in "C0-40" do not exist'],
    );
    expectError(() => parseCpuSpec('', R5950X, { what: 'cpus in host.toml' }), ['cpus in host.toml: ']);
  });

  it('quotes a long value shortened and control characters escaped', () => {
    const long = 'C' + '0,'.repeat(100) + 'x';
    const err = expectError(() => parseCpuSpec(long, R5950X), ['..."']);
    assert.ok(err.message.length < 200);
    expectError(() => parseCpuSpec('C0\u0000', R5950X), ['"C0\\u0000"']);
  });

  it('a machine without L3 information says so', () => {
    const topo: CpuTopology = { ...R5950X, l3: [] };
    expectError(() => parseCpuSpec('L0', topo), ['it reports no L3 cache']);
  });
});

// ----- --mems --------------------------------------------------------------------------------------------------

describe('parseNodeSpec', () => {
  const ok: [keyof typeof MACHINES, string, string][] = [
    ['R5950X', 'N0', '0'],
    ['TR1920X', 'N0', '0'],
    ['TR1920X', 'N1', '1'],
    ['TR1920X', 'N0-1', '0-1'],
    ['TR1920X', 'N1,0', '0-1'],
    ['TR1920X', 'N00000003', '0-1'],
    ['TR1920X', 'N00000002', '1'],
    ['TR1920X', 'N0+N1', '0-1'],
    ['TR1920X', 'N0\n', '0'],
    ['ODD', 'N2', '2'], // memory-only nodes are fine for --mems
    ['ODD', 'N0,2', '0,2'],
  ];
  for (const [machine, value, want] of ok) {
    it(`${machine}: ${JSON.stringify(value)} → ${want}`, () => {
      const res = parseNodeSpec(value, MACHINES[machine]!);
      assert.equal(res.nodes.toList(), want);
      assert.deepEqual(res.warnings, []);
    });
  }

  const bad: [keyof typeof MACHINES, string, string[]][] = [
    ['R5950X', 'C0', ['"--mems" takes NUMA nodes like N0 or N0-1']],
    ['R5950X', 'C0-3', ['"--mems" takes NUMA nodes like N0 or N0-1, not "C0-3"']],
    ['R5950X', 'L0', ['"--mems" takes NUMA nodes']],
    ['R5950X', '0x1', ['"--mems" takes NUMA nodes']],
    ['R5950X', '0', ['"--mems" takes NUMA nodes']],
    ['TR1920X', 'N0+C1', ['"--mems" takes NUMA nodes']],
    ['R5950X', '', ['"--mems" takes NUMA nodes like N0 or N0-1; the value is empty']],
    ['R5950X', ' \n', ['the value is empty']],
    ['R5950X', 'n0', ['"--mems" takes NUMA nodes', 'did you mean "N0"?']],
    ['R5950X', 'N', ['invalid NUMA node set "N": empty list after "N"']],
    ['R5950X', ' N0', ['leading whitespace']],
    ['TR1920X', 'N1-0', ['invalid NUMA node set "N1-0": range 1-0 is reversed']],
    ['TR1920X', 'N01', ['leading zero']],
    ['TR1920X', 'N0,', ['trailing comma']],
    ['TR1920X', 'N0-1-2', ['malformed range']],
    ['TR1920X', 'Nx', ['expected a NUMA node list like N0 or N0-1']],
    ['TR1920X', 'N3', ['NUMA node 3 in "N3" does not exist on this machine (nodes: 0-1)']],
    ['TR1920X', 'N0-5', ['NUMA nodes 2-5']],
    ['ODD', 'N1', ['(nodes: 0,2)']],
    ['TR1920X', 'N00000000', ['invalid NUMA node set "N00000000": selects no NUMA node']],
    ['TR1920X', 'N0000000F', ['must be lowercase']],
    ['TR1920X', 'N0+', ['nothing after "+"']],
  ];
  for (const [machine, value, fragments] of bad) {
    it(`${machine}: ${JSON.stringify(value)} → ${fragments.join(' … ')}`, () => {
      expectError(() => parseNodeSpec(value, MACHINES[machine]!), fragments);
    });
  }

  it('uses `what` in its messages', () => {
    expectError(
      () => parseNodeSpec('C0', R5950X, { what: 'mems' }),
      ['"mems" takes NUMA nodes like N0 or N0-1'],
    );
    expectError(
      () => parseNodeSpec('N5-2', R5950X, { what: '--mems' }),
      ['--mems: invalid NUMA node set "N5-2"'],
    );
  });
});

// ----- formatting and help -------------------------------------------------------------------------------------

describe('formatting', () => {
  it('formatCpuList is the kernel list form', () => {
    assert.equal(formatCpuList(CpuSet.of([0, 1, 2, 3, 8])), '0-3,8');
    assert.equal(formatCpuList(CpuSet.EMPTY), '');
  });
  it('formatNotation is C + list and parses back', () => {
    const set = CpuSet.parseList('8-15,24-31');
    assert.equal(formatNotation(set), 'C8-15,24-31');
    assert.ok(parseCpuSpec(formatNotation(set), R5950X).cpus.equals(set));
    assert.equal(formatNotation(CpuSet.EMPTY), 'C');
  });
  it('NOTATION_HELP names every form', () => {
    for (const form of [
      'C0-3,8',
      '0x',
      'N0',
      'L1',
      'P0',
      'S8-11',
      'L1+C7',
      '--mems',
      'C12345678',
      'offline',
    ]) {
      assert.ok(NOTATION_HELP.includes(form), form);
    }
    for (const line of NOTATION_HELP.split('\n')) assert.ok(line.length <= 110, line);
  });
});

// ----- topology model ------------------------------------------------------------------------------------------

describe('topologyFromSpec', () => {
  it('cpus: N makes 0..N-1 possible, present and online, one node, package and L3', () => {
    const t = topologyFromSpec({ cpus: 4 });
    for (const s of [t.possible, t.present, t.online, t.nodes.get(0)!, t.packages.get(0)!, t.l3[0]!]) {
      assert.equal(s.toList(), '0-3');
    }
    assert.equal(t.nodes.size, 1);
    assert.equal(t.l3.length, 1);
    assert.equal(t.siblings.get(2)!.toList(), '2');
  });
  it('smtOffset pairs n with n+offset', () => {
    assert.equal(R5950X.siblings.get(0)!.toList(), '0,16');
    assert.equal(R5950X.siblings.get(31)!.toList(), '15,31');
    assert.equal(INTEL6.siblings.get(11)!.toList(), '5,11');
  });
  it('explicit sibling groups', () => {
    const t = topologyFromSpec({ cpus: 4, siblings: ['0-1', [2, 3]] });
    assert.equal(t.siblings.get(1)!.toList(), '0-1');
    assert.equal(t.siblings.get(3)!.toList(), '2-3');
  });
  it('offline CPUs have no sibling entry and are nobody’s sibling', () => {
    assert.equal(ODD.siblings.has(7), false);
    assert.equal(ODD.siblings.get(3)!.toList(), '3');
  });
  it('sparse node ids and memory-only nodes', () => {
    assert.deepEqual([...ODD.nodes.keys()], [0, 2]);
    assert.ok(ODD.nodes.get(2)!.isEmpty);
    assert.equal(ODD.possible.toList(), '0-15');
    assert.equal(ODD.present.toList(), '0-7');
    assert.equal(ODD.online.toList(), '0-6');
  });
  it('L3 domains are ordered by their lowest CPU', () => {
    assert.deepEqual(
      TR1920X.l3.map((s) => s.toList()),
      ['0-2,12-14', '3-5,15-17', '6-8,18-20', '9-11,21-23'],
    );
  });
  it('orderL3Domains drops duplicates and empty sets', () => {
    const d = orderL3Domains([
      CpuSet.parseList('4-7'),
      CpuSet.EMPTY,
      CpuSet.parseList('0-3'),
      CpuSet.parseList('4-7'),
    ]);
    assert.deepEqual(
      d.map((s) => s.toList()),
      ['0-3', '4-7'],
    );
  });
  it('refuses a spec without CPUs', () => {
    assert.throws(() => topologyFromSpec({}), /give cpus/);
  });
});

describe('robustness', () => {
  it('a long list of missing CPUs is cut short', () => {
    const err = expectError(
      () => parseCpuSpec('0x' + '5'.repeat(200), R5950X),
      ['CPUs 32,34,36,38,40,42,44,46,...'],
    );
    assert.ok(err.message.length < 160, err.message);
  });
  it('a non-string value (from an unchecked profile) is a NotationError, not a crash', () => {
    expectError(
      () => parseCpuSpec(3 as unknown as string, R5950X, { what: 'cpus' }),
      ['cpus: expected a string'],
    );
    expectError(() => parseNodeSpec(undefined as unknown as string, R5950X), ['expected a string']);
  });
});
