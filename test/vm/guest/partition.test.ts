/**
 * partition on a real kernel: libvirt's layout of a running VM built by hand (machine.slice/vm.scope/libvirt with
 * vcpu0, vcpu1 and emulator cgroups, a task inside a vCPU cgroup), made isolated partitions and released, with the
 * snapshot equal before and after. 6.12: works, and the kernel's verdicts are read back; 6.1: refused.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CpuSet } from '../../../src/cpus/cpuset.ts';
import { diffSnapshots, takeSnapshot } from '../snapshot.ts';
import { cli } from './cli.ts';
import { guestMode, notInGuest } from './guest-env.ts';

const mode = guestMode();
const skip = notInGuest() || (mode === 'v1-hybrid' ? 'partitions need cgroup v2' : false);
const CG = '/sys/fs/cgroup';
const VM = `${CG}/machine.slice/vm.scope`;
const LV = `${VM}/libvirt`;
const read = (p: string): string => readFileSync(p, 'utf8').trim();
const write = (p: string, v: string): void => writeFileSync(p, v);
const journal = (): string => join(mkdtempSync(join(tmpdir(), 'vi-part-')), 'j');

describe(`partition on a real kernel (${mode ?? 'host'})`, { skip }, () => {
  const enabled: string[] = [];
  const made: string[] = [];
  let sleeper: ChildProcess | undefined;

  before(() => {
    // libvirt's layout: cpuset enabled down to the vCPU cgroups, vCPUs pinned 4 and 5, the emulator on 3
    for (const dir of [CG, `${CG}/machine.slice`, VM, LV]) {
      if (!existsSync(dir)) {
        mkdirSync(dir);
        made.push(dir);
      }
      if (!read(`${dir}/cgroup.subtree_control`).split(' ').includes('cpuset')) {
        write(`${dir}/cgroup.subtree_control`, '+cpuset');
        enabled.push(dir);
      }
    }
    for (const [name, cpus] of [
      ['emulator', '3'],
      ['vcpu0', '4'],
      ['vcpu1', '5'],
    ] as const) {
      mkdirSync(`${LV}/${name}`);
      made.push(`${LV}/${name}`);
      write(`${LV}/${name}/cpuset.cpus`, cpus);
    }
    sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
    write(`${LV}/vcpu0/cgroup.procs`, String(sleeper.pid));
  });

  after(() => {
    sleeper?.kill('SIGKILL');
    // back to the guest's own state, bottom-up
    const deadline = Date.now() + 5000;
    while (existsSync(`${LV}/vcpu0`) && read(`${LV}/vcpu0/cgroup.procs`) !== '' && Date.now() < deadline);
    for (const dir of [...made].reverse()) if (dir.startsWith(`${LV}/`)) rmdirSync(dir);
    for (const dir of [...enabled].reverse()) write(`${dir}/cgroup.subtree_control`, '-cpuset');
    for (const dir of [...made].reverse()) if (!dir.startsWith(`${LV}/`) && existsSync(dir)) rmdirSync(dir);
  });

  test(
    '6.12: the vCPUs become isolated partitions, the host loses their CPUs, release gives everything back',
    {
      skip: mode === 'v2-6.1' ? 'needs 6.7+' : false,
    },
    async () => {
      const beforeSnap = takeSnapshot();
      const figure = (when: string): void => {
        const eff = (c: string): string =>
          existsSync(`${CG}/${c}/cpuset.cpus.effective`) ? read(`${CG}/${c}/cpuset.cpus.effective`) : '-';
        console.log(
          `FIGURE partition ${when}: cpuset.cpus.isolated=${read(`${CG}/cpuset.cpus.isolated`) || '(none)'}` +
            ` system.slice=${eff('system.slice')} user.slice=${eff('user.slice')}` +
            ` machine.slice=${eff('machine.slice')} vcpu0=${read(`${LV}/vcpu0/cpuset.cpus.partition`)}` +
            ` vcpu1=${read(`${LV}/vcpu1/cpuset.cpus.partition`)}`,
        );
      };
      figure('before');
      const j = journal();
      const r = await cli(['-u', j, 'partition', '/machine.slice/vm.scope']);
      figure('during');
      console.log(`FIGURE partition status during:\n${(await cli(['status'])).stdout}`);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(read(`${LV}/vcpu0/cpuset.cpus.partition`), 'isolated');
      assert.equal(read(`${LV}/vcpu1/cpuset.cpus.partition`), 'isolated');
      assert.equal(read(`${CG}/cpuset.cpus.isolated`), '4-5');
      for (const host of ['system.slice', 'user.slice', 'init.scope']) {
        const eff = `${CG}/${host}/cpuset.cpus.effective`;
        if (existsSync(eff))
          assert.ok(!CpuSet.parseList(read(eff)).overlaps(CpuSet.of([4, 5])), `${host}: ${read(eff)}`);
      }
      assert.equal(read(`${LV}/emulator/cpuset.cpus.effective`), '3', 'the emulator keeps its CPU');
      // the task inside vcpu0 now runs only on CPU 4
      const allowed = /Cpus_allowed_list:\s*(\S+)/.exec(read(`/proc/${sleeper!.pid}/status`))?.[1];
      assert.equal(allowed, '4');
      const status = await cli(['status', '--json']);
      assert.match(status.stdout, /"isolated"/);
      const rel = await cli(['release', j]);
      assert.equal(rel.code, 0, rel.stderr);
      figure('after');
      assert.equal(read(`${CG}/cpuset.cpus.isolated`), '');
      assert.deepEqual(
        diffSnapshots(beforeSnap, takeSnapshot()),
        [],
        'state after release equals state before',
      );
    },
  );

  test(
    '6.12: reset (the journal lost) makes the partitions members again and clears cpuset.cpus.exclusive',
    { skip: mode === 'v2-6.1' ? 'needs 6.7+' : false },
    async () => {
      const cgroupsOnly = (lines: string[]): string[] => lines.filter((l) => l.startsWith('cgroup '));
      const beforeSnap = takeSnapshot();
      const j = journal();
      const r = await cli(['-u', j, 'partition', '/machine.slice/vm.scope']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(read(`${CG}/cpuset.cpus.isolated`), '4-5');
      rmSync(j); // lost
      const reset = await cli(['reset']);
      assert.equal(reset.code, 0, reset.stderr);
      console.log(
        `FIGURE reset after partition: cpuset.cpus.isolated=${read(`${CG}/cpuset.cpus.isolated`) || '(none)'}` +
          ` vcpu0=${read(`${LV}/vcpu0/cpuset.cpus.partition`)} machine.slice exclusive=` +
          `${read(`${CG}/machine.slice/cpuset.cpus.exclusive`) || '(none)'}`,
      );
      assert.equal(read(`${CG}/cpuset.cpus.isolated`), '');
      for (const d of ['vcpu0', 'vcpu1']) assert.equal(read(`${LV}/${d}/cpuset.cpus.partition`), 'member', d);
      for (const d of [`${CG}/machine.slice`, VM, LV, `${LV}/vcpu0`, `${LV}/vcpu1`])
        assert.equal(read(`${d}/cpuset.cpus.exclusive`), '', d);
      // reset also widens kernel threads and IRQs to every CPU (its job); the cgroup tree is as before partition
      assert.deepEqual(cgroupsOnly(diffSnapshots(beforeSnap, takeSnapshot())), []);
    },
  );

  test(
    '6.12: CPUs another cgroup holds exclusively are refused by the kernel; nothing is left changed',
    {
      skip: mode === 'v2-6.1' ? 'needs 6.7+' : false,
    },
    async () => {
      const other = `${CG}/machine.slice/other.scope`;
      mkdirSync(other);
      try {
        write(`${other}/cpuset.cpus.exclusive`, '5');
        const beforeSnap = takeSnapshot();
        const r = await cli(['partition', '/machine.slice/vm.scope']);
        assert.equal(r.code, 1, r.stdout);
        assert.deepEqual(diffSnapshots(beforeSnap, takeSnapshot()), [], 'rolled back');
      } finally {
        write(`${other}/cpuset.cpus.exclusive`, '\n');
        rmdirSync(other);
      }
    },
  );

  test(
    '6.1: refused with the reason, nothing changed',
    { skip: mode !== 'v2-6.1' ? '6.1 only' : false },
    async () => {
      const beforeSnap = takeSnapshot();
      const r = await cli(['partition', '/machine.slice/vm.scope']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /remote isolated partitions need Linux 6\.7 or newer/);
      assert.deepEqual(diffSnapshots(beforeSnap, takeSnapshot()), []);
    },
  );
});

describe(`isolate: live per-CPU knobs on a real kernel (${mode ?? 'host'})`, { skip: notInGuest() }, () => {
  const WATCHDOG = '/proc/sys/kernel/watchdog_cpumask';
  const latency = (cpu: number): string => `/sys/devices/system/cpu/cpu${cpu}/power/pm_qos_resume_latency_us`;
  const knobs = (): { watchdog?: string; latency: (string | undefined)[] } => ({
    ...(existsSync(WATCHDOG) ? { watchdog: read(WATCHDOG) } : {}),
    latency: [0, 1, 2, 3, 4, 5, 6, 7].map((c) => (existsSync(latency(c)) ? read(latency(c)) : undefined)),
  });

  test('isolate C4-7: watchdog_cpumask loses 4-7, CPUs 4-7 wake within 20 us; status shows both; release restores them', async () => {
    const before = knobs();
    console.log(
      `FIGURE knobs before: watchdog_cpumask=${before.watchdog ?? '(missing)'} pm_qos=${before.latency.join(',')}`,
    );
    assert.ok(before.watchdog !== undefined, `this guest kernel has no ${WATCHDOG}`);
    assert.ok(
      before.latency.every((v) => v !== undefined),
      'every CPU of this guest kernel has power/pm_qos_resume_latency_us',
    );
    const beforeSnap = takeSnapshot();
    const j = journal();
    const r = await cli(['-u', j, 'isolate', 'C4-7']);
    assert.equal(r.code, 0, r.stderr);
    const during = knobs();
    const status = await cli(['status', 'C4-7']);
    const json = JSON.parse((await cli(['status', '--json', 'C4-7'])).stdout) as {
      knobs: { watchdogCpumask: string | null; wakeupLatencyUs: Record<string, string> };
    };
    console.log(
      `FIGURE knobs during: watchdog_cpumask=${during.watchdog} pm_qos=${during.latency.join(',')}`,
    );
    console.log(
      `FIGURE knobs status: ${status.stdout
        .split('\n')
        .filter((l) => /watchdog|wake-up/.test(l))
        .join(' | ')}`,
    );
    const rel = await cli(['release', j]);
    const after = knobs();
    console.log(
      `FIGURE knobs after release: watchdog_cpumask=${after.watchdog} pm_qos=${after.latency.join(',')}`,
    );
    assert.equal(during.watchdog, CpuSet.parseList(before.watchdog).minus(CpuSet.parseList('4-7')).toList());
    assert.deepEqual(during.latency.slice(4), ['20', '20', '20', '20']);
    assert.deepEqual(during.latency.slice(0, 4), before.latency.slice(0, 4), 'host CPUs untouched');
    assert.match(status.stdout, new RegExp(`watchdog_cpumask\\s+${during.watchdog}\\b`));
    assert.match(status.stdout, /wake-up latency limit\s+20 us on 4-7/);
    assert.equal(json.knobs.watchdogCpumask, during.watchdog);
    assert.deepEqual(
      [4, 5, 6, 7].map((c) => json.knobs.wakeupLatencyUs[String(c)]),
      ['20', '20', '20', '20'],
    );
    assert.equal(rel.code, 0, rel.stderr);
    assert.deepEqual(after, before, 'release puts back the exact values');
    assert.deepEqual(
      diffSnapshots(beforeSnap, takeSnapshot()),
      [],
      'state after release equals state before',
    );
  });
});
