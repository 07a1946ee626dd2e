/**
 * The Kernel object: every file the tool reads or writes, rooted at a directory. `Kernel.open()` picks the real
 * machine, or, when VFIO_ISOLATE_ROOT is set (a testing aid), a fake tree under that directory with SimFs.
 */
import { CpuSet } from '../cpus/cpuset.ts';
import { Cgroups } from './cgroup.ts';
import type { Fs } from './fs.ts';
import { Irqs } from './irq.ts';
import { P } from './paths.ts';
import { Procs } from './procs.ts';
import { RealFs } from './realfs.ts';
import { SimFs } from './simfs.ts';
import { SYSTEMCTL_TIMEOUT_MS } from './systemd.ts';
import { readMachine, type Machine } from './topology.ts';

export { P } from './paths.ts';

export interface KernelOptions {
  /** The systemctl command ('systemctl' on a real machine; '' = none, e.g. a fake tree without a fake one). */
  systemctl?: string;
  /** How long one systemctl call may take. */
  systemctlTimeoutMs?: number;
}

export class Kernel {
  private _cgroups?: Cgroups;
  private _machine?: Machine;
  readonly procs: Procs;
  readonly irqs: Irqs;
  readonly systemctl: string;
  readonly systemctlTimeoutMs: number;

  constructor(
    readonly fs: Fs,
    /** True when running on a fake tree (VFIO_ISOLATE_ROOT). */
    readonly simulated: boolean,
    /** The environment the tool runs with (test aids such as VFIO_ISOLATE_SYSTEMCTL are read from it). */
    readonly env: NodeJS.ProcessEnv = process.env,
    opts: KernelOptions = {},
  ) {
    this.procs = new Procs(fs);
    this.irqs = new Irqs(fs);
    this.systemctl = opts.systemctl ?? (simulated ? '' : 'systemctl');
    this.systemctlTimeoutMs = opts.systemctlTimeoutMs ?? SYSTEMCTL_TIMEOUT_MS;
  }

  static open(env: NodeJS.ProcessEnv = process.env): Kernel {
    const root = env.VFIO_ISOLATE_ROOT;
    if (root !== undefined && root !== '')
      return new Kernel(new SimFs(root), true, env, { systemctl: env.VFIO_ISOLATE_SYSTEMCTL ?? '' });
    return new Kernel(new RealFs(), false, env);
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
  /** The possible CPUs, without reading the whole topology when it is not loaded yet (move-tasks needs only these). */
  get possibleCpus(): CpuSet {
    if (this._machine) return this._machine.possible;
    try {
      return CpuSet.parseList(this.fs.read(P.cpuPossible));
    } catch {
      return this.machine.possible;
    }
  }

  /** Host path of a system path (for files the tool keeps itself: lock, default journal). */
  hostPath(systemPath: string): string {
    return this.fs.root === '/' ? systemPath : `${this.fs.root.replace(/\/$/, '')}${systemPath}`;
  }

  bootId(): string {
    try {
      return this.fs.read(P.bootId).trim();
    } catch {
      return 'unknown';
    }
  }

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
    this.fs.write(path, value === '' ? '\n' : value);
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
    const m = /^(\d+)\.(\d+)/.exec(this.readTrim(P.osrelease) ?? '');
    return m ? [Number(m[1]), Number(m[2])] : [0, 0];
  }
}
