/**
 * The man page: generated from the command table, free of groff warnings, rendered by man(1) with every command in
 * it, and the checked-in man/vfio-isolate.1 equal to a fresh generation (CI catches a table change without
 * `npm run man`).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { exampleLines, notationSection, PROFILE_KEYS, renderMan, roffEscape } from '../../src/cli/man.ts';
import type { CommandSpec } from '../../src/cli/spec.ts';
import { COMMANDS } from '../../src/cli/table.ts';
import { ProfileSchema } from '../../src/profile.ts';
import { generateMan, generateProfileMan, MAN_PATH, PROFILE_MAN_PATH } from '../../scripts/gen-man.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const HAS_GROFF = spawnSync('groff', ['--version'], { stdio: 'ignore' }).status === 0;
const HAS_MAN = spawnSync('man', ['--version'], { stdio: 'ignore' }).status === 0;

/** groff's warnings (all of them, -ww) for a page; '' when clean. */
function groffWarnings(page: string): string {
  const r = spawnSync('groff', ['-man', '-Tutf8', '-ww', '-z'], { input: page, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stderr;
}

/** The page as man(1) shows it, without overstrike formatting. */
function renderWithMan(page: string, width = 100): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-man-'));
  try {
    const file = path.join(dir, 'vfio-isolate.1');
    fs.writeFileSync(file, page);
    const r = spawnSync('man', ['-l', file], {
      encoding: 'utf8',
      env: {
        ...process.env,
        MANWIDTH: String(width),
        MANPAGER: 'cat',
        PAGER: 'cat',

        MAN_DISABLE_SECCOMP: '1',
        LANG: 'C.UTF-8',
      },
    });
    assert.equal(r.status, 0, r.stderr);
    // not a terminal: man-db leaves out the overstrikes of bold and underline
    assert.ok(!r.stdout.includes('\b'), 'plain text');
    return r.stdout;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const pkgVersion = (
  JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }
).version;

/** Every visible command by full name ("libvirt hook install"). */
function fullNames(cmds: readonly CommandSpec[], prefix = ''): string[] {
  return cmds
    .filter((c) => !c.hidden)
    .flatMap((c) => [`${prefix}${c.name}`, ...fullNames(c.subcommands ?? [], `${prefix}${c.name} `)]);
}

describe('man page', () => {
  const page = generateMan();

  it('is up to date (run npm run man)', () => {
    const checkedIn = fs.existsSync(MAN_PATH) ? fs.readFileSync(MAN_PATH, 'utf8') : '';
    assert.ok(
      checkedIn === page,
      'man page is up to date; run npm run man (man/vfio-isolate.1 differs from a fresh generation)',
    );
  });

  it('has the sections of a manual page, in order', () => {
    const sections = [...page.matchAll(/^\.SH (.+)$/gm)].map((m) => m[1]);
    assert.deepEqual(sections, [
      'NAME',
      'SYNOPSIS',
      'DESCRIPTION',
      'OPTIONS',
      'COMMANDS',
      'CPU NOTATION',
      'FILES',
      'ENVIRONMENT',
      'EXIT STATUS',
      'EXAMPLES',
      'DIFFERENCES FROM 0.5.2',
      'SEE ALSO',
    ]);
    assert.ok(
      page.includes(`\n.TH VFIO\\-ISOLATE 1 "" "vfio\\-isolate ${roffEscape(pkgVersion)}" "User Commands"\n`),
    );
    assert.ok(!page.includes('__complete'), 'hidden commands stay out');
  });

  it('renders without a single groff warning', { skip: HAS_GROFF ? false : 'groff is not installed' }, () => {
    assert.equal(groffWarnings(page), '');
  });

  it(
    'man -l shows every command, global option, section and seed example',
    { skip: HAS_MAN ? false : 'man is not installed' },
    () => {
      const text = renderWithMan(page);
      for (const name of fullNames(COMMANDS))
        assert.ok(text.includes(`vfio-isolate [GLOBAL-OPTIONS] ${name}`), `usage of ${name}`);
      for (const c of COMMANDS.filter((x) => !x.hidden)) {
        for (const o of c.options) assert.ok(text.includes(`--${o.long}`), `${c.name} --${o.long}`);
      }
      for (const s of [
        '-ce, --cpu-exclusive',
        '-nce, --no-cpu-exclusive',
        '-u, --undo-file FILE',
        '--no-rollback',
      ])
        assert.ok(text.includes(s), s);
      for (const s of [
        'CPU NOTATION',
        'C0-3,8',
        'L1+C7',
        'VFIO_ISOLATE_LOCK_WAIT_MS',
        '/run/vfio-isolate/isolate.journal',
        'EXIT STATUS',
      ]) {
        assert.ok(text.includes(s), s);
      }
      // the 0.5.2 examples, verbatim (hyphens stay ASCII hyphen-minus so they can be copied)
      for (const s of [
        'cpuset-modify --cpus C0-6,16-22 /system.slice',
        'cpuset-create --cpus C0-1,6-7 /host.slice',
        'cpuset-create --cpus N0 --mems N0 -mm /host.slice',
        'vfio-isolate -u /tmp/undo_irq irq-affinity mask C2-5,8-11',
        'vfio-isolate -u /tmp/undo_gov cpu-governor performance C2-5,8-11',
        'irq-affinity mask C$MCPUS',
      ]) {
        assert.ok(text.includes(s), s);
      }
    },
  );
});

describe('man page FILES and ENVIRONMENT', () => {
  const page = generateMan();
  /** The body of one .SH section. */
  const section = (name: string): string => {
    const start = page.indexOf(`\n.SH ${name}\n`);
    assert.ok(start >= 0, name);
    const end = page.indexOf('\n.SH ', start + 1);
    return page.slice(start, end);
  };

  it('FILES names the per-domain hook in qemu.d/, the profile directory, the journal and the lock', () => {
    const files = section('FILES');
    assert.ok(files.includes('/etc/libvirt/hooks/qemu.d/vfio\\-isolate\\-\\fR\\fIDOMAIN'), files);
    assert.ok(!/hooks\/qemu\\fR|hooks\/qemu\)/.test(files), 'not the single qemu hook file');
    assert.ok(files.includes('/etc/vfio\\-isolate/\\fR\\fINAME\\fR\\fB.toml'), files);
    assert.ok(files.includes('vfio\\-isolate.toml(5)'));
    assert.ok(files.includes('/run/vfio\\-isolate/isolate.journal'));
    assert.ok(files.includes('/run/vfio\\-isolate/lock'));
  });

  it('ENVIRONMENT documents VFIO_ISOLATE_LOCK_WAIT_MS, NO_COLOR, FORCE_COLOR and no testing switch', () => {
    const env = section('ENVIRONMENT');
    const names = [...env.matchAll(/^\\fB([A-Z_]+)\\fR$/gm)].map((m) => m[1]);
    assert.deepEqual(names, ['VFIO_ISOLATE_LOCK_WAIT_MS', 'NO_COLOR', 'FORCE_COLOR']);
    assert.match(env, /default 10000/);
    assert.ok(!page.includes('VFIO_ISOLATE_ROOT') && !page.includes('VFIO_ISOLATE_FAULT'));
  });

  it('SEE ALSO names vfio-isolate.toml(5)', () => {
    assert.match(section('SEE ALSO'), /vfio\\-isolate\.toml\\fR\(5\)/);
  });
});

describe('vfio-isolate.toml(5): the profile format', () => {
  const page = generateProfileMan();

  it('is up to date (run npm run man)', () => {
    const checkedIn = fs.existsSync(PROFILE_MAN_PATH) ? fs.readFileSync(PROFILE_MAN_PATH, 'utf8') : '';
    assert.ok(checkedIn === page, 'man/vfio-isolate.toml.5 differs from a fresh generation; run npm run man');
  });

  it('documents exactly the keys ProfileSchema accepts, table by table', () => {
    type Entries = Record<string, unknown>;
    const top = ProfileSchema.entries as Entries;
    const tableKeys = (name: string): string[] =>
      Object.keys((top[name] as { wrapped: { entries: Entries } }).wrapped.entries).sort();
    const schema: Record<string, string[]> = {
      '': Object.keys(top)
        .filter((k) => k !== 'isolate' && k !== 'cputune' && k !== 'measure')
        .sort(),
      isolate: tableKeys('isolate'),
      cputune: tableKeys('cputune'),
      measure: tableKeys('measure'),
    };
    const documented = Object.fromEntries(
      PROFILE_KEYS.map((t) => [t.table, t.keys.map((k) => k.key).sort()]),
    );
    assert.deepEqual(documented, schema);
    for (const t of PROFILE_KEYS)
      for (const k of t.keys) assert.ok(page.includes(`\\fB${roffEscape(k.key)}\\fR = `), k.key);
  });

  it('is section 5 with NAME, SYNOPSIS (the profile directory), KEYS, the tables, EXAMPLE and SEE ALSO', () => {
    assert.match(page, /^\.TH VFIO\\-ISOLATE\.TOML 5 /m);
    const sections = [...page.matchAll(/^\.SH (.+)$/gm)].map((m) => m[1]);
    assert.deepEqual(sections, [
      'NAME',
      'SYNOPSIS',
      'DESCRIPTION',
      'KEYS',
      '[ISOLATE]',
      '[CPUTUNE]',
      '[MEASURE]',
      'EXAMPLE',
      'SEE ALSO',
    ]);
    assert.ok(page.includes('/etc/vfio\\-isolate/\\fR\\fINAME'));
  });

  it('the example profile in the page parses', async () => {
    const { parseProfile } = await import('../../src/profile.ts');
    const { topologyFromSpec } = await import('../../src/cpus/topology-model.ts');
    const start = page.indexOf('\n.nf\n', page.indexOf('.SH EXAMPLE'));
    const body = page
      .slice(start + 5, page.indexOf('\n.fi', start))
      .replace(/^\\&$/gm, '')
      .replace(/\\-/g, '-');
    const topo = topologyFromSpec({ cpus: 32, l3: ['0-7,16-23', '8-15,24-31'], smtOffset: 16 });
    const p = parseProfile(body, topo);
    assert.equal(p.domain, 'win11');
    assert.equal(p.measure?.afterStart, 30);
  });

  it('renders without a single groff warning', { skip: HAS_GROFF ? false : 'groff is not installed' }, () => {
    assert.equal(groffWarnings(page), '');
  });
});

describe('roff escaping', () => {
  it('escapes backslashes, hyphens and non-ASCII', () => {
    assert.equal(roffEscape('a\\b'), 'a\\eb');
    assert.equal(roffEscape('--cpus'), '\\-\\-cpus');
    assert.equal(roffEscape('≥ 1 → x'), '\\[u2265] 1 \\[u2192] x');
  });

  it('wraps long example chains before each chained command, keeping an option with its value', () => {
    const names = COMMANDS.map((c) => c.name);
    assert.deepEqual(
      exampleLines(
        'vfio-isolate cpuset-modify --cpus C0-6,16-22 /system.slice cpuset-modify --cpus C0-6,16-22 /user.slice',
        names,
      ),
      [
        'vfio-isolate cpuset-modify --cpus C0-6,16-22 /system.slice \\',
        '    cpuset-modify --cpus C0-6,16-22 /user.slice',
      ],
    );
    assert.deepEqual(exampleLines('vfio-isolate drop-caches', names), ['vfio-isolate drop-caches']);
  });

  it('turns the notation table into a tagged list', () => {
    const out = notationSection(
      'Heading:\n  C0-3      CPUs 0 to 3\n  N0        node 0\nA closing\nparagraph.',
    );
    assert.deepEqual(out, [
      '.PP',
      'Heading:',
      '.TP 22',
      '\\fBC0\\-3\\fR',
      'CPUs 0 to 3',
      '.TP 22',
      '\\fBN0\\fR',
      'node 0',
      '.PP',
      'A closing paragraph.',
    ]);
  });

  it(
    'a table full of roff traps renders cleanly and literally',
    { skip: HAS_GROFF && HAS_MAN ? false : 'groff or man is not installed' },
    () => {
      const nasty: CommandSpec = {
        name: 'trap-cmd',
        summary: '.starts with a dot',
        description: '\'starts with a quote, has a back\\slash, "double quotes", `code` and ≥ unicode',
        options: [
          {
            key: 'x',
            long: 'x-opt',
            short: ['-xo'],
            type: 'string',
            valueName: 'V"AL',
            help: '.TH is not a request here',
          },
        ],
        args: [{ name: 'ARG', required: false, help: "'quoted' \\fB not bold", choices: ['a.b', "c'd"] }],
        examples: [".leading-dot example \\ with backslash 'and quotes'"],
        kind: 'report',
      };
      const page = renderMan([nasty], { version: '9.9.9-test' });
      assert.equal(groffWarnings(page), '');
      const text = renderWithMan(page);
      for (const s of [
        '.starts with a dot.',
        'has a back\\slash, "double quotes", code and ≥ unicode',
        '-xo, --x-opt V"AL',
        '.TH is not a request here.',
        "'quoted' \\fB not bold (one of: a.b, c'd); optional.",
        ".leading-dot example \\ with backslash 'and quotes'",
        'vfio-isolate 9.9.9-test',
      ]) {
        assert.ok(text.includes(s), `${s}\n---\n${text}`);
      }
    },
  );
});

describe('package.json ships the man page', () => {
  it('has man/ in files, the page in man, and a man script that build runs', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as {
      files: string[];
      man: string[];
      scripts: Record<string, string>;
    };
    assert.ok(pkg.files.includes('man/'));
    assert.deepEqual(pkg.man, ['man/vfio-isolate.1', 'man/vfio-isolate.toml.5']);
    assert.match(pkg.scripts.man ?? '', /gen-man/);
    assert.match(pkg.scripts.build ?? '', /gen-man|npm run man/);
  });
});
