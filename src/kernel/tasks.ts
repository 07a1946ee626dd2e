/** Moving tasks between cgroups: one id per write(2) through one open descriptor; errors counted per task. */
import { CpuSet } from '../cpus/cpuset.ts';
import { ErrnoError, errnoOf, type Fs } from './fs.ts';
import type { Kernel } from './kernel.ts';
import { readIds } from './task-list.ts';

export interface MoveResult {
  moved: number[];
  /** Exited before they could move (ESRCH). */
  gone: number[];
  /** The kernel does not let them move (EINVAL: per-CPU kernel threads; EBUSY/EOPNOTSUPP). */
  unmovable: { id: number; code: string }[];
}

/** Errors that concern the destination, not one task: the whole move fails. */
const FATAL = new Set(['ENOSPC', 'EACCES', 'EPERM', 'ENOENT', 'EROFS', 'ENODEV']);

export function writeIds(
  fs: Fs,
  file: string,
  ids: readonly number[],
  onProgress?: (done: number) => void,
): MoveResult {
  const res: MoveResult = { moved: [], gone: [], unmovable: [] };
  const writer = fs.openWriter?.(file) ?? { write: (v: string) => fs.write(file, v), close: () => {} };
  // a writer that reports refusals without throwing (RealFs's) is used that way: per-CPU kernel threads refuse by
  // the dozen, and each exception costs about a millisecond under TCG
  const attempt = writer.tryWrite
    ? (id: number): string | undefined => writer.tryWrite!(String(id))
    : (id: number): string | undefined => {
        try {
          writer.write(String(id));
          return undefined;
        } catch (e) {
          return errnoOf(e) ?? 'EIO';
        }
      };
  try {
    let i = 0;
    for (const id of ids) {
      const code = attempt(id);
      if (code === undefined) res.moved.push(id);
      else if (code === 'ESRCH') res.gone.push(id);
      else if (FATAL.has(code)) throw new ErrnoError(code, 'write', file);
      else res.unmovable.push({ id, code });
      if (onProgress && ++i % 500 === 0) onProgress(i);
    }
  } finally {
    writer.close();
  }
  return res;
}

/**
 * Does attaching a task to a cpuset keep the CPU mask it asked for with sched_setaffinity? Since Linux 6.2
 * ("sched: Enforce user requested affinity", da019032819a) __set_cpus_allowed_ptr() intersects the cpuset's
 * CPUs with the task's saved user mask (user_cpus_ptr), on cgroup v1 and v2 alike (both attach through
 * cpuset_attach_task → set_cpus_allowed_ptr). Before 6.2, attaching replaces the mask with the cpuset's CPUs,
 * so a move there and back loses it. An unreadable version counts as "before 6.2" (the safe side).
 * Masks the kernel set itself (node-bound kernel threads such as kswapd0, kcompactd0) have no user mask and are
 * replaced on every kernel.
 */
export function attachKeepsUserMask(k: Kernel): boolean {
  const [a, b] = k.version();
  return a > 6 || (a === 6 && b >= 2);
}

/**
 * The CPUs attaching a task to the cpuset cgroup `dir` gives it (cpuset_attach_task): every possible CPU for the
 * root, else the cgroup's effective CPUs (v2: the nearest ancestor with cpuset files governs).
 */
export function attachCpus(k: Kernel, dir: string): CpuSet {
  const mount = k.cgroups.mount;
  const names =
    k.cgroups.version === 2 ? ['cpuset.cpus.effective'] : ['cpuset.effective_cpus', 'cpuset.cpus'];
  for (let d = dir; d.length > mount.length && d.startsWith(mount); d = d.slice(0, d.lastIndexOf('/'))) {
    for (const name of names) {
      const text = k.readTrim(`${d}/${name}`);
      if (text === undefined) continue;
      try {
        return CpuSet.parseList(text);
      } catch {
        break;
      }
    }
  }
  return k.possibleCpus;
}

/** The thread ids behind ids listed in a `tasks` file (threads already) or `cgroup.procs` (processes). */
export function threadIds(k: Kernel, ids: readonly number[], file: 'tasks' | 'cgroup.procs'): number[] {
  if (file === 'tasks') return [...ids];
  const out: number[] = [];
  for (const pid of ids) {
    const tids = k.procs.threads(pid);
    if (tids.length === 0) out.push(pid);
    else for (const tid of tids) out.push(tid);
  }
  return out;
}

/**
 * Every thread of the processes in the cgroup v2 `dir`, from one read of its cgroup.threads; undefined where that
 * file may leave some out or cannot be read. It lists the threads in the cgroup itself only, so it is complete
 * when no threaded cgroup lies below: `cgroup.type` reads "domain" (a cgroup with threaded children reads
 * "domain threaded"); the root has no cgroup.type, and no child of it may read "threaded". One read (plus the root's
 * children's types) in place of one /proc/PID/task listing per process, ~100 µs each under TCG.
 */
export function cgroupThreads(k: Kernel, dir: string): number[] | undefined {
  if (dir === k.cgroups.mount) {
    for (const child of k.cgroups.children([]))
      if (!DOMAIN_TYPES.has(k.readTrim(`${dir}/${child}/cgroup.type`) ?? '')) return undefined;
  } else if (k.readTrim(`${dir}/cgroup.type`) !== 'domain') return undefined;
  try {
    return readIds(k.fs, `${dir}/cgroup.threads`);
  } catch {
    return undefined;
  }
}

/** Types of a cgroup v2 child of the root whose threads are none of the root's processes'. */
const DOMAIN_TYPES = new Set(['domain', 'domain threaded']);

/** [tid, start time, CPU list]: the shape of an affinity undo record's `tasks` entries. */
export type KeptMask = [number, number, string];

/**
 * [tid, CPU list]: an affinity undo record's `listed` entries, whose start time was not read: the same thread on
 * restore is the one with this tid that started no later than the record's `listedAt`.
 */
export type ListedMask = [number, string];

/**
 * The threads of `tids` whose mask differs from `home` (the CPUs attaching back to where they are gives), with
 * their masks; gone threads are left out.
 * Each mask is read with sched_getaffinity(2) (~18 µs under TCG; koffi is loaded already by the run's lock) when
 * that is exact, else from /proc/ID/task/ID/status (Cpus_allowed_list, ~150-300 µs under TCG; `reader: 'status'`
 * forces it, and it takes over when the syscall fails). The syscall leaves CPUs that are not online out, so it is
 * exact only when `home` is all online: a thread in a cpuset other than the root has a mask within its cpuset's
 * CPUs, which are online; the root's `home` is every possible CPU, online only when no CPU is offline.
 */
export function masksDiffering(
  k: Kernel,
  tids: readonly number[],
  home: CpuSet,
  opts: { reader?: 'status' } = {},
): [number, CpuSet][] {
  const want = home.toList();
  const out: [number, CpuSet][] = [];
  const fromStatus = (tid: number): void => {
    const text = k.procs.allowedText(tid);
    if (text === undefined || text === want) return; // gone, or what attaching back gives anyway
    let cpus: CpuSet;
    try {
      cpus = CpuSet.parseList(text);
    } catch {
      return; // not a CPU list: nothing the kernel would print
    }
    if (!cpus.equals(home)) out.push([tid, cpus]);
  };
  let syscall = opts.reader !== 'status' && home.isSubsetOf(k.machine.online);
  const homeArr = syscall ? home.toArray() : [];
  for (const tid of tids) {
    if (!syscall) {
      fromStatus(tid);
      continue;
    }
    let cpus: number[];
    try {
      cpus = k.fs.getAffinity(tid);
    } catch (e) {
      if (errnoOf(e) === 'ESRCH') continue; // gone
      // anything else (koffi cannot load, a refusal): the status reads, for this thread and the rest
      syscall = false;
      fromStatus(tid);
      continue;
    }
    if (cpus.length === homeArr.length && cpus.every((c, i) => c === homeArr[i])) continue;
    out.push([tid, CpuSet.of(cpus)]);
  }
  return out;
}

/**
 * The masks of `tids` that attaching them elsewhere would lose for good (masksDiffering), each with its thread's
 * start time (/proc/ID/task/ID/stat), read for those few only. A thread that started after `listedAt` is not the
 * one that was listed (its pid was reused) and is left out; gone threads too.
 */
export function masksToKeep(
  k: Kernel,
  tids: Iterable<number>,
  home: CpuSet,
  opts: { listedAt?: number; reader?: 'status' } = {},
): KeptMask[] {
  const list = Array.isArray(tids) ? (tids as number[]) : [...tids];
  const out: KeptMask[] = [];
  for (const [tid, cpus] of masksDiffering(k, list, home, opts.reader ? { reader: opts.reader } : {})) {
    const start = k.procs.startOf(tid);
    if (start === undefined || (opts.listedAt !== undefined && start > opts.listedAt)) continue;
    out.push([tid, start, cpus.toList()]);
  }
  return out;
}

/** What moving a list of tasks would lose, read before the move (see masksLostByMove): the masks to journal. */
export interface LostMasks {
  /** With each thread's start time. */
  kept: KeptMask[];
  /** Identified by the list time (kernel threads: no start time read). */
  listed: ListedMask[];
}

/**
 * The thread masks moving `ids` (listed in a cgroup's `file`) out of a cpuset would lose for good:
 * - kernel threads (kthreadd's children, Procs.kernelThreads: one read), on every kernel: their masks are the
 *   kernel's (node-bound kswapd0, kcompactd0; per-CPU threads, which refuse to move), not a user mask, and
 *   attaching replaces them. One sched_getaffinity each and nothing else: those whose mask differs are journalled
 *   by the list time (`listed`), so no stat is read per kernel thread (~440 µs each under TCG, against ~18 µs for
 *   the syscall). Without a list time (no /proc/uptime) they are journalled with their start times. Where
 *   kthreadd's children cannot be read, every task of the root counts as one of them, and other cgroups are taken
 *   to hold none.
 * - on kernels before 6.2 (attachKeepsUserMask), every other thread too (masksToKeep): only those whose mask
 *   differs from `home()` are journalled, identified by their start time (a thread that started after `listedAt`
 *   is not one that was listed). On cgroup v2 the threads behind the listed processes come, when they are the
 *   source's whole list, from one read of its cgroup.threads where that lists them all (cgroupThreads; a usermode
 *   helper's threads, a user program the kernel started, are then among them), else from /proc/PID/task of each
 *   process, kernel threads' included.
 * Cost: O(kernel threads) syscalls on 6.2 and later; one more per thread before 6.2. Why a task did not move is
 * told by its write (EINVAL: a kernel thread bound to a CPU; ESRCH: exited).
 */
export function masksLostByMove(
  k: Kernel,
  ids: readonly number[],
  file: 'tasks' | 'cgroup.procs',
  fromDir: string,
  home: () => CpuSet,
  listedAt: number | undefined,
  /**
   * `ids` is the source's whole list (a move's first pass): only then are the threads of the source's cgroup.threads
   * all threads of listed processes. A later pass lists only the tasks forked meanwhile, beside any that did not
   * move, whose masks are not this pass's to journal.
   */
  wholeSource = false,
): LostMasks {
  const out: LostMasks = { kept: [], listed: [] };
  const keepsUserMask = attachKeepsUserMask(k);
  const all = k.procs.kernelThreads();
  const kernelIds = all ? ids.filter((id) => all.has(id)) : fromDir === k.cgroups.mount ? ids : [];
  // cgroup v2 before 6.2, first pass: the threads of the listed processes from the source's cgroup.threads where it
  // lists them all (a usermode helper's threads are then among the user threads, with their start times), else per
  // process
  const cgThreads =
    wholeSource && !keepsUserMask && file === 'cgroup.procs' ? cgroupThreads(k, fromDir) : undefined;
  if (kernelIds.length > 0) {
    const tids = keepsUserMask || cgThreads ? kernelIds : threadIds(k, kernelIds, file);
    if (listedAt !== undefined)
      for (const [tid, cpus] of masksDiffering(k, tids, home())) out.listed.push([tid, cpus.toList()]);
    else out.kept.push(...masksToKeep(k, tids, home()));
  }
  if (!keepsUserMask) {
    const kernel = all ?? new Set(kernelIds);
    const users =
      cgThreads ?? threadIds(k, kernel.size > 0 ? ids.filter((id) => !kernel.has(id)) : ids, file);
    const tids = cgThreads && kernel.size > 0 ? users.filter((tid) => !kernel.has(tid)) : users;
    if (tids.length > 0)
      out.kept.push(
        ...masksToKeep(k, tids, home(), {
          ...(listedAt !== undefined ? { listedAt } : {}),
        }),
      );
  }
  return out;
}

/**
 * Move tasks back (restore), keeping the masks attaching would replace (kernels before 6.2): the masks that differ
 * from what their current cgroup `fromDir` gives are read before the move and set again after it, for threads that
 * are still the same (pid + start time). Returns the move's result.
 */
export function moveBackKeepingMasks(
  k: Kernel,
  fromDir: string,
  toFile: string,
  ids: readonly number[],
  file: 'tasks' | 'cgroup.procs',
): MoveResult {
  const kept = attachKeepsUserMask(k) ? [] : masksToKeep(k, threadIds(k, ids, file), attachCpus(k, fromDir));
  const res = writeIds(k.fs, toFile, ids);
  for (const [tid, start, list] of kept) {
    if (k.procs.startOf(tid) !== start) continue;
    try {
      k.fs.setAffinity(tid, CpuSet.parseList(list).toArray());
    } catch {
      /* gone, or no CPU of the mask is left in the cpuset (EINVAL): the kernel's choice stands */
    }
  }
  return res;
}
