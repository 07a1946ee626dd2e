/**
 * The Kernel object: every file the tool reads or writes and every command it runs, behind one door.
 * `Kernel.real()` is the machine the tool runs on; tests build one over a fake tree and pass it to `runCli`.
 */
import { CpuSet } from '../cpus/cpuset.ts';
import { Cgroups } from './cgroup.ts';
import type { Fs } from './fs.ts';
import { Irqs } from './irq.ts';
import { P } from './paths.ts';
import { Procs } from './procs.ts';
import { RealFs } from './realfs.ts';
import { readMachine, type Machine } from './topology.ts';

export { P } from './paths.ts';

export class Kernel {
  private _cgroups?: Cgroups;
  private _machine?: Machine;
  readonly procs: Procs;
  readonly irqs: Irqs;

  /** The commands the tool runs: systemd's control tool and irqbalance (found on PATH on a real machine). */
  readonly systemctl: string;
  readonly irqbalance: string;
  /** The effective uid the tool runs with: 0 means it may write. */
  readonly euid: number;

  constructor(
    readonly fs: Fs,
    opts: { systemctl?: string; irqbalance?: string; euid?: number } = {},
  ) {
    this.procs = new Procs(fs);
    this.irqs = new Irqs(fs);
    this.systemctl = opts.systemctl ?? 'systemctl';
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
