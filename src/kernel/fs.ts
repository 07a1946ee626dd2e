/**
 * The door to the kernel's control files: the values the tool reads and writes in /sys, /proc and the cgroup tree
 * go through an `Fs`, so a test can run the tool over a fake tree. Not through it (node:fs in src/kernel/, mostly at
 * `Kernel.hostPath()` where a test may move them): the files the tool keeps or installs itself (the lock, the
 * reservations registry, libvirt hooks, irqbalance drop-ins), file metadata (modes and owners for the trust checks,
 * whether an IRQ's affinity file is writable); journals (src/steps/journal.ts) and profiles (src/profile.ts) too.
 * Paths given to an Fs are *system paths* as the system sees them (`/sys/fs/cgroup/x/cpuset.cpus`);
 * the Fs resolves them under its root directory.
 *
 * The product has one implementation, RealFs (root "/"): node:fs, single write(2) per value, never O_CREAT on
 * control files; affinity via koffi. Tests implement it over a fake tree (test/support/simfs.ts).
 *
 * Modules take node:fs as `process.getBuiltinModule('node:fs')`, never as an ES module import: that import reads
 * every export of node:fs when the module is linked, loading its streams and promises API (5–8 ms of every fresh
 * process natively; test/unit/product.test.ts holds the bundle to it).
 */
export interface DirEntry {
  name: string;
  isDir: boolean;
  isSymlink: boolean;
}

export interface Writer {
  write(value: string): void;
  /**
   * The same write, telling a refusal by its errno's name instead of throwing (undefined: written). Where a
   * writer has it, a loop that expects refusals (per-CPU kernel threads) uses it.
   */
  tryWrite?(value: string): string | undefined;
  close(): void;
}

/** A control file opened once to be read and then, if the caller so decides, written (see Fs.openForUpdate). */
export interface Updater {
  /** What the file held when it was opened. */
  readonly text: string;
  /** One write(2) of `value`, as `Fs.write` writes it. Throws ErrnoError. */
  write(value: string): void;
  close(): void;
}

export interface Fs {
  /** Root directory that system paths are resolved under ("/" for the real machine). */
  readonly root: string;
  /** Read a whole file as text. Throws an ErrnoError (code ENOENT, EACCES, ...). */
  read(path: string): string;
  /** Write `value` with one write(2) to an existing file (no O_CREAT). Throws ErrnoError. */
  write(path: string, value: string): void;
  /**
   * Optional: the same write, telling a refusal of the write itself by its errno's name instead of throwing
   * (undefined: written); errors of opening the file still throw.
   */
  tryWrite?(path: string, value: string): string | undefined;
  /**
   * Optional: open a control file once and write several values, one write(2) each (cgroup.procs takes one pid
   * per write). Errors of a single write are thrown from `write` and leave the writer usable.
   */
  openWriter?(path: string): Writer;
  /**
   * Optional: open an IRQ's affinity file once, read it, and keep it open for a write (restore's read of each value
   * before it writes the old one back: one open where a read and a write took two). Throws ErrnoError as read does;
   * EINVAL for any other file.
   */
  openForUpdate?(path: string): Updater;
  exists(path: string): boolean;
  isDir(path: string): boolean;
  /** Optional: the link count (st_nlink) of what is at `path`, following symlinks; undefined when it cannot be read. */
  linkCount?(path: string): number | undefined;
  list(path: string): DirEntry[];
  /** Optional: the names in a directory only (no entry types: cheaper where the caller needs none). */
  listNames?(path: string): string[];
  /** mkdir (not recursive): in a cgroup hierarchy this creates a cgroup. */
  mkdir(path: string): void;
  /** rmdir: in a cgroup hierarchy this removes an (empty) cgroup. */
  rmdir(path: string): void;
  /** Resolve symlinks (inside the root, never out of it); returns a system path. */
  realpath(path: string): string;
  /** sched_getaffinity / sched_setaffinity for a thread id. */
  getAffinity(tid: number): number[];
  setAffinity(tid: number, cpus: readonly number[]): void;
  /** sched_getscheduler+param / sched_setscheduler: policy 0=OTHER 1=FIFO 2=RR 3=BATCH 5=IDLE. */
  getScheduler(tid: number): { policy: number; priority: number };
  setScheduler(tid: number, policy: number, priority: number): void;
  /** kill(2): send a signal to a process (only irqbalance is ever signalled). */
  kill(pid: number, signal: NodeJS.Signals): void;
}

/** An error from a file operation, carrying the errno code (ENOENT, EACCES, ...) and the system path. */
export class ErrnoError extends Error {
  constructor(
    readonly code: string,
    readonly op: string,
    readonly path: string,
    message?: string,
  ) {
    super(message ?? `${op} ${path}: ${code}`);
    this.name = 'ErrnoError';
  }
}

export function errnoOf(e: unknown): string | undefined {
  if (e instanceof ErrnoError) return e.code;
  if (e && typeof e === 'object' && 'code' in e && typeof (e as { code: unknown }).code === 'string') {
    return (e as { code: string }).code;
  }
  return undefined;
}
