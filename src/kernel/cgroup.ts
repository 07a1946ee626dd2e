/**
 * cgroup discovery and access. Finds the hierarchy that really has the cpuset controller (v1, v2, hybrid) from
 * /proc/self/mountinfo and gives v1/v2-neutral access to its cgroups by *name* ("/system.slice").
 */
import { CpuSet } from '../cpus/cpuset.ts';
import { RuntimeFailure, UsageError } from '../errors.ts';
import type { Fs } from './fs.ts';
import { P } from './paths.ts';
import { readIds } from './task-list.ts';

export interface MountEntry {
  mountpoint: string;
  fstype: string;
  options: string[];
}

export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  const unescape = (s: string): string =>
    s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const parts = line.split(' ');
    const dash = parts.indexOf('-');
    if (dash < 6) continue;
    const mountpoint = unescape(parts[4] ?? '');
    const fstype = parts[dash + 1] ?? '';
    const superOpts = (parts[dash + 3] ?? '').split(',');
    const mountOpts = (parts[5] ?? '').split(',');
    out.push({ mountpoint, fstype, options: [...mountOpts, ...superOpts] });
  }
  return out;
}

/** The v1 flag files, in the order 0.5.2 wrote them. */
export const V1_FLAGS = [
  ['cpuExclusive', 'cpuset.cpu_exclusive'],
  ['memExclusive', 'cpuset.mem_exclusive'],
  ['memMigrate', 'cpuset.memory_migrate'],
  ['schedLoadBalance', 'cpuset.sched_load_balance'],
] as const;
export type V1Flag = (typeof V1_FLAGS)[number][0];

/** Split a cpuset name into its parts; `/`, `` → root. `..`, `.` and control characters are usage errors. */
export function normalizeCgroupName(name: string): string[] {
  const parts = name.split('/').filter((p) => p !== '');
  for (const p of parts) {
    if (p === '..' || p === '.') {
      throw new UsageError(
        `invalid cgroup path "${name}": "${p}" is not allowed`,
        'name cgroups from the hierarchy root, e.g. /system.slice',
      );
    }
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(p))
      throw new UsageError(`invalid cgroup path ${JSON.stringify(name)}: control character`);
  }
  return parts;
}

export function cgroupName(parts: readonly string[]): string {
  return '/' + parts.join('/');
}

export class Cgroups {
  private constructor(
    readonly fs: Fs,
    readonly version: 1 | 2,
    readonly mount: string,
    /** Both a cgroup2 and a cgroup v1 mount exist (systemd's hybrid mode). */
    readonly hybrid: boolean,
  ) {}

  static discover(fs: Fs): Cgroups {
    let mounts: MountEntry[];
    try {
      mounts = parseMountinfo(fs.read(P.mountinfo));
    } catch {
      throw new RuntimeFailure('cannot read /proc/self/mountinfo to find the cgroup hierarchy');
    }
    const v2 = mounts.filter((m) => m.fstype === 'cgroup2');
    const v1 = mounts.filter((m) => m.fstype === 'cgroup');
    const hybrid = v2.length > 0 && v1.length > 0;
    for (const m of v2) {
      try {
        if (fs.read(`${m.mountpoint}/cgroup.controllers`).split(/\s+/).includes('cpuset')) {
          return new Cgroups(fs, 2, m.mountpoint, hybrid);
        }
      } catch {
        /* not readable: try the next */
      }
    }
    const v1cpuset = v1.find((m) => m.options.includes('cpuset'));
    if (v1cpuset) return new Cgroups(fs, 1, v1cpuset.mountpoint, hybrid);
    if (v2.length === 0 && v1.length === 0)
      throw new RuntimeFailure('no cgroup file system is mounted', 'mount cgroup2 at /sys/fs/cgroup');
    throw new RuntimeFailure(
      'no cgroup hierarchy offers the cpuset controller',
      'the kernel needs CONFIG_CPUSETS; on cgroup v2 check /sys/fs/cgroup/cgroup.controllers',
    );
  }

  /** System path of a cgroup (parts from normalizeCgroupName). */
  path(parts: readonly string[]): string {
    return parts.length === 0 ? this.mount : `${this.mount}/${parts.join('/')}`;
  }
  file(parts: readonly string[], name: string): string {
    return `${this.path(parts)}/${name}`;
  }
  exists(parts: readonly string[]): boolean {
    return this.fs.isDir(this.path(parts));
  }

  /** The file that takes one task id per write: `tasks` (v1, thread ids) or `cgroup.procs` (v2, pids). */
  get taskFile(): 'tasks' | 'cgroup.procs' {
    return this.version === 1 ? 'tasks' : 'cgroup.procs';
  }

  readTasks(parts: readonly string[]): number[] {
    return readIds(this.fs, this.file(parts, this.taskFile));
  }

  children(parts: readonly string[]): string[] {
    try {
      return this.fs
        .list(this.path(parts))
        .filter((e) => e.isDir)
        .map((e) => e.name)
        .sort();
    } catch {
      return [];
    }
  }

  readText(parts: readonly string[], name: string): string | undefined {
    try {
      return this.fs.read(this.file(parts, name)).trim();
    } catch {
      return undefined;
    }
  }

  /** Configured cpus: v1 `cpuset.cpus`, v2 `cpuset.cpus` (empty = inherit). */
  configuredCpus(parts: readonly string[]): string | undefined {
    return this.readText(parts, 'cpuset.cpus');
  }
  effectiveCpus(parts: readonly string[]): CpuSet {
    const name = this.version === 2 ? 'cpuset.cpus.effective' : 'cpuset.cpus';
    return CpuSet.parseList(this.readText(parts, name) ?? '');
  }
  effectiveMems(parts: readonly string[]): CpuSet {
    const name = this.version === 2 ? 'cpuset.mems.effective' : 'cpuset.mems';
    return CpuSet.parseList(this.readText(parts, name) ?? '');
  }

  /** Does the cgroup or any descendant hold tasks? (The kernel refuses to empty a populated cpuset.) */
  populated(parts: readonly string[]): boolean {
    const events = this.readText(parts, 'cgroup.events');
    const m = events ? /^populated (\d)/m.exec(events) : null;
    if (m) return m[1] === '1';
    try {
      if (this.readTasks(parts).length > 0) return true;
    } catch {
      /* unreadable: look at the children */
    }
    return this.children(parts).some((c) => this.populated([...parts, c]));
  }

  /** v2: controllers enabled for this cgroup's children. */
  subtreeControl(parts: readonly string[]): string[] {
    return (this.readText(parts, 'cgroup.subtree_control') ?? '').split(/\s+/).filter(Boolean);
  }
  controllers(parts: readonly string[]): string[] {
    return (this.readText(parts, 'cgroup.controllers') ?? '').split(/\s+/).filter(Boolean);
  }

  /** v2: does this cgroup have cpuset interface files (its parent enabled cpuset)? */
  hasCpusetFiles(parts: readonly string[]): boolean {
    return this.fs.exists(this.file(parts, 'cpuset.cpus'));
  }
}
