/** The JSON outputs against their schemas (src/report/json-schema.ts), on real output, and against docs/json.md. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as v from 'valibot';
import {
  IsolateResultJson,
  PartitionResultJson,
  PlanJson,
  ResultJson,
  StatusJson,
  TopologyJson,
  MeasureJson,
} from '../../src/report/json-schema.ts';
import { buildFixture, listMachines } from '../fixtures/build.ts';
import { cli } from '../support/cli.ts';

function valid<T extends v.GenericSchema>(schema: T, text: string): v.InferOutput<T> {
  const r = v.safeParse(schema, JSON.parse(text));
  assert.ok(r.success, JSON.stringify(r.issues?.slice(0, 5).map((i) => [v.getDotPath(i), i.message])));
  return r.output as v.InferOutput<T>;
}

describe('JSON outputs validate against their schemas', () => {
  for (const name of listMachines()) {
    it(`${name}: topology and status (default, given CPUs, -v)`, async () => {
      const root = buildFixture(name);
      const t = await cli(root, ['topology', '--json']);
      const topo = valid(TopologyJson, t.stdout);
      for (const argv of [
        ['status', '--json'],
        ['--json', 'status', `C${topo.suggestion.vm}`],
        ['--json', '-v', 'status', 'C1'],
      ]) {
        const r = await cli(root, argv);
        const s = valid(StatusJson, r.stdout);
        assert.equal(r.code, s.ok ? 0 : 1, 'exit status follows ok');
        assert.equal(s.ok, s.leaks.length === 0);
        assert.ok(s.leaks.every((f) => f.movable) && s.unmovable.every((f) => !f.movable));
      }
    });
  }

  it('status with unreadable parts still validates (nulls, notVisible)', async () => {
    const root = buildFixture('tr-1920x');
    fs.rmSync(path.join(root, 'proc/self/mountinfo'));
    fs.rmSync(path.join(root, 'proc/irq/default_smp_affinity'));
    const s = valid(StatusJson, (await cli(root, ['status', '--json', 'N1'])).stdout);
    assert.equal(s.cgroups, null);
    assert.equal(s.defaultSmpAffinity, null);
    assert.ok(s.notVisible.length >= 2);
  });

  it('a dry run prints a plan', async () => {
    const root = buildFixture('ryzen-5950x');
    const r = await cli(root, [
      '-n',
      '--json',
      'cpuset-modify',
      '--cpus',
      'C0-7,16-23',
      '/system.slice',
      'irq-affinity',
      'mask',
      'L1',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const plan = valid(PlanJson, r.stdout);
    assert.deepEqual(
      plan.steps.map((s) => s.command),
      ['cpuset-modify', 'irq-affinity'],
    );
    assert.deepEqual(plan.steps[0]!.changes[0], {
      target: '/sys/fs/cgroup/system.slice/cpuset.cpus',
      before: '',
      after: '0-7,16-23',
    });
  });

  it('an applied command prints its result, with what the kernel refused', async () => {
    const root = buildFixture('ryzen-5950x', { irqbalance: false });
    const r = await cli(root, ['--json', 'irq-affinity', 'mask', 'L1']);
    assert.equal(r.code, 0, r.stderr);
    const res = valid(ResultJson, r.stdout);
    assert.equal(res.ok, true);
    assert.equal(res.planned, 1);
    assert.ok(res.steps[0]!.changed > 0);
    assert.ok(
      res.steps[0]!.skipped.some((s) => /managed by the kernel/.test(s.why)),
      JSON.stringify(res.steps[0]!.skipped),
    );
  });

  it('a failed, rolled back run prints ok: false with the error', async () => {
    const root = buildFixture('ryzen-5950x', { irqbalance: false });
    const r = await cli(
      root,
      ['--json', 'cpuset-modify', '--cpus', 'C0-7', '/system.slice', 'irq-affinity', 'mask', 'L1'],
      {
        VFIO_ISOLATE_FAULT: 'fail:2',
      },
    );
    assert.equal(r.code, 1);
    const res = valid(ResultJson, r.stdout);
    assert.equal(res.ok, false);
    assert.equal(res.rolledBack, true);
    assert.match(res.error!, /injected failure at step 2/);
  });

  it('isolate prints its leak check', async () => {
    const root = buildFixture('ryzen-5950x', { irqbalance: false });
    const r = await cli(root, ['--json', 'isolate', 'L1']);
    assert.equal(r.code, 0, r.stderr);
    const res = valid(IsolateResultJson, r.stdout);
    assert.equal(res.ok, true);
    assert.equal(res.leakCheck.vmCpus, '8-15,24-31');
    assert.deepEqual(res.leakCheck.leaks, []);
    assert.ok(res.leakCheck.unmovable.some((f) => f.kind === 'managed-irq'));
  });
});

// ---------------------------------------------------------------------------------------------------------------

/** Every object field name of a valibot schema, recursively. */
function fieldNames(schema: unknown, out = new Set<string>(), seen = new Set<unknown>()): Set<string> {
  if (!schema || typeof schema !== 'object' || seen.has(schema)) return out;
  seen.add(schema);
  const s = schema as {
    type?: string;
    entries?: Record<string, unknown>;
    wrapped?: unknown;
    item?: unknown;
    options?: unknown[];
    getter?: (x: unknown) => unknown;
  };
  if (s.entries) {
    for (const [k, sub] of Object.entries(s.entries)) {
      out.add(k);
      fieldNames(sub, out, seen);
    }
  }
  if (s.wrapped) fieldNames(s.wrapped, out, seen);
  if (s.item) fieldNames(s.item, out, seen);
  if (s.options) for (const o of s.options) fieldNames(o, out, seen);
  if (s.type === 'lazy' && s.getter) fieldNames(s.getter(undefined), out, seen);
  return out;
}

describe('docs/json.md', () => {
  const doc = fs.readFileSync(
    path.join(path.dirname(fileURLToPath(import.meta.url)), '../../docs/json.md'),
    'utf8',
  );
  for (const [name, schema] of Object.entries({
    TopologyJson,
    StatusJson,
    PlanJson,
    ResultJson,
    IsolateResultJson,
    PartitionResultJson,
    MeasureJson,
  })) {
    it(`documents every field of ${name}`, () => {
      const names = [...fieldNames(schema)];
      assert.ok(names.length > 3);
      const missing = names.filter((n) => !new RegExp('`[^`]*\\b' + n + '\\b[^`]*`').test(doc));
      assert.deepEqual(missing, []);
    });
  }

  it('the fixture-independent schema helper sees nested and lazy fields', () => {
    const names = fieldNames(StatusJson);
    for (const n of ['children', 'subtreeTasks', 'schedLoadBalance', 'line', 'bannedCpus'])
      assert.ok(names.has(n), n);
  });
});
