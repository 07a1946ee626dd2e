/** partition: a running VM's pinned vCPU cgroups become isolated (remote) partitions, and back, exactly. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import * as v from 'valibot';
import { PartitionResultJson } from '../../src/report/json-schema.ts';
import { buildFixture, removeFixture, type FixtureOptions } from '../fixtures/build.ts';
import { cli } from '../support/cli.ts';
import { SimFs } from '../support/simfs.ts';
import { diffTrees, sysRead, treeFiles, treeHash } from '../support/tree.ts';

const CG = '/sys/fs/cgroup';
const SCOPE = 'machine.slice/machine-qemu\\x2d1\\x2dwin10.scope';
const roots: string[] = [];
after(() => roots.forEach(removeFixture));

/** ryzen-5950x (v2, 6.8) with libvirt's layout under the running win10 VM: vcpuN pinned as given, emulator. */
function vmMachine(pins: string[], emulator = '7', opts: FixtureOptions = {}, scope = SCOPE): string {
  const root = buildFixture('ryzen-5950x', opts);
  roots.push(root);
  const s = new SimFs(root);
  const parts = scope.split('/');
  // libvirt (through systemd) enables cpuset top-down for the delegated scope
  for (let d = 0; d <= parts.length; d++) {
    const dir = [CG, ...parts.slice(0, d)].join('/');
    if (d === parts.length) s.mkdir(`${dir}/libvirt`);
    s.write(`${dir}/cgroup.subtree_control`, '+cpuset');
  }
  const lv = `${CG}/${scope}/libvirt`;
  s.write(`${lv}/cgroup.subtree_control`, '+cpuset');
  s.mkdir(`${lv}/emulator`);
  s.write(`${lv}/emulator/cpuset.cpus`, emulator);
  pins.forEach((cpus, i) => {
    s.mkdir(`${lv}/vcpu${i}`);
    s.write(`${lv}/vcpu${i}/cpuset.cpus`, cpus);
  });
  return root;
}

function journal(): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-part-')), 'j');
}

const lv = `${CG}/${SCOPE}/libvirt`;

describe('partition on a running VM (fixture, 6.8)', () => {
  it('makes each pinned vCPU an isolated partition; the host loses those CPUs; release gives back the tree', async () => {
    const root = vmMachine(['8', '9', '10', '11']);
    const beforeFiles = treeFiles(root);
    const j = journal();
    const r = await cli(root, ['-u', j, 'partition', 'win10']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /4 vCPU cgroups are isolated partitions on CPUs 8-11/);
    for (let i = 0; i < 4; i++)
      assert.equal(sysRead(root, `${lv}/vcpu${i}/cpuset.cpus.partition`), 'isolated');
    assert.equal(sysRead(root, `${CG}/cpuset.cpus.isolated`), '8-11');
    assert.equal(sysRead(root, `${CG}/machine.slice/cpuset.cpus.exclusive`), '8-11');
    assert.equal(sysRead(root, `${CG}/system.slice/cpuset.cpus.effective`), '0-7,12-31');
    assert.equal(sysRead(root, `${lv}/emulator/cpuset.cpus.effective`), '7', 'emulatorpin keeps working');
    const back = await cli(root, ['release', j]);
    assert.equal(back.code, 0, back.stderr);
    // the same state (cgroup member order and a task's last CPU are the kernel's: diffTrees ignores them)
    assert.deepEqual(diffTrees(beforeFiles, treeFiles(root)), []);
  });

  it('--json: the result document alone on stdout, valid against its schema', async () => {
    const root = vmMachine(['8', '9']);
    const r = await cli(root, ['--json', '-u', journal(), 'partition', 'win10']);
    assert.equal(r.code, 0, r.stderr);
    const doc = v.parse(PartitionResultJson, JSON.parse(r.stdout));
    assert.equal(doc.ok, true);
    assert.equal(doc.cpus, '8-9');
    assert.equal(doc.isolated, '8-9');
    assert.match(doc.cgroup, /win10/);
  });

  it('takes a cgroup path too, and -n shows the writes without making them', async () => {
    const root = vmMachine(['8', '9']);
    const before = treeHash(root);
    const r = await cli(root, ['-n', 'partition', `/${SCOPE}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /lend CPUs 8-9 exclusively down to \/machine\.slice\/.*\/libvirt/);
    assert.match(r.stdout, /vcpu1\/cpuset\.cpus\.partition: "member" -> "isolated"/);
    assert.equal(treeHash(root), before);
  });

  it('refuses, before any change, what cannot be a valid layout', async () => {
    const cases: [string, string[], string, RegExp][] = [
      ['an unpinned vCPU', ['8', ''], '7', /vcpu1 is not pinned/],
      ['two vCPUs sharing a CPU', ['8-9', '9'], '7', /vcpu0 and vcpu1 share CPUs 9/],
      ['the emulator on a vCPU CPU', ['8', '9'], '7-8', /emulator threads may run on the vCPU CPUs 8/],
    ];
    for (const [what, pins, emu, msg] of cases) {
      const root = vmMachine(pins, emu);
      const h = treeHash(root);
      const r = await cli(root, ['partition', 'win10']);
      assert.equal(r.code, 1, what);
      assert.match(r.stderr, msg, what);
      assert.equal(treeHash(root), h, `${what}: nothing changed`);
    }
    const root = vmMachine(['8']);
    const none = await cli(root, ['partition', 'win11']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no running VM named win11/);
    const bad = await cli(root, ['partition', 'win 10;']);
    assert.equal(bad.code, 2);
  });

  it('CPUs another cgroup holds exclusively: the kernel refuses, the run rolls back', async () => {
    const root = vmMachine(['8', '9']);
    const s = new SimFs(root);
    s.write(`${CG}/system.slice/cpuset.cpus.exclusive`, '9');
    const h = treeHash(root);
    const r = await cli(root, ['partition', 'win10']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /changes of this run were undone|nothing was changed/);
    assert.equal(treeHash(root), h);
  });

  it('a partition the kernel has since made "isolated invalid (...)" is still ours: release makes it a member', async () => {
    const root = vmMachine(['8', '9']);
    const beforeFiles = treeFiles(root);
    const j = journal();
    assert.equal((await cli(root, ['-u', j, 'partition', 'win10'])).code, 0);
    // someone takes machine.slice's exclusive CPUs away: the kernel now calls both partitions invalid
    new SimFs(root).write(`${CG}/machine.slice/cpuset.cpus.exclusive`, '\n');
    assert.match(sysRead(root, `${lv}/vcpu0/cpuset.cpus.partition`), /^isolated invalid/);
    const back = await cli(root, ['release', j]);
    assert.equal(back.code, 0, back.stderr);
    assert.doesNotMatch(back.stderr, /changed since|conflict/);
    assert.equal(sysRead(root, `${lv}/vcpu0/cpuset.cpus.partition`), 'member');
    assert.deepEqual(diffTrees(beforeFiles, treeFiles(root)), []);
  });

  it('a second VM on CPUs already isolated for the first: refused by the kernel, rolled back', async () => {
    const root = vmMachine(['8', '9']);
    const s = new SimFs(root);
    const other = 'machine.slice/machine-qemu\\x2d2\\x2dlinux.scope';
    s.mkdir(`${CG}/${other}`);
    s.write(`${CG}/${other}/cgroup.subtree_control`, '+cpuset');
    s.mkdir(`${CG}/${other}/libvirt`);
    s.write(`${CG}/${other}/libvirt/cgroup.subtree_control`, '+cpuset');
    s.mkdir(`${CG}/${other}/libvirt/vcpu0`);
    s.write(`${CG}/${other}/libvirt/vcpu0/cpuset.cpus`, '9');
    assert.equal((await cli(root, ['partition', 'win10'])).code, 0);
    const h = treeHash(root);
    const r = await cli(root, ['partition', 'linux']);
    assert.equal(r.code, 1, r.stdout);
    assert.equal(treeHash(root), h);
  });

  it('vCPUs pinned to host CPUs of an active isolation: refused before any change (the host would lose them), --force takes them', async () => {
    const root = vmMachine(['0', '1']);
    assert.equal((await cli(root, ['isolate', 'C8-15,24-31'])).code, 0);
    const h = treeHash(root);
    const r = await cli(root, ['partition', 'win10']);
    assert.equal(r.code, 1, r.stdout);
    assert.match(
      r.stderr,
      /partition: the vCPUs' CPUs 0-1 are host CPUs of the active isolation\(s\) \(VM CPUs 8-15,24-31\)/,
    );
    assert.equal(treeHash(root), h, 'nothing changed');
    assert.equal(sysRead(root, `${CG}/system.slice/cpuset.cpus.effective`), '0-7,16-23');
    const f = await cli(root, ['--force', 'partition', 'win10']);
    assert.equal(f.code, 0, f.stderr);
    assert.equal(sysRead(root, `${CG}/system.slice/cpuset.cpus.effective`), '2-7,16-23');
  });

  it('refuses on kernels before 6.7 and on cgroup v1, with the reason', async () => {
    const old = vmMachine(['8'], '7', { kernel: '6.1.0-28-amd64' });
    const r = await cli(old, ['partition', 'win10']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /remote isolated partitions need Linux 6\.7 or newer/);
    const v1 = buildFixture('intel-6c12t');
    roots.push(v1);
    const r1 = await cli(v1, ['partition', 'win10']);
    assert.equal(r1.code, 1);
    assert.match(r1.stderr, /need cgroup v2/);
  });
});

describe('reset clears partitions (journal lost)', () => {
  it('every partition back to member, every cpuset.cpus.exclusive cleared; the host has the CPUs again', async () => {
    const root = vmMachine(['8', '9']);
    const s = new SimFs(root);
    // a partition whose layout the kernel calls invalid is cleared too
    const other = 'machine.slice/other.scope';
    s.mkdir(`${CG}/${other}`);
    s.write(`${CG}/${other}/cpuset.cpus`, '9');
    s.write(`${CG}/${other}/cpuset.cpus.partition`, 'isolated');
    assert.match(sysRead(root, `${CG}/${other}/cpuset.cpus.partition`), /^isolated invalid/);
    const beforeFiles = treeFiles(root);
    const j = journal();
    assert.equal((await cli(root, ['-u', j, 'partition', 'win10'])).code, 0);
    assert.equal(sysRead(root, `${CG}/cpuset.cpus.isolated`), '8-9');
    fs.rmSync(j); // the journal is lost
    const plan = await cli(root, ['-n', 'reset']);
    assert.match(
      plan.stdout,
      /make 3 cpuset partition\(s\) members again and clear cpuset.cpus.exclusive of 5/,
    );
    assert.match(plan.stdout, /vcpu1\/cpuset\.cpus\.partition: "isolated" -> "member"/);
    const undo = journal();
    const r = await cli(root, ['-u', undo, 'reset']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sysRead(root, `${CG}/cpuset.cpus.isolated`), '');
    for (const d of [`${lv}/vcpu0`, `${lv}/vcpu1`, `${CG}/${other}`])
      assert.equal(sysRead(root, `${d}/cpuset.cpus.partition`), 'member', d);
    for (const d of ['machine.slice', SCOPE, `${SCOPE}/libvirt`, `${SCOPE}/libvirt/vcpu0`])
      assert.equal(sysRead(root, `${CG}/${d}/cpuset.cpus.exclusive`), '', d);
    assert.equal(sysRead(root, `${CG}/system.slice/cpuset.cpus.effective`), '0-31');
    assert.equal(sysRead(root, `${CG}/user.slice/cpuset.cpus.effective`), '0-31');
    // the cgroup tree is as before partition (reset also widens the fixture's IRQs; the invalid partition is gone)
    const left = diffTrees(beforeFiles, treeFiles(root)).filter(
      (l) => l.includes('sys/fs/cgroup/') && !l.includes(other),
    );
    assert.deepEqual(left, []);
    // the reset journal restores (the invalid partition is journalled as what it asked for: isolated)
    const back = await cli(root, ['restore', undo]);
    assert.equal(back.code, 0, back.stderr);
    assert.equal(sysRead(root, `${lv}/vcpu0/cpuset.cpus.partition`), 'isolated');
    assert.equal(sysRead(root, `${CG}/cpuset.cpus.isolated`), '8-9');
  });

  it('after isolate and partition: top-level cgroups get every CPU, the partitioned ones included', async () => {
    const root = vmMachine(['8', '9']);
    assert.equal((await cli(root, ['isolate', 'C8-15,24-31'])).code, 0);
    assert.equal((await cli(root, ['partition', 'win10'])).code, 0);
    assert.equal(sysRead(root, `${CG}/cpuset.cpus.effective`), '0-7,10-31', 'the root lacks the partitions');
    const r = await cli(root, ['reset']);
    assert.equal(r.code, 0, r.stderr);
    // user.slice has tasks: every CPU explicitly (ENOSPC for ""), 8 and 9 included
    assert.equal(sysRead(root, `${CG}/user.slice/cpuset.cpus`), '0-31');
    assert.equal(sysRead(root, `${CG}/user.slice/cpuset.cpus.effective`), '0-31');
    assert.equal(sysRead(root, `${CG}/cpuset.cpus.isolated`), '');
  });

  it('nothing to clear: no partition step', async () => {
    const root = vmMachine(['8', '9']);
    const plan = await cli(root, ['-n', 'reset']);
    assert.equal(plan.code, 0, plan.stderr);
    assert.doesNotMatch(plan.stdout, /partition/);
  });
});

describe('isolate: live per-CPU knobs', () => {
  it('the watchdog leaves the VM CPUs and they get a wake-up latency limit; release puts both back', async () => {
    const root = buildFixture('ryzen-5950x', { knobs: true });
    roots.push(root);
    const beforeFiles = treeFiles(root);
    const j = journal();
    const r = await cli(root, ['-u', j, 'isolate', 'C8-15,24-31']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sysRead(root, '/proc/sys/kernel/watchdog_cpumask'), '0-7,16-23');
    for (const cpu of [8, 15, 24, 31])
      assert.equal(sysRead(root, `/sys/devices/system/cpu/cpu${cpu}/power/pm_qos_resume_latency_us`), '20');
    assert.equal(
      sysRead(root, '/sys/devices/system/cpu/cpu0/power/pm_qos_resume_latency_us'),
      '0',
      'host CPUs untouched',
    );
    const back = await cli(root, ['release', j]);
    assert.equal(back.code, 0, back.stderr);
    assert.deepEqual(diffTrees(beforeFiles, treeFiles(root)), []);
  });

  it('--keep-watchdog and --wakeup-latency off leave them; a stricter limit already set is kept; bad values exit 2', async () => {
    const root = buildFixture('ryzen-5950x', { knobs: true });
    roots.push(root);
    new SimFs(root).write('/sys/devices/system/cpu/cpu9/power/pm_qos_resume_latency_us', 'n/a');
    const plan = await cli(root, [
      '-n',
      'isolate',
      '--keep-watchdog',
      '--wakeup-latency',
      'off',
      'C8-15,24-31',
    ]);
    assert.equal(plan.code, 0, plan.stderr);
    assert.doesNotMatch(plan.stdout, /watchdog|wake-up/);
    const limited = await cli(root, ['-n', 'isolate', '--wakeup-latency', '5', 'C8-15,24-31']);
    assert.match(limited.stdout, /wake-up latency of CPUs 8-15,24-31 limited to 5 us/);
    assert.match(limited.stdout, /cpu8\/power\/pm_qos_resume_latency_us: "0" -> "5"/);
    assert.doesNotMatch(limited.stdout, /cpu9\/power/, 'n/a (no wake-up latency at all) is stricter: kept');
    const bad = await cli(root, ['isolate', '--wakeup-latency', 'fast', 'C8-15,24-31']);
    assert.equal(bad.code, 2);
  });

  it('machines without the files: no step, nothing refused', async () => {
    const root = buildFixture('ryzen-5950x');
    roots.push(root);
    const plan = await cli(root, ['-n', 'isolate', 'C8-15,24-31']);
    assert.equal(plan.code, 0, plan.stderr);
    assert.doesNotMatch(plan.stdout, /watchdog|wake-up/);
  });
});

describe('partition --profile (what the libvirt hook runs when the VM has started)', () => {
  const profile = (root: string, text: string): string => {
    const f = path.join(root, 'etc/vfio-isolate/win10.toml');
    fs.mkdirSync(path.dirname(f), { recursive: true, mode: 0o755 });
    fs.writeFileSync(f, text, { mode: 0o644 });
    return f;
  };

  it('partition = true: the domain of the profile becomes isolated partitions', async () => {
    const root = vmMachine(['8', '9']);
    const f = profile(root, 'domain = "win10"\nvm_cpus = "C8-9"\n[isolate]\npartition = true\n');
    const r = await cli(root, ['-u', journal(), 'partition', '--profile', f]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sysRead(root, `${CG}/cpuset.cpus.isolated`), '8-9');
  });

  it('partition = false (the default): nothing changes, exit 0, even on a kernel without partitions', async () => {
    const root = vmMachine(['8', '9'], '7', { kernel: '6.1.0-28-amd64' });
    const f = profile(root, 'domain = "win10"\nvm_cpus = "C8-9"\n');
    const before = treeFiles(root);
    const r = await cli(root, ['partition', '--profile', f]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(diffTrees(before, treeFiles(root)), []);
  });

  it('no VM and no profile: exit 2', async () => {
    const root = vmMachine(['8']);
    assert.equal((await cli(root, ['partition'])).code, 2);
  });
});
