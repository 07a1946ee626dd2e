import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { byFunction, treeUnder, type CpuProfile } from '../../bench/profile-core.ts';

/** root → main → {parse → read, apply → apply (recursion)}; samples of 0.1 to 0.6 ms. */
function profile(): CpuProfile {
  const fn = (id: number, name: string, line: number, children?: number[]) => ({
    id,
    callFrame: { functionName: name, lineNumber: line },
    ...(children ? { children } : {}),
  });
  return {
    nodes: [
      fn(1, '(root)', -1, [2]),
      fn(2, 'main', 0, [3, 4]),
      fn(3, 'parse', 4, [5]),
      fn(4, 'apply', 9, [6]),
      fn(5, 'read', 19),
      fn(6, 'apply', 9),
    ],
    samples: [3, 5, 5, 4, 2, 6],
    timeDeltas: [100, 200, 300, 400, 500, 600],
  };
}

describe('bench/profile-core: a CPU profile by function', () => {
  it('self and inclusive time per function; a recursive function counts each sample once', () => {
    const { total, self, inclusive } = byFunction(profile());
    assert.equal(total, 2100);
    assert.deepEqual(
      new Map(self),
      new Map([
        ['apply:10', 1000],
        ['read:20', 500],
        ['main:1', 500],
        ['parse:5', 100],
      ]),
    );
    assert.deepEqual(
      new Map(inclusive),
      new Map([
        ['(root):0', 2100],
        ['main:1', 2100],
        ['apply:10', 1000],
        ['parse:5', 600],
        ['read:20', 500],
      ]),
    );
    assert.deepEqual(self[0], ['apply:10', 1000], 'sorted by time');
  });

  it('the tree below a named function, children by time, paths under the minimum left out', () => {
    assert.deepEqual(treeUnder(profile(), 'main', 550), [
      { depth: 0, name: 'main', total: 2100, self: 500 },
      { depth: 1, name: 'apply:10', total: 1000, self: 400 },
      { depth: 2, name: 'apply:10', total: 600, self: 600 },
      { depth: 1, name: 'parse:5', total: 600, self: 100 },
    ]);
    assert.deepEqual(treeUnder(profile(), 'nowhere', 0), []);
  });
});
