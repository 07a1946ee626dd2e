/**
 * pin-qemu PID: pin a running QEMU's vCPU threads one-to-one to the VM CPUs (SMT siblings as consecutive vCPUs,
 * the order of `libvirt cputune`), its other threads to the emulator CPUs, optionally with real-time scheduling
 * of the vCPUs. Journalled as `affinity` and `sched` records, so `restore` puts every thread back.
 */
import type { AfterReport, Ctx, Handler, Invocation, Plan } from '../cli/spec.ts';
import { CpuSet } from '../cpus/cpuset.ts';
import { RuntimeFailure, UsageError } from '../errors.ts';
import { errnoOf } from '../kernel/fs.ts';
import type { Kernel } from '../kernel/kernel.ts';
import {
  defaultEmulatorCpus,
  SCHED_POLICIES,
  SCHED_POLICY_NUMBER,
  vcpuOrder,
  type SchedPolicy,
  type SchedSpec,
} from '../libvirt/cputune.ts';
import type { Profile } from '../profile.ts';
import { suggestSplit } from '../report/topology-view.ts';
import { cpusArg } from './common.ts';
import type { Step } from '../steps/step.ts';
import { printable } from '../report/printable.ts';

/** QEMU names its vCPU threads `CPU n/KVM` (or `CPU n/TCG`, `CPU n/HVF`, ...) when started with debug-threads=on. */
export const VCPU_THREAD = /^CPU (\d+)\/(KVM|TCG)$/;

export interface QemuThread {
  tid: number;
  comm: string;
  start: number;
  /** vCPU index, for vCPU threads. */
  vcpu?: number;
}

export interface PinPlan {
  pid: number;
  comm: string;
  threads: QemuThread[];
  /** tid → CPUs it is to be pinned to. */
  target: Map<number, CpuSet>;
  vm: CpuSet;
  emulator: CpuSet;
  sched?: SchedSpec;
}

/** vCPU n → order[n]; every other thread → emulator. Throws when there are more vCPUs than VM CPUs. */
export function pinTargets(
  threads: readonly QemuThread[],
  order: readonly number[],
  emulator: CpuSet,
): Map<number, CpuSet> {
  const out = new Map<number, CpuSet>();
  for (const t of threads) {
    if (t.vcpu === undefined) out.set(t.tid, emulator);
    else {
      const cpu = order[t.vcpu];
      if (cpu === undefined) throw new RangeError(`vCPU ${t.vcpu} has no VM CPU`);
      out.set(t.tid, CpuSet.of([cpu]));
    }
  }
  return out;
}

function pidArg(raw: string | undefined, cmd: string): number {
  const s = raw ?? '';
  if (!/^[1-9]\d{0,9}$/.test(s) || Number(s) > 4194304) {
    throw new UsageError(
      `${cmd}: "${s}" is not a process id`,
      'give the pid of a running QEMU (e.g. pgrep -f qemu-system)',
    );
  }
  return Number(s);
}

/** The threads of process `pid`, with vCPU indexes. */
export function qemuThreads(k: Kernel, pid: number): QemuThread[] {
  const out: QemuThread[] = [];
  for (const tid of k.procs.threads(pid)) {
    const st = k.procs.stat(pid, tid);
    if (!st) continue; // exited meanwhile
    const m = VCPU_THREAD.exec(st.comm);
    const t: QemuThread = { tid, comm: st.comm, start: st.start };
    if (m) t.vcpu = Number(m[1]);
    out.push(t);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Shared with libvirt cputune: VM / emulator CPUs and scheduling options

export function vmCpusOf(ctx: Ctx, command: string, given: string | undefined, profile?: Profile): CpuSet {
  if (given !== undefined) return cpusArg(ctx, given, `${command} --vm`);
  if (profile) return profile.vmCpus;
  const s = suggestSplit(ctx.k.machine);
  if (s.vm.isEmpty)
    throw new UsageError(`${command}: this machine has nothing to give a VM`, 'name the VM CPUs with --vm');
  ctx.log.info(`${command}: no --vm given, using the suggested split: VM CPUs ${s.vm.toList()}. ${s.reason}`);
  return s.vm;
}

export function emulatorCpusOf(
  ctx: Ctx,
  command: string,
  vm: CpuSet,
  given: string | undefined,
  profile?: Profile,
): CpuSet {
  if (given !== undefined) return cpusArg(ctx, given, `${command} --emulator`);
  if (profile?.emulatorCpus) return profile.emulatorCpus;
  const e = defaultEmulatorCpus(ctx.k.machine.cores, ctx.k.machine.online.minus(vm));
  if (e.isEmpty) {
    throw new UsageError(
      `${command}: the VM CPUs leave no host CPU for QEMU's emulator threads`,
      'name them with --emulator CPUS',
    );
  }
  return e;
}

export function schedOf(
  command: string,
  policy: unknown,
  priority: unknown,
  what = '--sched',
): SchedSpec | undefined {
  const prioOpt = what === '--sched' ? '--priority' : '--iothread-priority';
  if (policy === undefined) {
    if (priority !== undefined) throw new UsageError(`${command}: ${prioOpt} needs ${what} fifo|rr`);
    return undefined;
  }
  const p = String(policy).toLowerCase();
  if (!(SCHED_POLICIES as readonly string[]).includes(p)) {
    throw new UsageError(`${command}: ${what} must be fifo or rr, not "${String(policy)}"`);
  }
  let prio = 1;
  if (priority !== undefined) {
    const s = String(priority);
    if (!/^\d{1,2}$/.test(s) || Number(s) < 1 || Number(s) > 99) {
      throw new UsageError(`${command}: ${prioOpt} must be a number from 1 to 99, not "${s}"`);
    }
    prio = Number(s);
  }
  return { policy: p as SchedPolicy, priority: prio };
}

function planPin(ctx: Ctx, inv: Invocation): Plan {
  const cmd = inv.name;
  const v = inv.values;
  const pid = pidArg(inv.args.PID, cmd);
  const sched = schedOf(cmd, v.sched, v.priority);
  const vm = vmCpusOf(ctx, cmd, typeof v.vm === 'string' ? v.vm : undefined);
  const emulator = emulatorCpusOf(ctx, cmd, vm, typeof v.emulator === 'string' ? v.emulator : undefined);
  const k = ctx.k;
  const st = k.procs.stat(pid);
  if (!st) throw new RuntimeFailure(`${cmd}: no process ${pid}`, 'is the VM running? (pgrep -f qemu-system)');
  const tgid = k.procs.tgidOf(pid);
  if (tgid !== undefined && tgid !== pid) {
    throw new RuntimeFailure(
      `${cmd}: ${pid} is a thread of process ${tgid}, not a process`,
      `give the process: vfio-isolate pin-qemu ${tgid}`,
    );
  }
  const threads = qemuThreads(k, pid);
  const vcpus = threads.filter((t) => t.vcpu !== undefined).sort((a, b) => a.vcpu! - b.vcpu!);
  if (vcpus.length === 0) {
    throw new RuntimeFailure(
      `${cmd}: process ${pid} (${printable(st.comm)}) has no vCPU threads named "CPU n/KVM" or "CPU n/TCG": not a QEMU, or one without named threads`,
      'QEMU names its threads when started with -name NAME,debug-threads=on (libvirt does this); TCG also needs -accel tcg,thread=multi',
    );
  }
  const dup = vcpus.find((t, i) => i > 0 && vcpus[i - 1]!.vcpu === t.vcpu);
  if (dup) throw new RuntimeFailure(`${cmd}: process ${pid} has two threads named "${dup.comm}"`);
  const order = vcpuOrder(k.machine.cores, vm);
  const highest = vcpus[vcpus.length - 1]!.vcpu!;
  if (highest >= order.length) {
    throw new RuntimeFailure(
      `${cmd}: QEMU ${pid} has ${vcpus.length} vCPUs (up to vCPU ${highest}) but only ${order.length} VM CPUs were given (${vm.toList()})`,
      `give at least ${highest + 1} CPUs with --vm`,
    );
  }
  if (vcpus.length < order.length) {
    ctx.log.info(
      `${cmd}: QEMU ${pid} has ${vcpus.length} vCPUs; VM CPUs ${CpuSet.of(order.slice(vcpus.length)).toList()} stay unused`,
    );
  }
  if (emulator.overlaps(vm))
    ctx.log.warn(`${cmd}: the emulator CPUs ${emulator.toList()} overlap the VM CPUs ${vm.toList()}`);
  const target = pinTargets(threads, order, emulator);
  const plan: PinPlan = { pid, comm: st.comm, threads, target, vm, emulator };
  if (sched) plan.sched = sched;

  const steps: Step[] = [];
  const others = threads.filter((t) => t.vcpu === undefined);
  steps.push({
    command: cmd,
    title: `pin the ${vcpus.length} vCPU threads of QEMU ${pid} to CPUs ${CpuSet.of(order.slice(0, highest + 1)).toList()} and its ${others.length} other threads to ${emulator.toList()}`,
    changes: [...vcpus, ...others].map((t) => ({
      target: `thread ${t.tid} (${t.comm})`,
      before: k.procs.allowed(t.tid, pid)?.toList(),
      after: target.get(t.tid)!.toList(),
    })),
    apply: ({ k: kk, record, log }) => applyAffinity(kk, plan, record, log.warn),
  });
  if (sched) {
    steps.push({
      command: cmd,
      title: `run the vCPU threads of QEMU ${pid} with SCHED_${sched.policy.toUpperCase()} priority ${sched.priority}`,
      changes: vcpus.map((t) => ({
        target: `thread ${t.tid} (${t.comm})`,
        after: `${sched.policy} ${sched.priority}`,
      })),
      apply: ({ k: kk, record }) => applySched(kk, plan, vcpus, sched, record),
    });
  }
  return { steps, after: (c) => pinSummary(c, plan) };
}

type Record_ = Parameters<Step['apply']>[0]['record'];

function applyAffinity(k: Kernel, plan: PinPlan, record: Record_, warn: (m: string) => void) {
  const todo: { tid: number; start: number; old: CpuSet; to: CpuSet }[] = [];
  let gone = 0;
  for (const t of plan.threads) {
    const to = plan.target.get(t.tid)!;
    if (k.procs.stat(plan.pid, t.tid)?.start !== t.start) {
      gone++;
      continue;
    }
    let old: CpuSet;
    try {
      old = CpuSet.of(k.fs.getAffinity(t.tid));
    } catch (e) {
      if (errnoOf(e) === 'ESRCH') {
        gone++;
        continue;
      }
      throw e;
    }
    if (!old.equals(to)) todo.push({ tid: t.tid, start: t.start, old, to });
  }
  if (todo.length === 0) return { changed: 0, gone };
  record({
    kind: 'affinity',
    tasks: todo.map((t) => [t.tid, t.start, t.old.toList()] as [number, number, string]),
  });
  let changed = 0;
  for (const t of todo) {
    try {
      k.fs.setAffinity(t.tid, t.to.toArray());
      changed++;
    } catch (e) {
      if (errnoOf(e) === 'ESRCH') {
        gone++;
        continue;
      }
      throw e;
    }
    const now = k.procs.allowed(t.tid, plan.pid);
    if (now && !now.equals(t.to)) {
      warn(
        `thread ${t.tid} runs on CPUs ${now.toList()}, not ${t.to.toList()}: its cgroup's cpuset limits it`,
      );
    }
  }
  return { changed, gone };
}

function applySched(
  k: Kernel,
  plan: PinPlan,
  vcpus: readonly QemuThread[],
  sched: SchedSpec,
  record: Record_,
) {
  const policy = SCHED_POLICY_NUMBER[sched.policy];
  const todo: [number, number, 0 | 1 | 2 | 3 | 5, number][] = [];
  const skipped: { what: string; why: string }[] = [];
  let gone = 0;
  for (const t of vcpus) {
    if (k.procs.stat(plan.pid, t.tid)?.start !== t.start) {
      gone++;
      continue;
    }
    let old: { policy: number; priority: number };
    try {
      old = k.fs.getScheduler(t.tid);
    } catch (e) {
      if (errnoOf(e) === 'ESRCH') {
        gone++;
        continue;
      }
      throw e;
    }
    if (old.policy === policy && old.priority === sched.priority) continue;
    if (![0, 1, 2, 3, 5].includes(old.policy)) {
      skipped.push({
        what: `thread ${t.tid} (${t.comm})`,
        why: `has scheduling policy ${old.policy} (deadline?), left alone`,
      });
      continue;
    }
    todo.push([t.tid, t.start, old.policy as 0 | 1 | 2 | 3 | 5, old.priority]);
  }
  if (todo.length === 0) return { changed: 0, gone, skipped };
  record({ kind: 'sched', tasks: todo, to: [policy as 1 | 2, sched.priority] });
  let changed = 0;
  for (const [tid] of todo) {
    try {
      k.fs.setScheduler(tid, policy, sched.priority);
      changed++;
    } catch (e) {
      const code = errnoOf(e);
      if (code === 'ESRCH') {
        gone++;
        continue;
      }
      if (code === 'EPERM') {
        throw new RuntimeFailure(
          `cannot set SCHED_${sched.policy.toUpperCase()} on thread ${tid}: EPERM`,
          'real-time scheduling needs root (or CAP_SYS_NICE); under cgroup v2 with the cpu controller, real-time threads also need cpu.rt_runtime_us',
        );
      }
      throw e;
    }
  }
  return { changed, gone, skipped };
}

/** What pin-qemu prints once the pinning is applied (with --json: its fields of the result document). */
function pinSummary(ctx: Ctx, p: PinPlan): AfterReport {
  const vcpus = p.threads.filter((t) => t.vcpu !== undefined).sort((a, b) => a.vcpu! - b.vcpu!);
  const others = p.threads.filter((t) => t.vcpu === undefined);
  if (ctx.g.json) {
    // run.ts prints one document: the applied steps plus these fields.
    const json = {
      pid: p.pid,
      vcpus: vcpus.map((t) => ({ vcpu: t.vcpu, tid: t.tid, cpus: p.target.get(t.tid)!.toList() })),
      others: others.map((t) => ({ tid: t.tid, comm: t.comm, cpus: p.emulator.toList() })),
      ...(p.sched ? { sched: p.sched } : {}),
      journal: ctx.g.undoFile ?? null,
    };
    return { code: 0, json };
  }
  const out: string[] = [
    // a QEMU run by a user names its own threads: escaped for the terminal
    `QEMU ${p.pid} (${printable(p.comm)}): pinned ${vcpus.length} vCPU threads and ${others.length} other threads`,
  ];
  for (const t of vcpus)
    out.push(`  vCPU ${t.vcpu} (thread ${t.tid}) -> CPU ${p.target.get(t.tid)!.toList()}`);
  if (others.length)
    out.push(
      `  ${others.length} other threads (${[...new Set(others.map((t) => printable(t.comm)))].join(', ')}) -> CPUs ${p.emulator.toList()}`,
    );
  if (p.sched)
    out.push(`  vCPU threads run SCHED_${p.sched.policy.toUpperCase()} priority ${p.sched.priority}`);
  out.push(
    ctx.g.undoFile
      ? `Undo with: vfio-isolate restore ${ctx.g.undoFile}`
      : 'Not journalled (no -u FILE): the pinning ends with the process.',
  );
  ctx.streams.out(out.join('\n') + '\n');
  return { code: 0 };
}

/** The handlers of this file's commands, by full name (the command table loads this module on demand). */
export const handlers: Record<string, Handler> = {
  'pin-qemu': { kind: 'plan', plan: planPin },
};
