/**
 * Issue 17: irq-affinity reads each IRQ's list once to plan and once more only for the IRQs it changes (the old
 * value journalled is the one the write replaces), writes each changing IRQ once, and does not resolve
 * /proc/irq paths again (they are canonical by construction). Restore gives every IRQ back its list.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../../src/cli/run.ts';
import { COMMANDS } from '../../src/cli/table.ts';
import { Kernel } from '../../src/kernel/kernel.ts';
import { buildFixture } from '../fixtures/build.ts';
import { SimFs } from '../support/simfs.ts';

class IrqWatch extends SimFs {
  ops: string[] = [];
  override read(p: string): string {
    if (p.startsWith('/proc/irq/')) this.ops.push(`read ${p}`);
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
}

async function run(fsx: SimFs, argv: string[]) {
  let stderr = '';
  const code = await runCli(argv, {
    table: COMMANDS,
    env: { VFIO_ISOLATE_LOCK_WAIT_MS: '2000' },
    kernel: () => new Kernel(fsx, { systemctl: '', irqbalance: '/nonexistent/irqbalance', euid: 0 }),
    streams: { out: () => {}, err: (s) => void (stderr += s), isTTY: false },
  });
  return { code, stderr };
}

describe('irq-affinity mask: per IRQ one read to plan, one read and one write to change', () => {
  it('ryzen-5950x', async () => {
    const root = buildFixture('ryzen-5950x');
    const fsx = new IrqWatch(root);
    const lists = () =>
      fs
        .readdirSync(path.join(root, 'proc/irq'))
        .filter((n) => /^\d+$/.test(n))
        .map((n) => [n, fs.readFileSync(path.join(root, `proc/irq/${n}/smp_affinity_list`), 'utf8')]);
    const before = lists();
    const undo = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-undo-')), 'undo');
    const r = await run(fsx, ['-u', undo, 'irq-affinity', 'mask', 'C8-15']);
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
    for (const [p, n] of writes) {
      assert.equal(n, 1, p);
      assert.equal(reads.get(p), 2, `${p}: planned and journalled`);
    }
    for (const [p, n] of reads) if (!writes.has(p)) assert.equal(n, 1, `${p}: planned only`);
    const rec = fs
      .readFileSync(undo, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { rec?: { kind: string; files?: [string, string, string][] } })
      .find((l) => l.rec?.kind === 'write')!.rec!;
    assert.deepEqual(rec.files!.map(([p]) => p).sort(), [...writes.keys()].sort());
    assert.equal((await run(new SimFs(root), ['restore', undo])).code, 0);
    assert.deepEqual(lists(), before);
  });
});
