/** libvirt hook install / uninstall / list on fixture trees, and what the hook script does when libvirt runs it. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { distrust } from '../../src/kernel/trust.ts';
import {
  HOOK_MARKER,
  isOurHook,
  parseHookScript,
  renderHookScript,
  shQuote,
} from '../../src/libvirt/hook-script.ts';
import { buildFixture } from '../fixtures/build.ts';
import { cli } from '../support/cli.ts';
import {
  fakeInstall,
  noTrustedBase,
  tempTree,
  trustedBase,
  type FakeInstall,
} from '../support/hook-install.ts';
import { treeFiles, diffTrees, treeHash } from '../support/tree.ts';

// Hook install checks that root alone can change what the hook runs: the CLI runs here as a root-owned fixture
// install would (node and the tool from test/support/hook-install.ts), not as this test file.
const SKIP = noTrustedBase();
let inst: FakeInstall;
let base = '';
const saved = { execPath: process.execPath, argv1: process.argv[1]! };
before(() => {
  if (SKIP) return;
  base = tempTree(trustedBase()!);
  inst = fakeInstall(base);
  process.execPath = inst.node;
  process.argv[1] = inst.bin;
});
after(() => {
  process.execPath = saved.execPath;
  process.argv[1] = saved.argv1;
  if (base) fs.rmSync(base, { recursive: true, force: true });
});

const HOOKS = 'etc/libvirt/hooks';
const QEMU_D = `${HOOKS}/qemu.d`;

function profileFile(
  text = 'domain = "win11"\nvm_cpus = "L1"\nemulator_cpus = "C7,23"\n[isolate]\ngovernor = "performance"\n',
): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-hook-profile-'));
  const f = path.join(dir, 'win11.toml');
  fs.writeFileSync(f, text);
  return f;
}

function mode(p: string): number {
  return fs.statSync(p).mode & 0o7777;
}

/** Tree hash plus the mode of every entry under etc/ (treeHash ignores modes). */
function etcState(root: string): string {
  const modes: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d).sort()) {
      const full = path.join(d, e);
      modes.push(`${path.relative(root, full)} ${fs.lstatSync(full).mode.toString(8)}`);
      if (fs.lstatSync(full).isDirectory()) walk(full);
    }
  };
  walk(path.join(root, 'etc'));
  return `${treeHash(root)}\n${modes.join('\n')}`;
}

describe('libvirt hook install', { skip: SKIP }, () => {
  it('writes an executable script for the domain that calls the tool by absolute paths', async () => {
    const root = buildFixture('ryzen-5950x');
    const prof = profileFile();
    const r = await cli(root, ['libvirt', 'hook', 'install', 'win11', '--profile', prof]);
    assert.equal(r.code, 0, r.stderr);
    const file = path.join(root, QEMU_D, 'vfio-isolate-win11');
    assert.equal(mode(file), 0o755);
    assert.equal(mode(path.join(root, QEMU_D)), 0o755);
    const text = fs.readFileSync(file, 'utf8');
    assert.ok(text.startsWith('#!/bin/sh\n'));
    assert.ok(text.includes(`\n${HOOK_MARKER}\n`));
    assert.deepEqual(parseHookScript(text), {
      domain: 'win11',
      profile: prof,
      // the fake tree's /run (on a real machine: /run/vfio-isolate/win11.journal)
      journal: `${root}/run/vfio-isolate/win11.journal`,
      created: ['/etc/libvirt/hooks/qemu.d'],
      node: inst.node,
      tool: inst.entry,
      files: [`${inst.dir}/package.json`],
      trees: [`${inst.dir}/dist`, path.dirname(path.dirname(inst.addon)), inst.koffi],
    });
    assert.ok(text.includes(`[ "$1" = 'win11' ] || exit 0\n`));
    assert.ok(text.includes(`\nNODE=${shQuote(inst.node)}\n`), 'node by its absolute path');
    assert.ok(
      text.includes(`\nTOOL=${shQuote(inst.entry)}\n`),
      'the tool by its canonical path (not the /usr/local/bin link)',
    );
    assert.ok(
      text.includes('  out=$("$NODE" "$TOOL" -u "$JOURNAL" "$4" --profile "$PROFILE" </dev/null 2>&1)\n'),
    );
    assert.ok(text.includes('VFIO_ISOLATE_LOCK_WAIT_MS=5000\n'));
    assert.ok(text.includes('logger -t vfio-isolate'));
    assert.match(
      r.stdout,
      /^Installed the hook for domain win11: \/etc\/libvirt\/hooks\/qemu\.d\/vfio-isolate-win11\n/,
    );
    assert.match(r.stdout, /restart it before starting the domain/);
    const syntax = spawnSync('sh', ['-n', file]);
    assert.equal(syntax.status, 0, String(syntax.stderr));
  });

  it('install + uninstall leaves the tree exactly as it was (the hooks dir existed, qemu.d did not)', async () => {
    const root = buildFixture('ryzen-5950x');
    assert.ok(fs.existsSync(path.join(root, HOOKS)));
    const before = etcState(root);
    const files = treeFiles(root);
    const prof = profileFile();
    assert.equal((await cli(root, ['libvirt', 'hook', 'install', 'win11', '--profile', prof])).code, 0);
    assert.notEqual(etcState(root), before);
    const u = await cli(root, ['libvirt', 'hook', 'uninstall', 'win11']);
    assert.equal(u.code, 0, u.stderr);
    assert.equal(
      u.stdout,
      'Removed the hook for domain win11: /etc/libvirt/hooks/qemu.d/vfio-isolate-win11\n',
    );
    assert.deepEqual(diffTrees(files, treeFiles(root)), []);
    assert.equal(etcState(root), before);
  });

  it('creates /etc/libvirt/hooks too when missing, and removes it again', async () => {
    const root = buildFixture('intel-6c12t');
    fs.rmdirSync(path.join(root, HOOKS));
    const before = etcState(root);
    const r = await cli(root, [
      'libvirt',
      'hook',
      'install',
      'win11',
      '--profile',
      profileFile('vm_cpus = "C2-5,8-11"\n'),
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      parseHookScript(fs.readFileSync(path.join(root, QEMU_D, 'vfio-isolate-win11'), 'utf8'))?.created,
      ['/etc/libvirt/hooks', '/etc/libvirt/hooks/qemu.d'],
    );
    assert.equal((await cli(root, ['libvirt', 'hook', 'uninstall', 'win11'])).code, 0);
    assert.equal(etcState(root), before);
  });

  it('refuses when libvirt is not installed (no /etc/libvirt), writing nothing', async () => {
    const root = buildFixture('intel-6c12t');
    fs.rmSync(path.join(root, 'etc/libvirt'), { recursive: true });
    const before = etcState(root);
    const r = await cli(root, [
      'libvirt',
      'hook',
      'install',
      'win11',
      '--profile',
      profileFile('vm_cpus = "C2-5,8-11"\n'),
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\/etc\/libvirt does not exist: is libvirt installed\?/);
    assert.equal(etcState(root), before);
  });

  it('keeps an existing unrelated hook, and says no restart is needed then', async () => {
    const root = buildFixture('ryzen-5950x');
    const other = path.join(root, HOOKS, 'qemu');
    fs.writeFileSync(other, '#!/bin/bash\n# my own hook\nexit 0\n', { mode: 0o755 });
    fs.mkdirSync(path.join(root, QEMU_D));
    const mine = path.join(root, QEMU_D, '10-gpu-reset');
    fs.writeFileSync(mine, '#!/bin/sh\necho reset\n', { mode: 0o750 });
    const before = etcState(root);
    const r = await cli(root, ['libvirt', 'hook', 'install', 'win11', '--profile', profileFile()]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /restart/);
    assert.equal(fs.readFileSync(other, 'utf8'), '#!/bin/bash\n# my own hook\nexit 0\n');
    assert.equal(
      parseHookScript(fs.readFileSync(path.join(root, QEMU_D, 'vfio-isolate-win11'), 'utf8'))?.created.length,
      0,
    );
    assert.equal((await cli(root, ['libvirt', 'hook', 'uninstall', 'win11'])).code, 0);
    assert.equal(etcState(root), before, 'qemu.d existed before: it stays, with the other hook in it');
  });

  it('never clobbers a file it did not write (exit 1), and uninstall refuses to remove it', async () => {
    const root = buildFixture('ryzen-5950x');
    fs.mkdirSync(path.join(root, QEMU_D));
    const foreign = path.join(root, QEMU_D, 'vfio-isolate-win11');
    fs.writeFileSync(foreign, '#!/bin/sh\n# written by hand\n', { mode: 0o755 });
    const before = etcState(root);
    const r = await cli(root, ['libvirt', 'hook', 'install', 'win11', '--profile', profileFile()]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /vfio-isolate-win11 exists and was not written by vfio-isolate; leaving it alone/);
    assert.equal(etcState(root), before);
    const u = await cli(root, ['libvirt', 'hook', 'uninstall', 'win11']);
    assert.equal(u.code, 1);
    assert.match(u.stderr, /was not written by vfio-isolate; leaving it alone/);
    assert.equal(etcState(root), before);
    const n = await cli(root, ['-n', 'libvirt', 'hook', 'install', 'win11', '--profile', profileFile()]);
    assert.equal(n.code, 1, 'the dry run says so too');
  });

  it('refuses a symlink or a directory in the way', async () => {
    const root = buildFixture('ryzen-5950x');
    fs.mkdirSync(path.join(root, QEMU_D));
    fs.symlinkSync('/bin/true', path.join(root, QEMU_D, 'vfio-isolate-a'));
    fs.mkdirSync(path.join(root, QEMU_D, 'vfio-isolate-b'));
    const before = etcState(root);
    for (const d of ['a', 'b']) {
      const r = await cli(root, [
        'libvirt',
        'hook',
        'install',
        d,
        '--profile',
        profileFile('vm_cpus = "L1"\n'),
      ]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /not written by vfio-isolate/);
    }
    assert.equal(etcState(root), before);
  });

  it('updates its own file in place (new profile), keeping the record of created directories', async () => {
    const root = buildFixture('ryzen-5950x');
    const before = etcState(root);
    assert.equal(
      (await cli(root, ['libvirt', 'hook', 'install', 'win11', '--profile', profileFile()])).code,
      0,
    );
    const p2 = profileFile('vm_cpus = "C8-15,24-31"\n');
    const r = await cli(root, ['libvirt', 'hook', 'install', 'win11', '--profile', p2]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Updated the hook/);
    const info = parseHookScript(fs.readFileSync(path.join(root, QEMU_D, 'vfio-isolate-win11'), 'utf8'));
    assert.equal(info?.profile, p2);
    assert.deepEqual(info?.created, ['/etc/libvirt/hooks/qemu.d']);
    assert.deepEqual(
      fs.readdirSync(path.join(root, QEMU_D)),
      ['vfio-isolate-win11'],
      'no temporary file left',
    );
    assert.equal((await cli(root, ['libvirt', 'hook', 'uninstall', 'win11'])).code, 0);
    assert.equal(etcState(root), before);
  });

  it('rejects domain names with /, whitespace, quotes or shell metacharacters (exit 2), writing nothing', async () => {
    const root = buildFixture('ryzen-5950x');
    const before = etcState(root);
    const prof = profileFile('vm_cpus = "L1"\n');
    const bad = [
      'a/b',
      '../x',
      'my vm',
      'tab\there',
      "it's",
      'say"hi"',
      'x;rm -rf',
      '$(id)',
      'a`b`',
      'a|b',
      'a&b',
      'a>b',
      'a*',
      '-rf',
      '.hidden',
      'new\nline',
      'é',
    ];
    for (const d of bad) {
      const r = await cli(root, ['libvirt', 'hook', 'install', d, '--profile', prof]);
      assert.equal(r.code, 2, `${JSON.stringify(d)}: ${r.stderr}`);
      assert.match(r.stderr, d === '-rf' ? /unknown option -rf/ : /domain name/);
      const u = await cli(root, ['libvirt', 'hook', 'uninstall', d]);
      assert.equal(u.code, 2, JSON.stringify(d));
    }
    assert.equal(etcState(root), before);
    for (const d of ['win11', 'Win_11.gaming+vfio', 'vm-2']) {
      const r = await cli(root, ['libvirt', 'hook', 'install', d, '--profile', prof]);
      assert.equal(r.code, 0, `${d}: ${r.stderr}`);
    }
  });

  it('profile problems: missing option or file, wrong domain, invalid content; nothing written', async () => {
    const root = buildFixture('ryzen-5950x');
    const before = etcState(root);
    const cases: [string[], number, RegExp][] = [
      [['win11'], 2, /--profile FILE is required/],
      [['win11', '--profile', '/nonexistent/win11.toml'], 1, /does not exist/],
      [['win10', '--profile', profileFile()], 2, /profile of domain "win11", not "win10"/],
      [['win11', '--profile', profileFile('vm_cpus = "L7"\n')], 2, /vm_cpus in win11\.toml/],
      [['win11', '--profile', profileFile('vm_cpus = "L1"\nbogus = 1\n')], 2, /unknown key "bogus"/],
    ];
    for (const [args, code, re] of cases) {
      const r = await cli(root, ['libvirt', 'hook', 'install', ...args]);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
    }
    assert.equal(etcState(root), before);
  });

  it('the options may come before the domain too', async () => {
    const root = buildFixture('ryzen-5950x');
    const r = await cli(root, ['libvirt', 'hook', 'install', '--profile', profileFile(), 'win11']);
    assert.equal(r.code, 0, r.stderr);
  });

  it('--dry-run prints the script and writes nothing', async () => {
    const root = buildFixture('ryzen-5950x');
    const before = etcState(root);
    const r = await cli(root, ['-n', 'libvirt', 'hook', 'install', 'win11', '--profile', profileFile()]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^Would write \/etc\/libvirt\/hooks\/qemu\.d\/vfio-isolate-win11 \(mode 0755\):\n\n#!\/bin\/sh\n/,
    );
    assert.equal(etcState(root), before);
  });
});

describe('libvirt hook uninstall', { skip: SKIP }, () => {
  it('a domain without a hook: exit 1', async () => {
    const root = buildFixture('ryzen-5950x');
    const r = await cli(root, ['libvirt', 'hook', 'uninstall', 'win11']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no hook is installed for domain win11/);
  });

  it('removes only the domain named', async () => {
    const root = buildFixture('ryzen-5950x');
    const prof = profileFile('vm_cpus = "L1"\n');
    for (const d of ['a', 'b'])
      assert.equal((await cli(root, ['libvirt', 'hook', 'install', d, '--profile', prof])).code, 0);
    assert.equal((await cli(root, ['libvirt', 'hook', 'uninstall', 'a'])).code, 0);
    assert.deepEqual(fs.readdirSync(path.join(root, QEMU_D)), ['vfio-isolate-b']);
  });
});

describe('libvirt hook list', { skip: SKIP }, () => {
  it('shows our hooks with domain and profile, and other hooks', async () => {
    const root = buildFixture('ryzen-5950x');
    const empty = await cli(root, ['libvirt', 'hook', 'list']);
    assert.equal(empty.code, 0);
    assert.equal(empty.stdout, 'No vfio-isolate hooks in /etc/libvirt/hooks/qemu.d.\n');
    const p1 = profileFile();
    const p2 = profileFile('vm_cpus = "C8-11,24-27"\n');
    assert.equal((await cli(root, ['libvirt', 'hook', 'install', 'win11', '--profile', p1])).code, 0);
    assert.equal((await cli(root, ['libvirt', 'hook', 'install', 'linux', '--profile', p2])).code, 0);
    fs.writeFileSync(path.join(root, HOOKS, 'qemu'), '#!/bin/sh\n', { mode: 0o755 });
    fs.writeFileSync(path.join(root, QEMU_D, 'zz-other'), '#!/bin/sh\n', { mode: 0o755 });
    const r = await cli(root, ['libvirt', 'hook', 'list']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^DOMAIN +PROFILE +HOOK$/);
    assert.match(lines[1]!, new RegExp(`^linux +${p2} +/etc/libvirt/hooks/qemu\\.d/vfio-isolate-linux$`));
    assert.match(lines[2]!, new RegExp(`^win11 +${p1} +/etc/libvirt/hooks/qemu\\.d/vfio-isolate-win11$`));
    assert.equal(
      lines[3],
      'Other QEMU hooks (not managed by vfio-isolate): /etc/libvirt/hooks/qemu, /etc/libvirt/hooks/qemu.d/zz-other',
    );
    const j = await cli(root, ['--json', 'libvirt', 'hook', 'list']);
    const parsed = JSON.parse(j.stdout) as {
      hooks: { domain: string; profile: string; profileMissing: boolean }[];
      others: string[];
    };
    assert.deepEqual(
      parsed.hooks.map((h) => [h.domain, h.profile, h.profileMissing]),
      [
        ['linux', p2, false],
        ['win11', p1, false],
      ],
    );
    assert.equal(parsed.others.length, 2);
  });

  it('exits 1 and marks a hook whose profile is gone', async () => {
    const root = buildFixture('ryzen-5950x');
    const p = profileFile();
    assert.equal((await cli(root, ['libvirt', 'hook', 'install', 'win11', '--profile', p])).code, 0);
    fs.rmSync(p);
    const r = await cli(root, ['libvirt', 'hook', 'list']);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /\(missing!\)/);
  });
});

describe('the hook script, run as libvirt runs it', { skip: SKIP }, () => {
  /**
   * A fake node that records its arguments and environment; a fake logger that records messages. In a root-owned
   * directory: the hook runs nothing from a place others can change.
   */
  function fakes(rc: number, measureSeconds = 0) {
    const dir = tempTree(base, 'run-');
    const tool = path.join(dir, 'opt/vfio-isolate/dist/vfio-isolate.mjs');
    fs.mkdirSync(path.dirname(tool), { recursive: true });
    fs.writeFileSync(tool, '// the tool\n');
    const calls = path.join(dir, 'calls');
    const logged = path.join(dir, 'logged');
    const node = path.join(dir, 'fake node');
    fs.writeFileSync(
      node,
      `#!/bin/sh\nif [ "$2" = measure ]; then sleep ${measureSeconds}; echo "measure CPUs 8-15, passive, ${measureSeconds} s; no leaks"; fi\nprintf '%s|' "$@" >>'${calls}'\necho "lock=$VFIO_ISOLATE_LOCK_WAIT_MS" >>'${calls}'\necho "vfio-isolate: line one"\necho "second line" >&2\nexit ${rc}\n`,
      {
        mode: 0o755,
      },
    );
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, 'logger'), `#!/bin/sh\nshift 3\necho "$*" >>'${logged}'\n`, {
      mode: 0o755,
    });
    const text = renderHookScript({
      domain: 'win11',
      profile: "/etc/vfio isolate/win11's.toml",
      node,
      tool,
      journal: '/run/vfio-isolate/win11.journal',
    });
    // Only the PATH line changes, so that the fake logger is found.
    const script = path.join(dir, 'vfio-isolate-win11');
    fs.writeFileSync(script, text.replace(/^PATH=/m, `PATH=${bin}:`), { mode: 0o755 });
    const read = (f: string): string => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '');
    return { script, tool, calls: () => read(calls), logged: () => read(logged) };
  }
  const run = (script: string, args: string[]) =>
    spawnSync(script, args, { input: '<domain/>', encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });

  it('prepare begin runs isolate with the journal and profile, by absolute paths, and logs', () => {
    const f = fakes(0);
    const r = run(f.script, ['win11', 'prepare', 'begin', '-']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      f.calls(),
      `${f.tool}|-u|/run/vfio-isolate/win11.journal|isolate|--profile|/etc/vfio isolate/win11's.toml|lock=5000\n`,
    );
    assert.equal(
      f.logged(),
      'win11 prepare begin: vfio-isolate isolate\nwin11: vfio-isolate: line one\nwin11: second line\n',
    );
  });

  it('release end runs release', () => {
    const f = fakes(0);
    assert.equal(run(f.script, ['win11', 'release', 'end', '-']).status, 0);
    assert.ok(
      f.calls().startsWith(`${f.tool}|-u|/run/vfio-isolate/win11.journal|release|--profile|`),
      f.calls(),
    );
  });

  it('started begin runs partition with the profile (which decides), and never fails the hook', () => {
    const ok = fakes(0);
    assert.equal(run(ok.script, ['win11', 'started', 'begin', '-']).status, 0);
    assert.ok(
      ok.calls().startsWith(`${ok.tool}|-u|/run/vfio-isolate/win11.journal|partition|--profile|`),
      ok.calls(),
    );
    const failing = fakes(1);
    assert.equal(
      run(failing.script, ['win11', 'started', 'begin', '-']).status,
      0,
      'a running VM is not stopped',
    );
    assert.match(failing.logged(), /win11 started begin: vfio-isolate partition exited with status 1/);
  });

  it('started begin also starts measure --after-start in the background: the hook returns at once, the line is logged', async () => {
    const f = fakes(0, 3);
    const t0 = performance.now();
    // spawnSync returns when the hook has exited and its stdout and stderr are closed, as libvirt waits for it
    const r = run(f.script, ['win11', 'started', 'begin', '-']);
    const took = performance.now() - t0;
    assert.equal(r.status, 0, r.stderr);
    assert.ok(took < 2500, `the hook waited ${Math.round(took)} ms for the 3 s measurement`);
    assert.doesNotMatch(f.calls(), /\|measure\|/, 'still measuring');
    const deadline = Date.now() + 15000;
    while (!/measure CPUs/.test(f.logged()) && Date.now() < deadline)
      await new Promise((res) => setTimeout(res, 200));
    assert.match(
      f.calls(),
      new RegExp(
        `${f.tool}\\|measure\\|--profile\\|/etc/vfio isolate/win11's\\.toml\\|--after-start\\|lock=5000\n`,
      ),
    );
    assert.match(f.logged(), /^win11: measure CPUs 8-15, passive, 3 s; no leaks$/m);
    assert.doesNotMatch(f.logged(), /vfio-isolate measure exited/);
  });

  /** Wait until the fake logger has logged a line matching `re` (the background measurement), or 15 s. */
  async function logged(f: { logged: () => string }, re: RegExp): Promise<string> {
    const deadline = Date.now() + 15000;
    while (!re.test(f.logged()) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
    return f.logged();
  }

  it('the background measurement runs under timeout -k 10 3700, and without timeout(1) still runs', async () => {
    const f = fakes(0);
    const bin = path.join(path.dirname(f.script), 'bin');
    const seen = path.join(path.dirname(f.script), 'timeout-args');
    fs.writeFileSync(
      path.join(bin, 'timeout'),
      `#!/bin/sh\nprintf '%s|' "$@" >'${seen}'\nshift 3\nexec "$@"\n`,
      { mode: 0o755 },
    );
    assert.equal(run(f.script, ['win11', 'started', 'begin', '-']).status, 0);
    assert.match(await logged(f, /measure CPUs/), /^win11: measure CPUs/m);
    assert.ok(fs.readFileSync(seen, 'utf8').startsWith(`-k|10|3700|`), fs.readFileSync(seen, 'utf8'));

    // a PATH without timeout(1): the tools the hook needs, and the fake logger
    const g = fakes(0);
    const only = path.join(path.dirname(g.script), 'bin');
    for (const t of ['stat', 'find', 'head', 'sleep'])
      fs.symlinkSync(
        spawnSync('sh', ['-c', `command -v ${t}`], { encoding: 'utf8' }).stdout.trim(),
        path.join(only, t),
      );
    const text = fs.readFileSync(g.script, 'utf8').replace(/^PATH=.*$/m, `PATH=${only}`);
    fs.writeFileSync(g.script, text);
    assert.equal(run(g.script, ['win11', 'started', 'begin', '-']).status, 0);
    assert.match(await logged(g, /measure CPUs/), /^win11: measure CPUs/m);
  });

  it('started begin with a tool others can write: neither partition nor measure runs, both say why', async () => {
    const f = fakes(0);
    fs.chmodSync(f.tool, 0o666);
    assert.equal(run(f.script, ['win11', 'started', 'begin', '-']).status, 0);
    const text = await logged(f, /not running vfio-isolate measure/);
    assert.match(
      text,
      /win11 started begin: not running vfio-isolate measure as root: .*vfio-isolate\.mjs is writable by others/,
    );
    assert.match(text, /not running vfio-isolate partition as root/);
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(f.calls(), '', 'nothing ran');
  });

  it('prepare begin and release end start no measurement', async () => {
    const f = fakes(0);
    run(f.script, ['win11', 'prepare', 'begin', '-']);
    run(f.script, ['win11', 'release', 'end', '-']);
    await new Promise((res) => setTimeout(res, 500));
    assert.doesNotMatch(f.calls(), /\|measure\|/);
  });

  it('does nothing for other domains or other operations', () => {
    const f = fakes(0);
    for (const args of [
      ['win10', 'prepare', 'begin', '-'],
      ['win11x', 'prepare', 'begin', '-'],
      ['win11', 'start', 'begin', '-'],
      ['win10', 'started', 'begin', '-'],
      ['win11', 'stopped', 'end', '-'],
      ['win11', 'migrate', 'begin', '-'],
    ]) {
      assert.equal(run(f.script, args).status, 0, args.join(' '));
    }
    assert.equal(f.calls(), '');
    assert.equal(f.logged(), '');
  });

  it('a failed isolate fails the hook (libvirt shows its output and does not start the domain)', () => {
    const f = fakes(1);
    const r = run(f.script, ['win11', 'prepare', 'begin', '-']);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, 'vfio-isolate: line one\nsecond line\n');
    assert.match(f.logged(), /win11 prepare begin: vfio-isolate isolate exited with status 1\n$/);
  });

  it('a failed release is logged but does not fail the hook', () => {
    const f = fakes(1);
    const r = run(f.script, ['win11', 'release', 'end', '-']);
    assert.equal(r.status, 0);
    assert.match(f.logged(), /vfio-isolate release exited with status 1/);
  });
});

const MAIN = path.resolve(import.meta.dirname, '../support/sim-main.ts');
const cloneProblem = distrust(MAIN, { uid: 0 }) ?? distrust(process.execPath, { uid: 0 });

describe('the hook script with the real tool, end to end on a fixture tree', () => {
  it(
    'prepare begin isolates the VM CPUs, release end puts everything back',
    {
      skip: cloneProblem
        ? `the hook refuses to run this clone as root: ${cloneProblem.path} is ${cloneProblem.why}`
        : false,
    },
    () => {
      const root = buildFixture('ryzen-5950x', { irqbalance: false });
      const before = treeFiles(root);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-hook-e2e-'));
      const bin = path.join(dir, 'bin');
      fs.mkdirSync(bin);
      const logged = path.join(dir, 'logged');
      fs.writeFileSync(path.join(bin, 'logger'), `#!/bin/sh\nshift 3\necho "$*" >>'${logged}'\n`, {
        mode: 0o755,
      });
      const prof = profileFile('domain = "win11"\nvm_cpus = "L1"\n[isolate]\ngovernor = "performance"\n');
      const journal = `${root}/run/vfio-isolate/win11.journal`;
      const text = renderHookScript({
        domain: 'win11',
        profile: prof,
        node: saved.execPath,
        nodeArgs: ['--import', import.meta.resolve('tsx')],
        tool: MAIN,
        journal,
      });
      const script = path.join(dir, 'vfio-isolate-win11');
      fs.writeFileSync(script, text.replace(/^PATH=/m, `PATH=${bin}:`), { mode: 0o755 });
      const env = { PATH: '/usr/bin:/bin', VFIO_ISOLATE_ROOT: root };
      const start = spawnSync(script, ['win11', 'prepare', 'begin', '-'], {
        input: '<domain/>',
        encoding: 'utf8',
        env,
      });
      assert.equal(start.status, 0, `${start.stderr}\n${fs.readFileSync(logged, 'utf8')}`);
      const cg = (p: string): string => fs.readFileSync(path.join(root, 'sys/fs/cgroup', p), 'utf8').trim();
      assert.equal(cg('system.slice/cpuset.cpus'), '0-7,16-23');
      assert.equal(cg('user.slice/cpuset.cpus'), '0-7,16-23');
      assert.equal(
        fs
          .readFileSync(path.join(root, 'sys/devices/system/cpu/cpu8/cpufreq/scaling_governor'), 'utf8')
          .trim(),
        'performance',
      );
      assert.ok(fs.existsSync(journal));
      assert.match(fs.readFileSync(logged, 'utf8'), /^win11 prepare begin: vfio-isolate isolate\n/);
      const again = spawnSync(script, ['win11', 'prepare', 'begin', '-'], {
        input: '',
        encoding: 'utf8',
        env,
      });
      assert.equal(again.status, 1, 'a second start while isolated is refused (libvirt shows why)');
      assert.match(again.stderr, /already active/);
      const stop = spawnSync(script, ['win11', 'release', 'end', '-'], {
        input: '<domain/>',
        encoding: 'utf8',
        env,
      });
      assert.equal(stop.status, 0, stop.stderr);
      assert.deepEqual(
        diffTrees(before, treeFiles(root)).filter((d) => !d.includes('.sim-user-affinity')),
        [],
        'release end restores the tree',
      );
    },
  );
});

describe('the hook measures after started with the real tool, on a fixture tree', () => {
  it(
    'after_start: a passive measurement of the profile CPUs in the background, its one line in syslog',
    {
      skip: cloneProblem
        ? `the hook refuses to run this clone as root: ${cloneProblem.path} is ${cloneProblem.why}`
        : false,
    },
    async () => {
      const root = buildFixture('ryzen-5950x', { irqbalance: false });
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-hook-measure-'));
      const bin = path.join(dir, 'bin');
      fs.mkdirSync(bin);
      const logged = path.join(dir, 'logged');
      fs.writeFileSync(path.join(bin, 'logger'), `#!/bin/sh\nshift 3\necho "$*" >>'${logged}'\n`, {
        mode: 0o755,
      });
      const prof = profileFile(
        'domain = "win11"\nvm_cpus = "L1"\n[measure]\nafter_start = 0.5\nmax_irqs_per_s = 1000000\n',
      );
      const text = renderHookScript({
        domain: 'win11',
        profile: prof,
        node: saved.execPath,
        nodeArgs: ['--import', import.meta.resolve('tsx')],
        tool: MAIN,
        journal: `${root}/run/vfio-isolate/win11.journal`,
      });
      const script = path.join(dir, 'vfio-isolate-win11');
      fs.writeFileSync(script, text.replace(/^PATH=/m, `PATH=${bin}:`), { mode: 0o755 });
      const r = spawnSync(script, ['win11', 'started', 'begin', '-'], {
        input: '<domain/>',
        encoding: 'utf8',
        env: { PATH: '/usr/bin:/bin', VFIO_ISOLATE_ROOT: root },
      });
      assert.equal(r.status, 0, r.stderr);
      const read = (): string => (fs.existsSync(logged) ? fs.readFileSync(logged, 'utf8') : '');
      const deadline = Date.now() + 60000;
      while (!/measure CPUs/.test(read()) && Date.now() < deadline)
        await new Promise((res) => setTimeout(res, 250));
      assert.match(
        read(),
        /^win11: measure CPUs 8-15,24-31, passive, 0\.5 s; worst CPU \d+: .*; within budget$/m,
      );
      assert.doesNotMatch(read(), /exited with status/);
    },
  );
});

describe('hook-script helpers', () => {
  it('isOurHook needs the marker near the top of a script', () => {
    assert.equal(isOurHook('#!/bin/sh\n# x\n'), false);
    assert.equal(isOurHook(`#!/bin/sh\n# x\n${HOOK_MARKER}\n`), true);
    assert.equal(isOurHook(`${HOOK_MARKER}\n`), false);
  });
  it('shQuote', () => {
    assert.equal(shQuote('/usr/bin/node'), "'/usr/bin/node'");
    assert.equal(shQuote("it's"), `'it'\\''s'`);
    const r = spawnSync('sh', ['-c', `printf %s ${shQuote('a $b `c` "d" \'e\'')}`], { encoding: 'utf8' });
    assert.equal(r.stdout, 'a $b `c` "d" \'e\'');
  });
});
