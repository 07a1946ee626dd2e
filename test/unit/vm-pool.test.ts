import { test } from 'node:test';
import assert from 'node:assert/strict';
import { byExpectedLength, guestJobs, runPool } from '../vm/pool.ts';

test('guestJobs: VFIO_VM_JOBS when a whole number ≥ 1, else 1; never more than the modes', () => {
  assert.equal(guestJobs(undefined, 4), 1);
  assert.equal(guestJobs('2', 4), 2);
  assert.equal(guestJobs(' 3 ', 4), 3);
  assert.equal(guestJobs('9', 4), 4);
  assert.equal(guestJobs('2', 1), 1);
  for (const bad of ['0', '-1', '1.5', 'two', '']) assert.equal(guestJobs(bad, 4), 1, bad);
});

test('byExpectedLength: the longest suites first, so a pool of two ends at about one time', () => {
  assert.deepEqual(byExpectedLength(['v2', 'v1-hybrid', 'v2-6.1', 'systemd']), [
    'v2',
    'systemd',
    'v2-6.1',
    'v1-hybrid',
  ]);
  assert.deepEqual(byExpectedLength(['v1-hybrid', 'v2']), ['v2', 'v1-hybrid']);
});

test('runPool: at most `jobs` at once, the next starts as one ends, results in the items order', async () => {
  let running = 0;
  let most = 0;
  const started: number[] = [];
  const gates = new Map<number, () => void>();
  const done = runPool([0, 1, 2, 3], 2, async (i) => {
    started.push(i);
    running++;
    most = Math.max(most, running);
    await new Promise<void>((r) => gates.set(i, r));
    running--;
    return i * 10;
  });
  const tick = () => new Promise((r) => setImmediate(r));
  await tick();
  assert.deepEqual(started, [0, 1]);
  gates.get(1)?.();
  await tick();
  assert.deepEqual(started, [0, 1, 2], 'the third starts when one of the first two ends');
  gates.get(0)?.();
  await tick();
  gates.get(2)?.();
  gates.get(3)?.();
  assert.deepEqual(await done, [0, 10, 20, 30]);
  assert.equal(most, 2);
});

test('runPool: one job runs the items one after another', async () => {
  const order: string[] = [];
  await runPool(['a', 'b', 'c'], 1, async (x) => {
    order.push(`start ${x}`);
    await new Promise((r) => setImmediate(r));
    order.push(`end ${x}`);
  });
  assert.deepEqual(order, ['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
});
