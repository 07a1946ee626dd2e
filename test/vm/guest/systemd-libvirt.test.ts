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
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO_ROOT } from '../cache.ts';
import { diffSnapshots, takeSnapshot, type Snapshot } from '../snapshot.ts';
import {
  checkThreads,
  defineDomain,
  hookLines,
  virsh,
  waitRunning,
  waitShutOff,
  type Pinning,
} from './libvirt-domain.ts';
import {
  figure,
  leaks,
  notInSystemdGuest,
  run,
  step,
  systemctl,
  topLevelUnits,
  waitFor,
} from './systemd-env.ts';

const skip = notInSystemdGuest();
const DOMAIN = 'vfio-t';
const VM = 'C4-5';
const PROFILE = `/etc/vfio-isolate/${DOMAIN}.toml`;
const BUILT = join(REPO_ROOT, 'dist', 'vfio-isolate.mjs');

/**
 * The CLI the hook runs. libvirt hook install refuses (rightly) to make root run files that others could change, so
 * a checkout under a directory others can write (e.g. /tmp) cannot be the hook's target: then dist/ and koffi are
 * copied, as root would install them, into a root-owned directory of the guest's own root (the host is untouched).
 */
const GUEST_COPY = '/opt/vfio-isolate-guest-checkout';
function trustedCli(): string {
  if (!distrust(join(REPO_ROOT, 'dist'), { kind: 'dir' })) return BUILT;
  rmSync(GUEST_COPY, { recursive: true, force: true });
  mkdirSync(join(GUEST_COPY, 'node_modules'), { recursive: true, mode: 0o755 });
  // koffi and its native addon package (@koromix/koffi-<platform>-<arch>)
  for (const d of ['dist', 'node_modules/koffi', 'node_modules/@koromix']) {
    const cp = spawnSync('cp', ['-a', join(REPO_ROOT, d), join(GUEST_COPY, d)], { encoding: 'utf8' });
    assert.equal(cp.status, 0, cp.stderr);
  }
  const why = distrust(join(GUEST_COPY, 'dist'), { kind: 'dir' });
  assert.equal(why, undefined, `the copy in ${GUEST_COPY} must be root's alone`);
  return join(GUEST_COPY, 'dist', 'vfio-isolate.mjs');
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
    assert.ok(
      existsSync(BUILT),
      `${BUILT} missing: build it (node scripts/build.mjs) before the guest suite`,
    );
    const CLI = trustedCli();
    step('libvirt: starting libvirtd, defining the domain');
    ({ pin } = await defineDomain(DOMAIN, VM));
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
    rmSync(GUEST_COPY, { recursive: true, force: true });
  });

  for (const stop of ['virsh destroy', 'QEMU quits by itself (QMP quit)'] as const) {
    test(`virsh start → isolated and pinned; daemon-reload → still isolated; ${stop} → snapshot equals before`, async () => {
      const hooksBefore = hookLines().length;
      const snapBefore = takeSnapshot('/', { units });
      const t0 = Date.now();
      step(`libvirt: virsh start (${stop})`);
      virsh('start', DOMAIN);
      await waitRunning(DOMAIN);
      const startSec = (Date.now() - t0) / 1000;
      step('libvirt: running, checking');
      const fired = hookLines().slice(hooksBefore);
      const started = await leaks(VM);
      const threads = checkThreads(DOMAIN, pin);
      systemctl('daemon-reload');
      const reloaded = await leaks(VM);
      const threadsAfterReload = checkThreads(DOMAIN, pin);
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
      await waitShutOff(DOMAIN);
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
