/**
 * Issue 17: irq-affinity reads each IRQ's list once (to plan, under the run's lock: that value is journalled) and
 * writes each changing IRQ once, and does not resolve /proc/irq paths again (they are canonical by construction).
 * In a chain, an IRQ an earlier step writes is read again right before its write (what the earlier write left).
 * Restore gives every IRQ back its list.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it, mock } from 'node:test';
import { buildFixture } from '../fixtures/build.ts';
import { cliOn } from '../support/cli.ts';
import { SimFs } from '../support/simfs.ts';
import { writableIrqs } from '../support/tree.ts';
import type { Updater } from '../../src/kernel/fs.ts';
import { CpuSet } from '../../src/cpus/cpuset.ts';

class IrqWatch extends SimFs {
  ops: string[] = [];
  override read(p: string): string {
    if (p.startsWith('/proc/irq/') || p === '/proc/self/mountinfo') this.ops.push(`read ${p}`);
    return super.read(p);
  }
  override write(p: string, v: string): void {
    if (p.startsWith('/proc/irq/')) this.ops.push(`write ${p}`);
    super.write(p, v);
  }
  override realpath(p: string): string {
    if (p.startsWith('/proc/irq/')) this.ops.push(`realpath ${p}`);
    return super.realpath(p);
  }
  /** One open for a read and a write: logged as `update` and `close` (its read and write are logged as above). */
  override openForUpdate(p: string): Updater {
    const u = super.openForUpdate(p);
    if (!p.startsWith('/proc/irq/')) return u;
    this.ops.push(`update ${p}`);
    return {
      text: u.text,
      write: (v: string) => u.write(v),
      close: () => {
        this.ops.push(`close ${p}`);
        u.close();
      },
    };
  }
}

/** [IRQ, smp_affinity_list] of every IRQ of a fixture tree. */
function irqLists(root: string): string[][] {
  return fs
    .readdirSync(path.join(root, 'proc/irq'))
    .filter((n) => /^\d+$/.test(n))
    .map((n) => [n, fs.readFileSync(path.join(root, `proc/irq/${n}/smp_affinity_list`), 'utf8')]);
}

/** The files of each `write` record of a journal: [path, old value, value written]. */
function writeRecords(undo: string): [string, string, string][][] {
  return fs
    .readFileSync(undo, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { rec?: { kind: string; files?: [string, string, string][] } })
    .filter((l) => l.rec?.kind === 'write')
    .map((l) => l.rec!.files!);
}

describe('irq-affinity mask: per IRQ one read, and one write to change it', () => {
  it('ryzen-5950x', async () => {
    const root = buildFixture('ryzen-5950x');
    const fsx = new IrqWatch(root);
    const lists = () => irqLists(root);
    const before = lists();
    const undo = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-undo-')), 'undo');
    const r = await cliOn(fsx, ['-u', undo, 'irq-affinity', 'mask', 'C8-15']);
    assert.equal(r.code, 0, r.stderr);
    const count = (op: string) => {
      const m = new Map<string, number>();
      for (const o of fsx.ops)
        if (o.startsWith(`${op} `)) m.set(o.slice(op.length + 1), (m.get(o.slice(op.length + 1)) ?? 0) + 1);
      return m;
    };
    const writes = count('write');
    const reads = count('read');
    assert.ok(writes.size >= 5, `${writes.size} IRQs changed`);
    assert.deepEqual(count('realpath'), new Map());
    for (const [p, n] of writes) assert.equal(n, 1, p);
    for (const [p, n] of reads) assert.equal(n, 1, `${p}: read once, to plan`);
    const files = writeRecords(undo)[0]!;
    assert.deepEqual(files.map(([p]) => p).sort(), [...writes.keys()].sort());
    assert.ok(!fsx.ops.includes('read /proc/self/mountinfo'), 'no cgroup discovery');
    // restore: one read (is it still what this run wrote?) and one write per IRQ, both through one open of the
    // file, which is closed; no cgroup discovery either
    const back = new IrqWatch(root);
    assert.equal((await cliOn(back, ['restore', undo])).code, 0);
    assert.deepEqual(lists(), before);
    const journalled = files.map(([p]) => p).sort();
    const backReads = back.ops.filter((o) => o.startsWith('read /proc/irq/')).map((o) => o.slice(5));
    const backWrites = back.ops.filter((o) => o.startsWith('write ')).map((o) => o.slice(6));
    assert.deepEqual([...backReads].sort(), journalled, 'each journalled IRQ read once, no other');
    assert.equal(new Set(backWrites).size, backWrites.length, 'each IRQ written at most once');
    assert.ok(backWrites.every((p) => journalled.includes(p)));
    assert.ok(backWrites.length >= 5);
    const opened = (op: string) =>
      back.ops
        .filter((o) => o.startsWith(`${op} `))
        .map((o) => o.slice(op.length + 1))
        .sort();
    assert.deepEqual(
      opened('update'),
      journalled,
      'each journalled IRQ opened once, for its read and its write',
    );
    assert.deepEqual(opened('close'), journalled, 'and closed');
    assert.ok(!back.ops.includes('read /proc/self/mountinfo'), 'restore: no cgroup discovery');
  });

  it('each distinct list is worked out once, however many IRQs hold it', async () => {
    const root = buildFixture('ryzen-5950x');
    // lists no other file of the machine holds: every parse of them is the plan's
    const ids = irqLists(root).map(([n]) => n!);
    assert.ok(ids.length >= 10, `${ids.length} IRQs`);
    const listOf = (i: number): string => (i % 3 === 0 ? '1,3,5,7-13' : '2,4,6,8-12,14');
    ids.forEach((n, i) => fs.writeFileSync(path.join(root, `proc/irq/${n}/smp_affinity_list`), listOf(i)));
    const undo = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-undo-')), 'undo');
    const parse = mock.method(CpuSet, 'parseList');
    let r;
    try {
      r = await cliOn(new SimFs(root), ['-u', undo, 'irq-affinity', 'mask', 'C8-15']);
    } finally {
      parse.mock.restore();
    }
    assert.equal(r.code, 0, r.stderr);
    const parsed = (v: string) => parse.mock.calls.filter((c) => c.arguments[0] === v).length;
    assert.equal(parsed('1,3,5,7-13'), 1);
    assert.equal(parsed('2,4,6,8-12,14'), 1);
    // and every IRQ got its own list's answer (one the kernel refuses keeps its list)
    const writable = new Set(writableIrqs(root, ids.length));
    assert.ok(writable.size >= 10, `${writable.size} writable IRQs`);
    ids.forEach((n, i) =>
      assert.equal(
        fs.readFileSync(path.join(root, `proc/irq/${n}/smp_affinity_list`), 'utf8').trim(),
        !writable.has(n) ? listOf(i) : i % 3 === 0 ? '1,3,5,7' : '2,4,6',
        `IRQ ${n}`,
      ),
    );
    const files = writeRecords(undo)[0]!;
    assert.equal(files.length, ids.length);
    for (const [p, old, wrote] of files) {
      const i = ids.indexOf(/\/proc\/irq\/(\d+)\//.exec(p)![1]!);
      assert.deepEqual([old, wrote], [listOf(i), i % 3 === 0 ? '1,3,5,7' : '2,4,6'], p);
    }
  });

  it('restore: an IRQ that cannot be opened for a read and a write is read on its own, and one changed since stays', async () => {
    const root = buildFixture('ryzen-5950x');
    const undo = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-undo-')), 'undo');
    assert.equal((await cliOn(new SimFs(root), ['-u', undo, 'irq-affinity', 'mask', 'C8-15'])).code, 0);
    const changed = writeRecords(undo)[0]!.filter(([, o, w]) => o !== w);
    assert.ok(changed.length >= 2, `${changed.length} IRQs changed`);
    const [victim, , wrote] = changed[0]!;
    const [other, otherOld] = changed[1]!;
    const host = (p: string) => path.join(root, p);
    assert.notEqual(wrote, '0-1');
    fs.writeFileSync(host(victim), '0-1'); // set by someone else after the run
    class NoUpdate extends SimFs {
      override openForUpdate(p: string): Updater {
        throw Object.assign(new Error(`EINVAL ${p}`), { code: 'EINVAL' });
      }
    }
    const r = await cliOn(new NoUpdate(root), ['restore', undo]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /holds "0-1"/);
    assert.equal(fs.readFileSync(host(victim), 'utf8').trim(), '0-1', 'left alone');
    assert.equal(fs.readFileSync(host(other), 'utf8').trim(), otherOld, 'the others written back');
  });

  it('a chain that writes an IRQ twice journals what the first write left, even when the kernel refused it', async () => {
    const root = buildFixture('ryzen-5950x');
    const lists = () => irqLists(root);
    const before = lists();
    // one IRQ whose affinity the kernel manages: both steps plan a change, both writes fail with EIO (skipped)
    const managed = before.find(([, l]) => l!.trim() === '0-31')![0]!;
    const managedPath = `/proc/irq/${managed}/smp_affinity_list`;
    class Managed extends IrqWatch {
      override write(p: string, v: string): void {
        if (p === managedPath) throw Object.assign(new Error('EIO'), { code: 'EIO' });
        super.write(p, v);
      }
    }
    const fsx = new Managed(root);
    const undo = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-undo-')), 'undo');
    const r = await cliOn(fsx, ['-u', undo, 'irq-affinity', 'mask', 'C8-15', 'irq-affinity', 'add', 'C8']);
    assert.equal(r.code, 0, r.stderr);
    const recs = writeRecords(undo);
    assert.equal(recs.length, 2);
    const oldOf = (files: [string, string, string][]) => new Map(files.map(([p, old]) => [p, old]));
    const listOf = (n: string) => before.find(([m]) => m === n)![1]!.trim();
    // the second step's old value of the managed IRQ is what is really there (the first write was refused),
    // not what the plan expected the first step to leave
    assert.equal(oldOf(recs[1]!).get(managedPath), listOf(managed));
    assert.equal((await cliOn(new SimFs(root), ['restore', undo])).code, 0);
    assert.deepEqual(lists(), before);
  });

  it('a chain whose restore writes the IRQs back journals, for a later irq-affinity, what the restore left', async () => {
    const root = buildFixture('ryzen-5950x');
    const lists = () => irqLists(root);
    const before = lists();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-undo-'));
    const [first, second] = [path.join(dir, 'first'), path.join(dir, 'second')];
    assert.equal((await cliOn(new SimFs(root), ['-u', first, 'irq-affinity', 'mask', 'C8-31'])).code, 0);
    assert.notDeepEqual(lists(), before);
    // the restore (planned without reading the IRQs it writes back) gives them their lists again; the
    // irq-affinity after it must journal those, not what it read while planning (what `first` had written)
    const r = await cliOn(new SimFs(root), ['-u', second, 'restore', first, 'irq-affinity', 'mask', 'C4-7']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await cliOn(new SimFs(root), ['restore', second])).code, 0);
    assert.deepEqual(lists(), before);
  });
});
