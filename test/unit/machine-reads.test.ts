/**
 * Issue 17: the machine's possible, present and online CPUs are read once per run each, without asking first
 * whether the files exist, whichever of `possibleCpus` (move-tasks) and `machine` comes first. A kernel without
 * `present` or `online` (older ones) falls back to the wider set, as before.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Kernel } from '../../src/kernel/kernel.ts';
import { buildFixture } from '../fixtures/build.ts';
import { cliOn } from '../support/cli.ts';
import { SimFs } from '../support/simfs.ts';

const CPU_FILES = ['possible', 'present', 'online'].map((n) => `/sys/devices/system/cpu/${n}`);

class CountingFs extends SimFs {
  readsOf = new Map<string, number>();
  existsAsked: string[] = [];
  override read(p: string): string {
    this.readsOf.set(p, (this.readsOf.get(p) ?? 0) + 1);
    return super.read(p);
  }
  override exists(p: string): boolean {
    this.existsAsked.push(p);
    return super.exists(p);
  }
}

describe('the machine’s CPU lists: one read each per run', () => {
  for (const first of ['possibleCpus', 'machine'] as const) {
    it(`tr-1920x (24-31 possible, not present), ${first} first`, () => {
      const fsx = new CountingFs(buildFixture('tr-1920x'));
      const k = new Kernel(fsx);
      if (first === 'possibleCpus') assert.equal(k.possibleCpus.toList(), '0-31');
      const m = k.machine;
      assert.equal(k.possibleCpus.toList(), '0-31');
      assert.deepEqual(
        [m.possible.toList(), m.present.toList(), m.online.toList()],
        ['0-31', '0-23', '0-23'],
      );
      assert.deepEqual(
        CPU_FILES.map((f) => fsx.readsOf.get(f) ?? 0),
        [1, 1, 1],
      );
      assert.deepEqual(
        fsx.existsAsked.filter((p) => CPU_FILES.includes(p)),
        [],
      );
    });
  }

  it('the machine without a use of possible (CPU notation, IRQ masking) reads present and online only', () => {
    const fsx = new CountingFs(buildFixture('tr-1920x'));
    const m = new Kernel(fsx).machine;
    assert.deepEqual([m.present.toList(), m.online.toList()], ['0-23', '0-23']);
    assert.deepEqual(
      CPU_FILES.map((f) => fsx.readsOf.get(f) ?? 0),
      [0, 1, 1],
    );
    // read on first use, once
    assert.equal(m.possible.toList(), '0-31');
    assert.equal(m.possible.toList(), '0-31');
    assert.equal(fsx.readsOf.get(CPU_FILES[0]!), 1);
  });

  it('irq-affinity mask of online CPUs reads the online CPUs only (no possible, no present list)', async () => {
    const fsx = new CountingFs(buildFixture('tr-1920x'));
    const r = await cliOn(fsx, ['irq-affinity', 'mask', 'C0-3']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fsx.readsOf.get(CPU_FILES[0]!) ?? 0, 0);
    assert.equal(fsx.readsOf.get(CPU_FILES[1]!) ?? 0, 0);
    assert.equal(fsx.readsOf.get(CPU_FILES[2]!), 1);
  });

  it('without present and online files: present is possible, online is present', () => {
    const root = buildFixture('intel-6c12t');
    for (const n of ['present', 'online']) fs.rmSync(path.join(root, 'sys/devices/system/cpu', n));
    const m = new Kernel(new SimFs(root)).machine;
    assert.deepEqual([m.possible.toList(), m.present.toList(), m.online.toList()], ['0-11', '0-11', '0-11']);
  });

  it('without an online file, online is present (not possible)', () => {
    const root = buildFixture('tr-1920x');
    fs.rmSync(path.join(root, 'sys/devices/system/cpu/online'));
    const m = new Kernel(new SimFs(root)).machine;
    assert.deepEqual([m.present.toList(), m.online.toList()], ['0-23', '0-23']);
  });

  it('an online file that is no CPU list counts as no CPU online (as before), not as the fallback', () => {
    const root = buildFixture('tr-1920x');
    fs.writeFileSync(path.join(root, 'sys/devices/system/cpu/online'), 'garbage\n');
    const m = new Kernel(new SimFs(root)).machine;
    assert.equal(m.online.toList(), '');
  });
});
