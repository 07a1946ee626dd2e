/** Moving tasks between cgroups: one id per write(2) through one open descriptor; errors counted per task. */
import { CpuSet } from '../cpus/cpuset.ts';
import { errnoOf, type Fs } from './fs.ts';
import type { Kernel } from './kernel.ts';
import { isKernelThread, isPinnedKernelThread } from './procs.ts';

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
  try {
    let i = 0;
    for (const id of ids) {
      try {
        writer.write(String(id));
        res.moved.push(id);
      } catch (e) {
        const code = errnoOf(e) ?? 'EIO';
        if (code === 'ESRCH') res.gone.push(id);
        else if (FATAL.has(code)) throw e;
        else res.unmovable.push({ id, code });
      }
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

/** [tid, start time, CPU list]: the shape of an affinity undo record's entries. */
export type KeptMask = [number, number, string];

/**
 * The masks of `tids` that attaching them elsewhere would lose for good: those that differ from `home`, the CPUs
 * attaching back to where they are gives, and, for the few whose mask differs, their start time (`startOf`,
 * default /proc/ID/task/ID/stat). A thread that started after `listedAt` is not the one that was listed (its pid
 * was reused) and is left out; gone threads too.
 * Each mask is read with sched_getaffinity(2) (~5 µs under TCG; koffi is loaded already by the run's lock) when
 * that is exact, else from /proc/ID/task/ID/status (Cpus_allowed_list, ~150-300 µs under TCG; `reader: 'status'`
 * forces it, and it takes over when the syscall fails). The syscall leaves CPUs that are not online out, so it is
 * exact only when `home` is all online: a thread in a cpuset other than the root has a mask within its cpuset's
 * CPUs, which are online; the root's `home` is every possible CPU, online only when no CPU is offline.
 */
export function masksToKeep(
  k: Kernel,
  tids: Iterable<number>,
  home: CpuSet,
  opts: { listedAt?: number; startOf?: (tid: number) => number | undefined; reader?: 'status' } = {},
): KeptMask[] {
  const list = Array.isArray(tids) ? (tids as number[]) : [...tids];
  const want = home.toList();
  const out: KeptMask[] = [];
  const keep = (tid: number, cpus: CpuSet): void => {
    const start = (opts.startOf ?? ((id: number) => k.procs.startOf(id)))(tid);
    if (start === undefined || (opts.listedAt !== undefined && start > opts.listedAt)) return;
    out.push([tid, start, cpus.toList()]);
  };
  const fromStatus = (tid: number): void => {
    const text = k.procs.allowedText(tid);
    if (text === undefined || text === want) return; // gone, or what attaching back gives anyway
    let cpus: CpuSet;
    try {
      cpus = CpuSet.parseList(text);
    } catch {
      return; // not a CPU list: nothing the kernel would print
    }
    if (!cpus.equals(home)) keep(tid, cpus);
  };
  let syscall = opts.reader !== 'status' && home.isSubsetOf(k.machine.online);
  const homeArr = syscall ? home.toArray() : [];
  for (const tid of list) {
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
    keep(tid, CpuSet.of(cpus));
  }
  return out;
}

/** What moving a list of tasks would lose, read before the move (see masksLostByMove). */
export interface LostMasks {
  /** The masks to journal. */
  kept: KeptMask[];
  /** Names of the kernel threads read (to report those that refuse to move). */
  comms: Map<number, string>;
  /** Start times read on the way (kernel threads). */
  starts: Map<number, number>;
  /** Kernel threads bound to a CPU (PF_NO_SETAFFINITY): the kernel refuses to move them (EINVAL). */
  pinned: Set<number>;
}

/**
 * The thread masks moving `ids` (listed in a cgroup's `file`) out of a cpuset would lose for good, and what was
 * read to find them:
 * - kernel threads, on every kernel: their masks are the kernel's (node-bound kswapd0, kcompactd0), not a user
 *   mask, and attaching replaces them. They are found with one read of kthreadd's children (Procs.kernelThreads)
 *   and one stat read each (flags and start time; those bound to a CPU refuse to move and are left out). Where
 *   that file cannot be read, every task of the root is read instead (its stat), and other cgroups are taken to
 *   hold no kernel thread.
 * - on kernels before 6.2 (attachKeepsUserMask), every other thread too: one status read each (masksToKeep), and
 *   only those whose mask differs from `home()` are journalled, identified by their start time (a thread that
 *   started after `listedAt` is not one that was listed).
 * Cost: O(kernel threads) reads on 6.2 and later; one more read per thread before 6.2.
 */
export function masksLostByMove(
  k: Kernel,
  ids: readonly number[],
  file: 'tasks' | 'cgroup.procs',
  fromRoot: boolean,
  home: () => CpuSet,
  listedAt: number | undefined,
): LostMasks {
  const out: LostMasks = { kept: [], comms: new Map(), starts: new Map(), pinned: new Set() };
  const all = k.procs.kernelThreads();
  const kernelIds = all ? ids.filter((id) => all.has(id)) : fromRoot ? ids : [];
  const kernel = new Set<number>();
  const movable: number[] = [];
  for (const id of kernelIds) {
    const st = k.procs.statOf(id);
    if (st === undefined) continue;
    out.starts.set(id, st.start);
    if (!isKernelThread(st)) continue;
    kernel.add(id);
    out.comms.set(id, st.comm);
    if (isPinnedKernelThread(st)) out.pinned.add(id);
    else movable.push(id);
  }
  if (movable.length > 0)
    out.kept.push(...masksToKeep(k, movable, home(), { startOf: (tid) => out.starts.get(tid) }));
  if (!attachKeepsUserMask(k)) {
    const users = kernel.size > 0 ? ids.filter((id) => !kernel.has(id)) : ids;
    if (users.length > 0)
      out.kept.push(
        ...masksToKeep(k, threadIds(k, users, file), home(), {
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
