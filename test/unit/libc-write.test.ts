/** write(2) through koffi (src/kernel/libc-write.ts) and the move loop's use of it (writeIds). Host-safe: temp files and /dev/full only. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { loadRawWrite } from '../../src/kernel/libc-write.ts';
import { writeIds } from '../../src/kernel/tasks.ts';
import type { Fs, Writer } from '../../src/kernel/fs.ts';
import { ErrnoError } from '../../src/kernel/fs.ts';
import { RealFs } from '../../src/kernel/realfs.ts';
import { buildFixture } from '../fixtures/build.ts';
import { cliOn } from '../support/cli.ts';
import { SimFs } from '../support/simfs.ts';

describe('raw write(2) through koffi', () => {
  const raw = loadRawWrite();
  test('writes the text with one write and tells a refusal by its errno name, without throwing', (t) => {
    assert.ok(raw, 'koffi loads on this machine');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-raw-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'f');
    const fd = fs.openSync(file, 'w');
    assert.equal(raw(fd, '1234'), undefined);
    assert.equal(raw(fd, '56'), undefined);
    fs.closeSync(fd);
    assert.equal(fs.readFileSync(file, 'utf8'), '123456');
    const full = fs.openSync('/dev/full', 'w');
    assert.equal(raw(full, '7'), 'ENOSPC');
    fs.closeSync(full);
    const ro = fs.openSync(file, 'r');
    assert.equal(raw(ro, '8'), 'EBADF');
    fs.closeSync(ro);
  });
});

/** An Fs whose writer refuses some ids with an errno, counting how it was called. */
function fakeFs(
  refuse: Map<number, string>,
  withTry: boolean,
): { fs: Fs; calls: { write: number; tryWrite: number } } {
  const calls = { write: 0, tryWrite: 0 };
  const writer: Writer = {
    write(v) {
      calls.write++;
      const code = refuse.get(Number(v));
      if (code) throw new ErrnoError(code, 'write', '/x/tasks');
    },
    ...(withTry
      ? {
          tryWrite(v: string) {
            calls.tryWrite++;
            return refuse.get(Number(v));
          },
        }
      : {}),
    close() {},
  };
  return { fs: { openWriter: () => writer } as unknown as Fs, calls };
}

describe('writeIds: refusals told by the write, with or without exceptions', () => {
  const refuse = new Map([
    [3, 'EINVAL'],
    [4, 'ESRCH'],
    [6, 'EBUSY'],
  ]);
  for (const withTry of [true, false]) {
    test(`${withTry ? 'a writer with tryWrite is used through it (no exception)' : 'a writer without it: write and catch'}`, () => {
      const { fs: f, calls } = fakeFs(refuse, withTry);
      const res = writeIds(f, '/x/tasks', [1, 2, 3, 4, 5, 6]);
      assert.deepEqual(res.moved, [1, 2, 5]);
      assert.deepEqual(res.gone, [4]);
      assert.deepEqual(res.unmovable, [
        { id: 3, code: 'EINVAL' },
        { id: 6, code: 'EBUSY' },
      ]);
      assert.deepEqual(calls, withTry ? { write: 0, tryWrite: 6 } : { write: 6, tryWrite: 0 });
    });
  }
  test('an error of the destination (ENOSPC: a cpuset without CPUs) ends the move with that errno', () => {
    const { fs: f } = fakeFs(new Map([[2, 'ENOSPC']]), true);
    assert.throws(
      () => writeIds(f, '/x/tasks', [1, 2, 3]),
      (e: unknown) => e instanceof ErrnoError && e.code === 'ENOSPC' && e.path === '/x/tasks',
    );
  });
});

describe('single writes that the kernel may refuse (writeFilesStep through Kernel.tryWrite)', () => {
  /** A fake kernel whose tryWrite refuses one IRQ with EIO (a managed IRQ) and counts the throwing writes. */
  class Refusing extends SimFs {
    writes: string[] = [];
    constructor(
      root: string,
      readonly refuse: Map<string, string>,
    ) {
      super(root);
    }
    override write(p: string, v: string): void {
      this.writes.push(p);
      super.write(p, v);
    }
    tryWrite(p: string, v: string): string | undefined {
      const code = this.refuse.get(p);
      if (code) return code;
      super.write(p, v);
      return undefined;
    }
  }

  /** Two IRQs of the fixture whose lists CPUs 8-15 are in (both change when masked). */
  function twoIrqs(root: string): [string, string] {
    const found = fs
      .readdirSync(path.join(root, 'proc/irq'))
      .filter((n) => /^\d+$/.test(n) && fs.existsSync(path.join(root, `proc/irq/${n}/smp_affinity_list`)))
      .filter((n) =>
        /^0-(1[5-9]|[2-9]\d)$/.test(
          fs.readFileSync(path.join(root, `proc/irq/${n}/smp_affinity_list`), 'utf8').trim(),
        ),
      );
    assert.ok(found.length >= 2, String(found));
    return [found[0]!, found[1]!];
  }
  const listOf = (root: string, irq: string): string =>
    fs.readFileSync(path.join(root, `proc/irq/${irq}/smp_affinity_list`), 'utf8');

  test('irq-affinity: a refused IRQ is skipped and reported, no exception; the others are written', async () => {
    const root = buildFixture('ryzen-5950x');
    const [managed, other] = twoIrqs(root);
    const before = listOf(root, managed);
    const otherBefore = listOf(root, other);
    const fsx = new Refusing(root, new Map([[`/proc/irq/${managed}/smp_affinity_list`, 'EIO']]));
    const r = await cliOn(fsx, ['-d', 'irq-affinity', 'mask', 'C8-15']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`skipped IRQ ${managed}: managed by the kernel`));
    assert.deepEqual(fsx.writes, [], 'every write went through tryWrite');
    assert.equal(listOf(root, managed), before);
    assert.notEqual(listOf(root, other), otherBefore);
  });

  test('a refusal the step does not tolerate fails the run with that errno, and it is rolled back', async () => {
    const root = buildFixture('ryzen-5950x');
    const [first, second] = twoIrqs(root);
    const fsx = new Refusing(root, new Map([[`/proc/irq/${second}/smp_affinity_list`, 'EBUSY']]));
    const before = listOf(root, first);
    const r = await cliOn(fsx, ['irq-affinity', 'mask', 'C8-15']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`/proc/irq/${second}/smp_affinity_list is busy`));
    assert.equal(listOf(root, first), before, 'the IRQ written before is rolled back');
  });

  test('RealFs.tryWrite refuses a file that is no kernel control file before writing a byte (it throws, as write does)', (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-raw-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'cpuset.cpus');
    fs.writeFileSync(file, 'old\n');
    assert.throws(
      () => new RealFs().tryWrite(file, '0-3'),
      (e: unknown) =>
        e instanceof ErrnoError && e.code === 'EXDEV' && /not a kernel control file/.test(e.message),
    );
    assert.equal(fs.readFileSync(file, 'utf8'), 'old\n');
  });
});
