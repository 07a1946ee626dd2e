/**
 * Issue 21, item 5: SIGKILL at every step of isolate, release, pin-qemu, a rollback and restore itself, and
 * between creating a journal and writing its header; afterwards the journal (or release/restore) brings the
 * fake machine back exactly. A journal left empty or header-torn by a crash means "nothing was applied": -u
 * starts it anew, restore/release remove it; one that is not ours is still refused.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { buildFixture } from '../fixtures/build.ts';
import { testBundle } from '../support/bundle.ts';
import { cli } from '../support/cli.ts';
import { seedHookArgv } from '../support/seed.ts';
import { diffTrees, simWrites, treeFiles } from '../support/tree.ts';

const VM = 'C8-15,24-31';
const HOOK = seedHookArgv('C0-6,16-22', 'C7-15,23-31');
const PIN = ['pin-qemu', '2400', '--vm', VM, '--emulator', 'C7,23'];
const tmpFile = (name = 'undo') => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-kill-')), name);
const DEFAULT_JOURNAL = 'run/vfio-isolate/isolate.journal';

let bundle = '';
function killed(root: string, argv: string[], point: string): void {
  const r = spawnSync(process.execPath, [bundle, ...argv], {
    env: {
      ...process.env,
      VFIO_ISOLATE_ROOT: root,
      VFIO_ISOLATE_FAULT: point,
      VFIO_ISOLATE_LOCK_WAIT_MS: '2000',
    },
    encoding: 'utf8',
  });
  assert.equal(
    r.signal,
    'SIGKILL',
    `${argv.join(' ')} at ${point} was not killed: exit ${r.status}\n${r.stderr}`,
  );
}
async function ok(root: string, argv: string[]) {
  const r = await cli(root, argv);
  assert.equal(r.code, 0, `${argv.join(' ')} → ${r.code}\n${r.stderr}`);
  return r;
}
async function stepCount(root: string, argv: string[]): Promise<number> {
  const r = await ok(root, ['-n', '--json', ...argv]);
  return (JSON.parse(r.stdout) as { steps: unknown[] }).steps.length;
}

before(() => {
  bundle = testBundle();
});

describe('SIGKILL at every step of isolate, release and pin-qemu, then undo: exact', async () => {
  const probe = buildFixture('ryzen-5950x');
  const isolateSteps = await stepCount(probe, ['isolate', VM]);
  await ok(probe, ['isolate', VM]);
  const releaseSteps = await stepCount(probe, ['release']);
  const pinSteps = await stepCount(buildFixture('ryzen-5950x'), PIN);

  it('the step counts are what the matrix covers', () => {
    assert.ok(isolateSteps >= 5, `isolate: ${isolateSteps} steps`);
    assert.ok(releaseSteps >= 5, `release: ${releaseSteps} steps`);
    assert.ok(pinSteps >= 1, `pin-qemu: ${pinSteps} steps`);
  });

  for (let k = 1; k <= isolateSteps; k++) {
    for (const when of ['crash-before', 'crash-after']) {
      it(`isolate killed at ${when}:${k}: release puts everything back`, async () => {
        const root = buildFixture('ryzen-5950x');
        const start = treeFiles(root);
        killed(root, ['isolate', VM], `${when}:${k}`);
        await ok(root, ['release']);
        assert.deepEqual(diffTrees(start, treeFiles(root)), []);
      });
    }
  }

  for (let k = 1; k <= releaseSteps; k++) {
    it(`release killed after step ${k}: release again finishes it exactly`, async () => {
      const root = buildFixture('ryzen-5950x');
      const start = treeFiles(root);
      await ok(root, ['isolate', VM]);
      killed(root, ['release'], `crash-after:${k}`);
      await ok(root, ['release']);
      assert.deepEqual(diffTrees(start, treeFiles(root)), []);
    });
  }

  for (let k = 1; k <= pinSteps; k++) {
    for (const when of ['crash-before', 'crash-after']) {
      it(`pin-qemu killed at ${when}:${k}: restore of its journal is exact`, async () => {
        const root = buildFixture('ryzen-5950x');
        const start = treeFiles(root);
        const undo = tmpFile();
        killed(root, ['-u', undo, ...PIN], `${when}:${k}`);
        await ok(root, ['restore', undo]);
        assert.deepEqual(diffTrees(start, treeFiles(root)), []);
      });
    }
  }
});

describe('SIGKILL during a rollback and during restore', async () => {
  const probe = buildFixture('ryzen-5950x');
  const probeUndo = tmpFile();
  await ok(probe, ['-u', probeUndo, ...HOOK]);
  const restoreSteps = await stepCount(probe, ['restore', probeUndo]);

  // The hook's steps 1 and 4 (drop-caches, compact-memory) record nothing: a failure at 5 rolls back 2 records.
  for (const [fail, undone] of [
    [5, 1],
    [5, 2],
    [3, 1],
  ] as const) {
    it(`seed hook fails at step ${fail}, killed after its rollback undid ${undone}: restore is exact`, async () => {
      const root = buildFixture('ryzen-5950x');
      const start = treeFiles(root);
      const undo = tmpFile();
      killed(root, ['-u', undo, ...HOOK], `fail:${fail},crash-rollback:${undone}`);
      assert.doesNotMatch(fs.readFileSync(undo, 'utf8'), /"t":"rollback"/, 'the rollback never finished');
      await ok(root, ['restore', undo]);
      assert.deepEqual(diffTrees(start, treeFiles(root)), []);
    });
  }

  it('restore has a step per record plus its mark', () => assert.equal(restoreSteps, 4));
  for (let k = 1; k <= restoreSteps; k++) {
    it(`restore killed after its step ${k}: restore again is exact`, async () => {
      const root = buildFixture('ryzen-5950x');
      const start = treeFiles(root);
      const undo = tmpFile();
      await ok(root, ['-u', undo, ...HOOK]);
      killed(root, ['restore', undo], `crash-after:${k}`);
      await ok(root, ['restore', undo]);
      assert.deepEqual(diffTrees(start, treeFiles(root)), []);
      assert.match(fs.readFileSync(undo, 'utf8'), /"t":"restored"/);
    });
  }
});

describe('a journal left unfinished by a crash means "nothing was applied"', () => {
  it('killed between creating the journal and writing its header: nothing changed, the file is empty', () => {
    const root = buildFixture('ryzen-5950x');
    const start = treeFiles(root);
    const undo = tmpFile();
    killed(root, ['-u', undo, ...HOOK], 'crash-journal:0');
    assert.equal(fs.readFileSync(undo, 'utf8'), '');
    assert.deepEqual(diffTrees(start, treeFiles(root)), []);
  });

  for (const [name, content] of [
    ['empty', ''],
    ['header-torn', '{"t":"header","format":"vfio-is'],
    [
      'header without its newline',
      '{"t":"header","format":"vfio-isolate-journal","version":1,"tool":"vfio-isolate 1","bootId":"b","created":"x"}',
    ],
    ['NUL-filled', '\0'.repeat(64)],
  ] as const) {
    it(`${name}: -u starts it anew with a warning, and its restore is exact`, async () => {
      const root = buildFixture('ryzen-5950x');
      const start = treeFiles(root);
      const undo = tmpFile();
      fs.writeFileSync(undo, content, { mode: 0o600 });
      const r = await ok(root, ['-u', undo, ...HOOK]);
      assert.match(r.stderr, /left unfinished by an interrupted run that applied nothing; started it anew/);
      assert.match(fs.readFileSync(undo, 'utf8'), /^\{"t":"header"/);
      await ok(root, ['restore', undo]);
      assert.deepEqual(diffTrees(start, treeFiles(root)), []);
    });

    it(`${name}: restore says nothing was applied, removes it, writes nothing (exit 0)`, async () => {
      const root = buildFixture('ryzen-5950x');
      const undo = tmpFile();
      fs.writeFileSync(undo, content, { mode: 0o600 });
      const r = await ok(root, ['restore', undo]);
      assert.match(r.stderr, /interrupted run that applied nothing; removed it/);
      assert.equal(fs.existsSync(undo), false);
      assert.deepEqual(simWrites(root), []);
    });
  }

  it('the default journal left empty: isolate starts anew, release after it is exact; release of it alone removes it', async () => {
    const root = buildFixture('ryzen-5950x');
    const start = treeFiles(root);
    fs.mkdirSync(path.join(root, 'run/vfio-isolate'), { recursive: true });
    fs.writeFileSync(path.join(root, DEFAULT_JOURNAL), '', { mode: 0o600 });
    await ok(root, ['release']);
    assert.equal(fs.existsSync(path.join(root, DEFAULT_JOURNAL)), false);
    fs.writeFileSync(path.join(root, DEFAULT_JOURNAL), '', { mode: 0o600 });
    await ok(root, ['isolate', VM]);
    await ok(root, ['release']);
    assert.deepEqual(diffTrees(start, treeFiles(root)), []);
  });

  for (const who of ['-u', 'restore'] as const) {
    it(`${who}: an empty journal that others could have written is refused (exit 2), nothing changed`, async () => {
      const root = buildFixture('ryzen-5950x');
      const undo = tmpFile();
      fs.writeFileSync(undo, '');
      fs.chmodSync(undo, 0o666);
      const r = await cli(root, who === '-u' ? ['-u', undo, ...HOOK] : ['restore', undo]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /not trusted: .* is writable by others/);
      assert.deepEqual(simWrites(root), []);
      assert.equal(fs.readFileSync(undo, 'utf8'), '');
    });
  }
});
