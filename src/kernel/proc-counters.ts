/**
 * The kernel's activity counters, for `measure`: /proc/interrupts, /proc/softirqs, /proc/stat and the per-thread
 * run time and last CPU (/proc/PID/task/TID/stat and schedstat). The parse* functions are pure (text in, data out,
 * tested on fixture text from several machines); the read* functions read the files through the Kernel's Fs and
 * never throw for an unreadable file: what they could not read is listed in `notRead`.
 */
import type { Fs } from './fs.ts';
import { P } from './paths.ts';

/** One source of /proc/interrupts: a numbered IRQ ("24") or a per-CPU source ("LOC", "RES", ...). */
export interface InterruptSource {
  /** The label before ':' ("24", "LOC", "NMI"). */
  label: string;
  /** Numbered IRQs: the handler names ("virtio0-input.0", "nvme0q1"); per-CPU sources: the kernel's description. */
  name: string;
  /** Counts per CPU (only the CPUs with a column; ERR and MIS have none). */
  perCpu: Map<number, number>;
}

export interface InterruptTable {
  /** The CPU columns of the header (online CPUs only: an offline CPU has no column). */
  cpus: number[];
  sources: InterruptSource[];
}

/** The CPU numbers of a header line "CPU0 CPU1 CPU4 ..." (gaps where CPUs are offline). */
function headerCpus(line: string | undefined): number[] {
  return (line ?? '')
    .trim()
    .split(/\s+/)
    .map((h) => /^CPU(\d+)$/.exec(h))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]));
}

/** Splits "  24:   12   0   PCI-MSI 65536-edge  virtio0-config" into label, counts and the rest. */
function splitRow(line: string, ncpu: number): { label: string; counts: number[]; rest: string } | undefined {
  const m = /^\s*([^\s:]+):(.*)$/.exec(line);
  if (!m) return undefined;
  const label = m[1]!;
  let rest = m[2] ?? '';
  const counts: number[] = [];
  while (counts.length < ncpu) {
    const n = /^\s*(\d+)(?=\s|$)/.exec(rest);
    if (!n) break;
    counts.push(Number(n[1]));
    rest = rest.slice(n[0].length);
  }
  return { label, counts, rest: rest.trim() };
}

/**
 * The handler names of a numbered IRQ's description: what follows the trigger type ("2-edge timer" → "timer";
 * ARM's "GICv3 27 Level arch_timer" → "arch_timer"); the whole description when there is no trigger type.
 */
export function irqNameOf(description: string): string {
  const words = description.split(/\s+/).filter(Boolean);
  let last = -1;
  words.forEach((w, i) => {
    if (/-(edge|level|fasteoi|simple|bad)$/i.test(w) || /^(Edge|Level)$/.test(w)) last = i;
  });
  if (last >= 0 && last < words.length - 1) return words.slice(last + 1).join(' ');
  if (last >= 0) return '';
  return words.join(' ');
}

/** Parse /proc/interrupts. Rows with fewer counts than CPUs (ERR, MIS: one global count) get no per-CPU counts. */
export function parseInterrupts(text: string): InterruptTable {
  const lines = text.split('\n');
  const cpus = headerCpus(lines[0]);
  const sources: InterruptSource[] = [];
  for (const line of lines.slice(1)) {
    const row = splitRow(line, cpus.length);
    if (!row) continue;
    const perCpu = new Map<number, number>();
    if (row.counts.length === cpus.length) cpus.forEach((cpu, i) => perCpu.set(cpu, row.counts[i]!));
    const numbered = /^\d+$/.test(row.label);
    sources.push({ label: row.label, name: numbered ? irqNameOf(row.rest) : row.rest, perCpu });
  }
  return { cpus, sources };
}

/** Parse /proc/softirqs: softirq name (TIMER, RCU, NET_RX, ...) → counts per CPU. */
export function parseSoftirqs(text: string): Map<string, Map<number, number>> {
  const lines = text.split('\n');
  const cpus = headerCpus(lines[0]);
  const out = new Map<string, Map<number, number>>();
  for (const line of lines.slice(1)) {
    const row = splitRow(line, cpus.length);
    if (!row) continue;
    const per = new Map<number, number>();
    row.counts.forEach((n, i) => per.set(cpus[i]!, n));
    out.set(row.label, per);
  }
  return out;
}

/** Time of one CPU from /proc/stat, in clock ticks (USER_HZ). Columns a kernel lacks are undefined. */
export interface CpuTimes {
  user: number;
  nice: number;
  system: number;
  idle: number;
  iowait?: number;
  irq?: number;
  softirq?: number;
  steal?: number;
  guest?: number;
  guestNice?: number;
}

const STAT_COLUMNS = ['iowait', 'irq', 'softirq', 'steal', 'guest', 'guestNice'] as const;

/** Parse the per-CPU lines ("cpu3 ...") of /proc/stat; the "cpu" total line is left out. */
export function parseProcStat(text: string): Map<number, CpuTimes> {
  const out = new Map<number, CpuTimes>();
  for (const line of text.split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const f = m[2]!.trim().split(/\s+/).map(Number);
    if (f.length < 4 || f.some((n) => !Number.isFinite(n))) continue;
    const t: CpuTimes = { user: f[0]!, nice: f[1]!, system: f[2]!, idle: f[3]! };
    STAT_COLUMNS.forEach((k, i) => {
      if (f[4 + i] !== undefined) t[k] = f[4 + i];
    });
    out.set(Number(m[1]), t);
  }
  return out;
}

/** What `measure` needs of one thread: its name, the CPU it last ran on and its run time so far. */
export interface ThreadRun {
  tid: number;
  comm: string;
  /** Field 39 of stat: the CPU it last ran on. */
  cpu: number;
  /** Run time in ns: schedstat's first field when given, else utime + stime (fields 14, 15) at USER_HZ = 100. */
  runNs: number;
  /** Field 22: start time (with the tid, identifies the thread across tid reuse). */
  start: number;
}

/** Parse a thread's stat (and schedstat, when readable). The comm ends at the last ")". */
export function parseThreadRun(statText: string, schedstatText?: string): ThreadRun | undefined {
  const open = statText.indexOf('(');
  const close = statText.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const rest = statText
    .slice(close + 2)
    .trim()
    .split(/\s+/);
  const f = (n: number): number => Number(rest[n - 3]);
  const cpu = f(39);
  if (!Number.isInteger(cpu)) return undefined;
  let runNs = (f(14) + f(15)) * 10_000_000;
  const sched = schedstatText?.trim().split(/\s+/)[0];
  if (sched !== undefined && /^\d+$/.test(sched)) runNs = Number(sched);
  if (!Number.isFinite(runNs)) return undefined;
  return {
    tid: Number.parseInt(statText.slice(0, open), 10),
    comm: statText.slice(open + 1, close),
    cpu,
    runNs,
    start: f(22),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Reads

export interface Counters {
  /** performance.now() when read. */
  at: number;
  interrupts?: InterruptTable;
  softirqs?: Map<string, Map<number, number>>;
  stat?: Map<number, CpuTimes>;
  /** Files that could not be read: "/proc/softirqs (permission denied)". */
  notRead: string[];
}

function why(e: unknown): string {
  const code = (e as { code?: string }).code ?? 'EIO';
  return code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'ENOENT' ? 'missing' : code;
}

/** One snapshot of the three counter files. */
export function readCounters(fs: Fs, now: () => number = () => performance.now()): Counters {
  const out: Counters = { at: now(), notRead: [] };
  const one = <T>(path: string, parse: (t: string) => T): T | undefined => {
    try {
      return parse(fs.read(path));
    } catch (e) {
      out.notRead.push(`${path} (${why(e)})`);
      return undefined;
    }
  };
  out.interrupts = one(P.interrupts, parseInterrupts);
  out.softirqs = one(P.softirqs, parseSoftirqs);
  out.stat = one(P.stat, parseProcStat);
  return out;
}

export interface ThreadSample {
  pid: number;
  run: ThreadRun;
}

export interface TaskRuns {
  at: number;
  /** By tid. */
  threads: Map<number, ThreadSample>;
  /** How many threads' schedstat could not be read (the stat fallback, 10 ms resolution, was used). */
  noSchedstat: number;
}

/** Every thread's last CPU and run time. Threads that exit while we look are skipped. */
export function readTaskRuns(fs: Fs, now: () => number = () => performance.now()): TaskRuns {
  const out: TaskRuns = { at: now(), threads: new Map(), noSchedstat: 0 };
  let pids: string[];
  try {
    pids = fs
      .list(P.proc)
      .map((e) => e.name)
      .filter((n) => /^\d+$/.test(n));
  } catch {
    return out;
  }
  for (const p of pids) {
    const pid = Number(p);
    let tids: string[];
    try {
      tids = fs
        .list(`${P.pid(pid)}/task`)
        .map((e) => e.name)
        .filter((n) => /^\d+$/.test(n));
    } catch {
      tids = [p];
    }
    for (const t of tids) {
      const tid = Number(t);
      const dir =
        tids.length === 1 && t === p && !fs.exists(P.task(pid, tid)) ? P.pid(pid) : P.task(pid, tid);
      let stat: string;
      try {
        stat = fs.read(`${dir}/stat`);
      } catch {
        continue;
      }
      let schedstat: string | undefined;
      try {
        schedstat = fs.read(`${dir}/schedstat`);
      } catch {
        out.noSchedstat++;
      }
      const run = parseThreadRun(stat, schedstat);
      if (run) out.threads.set(tid, { pid, run: { ...run, tid } });
    }
  }
  return out;
}

/** The VM name of a QEMU process from its command line (-name guest=NAME,... or -name NAME); undefined if none. */
export function qemuName(fs: Fs, pid: number): string | undefined {
  try {
    const argv = fs.read(`${P.pid(pid)}/cmdline`).split('\0');
    const i = argv.indexOf('-name');
    const v = i >= 0 ? argv[i + 1] : undefined;
    if (!v) return undefined;
    const m = /(?:^|,)guest=([^,]+)/.exec(v);
    return m ? m[1] : v.split(',')[0];
  } catch {
    return undefined;
  }
}
