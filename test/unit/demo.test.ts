/** The demo's pure parts: event lines, diff summary, leak figures from status --json, options, rendering. */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { decodeEvent, encodeEvent, LineSplitter, type DemoEvent } from '../../demo/events.ts';
import { hostUsBeforeAfter } from '../../demo/guest-measure.ts';
import { parseOptions } from '../../demo/options.ts';
import { cpuRanges, TextRenderer } from '../../demo/render.ts';
import { chunkArgv, figuresFromStatus, nameList, summariseChanges } from '../../demo/summary.ts';
import { buildFixture } from '../fixtures/build.ts';
import { cli } from '../support/cli.ts';

describe('demo events', () => {
  it('round-trip through a line and survive arbitrary chunking', () => {
    const events: DemoEvent[] = [
      { type: 'section', title: 'x' },
      { type: 'check', name: 'a "quoted"\nname', ok: true, detail: 'é ✓' },
    ];
    const text = events.map(encodeEvent).join('') + 'plain line\n';
    const got: string[] = [];
    const split = new LineSplitter((l) => got.push(l));
    for (let i = 0; i < text.length; i += 7) split.write(text.slice(i, i + 7));
    split.flush();
    assert.deepEqual(
      got.slice(0, 2).map((l) => decodeEvent(l)),
      events,
    );
    assert.equal(decodeEvent(got[2]!), undefined);
    assert.equal(decodeEvent('@demo {not json'), undefined);
  });
});

describe('demo diff summary', () => {
  it('groups IRQs and threads by change, and folds the cpuset files of a cgroup into one line', () => {
    const lines = [
      'cgroup / cgroup.subtree_control: "" → "cpuset"',
      'cgroup /init.scope cgroup.controllers: "" → "cpuset"',
      'cgroup /init.scope cpuset.cpus: (absent) → ""',
      'cgroup /init.scope cpuset.cpus.effective: (absent) → "0-7"',
      'cgroup /init.scope cpuset.mems: (absent) → ""',
      'cgroup /user.slice cgroup.controllers: "" → "cpuset"',
      'cgroup /user.slice cpuset.cpus: (absent) → "0-3"',
      'cgroup /user.slice cpuset.cpus.effective: (absent) → "0-3"',
      'cgroup /system.slice cgroup.controllers: "" → "cpuset"',
      'cgroup /system.slice cpuset.cpus: (absent) → "0-3"',
      'cgroup /system.slice cpuset.cpus.effective: (absent) → "0-3"',
      'cgroup /host.slice created (cpuset.cpus "0-3", cpuset.mems "0")',
      'irq 3 smp_affinity_list: 0-7 → 0-3',
      'irq 5 smp_affinity_list: 0-7 → 0-3',
      'irq default_smp_affinity: ff → 0f',
      'task 10 (sleep) Cpus_allowed_list: 0-7 → 0-3',
      'task 11 (sleep) Cpus_allowed_list: 0-7 → 0-3',
      'task 12 (kswapd1) Cpus_allowed_list: 4-7 → 0-3',
    ];
    assert.deepEqual(summariseChanges(lines), [
      'cgroup /: cgroup.subtree_control "" → cpuset',
      'cgroup /init.scope: cpuset enabled, CPUs inherited (0-7)',
      'cgroups /user.slice, /system.slice: cpuset enabled, CPUs 0-3 (effective 0-3)',
      'cgroup /host.slice created (cpuset.cpus "0-3", cpuset.mems "0")',
      'irq default_smp_affinity: ff → 0f',
      '2 IRQs may fire on 0-3 instead of 0-7 (IRQ 3 5)',
      '2 threads may run on 0-3 instead of 0-7 (sleep ×2)',
      '1 thread may run on 0-3 instead of 4-7 (kswapd1)',
    ]);
    assert.deepEqual(summariseChanges([]), []);
  });

  it('shows a changed cpuset.cpus with its effective CPUs', () => {
    assert.deepEqual(
      summariseChanges([
        'cgroup /user.slice cpuset.cpus: "" → "0-3"',
        'cgroup /user.slice cpuset.cpus.effective: "0-7" → "0-3"',
      ]),
      ['cgroup /user.slice: CPUs "" → 0-3 (effective 0-7 → 0-3)'],
    );
  });

  it('lists the most frequent names first', () => {
    assert.equal(nameList(['a', 'b', 'b', 'c', 'd'], 2), 'b ×2, a, +2 more');
  });
});

describe('demo helpers', () => {
  it('splits a chained argv where each command starts', () => {
    const names = new Set(['drop-caches', 'cpuset-modify', 'irq-affinity']);
    assert.deepEqual(
      chunkArgv(
        [
          '-v',
          '-u',
          'f',
          'drop-caches',
          'cpuset-modify',
          '--cpus',
          'C0-3',
          '/s',
          'irq-affinity',
          'mask',
          'C4-7',
        ],
        names,
      ),
      [
        ['-v', '-u', 'f', 'drop-caches'],
        ['cpuset-modify', '--cpus', 'C0-3', '/s'],
        ['irq-affinity', 'mask', 'C4-7'],
      ],
    );
  });

  it('parses the options', () => {
    assert.deepEqual(parseOptions([]), { mode: 'v2', json: false, keep: false, timeoutSec: 420 });
    assert.deepEqual(parseOptions(['--cgroup', 'v1', '--json']), {
      mode: 'v1-hybrid',
      json: true,
      keep: false,
      timeoutSec: 420,
    });
    assert.deepEqual(parseOptions(['--cgroup=v2', '--timeout', '60']), {
      mode: 'v2',
      json: false,
      keep: false,
      timeoutSec: 60,
    });
    assert.ok('error' in parseOptions(['--cgroup', 'v3']));
    assert.deepEqual(parseOptions(['--systemd']), {
      mode: 'systemd',
      json: false,
      keep: false,
      timeoutSec: 600,
    });
    assert.equal((parseOptions(['--systemd', '--timeout', '900']) as { timeoutSec: number }).timeoutSec, 900);
    assert.ok('error' in parseOptions(['--systemd', '--cgroup', 'v1']));
    assert.ok('error' in parseOptions(['--bogus']));
    assert.ok('help' in parseOptions(['-h']));
  });

  it('writes CPU lists compactly', () => {
    assert.equal(cpuRanges([0, 2, 3, 5, 6, 7]), '0,2,3,5-7');
    assert.equal(cpuRanges([]), '-');
  });
});

describe('demo leak figures from status --json', () => {
  const root = buildFixture('ryzen-5950x');
  after(() => rmSync(root, { recursive: true, force: true }));

  it('counts each kind exactly (a hand-made status document)', () => {
    const f = (kind: string, id: number) => ({ kind, id, line: `${kind} ${id}` });
    const doc = JSON.stringify({
      leaks: [
        f('task', 1),
        f('task', 2),
        f('kthread', 3),
        f('irq', 4),
        f('irq', 5),
        f('irq', 6),
        f('default-irq', 0),
        f('workqueue', 0),
        f('governor', 7),
      ],
      unmovable: [f('pinned-kthread', 8), f('pinned-kthread', 9), f('managed-irq', 40), f('managed-irq', 41)],
    });
    const { figures, managedIrqs, leakLines } = figuresFromStatus(doc);
    assert.deepEqual(figures, {
      tasks: 2,
      kthreads: 1,
      irqs: 3,
      masks: 2,
      total: 9,
      pinnedKthreads: 2,
      managedIrqs: 2,
    });
    assert.deepEqual([...managedIrqs], ['40', '41']);
    assert.equal(leakLines.length, 9);
    assert.equal(leakLines[8], 'governor 7');
    assert.throws(() => figuresFromStatus('{"leaks": 3}'), /no leaks/);
  });

  it('the real status --json uses the kinds the figures count', async () => {
    const r = await cli(root, ['status', '--json', 'C8-15,24-31']);
    assert.equal(r.code, 1, r.stderr);
    const j = JSON.parse(r.stdout) as { leaks: { kind: string }[]; unmovable: { kind: string }[] };
    const kinds = new Set(j.leaks.map((x) => x.kind));
    for (const k of ['task', 'kthread', 'irq', 'default-irq', 'workqueue'])
      assert.ok(kinds.has(k), `leak kind ${k}`);
    const fixed = new Set(j.unmovable.map((x) => x.kind));
    for (const k of ['pinned-kthread', 'managed-irq']) assert.ok(fixed.has(k), `unmovable kind ${k}`);
  });
});

describe('demo text rendering', () => {
  const render = (events: DemoEvent[], colour = false): string => {
    let out = '';
    const r = new TextRenderer({ colour, width: 80, write: (s) => void (out += s) });
    for (const e of events) r.event(e);
    return out;
  };

  it('puts a long chained command on several lines, with its exit code and time on the last', () => {
    const argv = ['-v', 'drop-caches', 'cpuset-modify', '--cpus', 'C0-3', '/system.slice'];
    const out = render([
      {
        type: 'command',
        argv: [...argv, 'cpuset-modify', '--cpus', 'C0-3', '/user.slice', 'irq-affinity', 'mask', 'C4-7'],
        chunks: [
          ['-v', 'drop-caches'],
          ['cpuset-modify', '--cpus', 'C0-3', '/system.slice'],
          ['cpuset-modify', '--cpus', 'C0-3', '/user.slice'],
          ['irq-affinity', 'mask', 'C4-7'],
        ],
        code: 0,
        stdout: 'done\n\n',
        stderr: 'vfio-isolate: step\n',
        seconds: 1.25,
      },
    ]);
    const lines = out.split('\n');
    assert.equal(lines[1], '$ vfio-isolate -v drop-caches \\');
    assert.equal(lines[2], '    cpuset-modify --cpus C0-3 /system.slice \\');
    assert.match(lines[4]!, /^ {4}irq-affinity mask C4-7 +exit 0 · 1\.3 s$/);
    assert.equal(lines[4]!.length, 80);
    assert.equal(lines[5], '    done');
    assert.equal(lines[6], '    vfio-isolate: step');
    assert.ok(!out.includes('\x1b['), 'no colour unless asked');
  });

  it('aligns the placement table and colours only when asked', () => {
    const ev: DemoEvent = {
      type: 'placement',
      title: 'Where they ran',
      vmCpus: '4-7',
      seconds: 2,
      procs: [
        { pid: 7, samples: 100, cpus: [0, 5], onVm: 50, allowed: '0-7' },
        { pid: 1234, samples: 9, cpus: [1], onVm: 0, allowed: '0-3' },
      ],
    };
    const out = render([ev]);
    assert.ok(
      out.endsWith(
        [
          '     PID  SAMPLES  RAN ON CPUS  ON 4-7  MAY RUN ON',
          '       7      100  0,5             50%  0-7',
          '    1234        9  1                0%  0-3',
          '',
        ].join('\n'),
      ),
      out,
    );
    assert.ok(render([ev], true).includes('\x1b['));
  });

  it('marks failed checks and lists them in the summary', () => {
    let out = '';
    const r = new TextRenderer({ colour: false, width: 80, write: (s) => void (out += s) });
    r.event({ type: 'check', name: 'it works', ok: false, detail: 'it did not' });
    r.summary(
      [],
      [
        { name: 'it works', ok: false },
        { name: 'other', ok: true },
      ],
    );
    assert.match(out, /✗ FAILED: it works \(it did not\)/);
    assert.match(out, /1 of 2 checks FAILED:\n {2}✗ it works\n/);
  });
});

describe('demo measure section', () => {
  it("reads host us/s before and after from isolate --measure's own table", async () => {
    const root = buildFixture('intel-6c12t');
    const r = await cli(root, ['isolate', '--measure', '0.2', 'C4-5'], { VFIO_ISOLATE_PROBE: 'quiet' });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(hostUsBeforeAfter(r.stdout, 5), { before: 0, after: 0 });
    assert.equal(hostUsBeforeAfter(r.stdout, 6), undefined);
    const coloured = '\x1b[1mCPU\x1b[0m  irq/s  host us/s\n5    812 -> 3.0  \x1b[33m998000 -> 12.5\x1b[0m\n';
    assert.deepEqual(hostUsBeforeAfter(coloured, 5), { before: 998000, after: 12.5 });
  });
});
