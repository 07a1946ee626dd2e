/**
 * The pure core of `measure`: counter deltas per CPU, attribution of every interrupt source, softirq and thread
 * that ran on the measured CPUs (expected kernel work, the VM's own, or a leak with the fix `status` gives), the
 * probe's figures, and the budgets' verdict. No I/O: the command reads, this decides.
 */
import { CpuSet } from '../cpus/cpuset.ts';
import type { Counters, TaskRuns } from '../kernel/proc-counters.ts';
import type { ProbeResult } from '../kernel/probe.ts';
import { findingLine, type LeakReport, type StatusModel } from '../report/status-model.ts';

export type Verdict = 'expected' | 'vm' | 'leak';

export interface SourceLine {
  kind: 'irq' | 'softirq';
  /** "24", "LOC", "TIMER". */
  label: string;
  name: string;
  /** Events per CPU over the window. */
  perCpu: Map<number, number>;
  perSecond: number;
  verdict: Verdict;
  /** Why it is expected, or the leak and its fix (status's wording). */
  note: string;
}

export interface ThreadLine {
  pid: number;
  tid: number;
  comm: string;
  /** CPU time on the measured CPUs, per CPU (ns). */
  perCpuNs: Map<number, number>;
  totalNs: number;
  verdict: Verdict;
  note: string;
}

export interface CpuLine {
  cpu: number;
  irqsPerSecond: number;
  softirqsPerSecond: number;
  /** CPU time of threads that are not the VM's, plus IRQ and softirq time, per second of the window (µs/s). */
  hostUsPerSecond: number;
  /** Non-idle share of the CPU from /proc/stat (%); undefined when unreadable. */
  busyPercent?: number;
  /** probe mode: the largest single interruption (µs), time lost per second (µs/s) and the histogram. */
  probe?: {
    maxUs: number;
    noiseUsPerSecond: number;
    noisePercent: number;
    histogram: number[];
    error?: string;
  };
  /** The figure the noise budget checks: the probe's lost time when probed, else hostUsPerSecond. */
  noiseUsPerSecond: number;
}

export interface Budgets {
  maxNoiseUs?: number;
  maxIrqsPerS?: number;
  maxGapUs?: number;
}

export interface BudgetLine {
  name: 'max-noise-us' | 'max-irqs-per-s' | 'max-gap-us';
  limit: number;
  /** The worst CPU and its figure; undefined when not measured (max-gap-us in passive mode). */
  worst?: { cpu: number; value: number };
  ok: boolean;
}

export interface MeasureReport {
  mode: 'passive' | 'probe';
  cpus: CpuSet;
  /** Why these CPUs (as given, or the active isolation's). */
  why: string;
  seconds: number;
  interrupted: boolean;
  /** The VMs whose vCPU threads were seen on the CPUs. */
  vms: string[];
  perCpu: CpuLine[];
  sources: SourceLine[];
  threads: ThreadLine[];
  budgets: BudgetLine[];
  overBudget: boolean;
  notRead: string[];
}

/** Descriptions of the per-CPU interrupt sources: why they happen and what reduces them. */
const PER_CPU_NOTES: Record<string, string> = {
  LOC: 'the scheduler tick and timers (nohz_full= stops the tick while one task runs)',
  RES: 'rescheduling IPIs: another CPU woke a task here',
  CAL: 'function-call IPIs from other CPUs (e.g. a process that also runs elsewhere changed its memory map)',
  TLB: 'TLB shootdowns: a process running here and elsewhere changed its memory map',
  IWI: 'irq_work (perf, RCU, printk)',
  NMI: 'non-maskable interrupts (perf, watchdog: nmi_watchdog=0 stops the watchdog)',
  PMI: 'performance counter interrupts',
  MCE: 'machine check polling',
  MCP: 'machine check polling',
  THR: 'thermal events',
  SPU: 'spurious interrupts',
  PIN: 'posted-interrupt notifications (KVM)',
  NPI: 'nested posted interrupts (KVM)',
  PIW: 'posted-interrupt wakeups (KVM)',
};

const SOFTIRQ_NOTES: Record<string, string> = {
  TIMER: 'expired timers of this CPU',
  HRTIMER: 'high-resolution timers of this CPU',
  RCU: 'RCU callbacks (rcu_nocbs= moves them to other CPUs)',
  SCHED: 'scheduler load balancing',
  NET_RX: 'network receive: a NIC IRQ or RPS steered here',
  NET_TX: 'network transmit completion',
  BLOCK: 'block I/O completions',
  IRQ_POLL: 'IRQ polling (block devices)',
  TASKLET: 'tasklets of device drivers',
  HI: 'high-priority tasklets',
};

function sumOn(per: Map<number, number> | undefined, cpu: number): number {
  return per?.get(cpu) ?? 0;
}

/** after - before per CPU, counters that went backwards (a CPU went offline and back) count 0. */
function deltaPerCpu(
  before: Map<number, number> | undefined,
  after: Map<number, number> | undefined,
  cpus: CpuSet,
): Map<number, number> {
  const out = new Map<number, number>();
  for (const cpu of cpus) {
    const d = sumOn(after, cpu) - sumOn(before, cpu);
    out.set(cpu, d > 0 ? d : 0);
  }
  return out;
}

const total = (m: Map<number, number>): number => [...m.values()].reduce((a, b) => a + b, 0);

/** Is this a vCPU thread of QEMU ("CPU 3/KVM", "CPU 0/TCG")? */
export function isVcpuThread(comm: string): boolean {
  return /^CPU \d+\/(KVM|TCG)$/.test(comm);
}

export interface AnalysisInput {
  mode: 'passive' | 'probe';
  cpus: CpuSet;
  why: string;
  before: Counters;
  after: Counters;
  /** Task samples in time order (at least two: start and end). */
  runs: TaskRuns[];
  model: StatusModel;
  leaks: LeakReport;
  vms: string[];
  probe?: ProbeResult;
  budgets: Budgets;
  interrupted: boolean;
  /** Our own pid: its threads (the probe's workers, the reads) are left out of the attribution. */
  self: number;
  /** Extra phrases of what could not be read. */
  notRead: string[];
}

function irqVerdict(
  label: string,
  name: string,
  leaks: LeakReport,
  hostList: string,
): { verdict: Verdict; note: string } {
  const n = Number(label);
  if (/^vfio-/.test(name)) return { verdict: 'vm', note: "the VM's own (a VFIO device's interrupt)" };
  const leak = leaks.leaks.find((f) => f.kind === 'irq' && f.id === n);
  if (leak) return { verdict: 'leak', note: findingLine(leak) };
  const managed = leaks.unmovable.find((f) => f.kind === 'managed-irq' && f.id === n);
  if (managed) return { verdict: 'expected', note: findingLine(managed) };
  return {
    verdict: 'leak',
    note: `IRQ ${n}${name ? ` (${name})` : ''} fired on the VM CPUs although its affinity does not allow them now (it was moved during the window, or the kernel chose its effective CPU): check it with "vfio-isolate status"${hostList ? `, or: vfio-isolate irq-affinity mask C${hostList}` : ''}`,
  };
}

function threadVerdict(
  pid: number,
  comm: string,
  model: StatusModel,
  leaks: LeakReport,
  cpus: CpuSet,
): { verdict: Verdict; note: string } {
  const task = model.tasks.find((t) => t.pid === pid);
  if (isVcpuThread(comm) || task?.vm) return { verdict: 'vm', note: "the VM's own" };
  const leak = leaks.leaks.find((f) => (f.kind === 'task' || f.kind === 'kthread') && f.id === pid);
  if (leak) return { verdict: 'leak', note: findingLine(leak) };
  const pinned = leaks.unmovable.find((f) => f.kind === 'pinned-kthread' && f.id === pid);
  if (pinned) return { verdict: 'expected', note: findingLine(pinned) };
  if (task?.kind === 'pinned')
    return {
      verdict: 'expected',
      note: `kernel thread ${pid} (${task.comm}): only the kernel sets its affinity (per-CPU thread): expected`,
    };
  return {
    verdict: 'leak',
    note: `task ${pid} (${task?.comm ?? comm}) ran on ${cpus.toList()} (its affinity changed during the window): check it with "vfio-isolate status"`,
  };
}

/** Everything `measure` reports, from the readings. Pure. */
export function analyse(input: AnalysisInput): MeasureReport {
  const { cpus, before, after, model, leaks } = input;
  const seconds = Math.max((after.at - before.at) / 1000, 1e-3);
  const hostList = model.online.minus(cpus).toList();
  const notRead = [...before.notRead.filter((p) => after.notRead.includes(p)), ...input.notRead];

  // interrupt sources
  const sources: SourceLine[] = [];
  const irqsPerCpu = new Map<number, number>([...cpus].map((c) => [c, 0]));
  if (before.interrupts && after.interrupts) {
    const prev = new Map(before.interrupts.sources.map((s) => [s.label, s]));
    for (const s of after.interrupts.sources) {
      const d = deltaPerCpu(prev.get(s.label)?.perCpu, s.perCpu, cpus);
      const sum = total(d);
      for (const [c, n] of d) irqsPerCpu.set(c, (irqsPerCpu.get(c) ?? 0) + n);
      if (sum === 0) continue;
      const numbered = /^\d+$/.test(s.label);
      const v = numbered
        ? irqVerdict(s.label, s.name, leaks, hostList)
        : { verdict: 'expected' as const, note: PER_CPU_NOTES[s.label] ?? 'per-CPU kernel interrupts' };
      sources.push({ kind: 'irq', label: s.label, name: s.name, perCpu: d, perSecond: sum / seconds, ...v });
    }
  }
  const softPerCpu = new Map<number, number>([...cpus].map((c) => [c, 0]));
  if (before.softirqs && after.softirqs) {
    for (const [label, per] of after.softirqs) {
      const d = deltaPerCpu(before.softirqs.get(label), per, cpus);
      const sum = total(d);
      for (const [c, n] of d) softPerCpu.set(c, (softPerCpu.get(c) ?? 0) + n);
      if (sum === 0) continue;
      sources.push({
        kind: 'softirq',
        label,
        name: label,
        perCpu: d,
        perSecond: sum / seconds,
        verdict: 'expected',
        note: SOFTIRQ_NOTES[label] ?? 'kernel deferred work',
      });
    }
  }
  const rank = (s: SourceLine): number => (s.verdict === 'leak' ? 0 : s.verdict === 'vm' ? 2 : 1);
  sources.sort((a, b) => rank(a) - rank(b) || b.perSecond - a.perSecond);

  // threads: each interval's run-time growth goes to the CPU the thread was on at the interval's end
  const byTid = new Map<number, ThreadLine>();
  for (let i = 1; i < input.runs.length; i++) {
    const a = input.runs[i - 1]!;
    const b = input.runs[i]!;
    for (const [tid, s] of b.threads) {
      if (s.pid === input.self || !cpus.has(s.run.cpu)) continue;
      const p = a.threads.get(tid);
      if (!p || p.run.start !== s.run.start) continue; // born during the interval: ignored
      const ns = s.run.runNs - p.run.runNs;
      if (ns <= 0) continue;
      let line = byTid.get(tid);
      if (!line) {
        line = {
          pid: s.pid,
          tid,
          comm: s.run.comm,
          perCpuNs: new Map(),
          totalNs: 0,
          ...threadVerdict(s.pid, s.run.comm, model, leaks, cpus),
        };
        byTid.set(tid, line);
      }
      line.perCpuNs.set(s.run.cpu, (line.perCpuNs.get(s.run.cpu) ?? 0) + ns);
      line.totalNs += ns;
    }
  }
  const threads = [...byTid.values()].sort(
    (x, y) => Number(x.verdict === 'vm') - Number(y.verdict === 'vm') || y.totalNs - x.totalNs,
  );

  // per CPU
  const perCpu: CpuLine[] = [...cpus].map((cpu) => {
    let hostNs = 0;
    for (const t of threads) if (t.verdict !== 'vm') hostNs += t.perCpuNs.get(cpu) ?? 0;
    const sb = before.stat?.get(cpu);
    const sa = after.stat?.get(cpu);
    let busyPercent: number | undefined;
    if (sb && sa) {
      const irqTicks = (sa.irq ?? 0) - (sb.irq ?? 0) + ((sa.softirq ?? 0) - (sb.softirq ?? 0));
      hostNs += Math.max(0, irqTicks) * 10_000_000;
      const sum = (t: typeof sa): number =>
        t.user +
        t.nice +
        t.system +
        t.idle +
        (t.iowait ?? 0) +
        (t.irq ?? 0) +
        (t.softirq ?? 0) +
        (t.steal ?? 0);
      const all = sum(sa) - sum(sb);
      const idle = sa.idle + (sa.iowait ?? 0) - sb.idle - (sb.iowait ?? 0);
      if (all > 0) busyPercent = Math.max(0, Math.min(100, ((all - idle) / all) * 100));
    }
    const line: CpuLine = {
      cpu,
      irqsPerSecond: (irqsPerCpu.get(cpu) ?? 0) / seconds,
      softirqsPerSecond: (softPerCpu.get(cpu) ?? 0) / seconds,
      hostUsPerSecond: hostNs / 1000 / seconds,
      busyPercent,
      noiseUsPerSecond: hostNs / 1000 / seconds,
    };
    const p = input.probe?.cpus.find((r) => r.cpu === cpu);
    if (p) {
      const win = p.windowNs > 0 ? p.windowNs : 1;
      const noise = (p.lostNs / win) * 1e6;
      line.probe = {
        maxUs: p.maxNs / 1000,
        noiseUsPerSecond: noise,
        noisePercent: (p.lostNs / win) * 100,
        histogram: p.histogram,
        ...(p.error ? { error: p.error } : {}),
      };
      line.noiseUsPerSecond = noise;
    }
    return line;
  });

  // budgets
  const budgets: BudgetLine[] = [];
  const worst = (f: (l: CpuLine) => number | undefined): { cpu: number; value: number } | undefined => {
    let w: { cpu: number; value: number } | undefined;
    for (const l of perCpu) {
      const v = f(l);
      if (v !== undefined && (!w || v > w.value)) w = { cpu: l.cpu, value: v };
    }
    return w;
  };
  const check = (
    name: BudgetLine['name'],
    limit: number | undefined,
    f: (l: CpuLine) => number | undefined,
  ) => {
    if (limit === undefined) return;
    const w = worst(f);
    budgets.push({ name, limit, worst: w, ok: w === undefined || w.value <= limit });
  };
  check('max-noise-us', input.budgets.maxNoiseUs, (l) => l.noiseUsPerSecond);
  check('max-irqs-per-s', input.budgets.maxIrqsPerS, (l) => l.irqsPerSecond);
  check('max-gap-us', input.budgets.maxGapUs, (l) => l.probe?.maxUs);

  return {
    mode: input.mode,
    cpus,
    why: input.why,
    seconds,
    interrupted: input.interrupted,
    vms: input.vms,
    perCpu,
    sources,
    threads,
    budgets,
    overBudget: budgets.some((b) => !b.ok),
    notRead,
  };
}
