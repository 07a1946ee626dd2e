import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareTable, figures, parseVariant } from '../../bench/alternate-core.ts';
import type { GuestRun } from '../../bench/guest.ts';

describe('bench/alternate: variants', () => {
  it('a name, an optional checkout after "@", and KEY=VALUE pairs after ":" (values keep spaces and "=")', () => {
    assert.deepEqual(parseVariant('default'), { name: 'default', env: {} });
    assert.deepEqual(parseVariant('old@/tmp/wt-old'), { name: 'old', dir: '/tmp/wt-old', env: {} });
    assert.deepEqual(parseVariant('nojit:BENCH_NODE_FLAGS=--no-opt --no-sparkplug'), {
      name: 'nojit',
      env: { BENCH_NODE_FLAGS: '--no-opt --no-sparkplug' },
    });
    assert.deepEqual(parseVariant('x@../wt:A=1;B=--f=2;'), {
      name: 'x',
      dir: '../wt',
      env: { A: '1', B: '--f=2' },
    });
  });

  it('refuses a name with other characters, an empty checkout and a pair that is not KEY=VALUE', () => {
    for (const bad of ['', 'a b', 'a/b:X=1', 'a@', 'a:novalue', 'a:lower=1', 'a:=1'])
      assert.throws(() => parseVariant(bad), Error, bad);
  });
});

/** A guest run with the given series; `ours` values stand for the tool's wall times. */
function run(mode: 'v2' | 'v1-hybrid', irq: { bare: number[]; ours: number[] }): GuestRun {
  const tool = (xs: number[]) => xs.map((ms) => ({ ms, phases: {} }));
  return {
    mode,
    spec: {
      sizes: [2000],
      reps: 3,
      parts: ['move', 'irq'],
      budgetSec: 60,
      irqReps: 3,
      cycleReps: 3,
      coldReps: 3,
    },
    memMiB: 1024,
    seconds: 1,
    result: {
      mode,
      kernel: '6.1',
      cpus: '0-7',
      memMiB: 1024,
      taskFile: 'tasks',
      errors: [],
      move: [
        {
          size: 2000,
          tasks: 2000,
          bare: [10, 20, 40],
          ours: tool([15, 40, 40]),
          oursNoJournal: tool([30, 20]),
          bareMasks: [12, 20, 20],
        },
        { size: 2000, tasks: 2061, bare: [10], ours: tool([13]), oursNoJournal: [], source: 'root' },
      ],
      irq: {
        irqs: 25,
        changed: 20,
        bare: irq.bare,
        ours: tool(irq.ours),
        restoreBare: [1, 2],
        restore: tool([5, 12]),
      },
    },
  };
}

describe('bench/alternate: figures of one run', () => {
  it('each the median of the paired ratios, keyed by mode and what; missing series left out', () => {
    const f = figures(run('v1-hybrid', { bare: [10, 10, 10], ours: [20, 25, 30] }));
    assert.deepEqual(Object.fromEntries(f), {
      'v1-hybrid: move-tasks 2000 ÷ bare': 1.5, // 1.5, 2, 1
      'v1-hybrid: move-tasks 2000 without -u ÷ bare': 2, // 3, 1 → their median
      'v1-hybrid: move-tasks 2000 ÷ bare + masks': 2, // 1.25, 2, 2
      'v1-hybrid: move-tasks / (2000 bench tasks) ÷ bare': 1.3,
      'v1-hybrid: irq mask ÷ bare': 2.5,
      'v1-hybrid: irq restore ÷ bare': 5.5, // 5, 6
    });
  });

  it("the cold runs: less the same repetition's empty module, ours ÷ bare; ours ÷ the baseline build, paired", () => {
    const r = run('v2', { bare: [1], ours: [2] });
    r.result!.cold = {
      irqs: 25,
      changed: 14,
      boot: [500, 500],
      empty: [20, 30],
      bareMask: [40, 50],
      bareRestore: [30, 40],
      tools: [
        { name: 'ours', mask: [420, 230], restore: [220, 830], isolate: [900, 1000], release: [800, 300] },
        {
          name: 'e6428ad',
          mask: [210, 460],
          restore: [440, 415],
          isolate: [1800, 1000],
          release: [400, 600],
        },
      ],
    };
    const f = figures(r);
    assert.equal(f.get('v2: cold mask − empty ÷ bare − empty'), 15); // 400/20, 200/20 → median 15
    assert.equal(f.get('v2: cold restore − empty ÷ bare − empty'), 50); // 200/10, 800/10 → 50
    assert.equal(f.get('v2: cold mask ÷ e6428ad'), 1.25); // 2, 0.5
    assert.equal(f.get('v2: cold restore ÷ e6428ad'), 1.25); // 0.5, 2
    assert.equal(f.get('v2: cold isolate ÷ e6428ad'), 0.75); // 0.5, 1
    assert.equal(f.get('v2: cold release ÷ e6428ad'), 1.25); // 2, 0.5
  });

  it('a run without results gives none', () => {
    const r = run('v2', { bare: [1], ours: [2] });
    delete r.result;
    assert.equal(figures(r).size, 0);
  });
});

describe('bench/alternate: the comparison table', () => {
  it('per variant the median of its runs, then each run; "-" where a variant lacks a figure', () => {
    const a = [
      figures(run('v2', { bare: [10], ours: [20] })),
      figures(run('v2', { bare: [10], ours: [30] })),
    ];
    const b = [new Map([['v2: irq mask ÷ bare', 1.5]])];
    const text = compareTable(
      ['old', 'new'],
      new Map([
        ['old', a],
        ['new', b],
      ]),
    );
    const row = (name: string) => text.split('\n').find((l) => l.startsWith(name))!;
    assert.match(row('v2: irq mask ÷ bare'), /2\.50× \(2\.00, 3\.00\)\s+1\.50× \(1\.50\)$/);
    assert.match(row('v2: irq restore ÷ bare'), /5\.50× \(5\.50, 5\.50\)\s+-$/);
    assert.match(text.split('\n')[0]!, /old: median \(runs\)\s+new: median \(runs\)$/);
  });
});
