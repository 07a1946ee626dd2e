/**
 * Property tests for the CPU notation and CpuSet (fast-check). About 6,000 generated cases in all; the file runs in
 * well under 3 s.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CpuSet } from '../../src/cpus/cpuset.ts';
import { NotationError, parseCpuSpec, parseNodeSpec } from '../../src/cpus/notation.ts';
import { topologyFromSpec, type CpuTopology } from '../../src/cpus/topology-model.ts';

const MACHINES: CpuTopology[] = [
  topologyFromSpec({ cpus: 32, smtOffset: 16, l3: ['0-7,16-23', '8-15,24-31'] }),
  topologyFromSpec({
    cpus: 24,
    smtOffset: 12,
    nodes: ['0-5,12-17', '6-11,18-23'],
    l3: ['0-2,12-14', '3-5,15-17', '6-8,18-20', '9-11,21-23'],
  }),
  topologyFromSpec({ cpus: 12, smtOffset: 6 }),
  topologyFromSpec({
    cpus: 64,
    smtOffset: 32,
    packages: ['0-15,32-47', '16-31,48-63'],
    nodes: ['0-15,32-47', '16-31,48-63'],
  }),
  topologyFromSpec({ possible: '0-15', present: '0-7', online: '0-6', nodes: { 0: '0-7', 2: '' } }),
  topologyFromSpec({ cpus: 72, present: '0-39,64-71', online: '0-39,64-70' }), // holes in present
];

const machine = fc.constantFrom(...MACHINES);

/** Strings built from the notation's own tokens, so that most of them get deep into the parser. */
const TOKENS = [
  'C',
  'N',
  'L',
  'P',
  'S',
  '0x',
  '0X',
  'c',
  'n',
  'x',
  ',',
  ',',
  '-',
  '-',
  '+',
  '0',
  '1',
  '2',
  '3',
  '7',
  '9',
  '15',
  '31',
  '32',
  '63',
  '01',
  'f',
  'F',
  'a',
  'g',
  ' ',
  '\n',
  '\t',
  ':',
  '/',
  'deadbeef',
  '00000001',
  '12345678',
  'ffffffff',
  'FFFFFFFF',
  '00000000',
  '4000000000',
  '99999999999999999999',
  '\u0000',
  'é',
];
const tokenString = fc.array(fc.constantFrom(...TOKENS), { maxLength: 12 }).map((a) => a.join(''));
const anyString = fc.oneof(
  tokenString,
  fc.string({ maxLength: 24 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
);

function onlyNotationErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof NotationError)) throw e;
    assert.ok(e.message.length > 0 && !e.message.includes('\n'), e.message);
  }
}

/** A non-empty random subset of `s`. */
function subsetOf(s: CpuSet): fc.Arbitrary<CpuSet> {
  return fc.subarray(s.toArray(), { minLength: 1 }).map((a) => CpuSet.of(a));
}

const topoAndSubset = machine.chain((topo) => fc.tuple(fc.constant(topo), subsetOf(topo.present)));

const smallSet = fc.array(fc.nat({ max: 200 }), { maxLength: 40 }).map((a) => CpuSet.of(a));

describe('notation fuzz', () => {
  it('(a) any string: parseCpuSpec/parseNodeSpec return or throw NotationError (2,000 cases)', () => {
    fc.assert(
      fc.property(machine, anyString, (topo, value) => {
        onlyNotationErrors(() => {
          const { cpus, warnings } = parseCpuSpec(value, topo, { what: '--cpus' });
          assert.ok(!cpus.isEmpty && cpus.isSubsetOf(topo.present));
          for (const w of warnings) assert.equal(typeof w, 'string');
        });
        onlyNotationErrors(() => {
          const { nodes } = parseNodeSpec(value, topo);
          assert.ok(!nodes.isEmpty && nodes.toArray().every((n) => topo.nodes.has(n)));
        });
      }),
      { numRuns: 2000 },
    );
  });

  it('(b) C<list>, 0x<mask> and the 0.5.2 8-digit C mask of a present set give the set back (600 cases)', () => {
    fc.assert(
      fc.property(topoAndSubset, fc.integer({ min: 1, max: 80 }), ([topo, set], width) => {
        assert.ok(parseCpuSpec('C' + set.toList(), topo).cpus.equals(set));
        assert.ok(parseCpuSpec('0x' + set.toMask(width), topo).cpus.equals(set));
        assert.ok(parseCpuSpec('0x' + set.toMask(width).toUpperCase(), topo).cpus.equals(set));
        assert.ok(parseCpuSpec('0x' + set.toMask(width).replaceAll(',', ''), topo).cpus.equals(set));
        const groups = Math.ceil(Math.max(width, set.last! + 1) / 32); // whole groups: 8 digits each
        assert.ok(parseCpuSpec('C' + set.toMask(groups * 32), topo).cpus.equals(set));
        const offline = set.minus(topo.online);
        assert.equal(parseCpuSpec('C' + set.toList(), topo).warnings.length, offline.isEmpty ? 0 : 1);
      }),
      { numRuns: 600 },
    );
  });

  it('(b) selectors joined with + give the union (300 cases)', () => {
    fc.assert(
      fc.property(
        machine.chain((t) => fc.tuple(fc.constant(t), subsetOf(t.present), subsetOf(t.present))),
        ([topo, a, b]) => {
          const got = parseCpuSpec(`C${a.toList()}+0x${b.toMask(1)}`, topo).cpus;
          assert.ok(got.equals(a.union(b)));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('(c) CpuSet.parseList(toList) and parseMask(toMask) round-trip (1,000 cases)', () => {
    fc.assert(
      fc.property(smallSet, fc.integer({ min: 0, max: 256 }), (set, width) => {
        assert.ok(CpuSet.parseList(set.toList()).equals(set));
        assert.ok(CpuSet.parseList(set.toList() + '\n').equals(set));
        assert.ok(CpuSet.parseMask(set.toMask(width)).equals(set));
        assert.ok(CpuSet.parseMask(set.toMask(width) + '\n').equals(set));
      }),
      { numRuns: 1000 },
    );
  });

  it('(d) union / intersect / minus laws (1,000 cases)', () => {
    fc.assert(
      fc.property(smallSet, smallSet, smallSet, (a, b, c) => {
        const u = a.union(b).union(c);
        assert.ok(a.union(b).equals(b.union(a)));
        assert.ok(a.intersect(b).equals(b.intersect(a)));
        assert.ok(
          a
            .union(b)
            .union(c)
            .equals(a.union(b.union(c))),
        );
        assert.ok(
          a
            .intersect(b)
            .intersect(c)
            .equals(a.intersect(b.intersect(c))),
        );
        assert.ok(a.intersect(b.union(c)).equals(a.intersect(b).union(a.intersect(c))));
        assert.ok(a.union(a).equals(a) && a.intersect(a).equals(a) && a.minus(a).isEmpty);
        assert.ok(a.isSubsetOf(a.union(b)) && a.intersect(b).isSubsetOf(a));
        assert.ok(a.minus(b).intersect(b).isEmpty);
        assert.ok(a.minus(b).union(a.intersect(b)).equals(a));
        assert.ok(u.minus(a.union(b)).equals(u.minus(a).intersect(u.minus(b))));
        assert.ok(u.minus(a.intersect(b)).equals(u.minus(a).union(u.minus(b))));
        assert.equal(a.union(b).size, a.size + b.size - a.intersect(b).size);
        assert.equal(a.overlaps(b), !a.intersect(b).isEmpty);
        assert.equal(a.isSubsetOf(b), a.minus(b).isEmpty);
        for (const v of a.union(b)) assert.ok(a.has(v) || b.has(v));
      }),
      { numRuns: 1000 },
    );
  });
});
