import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { UsageError, RuntimeFailure } from '../../src/errors.ts';
import {
  journalHead,
  markRestored,
  openHostJournal,
  openJournal,
  parseJournal,
  pendingRecords,
  readBaseline,
  readJournalFile,
} from '../../src/steps/journal.ts';
import { buildFixture } from '../fixtures/build.ts';
import { cli } from '../support/cli.ts';
import { sysRead, sysWrite, treeHash } from '../support/tree.ts';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'vi-journal-'));
const opts = { tool: 'vfio-isolate test', bootId: 'boot-a', argv: ['x'] };

/** A journal's text written by hand: its header (with `bootId`), then `lines`, one JSON line each. */
function journalText(bootId: string, lines: object[]): string {
  const header = { t: 'header', format: 'vfio-isolate-journal', version: 1, tool: 't', bootId, created: 'c' };
  return [header, ...lines].map((l) => JSON.stringify(l) + '\n').join('');
}

/** A journal file written by hand (0600) for the fixture at `root`: of its boot, holding `lines`. */
function journalFile(root: string, lines: object[]): string {
  const j = path.join(tmp(), 'undo');
  fs.writeFileSync(j, journalText(sysRead(root, 'proc/sys/kernel/random/boot_id'), lines), { mode: 0o600 });
  return j;
}

describe('journal', () => {
  it('is created 0600 with a header, one run line and records in order', () => {
    const f = path.join(tmp(), 'undo');
    const j = openJournal(f, opts);
    j.record({ kind: 'mkdir', path: '/sys/fs/cgroup/a' });
    j.record({ kind: 'write', files: [['/proc/irq/1/smp_affinity_list', '0-7']] });
    j.close();
    assert.equal(fs.statSync(f).mode & 0o777, 0o600);
    const lines = fs
      .readFileSync(f, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(lines[0].t, 'header');
    assert.equal(lines[0].bootId, 'boot-a');
    assert.equal(lines[1].t, 'run');
    assert.deepEqual(
      pendingRecords(readJournalFile(f)).map((r) => r.kind),
      ['write', 'mkdir'],
    );
  });

  it('a second run on an unrestored journal of this boot appends; restore order is newest first', () => {
    const f = path.join(tmp(), 'undo');
    const a = openJournal(f, opts);
    a.record({ kind: 'mkdir', path: '/sys/fs/cgroup/one' });
    a.close();
    const b = openJournal(f, opts);
    b.record({ kind: 'mkdir', path: '/sys/fs/cgroup/two' });
    b.close();
    const j = readJournalFile(f);
    assert.deepEqual(
      j.runs.map((r) => r.run),
      [1, 2],
    );
    assert.deepEqual(
      pendingRecords(j).map((r) => (r as { path: string }).path),
      ['/sys/fs/cgroup/two', '/sys/fs/cgroup/one'],
    );
  });

  it('a restored journal or one of an earlier boot is replaced and kept as FILE.old', () => {
    const f = path.join(tmp(), 'undo');
    openJournal(f, opts).close();
    markRestored(f, false);
    const j = openJournal(f, opts);
    j.close();
    assert.ok(fs.existsSync(`${f}.old`));
    assert.match(j.warnings[0]!, /already restored/);
    const k = openJournal(f, { ...opts, bootId: 'boot-b' });
    k.close();
    assert.match(k.warnings[0]!, /earlier boot/);
  });

  it('a torn last line is ignored, and cut before appending', () => {
    const f = path.join(tmp(), 'undo');
    const a = openJournal(f, opts);
    a.record({ kind: 'mkdir', path: '/sys/fs/cgroup/one' });
    a.close();
    fs.appendFileSync(f, '{"t":"rec","run":1,"rec":{"kind":"mkd');
    assert.equal(readJournalFile(f).torn, true);
    assert.equal(pendingRecords(readJournalFile(f)).length, 1);
    openJournal(f, opts).close();
    assert.equal(readJournalFile(f).torn, false);
    assert.equal(readJournalFile(f).runs.length, 2);
  });

  it('rolled-back runs are not restored; restored journals have nothing pending', () => {
    const f = path.join(tmp(), 'undo');
    const a = openJournal(f, opts);
    a.record({ kind: 'mkdir', path: '/sys/fs/cgroup/one' });
    a.markRollback();
    a.close();
    assert.equal(pendingRecords(readJournalFile(f)).length, 0);
    markRestored(f, false);
    assert.equal(readJournalFile(f).restored, true);
  });

  it('refuses symlinks, pickles, non-journals and a missing file with the right exit code', () => {
    const d = tmp();
    const target = path.join(d, 'real');
    fs.writeFileSync(target, '');
    fs.symlinkSync(target, path.join(d, 'link'));
    assert.throws(
      () => openJournal(path.join(d, 'link'), opts),
      (e) => e instanceof UsageError && /symbolic link/.test(e.message),
    );
    fs.writeFileSync(path.join(d, 'pickle'), Buffer.from([0x80, 0x04, 0x95, 0x10, 0x00]));
    assert.throws(
      () => openJournal(path.join(d, 'pickle'), opts),
      (e) => e instanceof UsageError && /0\.5\.2/.test(e.hint ?? ''),
    );
    fs.writeFileSync(path.join(d, 'text'), 'hello\n');
    assert.throws(() => readJournalFile(path.join(d, 'text')), UsageError);
    assert.throws(() => readJournalFile(path.join(d, 'missing')), RuntimeFailure);
  });

  it('schema errors name the line', () => {
    const header = journalText('b', []).trim();
    const bad = journalText('b', [
      { t: 'run', run: 1, at: 'x', argv: [] },
      { t: 'rec', run: 1, rec: { kind: 'write', files: [['relative', '1']] } },
    ]);
    assert.throws(
      () => parseJournal(bad, 'J'),
      (e) => e instanceof UsageError && /J line 3/.test(e.message),
    );
    const v2 = header.replace('"version":1', '"version":2');
    assert.throws(
      () => parseJournal(v2 + '\n', 'J'),
      (e) => e instanceof UsageError && /version 2 is not supported/.test(e.message),
    );
  });

  it('a written file is [path, before] or [path, before, wrote], read back as it was written; nothing else', () => {
    const journal = (files: unknown[]): string =>
      journalText('b', [
        { t: 'run', run: 1, at: 'x', argv: [] },
        { t: 'rec', run: 1, rec: { kind: 'write', files } },
      ]);
    const two = ['/proc/irq/1/smp_affinity_list', '0-7'];
    const three = ['/proc/irq/2/smp_affinity_list', '0-7', '4-7'];
    const [rec] = pendingRecords(parseJournal(journal([two, three]), 'J'));
    assert.ok(rec?.kind === 'write');
    // the exact arrays: a two-value file has no third element (not even an undefined one)
    assert.deepEqual(rec.files, [two, three]);
    assert.equal(rec.files[0]!.length, 2);
    assert.ok(!(2 in rec.files[0]!));
    for (const bad of [
      ['/proc/irq/1/smp_affinity_list'],
      ['/proc/irq/1/smp_affinity_list', '0-7', '4-7', 'x'],
      ['/proc/irq/1/smp_affinity_list', '0-7', null],
      ['/proc/irq/1/smp_affinity_list', 7],
      ['proc/irq/1/smp_affinity_list', '0-7'],
      ['/proc/irq/1/smp_affinity_list', 'x'.repeat(8193)],
      ['/proc/irq/1/smp_affinity_list', '0-7', 'x'.repeat(8193)],
    ])
      assert.throws(
        () => parseJournal(journal([two, bad]), 'J'),
        (e) => e instanceof UsageError && /J line 3/.test(e.message),
        JSON.stringify(bad).slice(0, 60),
      );
  });

  it('restore: [path, before] is written back even when changed since; [path, before, wrote] changed since stays', async () => {
    const root = buildFixture('ryzen-5950x');
    const irq = (n: number) => `/proc/irq/${n}/smp_affinity_list`;
    const [older, changed, ours] = [irq(10), irq(11), irq(12)];
    const before = sysRead(root, older.slice(1));
    assert.ok(![before, sysRead(root, changed.slice(1))].some((v) => v === '4-7' || v === '8-15'), before);
    // the run wrote 8-15 to all three; someone else then wrote 4-7 to the first two
    for (const [p, now] of [
      [older, '4-7'],
      [changed, '4-7'],
      [ours, '8-15'],
    ] as const)
      sysWrite(root, p.slice(1), now);
    const files = [
      [older, before], // a journal before 0.6: no value written, so no conflict check
      [changed, before, '8-15'],
      [ours, before, '8-15'],
    ];
    const j = journalFile(root, [
      { t: 'run', run: 1, at: 'x', argv: [] },
      { t: 'rec', run: 1, rec: { kind: 'write', files } },
    ]);
    const r = await cli(root, ['restore', j]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /1 change\(s\) left alone/);
    assert.match(r.stderr, /irq\/11\/smp_affinity_list \(holds "4-7", the run wrote "8-15"\)/);
    assert.doesNotMatch(r.stderr, /irq\/1[02]\//);
    assert.equal(sysRead(root, older.slice(1)), before, 'the two-value file is written back');
    assert.equal(sysRead(root, changed.slice(1)), '4-7', 'the file changed since is left alone');
    assert.equal(
      sysRead(root, ours.slice(1)),
      before,
      'the file still holding what the run wrote is written back',
    );
    assert.doesNotMatch(fs.readFileSync(j, 'utf8'), /"restored"/);
  });

  it('restore: a file a newer run changed and someone changed since is not written by an older run either', async () => {
    const root = buildFixture('ryzen-5950x');
    const x = '/proc/irq/10/smp_affinity_list';
    const y = '/proc/irq/11/smp_affinity_list';
    const before = sysRead(root, x.slice(1));
    assert.ok(![before, sysRead(root, y.slice(1))].some((v) => ['4-7', '8-15', '16-23'].includes(v)), before);
    // run 1 (a tool before 0.6: no value written) set both to 8-15, run 2 set both to 16-23; then someone wrote 4-7
    // to x, while y still holds what run 2 wrote
    sysWrite(root, x.slice(1), '4-7');
    sysWrite(root, y.slice(1), '16-23');
    const j = journalFile(root, [
      { t: 'run', run: 1, at: 'x', argv: [] },
      {
        t: 'rec',
        run: 1,
        rec: {
          kind: 'write',
          files: [
            [x, before],
            [y, before],
          ],
        },
      },
      { t: 'run', run: 2, at: 'x', argv: [] },
      {
        t: 'rec',
        run: 2,
        rec: {
          kind: 'write',
          files: [
            [x, '8-15', '16-23'],
            [y, '8-15', '16-23'],
          ],
        },
      },
    ]);
    const r = await cli(root, ['restore', j]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /1 change\(s\) left alone/);
    assert.match(r.stderr, /irq\/10\/smp_affinity_list \(holds "4-7", the run wrote "16-23"\)/);
    assert.equal(sysRead(root, x.slice(1)), '4-7', 'left alone by both runs');
    assert.equal(sysRead(root, y.slice(1)), before, 'y is undone by run 2, then by run 1');
    // --force writes it back anyway
    assert.equal((await cli(root, ['--force', 'restore', j])).code, 0);
    assert.equal(sysRead(root, x.slice(1)), before);
  });

  it('restore: every change left alone says nothing was changed; once the file is put back, restore finishes', async () => {
    const root = buildFixture('ryzen-5950x');
    const x = '/proc/irq/10/smp_affinity_list';
    const before = sysRead(root, x.slice(1));
    assert.ok(!['4-7', '8-15', '16-23'].includes(before), before);
    // run 1 (before 0.6: no value written) set x to 8-15, run 2 set it to 16-23; then someone wrote 4-7
    sysWrite(root, x.slice(1), '4-7');
    const j = journalFile(root, [
      { t: 'run', run: 1, at: 'x', argv: [] },
      { t: 'rec', run: 1, rec: { kind: 'write', files: [[x, before]] } },
      { t: 'run', run: 2, at: 'x', argv: [] },
      { t: 'rec', run: 2, rec: { kind: 'write', files: [[x, '8-15', '16-23']] } },
    ]);
    const r = await cli(root, ['restore', j]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /1 change\(s\) left alone/);
    // restore wrote nothing, so there was nothing to undo or keep
    assert.match(r.stderr, /; nothing was changed$/m);
    assert.equal(sysRead(root, x.slice(1)), '4-7', 'left alone by both runs');
    assert.doesNotMatch(fs.readFileSync(j, 'utf8'), /"restored"/);
    // the user puts back what run 2 wrote: restore (without --force) undoes both runs and marks the journal
    sysWrite(root, x.slice(1), '16-23');
    const again = await cli(root, ['restore', j]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(sysRead(root, x.slice(1)), before);
    assert.match(fs.readFileSync(j, 'utf8'), /"restored"/);
  });

  it('a journal path ending in "/" is refused with exit 2 by -u, restore and release, and nothing changes', async () => {
    const root = buildFixture('ryzen-5950x');
    const d = tmp();
    fs.chmodSync(d, 0o700);
    const j = path.join(d, 'undo');
    const slashed = `${j}/`;
    const refused = (r: { code: number; stderr: string }, what: string, named = j): void => {
      assert.equal(r.code, 2, `${what}: ${r.stderr}`);
      assert.match(
        r.stderr,
        /the path ends in "\/" or "\/\.", which names a directory; a journal is a file/,
        what,
      );
      assert.ok(r.stderr.includes(`such as ${named}`), what);
    };
    const before = treeHash(root);
    // a journal still to be created: -u NEW/ (a run used to fail with EISDIR, exit 1); -u D/a/b/. created the
    // directories on its way before it failed
    refused(await cli(root, ['-u', slashed, 'irq-affinity', 'mask', 'C1']), '-u new');
    assert.equal(fs.existsSync(j), false);
    refused(await cli(root, ['-u', `${d}/a/b/.`, 'irq-affinity', 'mask', 'C1']), '-u new/.', `${d}/a/b`);
    assert.deepEqual(fs.readdirSync(d), []);
    assert.equal(treeHash(root), before);
    // one that exists: -u, restore and release of FILE/ and FILE/. (restore used to say "does not exist", exit 1)
    assert.equal((await cli(root, ['-u', j, 'irq-affinity', 'mask', 'C2'])).code, 0);
    const masked = treeHash(root);
    const text = fs.readFileSync(j, 'utf8');
    for (const given of [slashed, `${j}/.`, `${j}//`]) {
      refused(await cli(root, ['-u', given, 'irq-affinity', 'mask', 'C3']), `-u ${given}`);
      refused(await cli(root, ['restore', given]), `restore ${given}`);
      refused(await cli(root, ['release', given]), `release ${given}`);
    }
    // restore, release and reapply of "J/..", "J/../undo" or "": exit 2 as -u gives, not "does not exist" (exit 1)
    for (const cmd of ['restore', 'release', 'reapply'])
      for (const [given, why] of [
        [`${j}/..`, /a path with "\.\." is not used/],
        [`${j}/../undo`, /a path with "\.\." is not used/],
        ['', /the journal path is empty/],
      ] as const) {
        const r = await cli(root, [cmd, given]);
        assert.equal(r.code, 2, `${cmd} ${given}: ${r.stderr}`);
        assert.match(r.stderr, why, `${cmd} ${given}`);
      }
    assert.equal(treeHash(root), masked);
    assert.equal(fs.readFileSync(j, 'utf8'), text);
    // the same file named as it is restores
    assert.equal((await cli(root, ['restore', j])).code, 0);
    assert.equal(treeHash(root), before);
  });

  it('release and restore of a registered isolation whose journal is gone refuse JOURNAL/ too (exit 2)', async () => {
    const root = buildFixture('ryzen-5950x');
    const d = tmp();
    fs.chmodSync(d, 0o700);
    const j = path.join(d, 'vm1');
    assert.equal((await cli(root, ['-u', j, 'isolate', 'C8-15'])).code, 0);
    fs.rmSync(j);
    const isolated = treeHash(root);
    fs.mkdirSync(path.join(d, 'x'));
    for (const cmd of ['release', 'restore'])
      for (const [given, why] of [
        [`${j}/`, /names a directory/],
        [`${j}/.`, /names a directory/],
        [`${d}/x/../vm1`, /a path with "\.\." is not used/],
      ] as const) {
        const r = await cli(root, [cmd, given]);
        assert.equal(r.code, 2, `${cmd} ${given}: ${r.stderr}`);
        assert.match(r.stderr, why);
      }
    assert.equal(treeHash(root), isolated, 'nothing released');
    // named as it was, the isolation is released (its own changes cannot be undone: the journal is gone)
    const r = await cli(root, ['release', j]);
    assert.equal(r.code, 0, r.stderr);
    assert.notEqual(treeHash(root), isolated);
  });

  it('journalHead: the header and the restored mark from the first and last complete lines', () => {
    const f = path.join(tmp(), 'undo');
    const j = openJournal(f, opts);
    j.record({ kind: 'write', files: [['/proc/irq/1/smp_affinity_list', '0-7']] });
    j.close();
    assert.deepEqual(
      { boot: journalHead(f).header.bootId, restored: journalHead(f).restored },
      { boot: 'boot-a', restored: false },
    );
    markRestored(f, false);
    assert.equal(journalHead(f).restored, true);
    // a torn line after the mark is ignored (as a whole read ignores it)
    fs.appendFileSync(f, '{"t":"rec","ru');
    assert.equal(journalHead(f).restored, true);
    assert.equal(readJournalFile(f).restored, true);
    // not a journal: refused as a whole read refuses it
    const g = path.join(tmp(), 'undo');
    fs.writeFileSync(g, '{"t":"restored"}\n');
    assert.throws(() => journalHead(g), UsageError);
  });

  it('journalHead agrees with a whole read: blank lines after the mark are skipped; a malformed mark is none', () => {
    const f = path.join(tmp(), 'undo');
    const j = openJournal(f, opts);
    j.record({ kind: 'write', files: [['/proc/irq/1/smp_affinity_list', '0-7']] });
    j.close();
    markRestored(f, false);
    fs.appendFileSync(f, '\n  \n\r\n');
    assert.equal(readJournalFile(f).restored, true);
    assert.equal(journalHead(f).restored, true);
    // a last line that says "restored" in a way a whole read refuses (no time): not the mark
    const g = path.join(tmp(), 'undo');
    openJournal(g, opts).close();
    fs.appendFileSync(g, '{"t":"restored"}\n');
    assert.throws(() => readJournalFile(g), UsageError);
    assert.equal(journalHead(g).restored, false);
  });

  it('a baseline of threads journalled by the list time: the thread that started no later than it', () => {
    const f = path.join(tmp(), 'host');
    const j = openJournal(f, opts);
    j.record({ kind: 'affinity', tasks: [], listed: [[120, '6-11']], listedAt: 500 });
    j.close();
    const b = readBaseline(f, 'boot-a');
    assert.equal(b.hasAffinities, true);
    assert.equal(b.affinity(120, 499), '6-11');
    assert.equal(b.affinity(120, 500), '6-11');
    assert.equal(b.affinity(120, 501), undefined, 'a reused tid (started after the list) has none');
    assert.equal(b.affinity(121, 10), undefined);
  });

  it('a baseline is the first entry journalled for a thread, by list time or by start time, in journal order', () => {
    const f = path.join(tmp(), 'host');
    const j = openJournal(f, opts);
    // the first isolate moves kswapd1 (tid 120, started at tick 450) and journals its node mask by the list time
    j.record({ kind: 'affinity', tasks: [], listed: [[120, '6-11']], listedAt: 500 });
    j.close();
    // a second isolate changes its affinity again and journals what it had then, by its start time
    const j2 = openJournal(f, opts);
    j2.record({ kind: 'affinity', tasks: [[120, 450, '0-5,8-11']] });
    j2.record({ kind: 'affinity', tasks: [], listed: [[120, '0-5']], listedAt: 600 });
    j2.close();
    const b = readBaseline(f, 'boot-a');
    assert.equal(b.affinity(120, 450), '6-11', 'the mask before the first isolate');
    // a thread started after the first list (a reused tid) has the first entry that names it
    assert.equal(b.affinity(120, 550), '0-5');
  });

  it('the host journal: a restored one is set aside and gives no baseline without its records being validated', () => {
    const f = path.join(tmp(), 'host');
    const j = openJournal(f, opts);
    j.record({ kind: 'affinity', tasks: [[100, 5, '0-7']] });
    j.close();
    assert.equal(readBaseline(f, 'boot-a').affinity(100, 5), '0-7');
    assert.equal(readBaseline(f, 'boot-b').hasAffinities, false);
    markRestored(f, false);
    // a record line no schema accepts, before the mark: only a whole read would see it
    const lines = fs.readFileSync(f, 'utf8').split('\n');
    lines.splice(2, 0, JSON.stringify({ t: 'rec', run: 1, rec: { kind: 'nonsense' } }));
    fs.writeFileSync(f, lines.join('\n'));
    assert.throws(() => readJournalFile(f), UsageError);
    assert.equal(readBaseline(f, 'boot-a').hasAffinities, false);
    openHostJournal(f, opts).close();
    assert.ok(fs.existsSync(`${f}.old`), 'set aside');
    assert.equal(readJournalFile(f).restored, false);
  });
});
