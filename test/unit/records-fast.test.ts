/**
 * Issue 17: the arrays the tool journals by the thousand (a write record's files, a tasks record's ids and pids, an
 * affinity record's tasks and listed threads) are checked first in plain JavaScript (records.ts fastArray). For
 * every input, valid or not, a record gives the same output and the same issues as the same record checked by
 * valibot alone.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as v from 'valibot';
import {
  AffinityListed,
  AffinityRecord,
  AffinityTasks,
  Pids,
  TaskIds,
  TasksRecord,
  WriteRecord,
  WrittenFiles,
} from '../../src/steps/records.ts';
import { outcome } from '../support/valibot-outcome.ts';
import { rng } from '../support/rng.ts';

/** The same records with valibot's own arrays. */
const plain = {
  write: v.strictObject({ ...WriteRecord.entries, files: WrittenFiles }),
  tasks: v.strictObject({ ...TasksRecord.entries, ids: TaskIds, pids: v.optional(Pids) }),
  affinity: v.strictObject({
    ...AffinityRecord.entries,
    tasks: AffinityTasks,
    listed: v.optional(AffinityListed),
  }),
};
const fast = { write: WriteRecord, tasks: TasksRecord, affinity: AffinityRecord };

function same(kind: keyof typeof fast, input: unknown): void {
  // the input is parsed from JSON text each time, as a journal line is (the fast path passes arrays as they are)
  const text = JSON.stringify(input);
  assert.deepEqual(
    outcome(fast[kind], JSON.parse(text)),
    outcome(plain[kind], JSON.parse(text)),
    `${kind}: ${text.slice(0, 300)}`,
  );
}

/** Values near every bound and of every JSON type. */
const NUMBERS = [0, 1, 2, 4194303, 4194304, 4194305, -1, 1.5, -0, 1e21, 2 ** 53, 12345];
const STRINGS = [
  '',
  '/',
  '/proc/irq/1/smp_affinity_list',
  'proc/x',
  '0-7',
  '0-3,8',
  'all',
  '0x0f',
  ' 1',
  '1\n',
];
const OTHERS = [null, true, false, {}, [], '7', [1], { 0: 1 }];
const long = (n: number, c = '1'): string => c.repeat(n);
const LONG = [`/${long(4095, 'a')}`, `/${long(4096, 'a')}`, long(4096), long(4097), long(8192), long(8193)];

test('fixed inputs: the shape the tool writes, bounds, and every kind of wrong item', () => {
  const files = [
    ['/proc/irq/1/smp_affinity_list', '0-7', '0-3'],
    ['/proc/irq/2/smp_affinity_list', '0-7'],
  ];
  const inputs: [keyof typeof fast, unknown][] = [
    ['write', { kind: 'write', files }],
    ['write', { kind: 'write', files: [] }],
    ['write', { kind: 'write', files: [['/a', '1', '2', '3']] }],
    ['write', { kind: 'write', files: [['/a']] }],
    ['write', { kind: 'write', files: [['/a', '1', null]] }],
    ['write', { kind: 'write', files: [[`/${long(4095, 'a')}`, long(8192), long(8192)]] }],
    ['write', { kind: 'write', files: [[`/${long(4096, 'a')}`, '1']] }],
    ['write', { kind: 'write', files: [['/a', long(8193)]] }],
    ['write', { kind: 'write', files: [['/a', '1', long(8193)]] }],
    ['write', { kind: 'write', files: [['a', '1']] }],
    ['write', { kind: 'write', files: 'x' }],
    ['write', { kind: 'write', files: [{ 0: '/a', 1: '1', length: 2 }] }],
    [
      'tasks',
      {
        kind: 'tasks',
        from: '/a',
        to: '/b',
        file: 'tasks',
        ids: [
          [1, 0],
          [4194304, 9],
        ],
      },
    ],
    ['tasks', { kind: 'tasks', from: '/a', to: '/b', file: 'tasks', ids: [[1, 0, 5]] }],
    ['tasks', { kind: 'tasks', from: '/a', to: '/b', file: 'tasks', ids: [[1]] }],
    ['tasks', { kind: 'tasks', from: '/a', to: '/b', file: 'tasks', ids: [], pids: [1, 2, 4194304] }],
    ['tasks', { kind: 'tasks', from: '/a', to: '/b', file: 'tasks', ids: [], pids: [0] }],
    ['tasks', { kind: 'tasks', from: '/a', to: '/b', file: 'tasks', ids: [], pids: null }],
    ['affinity', { kind: 'affinity', tasks: [[5, 10, '0-7']], listed: [[6, '0-3']], listedAt: 11 }],
    ['affinity', { kind: 'affinity', tasks: [[5, 10, '']], listed: [] }],
    ['affinity', { kind: 'affinity', tasks: [[5, 10, '0-7', 'x']] }],
    ['affinity', { kind: 'affinity', tasks: [[5, 10, 'all']] }],
    ['affinity', { kind: 'affinity', tasks: [[5, 10, long(4097)]] }],
    ['affinity', { kind: 'affinity', tasks: [], listed: [[6, '0-3', 1]] }],
  ];
  for (const [kind, input] of inputs) same(kind, input);
});

test('generated records: 3,000 arrays of good and bad items, the same outcome either way', () => {
  const next = rng(20261207);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(next() * a.length)]!;
  const anyValue = (): unknown => pick([pick(NUMBERS), pick(STRINGS), pick(OTHERS), pick(LONG)]);
  const num = (): unknown => (next() < 0.9 ? 1 + Math.floor(next() * 4194304) : anyValue());
  const ticks = (): unknown => (next() < 0.9 ? Math.floor(next() * 1e9) : anyValue());
  const str = (good: string): unknown => (next() < 0.9 ? good : anyValue());
  /** An item: mostly well formed, sometimes one part wrong, sometimes a wrong length. */
  const tuple = (parts: (() => unknown)[]): unknown => {
    const t = parts.map((p) => p());
    const r = next();
    if (r < 0.05) t.push(anyValue());
    else if (r < 0.1) t.pop();
    else if (r < 0.12) return anyValue();
    return t;
  };
  const list = (item: () => unknown): unknown[] =>
    Array.from({ length: Math.floor(next() * (next() < 0.1 ? 200 : 6)) }, item);
  for (let i = 0; i < 1000; i++) {
    const path = (): unknown => str(`/proc/irq/${Math.floor(next() * 64)}/smp_affinity_list`);
    same('write', {
      kind: 'write',
      files: list(() =>
        next() < 0.5 ? tuple([path, () => str('0-7')]) : tuple([path, () => str('0-7'), () => str('4')]),
      ),
    });
    same('tasks', {
      kind: 'tasks',
      from: '/sys/fs/cgroup/cpuset',
      to: '/sys/fs/cgroup/cpuset/host',
      file: 'tasks',
      ids: list(() => tuple([num, ticks])),
      ...(next() < 0.5 ? { pids: list(() => (next() < 0.95 ? num() : anyValue())), listedAt: 5 } : {}),
    });
    same('affinity', {
      kind: 'affinity',
      tasks: list(() => tuple([num, ticks, () => str('0-3,8')])),
      ...(next() < 0.5 ? { listed: list(() => tuple([num, () => str('2')])), listedAt: 7 } : {}),
    });
  }
});

test('arrays with holes (not from JSON, but any caller): judged as valibot judges them', () => {
  /** An array of `n` slots holding only `items` (the others are holes). */
  const holey = (n: number, items: Record<number, unknown>): unknown[] => {
    const out = new Array<unknown>(n);
    for (const [i, item] of Object.entries(items)) out[Number(i)] = item;
    return out;
  };
  const inputs: [keyof typeof fast, unknown][] = [
    ['write', { kind: 'write', files: holey(2, { 1: ['/a', '1'] }) }],
    ['write', { kind: 'write', files: holey(3, {}) }],
    [
      'tasks',
      { kind: 'tasks', from: '/a', to: '/b', file: 'tasks', ids: holey(3, { 0: [1, 2], 2: [3, 4] }) },
    ],
    [
      'tasks',
      { kind: 'tasks', from: '/a', to: '/b', file: 'tasks', ids: [], pids: holey(3, { 0: 1, 2: 3 }) },
    ],
    [
      'affinity',
      { kind: 'affinity', tasks: holey(2, { 1: [5, 10, '0-7'] }), listed: holey(2, { 0: [6, '1'] }) },
    ],
  ];
  for (const [kind, input] of inputs)
    assert.deepEqual(outcome(fast[kind], input), outcome(plain[kind], input), kind);
});

test('arrays at and past their length bounds', () => {
  same('write', { kind: 'write', files: Array.from({ length: 100000 }, () => ['/a', '1']) });
  same('write', { kind: 'write', files: Array.from({ length: 100001 }, () => ['/a', '1']) });
});
