/**
 * Issue 17: restore (and release) open the journal they undo once under the lock: the check for a file left by an
 * interrupted creation is made on the bytes read to undo it, not by a read of its own. An interrupted journal is
 * still removed, and nothing else is.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { buildFixture } from '../fixtures/build.ts';
import { RuntimeFailure } from '../../src/errors.ts';
import { interruptedCreation, markRestored, openJournal, readJournalFile } from '../../src/steps/journal.ts';
import { cli } from '../support/cli.ts';
import { withFsSpy } from '../support/fs-spy.ts';
import { treeHash } from '../support/tree.ts';

const nodeFs = createRequire(import.meta.url)('node:fs') as typeof fs;

/** The opens of `file` while `f` runs. */
async function opensOf(file: string, f: () => Promise<void>): Promise<number> {
  let n = 0;
  await withFsSpy(
    'openSync',
    (open) =>
      ((p: fs.PathLike, ...rest: unknown[]) => {
        if (String(p) === file) n++;
        return (open as (...a: unknown[]) => number)(p, ...rest);
      }) as typeof open,
    f,
  );
  return n;
}

describe('a journal on a file system that tells no sizes (stat says 0 bytes)', () => {
  it('is read whole: not taken for an interrupted creation, appended to, never removed', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-jreads-')), 'undo');
    const opts = { tool: 'vfio-isolate test', bootId: 'boot-a', argv: ['x'] };
    const j = openJournal(file, opts);
    j.record({ kind: 'write', files: [['/proc/irq/1/smp_affinity_list', '0-7', '0-3']] });
    j.close();
    const ino = fs.statSync(file).ino;
    const zero = <S extends fs.Stats | undefined>(st: S): S => {
      if (st && st.ino === ino) st.size = 0;
      return st;
    };
    withFsSpy(
      'lstatSync',
      (lstat) => ((...a: unknown[]) => zero((lstat as (...a: unknown[]) => fs.Stats)(...a))) as typeof lstat,
      () =>
        withFsSpy(
          'fstatSync',
          (fstat) =>
            ((...a: unknown[]) => zero((fstat as (...a: unknown[]) => fs.Stats)(...a))) as typeof fstat,
          () => {
            assert.equal(fs.lstatSync(file).size, 0, 'the spy reports no size');
            assert.equal(interruptedCreation(file), false);
            assert.equal(readJournalFile(file).runs[0]?.records.length, 1);
            const again = openJournal(file, opts);
            again.close();
            assert.deepEqual(again.warnings, []);
          },
        ),
    );
    const runs = readJournalFile(file).runs;
    assert.deepEqual(
      runs.map((r) => [r.run, r.records.length]),
      [
        [1, 1],
        [2, 0],
      ],
      'the journal was appended to, not started anew',
    );
  });
});

describe('restore reads the journal it undoes once', () => {
  it('irq-affinity mask, then restore: one open to read it, one to mark it restored', async () => {
    const root = buildFixture('ryzen-5950x');
    const undo = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-jreads-')), 'undo');
    const before = fs.readFileSync(path.join(root, 'proc/irq/9/smp_affinity_list'), 'utf8');
    const r = await cli(root, ['-u', undo, 'irq-affinity', 'mask', 'C0-7']);
    assert.equal(r.code, 0, r.stderr);
    const opens = await opensOf(undo, async () => {
      const b = await cli(root, ['restore', undo]);
      assert.equal(b.code, 0, b.stderr);
    });
    assert.equal(opens, 2);
    assert.equal(fs.readFileSync(path.join(root, 'proc/irq/9/smp_affinity_list'), 'utf8'), before);
    assert.match(fs.readFileSync(undo, 'utf8').trim().split('\n').at(-1)!, /"t":"restored"/);
  });

  it('release of an isolation: its journal opened once to read it and once to mark it restored', async () => {
    const root = buildFixture('ryzen-5950x');
    const undo = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-jreads-')), 'a.journal');
    const r = await cli(root, ['-u', undo, 'isolate', 'C8-15']);
    assert.ok(r.code === 0 || r.code === 1, r.stderr);
    const opens = await opensOf(undo, async () => {
      const b = await cli(root, ['release', undo]);
      assert.equal(b.code, 0, b.stderr);
    });
    assert.equal(opens, 2);
    assert.match(fs.readFileSync(undo, 'utf8').trim().split('\n').at(-1)!, /"t":"restored"/);
  });

  for (const [what, bytes] of [
    ['empty', ''],
    ['a partial header', '{"t":"header","form'],
    ['NUL bytes', '\0\0\0\0'],
  ] as const) {
    it(`a journal left ${what} by an interrupted creation is removed`, async () => {
      const root = buildFixture('ryzen-5950x');
      const undo = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-jreads-')), 'undo');
      fs.writeFileSync(undo, bytes, { mode: 0o600 });
      const r = await cli(root, ['restore', undo]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(fs.existsSync(undo), false);
    });
  }

  it('a journal that is not one (a header that is not ours) is refused, not removed', async () => {
    const root = buildFixture('ryzen-5950x');
    const undo = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-jreads-')), 'undo');
    fs.writeFileSync(undo, '{"t":"other"', { mode: 0o600 });
    const r = await cli(root, ['restore', undo]);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(fs.existsSync(undo), true);
  });
});

/**
 * The lstat calls made while `f` runs: for each path, how many were made and how many ended in an exception (a
 * missing file answered by a thrown ENOENT).
 */
async function lstatsOf(f: () => Promise<void>): Promise<Map<string, { calls: number; thrown: number }>> {
  const seen = new Map<string, { calls: number; thrown: number }>();
  await withFsSpy(
    'lstatSync',
    (lstat) =>
      ((p: fs.PathLike, ...rest: unknown[]) => {
        const c = seen.get(String(p)) ?? { calls: 0, thrown: 0 };
        seen.set(String(p), c);
        c.calls++;
        try {
          return (lstat as (...a: unknown[]) => unknown)(p, ...rest);
        } catch (e) {
          c.thrown++;
          throw e;
        }
      }) as typeof lstat,
    f,
  );
  return seen;
}

describe('the journal and the registry are looked up without repeats and without exceptions', () => {
  it('restore: one lstat of the journal (the trust check hands it to the read); a missing registry throws nothing', async () => {
    const root = buildFixture('ryzen-5950x');
    const undo = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-jreads-')), 'undo');
    assert.equal((await cli(root, ['-u', undo, 'irq-affinity', 'mask', 'C0-7'])).code, 0);
    const seen = await lstatsOf(async () => {
      const b = await cli(root, ['restore', undo]);
      assert.equal(b.code, 0, b.stderr);
    });
    assert.deepEqual(seen.get(undo), { calls: 1, thrown: 0 });
    const registry = path.join(root, 'run/vfio-isolate/reservations.json');
    assert.equal(fs.existsSync(registry), false);
    assert.deepEqual(seen.get(registry), { calls: 1, thrown: 0 });
    assert.match(fs.readFileSync(undo, 'utf8').trim().split('\n').at(-1)!, /"t":"restored"/);
  });

  it('-u NEW: the journal still to be created is looked up twice (the check, the open), neither throwing', async () => {
    const root = buildFixture('ryzen-5950x');
    const undo = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-jreads-')), 'undo');
    const seen = await lstatsOf(async () => {
      const r = await cli(root, ['-u', undo, 'irq-affinity', 'mask', 'C0-7']);
      assert.equal(r.code, 0, r.stderr);
    });
    assert.deepEqual(seen.get(undo), { calls: 2, thrown: 0 });
  });

  it('-u EXISTING: the check and the open look at it once each, and the open reads the file the check judged', async () => {
    const root = buildFixture('ryzen-5950x');
    const undo = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-jreads-')), 'undo');
    assert.equal((await cli(root, ['-u', undo, 'irq-affinity', 'mask', 'C0-7'])).code, 0);
    let opens = 0;
    const seen = await lstatsOf(async () => {
      opens = await opensOf(undo, async () => {
        const r = await cli(root, ['-u', undo, 'irq-affinity', 'mask', 'C8-9']);
        assert.equal(r.code, 0, r.stderr);
      });
    });
    assert.deepEqual(seen.get(undo), { calls: 2, thrown: 0 });
    assert.equal(
      opens,
      2,
      'one open to read it (an interrupted creation is told from the same bytes), one to append',
    );
    assert.deepEqual(
      readJournalFile(undo).runs.map((r) => r.run),
      [1, 2],
    );
  });
});

describe('marking a journal restored', () => {
  /** The bytes readSync was asked for while `f` runs. */
  function bytesRead(f: () => void): number {
    let n = 0;
    withFsSpy(
      'readSync',
      (read) =>
        ((fd: number, buf: NodeJS.ArrayBufferView, ...rest: unknown[]) => {
          n += typeof rest[1] === 'number' ? rest[1] : buf.byteLength;
          return (read as (...a: unknown[]) => number)(fd, buf, ...rest);
        }) as typeof read,
      f,
    );
    return n;
  }
  const journalOf = (records: number): string => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-jmark-')), 'undo');
    const j = openJournal(file, { tool: 'vfio-isolate test', bootId: 'boot-a', argv: ['x'] });
    for (let i = 0; i < records; i++) j.record({ kind: 'mkdir', path: `/sys/fs/cgroup/c${i}` });
    j.close();
    return file;
  };

  it('reads only the last byte of a journal whose last line is whole', () => {
    const file = journalOf(200);
    const size = fs.statSync(file).size;
    assert.ok(size > 8000, `${size} bytes`);
    assert.equal(
      bytesRead(() => markRestored(file, false, undefined, size)),
      1,
    );
    const j = readJournalFile(file);
    assert.equal(j.restored, true);
    assert.equal(j.torn, false);
  });

  it('a torn last line is still cut before the mark, and the records before it are kept', () => {
    const file = journalOf(3);
    fs.appendFileSync(file, '{"t":"rec","run":1,"rec":{"kind":"mkd');
    markRestored(file, false);
    const text = fs.readFileSync(file, 'utf8');
    assert.doesNotMatch(text, /"mkd[^i]/);
    const j = readJournalFile(file);
    assert.equal(j.restored, true);
    assert.equal(j.torn, false);
    assert.equal(j.runs[0]!.records.length, 3);
  });
});

describe('a new journal is started with one write', () => {
  it('the header and the run line go out in one write(2) and one fsync; a run appended later writes its run line', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-jwrites-')), 'undo');
    const opts = { tool: 'vfio-isolate test', bootId: 'boot-a', argv: ['x'] };
    const write = nodeFs.writeSync;
    const fsync = nodeFs.fsyncSync;
    const writes: string[] = [];
    let fsyncs = 0;
    nodeFs.writeSync = ((fd: number, data: unknown, ...rest: unknown[]) => {
      writes.push(String(data));
      return (write as (...a: unknown[]) => number)(fd, data, ...rest);
    }) as typeof write;
    nodeFs.fsyncSync = ((fd: number) => {
      fsyncs++;
      fsync(fd);
    }) as typeof fsync;
    syncBuiltinESMExports();
    try {
      openJournal(file, opts).close();
      assert.equal(writes.length, 1, writes.join('|'));
      assert.match(writes[0]!, /^\{"t":"header".*\n\{"t":"run","run":1,.*\n$/);
      assert.equal(fsyncs, 2, 'the file, then its directory');
      writes.length = 0;
      openJournal(file, opts).close();
      assert.equal(writes.length, 1);
      assert.match(writes[0]!, /^\{"t":"run","run":2,[^\n]*\n$/);
    } finally {
      nodeFs.writeSync = write;
      nodeFs.fsyncSync = fsync;
      syncBuiltinESMExports();
    }
    const j = readJournalFile(file);
    assert.deepEqual(
      j.runs.map((r) => r.run),
      [1, 2],
    );
    assert.equal(j.torn, false);
  });
});

describe('a journal line the disk took only part of', () => {
  // write(2) to a file whose disk fills up writes what fits and returns that count; libuv's write loop then stops at
  // ENOSPC and hands back the short count, with no error (a record would then not be whole on disk)
  async function shortWrites<T>(f: () => T | Promise<T>): Promise<T> {
    const write = nodeFs.writeSync;
    nodeFs.writeSync = ((fd: number, data: unknown, ..._rest: unknown[]) => {
      const s = String(data);
      return (write as (...a: unknown[]) => number)(fd, s.slice(0, Math.floor(s.length / 2)));
    }) as typeof write;
    syncBuiltinESMExports();
    try {
      return await f();
    } finally {
      nodeFs.writeSync = write;
      syncBuiltinESMExports();
    }
  }
  const rec = { kind: 'write', files: [['/proc/irq/1/smp_affinity_list', '0-7']] } as const;

  it('a record written in part is not taken as journalled (the step is not applied), and leaves no part of it', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-jshort-')), 'undo');
    const opts = { tool: 'vfio-isolate test', bootId: 'boot-a', argv: ['x'] };
    const j = openJournal(file, opts);
    const before = fs.readFileSync(file, 'utf8');
    await shortWrites(() =>
      assert.throws(() => j.record({ ...rec, files: [[...rec.files[0]]] }), RuntimeFailure),
    );
    assert.deepEqual(j.records, [], 'not counted as recorded');
    assert.equal(fs.readFileSync(file, 'utf8'), before, 'no partial line left');
    // the run goes on with whole lines: its rollback mark, then a later run's lines, all readable
    j.markRollback();
    j.close();
    openJournal(file, opts).close();
    const read = readJournalFile(file);
    assert.deepEqual(
      read.runs.map((r) => [r.run, r.rolledBack, r.records.length]),
      [
        [1, true, 0],
        [2, false, 0],
      ],
    );
    assert.equal(read.torn, false);
  });

  it('a new journal whose first write went out in part: the run stops before any change, the file is an interrupted creation', async () => {
    const root = buildFixture('intel-6c12t');
    const before = treeHash(root);
    const undo = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-jshort-')), 'undo');
    const r = await shortWrites(() => cli(root, ['-u', undo, 'irq-affinity', 'mask', 'C2']));
    assert.equal(r.code, 1, r.stderr);
    assert.equal(treeHash(root), before, 'nothing applied');
    assert.equal(fs.readFileSync(undo, 'utf8'), '', 'nothing half-written left');
    assert.equal((await cli(root, ['-u', undo, 'irq-affinity', 'mask', 'C2'])).code, 0);
    assert.equal((await cli(root, ['restore', undo])).code, 0);
    assert.equal(treeHash(root), before);
  });
});
