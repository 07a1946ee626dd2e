/**
 * Issue 14: libvirt for real, in the systemd guest (mode `systemd`). libvirtd runs only inside the throw-away guest.
 * A tiny domain (TCG, 2 vCPUs, 64 MiB, no disk, no network: it idles in its firmware) gets its <cputune> from
 * `vfio-isolate libvirt cputune`; its hook comes from `vfio-isolate libvirt hook install`, run as libvirt runs it
 * (the built CLI, dist/vfio-isolate.mjs, with node). Then:
 *  - `virsh start`: the hook fired (journalctl -t vfio-isolate), `status` shows 0 movable leaks, every vCPU thread
 *    and every emulator thread runs only where the XML pins it;
 *  - `systemctl daemon-reload` while it runs: still isolated, pinning unchanged;
 *  - `virsh destroy`: release ran, the snapshot (with systemd's AllowedCPUs/AllowedMemoryNodes of every top-level
 *    unit) equals the one before the start;
 *  - again with a stop from inside QEMU (QMP `quit`, what a guest poweroff looks like to libvirt).
 */
import { distrust } from '../../../src/kernel/trust.ts';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CpuSet } from '../../../src/cpus/cpuset.ts';
import { REPO_ROOT } from '../cache.ts';
import { diffSnapshots, takeSnapshot, type Snapshot } from '../snapshot.ts';
import { cli } from './cli.ts';
import {
  allowedOf,
  figure,
  leaks,
  notInSystemdGuest,
  readOr,
  run,
  step,
  systemctl,
  topLevelUnits,
  waitFor,
} from './systemd-env.ts';

// libvirt hook install refuses (rightly) to make root run files that others could change: a checkout under a
// directory writable by others (e.g. /tmp) cannot be the hook's target, so the scenario is skipped there.
const untrusted = distrust(join(REPO_ROOT, 'dist'), { kind: 'dir' });
const skip =
  notInSystemdGuest() ||
  (untrusted
    ? `the checkout is not root's alone (${untrusted.path} is ${untrusted.why}): no hook from it`
    : false);
const DOMAIN = 'vfio-t';
const VM = 'C4-5';
const PROFILE = `/etc/vfio-isolate/${DOMAIN}.toml`;
const PID_FILE = `/run/libvirt/qemu/${DOMAIN}.pid`;
const CLI = join(REPO_ROOT, 'dist', 'vfio-isolate.mjs');

const virsh = (...args: string[]): string => run('virsh', ['-c', 'qemu:///system', ...args], 180_000);

interface Pinning {
  vcpus: Map<number, CpuSet>;
  emulator: CpuSet;
}

function parsePinning(xml: string): Pinning {
  const vcpus = new Map<number, CpuSet>();
  for (const m of xml.matchAll(/<vcpupin vcpu='(\d+)' cpuset='([^']+)'\/>/g))
    vcpus.set(Number(m[1]), CpuSet.parseList(m[2]!));
  const emu = /<emulatorpin cpuset='([^']+)'\/>/.exec(xml)?.[1];
  assert.ok(emu && vcpus.size > 0, `cputune XML without pins:\n${xml}`);
  return { vcpus, emulator: CpuSet.parseList(emu) };
}

function domainXml(cputune: string): string {
  // host-passthrough needs KVM: under TCG a plain <cpu> with the same topology.
  const tune = cputune.replace(/<cpu mode='host-passthrough'>/, '<cpu>');
  return `<domain type='qemu'>
  <name>${DOMAIN}</name>
  <memory unit='MiB'>64</memory>
${tune
  .trim()
  .split('\n')
  .map((l) => `  ${l}`)
  .join('\n')}
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}

/** Every thread of the running QEMU with its allowed CPUs; fails when a thread is not where the XML pins it. */
function checkThreads(pin: Pinning): { vcpu: number; emulator: number; wrong: string[] } {
  const pid = Number(readOr(PID_FILE));
  assert.ok(pid > 0, `no pid in ${PID_FILE}`);
  const wrong: string[] = [];
  let vcpu = 0;
  let emulator = 0;
  for (const tid of run('ls', [`/proc/${pid}/task`])
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)) {
    const comm = readOr(`/proc/${pid}/task/${tid}/comm`);
    const allowed = allowedOf(pid, tid);
    if (!allowed) continue; // exited meanwhile
    const m = /^CPU (\d+)\/TCG$/.exec(comm);
    const want = m ? pin.vcpus.get(Number(m[1])) : pin.emulator;
    if (m) vcpu++;
    else emulator++;
    if (!want || !allowed.equals(want))
      wrong.push(`${tid} (${comm}) may run on ${allowed.toList()}, pinned to ${want?.toList() ?? 'nothing'}`);
  }
  return { vcpu, emulator, wrong };
}

function hookLines(): string[] {
  return run('journalctl', ['-t', 'vfio-isolate', '-o', 'cat', '--no-pager']).split('\n').filter(Boolean);
}

async function waitRunning(): Promise<void> {
  await waitFor('the domain to run', () =>
    virsh('domstate', DOMAIN).trim() === 'running' && existsSync(PID_FILE) ? true : undefined,
  );
}

async function waitShutOff(): Promise<void> {
  await waitFor('the domain to shut off', () =>
    virsh('domstate', DOMAIN).trim() === 'shut off' ? true : undefined,
  );
}

/** Wait (bounded) until the state equals `before`; returns the remaining differences. */
async function settled(before: Snapshot, units: string[]): Promise<string[]> {
  let diff: string[] = [];
  try {
    await waitFor(
      'release to restore the snapshot',
      () => {
        diff = diffSnapshots(before, takeSnapshot('/', { units }));
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

describe('libvirt in the systemd guest: the installed hook isolates and releases', { skip }, () => {
  let pin: Pinning;
  let units: string[];

  before(async () => {
    assert.ok(existsSync(CLI), `${CLI} missing: build it (node scripts/build.mjs) before the guest suite`);
    step('libvirt: starting libvirtd');
    systemctl('start', 'libvirtd');
    // libvirtd starts virtlogd for a domain's log on first use: up before the baseline snapshots, as on a host
    systemctl('start', 'virtlogd');
    mkdirSync('/etc/vfio-isolate', { recursive: true, mode: 0o755 });
    writeFileSync(PROFILE, `domain = "${DOMAIN}"\nvm_cpus = "${VM}"\n`, { mode: 0o644 });
    const tune = await cli(['libvirt', 'cputune', '--profile', PROFILE, '--iothreads', '0']);
    assert.equal(tune.code, 0, tune.stderr);
    pin = parsePinning(tune.stdout);
    const xmlFile = join(mkdtempSync(join(tmpdir(), 'vi-libvirt-')), `${DOMAIN}.xml`);
    writeFileSync(xmlFile, domainXml(tune.stdout));
    step('libvirt: defining the domain');
    virsh('define', xmlFile);
    step('libvirt: installing the hook');
    // As a user installs it: the built CLI by absolute path (the hook calls node and this file).
    const out = run(process.execPath, [CLI, 'libvirt', 'hook', 'install', DOMAIN, '--profile', PROFILE]);
    assert.match(out, /Installed the hook/);
    // libvirtd looks for hook scripts only when it starts.
    step('libvirt: restarting libvirtd');
    systemctl('restart', 'libvirtd');
    step('libvirt: ready');
    units = topLevelUnits(['system.slice', 'user.slice', 'init.scope', 'machine.slice']);
  });

  after(() => {
    try {
      virsh('destroy', DOMAIN);
    } catch {
      // not running
    }
  });

  for (const stop of ['virsh destroy', 'QEMU quits by itself (QMP quit)'] as const) {
    test(`virsh start → isolated and pinned; daemon-reload → still isolated; ${stop} → snapshot equals before`, async () => {
      const hooksBefore = hookLines().length;
      const snapBefore = takeSnapshot('/', { units });
      const t0 = Date.now();
      step(`libvirt: virsh start (${stop})`);
      virsh('start', DOMAIN);
      await waitRunning();
      const startSec = (Date.now() - t0) / 1000;
      step('libvirt: running, checking');
      const fired = hookLines().slice(hooksBefore);
      const started = await leaks(VM);
      const threads = checkThreads(pin);
      systemctl('daemon-reload');
      const reloaded = await leaks(VM);
      const threadsAfterReload = checkThreads(pin);
      const t1 = Date.now();
      if (stop === 'virsh destroy') {
        virsh('destroy', DOMAIN);
      } else {
        // QEMU exits before it answers: virsh then reports the monitor connection reset, which is the success case
        try {
          virsh('qemu-monitor-command', DOMAIN, '{"execute":"quit"}');
        } catch (e) {
          if (!/Connection reset by peer|End of file|not running/i.test(String(e))) throw e;
        }
      }
      step('libvirt: stopped, waiting for release');
      await waitShutOff();
      const diff = await settled(snapBefore, units);
      const stopSec = (Date.now() - t1) / 1000;
      const released = hookLines().slice(hooksBefore);
      step(`libvirt: hook log since the start:\n${released.join('\n')}`);
      figure(
        `libvirt | ${stop} | start ${startSec.toFixed(1)} s, hook lines ${fired.length}, leaks after start ${started.movable}, ` +
          `${threads.vcpu} vCPU + ${threads.emulator} emulator threads, ${threads.wrong.length} off their pins | ` +
          `after daemon-reload: leaks ${reloaded.movable}, ${threadsAfterReload.wrong.length} off their pins | ` +
          `stop+release ${stopSec.toFixed(1)} s, snapshot ${diff.length === 0 ? 'equal' : `${diff.length} differences`}`,
      );
      assert.ok(
        fired.some((l) => /prepare begin: vfio-isolate isolate/.test(l)),
        `the prepare hook fired:\n${fired.join('\n')}`,
      );
      assert.ok(
        !fired.some((l) => /exited with status/.test(l)),
        `the hook's isolate succeeded:\n${fired.join('\n')}`,
      );
      assert.equal(started.movable, 0, `leaks after virsh start:\n${started.lines.join('\n')}`);
      assert.equal(threads.vcpu, pin.vcpus.size, 'one TCG thread per vCPU');
      assert.deepEqual(threads.wrong, [], 'every QEMU thread runs only where the XML pins it');
      assert.equal(reloaded.movable, 0, `leaks after daemon-reload:\n${reloaded.lines.join('\n')}`);
      assert.deepEqual(threadsAfterReload.wrong, [], 'pinning after daemon-reload');
      assert.ok(
        released.some((l) => /release end: vfio-isolate release/.test(l)),
        `the release hook fired:\n${released.join('\n')}`,
      );
      assert.deepEqual(
        diff,
        [],
        `after the stop, the snapshot equals the one before the start; hook log:\n${released.join('\n')}`,
      );
    });
  }
});
