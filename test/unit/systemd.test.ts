/**
 * systemd as the owner of the cgroup v2 tree, on fixture machines with a fake systemctl (test/support/
 * fake-systemctl.ts) that realizes AllowedCPUs= like systemd and drops cpuset files written behind its back on
 * daemon-reload. isolate and the compatible cpuset commands go through systemd for units, restore/release put the
 * properties back, failures roll back, and status names drift that `reapply` repairs.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import * as v from 'valibot';
import { RuntimeFailure } from '../../src/errors.ts';
import { Kernel } from '../../src/kernel/kernel.ts';
import { SimFs } from '../support/simfs.ts';
import { runSystemctl, showUnits, unitOfCgroup } from '../../src/kernel/systemd.ts';
import { StatusJson } from '../../src/report/json-schema.ts';
import { UnitRecord } from '../../src/steps/records.ts';
import { buildFixture } from '../fixtures/build.ts';
import { cli } from '../support/cli.ts';
import { asNobody } from '../support/as-user.ts';
import { fakeSystemd, flakySystemctl, type FakeSystemd } from '../support/systemd.ts';
import { diffTrees, sysExists, sysRead, treeFiles, treeHash } from '../support/tree.ts';

const CG = 'sys/fs/cgroup';
const sets = (sd: FakeSystemd): string[] => sd.calls().filter((c) => c.startsWith('set-property'));
const cpusOf = (sd: FakeSystemd): Record<string, string> =>
  Object.fromEntries(Object.entries(sd.state().units).map(([n, u]) => [n, u.cpus]));
function journal(): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-sd-j-')), 'undo');
}
function records(file: string): { kind: string }[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { t: string; rec?: { kind: string } })
    .filter((l) => l.t === 'rec')
    .map((l) => l.rec!);
}

describe('isolate on a systemd machine (v2, cpuset not enabled at boot)', () => {
  it('restricts the top-level units through systemd; a daemon-reload keeps it; release restores properties and tree', async () => {
    const root = buildFixture('v2-nocpuset');
    const sd = fakeSystemd(root);
    const before = treeFiles(root);

    const plan = await cli(root, ['-n', 'isolate', 'C4-7'], sd.env);
    assert.equal(plan.code, 0, plan.stderr);
    for (const unit of ['init.scope', 'system.slice', 'user.slice'])
      assert.match(plan.stdout, new RegExp(`systemctl set-property --runtime -- ${unit} AllowedCPUs=0-3 `));
    assert.doesNotMatch(plan.stdout, /machine\.slice/);
    assert.doesNotMatch(plan.stdout, /cgroup\.subtree_control|system\.slice\/cpuset/);
    assert.deepEqual(sets(sd), [], 'a dry run only asks systemd');
    assert.deepEqual(diffTrees(before, treeFiles(root)), []);

    // isolations compose: host-wide restrictions are journalled in the host journal the last release restores
    const j = path.join(root, 'run/vfio-isolate/host.journal');
    const r = await cli(root, ['isolate', 'C4-7'], sd.env);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(sets(sd), [
      'set-property --runtime -- init.scope AllowedCPUs=0-3',
      'set-property --runtime -- system.slice AllowedCPUs=0-3',
      'set-property --runtime -- user.slice AllowedCPUs=0-3',
    ]);
    const recs = records(j);
    assert.equal(recs.filter((x) => x.kind === 'unit').length, 3);
    assert.equal(recs.filter((x) => x.kind === 'controller').length, 0, 'no raw +cpuset');
    assert.ok(
      !JSON.stringify(recs).includes('cpuset.cpus'),
      'no cpuset file of a unit is written by the tool',
    );
    assert.equal(sysRead(root, `${CG}/system.slice/cpuset.cpus`), '0-3');

    assert.equal(sd.run('daemon-reload').code, 0);
    assert.equal(sysRead(root, `${CG}/system.slice/cpuset.cpus`), '0-3', 'survives daemon-reload');
    assert.equal(sysRead(root, `${CG}/user.slice/cpuset.cpus`), '0-3');
    const st = await cli(root, ['status', 'C4-7'], sd.env);
    assert.doesNotMatch(st.stdout, /Drift/);

    const rel = await cli(root, ['release'], sd.env);
    assert.equal(rel.code, 0, rel.stderr);
    assert.deepEqual(
      Object.values(cpusOf(sd)).filter((c) => c !== ''),
      [],
      'every unit has its previous (empty) AllowedCPUs again',
    );
    assert.deepEqual(diffTrees(before, treeFiles(root)), []);
  });

  it('the old direct writes vanish on daemon-reload; the same restriction through systemd does not', async () => {
    const root = buildFixture('v2-nocpuset');
    const sd = fakeSystemd(root);
    // Without a systemctl (the kernel layer knows none), cpuset-modify writes cgroupfs as 0.5.2 did.
    assert.equal((await cli(root, ['cpuset-modify', '--cpus', 'C0-3', '/system.slice'])).code, 0);
    assert.equal(sysRead(root, `${CG}/system.slice/cpuset.cpus`), '0-3');
    sd.run('daemon-reload');
    assert.equal(sysExists(root, `${CG}/system.slice/cpuset.cpus`), false, 'systemd dropped it');

    const r = await cli(root, ['cpuset-modify', '--cpus', 'C0-3', '/system.slice'], sd.env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '', 'quiet like 0.5.2');
    sd.run('daemon-reload');
    assert.equal(sysRead(root, `${CG}/system.slice/cpuset.cpus`), '0-3', 'kept through systemd');
  });
});

describe('reset on a systemd machine', () => {
  it("lifts the units' AllowedCPUs through systemd (widened, then emptied), writes no unit cpuset file, and the tree is as before", async () => {
    const root = buildFixture('v2-nocpuset');
    const sd = fakeSystemd(root);
    const before = treeFiles(root);
    assert.equal((await cli(root, ['isolate', 'C4-7'], sd.env)).code, 0);
    // The journals are lost (e.g. /run wiped by hand): reset must still give the machine back.
    fs.rmSync(path.join(root, 'run/vfio-isolate'), { recursive: true, force: true });
    const calls = sd.calls().length;
    const j = journal();
    const plan = await cli(root, ['-n', 'reset'], sd.env);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /systemctl set-property --runtime -- system\.slice AllowedCPUs=0-7/);
    const r = await cli(root, ['-u', j, 'reset'], sd.env);
    assert.equal(r.code, 0, r.stderr);
    const after = sd
      .calls()
      .slice(calls)
      .filter((c) => c.startsWith('set-property'));
    for (const unit of ['init.scope', 'system.slice', 'user.slice']) {
      const mine = after.filter((c) => c.includes(` ${unit} `));
      assert.deepEqual(mine, [
        `set-property --runtime -- ${unit} AllowedCPUs=0-7`,
        `set-property --runtime -- ${unit} AllowedCPUs=`,
      ]);
    }
    assert.deepEqual(
      Object.values(cpusOf(sd)).filter((c) => c !== ''),
      [],
      'every AllowedCPUs= empty',
    );
    assert.ok(
      !fs.readFileSync(j, 'utf8').includes('cpuset.cpus"'),
      'no cpuset file of a unit is written by reset',
    );
    assert.deepEqual(
      diffTrees(before, treeFiles(root)).filter((d) => d.includes(CG)),
      [],
      'the cgroup tree is as before',
    );
    sd.run('daemon-reload');
    assert.equal(sysExists(root, `${CG}/system.slice/cpuset.cpus`), false, 'systemd keeps it lifted');
  });
});

describe('compatible cpuset commands on a systemd machine', () => {
  it('cpuset-modify of units (nested too) goes through systemd; restore puts the exact properties back', async () => {
    const root = buildFixture('v2-nocpuset');
    const sd = fakeSystemd(root);
    const before = treeFiles(root);
    const j = journal();
    const r = await cli(
      root,
      [
        '-u',
        j,
        'cpuset-modify',
        '--cpus',
        'C0-3',
        '--mems',
        'N0',
        '/system.slice',
        'cpuset-modify',
        '--cpus',
        'C0-1',
        '/system.slice/cron.service',
      ],
      sd.env,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(sets(sd), [
      'set-property --runtime -- system.slice AllowedCPUs=0-3 AllowedMemoryNodes=0',
      'set-property --runtime -- cron.service AllowedCPUs=0-1',
    ]);
    assert.equal(sysRead(root, `${CG}/system.slice/cron.service/cpuset.cpus`), '0-1');
    assert.equal((await cli(root, ['restore', j], sd.env)).code, 0);
    const u = sd.state().units;
    assert.deepEqual(
      [u['system.slice']!.cpus, u['system.slice']!.mems, u['cron.service']!.cpus],
      ['', '', ''],
    );
    assert.deepEqual(diffTrees(before, treeFiles(root)), []);
  });

  it('restore puts back a unit property that was set before (not just "empty")', async () => {
    const root = buildFixture('v2-nocpuset');
    const sd = fakeSystemd(root);
    assert.equal(sd.run('set-property', '--runtime', '--', 'user.slice', 'AllowedCPUs=0-5').code, 0);
    const j = journal();
    assert.equal(
      (await cli(root, ['-u', j, 'cpuset-modify', '--cpus', 'C0-1', '/user.slice'], sd.env)).code,
      0,
    );
    assert.equal(cpusOf(sd)['user.slice'], '0-1');
    assert.equal((await cli(root, ['restore', j], sd.env)).code, 0);
    assert.equal(cpusOf(sd)['user.slice'], '0-5');
    assert.equal(sysRead(root, `${CG}/user.slice/cpuset.cpus`), '0-5');
  });

  it('a unit systemd does not have: exit 1 before any change; a cgroup that is no unit: direct write', async () => {
    const root = buildFixture('v2-nocpuset');
    const sd = fakeSystemd(root);
    fs.mkdirSync(path.join(root, CG, 'system.slice/ghost.service'));
    const h = treeHash(root);
    const bad = await cli(root, ['cpuset-modify', '--cpus', 'C0-3', '/system.slice/ghost.service'], sd.env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /systemd has no such unit \(LoadState=not-found\)/);
    assert.equal(treeHash(root), h);
    assert.deepEqual(sets(sd), []);

    // A cgroup that maps to no unit (below a scope: a delegated subtree such as libvirt's vCPU cgroups).
    const vcpu = '/machine.slice/machine-qemu\\x2d1\\x2dvm.scope/libvirt/vcpu0';
    const scope = '/machine.slice/machine-qemu\\x2d1\\x2dvm.scope';
    const mk = await cli(root, [
      'cpuset-create',
      scope,
      'cpuset-create',
      `${scope}/libvirt`,
      'cpuset-create',
      '--cpus',
      'C4',
      vcpu,
    ]);
    assert.equal(mk.code, 0, mk.stderr);
    const r = await cli(root, ['cpuset-modify', '--cpus', 'C5', vcpu], sd.env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sysRead(root, `${CG}${vcpu}/cpuset.cpus`), '5');
    assert.deepEqual(sets(sd), [], 'no systemd call for a delegated cgroup');
  });

  it('cpuset-delete of a unit is refused; cpuset-create makes a plain cgroup and says systemd may drop it', async () => {
    const root = buildFixture('v2-nocpuset');
    const sd = fakeSystemd(root);
    const h = treeHash(root);
    const del = await cli(root, ['cpuset-delete', '/system.slice/cron.service'], sd.env);
    assert.equal(del.code, 1);
    assert.match(del.stderr, /cgroup of systemd unit cron\.service; systemd owns it/);
    assert.equal(treeHash(root), h);
    const mk = await cli(root, ['cpuset-create', '--cpus', 'C0-1', '/host.slice'], sd.env);
    assert.equal(mk.code, 0, mk.stderr);
    assert.match(mk.stderr, /\/host\.slice is a plain cgroup, not a systemd unit/);
    assert.equal(sysRead(root, `${CG}/host.slice/cpuset.cpus`), '0-1');
    assert.deepEqual(sets(sd), []);
  });
});

describe('systemctl failures, and systemd that does not manage the tree', () => {
  it('systemctl failing mid-way: one-line error, the units changed so far are put back, exit 1', async () => {
    const root = buildFixture('v2-nocpuset');
    const sd = fakeSystemd(root);
    sd.update((s) => (s.fail = 'user.slice'));
    const before = treeFiles(root);
    const r = await cli(root, ['isolate', 'C4-7'], sd.env);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^vfio-isolate: isolate: restrict systemd unit user\.slice .*systemctl set-property --runtime -- user\.slice AllowedCPUs=0-3 failed: Failed to set unit properties on user\.slice: Access denied; the changes of this run were undone\n/,
    );
    assert.deepEqual(
      Object.values(cpusOf(sd)).filter((c) => c !== ''),
      [],
    );
    assert.deepEqual(diffTrees(before, treeFiles(root)), []);
  });

  it('systemctl that hangs is killed after the timeout: one-line RuntimeFailure', () => {
    const root = buildFixture('v2-nocpuset');
    const sd = fakeSystemd(root);
    sd.update((s) => (s.hang = true));
    const k = new Kernel(new SimFs(root), { systemctl: sd.bin, systemctlTimeoutMs: 1500, euid: 0 });
    const t0 = Date.now();
    assert.throws(
      () => runSystemctl(k, ['set-property', '--runtime', '--', 'system.slice', 'AllowedCPUs=0-3']),
      (e: unknown) =>
        e instanceof RuntimeFailure &&
        e.message ===
          'systemctl set-property --runtime -- system.slice AllowedCPUs=0-3 timed out after 1.5 s',
    );
    assert.ok(Date.now() - t0 < 20000);
  });

  it('systemctl killed by a signal of its own (a crash) is said to be, not to have timed out', () => {
    const root = buildFixture('v2-nocpuset');
    const bin = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-crash-systemctl-')), 'systemctl');
    fs.writeFileSync(bin, '#!/bin/sh\nkill -SEGV $$\n', { mode: 0o755 });
    const k = new Kernel(new SimFs(root), { systemctl: bin, systemctlTimeoutMs: 10000, euid: 0 });
    assert.throws(
      () => runSystemctl(k, ['show', '-p', 'Id', '--', 'system.slice']),
      (e: unknown) =>
        e instanceof RuntimeFailure &&
        e.message === 'systemctl show -p Id -- system.slice failed: killed by SIGSEGV',
    );
  });

  it('systemd present but not managing the hierarchy (a container): direct writes, one warning', async () => {
    const root = buildFixture('v2-nocpuset');
    const sd = fakeSystemd(root);
    fs.writeFileSync(path.join(root, 'proc/1/cgroup'), '0::/\n');
    const r = await cli(
      root,
      ['cpuset-modify', '--cpus', 'C0-3', '/system.slice', 'cpuset-modify', '--cpus', 'C0-3', '/user.slice'],
      sd.env,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr.split('\n').filter(Boolean).length, 1, r.stderr);
    assert.match(r.stderr, /warning: systemd runs but does not manage \/sys\/fs\/cgroup \(PID 1 is not in/);
    assert.equal(sysRead(root, `${CG}/system.slice/cpuset.cpus`), '0-3');
    assert.deepEqual(sd.calls(), []);
  });
});

describe('drift', () => {
  it('status names a lifted restriction with its journal and time; reapply sets it again, idempotent and journalled', async () => {
    const root = buildFixture('v2-nocpuset');
    const sd = fakeSystemd(root);
    const before = treeFiles(root);
    // isolations compose: host-wide restrictions are journalled in the host journal the last release restores
    const j = path.join(root, 'run/vfio-isolate/host.journal');
    assert.equal((await cli(root, ['isolate', 'C4-7'], sd.env)).code, 0);
    // someone lifts it (e.g. systemctl set-property system.slice AllowedCPUs= by hand)
    assert.equal(sd.run('set-property', '--runtime', '--', 'system.slice', 'AllowedCPUs=').code, 0);
    const st = await cli(root, ['status', 'C4-7'], sd.env);
    assert.equal(st.code, 1);
    assert.match(
      st.stdout,
      new RegExp(
        `systemd unit system\\.slice AllowedCPUs=0-3 applied by ${j.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} at \\d{4}-\\d\\d-\\d\\dT[^;]+; now missing \\(AllowedCPUs=\\)\\n    fix: vfio-isolate reapply ${j.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n`,
      ),
    );
    assert.doesNotMatch(st.stdout, /unit (init\.scope|user\.slice) /);
    const js = await cli(root, ['status', '--json', 'C4-7'], sd.env);
    const doc = JSON.parse(js.stdout) as { ok: boolean; drift: { unit: string; now: string }[] };
    assert.equal(doc.ok, false);
    assert.deepEqual(
      doc.drift.map((d) => [d.unit, d.now]),
      [['system.slice', '']],
    );

    const n = sets(sd).length;
    const re = await cli(root, ['reapply'], sd.env);
    assert.equal(re.code, 0, re.stderr);
    assert.deepEqual(sets(sd).slice(n), ['set-property --runtime -- system.slice AllowedCPUs=0-3']);
    assert.equal(cpusOf(sd)['system.slice'], '0-3');
    assert.equal(records(j).filter((x) => x.kind === 'unit').length, 4, 'the re-application is journalled');
    const text = fs.readFileSync(j, 'utf8');
    const again = await cli(root, ['reapply'], sd.env);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(sets(sd).length, n + 1, 'nothing drifted: nothing set');
    assert.equal(fs.readFileSync(j, 'utf8'), text, 'and nothing journalled');
    assert.equal((await cli(root, ['status', 'C4-7'], sd.env)).stdout.includes('Drift'), false);

    assert.equal((await cli(root, ['release'], sd.env)).code, 0);
    assert.deepEqual(
      Object.values(cpusOf(sd)).filter((c) => c !== ''),
      [],
    );
    assert.deepEqual(diffTrees(before, treeFiles(root)), []);
  });
});

/** `status --json C4-7` on `root`: the document, validated against its schema, with the exit code and stderr. */
async function statusDoc(
  root: string,
  env: Record<string, string>,
): Promise<{ doc: v.InferOutput<typeof StatusJson>; code: number; stdout: string; stderr: string }> {
  const r = await cli(root, ['status', '--json', 'C4-7'], env);
  return { ...r, doc: v.parse(StatusJson, JSON.parse(r.stdout)) };
}

/** C4-7 isolated on v2 under a fake systemd, then system.slice's AllowedCPUs= lifted behind the tool's back. */
async function driftedIsolation(): Promise<{ root: string; sd: FakeSystemd; j: string }> {
  const root = buildFixture('v2-nocpuset');
  const sd = fakeSystemd(root);
  assert.equal((await cli(root, ['isolate', 'C4-7'], sd.env)).code, 0);
  assert.equal(sd.run('set-property', '--runtime', '--', 'system.slice', 'AllowedCPUs=').code, 0);
  return { root, sd, j: path.join(root, 'run/vfio-isolate/host.journal') };
}

/** status reads every journal and finds system.slice's restriction gone. */
async function assertAllRead(root: string, sd: FakeSystemd): Promise<void> {
  const { doc } = await statusDoc(root, sd.env);
  assert.equal(doc.driftUnchecked, undefined);
  assert.equal(doc.drift?.[0]?.unit, 'system.slice');
}

describe('drift and a journal another user could have written', () => {
  it('status does not read it: one warning naming it, no systemd query of its units, no drift from it', async () => {
    const { root, sd, j } = await driftedIsolation();
    assert.match(
      (await cli(root, ['status', 'C4-7'], sd.env)).stdout,
      /Drift/,
      'drift while the journal is root’s',
    );
    fs.chownSync(j, 1000, 1000);
    const shows = () => sd.calls().filter((c) => c.startsWith('show')).length;
    const n = shows();
    const st = await cli(root, ['status', 'C4-7'], sd.env);
    assert.doesNotMatch(st.stdout, /Drift/);
    assert.equal(st.stderr.match(/not read for drift/g)?.length, 1, st.stderr);
    assert.match(st.stderr, new RegExp(`journal ${j.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not trusted`));
    assert.equal(shows(), n, 'no unit of it asked about');
    // --json: the document says which journal was not read and why, valid against its schema; ok stays what the
    // leaks say (this fixture leaks nothing onto C4-7)
    const js = await statusDoc(root, sd.env);
    const doc = js.doc;
    assert.deepEqual(
      doc.driftUnchecked?.map((u) => u.journal),
      [j],
    );
    assert.match(doc.driftUnchecked![0]!.why, /is not trusted: .* owned by uid 1000/);
    assert.equal(doc.drift, undefined);
    assert.equal(doc.driftError, undefined);
    assert.equal(doc.ok, js.code === 0);
    fs.chownSync(j, 0, 0);
    // trusted again: read, and nothing is left unchecked
    await assertAllRead(root, sd);
  });

  it('a journal of root that status cannot read (a bad record) is named as unchecked, not passed over', async () => {
    const { root, sd, j } = await driftedIsolation();
    const text = fs.readFileSync(j, 'utf8');
    fs.appendFileSync(j, JSON.stringify({ t: 'rec', run: 1, rec: { kind: 'bogus' } }) + '\n');
    const lines = fs.readFileSync(j, 'utf8').split('\n').length - 1;
    const js = await statusDoc(root, sd.env);
    const doc = js.doc;
    assert.equal(doc.drift, undefined, 'its restrictions were not read');
    assert.deepEqual(
      doc.driftUnchecked?.map((u) => u.journal),
      [j],
    );
    assert.match(doc.driftUnchecked![0]!.why, new RegExp(`line ${lines}: `));
    const st = await cli(root, ['status', 'C4-7'], sd.env);
    assert.match(st.stderr, new RegExp(`line ${lines}: .*; not read for drift`));
    // read again once it is whole: the drift is found
    fs.writeFileSync(j, text);
    await assertAllRead(root, sd);
  });

  it('one journal spelled two ways (-u DIR//FILE, DIR/./FILE) is one entry; a spelling with ".." is its own', async () => {
    const { root, sd, j } = await driftedIsolation();
    fs.appendFileSync(j, JSON.stringify({ t: 'rec', run: 1, rec: { kind: 'bogus' } }) + '\n');
    const dir = path.dirname(j);
    for (const other of [`${dir}//host.journal`, `${dir}/./host.journal`]) {
      const r = await cli(root, ['-u', other, 'status', '--json', 'C4-7'], sd.env);
      const doc = v.parse(StatusJson, JSON.parse(r.stdout));
      assert.deepEqual(
        doc.driftUnchecked?.map((u) => u.journal),
        [other],
        `${other}: listed once, as given first`,
      );
    }
    const up = `${dir}/sub/../host.journal`;
    const r = await cli(root, ['-u', up, 'status', '--json', 'C4-7'], sd.env);
    const doc = v.parse(StatusJson, JSON.parse(r.stdout));
    assert.deepEqual(
      doc.driftUnchecked?.map((u) => u.journal),
      [up, j],
      'the ".." spelling is refused on its own; the file it names is still read',
    );
  });

  it(
    'status without root names the run directory it cannot list as unchecked, where it said nothing',
    { skip: process.geteuid?.() !== 0 && 'needs root, to run status as uid 65534' },
    async () => {
      const { root, sd } = await driftedIsolation();
      // the fixture readable by others (its own directories are), but /run/vfio-isolate (0700, as the tool makes it)
      fs.chmodSync(root, 0o755);
      const dir = path.join(root, 'run/vfio-isolate');
      assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
      // and a journal given with -u in another directory it may not search
      const hidden = path.join(root, 'private/vm.journal');
      fs.mkdirSync(path.dirname(hidden), { mode: 0o700 });
      fs.writeFileSync(hidden, '', { mode: 0o600 });
      const r = asNobody(
        root,
        ['test/support/sim-main.ts', '-u', hidden, 'status', '--json', 'C4-7'],
        sd.env,
      );
      const doc = v.parse(StatusJson, JSON.parse(r.stdout));
      assert.deepEqual(doc.driftUnchecked, [
        { journal: dir, why: `run directory ${dir} cannot be read (EACCES): must run as root (try sudo)` },
        { journal: hidden, why: `journal ${hidden} cannot be read (EACCES): must run as root (try sudo)` },
      ]);
      assert.equal(doc.drift, undefined);
      assert.match(
        r.stderr,
        /run\/vfio-isolate cannot be read \(EACCES\): must run as root \(try sudo\); not read for drift/,
      );
      // nor is the isolation passed over: the registry it cannot read is named among what is not visible
      assert.deepEqual(doc.reservations, []);
      assert.ok(
        doc.notVisible.some((n) =>
          /^the active isolations: reservation registry .* cannot be read \(EACCES\)$/.test(n),
        ),
        JSON.stringify(doc.notVisible),
      );
      // as root, the same status finds the drift
      await assertAllRead(root, sd);
    },
  );

  it('status --json names a drift check that failed (driftError) and stays valid; the warning is on stderr', async () => {
    const root = buildFixture('v2-nocpuset');
    const sd = fakeSystemd(root);
    assert.equal((await cli(root, ['isolate', 'C4-7'], sd.env)).code, 0);
    // systemd does not answer `show` (the bus is gone): everything else goes to the fake
    const bin = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-systemctl-')), 'systemctl');
    fs.writeFileSync(
      bin,
      `#!/bin/sh\nif [ "$1" = show ]; then echo "Failed to connect to bus" >&2; exit 1; fi\nexec '${sd.bin}' "$@"\n`,
      { mode: 0o755 },
    );
    const js = await statusDoc(root, { VFIO_ISOLATE_SYSTEMCTL: bin });
    const doc = js.doc;
    assert.match(doc.driftError ?? '', /systemctl show .* failed: Failed to connect to bus/);
    assert.equal(doc.drift, undefined);
    assert.match(js.stderr, /warning: could not check for drift: systemctl show/);
    // answered again: no error in the document
    const ok = (await statusDoc(root, sd.env)).doc;
    assert.equal(ok.driftError, undefined);
  });

  it('a file name another user chose reaches the terminal with its control characters escaped', async () => {
    // a /run/vfio-isolate others may write (here root-owned and sticky, which checkJournalTrust accepts for a
    // journal; the lock refuses it, so isolate and release do not run, but status does: it is what one runs to
    // look): anyone may add a file there, with a name that carries a terminal escape sequence and a line break
    const { root, sd } = await driftedIsolation();
    const dir = path.join(root, 'run/vfio-isolate');
    fs.chmodSync(dir, 0o1777);
    const evil = path.join(
      dir,
      'x\x1b]0;owned\x07\x1b[2J\nvfio-isolate: all clear\x7f\u009b2J\u0085\u2028.journal',
    );
    fs.writeFileSync(evil, '');
    fs.chownSync(evil, 1000, 1000);
    try {
      const st = await cli(root, ['status', 'C4-7'], sd.env);
      assert.match(st.stdout, /Drift/, 'root’s journal in the sticky directory is still read');
      const warning = st.stderr.split('\n').filter((l) => /not read for drift/.test(l));
      assert.equal(warning.length, 1, st.stderr);
      // eslint-disable-next-line no-control-regex
      assert.doesNotMatch(st.stderr, /[\x00-\x09\x0b-\x1f\x7f]/, 'no control character but line ends');
      assert.doesNotMatch(
        st.stderr,
        /^vfio-isolate: all clear/m,
        'the name does not start a line of its own',
      );
      assert.ok(
        warning[0]!.includes(
          'x\\x1b]0;owned\\x07\\x1b[2J\\nvfio-isolate: all clear\\x7f\\x9b2J\\x85\\u2028.journal',
        ),
        st.stderr,
      );
      assert.doesNotMatch(st.stderr, /[\u007f-\u009f\u2028\u2029]/, 'nor DEL, C1 or a line separator');
      // --json: the document on stdout, parseable; the warning, escaped alike, on stderr only
      const js = await cli(root, ['status', '--json', 'C4-7'], sd.env);
      const doc = JSON.parse(js.stdout) as { ok: boolean; drift: { unit: string }[] };
      assert.equal(doc.ok, false);
      assert.deepEqual(
        doc.drift.map((d) => d.unit),
        ['system.slice'],
      );
      assert.doesNotMatch(js.stdout, /not read for drift/);
      assert.equal(js.stderr, st.stderr);
      // the document names the file as it is, written with \u escapes: no raw control character reaches stdout
      // eslint-disable-next-line no-control-regex
      assert.doesNotMatch(js.stdout, /[\x00-\x09\x0b-\x1f\u007f-\u009f\u2028\u2029]/);
      assert.deepEqual(
        (JSON.parse(js.stdout) as { driftUnchecked: { journal: string }[] }).driftUnchecked.map(
          (u) => u.journal,
        ),
        [evil],
      );
    } finally {
      fs.rmSync(evil);
      fs.chmodSync(dir, 0o700);
    }
  });
});

describe('unit names and records', () => {
  it('maps cgroups to units only below slices', () => {
    assert.equal(unitOfCgroup(['system.slice']), 'system.slice');
    assert.equal(unitOfCgroup(['user.slice', 'user-1000.slice', 'session-2.scope']), 'session-2.scope');
    assert.equal(unitOfCgroup(['init.scope']), 'init.scope');
    assert.equal(
      unitOfCgroup(['machine.slice', 'machine-qemu\\x2d1\\x2dvm.scope', 'libvirt', 'vcpu0']),
      undefined,
    );
    assert.equal(
      unitOfCgroup(['user.slice', 'user-1000.slice', 'user@1000.service', 'app.slice']),
      undefined,
      "a user manager's delegated subtree",
    );
    assert.equal(unitOfCgroup(['host']), undefined);
    assert.equal(unitOfCgroup([]), undefined);
  });

  it('a journal record names a plain unit and CPU lists only', () => {
    const ok = { kind: 'unit', unit: 'system.slice', allowedCpus: ['', '0-3'] };
    assert.ok(v.safeParse(UnitRecord, ok).success);
    for (const bad of [
      { ...ok, unit: '../../etc/x.service' },
      { ...ok, unit: 'x.service; reboot' },
      { ...ok, unit: 'x.target' },
      { ...ok, allowedCpus: ['', '0-3 --now'] },
      { ...ok, allowedCpus: ['abc', '0-3'] },
      { ...ok, extra: 1 },
    ])
      assert.equal(v.safeParse(UnitRecord, bad).success, false, JSON.stringify(bad));
  });
});

describe('systemctl show output', () => {
  it('reads CPU sets the way systemd prints them (ranges separated by spaces) as kernel lists', () => {
    const root = buildFixture('v2-nocpuset');
    const bin = path.join(root, 'fake-show');
    fs.writeFileSync(
      bin,
      '#!/bin/sh\nprintf "LoadState=loaded\\nActiveState=active\\nControlGroup=/user.slice\\nAllowedCPUs=0-3 6-7\\nAllowedMemoryNodes=\\n"\n',
      { mode: 0o755 },
    );
    const k = new Kernel(new SimFs(root), { systemctl: bin, euid: 0 });
    const u = showUnits(k, ['user.slice']).get('user.slice')!;
    assert.equal(u.allowedCpus, '0-3,6-7');
    assert.equal(u.allowedMemoryNodes, '');
  });
});

describe('reapply trusts only a journal root alone could have written', () => {
  it('a journal owned by another user: exit 2, nothing asked of systemd', async () => {
    const root = buildFixture('v2-nocpuset');
    const sd = fakeSystemd(root);
    assert.equal((await cli(root, ['isolate', 'C4-7'], sd.env)).code, 0);
    assert.equal(sd.run('set-property', '--runtime', '--', 'system.slice', 'AllowedCPUs=').code, 0);
    const j = path.join(root, 'run/vfio-isolate/host.journal');
    fs.chownSync(j, 1000, 1000);
    const n = sd.calls().length;
    const r = await cli(root, ['reapply', j], sd.env);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /not trusted: .* is owned by uid 1000/);
    assert.equal(sd.calls().length, n, 'systemd was not asked anything');
  });
});

describe('restore and a unit property changed since the run', () => {
  /** The journal's last line: whether it was marked restored. */
  const markedRestored = (j: string): boolean =>
    fs.readFileSync(j, 'utf8').trimEnd().split('\n').at(-1)!.startsWith('{"t":"restored"');
  /**
   * `-u J cpuset-modify --cpus C0-3 /system.slice cpuset-modify --cpus C0-3 /user.slice` where systemd sets
   * system.slice and then fails `failures` set-property calls: user.slice's, then the rollback's.
   */
  const failingChain = async (failures: number) => {
    const root = buildFixture('v2-nocpuset');
    const sd = fakeSystemd(root);
    const flaky = flakySystemctl(sd);
    const j = journal();
    flaky.arm('set-property*', 1, failures);
    const chain = 'cpuset-modify --cpus C0-3 /system.slice cpuset-modify --cpus C0-3 /user.slice';
    return { sd, j, r: await cli(root, ['-u', j, ...chain.split(' ')], flaky.env) };
  };
  /** `-u J cpuset-modify --cpus C0-3 /system.slice` through a systemctl that can be made to fail (flaky.arm). */
  const restrictedBehindFlaky = async () => {
    const root = buildFixture('v2-nocpuset');
    const sd = fakeSystemd(root);
    const flaky = flakySystemctl(sd);
    const j = journal();
    await modify(root, sd, j, 'C0-3');
    return { root, sd, flaky, j };
  };
  /** `-u J cpuset-modify --cpus CPUS UNIT`, which must succeed. */
  const modify = async (root: string, sd: FakeSystemd, j: string, cpus: string, unit = '/system.slice') =>
    assert.equal((await cli(root, ['-u', j, 'cpuset-modify', '--cpus', cpus, unit], sd.env)).code, 0);

  it('a restriction someone changed since is left alone (exit 1, named, not marked restored); --force puts it back', async () => {
    const root = buildFixture('v2-nocpuset');
    const sd = fakeSystemd(root);
    const j = journal();
    const chain = 'cpuset-modify --cpus C0-3 --mems N0 /system.slice cpuset-modify --cpus C0-1 /user.slice';
    const r = await cli(root, ['-u', j, ...chain.split(' ')], sd.env);
    assert.equal(r.code, 0, r.stderr);
    // another hook (its own journal) or an administrator narrows system.slice's CPUs afterwards
    assert.equal(sd.run('set-property', '--runtime', '--', 'system.slice', 'AllowedCPUs=0-1').code, 0);
    const n = sets(sd).length;
    const back = await cli(root, ['restore', j], sd.env);
    assert.equal(back.code, 1, back.stderr);
    assert.match(
      back.stderr,
      /1 change\(s\) left alone because they were changed again since this journal's run: systemd unit system\.slice AllowedCPUs \(holds "0-1", the run set "0-3"\)/,
    );
    assert.match(
      back.stderr,
      new RegExp(`hint: check them; vfio-isolate --force restore ${j} puts the old values back`),
    );
    // the rest is restored: user.slice, and system.slice's nodes (still what the run set); its CPUs are not set
    assert.deepEqual(
      sets(sd)
        .slice(n)
        .filter((c) => c.includes(' system.slice AllowedCPUs')),
      [],
    );
    const u = sd.state().units;
    assert.deepEqual(
      [u['system.slice']!.cpus, u['system.slice']!.mems, u['user.slice']!.cpus],
      ['0-1', '', ''],
    );
    assert.equal(markedRestored(j), false);

    const forced = await cli(root, ['--force', 'restore', j], sd.env);
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(sd.state().units['system.slice']!.cpus, '');
    assert.equal(markedRestored(j), true);
  });

  it("an older run's record of a property a newer one left alone does not set it either (one conflict)", async () => {
    const root = buildFixture('v2-nocpuset');
    const sd = fakeSystemd(root);
    const j = journal();
    await modify(root, sd, j, 'C0-5');
    await modify(root, sd, j, 'C0-3');
    assert.equal(sd.run('set-property', '--runtime', '--', 'system.slice', 'AllowedCPUs=0-1').code, 0);
    const n = sets(sd).length;
    const r = await cli(root, ['restore', j], sd.env);
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /: 1 change\(s\) left alone .*holds "0-1", the run set "0-3"\); nothing was changed\n/,
    );
    assert.equal(sets(sd).length, n, 'systemd is asked to set nothing');
  });

  it('a rollback that fails says what to do by hand, not a restore that would skip the run', async () => {
    // the rollback's calls for system.slice (undo, then settle) fail too
    const { sd, j, r } = await failingChain(3);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /; rolling back also failed: system\.slice AllowedCPUs=: /);
    assert.match(
      r.stderr,
      new RegExp(
        `\nhint: put back by hand what is named above \\(restore ${j} skips a run that rolled back\\); `,
      ),
    );
    assert.equal(cpusOf(sd)['system.slice'], '0-3');
    assert.match(fs.readFileSync(j, 'utf8'), /"t":"rollback","run":1/);
  });

  it('a rollback whose first systemd call fails and whose second try succeeds reports the run undone', async () => {
    // the rollback's widen of system.slice fails; its settle lifts it
    const { sd, r } = await failingChain(2);
    assert.equal(r.code, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /rolling back also failed/);
    assert.match(r.stderr, /; the changes of this run were undone\n/);
    assert.equal(cpusOf(sd)['system.slice'], '');
  });

  it('a restore whose lift fails after its widen succeeded does not say that nothing was changed', async () => {
    const { root, sd, flaky, j } = await restrictedBehindFlaky();
    // the widen (AllowedCPUs= what it inherits) goes through; the lift, and the settle's widen, fail
    flaky.arm('set-property*', 1, 2);
    const r = await cli(root, ['restore', j], flaky.env);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /restore of \S+ incomplete: 2 change\(s\) could not be undone/);
    // each failure as systemctl said it, not as the name of an error class
    assert.match(
      r.stderr,
      /: system\.slice AllowedCPUs=: systemctl set-property --runtime -- system\.slice AllowedCPUs= failed: /,
    );
    assert.doesNotMatch(r.stderr, /RuntimeFailure/);
    assert.notEqual(cpusOf(sd)['system.slice'], '0-3', 'the widen changed the unit');
    assert.doesNotMatch(r.stderr, /nothing was changed/);
    assert.match(r.stderr, /; the changes before it were kept\n/);
    // again: the widen now sets what the unit holds already, which changes nothing
    const held = cpusOf(sd)['system.slice'];
    flaky.arm('set-property*', 1, 2);
    const again = await cli(root, ['restore', j], flaky.env);
    assert.equal(again.code, 1, again.stderr);
    assert.equal(cpusOf(sd)['system.slice'], held);
    assert.match(again.stderr, /could not be undone: .*; nothing was changed\n/);
  });

  it('a restore whose every systemd call fails says that nothing was changed', async () => {
    const { root, sd, flaky, j } = await restrictedBehindFlaky();
    flaky.arm('set-property*', 0, 10);
    const r = await cli(root, ['restore', j], flaky.env);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(cpusOf(sd)['system.slice'], '0-3');
    assert.match(r.stderr, /could not be undone: .*; nothing was changed\n/);
  });

  it('the last release with a unit changed since: exit 1, still registered; --force release puts it back', async () => {
    const root = buildFixture('v2-nocpuset');
    const sd = fakeSystemd(root);
    assert.equal((await cli(root, ['isolate', 'C4-7'], sd.env)).code, 0);
    assert.equal(sd.run('set-property', '--runtime', '--', 'system.slice', 'AllowedCPUs=0-1').code, 0);
    const registry = path.join(root, 'run/vfio-isolate/reservations.json');
    const rel = await cli(root, ['release'], sd.env);
    assert.equal(rel.code, 1, rel.stderr);
    assert.match(rel.stderr, /systemd unit system\.slice AllowedCPUs \(holds "0-1", the run set "0-3"\)/);
    assert.match(
      rel.stderr,
      /\nhint: check them; vfio-isolate --force release \S+\/run\/vfio-isolate\/isolate\.journal puts the old values back anyway/,
    );
    assert.equal(
      (JSON.parse(fs.readFileSync(registry, 'utf8')) as { reservations: unknown[] }).reservations.length,
      1,
    );
    const forced = await cli(root, ['--force', 'release'], sd.env);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(
      forced.stderr,
      /--force: setting "" again over a change since the run: systemd unit system\.slice AllowedCPUs \(holds "0-1", the run set "0-3"\)/,
    );
    assert.deepEqual(
      Object.values(cpusOf(sd)).filter((c) => c !== ''),
      [],
    );
    assert.equal(
      fs.existsSync(registry)
        ? (JSON.parse(fs.readFileSync(registry, 'utf8')) as { reservations: unknown[] }).reservations.length
        : 0,
      0,
    );
  });

  it("two hooks with their own journals, released out of order: the first restore leaves the running one's restriction", async () => {
    const root = buildFixture('v2-nocpuset');
    const sd = fakeSystemd(root);
    const [j1, j2] = [journal(), journal()];
    await modify(root, sd, j1, 'C0-5');
    await modify(root, sd, j2, 'C0-3');
    const r = await cli(root, ['restore', j1], sd.env);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /systemd unit system\.slice AllowedCPUs \(holds "0-3", the run set "0-5"\)/);
    assert.equal(cpusOf(sd)['system.slice'], '0-3', "the second VM's host restriction stays in effect");
  });

  it('a value this journal itself recorded is no conflict (a drift that reapply overwrote): release gives the state before', async () => {
    const root = buildFixture('v2-nocpuset');
    const sd = fakeSystemd(root);
    assert.equal((await cli(root, ['isolate', 'C4-7'], sd.env)).code, 0);
    assert.equal(cpusOf(sd)['system.slice'], '0-3');
    // someone widens it; reapply sets the isolation's value again, journalling 0-5 as the value before
    assert.equal(sd.run('set-property', '--runtime', '--', 'system.slice', 'AllowedCPUs=0-5').code, 0);
    assert.equal((await cli(root, ['reapply'], sd.env)).code, 0);
    assert.equal(cpusOf(sd)['system.slice'], '0-3');
    const rel = await cli(root, ['release'], sd.env);
    assert.equal(rel.code, 0, rel.stderr);
    assert.deepEqual(
      Object.values(cpusOf(sd)).filter((c) => c !== ''),
      [],
    );
  });

  it("reset's lift interrupted after widening (AllowedCPUs= names what the unit inherits) is restored; another value is a conflict", async () => {
    const root = buildFixture('v2-nocpuset');
    const sd = fakeSystemd(root);
    assert.equal(sd.run('set-property', '--runtime', '--', 'system.slice', 'AllowedCPUs=0-5').code, 0);
    const j = journal();
    assert.equal((await cli(root, ['-u', j, 'reset'], sd.env)).code, 0);
    assert.equal(cpusOf(sd)['system.slice'], '');
    // as if the run had been killed between its two systemctl calls: the unit holds every CPU, explicitly
    const inherited = sysRead(root, `${CG}/cpuset.cpus.effective`);
    assert.equal(
      sd.run('set-property', '--runtime', '--', 'system.slice', `AllowedCPUs=${inherited}`).code,
      0,
    );
    const r = await cli(root, ['restore', j], sd.env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(cpusOf(sd)['system.slice'], '0-5');

    const j2 = journal();
    assert.equal((await cli(root, ['-u', j2, 'reset'], sd.env)).code, 0);
    assert.equal(sd.run('set-property', '--runtime', '--', 'system.slice', 'AllowedCPUs=2-3').code, 0);
    const c = await cli(root, ['restore', j2], sd.env);
    assert.equal(c.code, 1, c.stderr);
    assert.match(c.stderr, /systemd unit system\.slice AllowedCPUs \(holds "2-3", the run set ""\)/);
    assert.equal(cpusOf(sd)['system.slice'], '2-3');
  });
});

describe('a unit record whose list is no list of possible CPUs / nodes is refused', () => {
  it('a value before that names CPUs this machine lacks (an administrator gave systemd 0-63) restores', async () => {
    const root = buildFixture('v2-nocpuset');
    const sd = fakeSystemd(root);
    assert.equal(sd.run('set-property', '--runtime', '--', 'user.slice', 'AllowedCPUs=0-63').code, 0);
    const j = journal();
    assert.equal(
      (await cli(root, ['-u', j, 'cpuset-modify', '--cpus', 'C0-1', '/user.slice'], sd.env)).code,
      0,
    );
    const r = await cli(root, ['restore', j], sd.env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(cpusOf(sd)['user.slice'], '0-63');
  });
  for (const bad of ['3-0', '0-3,,5', '-', '0-99999']) {
    it(`restore and reapply of a journal with AllowedCPUs=${bad}: exit 2, systemd is asked to set nothing`, async () => {
      const root = buildFixture('v2-nocpuset');
      const sd = fakeSystemd(root);
      const j = journal();
      assert.equal(
        (await cli(root, ['-u', j, 'cpuset-modify', '--cpus', 'C0-3', '/system.slice'], sd.env)).code,
        0,
      );
      // a root-owned journal (trusted), its unit record edited: what was set is now garbage
      fs.writeFileSync(
        j,
        fs.readFileSync(j, 'utf8').replace('"allowedCpus":["","0-3"]', `"allowedCpus":["${bad}","${bad}"]`),
      );
      assert.equal(sd.run('set-property', '--runtime', '--', 'system.slice', 'AllowedCPUs=').code, 0);
      const n = sets(sd).length;
      const re = await cli(root, ['reapply', j], sd.env);
      assert.equal(re.code, 2, re.stdout + re.stderr);
      assert.match(re.stderr, /refusing the whole journal: record 1: .*AllowedCPUs/);
      const rs = await cli(root, ['restore', j], sd.env);
      assert.equal(rs.code, 2, rs.stdout + rs.stderr);
      assert.match(rs.stderr, /refusing the whole journal: record 1: .*AllowedCPUs/);
      assert.equal(sets(sd).length, n, 'no set-property call');
    });
  }
});

describe('a plain top-level cgroup beside the units', () => {
  it('isolate leaves the root\'s cpuset controller to systemd (enabled for the units first): no controller record, release writes no "-cpuset" under the units', async () => {
    const root = buildFixture('v2-nocpuset');
    new SimFs(root).mkdir(`/${CG}/foo`); // a cgroup someone made by hand, no unit's
    const sd = fakeSystemd(root);
    const before = treeFiles(root);
    const j = path.join(root, 'run/vfio-isolate/a.journal');
    const r = await cli(root, ['-u', j, 'isolate', 'C4-7'], sd.env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sysRead(root, `${CG}/foo/cpuset.cpus`), '0-3', 'the plain cgroup is restricted by its file');
    const recs = records(path.join(root, 'run/vfio-isolate/host.journal'));
    assert.equal(recs.filter((x) => x.kind === 'unit').length, 3);
    assert.deepEqual(
      recs.filter((x) => x.kind === 'controller'),
      [],
      "systemd enabled cpuset in the root for its units: the root's subtree_control is not the tool's to undo",
    );
    const rel = await cli(root, ['release', j], sd.env);
    assert.equal(rel.code, 0, rel.stderr);
    assert.deepEqual(
      Object.values(cpusOf(sd)).filter((c) => c !== ''),
      [],
    );
    assert.deepEqual(
      diffTrees(before, treeFiles(root)).filter((d) => d.includes(CG)),
      [],
    );
  });
});
