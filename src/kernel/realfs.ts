import { ErrnoError, type DirEntry, type Fs, type Updater, type Writer } from './fs.ts';
import { loadLinkCount } from './libc-statx.ts';
import { loadRawWrite } from './libc-write.ts';
import { loadSched } from './sched.ts';
import { irqRuleOf, isIrqAffinityPath } from './writable.ts';

const fs = process.getBuiltinModule('node:fs');

function wrap<T>(op: string, path: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof ErrnoError) throw e;
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    throw new ErrnoError(code, op, path);
  }
}

/**
 * One write(2) of `value` to `fd`: undefined when written, else the refusal's errno name. Through koffi where it
 * loads (no exception at all), else node:fs and catch.
 */
function writeFd(fd: number, value: string): string | undefined {
  const raw = loadRawWrite();
  if (raw) return raw(fd, value);
  try {
    const buf = Buffer.from(value);
    return fs.writeSync(fd, buf, 0, buf.length) === buf.length ? undefined : 'EIO';
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? 'EIO';
  }
}

/** `value` with one write(2) to `fd`; a short write of a control file (not what the kernel does) is EIO. */
function writeValue(fd: number, value: string): void {
  const buf = Buffer.from(value);
  if (fs.writeSync(fd, buf, 0, buf.length) !== buf.length)
    throw Object.assign(new Error('short write'), { code: 'EIO' });
}

/** One buffer for every read: kernel files are small, and most fit in one read(2). */
let readBuf = Buffer.allocUnsafe(64 * 1024);

/**
 * A whole file as UTF-8 text: open, read(2) until end of file into a shared buffer (grown when a file does not
 * fit), close. What readFileSync does without its fstat and per-call option handling, which under emulation cost
 * about a third of a /proc/ID/task/ID/status read (move-tasks reads one per thread on kernels before 6.2).
 */
function readWhole(path: string, oneRecord = false): string {
  const fd = fs.openSync(path, 'r');
  try {
    return readFd(fd, oneRecord);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * What an open descriptor reads from its current offset to end of file, as UTF-8 text (readWhole's loop).
 * `oneRecord`: a procfs file the kernel prints in one go (single_open: an IRQ's affinity files), where a read that
 * leaves room in the buffer has returned all there is; the read(2) that would return 0 is not made.
 */
function readFd(fd: number, oneRecord = false): string {
  let total = 0;
  for (;;) {
    if (total === readBuf.length) {
      const bigger = Buffer.allocUnsafe(readBuf.length * 2);
      readBuf.copy(bigger, 0, 0, total);
      readBuf = bigger;
    }
    const room = readBuf.length - total;
    const n = fs.readSync(fd, readBuf, total, room, null);
    total += n;
    if (n === 0 || (oneRecord && n < room)) break;
  }
  return readBuf.toString('utf8', 0, total);
}

/** File system types whose files are kernel control files: writing them never truncates anything. */
const KERNEL_FSTYPES = new Set(['sysfs', 'proc', 'cgroup', 'cgroup2']);

/** glibc's makedev(): the st_dev number of a "major:minor" pair. */
function makedev(major: number, minor: number): number {
  return (
    (major & 0xfff) * 256 + (minor & 0xff) + (minor & 0xffffff00) * 4096 + (major & 0xfffff000) * 2 ** 32
  );
}

/** The st_dev of every sysfs, procfs and cgroupfs mount (from /proc/self/mountinfo). */
export function kernelDevices(mountinfo: string): Set<number> {
  const out = new Set<number>();
  for (const line of mountinfo.split('\n')) {
    const [pre, post] = line.split(' - ');
    const dev = pre?.split(' ')[2];
    const type = post?.split(' ')[0];
    const m = /^(\d+):(\d+)$/.exec(dev ?? '');
    if (m && type && KERNEL_FSTYPES.has(type)) out.add(makedev(Number(m[1]), Number(m[2])));
  }
  return out;
}

/** procfs's f_type (statfs(2), linux/magic.h PROC_SUPER_MAGIC). */
const PROC_SUPER_MAGIC = 0x9fa0;

/**
 * Is `path` a directory (not a symlink to one) on procfs? One lstat and one statfs: the file system's own type, where
 * matching its st_dev against mountinfo's procfs mounts took a read and a parse of mountinfo (IRQ-only runs read it
 * for nothing else).
 */
export function isProcfsDir(path: string): boolean {
  try {
    return fs.lstatSync(path).isDirectory() && fs.statfsSync(path).type === PROC_SUPER_MAGIC;
  } catch {
    return false;
  }
}

/**
 * The real machine: node:fs on system paths, one write(2) per value. Writes open the file O_WRONLY|O_NOFOLLOW,
 * never O_CREAT and never O_TRUNC, and then check what was opened before writing a byte:
 *  - the descriptor's path (/proc/self/fd/N) is exactly the path asked for, so no symlink anywhere on the way
 *    was followed (a path that needs resolving is refused: the caller passes canonical paths), and a symlink
 *    swapped in after validation cannot redirect the write;
 *  - the file is on sysfs, procfs or cgroupfs (its st_dev is one of those mounts'), never a regular file of an
 *    ordinary file system.
 * Anything else: ELOOP / EXDEV, nothing written.
 */
export class RealFs implements Fs {
  readonly root = '/';

  /** `kdevs`: the devices that count as kernel file systems (tests pass a temp dir's; default: from mountinfo). */
  constructor(private kdevs?: Set<number>) {}

  /** /proc/self/mountinfo, read once per run: cgroup discovery and the write check both need it. */
  private mountinfo?: string;

  private kernelDevs(): Set<number> {
    this.kdevs ??= kernelDevices(this.read('/proc/self/mountinfo'));
    return this.kdevs;
  }

  /** Whether /proc/irq is a procfs directory (looked at once per run). */
  private procIrq?: boolean;

  private procIrqIsProcfs(): boolean {
    return (this.procIrq ??= isProcfsDir('/proc/irq'));
  }

  /**
   * Open a kernel control file for writing, exactly at `path` (see the class comment). An IRQ affinity file needs
   * no per-file check once /proc/irq is known to be procfs (irqRuleOf): under TCG the readlink and fstat
   * tripled the cost of each IRQ's write.
   */
  private openControl(path: string, access: number = fs.constants.O_WRONLY): number {
    const fd = fs.openSync(path, access | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    if (irqRuleOf(path) && this.procIrqIsProcfs()) return fd;
    try {
      let opened: string;
      try {
        opened = fs.readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        opened = '';
      }
      if (opened !== path)
        throw new ErrnoError(
          'ELOOP',
          'write',
          path,
          `${path} is not a canonical path (it leads to ${opened || '?'}); refusing to write it`,
        );
      const st = fs.fstatSync(fd);
      if (!this.kernelDevs().has(st.dev))
        throw new ErrnoError(
          'EXDEV',
          'write',
          path,
          `${path} is not a kernel control file (not on sysfs, procfs or cgroupfs); refusing to write it`,
        );
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
    return fd;
  }

  read(path: string): string {
    if (path === '/proc/self/mountinfo')
      return (this.mountinfo ??= wrap('read', path, () => readWhole(path)));
    // an IRQ's affinity list (read for every IRQ by irq-affinity and isolate) in one read(2) on procfs
    const oneRecord = isIrqAffinityPath(path) && this.procIrqIsProcfs();
    return wrap('read', path, () => readWhole(path, oneRecord));
  }

  write(path: string, value: string): void {
    wrap('write', path, () => {
      const fd = this.openControl(path);
      try {
        writeValue(fd, value);
      } finally {
        fs.closeSync(fd);
      }
    });
  }

  tryWrite(path: string, value: string): string | undefined {
    // errors of the open throw as write's do (the same messages); a refused write returns its errno
    const fd = wrap('write', path, () => this.openControl(path));
    try {
      return writeFd(fd, value);
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * An IRQ's affinity file (irqRuleOf, once /proc/irq is known to be procfs) opened read-write, read whole, and kept
   * open for one write(2): procfs's handler takes the value whatever offset the read left (a positional write is
   * ESPIPE there). Any other path: EINVAL, nothing opened (a sysctl's handler would ignore a write past offset 0).
   */
  openForUpdate(path: string): Updater {
    if (!irqRuleOf(path) || !this.procIrqIsProcfs())
      throw new ErrnoError(
        'EINVAL',
        'read',
        path,
        `${path}: only an IRQ's affinity file is opened to read and write`,
      );
    const fd = wrap('read', path, () => this.openControl(path, fs.constants.O_RDWR));
    let text: string;
    try {
      text = wrap('read', path, () => readFd(fd, true));
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
    return {
      text,
      write: (value: string) => wrap('write', path, () => writeValue(fd, value)),
      close: () => fs.closeSync(fd),
    };
  }

  openWriter(path: string): Writer {
    const fd = wrap('open', path, () => this.openControl(path));
    return {
      write: (value: string) =>
        wrap('write', path, () => {
          fs.writeSync(fd, value);
        }),
      tryWrite: (value: string) => writeFd(fd, value),
      close: () => fs.closeSync(fd),
    };
  }

  exists(path: string): boolean {
    return fs.existsSync(path);
  }

  isDir(path: string): boolean {
    try {
      return fs.statSync(path).isDirectory();
    } catch {
      return false;
    }
  }

  linkCount(path: string): number | undefined {
    const statx = loadLinkCount();
    if (statx) return statx(path);
    try {
      return fs.statSync(path).nlink;
    } catch {
      return undefined;
    }
  }

  list(path: string): DirEntry[] {
    return wrap('list', path, () =>
      fs.readdirSync(path, { withFileTypes: true }).map((d) => ({
        name: d.name,
        isDir: d.isDirectory(),
        isSymlink: d.isSymbolicLink(),
      })),
    );
  }

  listNames(path: string): string[] {
    return wrap('list', path, () => fs.readdirSync(path));
  }

  mkdir(path: string): void {
    wrap('mkdir', path, () => fs.mkdirSync(path));
  }

  rmdir(path: string): void {
    wrap('rmdir', path, () => fs.rmdirSync(path));
  }

  realpath(path: string): string {
    return wrap('realpath', path, () => fs.realpathSync.native(path));
  }

  getAffinity(tid: number): number[] {
    return loadSched().getAffinity(tid);
  }
  setAffinity(tid: number, cpus: readonly number[]): void {
    loadSched().setAffinity(tid, cpus);
  }
  getScheduler(tid: number): { policy: number; priority: number } {
    return loadSched().getScheduler(tid);
  }
  setScheduler(tid: number, policy: number, priority: number): void {
    loadSched().setScheduler(tid, policy, priority);
  }
  kill(pid: number, signal: NodeJS.Signals): void {
    wrap('kill', `/proc/${pid}`, () => process.kill(pid, signal));
  }
}
