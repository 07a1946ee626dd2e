/** Processes and threads from /proc: identity (pid + start time), flags, affinity, scheduling. */
import { CpuSet } from '../cpus/cpuset.ts';
import type { Fs } from './fs.ts';
import { P } from './paths.ts';
import { listIds, readIds } from './task-list.ts';

export const PF_KTHREAD = 0x00200000;
export const PF_NO_SETAFFINITY = 0x04000000;

export interface TaskStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  flags: number;
  /** Start time in clock ticks since boot (field 22): with the pid, identifies a task across pid reuse. */
  start: number;
  processor: number;
  rtPriority: number;
  policy: number;
}

/**
 * Parse /proc/PID/stat. The comm field may contain spaces and parentheses: it ends at the last ")". The kernel
 * separates the fields after it by one space each; only fields 3 to 41 are split off (the line has about 52).
 */
export function parseStat(text: string): TaskStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const pid = Number.parseInt(text.slice(0, open), 10);
  const rest = text.slice(close + 2).split(' ', 39);
  // rest[0] is field 3 (state); field n is rest[n - 3]; Number() ignores the newline of a line that ends early
  const f = (n: number): number => Number(rest[n - 3] ?? 0);
  return {
    pid,
    comm: text.slice(open + 1, close),
    state: rest[0]?.trimEnd() || '?',
    ppid: f(4),
    flags: f(9),
    start: f(22),
    processor: f(39),
    rtPriority: f(40),
    policy: f(41),
  };
}

/** The value of a field of /proc/ID/status ("Name:\tvalue"), trimmed; undefined when the text has no such line. */
export function statusField(text: string, name: string): string | undefined {
  const key = `${name}:`;
  let i = 0;
  if (!text.startsWith(key)) {
    i = text.indexOf(`\n${key}`) + 1;
    if (i === 0) return undefined;
  }
  const end = text.indexOf('\n', i + key.length);
  return text.slice(i + key.length, end < 0 ? undefined : end).trim();
}

export function isKernelThread(s: TaskStat): boolean {
  return (s.flags & PF_KTHREAD) !== 0 || s.pid === 2 || s.ppid === 2;
}
export function isPinnedKernelThread(s: TaskStat): boolean {
  return (s.flags & PF_NO_SETAFFINITY) !== 0;
}

export class Procs {
  constructor(readonly fs: Fs) {}

  pids(): number[] {
    return listIds(this.fs, P.proc);
  }

  threads(pid: number): number[] {
    return listIds(this.fs, `${P.pid(pid)}/task`);
  }

  /**
   * How many threads process `pid` has, from one stat of /proc/PID/task: procfs counts 2 + the process's threads as
   * that directory's links (proc_task_getattr). undefined when that cannot be told (gone; a file system that counts
   * a directory's links otherwise).
   */
  threadCount(pid: number): number | undefined {
    const n = this.fs.linkCount?.(`${P.pid(pid)}/task`);
    return n !== undefined && n >= 3 ? n - 2 : undefined;
  }

  /**
   * The kernel threads (kthreadd's children, plus kthreadd itself), from one read of
   * /proc/2/task/2/children; undefined when that file cannot be read (CONFIG_PROC_CHILDREN off). Every kernel
   * thread but kthreadd is created by kthreadd and never reparented, so the list is complete for the threads
   * that existed when it was read.
   */
  kernelThreads(): Set<number> | undefined {
    try {
      const ids = readIds(this.fs, P.kthreaddChildren);
      ids.push(2);
      return new Set(ids);
    } catch {
      return undefined;
    }
  }

  /** stat of a thread (tid) of process pid; pid itself when tid omitted. undefined when gone. */
  stat(pid: number, tid?: number): TaskStat | undefined {
    try {
      const path = tid === undefined || tid === pid ? `${P.pid(pid)}/stat` : `${P.task(pid, tid)}/stat`;
      return parseStat(this.fs.read(path));
    } catch {
      return undefined;
    }
  }

  /**
   * stat of any task id (thread or process). Reads the per-thread `/proc/ID/task/ID/stat`: `/proc/TID/stat` of a
   * thread is the thread-group view, which sums over every thread of its process, so reading it once per thread
   * of a big process is quadratic (about 1 ms per read at 1,000 threads under TCG). The fields parsed here are the
   * task's own in both views. Falls back to `/proc/ID/stat` (fake trees model `/proc/TID` without `task/`).
   */
  statOf(id: number): TaskStat | undefined {
    try {
      return parseStat(this.fs.read(`${P.task(id, id)}/stat`));
    } catch {
      return this.stat(id);
    }
  }

  /** Start time of a task id, or undefined when it is gone. */
  startOf(id: number): number | undefined {
    return this.statOf(id)?.start;
  }

  /** The CPUs a task may run on, from Cpus_allowed_list in /proc/ID/status (read-only, no syscall). */
  allowed(id: number, pid?: number): CpuSet | undefined {
    try {
      const path = pid === undefined || pid === id ? `${P.pid(id)}/status` : `${P.task(pid, id)}/status`;
      const list = statusField(this.fs.read(path), 'Cpus_allowed_list');
      return list === undefined ? undefined : CpuSet.parseList(list);
    } catch {
      return undefined;
    }
  }

  /**
   * Cpus_allowed_list of any task id as the kernel prints it (not parsed), or undefined when gone. Per-thread path
   * first, like statOf.
   */
  allowedText(id: number): string | undefined {
    let text: string;
    try {
      text = this.fs.read(`${P.task(id, id)}/status`);
    } catch {
      try {
        text = this.fs.read(`${P.pid(id)}/status`);
      } catch {
        return undefined;
      }
    }
    return statusField(text, 'Cpus_allowed_list');
  }

  /**
   * The cgroup path of a task in the cpuset hierarchy, from /proc/ID/cgroup: the v2 line `0::/path`, or on v1 the
   * line whose controllers include cpuset.
   */
  cgroupOf(id: number, version: 1 | 2): string | undefined {
    try {
      for (const line of this.fs.read(`${P.pid(id)}/cgroup`).split('\n')) {
        const m = /^(\d+):([^:]*):(.*)$/.exec(line);
        if (!m) continue;
        if (version === 2 && m[1] === '0' && m[2] === '') return m[3];
        if (version === 1 && m[2]!.split(',').includes('cpuset')) return m[3];
      }
    } catch {
      /* gone */
    }
    return undefined;
  }

  tgidOf(id: number): number | undefined {
    try {
      const m = /^Tgid:\s*(\d+)/m.exec(this.fs.read(`${P.pid(id)}/status`));
      return m ? Number(m[1]) : undefined;
    } catch {
      return undefined;
    }
  }

  cmdline(pid: number): string {
    try {
      return this.fs
        .read(`${P.pid(pid)}/cmdline`)
        .split('\0')
        .filter(Boolean)
        .join(' ');
    } catch {
      return '';
    }
  }

  /**
   * The thread ids of `pid`: [pid] for a kernel thread in `kernel` (kernelThreads(); a kernel thread is never a
   * thread group), else the listing of /proc/PID/task. kthreadd's children also hold the user programs the kernel
   * starts (usermode helpers, e.g. a core dump pipe handler, run with CLONE_PARENT), which may have threads: a
   * child whose stat has no PF_KTHREAD is listed.
   */
  threadsOf(pid: number, kernel: ReadonlySet<number> | undefined): number[] {
    return this.threadsAndStat(pid, kernel).tids;
  }

  /** threadsOf, and the stat of a child of kthreadd read on the way (undefined when it was not read). */
  threadsAndStat(pid: number, kernel: ReadonlySet<number> | undefined): { tids: number[]; stat?: TaskStat } {
    if (kernel?.has(pid)) {
      const stat = this.stat(pid);
      if (!stat) return { tids: [pid] };
      if ((stat.flags & PF_KTHREAD) !== 0) return { tids: [pid], stat };
      return { tids: this.threads(pid), stat };
    }
    return { tids: this.threads(pid) };
  }

  /** kernelThreads(), read at the first call of the function returned, then kept. */
  kernelThreadsOnce(): () => Set<number> | undefined {
    let kernel: Set<number> | undefined | null = null;
    return () => (kernel === null ? (kernel = this.kernelThreads()) : kernel);
  }

  /**
   * threadsAndStat, told first by the link count of /proc/PID/task (threadCount): a process of one thread (most
   * kernel threads and daemons) is its own only task, with neither its task/ nor its stat read; one of several is
   * listed (no kernel thread has more than one). Only where the count cannot be told is `kernel` asked for.
   */
  threadsByCount(
    pid: number,
    kernel: () => ReadonlySet<number> | undefined,
  ): { tids: number[]; stat?: TaskStat } {
    const n = this.threadCount(pid);
    if (n === 1) return { tids: [pid] };
    if (n !== undefined) return { tids: this.threads(pid) };
    return this.threadsAndStat(pid, kernel());
  }

  /**
   * Every task (thread) on the machine: [tid, pid] pairs (threadsByCount), with the stat of a kthreadd child when
   * it was read on the way.
   */
  allTasks(): { tid: number; pid: number; stat?: TaskStat }[] {
    const out: { tid: number; pid: number; stat?: TaskStat }[] = [];
    const kernel = this.kernelThreadsOnce();
    for (const pid of this.pids()) {
      const { tids, stat } = this.threadsByCount(pid, kernel);
      if (tids.length === 0) out.push({ tid: pid, pid, ...(stat ? { stat } : {}) });
      for (const tid of tids) out.push({ tid, pid, ...(stat && tid === pid ? { stat } : {}) });
    }
    return out;
  }
}
