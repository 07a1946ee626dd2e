/** pin-qemu on the ryzen-5950x fixture (QEMU pid 2400 with threads "CPU 0/KVM" … "CPU 3/KVM"): exact affinities. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { CpuSet } from '../../src/cpus/cpuset.ts';
import { pinTargets, VCPU_THREAD, type QemuThread } from '../../src/commands/pin-qemu.ts';
import { buildFixture } from '../fixtures/build.ts';
import { cli } from '../support/cli.ts';
import { diffTrees, treeFiles } from '../support/tree.ts';

const QEMU = 2400;
/** tid → thread name of the fixture's QEMU. */
const THREADS: Record<number, string> = {
  2400: 'qemu-system-x86',
  2401: 'call_rcu',
  2402: 'IO mon_iothread',
  2403: 'CPU 0/KVM',
  2404: 'CPU 1/KVM',
  2405: 'CPU 2/KVM',
  2406: 'CPU 3/KVM',
  2407: 'vnc_worker',
};

function allowed(root: string, pid: number, tid: number): string {
  const s = fs.readFileSync(path.join(root, `proc/${pid}/task/${tid}/status`), 'utf8');
  return /^Cpus_allowed_list:\s*(.*)$/m.exec(s)![1]!;
}
function affinities(root: string, pid = QEMU): Record<number, string> {
  const out: Record<number, string> = {};
  for (const t of fs.readdirSync(path.join(root, `proc/${pid}/task`)))
    out[Number(t)] = allowed(root, pid, Number(t));
  return out;
}
/** [policy, rt_priority] from /proc/PID/task/TID/stat (fields 41 and 40). */
function sched(root: string, pid: number, tid: number): [number, number] {
  const s = fs.readFileSync(path.join(root, `proc/${pid}/task/${tid}/stat`), 'utf8');
  const f = s
    .slice(s.lastIndexOf(')') + 2)
    .trim()
    .split(/\s+/);
  return [Number(f[41 - 3]), Number(f[40 - 3])];
}
const journal = (): string => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-pin-')), 'pin.journal');

describe('pin-qemu helpers', () => {
  it('recognises vCPU threads of KVM and TCG', () => {
    assert.deepEqual(VCPU_THREAD.exec('CPU 12/KVM')?.slice(1), ['12', 'KVM']);
    assert.deepEqual(VCPU_THREAD.exec('CPU 0/TCG')?.slice(1), ['0', 'TCG']);
    for (const n of ['CPU 0/KVMx', 'CPU /KVM', 'cpu 0/KVM', 'IO mon_iothread', 'CPU 0'])
      assert.equal(VCPU_THREAD.exec(n), null, n);
  });
  it('pinTargets: vCPU n → order[n], the rest → emulator; too few CPUs throws', () => {
    const t: QemuThread[] = [
      { tid: 10, comm: 'qemu', start: 1 },
      { tid: 12, comm: 'CPU 1/KVM', start: 1, vcpu: 1 },
      { tid: 11, comm: 'CPU 0/KVM', start: 1, vcpu: 0 },
    ];
    const m = pinTargets(t, [8, 24], CpuSet.of([7, 23]));
    assert.deepEqual(
      [...m].map(([tid, c]) => [tid, c.toList()]),
      [
        [10, '7,23'],
        [12, '24'],
        [11, '8'],
      ],
    );
    assert.throws(() => pinTargets(t, [8], CpuSet.of([7])), RangeError);
  });
});

describe('pin-qemu on the 5950X fixture', () => {
  it('pins vCPU n to the n-th CPU of the sibling-paired order, the rest to the emulator CPUs; restore undoes it', async () => {
    const root = buildFixture('ryzen-5950x');
    const before = treeFiles(root);
    assert.deepEqual(Object.values(affinities(root)), Array(8).fill('0-31'));
    const j = journal();
    const r = await cli(root, [
      '-u',
      j,
      'pin-qemu',
      String(QEMU),
      '--vm',
      'C8-15,24-31',
      '--emulator',
      'C7,23',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(affinities(root), {
      2400: '7,23',
      2401: '7,23',
      2402: '7,23',
      2403: '8',
      2404: '24',
      2405: '9',
      2406: '25',
      2407: '7,23',
    });
    assert.equal(
      r.stdout,
      [
        'QEMU 2400 (qemu-system-x86): pinned 4 vCPU threads and 4 other threads',
        '  vCPU 0 (thread 2403) -> CPU 8',
        '  vCPU 1 (thread 2404) -> CPU 24',
        '  vCPU 2 (thread 2405) -> CPU 9',
        '  vCPU 3 (thread 2406) -> CPU 25',
        '  4 other threads (qemu-system-x86, call_rcu, IO mon_iothread, vnc_worker) -> CPUs 7,23',
        `Undo with: vfio-isolate restore ${j}`,
        '',
      ].join('\n'),
    );
    const recs = fs
      .readFileSync(j, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { t: string; rec?: { kind: string; tasks: [number, number, string][] } })
      .filter((l) => l.t === 'rec');
    assert.equal(recs.length, 1);
    assert.equal(recs[0]!.rec!.kind, 'affinity');
    assert.deepEqual(
      recs[0]!.rec!.tasks.map(([tid, , old]) => [tid, old]),
      Object.keys(THREADS).map((t) => [Number(t), '0-31']),
    );
    const back = await cli(root, ['restore', j]);
    assert.equal(back.code, 0, back.stderr);
    assert.deepEqual(Object.values(affinities(root)), Array(8).fill('0-31'));
    // .sim-user-affinity is the simulator's copy of the kernel's user-requested mask (>= 6.2), which a real
    // sched_setaffinity also leaves behind; everything visible is back.
    assert.deepEqual(
      diffTrees(before, treeFiles(root)).filter((d) => !d.includes('.sim-user-affinity')),
      [],
      'restore leaves the tree as it was',
    );
  });

  it('--sched fifo --priority 10 sets SCHED_FIFO on the vCPU threads only; restore puts SCHED_OTHER back', async () => {
    const root = buildFixture('ryzen-5950x');
    const j = journal();
    const r = await cli(root, [
      '-u',
      j,
      'pin-qemu',
      String(QEMU),
      '--vm',
      'L1',
      '--emulator',
      'C7,23',
      '--sched',
      'fifo',
      '--priority',
      '10',
    ]);
    assert.equal(r.code, 0, r.stderr);
    for (const tid of [2403, 2404, 2405, 2406])
      assert.deepEqual(sched(root, QEMU, tid), [1, 10], `thread ${tid}`);
    for (const tid of [2400, 2401, 2402, 2407])
      assert.deepEqual(sched(root, QEMU, tid), [0, 0], `thread ${tid}`);
    assert.match(r.stdout, /vCPU threads run SCHED_FIFO priority 10/);
    assert.equal((await cli(root, ['restore', j])).code, 0);
    for (const tid of Object.keys(THREADS).map(Number))
      assert.deepEqual(sched(root, QEMU, tid), [0, 0], `thread ${tid}`);
    assert.deepEqual(Object.values(affinities(root)), Array(8).fill('0-31'));
  });

  it('--sched rr defaults to priority 1', async () => {
    const root = buildFixture('ryzen-5950x');
    assert.equal((await cli(root, ['pin-qemu', String(QEMU), '--vm', 'L1', '--sched', 'rr'])).code, 0);
    assert.deepEqual(sched(root, QEMU, 2403), [2, 1]);
  });

  it("without --vm/--emulator: the suggested split (L1) and the host's last core", async () => {
    const root = buildFixture('ryzen-5950x');
    const r = await cli(root, ['pin-qemu', String(QEMU)]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      [2403, 2404, 2405, 2406, 2400].map((t) => allowed(root, QEMU, t)),
      ['8', '24', '9', '25', '7,23'],
    );
    assert.match(r.stdout, /Not journalled \(no -u FILE\)/);
  });

  it('--json reports the pinning', async () => {
    const root = buildFixture('ryzen-5950x');
    const r = await cli(root, [
      '--json',
      'pin-qemu',
      String(QEMU),
      '--vm',
      'C8-15,24-31',
      '--emulator',
      'C7,23',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as {
      pid: number;
      vcpus: { vcpu: number; tid: number; cpus: string }[];
      others: { tid: number }[];
    };
    assert.equal(j.pid, QEMU);
    assert.deepEqual(j.vcpus, [
      { vcpu: 0, tid: 2403, cpus: '8' },
      { vcpu: 1, tid: 2404, cpus: '24' },
      { vcpu: 2, tid: 2405, cpus: '9' },
      { vcpu: 3, tid: 2406, cpus: '25' },
    ]);
    assert.deepEqual(
      j.others.map((o) => o.tid),
      [2400, 2401, 2402, 2407],
    );
  });

  it('--dry-run shows every thread with its old and new CPUs and changes nothing', async () => {
    const root = buildFixture('ryzen-5950x');
    const before = treeFiles(root);
    const r = await cli(root, ['-n', 'pin-qemu', String(QEMU), '--vm', 'C8-15,24-31', '--emulator', 'C7,23']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /thread 2403 \(CPU 0\/KVM\): "0-31" -> "8"/);
    assert.match(r.stdout, /thread 2407 \(vnc_worker\): "0-31" -> "7,23"/);
    assert.deepEqual(diffTrees(before, treeFiles(root)), []);
  });

  it('recognises TCG vCPU threads', async () => {
    const root = buildFixture('ryzen-5950x', {
      extraProcs: [
        {
          pid: 3000,
          comm: 'qemu-system-x86',
          cmdline: [
            'qemu-system-x86_64',
            '-accel',
            'tcg,thread=multi',
            '-smp',
            '2',
            '-name',
            't,debug-threads=on',
          ],
          cgroup: '/user.slice/user-1000.slice/session-3.scope',
          uid: 0,
          threads: ['qemu-system-x86', 'CPU 0/TCG', 'CPU 1/TCG'],
        },
      ],
    });
    const r = await cli(root, ['pin-qemu', '3000', '--vm', 'C8,24', '--emulator', 'C0']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(affinities(root, 3000), { 3000: '0', 3001: '0', 3002: '8', 3003: '24' });
  });

  it('a process that is not QEMU: exit 1, nothing changed', async () => {
    const root = buildFixture('ryzen-5950x');
    const before = treeFiles(root);
    const r = await cli(root, ['pin-qemu', '780', '--vm', 'L1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /process 780 \(libvirtd\) has no vCPU threads named "CPU n\/KVM" or "CPU n\/TCG"/);
    assert.match(r.stderr, /hint: .*debug-threads=on/);
    assert.deepEqual(diffTrees(before, treeFiles(root)), []);
  });

  it('no such process, or a thread id: exit 1', async () => {
    const root = buildFixture('ryzen-5950x');
    const gone = await cli(root, ['pin-qemu', '99999']);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /no process 99999/);
    const thread = await cli(root, ['pin-qemu', '2403']);
    assert.equal(thread.code, 1);
    assert.match(thread.stderr, /2403 is a thread of process 2400/);
  });

  it('a malformed pid: exit 2', async () => {
    const root = buildFixture('ryzen-5950x');
    for (const p of ['abc', '0', '12x', '007', '99999999999', '1.5']) {
      const r = await cli(root, ['pin-qemu', p]);
      assert.equal(r.code, 2, `${p}: ${r.stderr}`);
      assert.match(r.stderr, /is not a process id/);
    }
  });

  it('more vCPUs than VM CPUs: exit 1, nothing changed', async () => {
    const root = buildFixture('ryzen-5950x');
    const before = treeFiles(root);
    const r = await cli(root, ['pin-qemu', String(QEMU), '--vm', 'C8,24,9']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /QEMU 2400 has 4 vCPUs \(up to vCPU 3\) but only 3 VM CPUs were given \(8-9,24\)/);
    assert.deepEqual(diffTrees(before, treeFiles(root)), []);
  });

  it('bad scheduling options: exit 2', async () => {
    const root = buildFixture('ryzen-5950x');
    for (const args of [
      ['--sched', 'other'],
      ['--sched', 'fifo', '--priority', '0'],
      ['--priority', '3'],
    ]) {
      const r = await cli(root, ['pin-qemu', String(QEMU), '--vm', 'L1', ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    }
  });
});

describe('pin-qemu: thread names a QEMU chose reach the terminal escaped', () => {
  // a QEMU run by an ordinary user (session libvirt), or one a guest took over, names its own threads
  const evil = (threads: string[]) =>
    buildFixture('ryzen-5950x', {
      extraProcs: [
        {
          pid: 3000,
          comm: 'qemu\x1b]0;pwned\x07',
          cmdline: ['qemu-system-x86_64', '-name', 't,debug-threads=on'],
          cgroup: '/user.slice/user-1000.slice/session-3.scope',
          uid: 1000,
          threads,
        },
      ],
    });
  // eslint-disable-next-line no-control-regex
  const RAW = /[\x00-\x09\x0b-\x1f\u007f-\u009f\u2028\u2029]/;

  it('the dry run, the summary and the refusals', async () => {
    const root = evil(['qemu\x1b]0;pwned\x07', 'CPU 0/KVM', 'worker\x1b[2J\u009b']);
    const argv = ['pin-qemu', '3000', '--vm', 'C8', '--emulator', 'C0'];
    const dry = await cli(root, ['-n', ...argv]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.ok(dry.stdout.includes('(worker\\x1b[2J\\x9b)'), dry.stdout);
    const run = await cli(root, argv);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(run.stdout.includes('QEMU 3000 (qemu\\x1b]0;pwned\\x07): pinned 1 vCPU threads'), run.stdout);
    assert.ok(run.stdout.includes('worker\\x1b[2J\\x9b'), run.stdout);
    // no vCPU thread: refused, naming the process escaped
    const none = await cli(evil(['qemu\x1b]0;pwned\x07']), argv);
    assert.equal(none.code, 1, none.stderr);
    assert.match(none.stderr, /process 3000 \(qemu\\x1b\]0;pwned\\x07\) has no vCPU threads/);
    for (const r of [dry, run, none]) assert.doesNotMatch(r.stdout + r.stderr, RAW);
  });
});
