/**
 * Issue 17: a `-u FILE` run checks the journal's trust once when the file is to be created in a directory that
 * exists and that only root can change (nobody else can create the file meanwhile); the open that follows does not
 * walk the directories again. Wherever someone else could create the file first (a sticky directory, directories
 * still to be made) or the file is there, the open checks it again, and a file another user slipped in is refused.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { UsageError } from '../../src/errors.ts';
import { checkJournalTrust, openJournal } from '../../src/steps/journal.ts';
import { buildFixture } from '../fixtures/build.ts';
import { cli } from '../support/cli.ts';

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

  it('checkedNew on a missing file creates it with O_EXCL: a symlink put there meanwhile is not followed', () => {
    const dir = tmp();
    const f = path.join(dir, 'undo');
    const target = path.join(tmp(), 'elsewhere');
    fs.symlinkSync(target, f);
    assert.throws(() => openJournal(f, { ...opts, checkedNew: true }), UsageError);
    assert.equal(fs.existsSync(target), false);
  });
});

describe('journal trust: checked once only where nobody else can change the way to the file', () => {
  /** A sticky /tmp-like directory holding a symlink owned by uid 1000 that points to a root-only directory. */
  function userLinkToRootDir(): { link: string; rootDir: string; userDir: string } {
    const sticky = tmp();
    fs.chmodSync(sticky, 0o1777);
    const rootDir = tmp();
    const userDir = tmp();
    fs.chownSync(userDir, 1000, 1000);
    const link = path.join(sticky, 'link');
    fs.symlinkSync(rootDir, link);
    fs.lchownSync(link, 1000, 1000);
    return { link, rootDir, userDir };
  }

  it('a directory reached through another user symlink in a sticky directory is not "new-in-root-dir"', () => {
    const { link } = userLinkToRootDir();
    assert.equal(
      checkJournalTrust(path.join(link, 'undo')),
      'new',
      'its owner can point it elsewhere meanwhile',
    );
  });

  it('that symlink repointed at the user directory between the check and the open: nothing created there', () => {
    const { link, userDir } = userLinkToRootDir();
    const f = path.join(link, 'undo');
    // as execute.ts does: the early check, then (after planning and the lock wait) the open
    const trust = checkJournalTrust(f);
    fs.unlinkSync(link);
    fs.symlinkSync(userDir, link);
    fs.lchownSync(link, 1000, 1000);
    assert.throws(
      () => openJournal(f, { ...opts, checkedNew: trust === 'new-in-root-dir' }),
      (e: unknown) => e instanceof UsageError && /uid 1000/.test(e.message),
    );
    assert.equal(
      fs.existsSync(path.join(userDir, 'undo')),
      false,
      'root created its journal in a user directory',
    );
  });

  it('a path with ".." is not "new-in-root-dir": the kernel resolves it after the symlinks, the check before', () => {
    const dir = tmp();
    fs.mkdirSync(path.join(dir, 'a'));
    assert.equal(checkJournalTrust(`${dir}/a/../undo`), 'new');
  });
});
