// A journal path that cannot be looked at (lstat fails with EACCES, as for a user who is not root) is said to be
// unreadable, never taken for a missing journal (which a run would then judge as a new one to create).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { buildFixture } from '../fixtures/build.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const NOT_ROOT = process.geteuid?.() !== 0 && 'needs root, to run as uid 65534';

/** A fixture others may enter, with a journal in a directory only root may search (0700). */
function hiddenJournal(): { root: string; journal: string } {
  const root = buildFixture('ryzen-5950x');
  fs.chmodSync(root, 0o755);
  const dir = path.join(root, 'private');
  fs.mkdirSync(dir, { mode: 0o700 });
  const journal = path.join(dir, 'vm.journal');
  fs.writeFileSync(journal, '', { mode: 0o600 });
  return { root, journal };
}

function asNobody(root: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, ['--import', 'tsx', ...args], {
    cwd: REPO,
    uid: 65534,
    gid: 65534,
    env: { ...process.env, VFIO_ISOLATE_ROOT: root },
    encoding: 'utf8',
  });
}

describe('a journal that cannot be looked at is not a missing one', { skip: NOT_ROOT }, () => {
  it('-u with such a journal: exit 1, "cannot be read (EACCES)", run as root; not judged as a journal to create', () => {
    const { root, journal } = hiddenJournal();
    const r = asNobody(root, [
      'test/support/sim-main.ts',
      '-u',
      journal,
      'cpuset-modify',
      '--cpus',
      'C0-3',
      '/',
    ]);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr, `vfio-isolate: journal ${journal} cannot be read (EACCES)\nhint: run as root\n`);
  });

  it('journalState says unreadable, and missing only for a path with nothing there', () => {
    const { root, journal } = hiddenJournal();
    const script = `
      import { journalState, journalThere } from './src/steps/journal.ts';
      const out = {};
      for (const [name, p] of Object.entries({ hidden: ${JSON.stringify(journal)}, missing: ${JSON.stringify(path.join(root, 'none.journal'))}, underFile: ${JSON.stringify(path.join(root, 'proc/cmdline/x.journal'))} })) {
        let there;
        try { there = journalThere(p); } catch (e) { there = e.name + ': ' + e.message; }
        out[name] = [journalState(p, 'boot'), journalState(p, 'boot', 'head'), there];
      }
      console.log(JSON.stringify(out));`;
    const r = asNobody(root, ['--input-type=module', '-e', script]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {
      hidden: ['unreadable', 'unreadable', `CannotRead: journal ${journal} cannot be read (EACCES)`],
      missing: ['missing', 'missing', false],
      // ENOTDIR (a file where a directory should be) is nothing there, as ENOENT is
      underFile: ['missing', 'missing', false],
    });
  });
});
