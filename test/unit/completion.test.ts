/**
 * Shell completions: the bash script is run for real (bash sources it, COMP_WORDS/COMP_CWORD/COMP_LINE/COMP_POINT
 * are set, the completion function is called and COMPREPLY printed), with `vfio-isolate` a shell function that
 * runs this checkout on a fixture tree, so dynamic values (cgroups, governors, CPUs) come from the hidden helper.
 * fish is run for real too (`complete -C`); zsh is checked with `zsh -n` and run with the completion system's
 * primitives (_describe, compadd, ...) replaced by functions that print what would be offered. zsh and fish are
 * skipped with a message when not installed; with VFIO_REQUIRE_SHELLS=1 (set by .ci/run, which installs them) a
 * missing shell is a failure instead.
 */
import { testBundle } from '../support/bundle.ts';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { completionEntries } from '../../src/cli/completion.ts';
import { mainHelp } from '../../src/cli/help.ts';
import { COMMANDS } from '../../src/cli/table.ts';
import { buildFixture, removeFixture } from '../fixtures/build.ts';
import { cli } from '../support/cli.ts';
import { simWrites, treeHash } from '../support/tree.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

function has(shell: string): boolean {
  return spawnSync(shell, ['-c', 'exit 0'], { stdio: 'ignore' }).status === 0;
}
const HAS_ZSH = has('zsh');
const HAS_FISH = has('fish');
const REQUIRE_SHELLS = process.env.VFIO_REQUIRE_SHELLS === '1';

it('zsh and fish are installed where VFIO_REQUIRE_SHELLS=1 requires them', { skip: !REQUIRE_SHELLS }, () => {
  assert.ok(HAS_ZSH, 'zsh is not installed: its completion tests would be skipped');
  assert.ok(HAS_FISH, 'fish is not installed: its completion tests would be skipped');
});

const visibleNames = COMMANDS.filter((c) => !c.hidden).map((c) => c.name);
const lines = (s: string): string[] => s.split('\n').filter(Boolean);

const bundle = testBundle;

/** A shell function `vfio-isolate` that runs this checkout on ROOT (the scripts call it for dynamic values). */
function shim(root: string, fish = false): string {
  const run = `VFIO_ISOLATE_ROOT=${JSON.stringify(root)} ${JSON.stringify(process.execPath)} ${JSON.stringify(bundle())}`;
  return fish ? `function vfio-isolate\n  env ${run} $argv\nend\n` : `vfio-isolate() { ${run} "$@"; }\n`;
}

const SEP = '@@@';

/**
 * Completes each line with the bash script, as bash itself would call it: words split like COMP_WORDBREAKS does
 * for these lines (spaces, and "=" as its own word), the cursor at the end. Returns COMPREPLY per line.
 */
function bashComplete(script: string, root: string, cmdLines: string[], cwd = REPO): string[][] {
  const quote = (w: string): string => `'${w.replace(/'/g, `'\\''`)}'`;
  const body = cmdLines
    .map((l) => {
      // bash splits at blanks and makes "=" a word of its own (COMP_WORDBREAKS); the word at the cursor may be empty
      const words = l.replace(/=/g, ' = ').trim().split(/\s+/);
      if (/\s$/.test(l)) words.push('');
      return [
        `COMP_WORDS=(${words.map(quote).join(' ')}); COMP_CWORD=${words.length - 1}`,
        `COMP_LINE='${l.replace(/'/g, `'\\''`)}'; COMP_POINT=\${#COMP_LINE}`,
        `COMPREPLY=(); _vfio_isolate; printf '%s\\n' "\${COMPREPLY[@]}"; echo ${SEP}`,
      ].join('\n');
    })
    .join('\n');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-compl-'));
  try {
    fs.writeFileSync(path.join(dir, 'completion.bash'), script);
    fs.writeFileSync(
      path.join(dir, 'run.bash'),
      `${shim(root)}source ./completion.bash\ncd ${JSON.stringify(cwd)}\n${body}\n`,
    );
    const r = spawnSync('bash', ['--norc', '--noprofile', path.join(dir, 'run.bash')], {
      cwd: dir,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '', 'the completion function writes nothing to stderr');
    const out = r.stdout.split(`${SEP}\n`).map((chunk) => lines(chunk));
    out.pop();
    assert.equal(out.length, cmdLines.length);
    return out;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('completion command and the hidden helper', () => {
  let root = '';
  before(() => {
    root = buildFixture('ryzen-5950x');
  });
  after(() => removeFixture(root));

  it('prints a script for each shell, unprivileged, without touching the machine', async () => {
    const h = treeHash(root);
    for (const shell of ['bash', 'zsh', 'fish']) {
      const r = await cli(root, ['completion', shell]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '');
      assert.match(
        r.stdout,
        new RegExp(`^(#compdef vfio-isolate\\n)?# ${shell} completion for vfio-isolate`),
      );
      for (const name of visibleNames) assert.ok(r.stdout.includes(name), `${shell} script knows ${name}`);
    }
    assert.equal(treeHash(root), h);
    assert.deepEqual(simWrites(root), []);
  });

  it('the helper is hidden from help and from the completion table', () => {
    assert.ok(!mainHelp(COMMANDS, 'x').includes('__complete'));
    assert.ok(!completionEntries(COMMANDS).some((e) => e.key.startsWith('__')));
    assert.ok(COMMANDS.some((c) => c.name === '__complete' && c.hidden));
  });

  it('cgroups: the children of the typed directory, from the hierarchy', async () => {
    const top = await cli(root, ['__complete', 'cgroups', '']);
    assert.deepEqual(lines(top.stdout), [
      '/',
      '/init.scope',
      '/machine.slice',
      '/system.slice',
      '/user.slice',
    ]);
    const nested = await cli(root, ['__complete', 'cgroups', '/user.slice/us']);
    assert.deepEqual(lines(nested.stdout), ['/user.slice/user-1000.slice']);
    const bare = await cli(root, ['__complete', 'cgroups', 'sys']);
    assert.ok(lines(bare.stdout).includes('system.slice'), bare.stdout);
    const bad = await cli(root, ['__complete', 'cgroups', '/../x']);
    assert.deepEqual([bad.code, bad.stdout, bad.stderr], [0, '', '']);
  });

  it('governors, CPU hints and node hints of the machine', async () => {
    const g = await cli(root, ['__complete', 'governors', '']);
    assert.deepEqual(lines(g.stdout).sort(), [
      'conservative',
      'ondemand',
      'performance',
      'powersave',
      'schedutil',
      'userspace',
    ]);
    const c = await cli(root, ['__complete', 'cpus', '']);
    assert.deepEqual(lines(c.stdout), [
      'C0-31',
      'C0-7,16-23',
      'C8-15,24-31',
      'N0',
      'L0',
      'L1',
      'P0',
      'S0-31',
    ]);
    const n = await cli(root, ['__complete', 'nodes', '']);
    assert.deepEqual(lines(n.stdout), ['N0']);
  });

  it('other machines: two NUMA nodes (v1 hierarchy), intel_pstate governors, no cpuset controller', async () => {
    const tr = buildFixture('tr-1920x');
    const intel = buildFixture('intel-6c12t');
    const nocpuset = buildFixture('v2-nocpuset');
    try {
      assert.deepEqual(lines((await cli(tr, ['__complete', 'nodes', ''])).stdout), ['N0', 'N1', 'N0-1']);
      assert.ok(lines((await cli(tr, ['__complete', 'cpus', ''])).stdout).includes('N1'));
      assert.deepEqual(lines((await cli(intel, ['__complete', 'governors', ''])).stdout), [
        'performance',
        'powersave',
      ]);
      const none = await cli(nocpuset, ['__complete', 'cgroups', '/']);
      assert.deepEqual([none.code, none.stderr], [0, '']);
    } finally {
      removeFixture(tr);
      removeFixture(intel);
      removeFixture(nocpuset);
    }
  });
});

describe('bash completion, run in bash', () => {
  let root = '';
  let script = '';
  before(async () => {
    root = buildFixture('ryzen-5950x');
    script = (await cli(root, ['completion', 'bash'])).stdout;
  });
  after(() => removeFixture(root));

  it('passes bash -n', () => {
    const r = spawnSync('bash', ['-n'], { input: script, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });

  it('completes commands, options, subcommands, choices, cgroups, governors and CPUs', () => {
    const h = treeHash(root);
    const cases: [string, (got: string[]) => void][] = [
      ['vfio-isolate ', (got) => assert.deepEqual(got, visibleNames)],
      [
        'vfio-isolate cpu',
        (got) => assert.deepEqual(got, ['cpuset-create', 'cpuset-modify', 'cpuset-delete', 'cpu-governor']),
      ],
      [
        'vfio-isolate -',
        (got) =>
          assert.deepEqual(got, [
            '-v',
            '--verbose',
            '-d',
            '--debug',
            '-u',
            '--undo-file',
            '-n',
            '--dry-run',
            '--json',
            '--force',
            '--no-rollback',
            '-h',
            '--help',
            '-V',
            '--version',
          ]),
      ],
      [
        'vfio-isolate cpuset-modify -',
        (got) =>
          assert.deepEqual(got, [
            '--cpus',
            '--mems',
            '-ce',
            '--cpu-exclusive',
            '-nce',
            '--no-cpu-exclusive',
            '-me',
            '--mem-exclusive',
            '-nme',
            '--no-mem-exclusive',
            '-mm',
            '--mem-migrate',
            '-nmm',
            '--no-mem-migrate',
            '-lb',
            '--sched-load-balance',
            '-nlb',
            '--no-sched-load-balance',
            '-h',
            '--help',
          ]),
      ],
      ['vfio-isolate cpuset-modify -n', (got) => assert.deepEqual(got, ['-nce', '-nme', '-nmm', '-nlb'])],
      ['vfio-isolate irq-affinity ', (got) => assert.deepEqual(got, ['mask', 'add'])],
      [
        'vfio-isolate irq-affinity mask ',
        (got) =>
          assert.deepEqual(got, ['C0-31', 'C0-7,16-23', 'C8-15,24-31', 'N0', 'L0', 'L1', 'P0', 'S0-31']),
      ],
      ['vfio-isolate irq-affinity mask L', (got) => assert.deepEqual(got, ['L0', 'L1'])],
      [
        'vfio-isolate cpuset-modify /',
        (got) =>
          assert.deepEqual(got, ['/', '/init.scope', '/machine.slice', '/system.slice', '/user.slice']),
      ],
      ['vfio-isolate cpuset-modify --cpus C0-6,16-22 /us', (got) => assert.deepEqual(got, ['/user.slice'])],
      [
        'vfio-isolate cpuset-modify --cpus ',
        (got) => assert.ok(got.includes('C0-7,16-23') && got.includes('L1'), String(got)),
      ],
      ['vfio-isolate cpuset-modify --cpus=C8', (got) => assert.deepEqual(got, ['C8-15,24-31'])],
      ['vfio-isolate cpuset-create --mems ', (got) => assert.deepEqual(got, ['N0'])],
      [
        'vfio-isolate cpu-governor ',
        (got) =>
          assert.deepEqual(got, [
            'conservative',
            'ondemand',
            'userspace',
            'powersave',
            'performance',
            'schedutil',
          ]),
      ],
      ['vfio-isolate cpu-governor per', (got) => assert.deepEqual(got, ['performance'])],
      [
        'vfio-isolate cpu-governor performance C',
        (got) => assert.ok(got.length > 0 && got.every((c) => c.startsWith('C')), String(got)),
      ],
      // chained commands: the current command is the nearest command name before the cursor
      [
        'vfio-isolate -u /tmp/undo drop-caches cpuset-modify --cpus C0-6 /sys',
        (got) => assert.deepEqual(got, ['/system.slice']),
      ],
      ['vfio-isolate cpuset-modify --cpus C0-6 /system.slice ', (got) => assert.deepEqual(got, visibleNames)],
      [
        'vfio-isolate cpuset-create --cpus C0-1 /host.slice move-tasks / /h',
        (got) => assert.deepEqual(got, []),
      ],
      [
        'vfio-isolate cpuset-create --cpus C0-1 /host.slice move-tasks / /m',
        (got) => assert.deepEqual(got, ['/machine.slice']),
      ],
      [
        'vfio-isolate drop-caches compact-memory irq-affinity ',
        (got) => assert.deepEqual(got, ['mask', 'add']),
      ],
      ['vfio-isolate help ', (got) => assert.deepEqual(got, [...visibleNames, 'cpus'])],
      ['vfio-isolate help cpuset-modify ', (got) => assert.deepEqual(got, [])],
      ['vfio-isolate completion ', (got) => assert.deepEqual(got, ['bash', 'zsh', 'fish'])],
      ['vfio-isolate restore /nonexistent-dir-', (got) => assert.deepEqual(got, [])],
      [
        'vfio-isolate -u package',
        (got) => assert.deepEqual(got.sort(), ['package-lock.json', 'package.json']),
      ],
    ];
    // Looked up in the table and asserted, not guarded: a renamed command fails here instead of skipping its case.
    const libvirt = COMMANDS.find((c) => c.name === 'libvirt');
    const hook = libvirt?.subcommands?.find((s) => s.name === 'hook');
    const install = hook?.subcommands?.find((s) => s.name === 'install');
    assert.ok(libvirt?.subcommands && hook?.subcommands && install, 'libvirt hook install is in the table');
    cases.push(
      [
        'vfio-isolate libvirt ',
        (got) =>
          assert.deepEqual(
            got,
            libvirt.subcommands!.map((s) => s.name),
          ),
      ],
      [
        'vfio-isolate libvirt hook ',
        (got) =>
          assert.deepEqual(
            got,
            hook.subcommands!.map((s) => s.name),
          ),
      ],
      [
        'vfio-isolate libvirt hook install --',
        (got) => assert.deepEqual(got, [...install.options.map((o) => `--${o.long}`), '--help']),
      ],
      // an optional argument: CPU hints, or the next command of the chain
      [
        'vfio-isolate isolate ',
        (got) => assert.ok(got.includes('C8-15,24-31') && got.includes('drop-caches'), String(got)),
      ],
      ['vfio-isolate isolate --governor p', (got) => assert.deepEqual(got, ['powersave', 'performance'])],
      // status runs alone: its optional CPUS argument is completed, never a next command
      [
        'vfio-isolate status ',
        (got) => assert.ok(got.includes('L1') && !got.includes('drop-caches'), String(got)),
      ],
    );
    const got = bashComplete(
      script,
      root,
      cases.map(([l]) => l),
    );
    cases.forEach(([l, check], i) => {
      try {
        check(got[i]!);
      } catch (e) {
        (e as Error).message = `completing "${l}": ${(e as Error).message}`;
        throw e;
      }
    });
    assert.equal(treeHash(root), h, 'completion changed nothing');
    assert.deepEqual(simWrites(root), []);
  });
});

describe(
  'zsh completion',
  { skip: HAS_ZSH ? false : 'zsh is not installed: zsh completion not checked' },
  () => {
    let root = '';
    let script = '';
    before(async () => {
      root = buildFixture('ryzen-5950x');
      script = (await cli(root, ['completion', 'zsh'])).stdout;
    });
    after(() => removeFixture(root));

    it('passes zsh -n', () => {
      const r = spawnSync('zsh', ['-n'], { input: script, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    });

    it('offers the right candidates (completion primitives replaced by printing stubs)', () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-compl-'));
      try {
        fs.writeFileSync(path.join(dir, '_vfio-isolate'), script);
        const stubs = [
          '_describe() { local -a _a; _a=("${(@P)${@[-1]}}"); _a=(${(M)_a:#${_pfx}*}); print -r -- "${(j: :)${(@)_a%%:*}}"; }',
          'compadd() { local -a _c; if [[ $1 == -a ]]; then _c=("${(@P)2}"); else shift; _c=("$@"); fi; print -r -- "${(j: :)${(@M)_c:#${_pfx}*}}"; }',
          'compset() { [[ $1 == -P ]] && { PREFIX=${PREFIX#*=}; _pfx=${_pfx#*=}; }; }',
          '_files() { print -r -- FILES; }',
          '_pids() { print -r -- PIDS; }',
          'compdef() { :; }',
          'source ./_vfio-isolate',
          shim(root),
          't() { words=(${(z)1}); [[ $1 == *" " ]] && words+=(""); CURRENT=${#words}; PREFIX=${words[CURRENT]}; _pfx=$PREFIX; _vfio_isolate | tr "\\n" " "; print; }',
        ];
        const cases: [string, string][] = [
          ['vfio-isolate ', visibleNames.join(' ')],
          ['vfio-isolate cpuset-modify -n', '-nce -nme -nmm -nlb'],
          ['vfio-isolate irq-affinity ', 'mask add'],
          ['vfio-isolate cpuset-modify /', '/ /init.scope /machine.slice /system.slice /user.slice'],
          ['vfio-isolate cpuset-modify --cpus=C8', 'C8-15,24-31'],
          ['vfio-isolate cpu-governor p', 'powersave performance'],
          ['vfio-isolate -u ', 'FILES'],
          ['vfio-isolate drop-caches cpuset-modify --cpus C0-6 /sys', '/system.slice'],
          ['vfio-isolate completion ', 'bash zsh fish'],
        ];
        const body = cases.map(([l]) => `t ${JSON.stringify(l)}`).join('\n');
        fs.writeFileSync(path.join(dir, 'run.zsh'), `${stubs.join('\n')}\n${body}\n`);
        const r = spawnSync('zsh', ['-f', path.join(dir, 'run.zsh')], { cwd: dir, encoding: 'utf8' });
        assert.equal(r.stderr, '');
        const out = r.stdout.split('\n').map((l) => l.trim());
        cases.forEach(([l, want], i) => assert.equal(out[i], want, `completing "${l}"`));
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);

describe(
  'fish completion',
  { skip: HAS_FISH ? false : 'fish is not installed: fish completion not checked' },
  () => {
    let root = '';
    let script = '';
    before(async () => {
      root = buildFixture('ryzen-5950x');
      script = (await cli(root, ['completion', 'fish'])).stdout;
    });
    after(() => removeFixture(root));

    it('passes fish -n', () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-compl-'));
      try {
        fs.writeFileSync(path.join(dir, 'vfio-isolate.fish'), script);
        const r = spawnSync('fish', ['-n', path.join(dir, 'vfio-isolate.fish')], { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('complete -C offers the right candidates', () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-compl-'));
      try {
        fs.writeFileSync(path.join(dir, 'vfio-isolate.fish'), script);
        const cases: [string, string[]][] = [
          ['vfio-isolate cpuset-modify -n', ['-nce', '-nlb', '-nme', '-nmm']],
          ['vfio-isolate irq-affinity ', ['add', 'mask']],
          [
            'vfio-isolate cpuset-modify /',
            ['/', '/init.scope', '/machine.slice', '/system.slice', '/user.slice'],
          ],
          ['vfio-isolate cpuset-modify --cpus=C8', ['--cpus=C8-15,24-31']],
          ['vfio-isolate cpu-governor p', ['performance', 'powersave']],
          ['vfio-isolate drop-caches cpuset-modify --cpus C0-6 /sys', ['/system.slice']],
          ['vfio-isolate help cpuset-modify ', []],
          ['vfio-isolate completion ', ['bash', 'fish', 'zsh']],
        ];
        const body = cases
          .map(([l]) => `complete -C ${JSON.stringify(l)} | string replace -r '\\t.*' ''; echo ${SEP}`)
          .join('\n');
        fs.writeFileSync(
          path.join(dir, 'run.fish'),
          `source ${JSON.stringify(path.join(dir, 'vfio-isolate.fish'))}\n${shim(root, true)}${body}\n`,
        );
        const r = spawnSync('fish', ['--no-config', path.join(dir, 'run.fish')], {
          cwd: dir,
          encoding: 'utf8',
        });
        assert.equal(r.stderr, '');
        const out = r.stdout.split(`${SEP}\n`).map((c) => lines(c).sort());
        cases.forEach(([l, want], i) => assert.deepEqual(out[i], [...want].sort(), `completing "${l}"`));
        const all = spawnSync(
          'fish',
          [
            '--no-config',
            '-c',
            `source ${JSON.stringify(path.join(dir, 'vfio-isolate.fish'))}; complete -C 'vfio-isolate '`,
          ],
          {
            encoding: 'utf8',
          },
        );
        const names = lines(all.stdout).map((l) => l.split('\t')[0]);
        assert.deepEqual(names.sort(), [...visibleNames].sort());
        assert.ok(all.stdout.includes('cpuset-modify\tmodify a cpuset'), 'commands come with their summary');
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);
