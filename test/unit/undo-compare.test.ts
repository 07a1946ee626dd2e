/**
 * Restore compares what a file holds now with what the run wrote (and with the value before) as the kernel prints
 * it: a CPU list in another spelling ("0-3" for "0,1,2,3") or a hex mask with other leading zeros, case or group
 * commas is the same value. Only a value that truly differs is a conflict, left alone.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { buildFixture } from '../fixtures/build.ts';
import { simKernel } from '../support/sim.ts';
import { quiet } from '../support/quiet-log.ts';
import { sysRead, sysWrite, writableIrqs } from '../support/tree.ts';
import { undoRecord } from '../../src/steps/undo.ts';

/** The affinity list files of a fixture's IRQs that have both affinity files and take writes, the first `n`. */
function writableIrqFiles(root: string, n: number): string[] {
  return writableIrqs(root, n).map((d) => `/proc/irq/${d}/smp_affinity_list`);
}

/** A fixture and the directory of one of its IRQs that has both affinity files and takes writes. */
function irqDir(): { root: string; dir: string } {
  const root = buildFixture('ryzen-5950x');
  const file = writableIrqFiles(root, 1)[0];
  assert.ok(file, 'the fixture has an IRQ');
  return { root, dir: path.posix.dirname(file) };
}

/** Undo one file of a write record ([path, before, wrote]) with the file holding `now`. */
function undoOne(file: string, now: string, before: string, wrote: string) {
  const { root, dir } = irqDir();
  const p = `${dir}/${file}`;
  sysWrite(root, p, `${now}\n`);
  const r = undoRecord(simKernel(root), { kind: 'write', files: [[p, before, wrote]] }, quiet);
  return { r, value: () => sysRead(root, p) };
}

describe('restore: a file holds what the run wrote when the kernel prints the same value otherwise', () => {
  it('a CPU list in another spelling is what the run wrote: written back', () => {
    const { r, value } = undoOne('smp_affinity_list', '0-3', '0-31', '0,1,2,3');
    assert.deepEqual(r.conflicts, []);
    assert.equal(r.done, 1);
    assert.equal(value(), '0-31');
  });

  it('a CPU list written with its ranges in another order or overlapping is the same set: written back', () => {
    const { r, value } = undoOne('smp_affinity_list', '0-3,8-11', '0-31', '8-11,0-2,2-3');
    assert.deepEqual(r.conflicts, []);
    assert.equal(r.done, 1);
    assert.equal(value(), '0-31');
  });

  it('a CPU list that already holds the value before, spelt otherwise, is restored already: not written', () => {
    const { r, value } = undoOne('smp_affinity_list', '0-31', '0-15,16-31', '4-7');
    assert.deepEqual(r.conflicts, []);
    assert.deepEqual([r.done, r.skipped], [0, 1]);
    assert.equal(value(), '0-31');
  });

  it('a CPU list that differs is a conflict: left alone', () => {
    const { r, value } = undoOne('smp_affinity_list', '8-15', '0-31', '0-3');
    assert.equal(r.conflicts.length, 1);
    assert.match(r.conflicts[0]!, /holds "8-15", the run wrote "0-3"/);
    assert.equal(r.done, 0);
    assert.equal(value(), '8-15');
  });

  it('a hex mask with other leading zeros, case and group commas is what the run wrote: written back', () => {
    const { r, value } = undoOne('smp_affinity', '00000000,0000000f', 'ffffffff', 'F');
    assert.deepEqual(r.conflicts, []);
    assert.equal(r.done, 1);
    assert.equal(value().replace(/,/g, '').replace(/^0+/, ''), 'ffffffff');
  });

  it('a hex mask that differs is a conflict: left alone', () => {
    const { r, value } = undoOne('smp_affinity', '000000f0', 'ffffffff', 'f');
    assert.equal(r.conflicts.length, 1);
    assert.equal(value(), '000000f0');
  });
});

describe('restore: watchdog_cpumask holds a CPU list, not a hex mask (its name ends in "cpumask")', () => {
  /** Undo the watchdog_cpumask write of a record ([path, before, wrote]) with the file holding `now`. */
  function undoWatchdog(now: string, before: string, wrote: string) {
    const root = buildFixture('ryzen-5950x');
    const p = '/proc/sys/kernel/watchdog_cpumask';
    sysWrite(root, p, `${now}\n`);
    const r = undoRecord(simKernel(root), { kind: 'write', files: [[p, before, wrote]] }, quiet);
    return { r, value: () => sysRead(root, p) };
  }

  it('CPU 0 taken off since ("2-5" where the run wrote "0,2-5") is a conflict: left alone', () => {
    // as hex digits with the commas and leading zeros dropped, "0,2-5" and "2-5" read alike
    const { r, value } = undoWatchdog('2-5', '0-31', '0,2-5');
    assert.equal(r.conflicts.length, 1);
    assert.match(r.conflicts[0]!, /holds "2-5", the run wrote "0,2-5"/);
    assert.equal(r.done, 0);
    assert.equal(value(), '2-5');
  });

  it('the list the run wrote in another spelling ("0-3" for "0,1,2,3") is written back', () => {
    const { r, value } = undoWatchdog('0-3', '0-31', '0,1,2,3');
    assert.deepEqual(r.conflicts, []);
    assert.equal(r.done, 1);
    assert.equal(value(), '0-31');
  });
});

describe('restore: one record of many files, values repeating across them', () => {
  it('each file is compared with its own values (a value seen for one file never stands in for another)', () => {
    const root = buildFixture('ryzen-5950x');
    const irqs = writableIrqFiles(root, 5);
    assert.equal(irqs.length, 5);
    // [now, before, wrote] per file: written back / conflict / restored already / written back / conflict
    const cases: [string, string, string][] = [
      ['0-3', '0-31', '0,1,2,3'],
      ['0-7', '0-31', '0-3'],
      ['0-31', '0-31', '0-3'],
      ['0-7', '0-15', '0,1,2,3,4,5,6,7'],
      ['0-3', '0-15', '0-7'],
    ];
    cases.forEach(([now], i) => sysWrite(root, irqs[i]!, `${now}\n`));
    const files = cases.map(([, before, wrote], i) => [irqs[i]!, before, wrote] as [string, string, string]);
    const r = undoRecord(simKernel(root), { kind: 'write', files }, quiet);
    assert.deepEqual(
      irqs.map((p) => sysRead(root, p)),
      ['0-31', '0-7', '0-31', '0-15', '0-3'],
    );
    assert.equal(r.conflicts.length, 2, r.conflicts.join('; '));
    assert.equal(r.done, 2);
    assert.equal(r.skipped, 1);
  });
});
