/**
 * Reliability: fault injection at every step, a SIGKILL crash matrix on real processes, hostile journals, and
 * fuzzing of the argv splitter.
 */
import { testBundle } from '../support/bundle.ts';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { parseArgv } from '../../src/cli/parse.ts';
import { COMMANDS } from '../../src/cli/table.ts';
import { VfioError } from '../../src/errors.ts';
import { buildFixture } from '../fixtures/build.ts';
import { cli } from '../support/cli.ts';
import { seedHookArgv } from '../support/seed.ts';
import { diffTrees, simWrites, treeFiles, treeHash } from '../support/tree.ts';

const HOOK = seedHookArgv('C0-6,16-22', 'C7-15,23-31');
const HOOK_STEPS = 5;
const tmpFile = (name = 'undo') => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-rel-')), name);

describe('fault injection: a failure at step k leaves the machine as it was', () => {
  for (let k = 1; k <= HOOK_STEPS; k++) {
    it(`seed hook sequence, failure at step ${k}`, async () => {
      const root = buildFixture('ryzen-5950x');
      const beforeTree = treeFiles(root);
      const undo = tmpFile();
      const r = await cli(root, ['-u', undo, ...HOOK], { VFIO_ISOLATE_FAULT: `fail:${k}` });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`injected failure at step ${k}`));
      assert.match(r.stderr, k === 1 ? /nothing was changed/ : /the changes of this run were undone/);
      assert.deepEqual(diffTrees(beforeTree, treeFiles(root)), []);
      // The journal says the run rolled back, so restoring it changes nothing either.
      const h = treeHash(root);
      assert.equal((await cli(root, ['restore', undo])).code, 0);
      assert.equal(treeHash(root), h);
    });
  }

  it('--no-rollback keeps the partial changes, and restore of the journal undoes them', async () => {
    const root = buildFixture('ryzen-5950x');
    const beforeTree = treeFiles(root);
    const undo = tmpFile();
    const r = await cli(root, ['-u', undo, '--no-rollback', ...HOOK], { VFIO_ISOLATE_FAULT: 'fail:4' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /kept \(--no-rollback\)/);
    assert.notDeepEqual(diffTrees(beforeTree, treeFiles(root)), []);
    assert.equal((await cli(root, ['restore', undo])).code, 0);
    assert.deepEqual(diffTrees(beforeTree, treeFiles(root)), []);
  });

  it('a real kernel refusal mid-chain (v1 ENOSPC into an empty cpuset) rolls back the cgroup it created', async () => {
    const root = buildFixture('intel-6c12t');
    const h = treeHash(root);
    // host.slice is created, then emptied by cpuset-modify? Not possible via notation; use a missing cgroup for TO instead.
    const r = await cli(root, [
      'cpuset-create',
      '--cpus',
      'C0-1',
      '/a.slice',
      'cpuset-create',
      '--cpus',
      'C2-3',
      '/b.slice',
      'cpuset-modify',
      '--cpus',
      'C0-5',
      '-ce',
      '/a.slice',
      'cpuset-modify',
      '--cpus',
      'C2-3',
      '-ce',
      '/b.slice',
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /undone/);
    assert.equal(treeHash(root), h);
  });
});

describe('crash matrix: SIGKILL after each step, then restore', () => {
  let bundle = '';
  before(() => {
    bundle = testBundle();
  });
  const points: string[] = [];
  for (let k = 1; k <= HOOK_STEPS; k++) points.push(`crash-before:${k}`, `crash-after:${k}`);
  let exact = 0;
  for (const point of points) {
    it(`killed at ${point}: restore brings the state back exactly`, async () => {
      const root = buildFixture('ryzen-5950x');
      const beforeTree = treeFiles(root);
      const undo = tmpFile();
      const r = spawnSync(process.execPath, [bundle, '-u', undo, ...HOOK], {
        env: { ...process.env, VFIO_ISOLATE_ROOT: root, VFIO_ISOLATE_FAULT: point },
        encoding: 'utf8',
      });
      assert.equal(r.signal, 'SIGKILL', `expected the process to be killed: ${r.stderr}`);
      assert.ok(fs.existsSync(path.join(root, 'run/vfio-isolate/lock')), 'the killed run left its lock');
      const res = await cli(root, ['restore', undo]);
      assert.equal(res.code, 0, res.stderr);
      assert.deepEqual(diffTrees(beforeTree, treeFiles(root)), []);
      exact++;
    });
  }
  it('every crash point restored exactly', () => assert.equal(exact, points.length));
});

describe('hostile journals: refused whole, zero writes', () => {
  const header = JSON.stringify({
    t: 'header',
    format: 'vfio-isolate-journal',
    version: 1,
    tool: 't',
    bootId: 'BOOT',
    created: 'c',
  });
  const run = JSON.stringify({ t: 'run', run: 1, at: 'x', argv: [] });
  const rec = (r: unknown) => JSON.stringify({ t: 'rec', run: 1, rec: r });
  // A valid first record: if validation were per record, it would be applied before the bad one.
  const good = rec({ kind: 'write', files: [['/sys/fs/cgroup/user.slice/cpuset.cpus', '0-3']] });
  const w = (p: string, v = '0-3') => rec({ kind: 'write', files: [[p, v]] });
  const lines = (...l: string[]) => l.join('\n') + '\n';
  const cases: [string, string | Buffer, ((root: string) => void)?][] = [
    ['not JSON', 'hello world\n'],
    // An empty file and a header without its newline are what a crash at journal creation leaves: "nothing was
    // applied", removed by restore (issue 21; test/unit/crash-points.test.ts), no longer refused.
    ['a line of spaces', '   \n'],
    ['a pickle', Buffer.from([0x80, 0x04, 0x95, 0x10, 0, 0, 0, 0, 0, 0, 0, 0x5d])],
    ['wrong format name', lines(header.replace('vfio-isolate-journal', 'other'), run, good)],
    ['wrong version', lines(header.replace('"version":1', '"version":9'), run, good)],
    ['header missing fields', lines('{"t":"header","format":"vfio-isolate-journal","version":1}', run, good)],
    ['record before any run', lines(header, good)],
    ['path outside the allowlist', lines(header, run, good, w('/etc/passwd', 'root'))],
    ['.. in a path', lines(header, run, good, w('/sys/fs/cgroup/../../etc/shadow'))],
    ['core_pattern', lines(header, run, good, w('/proc/sys/kernel/core_pattern', '|/bin/sh'))],
    [
      'cgroup.procs via a write record',
      lines(header, run, good, w('/sys/fs/cgroup/user.slice/cgroup.procs', '1')),
    ],
    ['release_agent', lines(header, run, good, w('/sys/fs/cgroup/release_agent', '/tmp/x'))],
    ['relative path', lines(header, run, good, w('sys/fs/cgroup/user.slice/cpuset.cpus'))],
    ['double slash', lines(header, run, good, w('/sys/fs/cgroup//user.slice/cpuset.cpus'))],
    ['huge value', lines(header, run, good, w('/sys/fs/cgroup/user.slice/cpuset.cpus', '1'.repeat(9000)))],
    [
      'shell in a cpu list',
      lines(header, run, good, w('/sys/fs/cgroup/user.slice/cpuset.cpus', '$(reboot)')),
    ],
    ['letters in an IRQ list', lines(header, run, good, w('/proc/irq/5/smp_affinity_list', 'abc'))],
    [
      'governor with spaces',
      lines(header, run, good, w('/sys/devices/system/cpu/cpufreq/policy0/scaling_governor', 'a b')),
    ],
    ['negative stat_interval', lines(header, run, good, w('/proc/sys/vm/stat_interval', '-1'))],
    [
      'bad partition value',
      lines(header, run, good, w('/sys/fs/cgroup/user.slice/cpuset.cpus.partition', 'evil')),
    ],
    ['mkdir outside the hierarchy', lines(header, run, good, rec({ kind: 'mkdir', path: '/tmp/evil' }))],
    ['mkdir with ..', lines(header, run, good, rec({ kind: 'mkdir', path: '/sys/fs/cgroup/../evil' }))],
    [
      'rmdir setting that escapes',
      lines(
        header,
        run,
        good,
        rec({ kind: 'rmdir', path: '/sys/fs/cgroup/x', settings: [['../../etc/passwd', 'x']] }),
      ),
    ],
    [
      'another controller',
      lines(header, run, good, rec({ kind: 'controller', path: '/sys/fs/cgroup', controller: 'memory' })),
    ],
    [
      'tasks from /etc',
      lines(
        header,
        run,
        good,
        rec({
          kind: 'tasks',
          from: '/etc',
          to: '/sys/fs/cgroup/user.slice',
          file: 'cgroup.procs',
          ids: [[1, 1]],
        }),
      ),
    ],
    [
      'negative task id',
      lines(
        header,
        run,
        good,
        rec({
          kind: 'tasks',
          from: '/sys/fs/cgroup',
          to: '/sys/fs/cgroup/user.slice',
          file: 'cgroup.procs',
          ids: [[-1, 1]],
        }),
      ),
    ],
    [
      'letters in an affinity list',
      lines(header, run, good, rec({ kind: 'affinity', tasks: [[1, 1, 'x']] })),
    ],
    ['unknown scheduling policy', lines(header, run, good, rec({ kind: 'sched', tasks: [[1, 1, 7, 0]] }))],
    [
      'a service other than irqbalance',
      lines(header, run, good, rec({ kind: 'service', name: 'sshd', how: 'systemd' })),
    ],
    ['unknown record kind', lines(header, run, good, rec({ kind: 'exec', cmd: 'reboot' }))],
    ['extra field', lines(header, run, good, rec({ kind: 'mkdir', path: '/sys/fs/cgroup/x', also: 'rm' }))],
    ['files is not an array', lines(header, run, good, rec({ kind: 'write', files: '/etc/passwd' }))],
    ['run number 0', lines(header, JSON.stringify({ t: 'run', run: 0, at: 'x', argv: [] }))],
    ['entries after restored', lines(header, run, JSON.stringify({ t: 'restored', at: 'x' }), good)],
    ['a torn header followed by another line', `${header.slice(0, 30)}\n${run}\n`],
    [
      'a symlink planted in the cgroup tree',
      lines(header, run, good, w('/sys/fs/cgroup/evil/cpuset.cpus')),
      (root) => {
        fs.mkdirSync(path.join(root, 'tmp-target'), { recursive: true });
        fs.writeFileSync(path.join(root, 'tmp-target/cpuset.cpus'), '');
        fs.symlinkSync('/tmp-target', path.join(root, 'sys/fs/cgroup/evil'));
      },
    ],
    [
      'cpufreq symlink redirected outside',
      lines(header, run, good, w('/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor', 'performance')),
      (root) => {
        fs.rmSync(path.join(root, 'sys/devices/system/cpu/cpu0/cpufreq'), { recursive: true, force: true });
        fs.mkdirSync(path.join(root, 'etc/evil'), { recursive: true });
        fs.writeFileSync(path.join(root, 'etc/evil/scaling_governor'), 'x');
        fs.symlinkSync('/etc/evil', path.join(root, 'sys/devices/system/cpu/cpu0/cpufreq'));
      },
    ],
  ];
  let refused = 0;
  let writes = 0;
  for (const [name, content, plant] of cases) {
    it(name, async () => {
      const root = buildFixture('ryzen-5950x');
      const bootId = fs.readFileSync(path.join(root, 'proc/sys/kernel/random/boot_id'), 'utf8').trim();
      plant?.(root);
      const file = tmpFile();
      fs.writeFileSync(file, typeof content === 'string' ? content.replaceAll('BOOT', bootId) : content);
      const h = treeHash(root);
      const r = await cli(root, ['restore', file]);
      assert.equal(r.code, 2, `${name}: ${r.stderr}`);
      assert.equal(r.stderr.split('\n').filter((l) => l && !l.startsWith('hint:')).length, 1, r.stderr);
      assert.equal(treeHash(root), h);
      writes += simWrites(root).length;
      assert.equal(simWrites(root).length, 0);
      refused++;
    });
  }
  it('the journal itself being a symlink is refused', async () => {
    const root = buildFixture('ryzen-5950x');
    const file = tmpFile();
    fs.writeFileSync(file + '.real', '');
    fs.symlinkSync(file + '.real', file);
    const r = await cli(root, ['restore', file]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /symbolic link/);
    assert.deepEqual(simWrites(root), []);
  });
  it(`all ${cases.length} hostile journals were refused with 0 writes`, () => {
    assert.equal(refused, cases.length);
    assert.equal(writes, 0);
    assert.ok(cases.length >= 30);
  });
});

describe('fuzzing the argv splitter', () => {
  const vocab = [
    ...COMMANDS.map((c) => c.name),
    '-u',
    '-v',
    '-d',
    '-n',
    '--json',
    '--cpus',
    '--mems',
    '-ce',
    '-nce',
    '-mm',
    '-nlb',
    '--help',
    '--cpus=C0',
    '/',
    '/system.slice',
    'C0-3',
    'mask',
    'add',
    'performance',
    '',
    '--',
    '-',
    '--x=',
    'N0',
  ];
  it('never throws anything but a usage error (2,000 random argv)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constantFrom(...vocab), fc.string({ maxLength: 8 })), { maxLength: 12 }),
        (argv) => {
          try {
            parseArgv(argv, COMMANDS);
          } catch (e) {
            if (!(e instanceof VfioError) || e.exitCode !== 2) throw e;
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
