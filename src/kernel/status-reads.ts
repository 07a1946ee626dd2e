/**
 * Read-only kernel reads that `status` needs beyond the shared kernel layer: a task's cgroups and per-thread
 * affinity, IRQ action names and file modes, interrupt counts per CPU, governors per CPU, a process's
 * environment. Every function tolerates missing or unreadable files (status runs unprivileged).
 */
import { CpuSet } from '../cpus/cpuset.ts';
import { errnoOf, type Fs } from './fs.ts';
import type { Kernel } from './kernel.ts';
import { P } from './paths.ts';

const nodeFs = process.getBuiltinModule('node:fs');

/** A read that may fail: the value, or the errno code that stopped it. */
export type Read<T> = { ok: true; value: T } | { ok: false; code: string };

function attempt<T>(f: () => T): Read<T> {
  try {
    return { ok: true, value: f() };
  } catch (e) {
    return { ok: false, code: errnoOf(e) ?? 'EIO' };
  }
}

/** One line of /proc/PID/cgroup: hierarchy id, its controllers ([] for cgroup2), the cgroup path. */
export interface ProcCgroup {
  id: number;
  controllers: string[];
  path: string;
}

export function parseProcCgroup(text: string): ProcCgroup[] {
  const out: ProcCgroup[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    out.push({ id: Number(m[1]), controllers: (m[2] ?? '').split(',').filter(Boolean), path: m[3] ?? '' });
  }
  return out;
}

/** The cgroups of a process (all hierarchies). */
export function procCgroups(fs: Fs, pid: number): Read<ProcCgroup[]> {
  return attempt(() => parseProcCgroup(fs.read(`${P.pid(pid)}/cgroup`)));
}

/** Cpus_allowed_list of one thread, from /proc/PID/task/TID/status. */
export function threadAllowed(fs: Fs, pid: number, tid: number): Read<CpuSet> {
  return attempt(() => {
    const m = /^Cpus_allowed_list:\s*(.*)$/m.exec(fs.read(`${P.task(pid, tid)}/status`));
    if (!m) throw Object.assign(new Error('no Cpus_allowed_list'), { code: 'ENODATA' });
    return CpuSet.parseList(m[1] ?? '');
  });
}

/** The action names of an IRQ: the subdirectories of /proc/irq/N (one per registered handler). */
export function irqActions(fs: Fs, irq: number): string[] {
  try {
    return fs
      .list(P.irq(irq))
      .filter((e) => e.isDir)
      .map((e) => e.name)
      .sort();
  } catch {
    return [];
  }
}

/**
 * Does /proc/irq/N/smp_affinity_list carry a write permission bit? Newer kernels create it read-only for IRQs
 * whose affinity userspace may not change. undefined when the mode cannot be read.
 */
export function irqAffinityWritable(k: Kernel, irq: number): boolean | undefined {
  try {
    return (nodeFs.statSync(k.hostPath(`${P.irq(irq)}/smp_affinity_list`)).mode & 0o222) !== 0;
  } catch {
    return undefined;
  }
}

/** An IRQ's line of /proc/interrupts: its counts per CPU, and its name there (the last field: the device). */
export interface InterruptLine {
  counts: Map<number, number>;
  name: string;
}

/** Each IRQ's line of /proc/interrupts (numbered lines; count columns named by the header), from one read. */
export function interruptTable(fs: Fs): Read<Map<number, InterruptLine>> {
  return attempt(() => {
    const lines = fs.read(P.interrupts).split('\n');
    const cpus = (lines[0] ?? '')
      .trim()
      .split(/\s+/)
      .map((h) => /^CPU(\d+)$/.exec(h))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]));
    const out = new Map<number, InterruptLine>();
    for (const line of lines.slice(1)) {
      const m = /^\s*(\d+):(.*)$/.exec(line);
      if (!m) continue;
      const fields = (m[2] ?? '').trim().split(/\s+/);
      const per = new Map<number, number>();
      cpus.forEach((cpu, i) => {
        const n = Number(fields[i]);
        if (Number.isFinite(n)) per.set(cpu, n);
      });
      // after the counts: chip, [hwirq], [type], name...; the device name is the last field
      const rest = fields.slice(cpus.length);
      out.set(Number(m[1]), { counts: per, name: rest.length > 0 ? rest[rest.length - 1]! : '' });
    }
    return out;
  });
}

/** scaling_governor of each CPU (undefined: no cpufreq for it). */
export function governorsOf(fs: Fs, cpus: CpuSet): Map<number, string | undefined> {
  const out = new Map<number, string | undefined>();
  for (const cpu of cpus) {
    try {
      out.set(cpu, fs.read(P.governor(cpu)).trim() || undefined);
    } catch {
      out.set(cpu, undefined);
    }
  }
  return out;
}

/** The environment of a process (/proc/PID/environ: root or the owner only). */
export function environOf(fs: Fs, pid: number): Read<Map<string, string>> {
  return attempt(() => {
    const out = new Map<string, string>();
    for (const kv of fs.read(`${P.pid(pid)}/environ`).split('\0')) {
      const eq = kv.indexOf('=');
      if (eq > 0) out.set(kv.slice(0, eq), kv.slice(eq + 1));
    }
    return out;
  });
}

/** The boot-time isolation files: /sys/devices/system/cpu/isolated and nohz_full (undefined when absent). */
export function bootIsolationFiles(fs: Fs): { isolated?: CpuSet; nohzFull?: CpuSet } {
  const read = (p: string): CpuSet | undefined => {
    try {
      return CpuSet.parseList(fs.read(p));
    } catch {
      return undefined;
    }
  };
  return { isolated: read(P.cpuIsolated), nohzFull: read(P.cpuNohzFull) };
}

/** The kernel command line (/proc/cmdline), or undefined. */
export function kernelCmdline(fs: Fs): string | undefined {
  try {
    return fs.read(P.cmdline).trim();
  } catch {
    return undefined;
  }
}

/** Paths shown in status messages (system paths, as the user would type them). */
export const STATUS_PATHS = {
  defaultSmpAffinity: P.defaultSmpAffinity,
  interrupts: P.interrupts,
  irqDir: P.irqDir,
  proc: P.proc,
} as const;
