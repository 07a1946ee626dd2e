// A journal path that cannot be looked at (lstat fails with EACCES, as for a user who is not root) is said to be
// unreadable, never taken for a missing journal (which a run would then judge as a new one to create); and a run
// without root believes root's files (its trust rule: root's or its own user's), so that it says "run as root"
// rather than calling root's journal untrusted.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { buildFixture } from '../fixtures/build.ts';
import { cli } from '../support/cli.ts';
import { treeHash } from '../support/tree.ts';
import { fakeSystemd } from '../support/systemd.ts';
import { asNobody, wrapped } from '../support/as-user.ts';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import * as v from 'valibot';
import { StatusJson } from '../../src/report/json-schema.ts';

const nodeFs = createRequire(import.meta.url)('node:fs') as typeof fs;

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

describe('a journal that cannot be looked at is not a missing one', { skip: NOT_ROOT }, () => {
  it('-u with such a journal: exit 1, "cannot be read (EACCES)", run as root; not judged as a journal to create', () => {
    const { root, journal } = hiddenJournal();
    // and deeper: a directory below the one it may not search cannot be looked at either; that is no trust verdict
    const deeper = path.join(path.dirname(journal), 'sub/vm.journal');
    for (const j of [journal, deeper]) {
      const r = asNobody(root, ['test/support/sim-main.ts', '-u', j, 'cpuset-modify', '--cpus', 'C0-3', '/']);
      assert.equal(r.status, 1, r.stderr);
      assert.equal(
        r.stderr,
        `vfio-isolate: journal ${j} cannot be read (EACCES)\nhint: must run as root (try sudo)\n`,
      );
    }
  });

  it('status without root: a journal in the run directory it cannot list, spelled with "/./", is not listed again', async () => {
    const root = buildFixture('v2-nocpuset');
    const sd = fakeSystemd(root);
    fs.chmodSync(root, 0o755);
    assert.equal((await cli(root, ['isolate', 'C4-7'], sd.env)).code, 0);
    const dir = path.join(root, 'run/vfio-isolate');
    const r = asNobody(
      root,
      ['test/support/sim-main.ts', '-u', `${dir}/./host.journal`, 'status', '--json', 'C4-7'],
      sd.env,
    );
    const doc = v.parse(StatusJson, JSON.parse(r.stdout));
    assert.deepEqual(
      doc.driftUnchecked?.map((u) => u.journal),
      [dir],
    );
  });

  it('status without root: a root journal it may find but not open is "cannot be read: must run as root"', async () => {
    const root = buildFixture('v2-nocpuset');
    const sd = fakeSystemd(root);
    fs.chmodSync(root, 0o755);
    const dir = path.join(root, 'etc/vfio');
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    const j = path.join(dir, 'vm.journal');
    assert.equal((await cli(root, ['-u', j, 'isolate', 'C4-7'], sd.env)).code, 0);
    assert.equal(fs.statSync(j).mode & 0o777, 0o600);
    const r = asNobody(root, ['test/support/sim-main.ts', '-u', j, 'status', '--json', 'C4-7'], sd.env);
    const doc = v.parse(StatusJson, JSON.parse(r.stdout));
    assert.deepEqual(
      doc.driftUnchecked?.find((u) => u.journal === j),
      { journal: j, why: `journal ${j} cannot be read (EACCES): must run as root (try sudo)` },
      JSON.stringify(doc.driftUnchecked),
    );
  });

  it('journalState says unreadable, and missing only for a path with nothing there', () => {
    const { root, journal } = hiddenJournal();
    fs.symlinkSync('loop', path.join(root, 'loop'));
    const script = `
      import { journalState, journalThere, readBaseline, openHostJournal } from './src/steps/journal.ts';
      const out = {};
      const thrown = (f) => { try { f(); return 'no error'; } catch (e) { return e.name + ': ' + e.message; } };
      // the callers that take JournalMissing alone for "no journal"
      out.baseline = thrown(() => readBaseline(${JSON.stringify(journal)}, 'boot'));
      out.hostJournal = thrown(() => openHostJournal(${JSON.stringify(journal)}, { tool: 't', bootId: 'boot', argv: [] }));
      for (const [name, p] of Object.entries({ hidden: ${JSON.stringify(journal)}, missing: ${JSON.stringify(path.join(root, 'none.journal'))}, underFile: ${JSON.stringify(path.join(root, 'proc/cmdline/x.journal'))}, inLoop: ${JSON.stringify(path.join(root, 'loop/x.journal'))} })) {
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
      // ENOTDIR (a file where a directory should be) and ELOOP (a symlink loop on the way) are nothing there
      underFile: ['missing', 'missing', false],
      inLoop: ['missing', 'missing', false],
      baseline: `CannotRead: journal ${journal} cannot be read (EACCES)`,
      hostJournal: `CannotRead: journal ${journal} cannot be read (EACCES)`,
    });
  });

  it('a dry run without root plans with -u in a directory root owns (it called / untrusted: exit 2)', () => {
    const root = buildFixture('ryzen-5950x');
    fs.chmodSync(root, 0o755);
    const dir = path.join(root, 'etc/vfio');
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    // and in a root-owned sticky directory (as /tmp), which root may create a journal in
    const sticky = path.join(root, 'tmp');
    fs.mkdirSync(sticky, { recursive: true });
    fs.chmodSync(sticky, 0o1777);
    // and in a sticky directory of its own user's (a run without root believes its own user's files)
    const own = path.join(root, 'home/nobody/tmp');
    fs.mkdirSync(own, { recursive: true });
    fs.chownSync(path.dirname(own), 65534, 65534);
    fs.chownSync(own, 65534, 65534);
    fs.chmodSync(own, 0o1777);
    for (const j of [
      path.join(dir, 'vm.journal'),
      path.join(sticky, 'vm.journal'),
      path.join(own, 'vm.journal'),
    ]) {
      const r = asNobody(root, ['test/support/sim-main.ts', '-n', '-u', j, 'isolate', 'C16-23']);
      assert.equal(r.status, 0, `${j}: ${r.stderr}`);
      assert.match(r.stdout, /^Plan \(dry run: nothing was changed\)/);
      assert.equal(fs.existsSync(j), false);
    }
  });

  it('without root, an isolation root made: "must run as root", exit 1 (it said the registry is no JSON, exit 2)', async () => {
    const root = buildFixture('ryzen-5950x');
    fs.chmodSync(root, 0o755);
    const dir = path.join(root, 'etc/vfio');
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    const j = path.join(dir, 'vm.journal');
    assert.equal((await cli(root, ['-u', j, 'isolate', 'C8-15'])).code, 0);
    // the run directory searchable, its registry (0600) not readable
    fs.chmodSync(path.join(root, 'run/vfio-isolate'), 0o755);
    const registry = path.join(root, 'run/vfio-isolate/reservations.json');
    const r = asNobody(root, ['test/support/sim-main.ts', '-n', '-u', j, 'release']);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(
      r.stderr,
      `vfio-isolate: reservation registry ${registry} cannot be read (EACCES)\nhint: must run as root (try sudo)\n`,
    );
  });
});

describe('root that lstat refuses (no CAP_DAC_OVERRIDE) is told the trust verdict, not "cannot be read"', () => {
  const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p));
  const skip = (NOT_ROOT || (!setpriv && 'needs setpriv (util-linux)')) as string | false;
  /** The CLI as root without the capabilities that let root search any directory. */
  const withoutDac = (root: string, args: string[]) =>
    wrapped(
      [
        setpriv!,
        '--inh-caps=-dac_override,-dac_read_search',
        '--bounding-set=-dac_override,-dac_read_search',
        '--',
      ],
      root,
      ['test/support/sim-main.ts', ...args],
    );
  const escaped = (p: string): string => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  /** `args` without the capabilities: exit 2, the journal not trusted because uid 1000 owns `dir`. */
  const assertRefusedFor = (root: string, args: string[], dir: string): void => {
    const r = withoutDac(root, args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(
      r.stderr,
      new RegExp(
        `^vfio-isolate: journal \\S+ is not trusted: ${escaped(dir)} is owned by uid 1000, not by root\n`,
      ),
      args.join(' '),
    );
  };

  it(
    '-u or restore in (or below) a directory another user owns (0700): exit 2 naming that directory, nothing changed',
    { skip },
    () => {
      const root = buildFixture('ryzen-5950x');
      const alice = path.join(root, 'home/alice');
      fs.mkdirSync(path.join(alice, 'vms'), { recursive: true, mode: 0o700 });
      fs.chownSync(alice, 1000, 1000);
      fs.chownSync(path.join(alice, 'vms'), 1000, 1000);
      fs.chmodSync(alice, 0o700);
      const h = treeHash(root);
      for (const j of [path.join(alice, 'vm.journal'), path.join(alice, 'vms/vm.journal')]) {
        for (const args of [
          ['-u', j, 'isolate', 'C16-23'],
          ['restore', j],
        ])
          assertRefusedFor(root, args, alice);
      }
      assert.equal(treeHash(root), h);
    },
  );

  it(
    'release and restore of a registered journal whose directory another user took since: exit 2 naming it',
    { skip },
    async () => {
      const root = buildFixture('ryzen-5950x');
      const srv = path.join(root, 'srv');
      fs.mkdirSync(srv, { mode: 0o755 });
      const j = path.join(srv, 'vm.journal');
      assert.equal((await cli(root, ['-u', j, 'isolate', 'C16-23'])).code, 0);
      fs.chownSync(srv, 1000, 1000);
      fs.chmodSync(srv, 0o700);
      for (const args of [
        ['-n', 'release', j],
        ['-n', 'restore', j],
        ['-n', '-u', j, 'release'],
      ])
        assertRefusedFor(root, args, srv);
    },
  );

  it(
    'a root directory root may not search (mode 0): exit 1, "cannot be read", and no "run as root" hint to root',
    { skip },
    () => {
      const root = buildFixture('ryzen-5950x');
      const shut = path.join(root, 'shut');
      fs.mkdirSync(shut);
      fs.chmodSync(shut, 0);
      const j = path.join(shut, 'vm.journal');
      const r = withoutDac(root, ['-u', j, 'isolate', 'C16-23']);
      assert.equal(r.status, 1, r.stderr);
      assert.equal(r.stderr, `vfio-isolate: journal ${j} cannot be read (EACCES)\n`);
    },
  );
});

describe('the registry', () => {
  it('removed between its lstat and its read (the last release racing a status): no reservations, not an error', async () => {
    const root = buildFixture('ryzen-5950x');
    assert.equal((await cli(root, ['isolate', 'C8-15'])).code, 0);
    const registry = path.join(root, 'run/vfio-isolate/reservations.json');
    assert.ok(fs.existsSync(registry));
    const read = nodeFs.readFileSync;
    nodeFs.readFileSync = ((p: fs.PathOrFileDescriptor, o?: unknown) => {
      if (p === registry) throw Object.assign(new Error(`ENOENT: ${registry}`), { code: 'ENOENT' });
      return (read as (p: fs.PathOrFileDescriptor, o?: unknown) => unknown)(p, o);
    }) as typeof fs.readFileSync;
    syncBuiltinESMExports();
    let r;
    try {
      r = await cli(root, ['status', '--json', 'C8-15']);
    } finally {
      nodeFs.readFileSync = read;
      syncBuiltinESMExports();
    }
    const doc = v.parse(StatusJson, JSON.parse(r.stdout));
    assert.deepEqual(doc.reservations, []);
    assert.ok(!doc.notVisible.some((n) => /registry/.test(n)), JSON.stringify(doc.notVisible));
  });
});
