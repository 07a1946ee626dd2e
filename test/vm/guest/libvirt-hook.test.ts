/**
 * A root-owned tarball install passes `libvirt hook install`, and the hook it writes, run the way libvirtd runs it
 * (`HOOK DOMAIN prepare begin -` / `release end -`, domain XML on stdin, a minimal environment), isolates the VM
 * CPUs on the guest's real kernel and undoes it. Then a directory of the install made group-writable: the hook runs
 * nothing at prepare begin (exit 1, the reason on stderr) and status reports the hook as unsafe.
 * The install is made on the host before the guest boots (test/vm/tarball-install.ts: npm pack, npm install -g of
 * the .tgz into a prefix under the repository; copied into the guest's /opt when the checkout lies where others can
 * write, such as /tmp). cgroup v2 modes only.
 */
import { distrust } from '../../../src/kernel/trust.ts';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { CpuSet } from '../../../src/cpus/cpuset.ts';
import { parseHookScript } from '../../../src/libvirt/hook-script.ts';
import { diffSnapshots, takeSnapshot } from '../snapshot.ts';
import { TARBALL_PREFIX } from '../tarball-install.ts';
import { cli } from './cli.ts';
import { guestMode, notInGuest } from './guest-env.ts';

const mode = guestMode();
const HOST_BIN = `${TARBALL_PREFIX}/bin/vfio-isolate`;
const skip =
  notInGuest() ||
  (mode === 'v1-hybrid' ? 'cgroup v2 modes only' : false) ||
  (existsSync(HOST_BIN) ? false : `no tarball install at ${TARBALL_PREFIX} (the suite makes it on the host)`);

/**
 * The install the hook runs from. The suite installs into the checkout; a checkout under a directory others can write
 * (e.g. /tmp) cannot hold code that root runs, and hook install rightly refuses it. Then the install is copied, as
 * root would install it, into a root-owned directory of the guest's own root (its overlay; the host is untouched).
 */
const GUEST_PREFIX = '/opt/vfio-isolate-guest-install';
function trustedPrefix(): string {
  if (!distrust(`${TARBALL_PREFIX}/lib/node_modules/vfio-isolate`, { kind: 'dir' })) return TARBALL_PREFIX;
  rmSync(GUEST_PREFIX, { recursive: true, force: true });
  mkdirSync(GUEST_PREFIX, { recursive: true, mode: 0o755 });
  made.push(GUEST_PREFIX);
  for (const d of ['bin', 'lib']) {
    const cp = spawnSync('cp', ['-a', `${TARBALL_PREFIX}/${d}`, `${GUEST_PREFIX}/${d}`], {
      encoding: 'utf8',
    });
    assert.equal(cp.status, 0, cp.stderr);
  }
  return GUEST_PREFIX;
}
let BIN = '';
let PKG = '';

const HOOK = '/etc/libvirt/hooks/qemu.d/vfio-isolate-vmtest';
const PROFILE = '/etc/vfio-isolate/vmtest.toml';
const made: string[] = [];

function hook(op: string, sub: string) {
  return spawnSync(HOOK, ['vmtest', op, sub, '-'], {
    input: '<domain type="kvm"><name>vmtest</name></domain>',
    encoding: 'utf8',
    env: { PATH: '/usr/bin:/bin' },
  });
}

const read = (p: string): string => readFileSync(p, 'utf8').trim();
const affinity = (pid: number): CpuSet =>
  CpuSet.parseList(/^Cpus_allowed_list:\s*(\S+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!);

describe(`libvirt hook from a root-owned tarball install (${mode ?? 'host'})`, { skip }, () => {
  before(() => {
    const prefix = trustedPrefix();
    BIN = `${prefix}/bin/vfio-isolate`;
    PKG = `${prefix}/lib/node_modules/vfio-isolate`;
  });
  after(async () => {
    if (existsSync(HOOK)) await cli(['libvirt', 'hook', 'uninstall', 'vmtest']);
    for (const d of made.reverse()) rmSync(d, { recursive: true, force: true });
  });

  test('install passes; prepare begin isolates (koffi loads from the install), release end restores', async () => {
    for (const d of ['/etc/libvirt', '/etc/vfio-isolate']) {
      if (!existsSync(d)) {
        mkdirSync(d, { mode: 0o755 });
        made.push(d);
      }
    }
    writeFileSync(PROFILE, 'domain = "vmtest"\nvm_cpus = "C4-7"\n', { mode: 0o644 });
    made.push(PROFILE);
    assert.equal(statSync(PKG).uid, 0, 'the install is root-owned');

    const inst = spawnSync(BIN, ['libvirt', 'hook', 'install', 'vmtest', '--profile', PROFILE], {
      encoding: 'utf8',
    });
    assert.equal(inst.status, 0, inst.stderr);
    assert.match(
      inst.stdout,
      /^Installed the hook for domain vmtest: \/etc\/libvirt\/hooks\/qemu\.d\/vfio-isolate-vmtest\n/,
    );
    const info = parseHookScript(readFileSync(HOOK, 'utf8'))!;
    assert.equal(info.node, realpathSync(process.execPath));
    assert.equal(info.tool, `${PKG}/dist/vfio-isolate.mjs`, 'the canonical entry, not the bin link');
    assert.ok(info.trees.includes(`${PKG}/node_modules/koffi`), info.trees.join(' '));

    const before = takeSnapshot();
    const start = hook('prepare', 'begin');
    assert.equal(start.status, 0, start.stderr);
    assert.equal(read('/sys/fs/cgroup/system.slice/cpuset.cpus'), '0-3');
    assert.equal(read('/sys/fs/cgroup/user.slice/cpuset.cpus'), '0-3');
    assert.ok(!affinity(2).overlaps(CpuSet.parseList('4-7')), 'kthreadd moved (sched_setaffinity via koffi)');
    assert.ok(existsSync('/run/vfio-isolate/vmtest.journal'));
    const stop = hook('release', 'end');
    assert.equal(stop.status, 0, stop.stderr);
    assert.deepEqual(diffSnapshots(before, takeSnapshot()), [], 'release end restores the snapshot');
  });

  test('a group-writable directory in the install: the hook runs nothing, status says why', async () => {
    assert.ok(existsSync(HOOK), 'installed by the test before');
    const dist = `${PKG}/dist`;
    const before = takeSnapshot();
    chmodSync(dist, 0o775);
    try {
      const start = hook('prepare', 'begin');
      assert.equal(start.status, 1, 'libvirt does not start the domain');
      assert.equal(
        start.stderr,
        `vfio-isolate: vmtest prepare begin: not running vfio-isolate isolate as root: ${dist} is writable by group; install vfio-isolate and node root-owned, then run vfio-isolate libvirt hook install vmtest again\n`,
      );
      assert.deepEqual(diffSnapshots(before, takeSnapshot()), [], 'nothing changed');
      const stop = hook('release', 'end');
      assert.equal(stop.status, 0, 'release end does not fail the hook');
      const s = await cli(['status', '--json']);
      const j = JSON.parse(s.stdout) as {
        hooks: { domain: string; safe: boolean; problem: string | null }[];
      };
      assert.deepEqual(
        j.hooks.map((h) => [h.domain, h.safe, h.problem]),
        [
          [
            'vmtest',
            false,
            `the hook runs the tool ${dist}/vfio-isolate.mjs as root, but ${dist} is writable by group`,
          ],
        ],
      );
    } finally {
      chmodSync(dist, 0o755);
    }
  });
});
