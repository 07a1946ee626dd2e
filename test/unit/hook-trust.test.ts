/**
 * Root never runs code a user can change: `libvirt hook install` refuses a hook whose node, tool, chunks or koffi
 * (native addon included) root alone could not have written; the hook checks again before every run; `status`
 * warns about installed hooks that fail the check. Fixture installs are root-owned trees (test/support/hook-install.ts);
 * parts are chowned to uid 1000 or made group-writable to play the user's clone, nvm's node, a shared directory.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { parseHookScript } from '../../src/libvirt/hook-script.ts';
import { buildFixture } from '../fixtures/build.ts';
import { cli, type CliResult } from '../support/cli.ts';
import {
  asInvokedBy,
  chownTree,
  fakeInstall,
  fakeNode,
  fakePackage,
  NATIVE_PKG,
  noTrustedBase,
  tempTree,
  trustedBase,
} from '../support/hook-install.ts';
import { treeHash } from '../support/tree.ts';

const SKIP = noTrustedBase();
const BASE = SKIP ? '' : trustedBase()!;
const made: string[] = [];
after(() => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});
function tree(): string {
  const d = tempTree(BASE);
  made.push(d);
  return d;
}

const HOOK = 'etc/libvirt/hooks/qemu.d/vfio-isolate-win11';
const TOOL_HINT =
  'hint: install vfio-isolate from its tarball, so that root owns a copy: npm pack && sudo npm install -g --ignore-scripts ./vfio-isolate-*.tgz (or npm run install-global), then run the install with that copy\n';
const nodeHint = (tool: string): string =>
  `hint: use a root-owned node, such as Debian's /usr/bin/node (apt install nodejs), and install the hook with it: sudo /usr/bin/node ${tool} libvirt hook install ...\n`;

function profile(dir: string): string {
  const f = path.join(dir, 'win11.toml');
  fs.writeFileSync(f, 'domain = "win11"\nvm_cpus = "L1"\n');
  return f;
}

async function install(machine: string, node: string, tool: string, prof: string): Promise<CliResult> {
  return asInvokedBy(node, tool, () =>
    cli(machine, ['libvirt', 'hook', 'install', 'win11', '--profile', prof]),
  );
}

/** Install must refuse with exactly `stderr`, exit 1, writing nothing under the machine's /etc. */
async function refused(node: string, tool: string, stderr: string): Promise<void> {
  const machine = buildFixture('ryzen-5950x');
  const before = treeHash(machine);
  const r = await install(machine, node, tool, profile(tree()));
  assert.equal(r.stderr, stderr);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.equal(treeHash(machine), before, 'nothing written');
  assert.ok(!fs.existsSync(path.join(machine, HOOK)));
}

describe('libvirt hook install: what root will run must be root-owned', { skip: SKIP }, () => {
  it('a root-owned global install from the tarball passes; the hook records canonical paths', async () => {
    const t = tree();
    const inst = fakeInstall(t);
    const machine = buildFixture('ryzen-5950x');
    const r = await install(machine, inst.node, inst.bin, profile(t));
    assert.equal(r.code, 0, r.stderr);
    const info = parseHookScript(fs.readFileSync(path.join(machine, HOOK), 'utf8'))!;
    assert.equal(info.node, inst.node);
    assert.equal(info.tool, inst.entry, 'the entry behind /usr/local/bin/vfio-isolate, not the link');
    assert.deepEqual(info.files, [path.join(inst.dir, 'package.json')]);
    assert.deepEqual(info.trees, [
      path.join(inst.dir, 'dist'),
      path.join(inst.dir, 'node_modules', '@koromix', NATIVE_PKG),
      inst.koffi,
    ]);
  });

  it('refuses a user-owned clone', async () => {
    const t = tree();
    const node = fakeNode(path.join(t, 'usr/bin/node'), path.join(t, 'calls'));
    const clone = fakePackage(path.join(t, 'home/user/src/vfio-isolate'));
    chownTree(path.join(t, 'home/user'));
    await refused(
      node,
      clone.entry,
      `vfio-isolate: libvirt hook install: the hook would run the tool ${clone.entry} as root, but ${t}/home/user is owned by uid 1000, not by root\n` +
        TOOL_HINT,
    );
  });

  it("refuses a user-owned node (nvm's, reached through a root-owned symlink)", async () => {
    const t = tree();
    const inst = fakeInstall(t);
    const nvmNode = fakeNode(path.join(t, 'home/user/.nvm/versions/node/v20.19.0/bin/node'), inst.calls);
    chownTree(path.join(t, 'home/user'));
    const link = path.join(t, 'usr/local/bin/node');
    fs.symlinkSync(nvmNode, link);
    await refused(
      link,
      inst.bin,
      `vfio-isolate: libvirt hook install: the hook would run node ${nvmNode} (via ${link}) as root, but ${t}/home/user is owned by uid 1000, not by root\n` +
        nodeHint(inst.entry),
    );
  });

  it('refuses a group-writable directory on the way to the tool', async () => {
    const t = tree();
    const node = fakeNode(path.join(t, 'usr/bin/node'), path.join(t, 'calls'));
    const pkg = fakePackage(path.join(t, 'opt/shared/vfio-isolate'));
    fs.chmodSync(path.join(t, 'opt/shared'), 0o775);
    await refused(
      node,
      pkg.entry,
      `vfio-isolate: libvirt hook install: the hook would run the tool ${pkg.entry} as root, but ${t}/opt/shared is writable by group\n` +
        TOOL_HINT,
    );
  });

  it('refuses a symlinked install (/usr/local/lib/node_modules/vfio-isolate → a user clone, as npm install -g . makes)', async () => {
    const t = tree();
    const node = fakeNode(path.join(t, 'usr/bin/node'), path.join(t, 'calls'));
    const clone = fakePackage(path.join(t, 'home/user/vfio-isolate'));
    chownTree(path.join(t, 'home/user'));
    const global = path.join(t, 'usr/local/lib/node_modules/vfio-isolate');
    fs.mkdirSync(path.dirname(global), { recursive: true });
    fs.symlinkSync(clone.dir, global);
    const bin = path.join(t, 'usr/local/bin/vfio-isolate');
    fs.mkdirSync(path.dirname(bin), { recursive: true });
    fs.symlinkSync('../lib/node_modules/vfio-isolate/dist/vfio-isolate.mjs', bin);
    await refused(
      node,
      bin,
      `vfio-isolate: libvirt hook install: the hook would run the tool ${clone.entry} (via ${bin}) as root, but ${t}/home/user is owned by uid 1000, not by root\n` +
        TOOL_HINT,
    );
  });

  it('refuses a user-owned split chunk (dist/chunks/)', async () => {
    const t = tree();
    const inst = fakeInstall(t);
    fs.chownSync(inst.chunk, 1000, 1000);
    await refused(
      inst.node,
      inst.bin,
      `vfio-isolate: libvirt hook install: the hook would run a file of the tool ${inst.chunk} as root, but ${inst.chunk} is owned by uid 1000, not by root\n` +
        TOOL_HINT,
    );
  });

  it("refuses koffi's native addon when others can write it", async () => {
    const t = tree();
    const inst = fakeInstall(t);
    fs.chmodSync(inst.addon, 0o757);
    await refused(
      inst.node,
      inst.bin,
      `vfio-isolate: libvirt hook install: the hook would run koffi's native addon ${inst.addon} as root, but ${inst.addon} is writable by others\n` +
        TOOL_HINT,
    );
  });

  it('checks koffi where it really loads from (a node_modules symlinked into a user-owned tree)', async () => {
    const t = tree();
    const inst = fakeInstall(t);
    const elsewhere = path.join(t, 'home/user/node_modules');
    fs.mkdirSync(path.dirname(elsewhere), { recursive: true });
    fs.renameSync(path.join(inst.dir, 'node_modules'), elsewhere);
    fs.symlinkSync(elsewhere, path.join(inst.dir, 'node_modules'));
    chownTree(path.join(t, 'home/user'));
    await refused(
      inst.node,
      inst.bin,
      `vfio-isolate: libvirt hook install: the hook would run koffi's native addon ${elsewhere}/@koromix/${NATIVE_PKG} as root, but ${t}/home/user is owned by uid 1000, not by root\n` +
        TOOL_HINT,
    );
  });

  it('refuses a tool under a sticky, world-writable directory (/tmp): not accepted for executables', async () => {
    const t = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-hook-sticky-'));
    made.push(t);
    fs.chmodSync(t, 0o755);
    const tmp = fs.realpathSync(os.tmpdir());
    assert.ok((fs.statSync(tmp).mode & 0o1002) === 0o1002, `${tmp} is sticky and world-writable`);
    const inst = fakeInstall(t);
    await refused(
      rootNode(),
      inst.bin,
      `vfio-isolate: libvirt hook install: the hook would run the tool ${inst.entry} (via ${inst.bin}) as root, but ${tmp} is writable by others\n` +
        TOOL_HINT,
    );
  });
});

/** A root-owned fake node in the trusted base. */
function rootNode(): string {
  const t = tree();
  return fakeNode(path.join(t, 'usr/bin/node'), path.join(t, 'calls'));
}

describe('the installed hook checks again before every run', { skip: SKIP }, () => {
  /** A root-owned install, its hook installed for win11, and the hook copied with a fake logger first on PATH. */
  async function installed() {
    const t = tree();
    const inst = fakeInstall(t);
    const machine = buildFixture('ryzen-5950x');
    const prof = profile(t);
    const r = await install(machine, inst.node, inst.bin, prof);
    assert.equal(r.code, 0, r.stderr);
    const logged = path.join(t, 'logged');
    const bin = path.join(t, 'fake-bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, 'logger'), `#!/bin/sh\nshift 3\necho "$*" >>'${logged}'\n`, {
      mode: 0o755,
    });
    const text = fs.readFileSync(path.join(machine, HOOK), 'utf8');
    const script = path.join(t, 'vfio-isolate-win11');
    // Only the PATH line changes, so that the fake logger is found.
    fs.writeFileSync(script, text.replace(/^PATH=/m, `PATH=${bin}:`), { mode: 0o755 });
    const read = (f: string): string => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '');
    const run = (args: string[], shell = 'bash') =>
      spawnSync(shell, [script, ...args], {
        input: '<domain/>',
        encoding: 'utf8',
        env: { PATH: '/usr/bin:/bin' },
      });
    return {
      t,
      inst,
      prof,
      journal: `${machine}/run/vfio-isolate/win11.journal`,
      run,
      calls: () => read(inst.calls),
      logged: () => read(logged),
    };
  }

  const refusal = (why: string, op = 'prepare begin', cmd = 'isolate'): string =>
    `win11 ${op}: not running vfio-isolate ${cmd} as root: ${why}; install vfio-isolate and node root-owned, then run vfio-isolate libvirt hook install win11 again`;

  it('runs node with the entry by their canonical paths while everything is root-owned', async () => {
    const h = await installed();
    const r = h.run(['win11', 'prepare', 'begin', '-']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(h.calls(), `${h.inst.entry}|-u|${h.journal}|isolate|--profile|${h.prof}|lock=5000\n`);
    assert.equal(h.logged(), 'win11 prepare begin: vfio-isolate isolate\nwin11: vfio-isolate: ran\n');
  });

  it('a directory on the way that became user-owned: nothing runs, one line logged, prepare fails, release does not', async () => {
    const h = await installed();
    const dist = path.dirname(h.inst.entry);
    fs.chownSync(dist, 1000, 1000);
    const line = refusal(`${dist} is owned by uid 1000, not by root`);
    for (const shell of ['bash', 'sh']) {
      fs.rmSync(path.join(h.t, 'logged'), { force: true });
      const r = h.run(['win11', 'prepare', 'begin', '-'], shell);
      assert.equal(r.status, 1, `${shell}: libvirt does not start the domain`);
      assert.equal(r.stderr, `vfio-isolate: ${line}\n`, shell);
      assert.equal(h.logged(), `${line}\n`, `${shell}: exactly one line to syslog`);
    }
    fs.rmSync(path.join(h.t, 'logged'));
    const rel = h.run(['win11', 'release', 'end', '-']);
    assert.equal(rel.status, 0, 'release end never fails the hook');
    assert.equal(
      h.logged(),
      `${refusal(`${dist} is owned by uid 1000, not by root`, 'release end', 'release')}\n`,
    );
    assert.equal(h.calls(), '', 'node never ran');
    const other = h.run(['win11', 'reconnect', 'begin', '-']);
    assert.equal(
      other.status,
      0,
      'other operations exit 0 without checking (libvirtd reconnects to running VMs)',
    );
  });

  it('node that became user-owned, or group-writable', async () => {
    const h = await installed();
    fs.chownSync(h.inst.node, 1000, 1000);
    let r = h.run(['win11', 'prepare', 'begin', '-']);
    assert.equal(r.status, 1);
    assert.equal(h.logged(), `${refusal(`${h.inst.node} is owned by uid 1000, not by root`)}\n`);
    fs.chownSync(h.inst.node, 0, 0);
    fs.chmodSync(h.inst.node, 0o775);
    fs.rmSync(path.join(h.t, 'logged'));
    r = h.run(['win11', 'prepare', 'begin', '-']);
    assert.equal(r.status, 1);
    assert.equal(h.logged(), `${refusal(`${h.inst.node} is writable by group`)}\n`);
    assert.equal(h.calls(), '');
  });

  it('a file under koffi that others can write now (the trees are checked file by file)', async () => {
    const h = await installed();
    const f = path.join(h.inst.koffi, 'index.cjs');
    fs.chmodSync(f, 0o666);
    const r = h.run(['win11', 'prepare', 'begin', '-']);
    assert.equal(r.status, 1);
    assert.equal(h.logged(), `${refusal(`${f} is writable by group or others`)}\n`);
    assert.equal(h.calls(), '');
  });

  it('a directory on the way replaced by a symlink', async () => {
    const h = await installed();
    const pkg = h.inst.dir;
    fs.renameSync(pkg, `${pkg}.real`);
    fs.symlinkSync(`${pkg}.real`, pkg);
    const r = h.run(['win11', 'prepare', 'begin', '-']);
    assert.equal(r.status, 1);
    assert.equal(
      h.logged(),
      `${refusal(`${pkg} is a symbolic link now (it was not when the hook was installed)`)}\n`,
    );
    assert.equal(h.calls(), '');
  });

  it('node gone (nvm version removed, node moved): says so clearly', async () => {
    const h = await installed();
    fs.rmSync(h.inst.node);
    const r = h.run(['win11', 'prepare', 'begin', '-']);
    assert.equal(r.status, 1);
    const line = `win11 prepare begin: not running vfio-isolate isolate: node ${h.inst.node} is gone (moved or uninstalled since the hook was installed); run vfio-isolate libvirt hook install win11 again with a root-owned node`;
    assert.equal(r.stderr, `vfio-isolate: ${line}\n`);
    assert.equal(h.logged(), `${line}\n`);
  });
});

describe('status warns about installed hooks that fail the check', { skip: SKIP }, () => {
  it('names the hook, the path and why (human line and --json); a safe hook is listed as root-owned', async () => {
    const t = tree();
    const inst = fakeInstall(t);
    const machine = buildFixture('ryzen-5950x');
    assert.equal((await install(machine, inst.node, inst.bin, profile(t))).code, 0);
    let r = await cli(machine, ['status']);
    assert.match(r.stdout, /^ {2}libvirt hooks +win11 \(root-owned\)$/m);
    assert.doesNotMatch(r.stdout, /Unsafe libvirt hooks/);
    let j = JSON.parse((await cli(machine, ['status', '--json'])).stdout) as { hooks: unknown[] };
    assert.deepEqual(j.hooks, [
      {
        domain: 'win11',
        path: '/etc/libvirt/hooks/qemu.d/vfio-isolate-win11',
        node: inst.node,
        tool: inst.entry,
        safe: true,
        problem: null,
      },
    ]);

    fs.chmodSync(inst.addon, 0o775);
    const problem = `the hook runs a file the tool loads ${inst.addon} as root, but ${inst.addon} is writable by group`;
    r = await cli(machine, ['status']);
    assert.match(r.stdout, /^ {2}libvirt hooks +win11 \(unsafe\)$/m);
    assert.ok(
      r.stdout.includes(
        `\nUnsafe libvirt hooks (libvirtd runs them as root at every VM start; they refuse to run until fixed):\n` +
          `  /etc/libvirt/hooks/qemu.d/vfio-isolate-win11: ${problem}; fix: install vfio-isolate and node root-owned (npm run install-global), then vfio-isolate libvirt hook install win11 --profile FILE\n`,
      ),
      r.stdout,
    );
    j = JSON.parse((await cli(machine, ['status', '--json'])).stdout) as { hooks: unknown[] };
    assert.deepEqual(j.hooks, [
      {
        domain: 'win11',
        path: '/etc/libvirt/hooks/qemu.d/vfio-isolate-win11',
        node: inst.node,
        tool: inst.entry,
        safe: false,
        problem,
      },
    ]);

    fs.rmSync(inst.node);
    const gone = JSON.parse((await cli(machine, ['status', '--json'])).stdout) as {
      hooks: { problem: string }[];
    };
    assert.equal(gone.hooks[0]!.problem, `the hook runs node ${inst.node} as root, but ${inst.node} is gone`);
  });
});
