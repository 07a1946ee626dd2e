/**
 * Issue 17: RealFs reads an IRQ's affinity list with one read(2) on procfs (the kernel prints it in one go, so a read
 * that leaves room in the buffer has returned all of it); any other file is read to end of file. Host-safe: it reads
 * this host's /proc/irq (read-only) and writes temp files only.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { RealFs } from '../../src/kernel/realfs.ts';
import { withFsSpy } from '../support/fs-spy.ts';

/** What `f` returns, and the read(2) calls (readSync) made while it runs. */
function withReads<T>(f: () => T): { value: T; reads: number } {
  let reads = 0;
  const value = withFsSpy(
    'readSync',
    (read) =>
      ((...a: unknown[]) => {
        reads++;
        return (read as (...a: unknown[]) => number)(...a);
      }) as typeof read,
    f,
  );
  return { value, reads };
}

describe('RealFs.read: one read(2) for an IRQ affinity list', () => {
  const irqs = fs
    .readdirSync('/proc/irq')
    .filter((n) => /^\d+$/.test(n) && fs.existsSync(`/proc/irq/${n}/smp_affinity_list`));

  it("this host's IRQ lists, each in one read, the same text as a read to end of file", (t) => {
    if (irqs.length === 0) return t.skip('this host has no /proc/irq/N/smp_affinity_list');
    const rfs = new RealFs();
    rfs.read(`/proc/irq/${irqs[0]}/smp_affinity_list`); // /proc/irq's procfs check, once per run
    for (const n of irqs.slice(0, 8)) {
      for (const name of ['smp_affinity_list', 'smp_affinity']) {
        const p = `/proc/irq/${n}/${name}`;
        const r = withReads(() => rfs.read(p));
        assert.equal(r.reads, 1, p);
        assert.equal(r.value, fs.readFileSync(p, 'utf8'), p);
      }
    }
  });

  it('any other file is read until read(2) returns 0, also one that fits in one read', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-realfs-read-'));
    const file = path.join(dir, 'f');
    fs.writeFileSync(file, '0-7\n');
    const r = withReads(() => new RealFs().read(file));
    assert.deepEqual(r, { value: '0-7\n', reads: 2 });
    const big = path.join(dir, 'big');
    fs.writeFileSync(big, 'x'.repeat(200_000));
    assert.equal(new RealFs().read(big).length, 200_000);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('/proc/self/status (procfs, not an IRQ list) is read to end of file', () => {
    const r = withReads(() => new RealFs().read('/proc/self/status'));
    assert.ok(r.reads >= 2, `${r.reads} reads`);
    assert.match(r.value, /^Name:/);
  });
});
