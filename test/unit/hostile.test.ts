/**
 * Issue 15: trust nothing a user could write. Every failure the adversarial review found is a case here, by
 * category; the counts are printed at the end ("hostile inputs: ...").
 * Reproduce: node --import tsx --test test/unit/hostile.test.ts
 * Tests run as root: "another user" is uid 1000 (chown), as in test/unit/trust.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { lockFile } from '../../src/kernel/lock.ts';
import { isProcfsDir, RealFs } from '../../src/kernel/realfs.ts';
import { irqRuleOf } from '../../src/kernel/writable.ts';
import { markRestored } from '../../src/steps/journal.ts';
import { buildFixture } from '../fixtures/build.ts';
import { cli } from '../support/cli.ts';
import { sysRead, sysWrite, treeFiles, diffTrees, treeHash } from '../support/tree.ts';

const tally = new Map<string, { tried: number; failed: number }>();
/** Count one hostile input of `category`; `held` is whether the tool resisted it. */
function count(category: string, held: boolean): void {
  const t = tally.get(category) ?? { tried: 0, failed: 0 };
  t.tried++;
  if (!held) t.failed++;
  tally.set(category, t);
}
after(() => {
  const parts = [...tally].map(([c, t]) => `${c} ${t.tried} tried / ${t.failed} failed`);
  const total = [...tally.values()].reduce((a, t) => a + t.tried, 0);
  process.stderr.write(`hostile inputs: ${total} in all: ${parts.join('; ')}\n`);
});

const SC = (() => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-systemctl-'));
  const bin = path.join(dir, 'systemctl');
  const log = path.join(dir, 'log');
  fs.writeFileSync(bin, `#!/bin/sh\necho "$@" >> '${log}'\n`, { mode: 0o755 });
  return { bin, log };
})();

function tmpDir(mode = 0o755): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-hostile-'));
  fs.chmodSync(d, mode);
  return d;
}

/** A real journal of `argv` (root-owned, 0600, in a root-owned 0700 directory). */
async function journalOf(root: string, argv: string[]): Promise<string> {
  const j = path.join(tmpDir(0o700), 'undo');
  const r = await cli(root, ['-u', j, ...argv]);
  assert.equal(r.code, 0, r.stderr);
  return j;
}

function fileState(f: string): string {
  try {
    const st = fs.lstatSync(f);
    return `${st.mode}:${st.uid}:${st.isFile() ? fs.readFileSync(f, 'utf8') : ''}`;
  } catch {
    return 'missing';
  }
}

describe('journal trust: only a journal root alone could have written is read or extended', () => {
  const cases: [string, (j: string) => string][] = [
    [
      'owned by another user',
      (j) => {
        fs.chownSync(j, 1000, 1000);
        return j;
      },
    ],
    [
      'group-writable',
      (j) => {
        fs.chmodSync(j, 0o620);
        return j;
      },
    ],
    [
      'world-writable',
      (j) => {
        fs.chmodSync(j, 0o666);
        return j;
      },
    ],
    [
      'in a directory another user owns',
      (j) => {
        fs.chownSync(path.dirname(j), 1000, 1000);
        return j;
      },
    ],
    [
      'in a world-writable directory (not sticky)',
      (j) => {
        fs.chmodSync(path.dirname(j), 0o777);
        return j;
      },
    ],
    [
      'in a group-writable directory',
      (j) => {
        fs.chmodSync(path.dirname(j), 0o770);
        return j;
      },
    ],
    [
      'reached through a directory symlink another user owns',
      (j) => {
        const home = tmpDir();
        fs.chownSync(home, 1000, 1000);
        fs.symlinkSync(path.dirname(j), path.join(home, 'd'));
        return path.join(home, 'd', path.basename(j));
      },
    ],
    [
      'a symlink to a root journal',
      (j) => {
        const l = `${j}.link`;
        fs.symlinkSync(j, l);
        return l;
      },
    ],
    [
      'in a sticky directory but owned by another user',
      (j) => {
        const sticky = tmpDir(0o1777);
        const f = path.join(sticky, 'undo');
        fs.copyFileSync(j, f);
        fs.chownSync(f, 1000, 1000);
        return f;
      },
    ],
  ];
  for (const [what, make] of cases) {
    for (const cmd of ['restore', 'release', '-u append'] as const) {
      it(`${cmd}: a journal ${what} is refused (exit 2), nothing changed`, async () => {
        const root = buildFixture('ryzen-5950x');
        const j0 = await journalOf(root, ['cpuset-modify', '--cpus', 'C0-3', '/user.slice']);
        const j = make(j0);
        const h = treeHash(root);
        const before = fileState(j0);
        const argv =
          cmd === 'restore'
            ? ['restore', j]
            : cmd === 'release'
              ? ['release', j]
              : ['-u', j, 'cpuset-modify', '--cpus', 'C0-5', '/system.slice'];
        const r = await cli(root, argv);
        const held = r.code === 2 && treeHash(root) === h && fileState(j0) === before;
        count('journal trust', held);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /^vfio-isolate: (journal|undo file) .* (is not trusted|symbolic link)/);
        assert.match(r.stderr, /^hint: /m);
        assert.equal(treeHash(root), h);
        assert.equal(fileState(j0), before, 'the journal was not touched');
      });
    }
  }

  it('the default journal (release without -u) owned by another user is refused', async () => {
    const root = buildFixture('ryzen-5950x');
    assert.equal((await cli(root, ['isolate', '--no-irqs', 'C8-15,24-31'])).code, 0);
    const j = path.join(root, 'run/vfio-isolate/isolate.journal');
    fs.chownSync(j, 1000, 1000);
    const h = treeHash(root);
    const r = await cli(root, ['release']);
    count('journal trust', r.code === 2 && treeHash(root) === h);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(treeHash(root), h);
  });

  for (const [what, mode, owner] of [
    ['another user owns', 0o755, 1000],
    ['anyone can write (not sticky)', 0o777, 0],
  ] as const) {
    it(`-u: a new journal in a directory ${what} is refused, not created`, async () => {
      const root = buildFixture('ryzen-5950x');
      const d = tmpDir(mode);
      fs.chownSync(d, owner, owner);
      const h = treeHash(root);
      const r = await cli(root, [
        '-u',
        path.join(d, 'new'),
        'cpuset-modify',
        '--cpus',
        'C0-3',
        '/user.slice',
      ]);
      count('journal trust', r.code === 2 && !fs.existsSync(path.join(d, 'new')));
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /untrusted directory/);
      assert.equal(fs.existsSync(path.join(d, 'new')), false);
      assert.equal(treeHash(root), h);
    });
  }

  it('-u: a new journal directly in a root-owned sticky directory (/tmp) is fine, and restores', async () => {
    const root = buildFixture('ryzen-5950x');
    const before = treeFiles(root);
    const j = path.join(tmpDir(0o1777), 'undo');
    assert.equal((await cli(root, ['-u', j, 'cpuset-modify', '--cpus', 'C0-3', '/user.slice'])).code, 0);
    assert.equal((await cli(root, ['restore', j])).code, 0);
    assert.deepEqual(diffTrees(before, treeFiles(root)), []);
  });

  for (const [what, make] of [
    ['a FIFO', (f: string) => spawnSync('mkfifo', [f])],
    ['a directory', (f: string) => fs.mkdirSync(f)],
  ] as const) {
    it(`restore of ${what} is refused at once`, async () => {
      const root = buildFixture('ryzen-5950x');
      const f = path.join(tmpDir(0o700), 'undo');
      make(f);
      const t0 = Date.now();
      const r = await cli(root, ['restore', f]);
      count('journal trust', r.code === 2 && Date.now() - t0 < 2000);
      assert.equal(r.code, 2, r.stderr);
      assert.ok(Date.now() - t0 < 2000);
    });
  }
});

describe("journals planning reads: another VM's journal and the host journal must be root's too", () => {
  /** Two VMs: A (C8-15) isolated with journal a; returns a, the host journal and a fresh journal path b. */
  async function vmA(root: string) {
    const d = tmpDir(0o700);
    const a = path.join(d, 'a.journal');
    assert.equal((await cli(root, ['-u', a, 'isolate', '--no-irqs', 'C8-15'])).code, 0);
    return { a, host: path.join(root, 'run/vfio-isolate/host.journal'), b: path.join(d, 'b.journal') };
  }

  it("isolate: A's journal owned by another user, marked restored there, does not free A's CPUs", async () => {
    const root = buildFixture('ryzen-5950x');
    const { a, b } = await vmA(root);
    fs.chownSync(a, 1000, 1000);
    fs.appendFileSync(a, JSON.stringify({ t: 'restored', at: new Date().toISOString() }) + '\n');
    const h = treeHash(root);
    // B overlaps A: refused while A's reservation holds (a forged mark in a file another user owns is not read)
    const r = await cli(root, ['-u', b, 'isolate', '--no-irqs', 'C12-19']);
    count('journal trust', r.code === 2 && treeHash(root) === h);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /already isolated/);
    assert.equal(treeHash(root), h);
  });

  it("release of B: A's journal owned by another user, marked restored there, keeps A isolated", async () => {
    const root = buildFixture('ryzen-5950x');
    const { a, b } = await vmA(root);
    assert.equal((await cli(root, ['-u', b, 'isolate', '--no-irqs', 'C24-31'])).code, 0);
    fs.chownSync(a, 1000, 1000);
    fs.appendFileSync(a, JSON.stringify({ t: 'restored', at: new Date().toISOString() }) + '\n');
    assert.equal((await cli(root, ['-u', b, 'release'])).code, 0);
    // A still runs: the host keeps off its CPUs
    assert.equal(sysRead(root, 'sys/fs/cgroup/user.slice/cpuset.cpus'), '0-7,16-31');
  });

  it('the last release with a host journal owned by another user is refused (exit 2), not passed over', async () => {
    const root = buildFixture('ryzen-5950x');
    const { a, host } = await vmA(root);
    fs.chownSync(host, 1000, 1000);
    const h = treeHash(root);
    const r = await cli(root, ['-u', a, 'release']);
    count('journal trust', r.code === 2 && treeHash(root) === h);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /host\.journal is not trusted/);
    assert.equal(treeHash(root), h);
  });

  it('status: a journal owned by another user is "unreadable", its content not believed', async () => {
    const root = buildFixture('ryzen-5950x');
    const { a } = await vmA(root);
    fs.chownSync(a, 1000, 1000);
    fs.appendFileSync(a, JSON.stringify({ t: 'restored', at: new Date().toISOString() }) + '\n');
    const r = await cli(root, ['--json', 'status']);
    const res = (JSON.parse(r.stdout) as { reservations: { journal: string; journalState: string }[] })
      .reservations;
    assert.deepEqual(
      res.map((x) => [x.journal, x.journalState]),
      [[a, 'unreadable']],
    );
  });
});

describe('record values bounded to what the tool writes', () => {
  const BOOT = (root: string) => sysRead(root, 'proc/sys/kernel/random/boot_id').trim();
  const header = (boot: string) =>
    JSON.stringify({
      t: 'header',
      format: 'vfio-isolate-journal',
      version: 1,
      tool: 't',
      bootId: boot,
      created: 'c',
    });
  const runLine = (n = 1) => JSON.stringify({ t: 'run', run: n, at: 'x', argv: [] });
  const rec = (r: unknown, n = 1) => JSON.stringify({ t: 'rec', run: n, rec: r });
  const w = (p: string, ...v: string[]) => rec({ kind: 'write', files: [[p, ...v]] });
  const good = w('/sys/fs/cgroup/user.slice/cpuset.cpus', '0-3', '0-31');
  const cases: [string, (boot: string) => string[]][] = [
    [
      'affinity 0-999999999999 (allocation bomb)',
      () => [rec({ kind: 'affinity', tasks: [[1, 1, '0-999999999999']] })],
    ],
    ['affinity beyond the possible CPUs', () => [rec({ kind: 'affinity', tasks: [[1, 1, '0-32']] })]],
    ['affinity reversed range', () => [rec({ kind: 'affinity', tasks: [[1, 1, '5-2']] })]],
    ['affinity empty', () => [rec({ kind: 'affinity', tasks: [[1, 1, '']] })]],
    ['SCHED_OTHER with priority 50', () => [rec({ kind: 'sched', tasks: [[1, 1, 0, 50]], to: [1, 10] })]],
    ['SCHED_FIFO priority 0', () => [rec({ kind: 'sched', tasks: [[1, 1, 1, 0]], to: [1, 10] })]],
    ['sched without what the run set', () => [rec({ kind: 'sched', tasks: [[1, 1, 1, 99]] })]],
    ['sched "set" to SCHED_OTHER', () => [rec({ kind: 'sched', tasks: [[1, 1, 1, 99]], to: [0, 0] })]],
    ['SCHED_DEADLINE', () => [rec({ kind: 'sched', tasks: [[1, 1, 6, 0]], to: [1, 10] })]],
    [
      'irqbalance config free text',
      () => [
        rec({ kind: 'irqbalance-config', path: '/etc/default/irqbalance', old: 'IRQBALANCE_ARGS="--x"\n' }),
      ],
    ],
    [
      'irqbalance ban with shell text',
      () => [rec({ kind: 'irqbalance-ban', cpus: '8-15;reboot', old: null })],
    ],
    [
      'irqbalance ban beyond the possible CPUs',
      () => [rec({ kind: 'irqbalance-ban', cpus: '0-99999', old: null })],
    ],
    ['irqbalance old value free text', () => [rec({ kind: 'irqbalance-ban', cpus: '8', old: 'x=y' })]],
    ['run number 2^53', () => [JSON.stringify({ t: 'run', run: 2 ** 53, at: 'x', argv: [] })]],
    ['run number 1e300', () => ['{"t":"run","run":1e300,"at":"x","argv":[]}']],
    ['cpuset.cpus 0-100000', () => [w('/sys/fs/cgroup/user.slice/cpuset.cpus', '0-100000')]],
    ['cpuset.cpus written value 0-64', () => [w('/sys/fs/cgroup/user.slice/cpuset.cpus', '0-3', '0-64')]],
    ['cpuset.mems 0-5000', () => [w('/sys/fs/cgroup/user.slice/cpuset.mems', '0-5000')]],
    ['IRQ mask with bits beyond the CPUs', () => [w('/proc/irq/5/smp_affinity', 'ffffffffffff')]],
    ['IRQ list beyond the CPUs', () => [w('/proc/irq/5/smp_affinity_list', '0-40')]],
    [
      'workqueue mask beyond the CPUs',
      () => [w('/sys/devices/virtual/workqueue/cpumask', '1,00000000,00000000')],
    ],
    [
      'a path through a symlink (cpuN/cpufreq)',
      () => [w('/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor', 'schedutil')],
    ],
    [
      'a path through a symlink (bus/workqueue)',
      () => [w('/sys/bus/workqueue/devices/writeback/cpumask', 'ffffffff')],
    ],
    [
      'tasks moved from a cgroup to itself',
      () => [
        rec({
          kind: 'tasks',
          from: '/sys/fs/cgroup/a',
          to: '/sys/fs/cgroup/a',
          file: 'cgroup.procs',
          ids: [[1, 1]],
        }),
      ],
    ],
  ];
  for (const [what, body] of cases) {
    it(`${what}: refused whole (exit 2), nothing written`, async () => {
      const root = buildFixture('ryzen-5950x');
      const j = path.join(tmpDir(0o700), 'undo');
      const boot = BOOT(root);
      fs.writeFileSync(j, [header(boot), runLine(), good, ...body(boot)].join('\n') + '\n', { mode: 0o600 });
      const h = treeHash(root);
      const t0 = Date.now();
      const r = await cli(root, ['restore', j]);
      count('record bounds', r.code === 2 && treeHash(root) === h);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(treeHash(root), h);
      assert.ok(Date.now() - t0 < 5000, 'answered at once');
    });
  }

  it('a journal holding the last run number allowed is not appended to (exit 2)', async () => {
    const root = buildFixture('ryzen-5950x');
    const j = path.join(tmpDir(0o700), 'undo');
    fs.writeFileSync(j, [header(BOOT(root)), runLine(1_000_000)].join('\n') + '\n', { mode: 0o600 });
    const before = fs.readFileSync(j, 'utf8');
    const r = await cli(root, ['-u', j, 'cpuset-modify', '--cpus', 'C0-3', '/user.slice']);
    count('record bounds', r.code === 2 && fs.readFileSync(j, 'utf8') === before);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(fs.readFileSync(j, 'utf8'), before);
  });
});

describe('restore writes back only what still holds what the run wrote', () => {
  it('a file changed since is a conflict: named, left alone, exit 1; --force writes it', async () => {
    const root = buildFixture('ryzen-5950x');
    const orig = sysRead(root, 'sys/fs/cgroup/user.slice/cpuset.cpus');
    const j = await journalOf(root, [
      ...['cpuset-modify', '--cpus', 'C0-3', '/user.slice'],
      ...['cpuset-modify', '--cpus', 'C0-5', '/system.slice'],
    ]);
    sysWrite(root, 'sys/fs/cgroup/user.slice/cpuset.cpus', '0-7'); // another VM's isolation, say
    const r = await cli(root, ['restore', j]);
    count(
      'restore conflict',
      r.code === 1 && sysRead(root, 'sys/fs/cgroup/user.slice/cpuset.cpus') === '0-7',
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /sys\/fs\/cgroup\/user\.slice\/cpuset\.cpus \(holds "0-7", the run wrote "0-3"\)/);
    assert.match(r.stderr, /^hint: .*--force/m);
    assert.equal(sysRead(root, 'sys/fs/cgroup/user.slice/cpuset.cpus'), '0-7', 'left alone');
    assert.notEqual(sysRead(root, 'sys/fs/cgroup/system.slice/cpuset.cpus'), '0-5', 'the rest was restored');
    assert.doesNotMatch(fs.readFileSync(j, 'utf8'), /"restored"/, 'not marked restored');
    const f = await cli(root, ['--force', 'restore', j]);
    assert.equal(f.code, 0, f.stderr);
    assert.match(
      f.stderr,
      /--force: writing back "[^"]*" over a change since the run: \S+\/user\.slice\/cpuset\.cpus \(holds "0-7", the run wrote "0-3"\)/,
      'what --force overwrote is named',
    );
    // "inherit" comes back as the CPUs it inherits when the cgroup has tasks (README, Guarantees)
    assert.ok(['', '0-31'].includes(sysRead(root, 'sys/fs/cgroup/user.slice/cpuset.cpus')), orig);
  });

  it('a thread whose policy changed since pin-qemu set it keeps it (no SCHED_FIFO 99 from a record)', async () => {
    const root = buildFixture('ryzen-5950x');
    // pid 1: init, SCHED_OTHER; the record claims the run set FIFO 10 and the old value was FIFO 99
    const start = Number(sysRead(root, 'proc/1/stat').split(') ')[1]!.split(' ')[19]);
    const boot = sysRead(root, 'proc/sys/kernel/random/boot_id').trim();
    const j = path.join(tmpDir(0o700), 'undo');
    fs.writeFileSync(
      j,
      [
        JSON.stringify({
          t: 'header',
          format: 'vfio-isolate-journal',
          version: 1,
          tool: 't',
          bootId: boot,
          created: 'c',
        }),
        JSON.stringify({ t: 'run', run: 1, at: 'x', argv: [] }),
        JSON.stringify({ t: 'rec', run: 1, rec: { kind: 'sched', tasks: [[1, start, 1, 99]], to: [1, 10] } }),
      ].join('\n') + '\n',
      { mode: 0o600 },
    );
    const stat = sysRead(root, 'proc/1/stat');
    const r = await cli(root, ['restore', j]);
    count('restore conflict', r.code === 1 && sysRead(root, 'proc/1/stat') === stat);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /thread 1 \(has policy 0\/0, the run set 1\/10\)/);
    assert.equal(sysRead(root, 'proc/1/stat'), stat);
    const f = await cli(root, ['--force', 'restore', j]);
    assert.equal(f.code, 0, f.stderr);
    assert.match(
      f.stderr,
      /--force: setting policy 1\/99 again over a change since the run: thread 1 \(has policy 0\/0, the run set 1\/10\)/,
    );
  });
});

describe('the lock', () => {
  const lockPath = (root: string) => path.join(root, 'run/vfio-isolate/lock');
  const prep = (root: string) =>
    fs.mkdirSync(path.join(root, 'run/vfio-isolate'), { recursive: true, mode: 0o700 });
  const cases: [string, (root: string) => void][] = [
    ['a directory', (root) => fs.mkdirSync(lockPath(root))],
    ['a FIFO', (root) => spawnSync('mkfifo', [lockPath(root)])],
    ['a symlink', (root) => fs.symlinkSync('/etc/passwd', lockPath(root))],
    [
      'a file another user owns',
      (root) => {
        fs.writeFileSync(lockPath(root), '1 1\n', { mode: 0o600 });
        fs.chownSync(lockPath(root), 1000, 1000);
      },
    ],
    [
      'a world-writable file',
      (root) => {
        fs.writeFileSync(lockPath(root), '');
        fs.chmodSync(lockPath(root), 0o666);
      },
    ],
    [
      'a hard link to another file',
      (root) => {
        const other = path.join(root, 'run/other');
        fs.writeFileSync(other, '', { mode: 0o600 });
        fs.linkSync(other, lockPath(root));
      },
    ],
    [
      'in a directory another user owns',
      (root) => {
        fs.chownSync(path.join(root, 'run/vfio-isolate'), 1000, 1000);
      },
    ],
  ];
  for (const [what, make] of cases) {
    it(`${what} at the lock path: refused at once (exit 2), nothing changed`, async () => {
      const root = buildFixture('ryzen-5950x');
      prep(root);
      make(root);
      const h = treeHash(root);
      const t0 = Date.now();
      const r = await cli(root, ['cpuset-modify', '--cpus', 'C0-3', '/user.slice'], {
        VFIO_ISOLATE_LOCK_WAIT_MS: '5000',
      });
      const ms = Date.now() - t0;
      count('lock', r.code === 2 && ms < 4000 && treeHash(root) === h);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /lock/);
      assert.ok(ms < 4000, `bounded (${ms} ms)`);
      assert.equal(treeHash(root), h);
    });
  }

  it('a file where a directory on the way should be: exit 2, one sentence naming it and why', async () => {
    const root = buildFixture('ryzen-5950x');
    fs.rmSync(path.join(root, 'run'), { recursive: true, force: true });
    fs.writeFileSync(path.join(root, 'run'), 'x', { mode: 0o600 });
    const h = treeHash(root);
    const r = await cli(root, ['cpuset-modify', '--cpus', 'C0-3', '/user.slice'], {
      VFIO_ISOLATE_LOCK_WAIT_MS: '0',
    });
    assert.equal(r.code, 2, r.stderr);
    const dir = path.join(root, 'run/vfio-isolate');
    assert.equal(
      r.stderr.split('\n')[0],
      `vfio-isolate: lock ${dir}/lock: ${dir} cannot be resolved (ENOTDIR)`,
    );
    assert.equal(treeHash(root), h);
  });

  it('garbage in the lock file does not matter (flock, not contents)', async () => {
    const root = buildFixture('ryzen-5950x');
    prep(root);
    fs.writeFileSync(lockPath(root), Buffer.from([0, 1, 2, 0xff, 0x0a, 0x41]), { mode: 0o600 });
    const r = await cli(root, ['cpuset-modify', '--cpus', 'C0-3', '/user.slice'], {
      VFIO_ISOLATE_LOCK_WAIT_MS: '0',
    });
    count('lock', r.code === 0);
    assert.equal(r.code, 0, r.stderr);
  });

  for (const content of ['', 'garbage\n', '999999999 1\n']) {
    it(`a live holder whose lock file holds ${JSON.stringify(content)} is waited for, never taken over`, async () => {
      const root = buildFixture('ryzen-5950x');
      prep(root);
      fs.writeFileSync(lockPath(root), content, { mode: 0o600 });
      // hold it through another open file description, without writing our name (a lock "just created")
      const held = lockFile(lockPath(root), 0);
      fs.writeFileSync(lockPath(root), content);
      const h = treeHash(root);
      const t0 = Date.now();
      const r = await cli(root, ['cpuset-modify', '--cpus', 'C0-3', '/user.slice'], {
        VFIO_ISOLATE_LOCK_WAIT_MS: '300',
      });
      held.release();
      count('lock', r.code === 1 && treeHash(root) === h);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /another vfio-isolate run.* is still running/);
      assert.ok(Date.now() - t0 >= 300);
      assert.equal(treeHash(root), h);
    });
  }

  it('restore reads the journal under the lock: records appended while it waited are undone too', async () => {
    const root = buildFixture('ryzen-5950x');
    const before = treeFiles(root);
    const j = await journalOf(root, ['cpuset-modify', '--cpus', 'C0-3', '/user.slice']);
    prep(root);
    // We are a run in progress: we hold the lock.
    const held = lockFile(lockPath(root), 0);
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/sim-main.ts', 'restore', j], {
      env: { ...process.env, VFIO_ISOLATE_ROOT: root, VFIO_ISOLATE_LOCK_WAIT_MS: '60000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const done = new Promise<number>((res) => child.on('close', (c) => res(c ?? -1)));
    // Wait until the restore has the lock file open (it is waiting for the lock).
    const waiting = (): boolean => {
      try {
        return fs
          .readdirSync(`/proc/${child.pid}/fd`)
          .some((fd) => fs.readlinkSync(`/proc/${child.pid}/fd/${fd}`) === fs.realpathSync(lockPath(root)));
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 600 && !waiting(); i++) await new Promise((res) => setTimeout(res, 50));
    assert.ok(waiting(), 'the restore reached the lock');
    await new Promise((res) => setTimeout(res, 200));
    // Our run changes a file and journals it (what `-u J cpuset-modify --cpus C0-5 /system.slice` does).
    const f = '/sys/fs/cgroup/system.slice/cpuset.cpus';
    const old = sysRead(root, f.slice(1)).trim();
    fs.appendFileSync(
      j,
      JSON.stringify({ t: 'run', run: 2, at: 'x', argv: [] }) +
        '\n' +
        JSON.stringify({ t: 'rec', run: 2, rec: { kind: 'write', files: [[f, old, '0-5']] } }) +
        '\n',
    );
    sysWrite(root, f.slice(1), '0-5');
    held.release();
    const code = await done;
    count('lock', code === 0 && diffTrees(before, treeFiles(root)).length === 0);
    assert.equal(code, 0, err);
    assert.deepEqual(diffTrees(before, treeFiles(root)), [], 'both runs undone');
  });

  it('a journal that grew since it was read is not marked restored', () => {
    const d = tmpDir(0o700);
    const j = path.join(d, 'j');
    fs.writeFileSync(j, '{"t":"header"}\n', { mode: 0o600 });
    const size = fs.statSync(j).size;
    fs.appendFileSync(j, '{"t":"run"}\n');
    const before = fs.readFileSync(j, 'utf8');
    let threw = false;
    try {
      markRestored(j, false, new Date(), size);
    } catch (e) {
      threw = /changed while it was being restored/.test(String(e));
    }
    count('lock', threw && fs.readFileSync(j, 'utf8') === before);
    assert.ok(threw);
    assert.equal(fs.readFileSync(j, 'utf8'), before);
  });
});

describe('writes: exactly the validated path, kernel files only (RealFs, on temp files: it never writes)', () => {
  const rf = new RealFs();
  const cases: [string, (d: string) => { path: string; victim: string }][] = [
    [
      'a regular file on an ordinary file system (never truncated)',
      (d) => {
        fs.writeFileSync(path.join(d, 'f'), 'precious');
        return { path: path.join(d, 'f'), victim: path.join(d, 'f') };
      },
    ],
    [
      'a symlink as the last component',
      (d) => {
        fs.writeFileSync(path.join(d, 'f'), 'precious');
        fs.symlinkSync(path.join(d, 'f'), path.join(d, 'l'));
        return { path: path.join(d, 'l'), victim: path.join(d, 'f') };
      },
    ],
    [
      'a symlinked directory on the way (a flip after validation)',
      (d) => {
        fs.mkdirSync(path.join(d, 'real'));
        fs.writeFileSync(path.join(d, 'real/cpuset.cpus'), 'precious');
        fs.symlinkSync(path.join(d, 'real'), path.join(d, 'cg'));
        return { path: path.join(d, 'cg/cpuset.cpus'), victim: path.join(d, 'real/cpuset.cpus') };
      },
    ],
    [
      'a symlink to a kernel file (not the path asked for)',
      (d) => {
        fs.symlinkSync('/proc/sys/vm/stat_interval', path.join(d, 'l'));
        return { path: path.join(d, 'l'), victim: path.join(d, 'l') };
      },
    ],
    [
      'a path with .. in it',
      (d) => {
        fs.mkdirSync(path.join(d, 'a'));
        fs.writeFileSync(path.join(d, 'f'), 'precious');
        return { path: `${d}/a/../f`, victim: path.join(d, 'f') };
      },
    ],
  ];
  for (const [what, make] of cases) {
    it(`${what}: refused before a byte is written`, () => {
      const d = tmpDir(0o700);
      const { path: p, victim } = make(d);
      const before = fileState(victim);
      let code: string | undefined;
      try {
        rf.write(p, '0-3');
      } catch (e) {
        code = (e as { code?: string }).code;
      }
      count('write target', code !== undefined && fileState(victim) === before);
      assert.ok(code === 'ELOOP' || code === 'EXDEV', String(code));
      assert.equal(fileState(victim), before);
    });
    it(`${what}: not opened for restore's read and write either`, () => {
      const d = tmpDir(0o700);
      const { path: p, victim } = make(d);
      const before = fileState(victim);
      let code: string | undefined;
      try {
        rf.openForUpdate(p).close();
      } catch (e) {
        code = (e as { code?: string }).code;
      }
      count('write target', code !== undefined && fileState(victim) === before);
      assert.equal(code, 'EINVAL', 'only an IRQ affinity file is opened so');
      assert.equal(fileState(victim), before);
    });
  }
});

describe('writes: the descriptor must be the validated path (a temp file system standing in for sysfs)', () => {
  const cases: [string, (d: string) => { path: string; victim: string }][] = [
    [
      'a symlink as the last component',
      (d) => {
        fs.writeFileSync(path.join(d, 'f'), 'precious');
        fs.symlinkSync(path.join(d, 'f'), path.join(d, 'l'));
        return { path: path.join(d, 'l'), victim: path.join(d, 'f') };
      },
    ],
    [
      'a directory flipped to a symlink after validation',
      (d) => {
        fs.mkdirSync(path.join(d, 'evil'));
        fs.writeFileSync(path.join(d, 'evil/cpuset.cpus'), 'precious');
        fs.symlinkSync(path.join(d, 'evil'), path.join(d, 'cg'));
        return { path: path.join(d, 'cg/cpuset.cpus'), victim: path.join(d, 'evil/cpuset.cpus') };
      },
    ],
    [
      'a path with .. in it',
      (d) => {
        fs.mkdirSync(path.join(d, 'a'));
        fs.writeFileSync(path.join(d, 'f'), 'precious');
        return { path: `${d}/a/../f`, victim: path.join(d, 'f') };
      },
    ],
  ];
  for (const [what, make] of cases) {
    it(`${what}: ELOOP before a byte is written; the canonical path itself is written`, () => {
      const d = tmpDir(0o700);
      const rf = new RealFs(new Set([fs.statSync(d).dev]));
      const { path: p, victim } = make(d);
      const before = fileState(victim);
      let code: string | undefined;
      try {
        rf.write(p, 'x');
      } catch (e) {
        code = (e as { code?: string }).code;
      }
      count('write target', code === 'ELOOP' && fileState(victim) === before);
      assert.equal(code, 'ELOOP');
      assert.equal(fileState(victim), before);
      // the same file by its canonical path is written (one write at offset 0, no truncation)
      rf.write(fs.realpathSync(victim), 'X');
      assert.equal(fs.readFileSync(victim, 'utf8'), 'Xrecious');
    });
  }
});

describe('irqRuleOf: the only paths RealFs writes without a per-file check (procfs, no symlink on the way)', () => {
  it('matches the IRQ affinity files and nothing that could lead elsewhere', () => {
    for (const p of [
      '/proc/irq/0/smp_affinity',
      '/proc/irq/127/smp_affinity_list',
      '/proc/irq/default_smp_affinity',
    ])
      assert.ok(irqRuleOf(p), p);
    for (const p of [
      '/proc/irq/1/../../self/root/tmp/x',
      '/proc/irq/1/smp_affinity_list/',
      '/proc/irq//1/smp_affinity',
      '/proc/irq/1x/smp_affinity',
      '/proc/irq/./1/smp_affinity',
      '/proc/self/root/proc/irq/1/smp_affinity',
      '/proc/irq/1/smp_affinity_list\n',
      '/proc/irq/1/spurious',
      '/proc/irq/1/node',
      'proc/irq/1/smp_affinity',
      '/sys/fs/cgroup/proc/irq/1/smp_affinity',
    ])
      assert.ok(!irqRuleOf(p), JSON.stringify(p));
  });

  it('they are written unchecked only when /proc/irq is a procfs directory itself (read-only looks at this host)', () => {
    assert.equal(isProcfsDir('/proc/irq'), true);
    assert.equal(isProcfsDir('/proc/sys'), true);
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-procfs-'));
    assert.equal(isProcfsDir(d), false, 'a directory of an ordinary file system');
    fs.symlinkSync('/proc/irq', path.join(d, 'irq'));
    assert.equal(isProcfsDir(path.join(d, 'irq')), false, 'a symlink to procfs');
    assert.equal(isProcfsDir('/proc/self/stat'), false, 'a procfs file, not a directory');
    assert.equal(isProcfsDir(path.join(d, 'missing')), false);
    assert.equal(isProcfsDir('/sys/kernel'), false, 'sysfs');
  });
});

describe('a fake root: nothing resolves out of it', () => {
  const cases: [string, (root: string, out: string) => void, string[]][] = [
    [
      '/run is a symlink out',
      (root, out) => symlinkOver(path.join(root, 'run'), out),
      ['cpuset-modify', '--cpus', 'C0-3', '/user.slice'],
    ],
    [
      '/run/vfio-isolate is a symlink out',
      (root, out) => symlinkOver(path.join(root, 'run/vfio-isolate'), out),
      ['isolate', '--no-irqs', 'C8-15'],
    ],
    [
      '/run/vfio-isolate is a relative symlink climbing out',
      (root, out) =>
        symlinkOver(path.join(root, 'run/vfio-isolate'), path.relative(path.join(root, 'run'), out)),
      ['isolate', '--no-irqs', 'C8-15'],
    ],
    [
      'the irqbalance drop-in directory is a symlink out',
      (root, out) => {
        fs.mkdirSync(path.join(root, 'run/systemd/system'), { recursive: true });
        symlinkOver(path.join(root, 'run/systemd/system/irqbalance.service.d'), out);
      },
      ['isolate', '--no-irqs', '--irqbalance-ban', 'C8-15'],
    ],
    [
      'the hooks directory is a symlink out',
      (root, out) => {
        fs.mkdirSync(path.join(root, 'etc/libvirt'), { recursive: true });
        symlinkOver(path.join(root, 'etc/libvirt/hooks'), out);
      },
      ['libvirt', 'hook', 'install', 'win11', '--profile', 'PROFILE'],
    ],
    [
      'a cgroup is an absolute symlink to a host directory',
      (root, out) => {
        fs.writeFileSync(path.join(out, 'cpuset.cpus'), 'precious');
        symlinkOver(path.join(root, 'sys/fs/cgroup/evil.slice'), out);
      },
      ['cpuset-modify', '--cpus', 'C0-3', '/evil.slice'],
    ],
    [
      'a cgroup is a relative symlink climbing out',
      (root, out) => {
        fs.writeFileSync(path.join(out, 'cpuset.cpus'), 'precious');
        symlinkOver(path.join(root, 'sys/fs/cgroup/evil.slice'), '../../../../../../../../../../..' + out);
      },
      ['cpuset-modify', '--cpus', 'C0-3', '/evil.slice'],
    ],
  ];
  for (const [what, make, argv] of cases) {
    it(`${what}: nothing outside the root changes`, async () => {
      const root = buildFixture('ryzen-5950x');
      const out = tmpDir(0o700);
      make(root, out);
      const outBefore = listing(out);
      const profile = path.join(tmpDir(0o755), 'win11.toml');
      fs.writeFileSync(profile, 'vm_cpus = "C8-15"\n', { mode: 0o644 });
      const r = await cli(
        root,
        argv.map((a) => (a === 'PROFILE' ? profile : a)),
        { VFIO_ISOLATE_SYSTEMCTL: SC.bin },
      );
      const held = r.code !== 0 && listing(out) === outBefore;
      count('fake root escape', held);
      assert.notEqual(r.code, 0, r.stdout);
      assert.equal(listing(out), outBefore, `nothing written outside: ${r.stderr}`);
    });
  }
});

function symlinkOver(link: string, target: string): void {
  fs.rmSync(link, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(link), { recursive: true });
  fs.symlinkSync(target, link);
}

function listing(dir: string): string {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .map((e) => {
      const p = path.join(e.parentPath, e.name);
      return `${p}:${e.isFile() ? fs.readFileSync(p, 'utf8') : ''}`;
    })
    .sort()
    .join('\n');
}

describe('profiles: root reads only a profile root alone could have written', () => {
  const cases: [string, (f: string) => void][] = [
    ['world-writable', (f) => fs.chmodSync(f, 0o666)],
    ['group-writable', (f) => fs.chmodSync(f, 0o664)],
    ['owned by another user', (f) => fs.chownSync(f, 1000, 1000)],
    ['in a directory another user owns', (f) => fs.chownSync(path.dirname(f), 1000, 1000)],
    ['in a world-writable directory', (f) => fs.chmodSync(path.dirname(f), 0o777)],
  ];
  for (const [what, make] of cases) {
    for (const argv of [
      ['libvirt', 'hook', 'install', 'win11', '--profile', 'P'],
      ['-u', 'J', 'isolate', '--profile', 'P'],
      // what the libvirt hook runs as root at "started"
      ['measure', '--profile', 'P', '--after-start'],
    ]) {
      it(`${argv.filter((a) => !['P', 'J', '-u'].includes(a)).join(' ')}: a profile ${what} is refused (exit 2)`, async () => {
        const root = buildFixture('ryzen-5950x');
        const f = path.join(tmpDir(0o755), 'win11.toml');
        fs.writeFileSync(f, 'domain = "win11"\nvm_cpus = "C8-15,24-31"\n', { mode: 0o644 });
        make(f);
        const j = path.join(tmpDir(0o700), 'j');
        const h = treeHash(root);
        const r = await cli(
          root,
          argv.map((a) => (a === 'P' ? f : a === 'J' ? j : a)),
        );
        count('profile trust', r.code === 2 && treeHash(root) === h);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /profile .* is not trusted/);
        assert.equal(treeHash(root), h);
        assert.equal(fs.existsSync(j), false);
      });
    }
  }
});

describe('irqbalance is identified by its executable and owner, not its name', () => {
  const cases: [string, (root: string) => void][] = [
    [
      'a user process named irqbalance (exe in a home directory)',
      (root) => {
        fs.mkdirSync(path.join(root, 'home/u'), { recursive: true });
        fs.writeFileSync(path.join(root, 'home/u/irqbalance'), '');
        fs.rmSync(path.join(root, 'proc/740/exe'));
        fs.symlinkSync('/home/u/irqbalance', path.join(root, 'proc/740/exe'));
      },
    ],
    [
      'the packaged binary run by another user',
      (root) => {
        const st = path.join(root, 'proc/740/status');
        fs.writeFileSync(
          st,
          fs.readFileSync(st, 'utf8').replace(/^Uid:.*$/m, 'Uid:\t1000\t1000\t1000\t1000'),
        );
      },
    ],
    ['no executable link', (root) => fs.rmSync(path.join(root, 'proc/740/exe'))],
  ];
  for (const [what, make] of cases) {
    it(`${what}: not stopped, not banned`, async () => {
      const root = buildFixture('ryzen-5950x');
      make(root);
      fs.rmSync(SC.log, { force: true });
      const r = await cli(
        root,
        ['isolate', '--no-irqs', '--no-cgroups', '--stop-irqbalance', 'C8-15,24-31'],
        {
          VFIO_ISOLATE_SYSTEMCTL: SC.bin,
        },
      );
      const called = fs.existsSync(SC.log) ? fs.readFileSync(SC.log, 'utf8') : '';
      count('irqbalance identity', r.code === 0 && called === '');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(called, '', 'systemctl was not asked to stop anything');
    });
  }

  it('the real one (root, /usr/sbin/irqbalance) is found', async () => {
    const root = buildFixture('ryzen-5950x');
    fs.rmSync(SC.log, { force: true });
    const r = await cli(root, ['isolate', '--no-irqs', '--no-cgroups', '--stop-irqbalance', 'C8-15,24-31'], {
      VFIO_ISOLATE_SYSTEMCTL: SC.bin,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.readFileSync(SC.log, 'utf8'), 'stop irqbalance.service\n');
  });
});
