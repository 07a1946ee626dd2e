/**
 * Issue 19 under the host's own systemd as PID 1 (mode `systemd`: cgroup v2, 6.12, systemd 252) with a real libvirt
 * domain: `vfio-isolate partition DOMAIN` on the running VM (vCPUs pinned by `libvirt cputune`) writes
 * cpuset.cpus.exclusive on machine.slice, the VM's scope and its libvirt cgroup, and makes each vCPU cgroup an
 * isolated partition. systemd 252 has no property for exclusive CPUs or partitions (systemd.resource-control(5)
 * knows AllowedCPUs= only), so the question is whether its re-realization of the tree clears them. Checked: after
 * `systemctl daemon-reload` and after `set-property --runtime machine.slice CPUWeight=100` (which re-realizes
 * machine.slice and enables another controller) the partitions, the exclusive CPUs and the CPUs the host cgroups
 * lost are unchanged. Then release and stop in both orders (release first; and virsh destroy first, which is the
 * libvirt hook's order: `release end` runs after QEMU and its cgroups are gone): the snapshot, including systemd's
 * AllowedCPUs/AllowedMemoryNodes of every top-level unit, equals the one before the start.
 * Figures (grep FIGURE): cpuset.cpus.isolated, the effective CPUs of the host cgroups and status's partition lines
 * before, during, after each systemd action and after.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { scopeDomain } from '../../../src/commands/partition.ts';
import { CpuSet } from '../../../src/cpus/cpuset.ts';
import { diffSnapshots, takeSnapshot, type Snapshot } from '../snapshot.ts';
import { cli } from './cli.ts';
import { defineDomain, virsh, waitRunning, waitShutOff, type Pinning } from './libvirt-domain.ts';
import { figure, notInSystemdGuest, readOr, step, systemctl, topLevelUnits, waitFor } from './systemd-env.ts';

const skip = notInSystemdGuest();
const DOMAIN = 'vfio-p';
const VM = 'C4-5';
const CG = '/sys/fs/cgroup';
const HOST_CGROUPS = ['system.slice', 'user.slice', 'init.scope'];

/** The VM's scope under machine.slice (machine-qemu\x2dN\x2dvfio\x2dp.scope), while it runs. */
function vmScope(): string | undefined {
  try {
    return readdirSync(`${CG}/machine.slice`).find((d) => scopeDomain(d) === DOMAIN);
  } catch {
    return undefined;
  }
}

interface State {
  isolated: string;
  /** Effective CPUs of the root and the host's top-level cgroups ("-" without cpuset files). */
  effective: Record<string, string>;
  /** cpuset.cpus.exclusive of machine.slice, the VM scope and its libvirt cgroup. */
  exclusive: Record<string, string>;
  /** cpuset.cpus.partition of each vCPU cgroup. */
  partitions: Record<string, string>;
  /** The lines of `status` about isolation and partitions. */
  status: string[];
  statusCode: number;
}

async function state(label: string): Promise<State> {
  const eff = (cg: string): string => readOr(`${CG}/${cg}/cpuset.cpus.effective`, '-') || '-';
  const effective = Object.fromEntries(['', 'machine.slice', ...HOST_CGROUPS].map((c) => [c || '/', eff(c)]));
  const scope = vmScope();
  const exclusive: Record<string, string> = {
    'machine.slice': readOr(`${CG}/machine.slice/cpuset.cpus.exclusive`, '-'),
  };
  const partitions: Record<string, string> = {};
  if (scope) {
    const lv = `${CG}/machine.slice/${scope}/libvirt`;
    exclusive.scope = readOr(`${CG}/machine.slice/${scope}/cpuset.cpus.exclusive`, '-');
    exclusive.libvirt = readOr(`${lv}/cpuset.cpus.exclusive`, '-');
    for (const d of readdirSync(lv)
      .filter((n) => /^vcpu\d+$/.test(n))
      .sort())
      partitions[d] = readOr(`${lv}/${d}/cpuset.cpus.partition`, '-');
  }
  const st = await cli(['status']);
  const status = st.stdout
    .split('\n')
    .filter((l) => /isolated|partition|VM CPUs|vcpu\d|leak/i.test(l))
    .map((l) => l.trim());
  const s: State = {
    isolated: readOr(`${CG}/cpuset.cpus.isolated`, '-'),
    effective,
    exclusive,
    partitions,
    status,
    statusCode: st.code,
  };
  figure(
    `systemd partition | ${label} | cpuset.cpus.isolated=${s.isolated || '(none)'} | effective ` +
      Object.entries(effective)
        .map(([c, v]) => `${c}=${v}`)
        .join(' ') +
      ` | exclusive ${Object.entries(exclusive)
        .map(([c, v]) => `${c}=${v || '(none)'}`)
        .join(' ')}` +
      ` | partitions ${
        Object.entries(partitions)
          .map(([c, v]) => `${c}=${v}`)
          .join(' ') || '(no VM cgroups)'
      }`,
  );
  figure(`systemd partition | ${label} | status exit ${st.code}: ${status.join(' / ')}`);
  return s;
}

/** Wait (bounded) until the state equals `before`; returns the remaining differences. */
async function settled(beforeSnap: Snapshot, units: string[]): Promise<string[]> {
  let diff: string[] = [];
  try {
    await waitFor(
      'the snapshot to equal the one before',
      () => {
        diff = diffSnapshots(beforeSnap, takeSnapshot('/', { units }));
        return diff.length === 0 ? true : undefined;
      },
      60_000,
      2000,
    );
  } catch {
    // the remaining differences are the result
  }
  return diff;
}

describe(
  'partition on a running libvirt VM under systemd: kept across daemon-reload and set-property',
  { skip },
  () => {
    let pin: Pinning;
    let units: string[];

    before(async () => {
      step('partition: starting libvirtd, defining the domain');
      ({ pin } = await defineDomain(DOMAIN, VM));
      units = topLevelUnits(['system.slice', 'user.slice', 'init.scope', 'machine.slice']);
    });

    after(() => {
      try {
        virsh('destroy', DOMAIN);
      } catch {
        // not running
      }
    });

    for (const order of [
      'release, then virsh destroy',
      'virsh destroy, then release (the hook order)',
    ] as const) {
      test(`partition ${DOMAIN} → daemon-reload → set-property machine.slice → ${order}: snapshot equals before`, async () => {
        const vcpuCpus = [...pin.vcpus.values()].reduce((a, b) => a.union(b), CpuSet.EMPTY);
        const snapBefore = takeSnapshot('/', { units });
        const sBefore = await state(`${order} | before the start`);
        step(`partition: virsh start (${order})`);
        virsh('start', DOMAIN);
        await waitRunning(DOMAIN);
        const journal = join(mkdtempSync(join(tmpdir(), 'vi-spart-')), 'j');
        step('partition: partition');
        const p = await cli(['-u', journal, 'partition', DOMAIN]);
        const sDuring = await state(`${order} | partitioned`);
        step('partition: daemon-reload');
        systemctl('daemon-reload');
        const sReload = await state(`${order} | after daemon-reload`);
        step('partition: set-property machine.slice');
        systemctl('set-property', '--runtime', 'machine.slice', 'CPUWeight=100');
        const sSetProp = await state(`${order} | after set-property --runtime machine.slice CPUWeight=100`);
        systemctl('set-property', '--runtime', 'machine.slice', 'CPUWeight=');
        let rel;
        if (order === 'release, then virsh destroy') {
          rel = await cli(['release', journal]);
          await state(`${order} | released, VM still running`);
          virsh('destroy', DOMAIN);
          await waitShutOff(DOMAIN);
        } else {
          virsh('destroy', DOMAIN);
          await waitShutOff(DOMAIN);
          await state(`${order} | destroyed, not yet released`);
          rel = await cli(['release', journal]);
        }
        const sAfter = await state(`${order} | after`);
        const diff = await settled(snapBefore, units);
        figure(
          `systemd partition | ${order} | snapshot after ${diff.length === 0 ? 'equal' : `${diff.length} differences`}`,
        );

        assert.equal(p.code, 0, p.stderr);
        assert.equal(sBefore.isolated, '', 'nothing isolated before');
        assert.equal(sDuring.isolated, vcpuCpus.toList(), "the kernel isolates the vCPUs' CPUs");
        assert.ok(
          Object.values(sDuring.partitions).length === pin.vcpus.size &&
            Object.values(sDuring.partitions).every((v) => v === 'isolated'),
          `every vCPU cgroup is an isolated partition: ${JSON.stringify(sDuring.partitions)}`,
        );
        for (const c of HOST_CGROUPS) {
          const eff = sDuring.effective[c]!;
          assert.ok(
            eff !== '-' && !CpuSet.parseList(eff).overlaps(vcpuCpus),
            `${c} lost ${vcpuCpus.toList()}: ${eff}`,
          );
        }
        assert.match(sDuring.status.join('\n'), /isolated/, 'status shows the partitions');
        // systemd's re-realization keeps all of it
        for (const [what, s] of [
          ['daemon-reload', sReload],
          ['set-property machine.slice', sSetProp],
        ] as const) {
          assert.equal(s.isolated, sDuring.isolated, `${what}: cpuset.cpus.isolated`);
          assert.deepEqual(s.partitions, sDuring.partitions, `${what}: partitions`);
          assert.deepEqual(s.exclusive, sDuring.exclusive, `${what}: cpuset.cpus.exclusive`);
          assert.deepEqual(s.effective, sDuring.effective, `${what}: effective CPUs`);
        }
        assert.equal(rel.code, 0, rel.stderr);
        assert.equal(sAfter.isolated, '', 'nothing isolated after');
        assert.ok(
          !existsSync(`${CG}/machine.slice`) || sAfter.exclusive['machine.slice'] !== vcpuCpus.toList(),
        );
        assert.deepEqual(diff, [], 'after release and stop, the snapshot equals the one before the start');
      });
    }
  },
);
