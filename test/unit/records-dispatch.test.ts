/**
 * The journal's line and record schemas go straight to the option their discriminator names (records.ts
 * byDiscriminator): for every input, valid or not, the same output and the same issues as valibot's own variant
 * over the same options.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as v from 'valibot';
import {
  BodyLine,
  byDiscriminator,
  RecLine,
  RestoredLine,
  RollbackLine,
  RunLine,
  UndoRecord,
  UNDO_RECORDS,
} from '../../src/steps/records.ts';
import { outcome } from '../support/valibot-outcome.ts';

const plainRecord = v.variant('kind', UNDO_RECORDS);
const plainLine = v.variant('t', [RunLine, RecLine, RollbackLine, RestoredLine]);

const records: unknown[] = [
  { kind: 'write', files: [['/proc/irq/1/smp_affinity_list', '0-7', '0-3']] },
  { kind: 'write', files: [['/proc/irq/1/smp_affinity_list', '0-7']] },
  { kind: 'write', files: [] },
  { kind: 'write', files: [['relative', '0']] },
  { kind: 'write', files: [['/a', 1]], extra: true },
  { kind: 'mkdir', path: '/sys/fs/cgroup/host.slice' },
  { kind: 'mkdir' },
  { kind: 'rmdir', path: '/sys/fs/cgroup/x', settings: [['cpuset.cpus', '0-3']] },
  { kind: 'rmdir', path: '/sys/fs/cgroup/x', settings: [['tasks', '1']] },
  { kind: 'controller', path: '/sys/fs/cgroup', controller: 'cpuset' },
  { kind: 'controller', path: '/sys/fs/cgroup', controller: 'memory' },
  { kind: 'tasks', from: '/a', to: '/b', file: 'tasks', ids: [[1, 2]] },
  { kind: 'tasks', from: '/a', to: '/b', file: 'cgroup.procs', ids: [], pids: [3], listedAt: 9 },
  { kind: 'tasks', from: '/a', to: '/b', file: 'procs', ids: [] },
  { kind: 'affinity', tasks: [[5, 10, '0-7']], listed: [[6, '0-3']], listedAt: 11 },
  { kind: 'affinity', tasks: [[0, 10, '0-7']] },
  { kind: 'affinity', tasks: [[5, 10, 'all']] },
  { kind: 'sched', tasks: [[5, 10, 0, 0]], to: [1, 50] },
  { kind: 'sched', tasks: [[5, 10, 4, 0]], to: [1, 50] },
  { kind: 'service', name: 'irqbalance', how: 'systemd' },
  { kind: 'service', name: 'sshd', how: 'systemd' },
  { kind: 'irqbalance-ban', cpus: '4-7', old: null },
  { kind: 'irqbalance-ban', cpus: 'x', old: null },
  { kind: 'unit', unit: 'system.slice', allowedCpus: ['', '0-3'] },
  { kind: 'unit', unit: 'bad unit name' },
  { kind: 'nope', path: '/a' },
  { kind: 7 },
  { kind: undefined },
  { path: '/a' },
  Object.create({ kind: 'mkdir', path: '/inherited' }),
  JSON.parse('{"__proto__": {"kind": "mkdir"}, "path": "/a"}'),
  [],
  null,
  'write',
  42,
];

test('undo records: the same output and issues as valibot variant, for each kind, bad fields, unknown or no kind', () => {
  for (const input of records)
    assert.deepEqual(outcome(UndoRecord, input), outcome(plainRecord, input), JSON.stringify(input));
});

test('journal body lines: the same output and issues as valibot variant', () => {
  const lines: unknown[] = [
    { t: 'run', run: 1, at: '2026-12-07T00:00:00Z', argv: ['isolate', 'C4-7'] },
    { t: 'run', run: 0, at: 'x', argv: [] },
    ...records.map((rec) => ({ t: 'rec', run: 1, rec })),
    { t: 'rec', run: 1 },
    { t: 'rollback', run: 2 },
    { t: 'rollback' },
    { t: 'restored', at: 'now', forced: true },
    { t: 'restored', at: 'now', forced: 'yes' },
    { t: 'header' },
    { t: 'x' },
    {},
    null,
  ];
  for (const input of lines)
    assert.deepEqual(outcome(BodyLine, input), outcome(plainLine, input), JSON.stringify(input));
  // the inputs reach every option and both sides of it
  const ok = lines.filter((l) => v.safeParse(plainLine, l).success).length;
  assert.ok(ok >= 10 && ok < lines.length - 10, `${ok} of ${lines.length} valid`);
});

test('byDiscriminator refuses options that do not each name themselves by a literal of their own', () => {
  const a = v.strictObject({ t: v.literal('a') });
  const b = v.strictObject({ t: v.literal('b') });
  assert.doesNotThrow(() => byDiscriminator('t', [a, b], v.variant('t', [a, b])));
  const a2 = v.strictObject({ t: v.literal('a'), x: v.number() });
  assert.throws(() => byDiscriminator('t', [a, a2], v.variant('t', [a, a2])), TypeError);
  const p = v.strictObject({ t: v.picklist(['c', 'd']) });
  assert.throws(() => byDiscriminator('t', [a, p], v.variant('t', [a, p])), TypeError);
  assert.throws(() => byDiscriminator('kind', [a], v.variant('t', [a])), TypeError, 'no such key');
});
