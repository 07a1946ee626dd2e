import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { linearity } from '../../bench/stats.ts';

describe('bench linearity verdict', () => {
  it('a line with a large fixed cost is linear', () => {
    const pts = [1000, 2000, 10000].map((n) => [n, 2000 + 0.02 * n] as const);
    const l = linearity(pts);
    assert.equal(l.verdict, 'linear');
    assert.deepEqual(
      l.slopes.map((v) => Math.round(v)),
      [20, 20],
    );
  });
  it('a quadratic term behind a fixed cost is NOT linear (time per task would have called it linear)', () => {
    // t = 3000 ms + 0.01 ms·n + 2e-6 ms·n²: per-task cost 3.01 → 1.52 → 0.33 ms falls; marginal cost rises 16 → 34 µs.
    const t = (n: number) => 3000 + 0.01 * n + 2e-6 * n * n;
    const pts = [1000, 2000, 10000].map((n) => [n, t(n)] as const);
    const perTask = pts.map(([n, ms]) => ms / n);
    assert.ok(perTask[2]! / perTask[0]! < 1.5, 'the old per-task rule is fooled');
    assert.equal(linearity(pts).verdict, 'NOT linear');
  });
  it('two sizes cannot tell', () => {
    assert.equal(
      linearity([
        [1000, 50],
        [10000, 500],
      ]).verdict,
      'needs 3 sizes',
    );
  });
});

describe('bench: BENCH_NODE_FLAGS', () => {
  it('takes node flags and refuses anything else (the flags reach the guest command line)', async () => {
    const { guestNodeFlags } = await import('../../bench/guest.ts');
    assert.deepEqual(guestNodeFlags({}), []);
    assert.deepEqual(guestNodeFlags({ BENCH_NODE_FLAGS: ' --single-threaded  --max-semi-space-size=1 ' }), [
      '--single-threaded',
      '--max-semi-space-size=1',
    ]);
    for (const bad of ['-e', '--x;reboot', '--a=$(id)', 'script.js', '--a=b c=d`x`', '--a=1|sh'])
      assert.throws(() => guestNodeFlags({ BENCH_NODE_FLAGS: bad }), /is not a node flag/, bad);
  });
});
