/**
 * The Kernel object: every file the tool reads or writes and every command it runs, behind one door.
 * `Kernel.real()` is the machine the tool runs on; tests build one over a fake tree and pass it to `runCli`.
 */
import { CpuSet } from '../cpus/cpuset.ts';
import { UsageError } from '../errors.ts';
import { Cgroups } from './cgroup.ts';
import type { Fs, Updater } from './fs.ts';
import { Irqs } from './irq.ts';
import { P } from './paths.ts';
import type { ProbeRunner } from './probe.ts';
import { Procs } from './procs.ts';
import { RealFs } from './realfs.ts';
import { SYSTEMCTL_TIMEOUT_MS } from './systemd.ts';
import { readMachine, type Machine } from './topology.ts';

const nodeFs = process.getBuiltinModule('node:fs');

export { P } from './paths.ts';

/** A zero-length write(2) never reaches a control file's handler: an empty value goes out as "\n" (see write). */
const nonEmpty = (value: string): string => (value === '' ? '\n' : value);

export class Kernel {
  private _cgroups?: Cgroups;
  private _machine?: Machine;
  readonly procs: Procs;
  readonly irqs: Irqs;
  /**
   * The commands the tool runs: systemd's control tool and irqbalance (found on PATH on a real machine). An empty
   * systemctl means there is none to talk to (a fake tree without a fake systemd): cgroups are written directly.
   */
  readonly systemctl: string;
  /** How long one systemctl call may take. */
  readonly systemctlTimeoutMs: number;
  readonly irqbalance: string;
  /** The effective uid the tool runs with: 0 means it may write. */
  readonly euid: number;
  /** The probe of `measure --mode probe` (undefined: the real one, src/kernel/probe.ts, loaded on demand). */
  readonly probe?: ProbeRunner;

  constructor(
    readonly fs: Fs,
    opts: {
      systemctl?: string;
      systemctlTimeoutMs?: number;
      irqbalance?: string;
      euid?: number;
      probe?: ProbeRunner;
    } = {},
  ) {
    this.probe = opts.probe;
    this.procs = new Procs(fs);
    this.irqs = new Irqs(fs);
    this.systemctl = opts.systemctl ?? 'systemctl';
    this.systemctlTimeoutMs = opts.systemctlTimeoutMs ?? SYSTEMCTL_TIMEOUT_MS;
    this.irqbalance = opts.irqbalance ?? 'irqbalance';
    this.euid = opts.euid ?? process.geteuid?.() ?? 0;
  }

  /** The machine the tool runs on. */
  static real(): Kernel {
    return new Kernel(new RealFs());
  }

  get root(): string {
    return this.fs.root;
  }

  /** The cgroup hierarchy with the cpuset controller (discovered on first use). */
  get cgroups(): Cgroups {
    this._cgroups ??= Cgroups.discover(this.fs);
    return this._cgroups;
  }
  get machine(): Machine {
    this._machine ??= readMachine(this.fs);
    return this._machine;
  }
  /** The possible CPUs (the machine reads them on first use, without present and online: move-tasks from the root). */
  get possibleCpus(): CpuSet {
    return this.machine.possible;
  }

  /**
   * Host path of a system path (for files the tool keeps itself: lock, journals, hooks, the irqbalance drop-in).
   * Under a fake root nothing resolves out of it: when the existing part of its directory, symlinks resolved, lies
   * outside the root, this throws (exit 2) instead of returning a path that leads out.
   */
  hostPath(systemPath: string): string {
    if (this.fs.root === '/') return systemPath;
    const root = this.fs.root.replace(/\/$/, '');
    const host = `${root}${systemPath}`;
    // The directories leading to it; the last component itself is the caller's to open without following
    // (O_NOFOLLOW, lstat), so that it can name a symlink there.
    let existing = host.slice(0, host.lastIndexOf('/'));
    while (existing.length > root.length && !nodeFs.existsSync(existing)) {
      existing = existing.slice(0, existing.lastIndexOf('/'));
    }
    let real: string;
    try {
      real = nodeFs.realpathSync(existing.length > root.length ? existing : root);
    } catch {
      real = root;
    }
    const realRoot = nodeFs.realpathSync(root);
    if (real !== realRoot && !real.startsWith(`${realRoot}/`))
      throw new UsageError(
        `${systemPath} leads out of the machine's root ${root} (to ${real})`,
        'a symbolic link in the tree points outside it; nothing was changed',
      );
    return host;
  }

  /** The boot id (read once: it does not change while the tool runs). */
  bootId(): string {
    if (this._bootId === undefined) {
      try {
        this._bootId = this.fs.read(P.bootId).trim();
      } catch {
        this._bootId = 'unknown';
      }
    }
    return this._bootId;
  }
  private _bootId?: string;

  /** Clock ticks (USER_HZ = 100) since boot, from /proc/uptime: the unit of a task's start time. */
  uptimeTicks(): number | undefined {
    try {
      const ticks = Math.floor(Number.parseFloat(this.fs.read('/proc/uptime').split(' ')[0] ?? '') * 100);
      return Number.isFinite(ticks) ? ticks : undefined;
    } catch {
      return undefined;
    }
  }

  /** nr_cpu_ids: the width the kernel uses for hex masks. */
  get nrCpuIds(): number {
    return (this.machine.possible.last ?? 0) + 1;
  }

  read(path: string): string {
    return this.fs.read(path);
  }
  readTrim(path: string): string | undefined {
    try {
      return this.fs.read(path).trim();
    } catch {
      return undefined;
    }
  }
  /**
   * Write a value to a kernel file. A zero-length write(2) never reaches a control file's handler, so an empty
   * value ("inherit" for a v2 cpuset.cpus) is written as "\n", which the kernel strips, as `echo > file` does.
   */
  write(path: string, value: string): void {
    this.fs.write(path, nonEmpty(value));
  }

  /**
   * An IRQ's affinity file opened once for a read and then a write (Fs.openForUpdate), where the Fs can; undefined
   * where it cannot. Its write takes an empty value as write does.
   */
  openForUpdate(path: string): Updater | undefined {
    const u = this.fs.openForUpdate?.(path);
    return u && { text: u.text, write: (v: string) => u.write(nonEmpty(v)), close: () => u.close() };
  }

  /**
   * write, telling a refusal of the write by its errno's name instead of throwing (undefined: written), where the
   * kernel layer can (RealFs: no exception at all); elsewhere, and for errors of opening the file, it throws as
   * write does.
   */
  tryWrite(path: string, value: string): string | undefined {
    const v = nonEmpty(value);
    if (this.fs.tryWrite) return this.fs.tryWrite(path, v);
    this.fs.write(path, v);
    return undefined;
  }

  /** Is a process with this comm running (e.g. irqbalance)? Returns its pid. */
  findProcess(comm: string): number | undefined {
    for (const pid of this.procs.pids()) {
      if (this.procs.stat(pid)?.comm === comm) return pid;
    }
    return undefined;
  }

  /** Workqueue cpumask files that exist on this machine. */
  workqueueMasks(): string[] {
    return [P.workqueueMask, P.writebackMask].filter((p) => this.fs.exists(p));
  }

  readMask(path: string): CpuSet | undefined {
    const t = this.readTrim(path);
    return t === undefined ? undefined : CpuSet.parseMask(t);
  }

  /** Kernel version "6.12.3-cloud-amd64" -> [6, 12]. */
  version(): [number, number] {
    if (!this._version) {
      const m = /^(\d+)\.(\d+)/.exec(this.readTrim(P.osrelease) ?? '');
      this._version = m ? [Number(m[1]), Number(m[2])] : [0, 0];
    }
    return [...this._version];
  }
  /** The kernel's version (read once). */
  private _version?: [number, number];
}
