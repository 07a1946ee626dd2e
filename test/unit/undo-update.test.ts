/**
 * Restore reads an IRQ's affinity file and writes its old value back through one descriptor (Fs.openForUpdate).
 * Whatever that open does — refuses (EINVAL where /proc/irq is not known to be procfs, EROFS, EACCES), fails on its
 * read, or closes with an error — restore decides exactly as it does reading and writing the file on its own: a
 * value changed since is a conflict, left alone; no descriptor is left open; nothing is thrown.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { buildFixture } from '../fixtures/build.ts';
import { SimFs } from '../support/simfs.ts';
import { quiet } from '../support/quiet-log.ts';
import { sysRead, sysWrite, writableIrqs } from '../support/tree.ts';
import { ErrnoError, type Updater } from '../../src/kernel/fs.ts';
import { Kernel } from '../../src/kernel/kernel.ts';
import { undoRecord, type UndoOptions, type UndoResult } from '../../src/steps/undo.ts';
import type { UndoRecord } from '../../src/steps/records.ts';
import { rng } from '../support/rng.ts';

type Mode = 'update' | 'plain' | 'refuse' | 'read-fails' | 'close-throws';

/** A SimFs whose openForUpdate behaves as `mode` says, counting the descriptors it leaves open. */
class UpdateFs extends SimFs {
  open = 0;
  updates = 0;
  constructor(
    root: string,
    private mode: Mode,
    private code = 'EINVAL',
  ) {
    super(root);
    if (mode === 'plain') (this as { openForUpdate?: unknown }).openForUpdate = undefined;
  }
  override openForUpdate(p: string): Updater {
    if (this.mode === 'refuse') throw new ErrnoError(this.code, 'read', p);
    this.updates++;
    if (this.mode === 'read-fails') throw new ErrnoError('EIO', 'read', p);
    const u = super.openForUpdate(p);
    this.open++;
    return {
      text: u.text,
      write: (v) => u.write(v),
      close: () => {
        this.open--;
        u.close();
        if (this.mode === 'close-throws') throw new ErrnoError('EIO', 'close', p);
      },
    };
  }
}

const kernelOn = (fsx: SimFs): Kernel =>
  new Kernel(fsx, { systemctl: '', irqbalance: '/nonexistent/irqbalance', euid: 0 });

/** The affinity files of a fixture's IRQs that take writes, both files of the first `n`. */
function irqFiles(root: string, n: number): string[] {
  return writableIrqs(root, n).flatMap((d) => [
    `/proc/irq/${d}/smp_affinity_list`,
    `/proc/irq/${d}/smp_affinity`,
  ]);
}

describe('restore of an IRQ that cannot be opened for a read and a write: read and written on its own', () => {
  for (const code of ['EINVAL', 'EROFS', 'EACCES']) {
    it(`open refused (${code}): a value changed since is still a conflict, left alone`, () => {
      const root = buildFixture('ryzen-5950x');
      const p = irqFiles(root, 1)[0]!;
      sysWrite(root, p, '8-15\n');
      const fsx = new UpdateFs(root, 'refuse', code);
      const r = undoRecord(kernelOn(fsx), { kind: 'write', files: [[p, '0-31', '0-3']] }, quiet);
      assert.equal(r.conflicts.length, 1, 'a conflict, as without openForUpdate');
      assert.equal(r.done, 0);
      assert.equal(sysRead(root, p), '8-15', 'left alone');
    });
  }

  it('open refused: a file that holds what the run wrote is written back', () => {
    const root = buildFixture('ryzen-5950x');
    const p = irqFiles(root, 1)[0]!;
    sysWrite(root, p, '0-3\n');
    const r = undoRecord(
      kernelOn(new UpdateFs(root, 'refuse')),
      { kind: 'write', files: [[p, '0-31', '0-3']] },
      quiet,
    );
    assert.deepEqual([r.done, r.conflicts], [1, []]);
    assert.equal(sysRead(root, p), '0-31');
  });

  it('the read through the descriptor fails: the file is read on its own, a conflict stays a conflict', () => {
    const root = buildFixture('ryzen-5950x');
    const p = irqFiles(root, 1)[0]!;
    sysWrite(root, p, '8-15\n');
    const fsx = new UpdateFs(root, 'read-fails');
    const r = undoRecord(kernelOn(fsx), { kind: 'write', files: [[p, '0-31', '0-3']] }, quiet);
    assert.equal(fsx.updates, 1);
    assert.equal(r.conflicts.length, 1);
    assert.equal(sysRead(root, p), '8-15');
  });
});

describe('restore of IRQs through openForUpdate: every descriptor closed, a failing close throws nothing', () => {
  it('a close that fails neither throws out of the record nor stops its other files', () => {
    const root = buildFixture('ryzen-5950x');
    const files = irqFiles(root, 3).filter((p) => p.endsWith('_list'));
    for (const p of files) sysWrite(root, p, '0-3\n');
    const fsx = new UpdateFs(root, 'close-throws');
    const r = undoRecord(
      kernelOn(fsx),
      { kind: 'write', files: files.map((p): [string, string, string] => [p, '0-31', '0-3']) },
      quiet,
    );
    assert.equal(fsx.open, 0);
    assert.equal(r.done, files.length);
    for (const p of files) assert.equal(sysRead(root, p), '0-31');
  });
});

describe('restore decides the same with and without openForUpdate (generated records and file states)', () => {
  const LISTS = ['0-31', '0-3', '0,1,2,3', '4-7', '8-15', '0-15,16-31', '0', '1'];
  const MASKS = ['ffffffff', '0000000f', 'F', '000000f0', 'ff00', '1', '00000000,00000002'];
  it('same result, same file contents, same leftAlone, over 60 records', () => {
    const base = buildFixture('ryzen-5950x');
    const all = irqFiles(base, 4);
    const initial = new Map(all.map((p) => [p, sysRead(base, p)]));
    // one copy of the tree per mode; each round sets the files of `all` afresh (the undo writes no others)
    const roots = new Map(
      (['update', 'plain', 'refuse'] as const).map((mode) => {
        const root = fs.mkdtempSync(path.join(path.dirname(base), 'undo-update-'));
        fs.cpSync(base, root, { recursive: true });
        return [mode, root];
      }),
    );
    const next = rng(20261207);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
    for (let round = 0; round < 60; round++) {
      const files: [string, string, string?][] = [];
      const nows = new Map<string, string | null>();
      for (const p of all) {
        if (next() < 0.3) continue;
        const vals = p.endsWith('_list') ? LISTS : MASKS;
        files.push(next() < 0.2 ? [p, pick(vals)] : [p, pick(vals), pick(vals)]);
        nows.set(p, next() < 0.1 ? null : pick(vals));
      }
      const known = new Map<string, string[]>();
      for (const [p] of files) if (next() < 0.3) known.set(p, [pick(LISTS), pick(MASKS)]);
      const force = next() < 0.2;
      const left = all.filter(() => next() < 0.1);
      const out: { r: UndoResult; state: (string | null)[]; leftAlone: string[] }[] = [];
      for (const [mode, root] of roots) {
        for (const p of all) {
          const v = nows.has(p) ? nows.get(p)! : initial.get(p)!;
          if (v === null) fs.rmSync(path.join(root, p), { force: true });
          else sysWrite(root, p, `${v}\n`);
        }
        const leftAlone = new Set(left);
        const opts: UndoOptions = { force, known, leftAlone };
        const rec: UndoRecord = { kind: 'write', files } as UndoRecord;
        const fsx = new UpdateFs(root, mode);
        const r = undoRecord(kernelOn(fsx), rec, quiet, opts);
        assert.equal(fsx.open, 0, 'every descriptor closed');
        out.push({
          r,
          state: all.map((p) => (fs.existsSync(path.join(root, p)) ? sysRead(root, p) : null)),
          leftAlone: [...leftAlone].sort(),
        });
      }
      assert.deepEqual(out[0], out[1], `round ${round}: update vs read + write`);
      assert.deepEqual(out[2], out[1], `round ${round}: refused update vs read + write`);
    }
    for (const root of roots.values()) fs.rmSync(root, { recursive: true, force: true });
  });
});
