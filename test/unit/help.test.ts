/**
 * Every help path, for every command and subcommand of the table: `help A B C`, `A B C --help` and `A B C -h` exit 0
 * with that command's help; `help`, `--help`, `-h` give the main help; wrong paths are usage errors with a hint.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { commandHelp, mainHelp } from '../../src/cli/help.ts';
import { notationHelp } from '../../src/commands/help.ts';
import type { CommandSpec } from '../../src/cli/spec.ts';
import { COMMANDS } from '../../src/cli/table.ts';
import { VERSION } from '../../src/version.ts';
import { buildFixture, removeFixture } from '../fixtures/build.ts';
import { cli } from '../support/cli.ts';

/** Every command path of the table: [full name, spec], parents before their subcommands. */
function paths(table: readonly CommandSpec[], prefix = ''): [string, CommandSpec][] {
  return table.flatMap((c): [string, CommandSpec][] => {
    const full = prefix ? `${prefix} ${c.name}` : c.name;
    return [[full, c], ...paths(c.subcommands ?? [], full)];
  });
}
const ALL = paths(COMMANDS);

describe('help paths', () => {
  let root = '';
  before(() => (root = buildFixture('intel-6c12t')));
  after(() => removeFixture(root));

  it('the table has nested subcommands (libvirt hook install), so the loop below covers them', () => {
    const names = ALL.map(([n]) => n);
    assert.ok(names.includes('libvirt hook install') && names.includes('libvirt cputune'), String(names));
    assert.ok(ALL.length > COMMANDS.length);
  });

  for (const [full, spec] of ALL) {
    const words = full.split(' ');
    for (const argv of [
      ['help', ...words],
      [...words, '--help'],
      [...words, '-h'],
    ]) {
      it(`vfio-isolate ${argv.join(' ')}: exit 0, the help of ${full}`, async () => {
        const r = await cli(root, argv);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stderr, '');
        assert.equal(r.stdout, commandHelp(spec, full));
        assert.ok(r.stdout.startsWith(`Usage: vfio-isolate [GLOBAL-OPTIONS] ${full}`), r.stdout);
      });
    }
  }

  it('help with options or arguments in front of --help still gives the command help', async () => {
    const r = await cli(root, ['libvirt', 'hook', 'install', 'win11', '--profile', 'x.toml', '--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Usage: vfio-isolate \[GLOBAL-OPTIONS\] libvirt hook install /);
  });

  for (const argv of [['help'], ['--help'], ['-h'], []]) {
    it(`vfio-isolate ${argv.join(' ') || '(nothing)'}: the main help, exit 0`, async () => {
      const r = await cli(root, argv);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, mainHelp(COMMANDS, VERSION));
    });
  }

  it('help cpus and help notation print the CPU notation', async () => {
    for (const topic of ['cpus', 'notation']) {
      const r = await cli(root, ['help', topic]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, notationHelp());
    }
  });

  const wrong: [string[], RegExp, RegExp][] = [
    [['help', 'nosuch'], /no help for "nosuch"/, /see vfio-isolate --help/],
    [['help', 'cpuset-modfy'], /no help for "cpuset-modfy"/, /did you mean cpuset-modify/],
    [
      ['help', 'libvirt', 'hok'],
      /unknown subcommand "hok" of libvirt/,
      /did you mean vfio-isolate help libvirt hook/,
    ],
    [
      ['help', 'libvirt', 'hook', 'nope'],
      /unknown subcommand "nope" of libvirt hook/,
      /one of: install, uninstall, list/,
    ],
    [
      ['help', 'cpuset-modify', 'extra'],
      /cpuset-modify has no subcommands/,
      /vfio-isolate help cpuset-modify/,
    ],
  ];
  for (const [argv, message, hint] of wrong) {
    it(`vfio-isolate ${argv.join(' ')}: usage error (exit 2) with a hint`, async () => {
      const r = await cli(root, argv);
      assert.equal(r.code, 2, r.stdout);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, message);
      assert.match(r.stderr, hint);
    });
  }
});
