import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CpuSet } from '../../src/cpus/cpuset.ts';

const L = (s: string): CpuSet => CpuSet.parseList(s);

describe('CpuSet.parseList', () => {
  const ok: [string, string][] = [
    ['0', '0'],
    ['0-3', '0-3'],
    ['0-3,8', '0-3,8'],
    ['0-3,8-11', '0-3,8-11'],
    ['8,0-3', '0-3,8'],
    ['1,2', '1-2'],
    ['0-3,2-5', '0-5'],
    ['3-3', '3'],
    ['0-19\n', '0-19'],
    [' 0-3 \n', '0-3'],
    ['', ''],
    ['\n', ''],
    ['  \t\n', ''],
  ];
  for (const [input, want] of ok) {
    it(`${JSON.stringify(input)} → ${JSON.stringify(want)}`, () => {
      assert.equal(L(input).toList(), want);
    });
  }

  it('an all-whitespace file is the empty set', () => {
    assert.ok(L('\n').isEmpty);
    assert.equal(L('\n').size, 0);
  });

  const bad = ['5-2', 'x', '0-3,', ',0', '0,,1', '1-2-3', '0--3', '-3', '3-', '0-3:2/4', 'ff', '0 1'];
  for (const input of bad) {
    it(`${JSON.stringify(input)} → SyntaxError`, () => {
      assert.throws(() => L(input), SyntaxError);
    });
  }

  it('names the reversed range', () => {
    assert.throws(() => L('5-2'), /reversed range 5-2/);
  });
});

describe('CpuSet.parseMask', () => {
  const ok: [string, string][] = [
    ['1', '0'],
    ['ff', '0-7'],
    ['FF', '0-7'],
    ['fF', '0-7'],
    ['fff', '0-11'],
    ['ffff', '0-15'],
    ['ffffffff', '0-31'],
    ['00000000', ''],
    ['0', ''],
    ['f0', '4-7'],
    ['80000000', '31'],
    ['f,0', '32-35'],
    ['1,00000000', '32'],
    ['00000001,00000000', '32'],
    ['ff,ffffffff', '0-39'],
    ['ffffffff,ffffffff', '0-63'],
    ['1,00000000,00000000', '64'],
    ['deadbeef,00000001', '0,32-35,37-39,41-45,47-48,50-51,53,55,57-60,62-63'],
    ['12345678', '3-6,9-10,12,14,18,20-21,25,28'],
    ['ffff\n', '0-15'],
    ['\n', ''],
    ['', ''],
  ];
  for (const [input, want] of ok) {
    it(`${JSON.stringify(input)} → ${JSON.stringify(want)}`, () => {
      assert.equal(CpuSet.parseMask(input).toList(), want);
    });
  }

  const bad = ['g', '0x1', '123456789', 'ff,', ',ff', 'ff,,ff', 'f f', '-1'];
  for (const input of bad) {
    it(`${JSON.stringify(input)} → SyntaxError`, () => {
      assert.throws(() => CpuSet.parseMask(input), SyntaxError);
    });
  }
});

describe('CpuSet.toList', () => {
  const cases: [number[], string][] = [
    [[], ''],
    [[0], '0'],
    [[1, 2], '1-2'],
    [[0, 2, 4], '0,2,4'],
    [[0, 1, 2, 3, 5, 7, 8, 9], '0-3,5,7-9'],
    [[9, 8, 7, 0, 0, 1], '0-1,7-9'],
    [[31, 63], '31,63'],
  ];
  for (const [arr, want] of cases) {
    it(`[${arr.join(',')}] → ${JSON.stringify(want)}`, () => {
      assert.equal(CpuSet.of(arr).toList(), want);
      assert.equal(String(CpuSet.of(arr)), want);
    });
  }
});

describe('CpuSet.toMask', () => {
  const cases: [CpuSet, number, string][] = [
    [CpuSet.range(0, 15), 16, 'ffff'],
    [CpuSet.range(0, 11), 12, 'fff'],
    [CpuSet.range(0, 63), 64, 'ffffffff,ffffffff'],
    [CpuSet.range(0, 39), 40, 'ff,ffffffff'],
    [CpuSet.range(0, 31), 32, 'ffffffff'],
    [CpuSet.of([0]), 40, '00,00000001'],
    [CpuSet.of([32]), 64, '00000001,00000000'],
    [CpuSet.of([0]), 1, '1'],
    [CpuSet.EMPTY, 8, '00'],
    [CpuSet.EMPTY, 0, '0'],
    [CpuSet.of([4, 5, 6, 7]), 8, 'f0'],
    [CpuSet.of([40]), 8, '100,00000000'],
    [CpuSet.of([0, 32]), 33, '1,00000001'],
  ];
  for (const [set, n, want] of cases) {
    it(`{${set.toList()}} on ${n} CPUs → ${want}`, () => {
      assert.equal(set.toMask(n), want);
      assert.ok(CpuSet.parseMask(want).equals(set));
    });
  }
});

describe('CpuSet construction and queries', () => {
  it('of() sorts and merges duplicates', () => {
    assert.deepEqual(CpuSet.of([3, 1, 3, 2, 1]).toArray(), [1, 2, 3]);
    assert.deepEqual(CpuSet.of([1, 2, 2]).toArray(), [1, 2], 'a repeat at the end of an ascending run');
    assert.deepEqual(CpuSet.of([0, 5, 4]).toArray(), [0, 4, 5]);
    assert.deepEqual(CpuSet.of(new Set([9, 1])).toArray(), [1, 9]);
    assert.ok(CpuSet.of([0, 1]).equals(CpuSet.of([1, 0])));
  });
  it('of() keeps no reference to the values it was given', () => {
    const values = [0, 1, 2];
    const set = CpuSet.of(values);
    values.push(3);
    values[0] = 7;
    assert.equal(set.toList(), '0-2');
  });
  it('of() rejects negative, fractional and unsafe numbers', () => {
    assert.throws(() => CpuSet.of([-1]), RangeError);
    assert.throws(() => CpuSet.of([1.5]), RangeError);
    assert.throws(() => CpuSet.of([Number.NaN]), RangeError);
    assert.throws(() => CpuSet.of([2 ** 60]), RangeError);
  });
  it('range() is inclusive; a reversed range is empty', () => {
    assert.equal(CpuSet.range(2, 5).toList(), '2-5');
    assert.ok(CpuSet.range(5, 2).isEmpty);
  });
  it('size, isEmpty, first, last', () => {
    const s = L('3-5,9');
    assert.equal(s.size, 4);
    assert.equal(s.isEmpty, false);
    assert.equal(s.first, 3);
    assert.equal(s.last, 9);
    assert.equal(CpuSet.EMPTY.first, undefined);
    assert.equal(CpuSet.EMPTY.last, undefined);
    assert.ok(CpuSet.EMPTY.isEmpty);
  });
  it('has() on every member and non-member', () => {
    const s = L('0,2-4,7,100');
    for (let i = 0; i <= 101; i++) assert.equal(s.has(i), [0, 2, 3, 4, 7, 100].includes(i), `has(${i})`);
  });
  it('toArray() is a copy; iteration yields sorted members', () => {
    const s = L('1-3');
    const a = s.toArray();
    a.push(99);
    assert.equal(s.toList(), '1-3');
    assert.deepEqual([...s], [1, 2, 3]);
  });
});

describe('CpuSet algebra', () => {
  const a = L('0-7');
  const b = L('4-11');
  it('union', () => assert.equal(a.union(b).toList(), '0-11'));
  it('intersect', () => assert.equal(a.intersect(b).toList(), '4-7'));
  it('minus', () => {
    assert.equal(a.minus(b).toList(), '0-3');
    assert.equal(b.minus(a).toList(), '8-11');
  });
  it('with the empty set', () => {
    assert.ok(a.union(CpuSet.EMPTY).equals(a));
    assert.ok(a.intersect(CpuSet.EMPTY).isEmpty);
    assert.ok(a.minus(CpuSet.EMPTY).equals(a));
    assert.ok(CpuSet.EMPTY.minus(a).isEmpty);
  });
  it('equals', () => {
    assert.ok(L('0-3').equals(CpuSet.of([3, 2, 1, 0])));
    assert.ok(!L('0-3').equals(L('0-4')));
    assert.ok(!L('0-3').equals(L('1-4')));
    assert.ok(CpuSet.EMPTY.equals(L('\n')));
  });
  it('isSubsetOf', () => {
    assert.ok(L('4-7').isSubsetOf(a));
    assert.ok(a.isSubsetOf(a));
    assert.ok(CpuSet.EMPTY.isSubsetOf(a));
    assert.ok(!b.isSubsetOf(a));
  });
  it('overlaps', () => {
    assert.ok(a.overlaps(b));
    assert.ok(!L('0-3').overlaps(L('4-7')));
    assert.ok(!a.overlaps(CpuSet.EMPTY));
  });
  it('operations do not change their operands', () => {
    a.union(b);
    a.minus(b);
    a.intersect(b);
    assert.equal(a.toList(), '0-7');
    assert.equal(b.toList(), '4-11');
  });
});
