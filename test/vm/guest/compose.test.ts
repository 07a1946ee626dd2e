/**
 * Two VMs isolated at once on a real kernel (issue 15, item 4): A = CPUs 2-3, B = CPUs 6-7, each with its own
 * journal. Release A, check B is still isolated (status and the tasks' effective CPUs), release B: the snapshot
 * equals the one before A; and the reverse order. Runs inside the test guest only; the CLI runs in-process.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { CpuSet } from '../../../src/cpus/cpuset.ts';
import { diffSnapshots, takeSnapshot, type Snapshot } from '../snapshot.ts';
import { cli } from './cli.ts';
import { guestMode, notInGuest } from './guest-env.ts';

const mode = guestMode();
const skip = notInGuest();
const ALL = CpuSet.parseList('0-7');
const VM = { A: CpuSet.parseList('2-3'), B: CpuSet.parseList('6-7') };

async function timed(argv: string[]): Promise<{ out: string; err: string; ms: number }> {
  const t0 = performance.now();
  const r = await cli(argv);
  const ms = performance.now() - t0;
  assert.equal(r.code, 0, `${argv.join(' ')}: exit ${r.code}\n${r.stderr}`);
  return { out: r.stdout, err: r.stderr, ms };
}

function isPinnedKthread(tgid: number, tid: number): boolean {
  try {
    const st = readFileSync(`/proc/${tgid}/task/${tid}/stat`, 'utf8');
    return (Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[6]) & 0x04000000) !== 0;
  } catch {
    return true; // gone
  }
}

/** Movable tasks (outside /machine.slice) whose effective affinity reaches `cpus`: "tid comm list". */
function tasksOn(snap: Snapshot, cpus: CpuSet): string[] {
  const inVm = new Set<number>();
  for (const [name, cg] of Object.entries(snap.cgroups))
    if (/(^|\/)machine\.slice(\/|$)/.test(name)) for (const p of cg.pids) inVm.add(p);
  return Object.values(snap.tasks)
    .filter((t) => !inVm.has(t.tgid) && !inVm.has(t.tid))
    .filter((t) => CpuSet.parseList(t.cpusAllowedList).overlaps(cpus) && !isPinnedKthread(t.tgid, t.tid))
    .map((t) => `${t.tid} ${t.comm} ${t.cpusAllowedList}`);
}

function defaultIrq(): CpuSet {
  return CpuSet.parseMask(readFileSync('/proc/irq/default_smp_affinity', 'utf8').trim());
}

async function statusJson(): Promise<{
  vmCpus: { cpus: string; source: string };
  reservations: { journal: string; vmCpus: string; journalState: string }[];
}> {
  const r = await cli(['status', '--json']);
  return JSON.parse(r.stdout);
}

describe(`two VMs isolated at once, released in either order (${mode ?? 'host'})`, { skip }, () => {
  for (const order of [
    ['A', 'B'],
    ['B', 'A'],
  ] as const) {
    test(`release ${order[0]} then ${order[1]}`, async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'vi-compose-'));
      const journal = { A: join(dir, 'a.journal'), B: join(dir, 'b.journal') };
      const snap0 = takeSnapshot();
      const iA = await timed(['-u', journal.A, 'isolate', `C${VM.A.toList()}`]);
      const iB = await timed(['-u', journal.B, 'isolate', `C${VM.B.toList()}`]);
      const both = VM.A.union(VM.B);
      assert.deepEqual(tasksOn(takeSnapshot(), both), [], 'no movable host task may run on either VM');
      assert.equal(defaultIrq().overlaps(both), false, 'default_smp_affinity');
      let st = await statusJson();
      assert.equal(st.vmCpus.source, 'reservations');
      assert.equal(st.vmCpus.cpus, both.toList());
      assert.deepEqual(
        st.reservations.map((r) => [r.journal, r.vmCpus]),
        [
          [journal.A, VM.A.toList()],
          [journal.B, VM.B.toList()],
        ],
      );

      const [first, second] = order;
      const r1 = await timed(['release', journal[first]]);
      const snap1 = takeSnapshot();
      assert.deepEqual(tasksOn(snap1, VM[second]), [], `${second} stays isolated while it runs`);
      assert.equal(defaultIrq().overlaps(VM[second]), false, `new IRQs stay off ${second}`);
      assert.ok(defaultIrq().has(VM[first].first!), `new IRQs may use the CPUs of ${first} again`);
      // the host gets the released CPUs back: a host task outside any VM cgroup may run there again
      const host = ALL.minus(VM[second]);
      const init = snap1.tasks[1];
      assert.equal(init?.cpusAllowedList, host.toList(), 'PID 1 may use every CPU but the running VM');
      st = await statusJson();
      assert.deepEqual(
        st.reservations.map((r) => [r.journal, r.vmCpus, r.journalState]),
        [[journal[second], VM[second].toList(), 'active']],
      );
      assert.equal(st.vmCpus.cpus, VM[second].toList());

      const r2 = await timed(['release', journal[second]]);
      assert.deepEqual(diffSnapshots(snap0, takeSnapshot()), [], 'the state before the first isolate');
      assert.deepEqual((await statusJson()).reservations, []);
      t.diagnostic(
        `${mode}: isolate A ${iA.ms.toFixed(0)} ms, isolate B ${iB.ms.toFixed(0)} ms, release ${first} ` +
          `${r1.ms.toFixed(0)} ms, release ${second} ${r2.ms.toFixed(0)} ms (in-process, TCG)`,
      );
    });
  }
});
