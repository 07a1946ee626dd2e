/**
 * The simulated state a chain is planned against: the kernel's files as they will be after the steps planned so
 * far. A later command sees what earlier commands in the same chain will have done.
 */
import type { Kernel } from '../kernel/kernel.ts';
import type { SystemdMode } from '../kernel/systemd.ts';

export class PlanState {
  private files = new Map<string, string>();
  private dirs = new Map<string, boolean>();
  /** systemd units' AllowedCPUs / AllowedMemoryNodes as they will be after the steps planned so far. */
  readonly units = new Map<string, { cpus: string; mems: string }>();
  /** Whether systemd manages the hierarchy (asked once per run). */
  systemd?: SystemdMode;

  constructor(readonly k: Kernel) {}

  read(path: string): string | undefined {
    const v = this.files.get(path);
    if (v !== undefined) return v;
    if (this.removedAbove(path)) return undefined;
    try {
      return this.k.read(path).trim();
    } catch {
      return undefined;
    }
  }

  isDir(path: string): boolean {
    const d = this.dirs.get(path);
    if (d !== undefined) return d;
    if (this.removedAbove(path)) return false;
    return this.k.fs.isDir(path);
  }

  exists(path: string): boolean {
    return this.files.has(path) || this.isDir(path) || (!this.removedAbove(path) && this.k.fs.exists(path));
  }

  /** Paths an earlier step writes without saying with what (a restore writes back what a journal says). */
  private touched = new Set<string>();

  /**
   * Whether an earlier step of the chain writes `path` (read() then returns the value it will have written, or,
   * for a path touch()ed, what the kernel holds now).
   */
  planned(path: string): boolean {
    return this.files.has(path) || this.touched.has(path);
  }

  /** An earlier step may write `path` (a later one reads it again right before its own write). */
  touch(path: string): void {
    this.touched.add(path);
  }

  set(path: string, value: string): void {
    this.files.set(path, value);
  }

  mkdir(path: string, files: Record<string, string> = {}): void {
    this.dirs.set(path, true);
    for (const [name, value] of Object.entries(files)) this.files.set(`${path}/${name}`, value);
  }

  rmdir(path: string): void {
    this.dirs.set(path, false);
    for (const key of [...this.files.keys()]) if (key.startsWith(path + '/')) this.files.delete(key);
  }

  private removedAbove(path: string): boolean {
    for (const [dir, present] of this.dirs)
      if (!present && (path === dir || path.startsWith(dir + '/'))) return true;
    return false;
  }
}
