/**
 * Issue 17: a `-u FILE` run checks the journal's trust once when the file is to be created in a directory that
 * exists and that only root can change (nobody else can create the file meanwhile); the open that follows does not
 * walk the directories again. Wherever someone else could create the file first (a sticky directory, directories
 * still to be made) or the file is there, the open checks it again, and a file another user slipped in is refused.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { RuntimeFailure, UsageError } from '../../src/errors.ts';
import {
  checkExistingJournalTrust,
  checkJournalTrust,
  interruptedCreation,
  openJournal,
  readBaseline,
  readJournalToUndo,
} from '../../src/steps/journal.ts';
import { buildFixture } from '../fixtures/build.ts';
import { cli } from '../support/cli.ts';
import { treeHash } from '../support/tree.ts';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'vi-jtrust-'));
const opts = { tool: 'vfio-isolate test', bootId: 'boot-a', argv: ['x'] };
const nodeFs = createRequire(import.meta.url)('node:fs') as typeof fs;

/**
 * How many trust walks resolve `dir` (each walk starts with one realpath of its path) while `f` runs; `mkdirs`: the
 * mkdir calls made on it.
 */
async function walksOf(
  dir: string,
  f: () => Promise<unknown> | unknown,
  mkdirs: string[] = [],
): Promise<number> {
  const native = nodeFs.realpathSync.native;
  const mkdir = nodeFs.mkdirSync;
  let n = 0;
  nodeFs.realpathSync.native = ((p: fs.PathLike, o?: unknown) => {
    if (String(p) === dir || String(p).startsWith(`${dir}/`)) n++;
    return (native as (p: fs.PathLike, o?: unknown) => string)(p, o);
  }) as typeof native;
  nodeFs.mkdirSync = ((p: fs.PathLike, o?: fs.MakeDirectoryOptions) => {
    if (String(p) === dir) mkdirs.push(String(p));
    return mkdir(p, o);
  }) as typeof mkdir;
  syncBuiltinESMExports();
  try {
    await f();
  } finally {
    nodeFs.realpathSync.native = native;
    nodeFs.mkdirSync = mkdir;
    syncBuiltinESMExports();
  }
  return n;
}

describe('journal trust: checked once for a new journal in a root-only directory', () => {
  it('checkJournalTrust says what it found', () => {
    const dir = tmp();
    const f = path.join(dir, 'undo');
    assert.equal(checkJournalTrust(f), 'new-in-root-dir');
    assert.equal(
      checkJournalTrust(path.join(dir, 'sub', 'undo')),
      'new',
      'its directory is still to be made',
    );
    const sticky = tmp();
    fs.chmodSync(sticky, 0o1777);
    assert.equal(checkJournalTrust(path.join(sticky, 'undo')), 'new', 'anyone may create it first there');
    fs.writeFileSync(f, '', { mode: 0o600 });
    assert.equal(checkJournalTrust(f), 'existing');
  });

  it('a -u run on a fresh journal walks its directories once (twice before) and makes none', async () => {
    const root = buildFixture('intel-6c12t');
    const dir = tmp();
    const undo = path.join(dir, 'undo');
    const mkdirs: string[] = [];
    const walks = await walksOf(
      dir,
      async () => {
        const r = await cli(root, ['-u', undo, 'irq-affinity', 'mask', 'C2']);
        assert.equal(r.code, 0, r.stderr);
      },
      mkdirs,
    );
    assert.equal(walks, 1);
    assert.deepEqual(mkdirs, [], 'its directory is there: not made again');
    assert.ok(fs.readFileSync(undo, 'utf8').includes('"t":"header"'));
  });

  it('a -u run appending to a journal that is there checks it on opening too', async () => {
    const root = buildFixture('intel-6c12t');
    const undo = path.join(tmp(), 'undo');
    const first = await cli(root, ['-u', undo, 'irq-affinity', 'mask', 'C2']);
    assert.equal(first.code, 0, first.stderr);
    const walks = await walksOf(path.dirname(undo), async () => {
      const r = await cli(root, ['-u', undo, 'irq-affinity', 'mask', 'C3']);
      assert.equal(r.code, 0, r.stderr);
    });
    assert.ok(walks >= 2, `${walks} walks`);
  });

  it('a file another user created after the check is refused on opening, checkedNew or not', () => {
    const dir = tmp();
    const f = path.join(dir, 'undo');
    assert.equal(checkJournalTrust(f), 'new-in-root-dir');
    // only root could do this in a root-only directory; a test stands in for whatever slipped through
    fs.writeFileSync(f, '{"t":"header"}\n', { mode: 0o600 });
    fs.chownSync(f, 1000, 1000);
    for (const checkedNew of [true, false])
      assert.throws(
        () => openJournal(f, { ...opts, checkedNew }),
        (e: unknown) => e instanceof UsageError && /owned by uid 1000/.test(e.message),
      );
  });

  it('a journal another user creates in a sticky directory right after the check is not taken for it', () => {
    const sticky = tmp();
    fs.chmodSync(sticky, 0o1777);
    const f = path.join(sticky, 'undo');
    const theirs = `${JSON.stringify({ t: 'header', format: 'vfio-isolate-journal', version: 1, tool: 'x', bootId: opts.bootId, created: '2026-01-01T00:00:00.000Z' })}\n`;
    // the other user's file appears while the check walks the directory (after the check looked at the path)
    const native = nodeFs.realpathSync.native;
    nodeFs.realpathSync.native = ((p: fs.PathLike, o?: unknown) => {
      if (String(p) === sticky && !fs.existsSync(f)) {
        fs.writeFileSync(f, theirs, { mode: 0o600 });
        fs.chownSync(f, 1000, 1000);
      }
      return (native as (p: fs.PathLike, o?: unknown) => string)(p, o);
    }) as typeof native;
    try {
      assert.throws(() => openJournal(f, opts), RuntimeFailure);
    } finally {
      nodeFs.realpathSync.native = native;
    }
    assert.equal(fs.readFileSync(f, 'utf8'), theirs, 'nothing appended to their file');
  });

  it('checkedNew on a missing file creates it with O_EXCL: a symlink put there meanwhile is not followed', () => {
    const dir = tmp();
    const f = path.join(dir, 'undo');
    const target = path.join(tmp(), 'elsewhere');
    fs.symlinkSync(target, f);
    assert.throws(() => openJournal(f, { ...opts, checkedNew: true }), UsageError);
    assert.equal(fs.existsSync(target), false);
  });
});

describe('journal trust: the way to the file is the one the check walked', () => {
  it('-u through a symlink another user owns in a sticky directory: refused at once (exit 2), no journal made', async () => {
    const root = buildFixture('intel-6c12t');
    const sticky = tmp();
    fs.chmodSync(sticky, 0o1777);
    const rootDir = tmp();
    const link = path.join(sticky, 'link');
    fs.symlinkSync(rootDir, link);
    // uid 1000 may point it at a directory of theirs between the check and the open (after the lock wait)
    fs.lchownSync(link, 1000, 1000);
    const r = await cli(root, ['-u', path.join(link, 'undo'), 'irq-affinity', 'mask', 'C2']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /symbolic link owned by uid 1000/);
    assert.equal(fs.existsSync(path.join(rootDir, 'undo')), false);
  });

  it('a journal path with ".." is refused (exit 2): the kernel takes ".." after a symlink before it, which no walk saw', async () => {
    const root = buildFixture('intel-6c12t');
    const made = path.join(tmp(), 'undo');
    const run = await cli(root, ['-u', made, 'irq-affinity', 'mask', 'C2']);
    assert.equal(run.code, 0, run.stderr);
    const journal = fs.readFileSync(made, 'utf8');
    const sticky = tmp();
    fs.chmodSync(sticky, 0o1777);
    // root's journal where the path reads lexically ...
    fs.mkdirSync(path.join(sticky, 'rd'), { mode: 0o700 });
    fs.writeFileSync(path.join(sticky, 'rd', 'undo'), journal, { mode: 0o600 });
    // ... and uid 1000's copy where the kernel resolves it, through their symlink in the sticky directory
    const user = tmp();
    fs.mkdirSync(path.join(user, 'sub'));
    fs.mkdirSync(path.join(user, 'rd'));
    fs.writeFileSync(path.join(user, 'rd', 'undo'), journal, { mode: 0o600 });
    for (const p of [user, `${user}/sub`, `${user}/rd`, `${user}/rd/undo`]) fs.chownSync(p, 1000, 1000);
    fs.symlinkSync(path.join(user, 'sub'), path.join(sticky, 'ulink'));
    fs.lchownSync(path.join(sticky, 'ulink'), 1000, 1000);
    const f = `${sticky}/ulink/../rd/undo`;
    assert.equal(fs.statSync(f).uid, 1000, 'the kernel opens uid 1000’s file');
    const before = treeHash(root);
    const r = await cli(root, ['restore', f]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /"\.\."/);
    assert.equal(treeHash(root), before, 'nothing restored from their file');
    const fresh = `${sticky}/ulink/../rd/new`;
    const w = await cli(root, ['-u', fresh, 'irq-affinity', 'mask', 'C3']);
    assert.equal(w.code, 2, w.stderr);
    assert.equal(fs.existsSync(path.join(user, 'rd', 'new')), false, 'no journal made in their directory');
    assert.throws(() => openJournal(fresh, opts), UsageError);
  });

  it('a second name of root’s journal in a sticky directory is neither restored nor appended to (exit 2)', async () => {
    // fs.protected_hardlinks=0: anyone may give a root file they can reach a name of their own in /tmp
    const root = buildFixture('intel-6c12t');
    const made = path.join(tmp(), 'undo');
    assert.equal((await cli(root, ['-u', made, 'irq-affinity', 'mask', 'C2'])).code, 0);
    const sticky = tmp();
    fs.chmodSync(sticky, 0o1777);
    const named = path.join(sticky, 'vm.journal');
    fs.linkSync(made, named);
    const before = treeHash(root);
    const bytes = fs.readFileSync(made, 'utf8');
    const r = await cli(root, ['restore', named]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /a hard link \(2 names\)/);
    const w = await cli(root, ['-u', named, 'irq-affinity', 'mask', 'C3']);
    assert.equal(w.code, 2, w.stderr);
    assert.equal(treeHash(root), before, 'nothing restored or changed');
    assert.equal(fs.readFileSync(made, 'utf8'), bytes, 'nothing appended or marked');
    // root's own name of it is restored as ever
    assert.equal((await cli(root, ['restore', made])).code, 0);
  });
  for (const what of ['their own file', 'a second name of root’s journal'] as const) {
    it(`restore of a journal missing when checked: ${what}, put there right after the check looked, is not read (exit 1)`, async () => {
      const root = buildFixture('intel-6c12t');
      const made = path.join(tmp(), 'undo');
      assert.equal((await cli(root, ['-u', made, 'irq-affinity', 'mask', 'C2'])).code, 0);
      const bytes = fs.readFileSync(made, 'utf8');
      const sticky = tmp();
      fs.chmodSync(sticky, 0o1777);
      const named = path.join(sticky, 'vm.journal');
      // uid 1000 makes and unmakes the name in a loop; it is there at the read, not at the check's look
      const mutable = nodeFs as { lstatSync: typeof fs.lstatSync };
      const lstat = nodeFs.lstatSync;
      mutable.lstatSync = ((p: fs.PathLike, o?: fs.StatSyncOptions) => {
        try {
          return lstat(p, o);
        } finally {
          if (String(p) === named && !fs.existsSync(named)) {
            if (what === 'their own file') {
              fs.writeFileSync(named, bytes, { mode: 0o600 });
              fs.chownSync(named, 1000, 1000);
            } else fs.linkSync(made, named);
          }
        }
      }) as typeof lstat;
      syncBuiltinESMExports();
      const before = treeHash(root);
      let r;
      try {
        r = await cli(root, ['restore', named]);
      } finally {
        mutable.lstatSync = lstat;
        syncBuiltinESMExports();
      }
      assert.equal(treeHash(root), before, 'nothing restored from it');
      assert.equal(fs.readFileSync(made, 'utf8'), bytes, 'root’s journal not marked');
      assert.equal(fs.readFileSync(named, 'utf8'), bytes, 'nothing appended to it');
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /does not exist/);
    });
  }
  it('a journal read after its check must be the file the check judged', async () => {
    const root = buildFixture('intel-6c12t');
    const made = path.join(tmp(), 'undo');
    assert.equal((await cli(root, ['-u', made, 'irq-affinity', 'mask', 'C2'])).code, 0);
    const judged = checkExistingJournalTrust(made);
    assert.ok(judged);
    assert.notEqual(readJournalToUndo(made, judged), 'interrupted');
    // another file in its place after the check (a test stands in for whatever could swap it)
    fs.copyFileSync(made, `${made}.new`);
    fs.renameSync(`${made}.new`, made);
    assert.throws(
      () => readJournalToUndo(made, judged),
      (e: unknown) => e instanceof UsageError && /replaced after its trust check/.test(e.message),
    );
    const bytes = fs.readFileSync(made);
    fs.unlinkSync(made);
    const missing = checkExistingJournalTrust(made);
    assert.equal(missing, null);
    // missing when checked: a file there afterwards is taken for missing
    fs.writeFileSync(made, bytes, { mode: 0o600 });
    assert.throws(
      () => readJournalToUndo(made, missing),
      (e: unknown) => e instanceof RuntimeFailure && /does not exist/.test(e.message),
    );
  });
  it('what replaced a journal after its check is named as a new lstat would name it (a socket, a directory on the way that is no longer one)', async () => {
    const root = buildFixture('intel-6c12t');
    const dir = tmp();
    const made = path.join(dir, 'undo');
    assert.equal((await cli(root, ['-u', made, 'irq-affinity', 'mask', 'C2'])).code, 0);
    const judged = checkExistingJournalTrust(made);
    assert.ok(judged);
    const bytes = fs.readFileSync(made);
    // a socket in its place (open(2) says ENXIO): not a regular file, exit 2, as before the open
    fs.unlinkSync(made);
    const server = net.createServer();
    await new Promise<void>((done) => server.listen(made, done));
    try {
      assert.throws(
        () => readJournalToUndo(made, judged),
        (e: unknown) => e instanceof UsageError && /undo is not a regular file/.test(e.message),
      );
    } finally {
      await new Promise<void>((done) => server.close(() => done()));
    }
    // its directory replaced by a file (ENOTDIR) or by a symlink loop (ELOOP, with no symlink at the journal's own
    // name): nothing is there, exit 1, and never "a symbolic link"
    fs.rmSync(made, { force: true });
    fs.writeFileSync(made, bytes, { mode: 0o600 });
    const judgedAgain = checkExistingJournalTrust(made);
    assert.ok(judgedAgain);
    fs.renameSync(dir, `${dir}.gone`);
    for (const put of [() => fs.writeFileSync(dir, 'x', { mode: 0o600 }), () => fs.symlinkSync(dir, dir)]) {
      put();
      assert.throws(
        () => readJournalToUndo(made, judgedAgain),
        (e: unknown) => e instanceof RuntimeFailure && /does not exist/.test(e.message),
      );
      fs.unlinkSync(dir);
    }
  });
  it('-u in a directory still to be made in a sticky one: a symlink another user puts there right before the mkdir is not followed (exit 2)', async () => {
    const root = buildFixture('intel-6c12t');
    const sticky = tmp();
    fs.chmodSync(sticky, 0o1777);
    const sub = path.join(sticky, 'vfio');
    // where uid 1000 wants root to create the file: a root directory of their choosing
    const elsewhere = tmp();
    const mkdir = nodeFs.mkdirSync;
    nodeFs.mkdirSync = ((p: fs.PathLike, o?: fs.MakeDirectoryOptions) => {
      if (String(p) === sub && !fs.existsSync(sub)) {
        fs.symlinkSync(elsewhere, sub);
        fs.lchownSync(sub, 1000, 1000);
      }
      return mkdir(p, o);
    }) as typeof mkdir;
    syncBuiltinESMExports();
    const before = treeHash(root);
    let r;
    try {
      r = await cli(root, ['-u', path.join(sub, 'undo'), 'irq-affinity', 'mask', 'C2']);
    } finally {
      nodeFs.mkdirSync = mkdir;
      syncBuiltinESMExports();
    }
    assert.deepEqual(fs.readdirSync(elsewhere), [], 'no journal made where their symlink leads');
    assert.equal(treeHash(root), before, 'nothing applied');
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /symbolic link owned by uid 1000/);
  });
  it('a run appending to its journal reads, cuts and appends to the file its trust check judged, no other', () => {
    const dir = tmp();
    const f = path.join(dir, 'undo');
    const mutable = nodeFs as { readSync: typeof fs.readSync };
    const readSync = nodeFs.readSync;
    /** Another file (root's, 0600, of this boot) put in the journal's place; `torn`: its last line cut short. */
    const swapIn = (torn: boolean): string => {
      fs.copyFileSync(f, `${f}.new`);
      if (torn) fs.appendFileSync(`${f}.new`, '{"t":"rec","ru');
      fs.renameSync(`${f}.new`, f);
      return fs.readFileSync(f, 'utf8');
    };
    const refused = (not: string) => (e: unknown) =>
      e instanceof UsageError && new RegExp(`replaced after its trust check; not ${not}`).test(e.message);
    for (const [when, torn, not] of [
      ['while its trust check walks to it', false, 'read'],
      ['after it was read, before it is cut', true, 'cut'],
      ['after it was read, before it is appended to', false, 'appended to'],
    ] as const) {
      fs.rmSync(f, { force: true });
      // over 4096 bytes: no look for an interrupted creation reads it first
      openJournal(f, { ...opts, argv: ['x'.repeat(3000), 'y'.repeat(3000)] }).close();
      if (torn) fs.appendFileSync(f, '{"t":"rec","ru');
      let theirs = '';
      if (when.startsWith('while')) {
        const native = nodeFs.realpathSync.native;
        nodeFs.realpathSync.native = ((p: fs.PathLike, o?: unknown) => {
          if ((String(p) === dir || String(p) === f) && !theirs) theirs = swapIn(torn);
          return (native as (p: fs.PathLike, o?: unknown) => string)(p, o);
        }) as typeof native;
        try {
          assert.throws(() => openJournal(f, opts), refused(not), when);
        } finally {
          nodeFs.realpathSync.native = native;
        }
      } else {
        // the journal is read through its descriptor: swapped once that read is done
        mutable.readSync = ((...a: Parameters<typeof fs.readSync>) => {
          const out = readSync(...a);
          if (!theirs) theirs = swapIn(torn);
          return out;
        }) as typeof readSync;
        syncBuiltinESMExports();
        try {
          assert.throws(() => openJournal(f, opts), refused(not), when);
        } finally {
          mutable.readSync = readSync;
          syncBuiltinESMExports();
        }
      }
      assert.ok(theirs, `${when}: swapped`);
      assert.equal(fs.readFileSync(f, 'utf8'), theirs, `${when}: the file put in its place is left as it is`);
    }
  });

  it('a baseline is read, head and whole, from the file its trust check judged', () => {
    const f = path.join(tmp(), 'host.journal');
    const j = openJournal(f, opts);
    j.record({ kind: 'write', files: [['/proc/irq/1/smp_affinity_list', '0-7', '0-3']] });
    j.close();
    assert.equal(readBaseline(f, opts.bootId).file('/proc/irq/1/smp_affinity_list'), '0-7');
    const mutable = nodeFs as { readSync: typeof fs.readSync };
    const readSync = nodeFs.readSync;
    let swapped = false;
    // another file (root's, of this boot, with another value) in its place once its head was read
    mutable.readSync = ((...a: Parameters<typeof fs.readSync>) => {
      const out = readSync(...a);
      if (!swapped) {
        swapped = true;
        fs.writeFileSync(`${f}.new`, fs.readFileSync(f, 'utf8').replace('"0-7"', '"0-1"'), { mode: 0o600 });
        fs.renameSync(`${f}.new`, f);
      }
      return out;
    }) as typeof readSync;
    syncBuiltinESMExports();
    try {
      assert.throws(
        () => readBaseline(f, opts.bootId),
        (e: unknown) => e instanceof UsageError && /replaced after its trust check; not read/.test(e.message),
      );
    } finally {
      mutable.readSync = readSync;
      syncBuiltinESMExports();
    }
    assert.ok(swapped);
  });

  it('isolate’s look for an interrupted creation of an unchecked -u file does not follow a symlink swapped in after its lstat', () => {
    // isolate reads its -u file under the lock before openJournal checks it again; in a sticky directory the file
    // may be uid 1000's, who may replace it by a symlink (to a FIFO, which would block root's run holding the lock)
    const sticky = tmp();
    fs.chmodSync(sticky, 0o1777);
    const f = path.join(sticky, 'undo');
    fs.writeFileSync(f, '{"t":"header"}\n', { mode: 0o600 });
    fs.chownSync(f, 1000, 1000);
    const empty = path.join(tmp(), 'empty');
    fs.writeFileSync(empty, '');
    const mutable = nodeFs as { lstatSync: typeof fs.lstatSync };
    const lstat = nodeFs.lstatSync;
    mutable.lstatSync = ((p: fs.PathLike, o?: fs.StatSyncOptions) => {
      const st = lstat(p, o);
      if (String(p) === f && st?.isFile()) {
        fs.unlinkSync(f);
        fs.symlinkSync(empty, f);
      }
      return st;
    }) as typeof lstat;
    syncBuiltinESMExports();
    try {
      assert.equal(interruptedCreation(f), false);
    } finally {
      mutable.lstatSync = lstat;
      syncBuiltinESMExports();
    }
  });
});

describe('journals created in the lock’s directory', () => {
  it('isolate creates its journal and the host journal in /run/vfio-isolate without walking it again', async () => {
    const root = buildFixture('ryzen-5950x');
    const dir = path.join(root, 'run/vfio-isolate');
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const walks = await walksOf(dir, async () => {
      const r = await cli(root, ['isolate', 'C8-15']);
      assert.ok(r.code === 0 || r.code === 1, r.stderr);
    });
    assert.ok(fs.existsSync(path.join(dir, 'isolate.journal')));
    assert.ok(fs.existsSync(path.join(dir, 'host.journal')));
    assert.equal(walks, 1, 'the lock’s walk only: neither journal walked again');
  });

  // a host journal another user put in the lock's directory is still refused: speed-safety.test.ts, "empty and
  // owned by uid 1000: still refused (exit 2), kept"
});
