/**
 * pin-qemu against a real kernel: runs INSIDE the test guest (mode v2 only), where it starts a real QEMU with two
 * multi-threaded TCG vCPUs ("CPU 0/TCG", "CPU 1/TCG"), pins it with the CLI in-process (no VFIO_ISOLATE_ROOT: the
 * guest's own kernel, safe only in the guest), checks every thread's affinity and scheduling policy as the kernel
 * reports them, restores, and checks that everything is back.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { runCli } from '../../../src/cli/run.ts';
import { COMMANDS } from '../../../src/cli/table.ts';
import { CpuSet } from '../../../src/cpus/cpuset.ts';
import { Kernel } from '../../../src/kernel/kernel.ts';
import { vcpuOrder } from '../../../src/libvirt/cputune.ts';
import { guestMode } from './guest-env.ts';

// guestMode() also checks the kernel command line the harness sets: a host never passes, whatever its environment.
const inGuest = guestMode() === 'v2';
const qemuBin = inGuest
  ? spawnSync('sh', ['-c', 'command -v qemu-system-x86_64'], { encoding: 'utf8' }).stdout.trim()
  : '';
const skip = !inGuest
  ? 'runs only inside the v2 test guest (VFIO_VM_MODE=v2)'
  : qemuBin === ''
    ? 'qemu-system-x86_64 is not installed'
    : false;

function realEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, VFIO_ISOLATE_LOCK_WAIT_MS: '5000' };
  delete env.VFIO_ISOLATE_ROOT;
  return env;
}

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    table: COMMANDS,
    env: realEnv(),
    streams: { out: (s) => void (stdout += s), err: (s) => void (stderr += s), isTTY: false },
  });
  return { code, stdout, stderr };
}

function status(pid: number, tid: number): string {
  return fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
}
function allowed(pid: number, tid: number): string {
  return /^Cpus_allowed_list:\s*(.*)$/m.exec(status(pid, tid))![1]!;
}
/** [policy, rt_priority] (fields 41 and 40 of /proc/PID/task/TID/stat). */
function sched(pid: number, tid: number): [number, number] {
  const s = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
  const f = s
    .slice(s.lastIndexOf(')') + 2)
    .trim()
    .split(/\s+/);
  return [Number(f[41 - 3]), Number(f[40 - 3])];
}
function threads(pid: number): Map<number, string> {
  const out = new Map<number, string>();
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      out.set(Number(t), fs.readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim());
    } catch {
      /* exited */
    }
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('pin-qemu on a real QEMU in the guest', { skip }, () => {
  let qemu: ChildProcess | undefined;
  after(() => {
    if (qemu?.pid !== undefined && qemu.exitCode === null) qemu.kill('SIGKILL');
  });

  it(
    'pins "CPU n/TCG" threads to the sibling-paired VM CPUs, the rest to the emulator CPUs; restore undoes it',
    { timeout: 240_000 },
    async () => {
      qemu = spawn(
        qemuBin,
        [
          '-accel',
          'tcg,thread=multi',
          '-smp',
          '2',
          '-m',
          '64',
          '-nodefaults',
          '-display',
          'none',
          '-S',
          '-name',
          'pin-test,debug-threads=on',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let qemuErr = '';
      qemu.stderr!.on('data', (d: Buffer) => (qemuErr += d.toString()));
      const pid = qemu.pid!;
      // Wait for both vCPU threads (QEMU starts slowly under emulation).
      let vcpus: number[] = [];
      for (let i = 0; i < 1200 && vcpus.length < 2; i++) {
        assert.equal(qemu.exitCode, null, `QEMU exited: ${qemuErr}`);
        await sleep(100);
        const t = threads(pid);
        vcpus = ['CPU 0/TCG', 'CPU 1/TCG']
          .map((n) => [...t].find(([, c]) => c === n)?.[0])
          .filter((x): x is number => x !== undefined);
      }
      assert.equal(
        vcpus.length,
        2,
        `no vCPU threads after 120 s: ${[...threads(pid).values()].join(', ')} ${qemuErr}`,
      );
      const before = new Map(
        [...threads(pid).keys()].map((tid) => [tid, { allowed: allowed(pid, tid), sched: sched(pid, tid) }]),
      );

      // The guest: 8 CPUs, 4 cores x 2 threads, node 0 = 0-3, node 1 = 4-7.
      const machine = Kernel.real().machine;
      const vm = machine.nodes.get(1) ?? CpuSet.parseList('4-7');
      const order = vcpuOrder(machine.cores, vm);
      assert.deepEqual(
        machine.siblings.get(order[0]!)?.toArray(),
        [order[0], order[1]],
        'vCPUs 0 and 1 are SMT siblings',
      );

      const journal = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pin-qemu-')), 'pin.journal');
      const r = await run([
        '--json',
        '-u',
        journal,
        'pin-qemu',
        String(pid),
        '--vm',
        `C${vm.toList()}`,
        '--emulator',
        'C0-1',
        '--sched',
        'fifo',
        '--priority',
        '1',
      ]);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as {
        vcpus: { vcpu: number; tid: number; cpus: string }[];
        others: { tid: number }[];
      };
      assert.deepEqual(
        out.vcpus.map((v) => [v.vcpu, v.tid, v.cpus]),
        [
          [0, vcpus[0], String(order[0])],
          [1, vcpus[1], String(order[1])],
        ],
      );
      // What the kernel says now.
      assert.equal(allowed(pid, vcpus[0]!), String(order[0]));
      assert.equal(allowed(pid, vcpus[1]!), String(order[1]));
      for (const tid of vcpus) assert.deepEqual(sched(pid, tid), [1, 1], `SCHED_FIFO 1 on ${tid}`);
      assert.ok(out.others.length >= 1);
      for (const { tid } of out.others) {
        assert.equal(allowed(pid, tid), '0-1', `thread ${tid} on the emulator CPUs`);
        assert.deepEqual(sched(pid, tid), before.get(tid)!.sched, `thread ${tid} keeps its policy`);
      }

      const back = await run(['restore', journal]);
      assert.equal(back.code, 0, back.stderr);
      for (const [tid, b] of before) {
        if (!fs.existsSync(`/proc/${pid}/task/${tid}`)) continue;
        assert.equal(allowed(pid, tid), b.allowed, `affinity of ${tid} restored`);
        assert.deepEqual(sched(pid, tid), b.sched, `policy of ${tid} restored`);
      }
      const again = await run(['restore', journal]);
      assert.equal(again.code, 0, 'restoring twice is harmless');

      qemu.kill('SIGKILL');
      await new Promise((res) => qemu!.once('exit', res));
    },
  );

  it('refuses a process that is not QEMU (exit 1), changing nothing', async () => {
    const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      const b = allowed(sleeper.pid!, sleeper.pid!);
      const r = await run(['pin-qemu', String(sleeper.pid), '--vm', 'C4-7', '--emulator', 'C0-1']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /has no vCPU threads/);
      assert.equal(allowed(sleeper.pid!, sleeper.pid!), b);
    } finally {
      sleeper.kill('SIGKILL');
    }
  });
});
