/**
 * Adversary pass on issue 17's speed work: the shortcuts (a journal in the lock's directory created without a
 * second walk, release's missing-journal test by one lstat, restore's single read, cgroup.threads on a move's first
 * pass) keep the trust boundary. Tests run as root: "another user" is uid 1000 (chown).
 * Reproduce: node --import tsx --test test/unit/speed-safety.test.ts
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { UsageError } from '../../src/errors.ts';
import { removeInterrupted } from '../../src/steps/journal.ts';
import { buildFixture } from '../fixtures/build.ts';
import { cli } from '../support/cli.ts';
import { diffTrees, treeFiles, treeHash } from '../support/tree.ts';

const tmpDir = (mode = 0o700): string => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-speedsafe-'));
  fs.chmodSync(d, mode);
  return d;
};

function lstateOf(f: string): string {
  try {
    const st = fs.lstatSync(f);
    return `${st.mode}:${st.uid}:${st.isFile() ? fs.readFileSync(f, 'utf8') : st.isSymbolicLink() ? fs.readlinkSync(f) : ''}`;
  } catch {
    return 'missing';
  }
}

describe('the lock’s directory: its journals are created only where the lock’s walk passed', () => {
  it('/run/vfio-isolate a symlink to a directory uid 1000 owns: refused (exit 2), no journal made there', async () => {
    const root = buildFixture('ryzen-5950x');
    const theirs = path.join(root, 'theirs');
    fs.mkdirSync(theirs, { mode: 0o755 });
    fs.chownSync(theirs, 1000, 1000);
    fs.mkdirSync(path.join(root, 'run'), { recursive: true });
    fs.symlinkSync(theirs, path.join(root, 'run/vfio-isolate'));
    const h = treeHash(root);
    const r = await cli(root, ['isolate', 'C8-15']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /owned by uid 1000/);
    assert.deepEqual(fs.readdirSync(theirs), []);
    assert.equal(treeHash(root), h);
  });

  for (const [what, name] of [
    ['with "."', (d: string) => `${d}/./mine.journal`],
    ['with "//"', (d: string) => `${d}//mine.journal`],
  ] as const) {
    it(`-u in the lock’s directory spelt ${what}: made there, one journal, undone exactly`, async () => {
      const root = buildFixture('ryzen-5950x');
      const dir = path.join(root, 'run/vfio-isolate');
      const h = treeHash(root);
      const r = await cli(root, ['-u', name(dir), 'isolate', '--no-irqs', 'C8-15']);
      assert.equal(r.code === 0 || r.code === 1, true, r.stderr);
      assert.ok(fs.lstatSync(path.join(dir, 'mine.journal')).isFile());
      assert.equal(fs.lstatSync(path.join(dir, 'mine.journal')).uid, 0);
      const b = await cli(root, ['release', path.join(dir, 'mine.journal')]);
      assert.equal(b.code, 0, b.stderr);
      assert.notEqual(treeHash(root), h, 'journals and registry remain');
    });
  }
});

describe('release of a registered journal that is not a plain root file: refused, never taken for missing', () => {
  const cases: [string, (j: string) => void][] = [
    ['a dangling symlink', (j) => fs.symlinkSync(path.join(path.dirname(j), 'nowhere'), j)],
    [
      'a symlink to a file uid 1000 owns',
      (j) => {
        const t = path.join(tmpDir(0o755), 'theirs');
        fs.writeFileSync(t, '');
        fs.chownSync(t, 1000, 1000);
        fs.symlinkSync(t, j);
      },
    ],
    ['a directory', (j) => fs.mkdirSync(j)],
    ['a FIFO', (j) => assert.equal(spawnSync('mkfifo', [j]).status, 0)],
    [
      'an empty file uid 1000 owns',
      (j) => {
        fs.writeFileSync(j, '', { mode: 0o600 });
        fs.chownSync(j, 1000, 1000);
      },
    ],
  ];
  for (const [what, make] of cases) {
    it(`${what}: exit 2, the CPUs stay reserved, nothing changed`, async () => {
      const root = buildFixture('ryzen-5950x');
      const j = path.join(tmpDir(), 'vm.journal');
      const r0 = await cli(root, ['-u', j, 'isolate', '--no-irqs', 'C8-15']);
      assert.equal(r0.code, 0, r0.stderr);
      fs.rmSync(j);
      make(j);
      const h = treeHash(root);
      const before = lstateOf(j);
      const r = await cli(root, ['release', j]);
      assert.equal(r.code, 2, r.stderr);
      assert.doesNotMatch(r.stderr, /is missing/);
      assert.equal(treeHash(root), h);
      assert.equal(lstateOf(j), before);
    });
  }

  it('truly missing: warned, its CPUs released (exit 0)', async () => {
    const root = buildFixture('ryzen-5950x');
    const j = path.join(tmpDir(), 'vm.journal');
    assert.equal((await cli(root, ['-u', j, 'isolate', '--no-irqs', 'C8-15'])).code, 0);
    fs.rmSync(j);
    const r = await cli(root, ['release', j]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /is missing/);
  });
});

describe('restore: the single read decides "interrupted" only for a root file that is one', () => {
  const HEADER_START = '{"t":"header","format":"vfio-isolate-journal"';
  const cases: [string, (j: string) => string[]][] = [
    [
      'a header start padded past 4096 bytes, no newline',
      (j) => {
        fs.writeFileSync(j, HEADER_START + ' '.repeat(5000), { mode: 0o600 });
        return [j];
      },
    ],
    [
      'NUL bytes owned by uid 1000',
      (j) => {
        fs.writeFileSync(j, '\0\0\0\0', { mode: 0o600 });
        fs.chownSync(j, 1000, 1000);
        return [j];
      },
    ],
    [
      'empty, writable by others',
      (j) => {
        fs.writeFileSync(j, '');
        fs.chmodSync(j, 0o666);
        return [j];
      },
    ],
    [
      'a symlink to an empty root file',
      (j) => {
        const t = `${j}.target`;
        fs.writeFileSync(t, '', { mode: 0o600 });
        fs.symlinkSync(t, j);
        return [j, t];
      },
    ],
    [
      'a FIFO',
      (j) => {
        assert.equal(spawnSync('mkfifo', ['-m', '600', j]).status, 0);
        return [j];
      },
    ],
    [
      'a pickle of one byte',
      (j) => {
        fs.writeFileSync(j, Buffer.from([0x80]), { mode: 0o600 });
        return [j];
      },
    ],
  ];
  for (const [what, make] of cases) {
    it(`${what}: refused (exit 2), nothing removed`, async () => {
      const root = buildFixture('ryzen-5950x');
      const j = path.join(tmpDir(), 'undo');
      const files = make(j);
      const before = files.map(lstateOf);
      const h = treeHash(root);
      const r = await cli(root, ['restore', j]);
      assert.equal(r.code, 2, r.stderr);
      assert.deepEqual(files.map(lstateOf), before);
      assert.equal(treeHash(root), h);
    });
  }

  it('removeInterrupted re-reads under the lock: a file that became a journal, or another user’s, is kept', async () => {
    const root = buildFixture('ryzen-5950x');
    const j = path.join(tmpDir(), 'undo');
    assert.equal((await cli(root, ['-u', j, 'irq-affinity', 'mask', 'C0-7'])).code, 0);
    const before = lstateOf(j);
    assert.equal(removeInterrupted(j), false);
    assert.equal(lstateOf(j), before);
    const theirs = path.join(tmpDir(), 'undo');
    fs.writeFileSync(theirs, '', { mode: 0o600 });
    fs.chownSync(theirs, 1000, 1000);
    assert.throws(() => removeInterrupted(theirs), UsageError);
    assert.ok(fs.existsSync(theirs));
  });
});

describe('the host journal is nobody’s own journal', () => {
  it('isolate -u naming the host journal: refused (exit 2), nothing changed, no journal made', async () => {
    const root = buildFixture('ryzen-5950x');
    const host = path.join(root, 'run/vfio-isolate/host.journal');
    const h = treeHash(root);
    const r = await cli(root, ['-u', host, 'isolate', '--no-irqs', 'C8-15']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /host journal/);
    assert.equal(fs.existsSync(host), false);
    assert.equal(treeHash(root), h);
  });

  it('release naming the host journal while an isolation is active: refused (exit 2), nothing changed', async () => {
    const root = buildFixture('ryzen-5950x');
    const j = path.join(tmpDir(), 'vm.journal');
    assert.equal((await cli(root, ['-u', j, 'isolate', '--no-irqs', 'C8-15'])).code, 0);
    const host = path.join(root, 'run/vfio-isolate/host.journal');
    const h = treeHash(root);
    const before = lstateOf(host);
    const r = await cli(root, ['release', host]);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(treeHash(root), h);
    assert.equal(lstateOf(host), before);
    assert.equal((await cli(root, ['release', j])).code, 0);
  });
});

describe('a libvirt domain whose hook journal would be the host journal', () => {
  it('libvirt hook install host: refused (exit 2), nothing written', async () => {
    const root = buildFixture('ryzen-5950x');
    const h = treeHash(root);
    const r = await cli(root, ['libvirt', 'hook', 'install', 'host', '--profile', 'host']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /host journal/);
    assert.equal(treeHash(root), h);
  });
});

describe('a host journal left by an interrupted creation', () => {
  for (const [what, bytes] of [
    ['empty', ''],
    ['a partial header', '{"t":"header","form'],
    ['NUL bytes', '\0\0\0\0'],
  ] as const) {
    it(`${what}: isolate starts it anew (it holds no change), release restores the host`, async () => {
      const root = buildFixture('ryzen-5950x');
      const dir = path.join(root, 'run/vfio-isolate');
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      const host = path.join(dir, 'host.journal');
      fs.writeFileSync(host, bytes, { mode: 0o600 });
      const before = treeFiles(root);
      const r = await cli(root, ['isolate', '--no-irqs', 'C8-15']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /host\.journal was left unfinished by an interrupted run/);
      assert.match(fs.readFileSync(host, 'utf8'), /^\{"t":"header"/);
      const b = await cli(root, ['release']);
      assert.equal(b.code, 0, b.stderr);
      assert.deepEqual(diffTrees(before, treeFiles(root)), []);
    });
  }

  it('empty and owned by uid 1000: still refused (exit 2), kept', async () => {
    const root = buildFixture('ryzen-5950x');
    const dir = path.join(root, 'run/vfio-isolate');
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const host = path.join(dir, 'host.journal');
    fs.writeFileSync(host, '', { mode: 0o600 });
    fs.chownSync(host, 1000, 1000);
    const h = treeHash(root);
    const r = await cli(root, ['isolate', '--no-irqs', 'C8-15']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /owned by uid 1000/);
    assert.equal(treeHash(root), h);
    assert.equal(fs.statSync(host).uid, 1000);
  });
});
