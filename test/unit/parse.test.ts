import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseArgv } from '../../src/cli/parse.ts';
import { COMMANDS } from '../../src/cli/table.ts';
import { UsageError } from '../../src/errors.ts';
import { seedHookArgv } from '../support/seed.ts';

const parse = (s: string[]) => parseArgv(s, COMMANDS);
const usage = (argv: string[], re: RegExp) =>
  assert.throws(
    () => parse(argv),
    (e: unknown) => e instanceof UsageError && e.exitCode === 2 && re.test(e.message + ' ' + (e.hint ?? '')),
  );

describe('argv splitter', () => {
  it('splits the seed hook chain into five commands with their own options', () => {
    const p = parse(['-u', '/tmp/undo', ...seedHookArgv('C0-6,16-22', 'C7-15,23-31')]);
    assert.equal(p.globals.undoFile, '/tmp/undo');
    assert.deepEqual(
      p.commands.map((c) => c.name),
      ['drop-caches', 'cpuset-modify', 'cpuset-modify', 'compact-memory', 'irq-affinity'],
    );
    assert.equal(p.commands[1]!.values.cpus, 'C0-6,16-22');
    assert.equal(p.commands[2]!.args.NAME, '/user.slice');
    assert.deepEqual(p.commands[4]!.args, { OPERATION: 'mask', CPUS: 'C7-15,23-31' });
  });

  it('matches multi-letter single-dash flags as whole words and tri-states', () => {
    const p = parse([
      'cpuset-create',
      '--cpus',
      'N0',
      '--mems',
      'N0',
      '-mm',
      '-nce',
      '-lb',
      '/host.slice',
      'move-tasks',
      '/',
      '/host.slice',
    ]);
    const v = p.commands[0]!.values;
    assert.equal(v.memMigrate, true);
    assert.equal(v.cpuExclusive, false);
    assert.equal(v.schedLoadBalance, true);
    assert.equal(v.memExclusive, undefined);
    assert.deepEqual(p.commands[1]!.args, { FROM: '/', TO: '/host.slice' });
  });

  it('-n is the global dry run and never collides with -nce', () => {
    const p = parse(['-n', 'cpuset-modify', '-nce', '/x']);
    assert.equal(p.globals.dryRun, true);
    assert.equal(p.commands[0]!.values.cpuExclusive, false);
  });

  it('accepts --opt=value and options after positionals (extension)', () => {
    const p = parse(['cpuset-modify', '/system.slice', '--cpus=C0-3']);
    assert.equal(p.commands[0]!.values.cpus, 'C0-3');
  });

  it('global options after the first command are errors naming the fix', () => {
    usage(['drop-caches', '-u', 'x'], /global option/);
  });
  it('command options before the command are errors naming the command', () => {
    usage(['--cpus', 'C0', 'cpuset-modify', '/x'], /belongs to a command.*cpuset-/);
  });
  it('unknown command suggests the nearest', () => {
    usage(['cpuset-modfy', '/x'], /unknown command "cpuset-modfy".*did you mean cpuset-modify/);
  });
  it('missing argument names it and shows the usage line', () => {
    usage(['move-tasks', '/'], /missing TO.*usage: vfio-isolate \[GLOBAL-OPTIONS\] move-tasks FROM TO/);
  });
  it('the seed README bug: cpu-governor without CPUs before another command', () => {
    usage(
      ['cpu-governor', 'performance', 'cpuset-modify', '--cpus', 'C0', '/x'],
      /cpu-governor: missing CPUS/,
    );
  });
  it('an option of another command is named', () => {
    usage(['move-tasks', '--cpus', 'C0', '/', '/x'], /--cpus is an option of cpuset-create/);
  });
  it('missing option value', () => {
    usage(['cpuset-modify', '--cpus'], /needs a value/);
    usage(['cpuset-modify', '--cpus', '', '/x'], /empty string/);
  });
  it('irq-affinity operation is checked', () => {
    usage(['irq-affinity', 'unmask', 'C1'], /mask, add/);
    assert.equal(parse(['irq-affinity', 'MASK', 'C1']).commands[0]!.args.OPERATION, 'MASK');
  });
  it('contradicting tri-state flags are refused', () => {
    usage(['cpuset-modify', '-ce', '-nce', '/x'], /contradicts/);
  });
  it('--help anywhere returns help for that command, --version the version', () => {
    assert.deepEqual(parse(['cpuset-modify', '--help']).help, { command: 'cpuset-modify' });
    assert.deepEqual(parse(['--help']).help, {});
    assert.equal(parse(['--version']).version, true);
  });
  it('an optional argument does not swallow the next command name', () => {
    const p = parse(['release', 'drop-caches']);
    assert.deepEqual(
      p.commands.map((c) => c.name),
      ['release', 'drop-caches'],
    );
    assert.equal(p.commands[0]!.args.JOURNAL, undefined);
  });
});
