/**
 * One usage line per command: `help CMD` / `CMD --help`, a usage error of CMD and the man page's synopsis of CMD
 * all show the line of src/cli/usage.ts, for every entry of the table (subcommands too).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { CommandSpec } from '../../src/cli/spec.ts';
import { COMMANDS } from '../../src/cli/table.ts';
import { usageLine } from '../../src/cli/usage.ts';
import { roffEscape } from '../../src/cli/man.ts';
import { MAN_PATH } from '../../scripts/gen-man.ts';
import { buildFixture, removeFixture } from '../fixtures/build.ts';
import { cli } from '../support/cli.ts';

/** Every command path of the table that help and the man page show: [full name, spec]. */
function paths(table: readonly CommandSpec[], prefix = ''): [string, CommandSpec][] {
  return table
    .filter((c) => !c.hidden)
    .flatMap((c): [string, CommandSpec][] => {
      const full = prefix ? `${prefix} ${c.name}` : c.name;
      return [[full, c], ...paths(c.subcommands ?? [], full)];
    });
}
const ALL = paths(COMMANDS);

/**
 * An argv that is a usage error of the command `full` itself: a parent without its subcommand; a command without
 * its required arguments; otherwise its arguments followed by a word that is no command (one argument too many).
 */
function wrongArgv(full: string, spec: CommandSpec): string[] {
  const words = full.split(' ');
  if (spec.subcommands) return words;
  if (spec.args.some((a) => a.required)) return words;
  return [...words, ...spec.args.map((a) => a.choices?.[0] ?? 'x'), 'qqqqqqqqqqqq'];
}

/** The man page's synopsis of `full`: the line after its `.SS` heading, as man(1) shows it (no font changes). */
function manUsage(page: string, full: string): string {
  const lines = page.split('\n');
  const at = lines.indexOf(`.SS "${roffEscape(full)}"`);
  assert.ok(at >= 0, `man page has a section for ${full}`);
  return lines[at + 1]!.replace(/\\f[BIR]/g, '')
    .replace(/\\-/g, '-')
    .replace(/\\e/g, '\\');
}

describe('one usage line for help, usage errors and the man page', () => {
  let root = '';
  let page = '';
  before(() => {
    root = buildFixture('intel-6c12t');
    page = fs.readFileSync(MAN_PATH, 'utf8');
  });
  after(() => removeFixture(root));

  it('covers subcommands and commands with and without options and arguments', () => {
    const names = ALL.map(([n]) => n);
    for (const n of ['libvirt', 'libvirt hook', 'libvirt hook install', 'drop-caches', 'cpuset-modify'])
      assert.ok(names.includes(n), n);
  });

  for (const [full, spec] of ALL) {
    it(`${full}: help, a usage error and the man page show the same usage line`, async () => {
      const line = usageLine(spec, full);
      assert.ok(line.startsWith(`vfio-isolate [GLOBAL-OPTIONS] ${full}`), line);
      const help = await cli(root, [...full.split(' '), '--help']);
      assert.equal(help.code, 0, help.stderr);
      assert.equal(help.stdout.split('\n')[0], `Usage: ${line}`);
      const argv = wrongArgv(full, spec);
      const wrong = await cli(root, argv);
      assert.equal(wrong.code, 2, `${argv.join(' ')}: ${wrong.stderr}`);
      assert.ok(
        wrong.stderr.split('\n').includes(`hint: usage: ${line}`),
        `${argv.join(' ')}:\n${wrong.stderr}`,
      );
      assert.equal(manUsage(page, full), line);
    });
  }
});
