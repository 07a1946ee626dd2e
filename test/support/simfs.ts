/**
 * SimFs: the `Fs` for a fake machine tree (VFIO_ISOLATE_ROOT). Every system path is resolved under `root`;
 * symlinks are followed inside the root and never out of it. Besides plain file access it emulates the kernel's
 * semantics for the control files the tool writes (cgroup v1/v2 attach, subtree_control, cpusets and partitions,
 * IRQ affinity, workqueue masks, cpufreq governors, vm sysctls, thread affinity and scheduling), with the errno
 * the kernel returns. State lives only in the files, so several processes can work on one tree in turn.
 *
 * Conventions of the tree (written by test/fixtures/build.ts):
 *  - `/proc/irq/N/.sim-refuse` holds the errno (EIO / EPERM) that affinity writes to IRQ N fail with.
 *  - `/proc/PID/task/TID/.sim-user-affinity` holds the CPU list a thread asked for with sched_setaffinity
 *    (kernels >= 6.2 keep it across cpuset changes).
 *  - `<root>/.sim-log` gets one line per write/mkdir/rmdir/setaffinity/setscheduler attempt (see readSimLog).
 *  - `/DIR/.sim-seq-NAME/N`: later contents of `/DIR/NAME` (e.g. /proc/interrupts): this SimFs's read number N
 *    (0 = the first) of that file, and every later one, gives the newest such version up to N, so counters change
 *    between a command's reads (see seqFile).
 *  Names starting with `.sim-` are invisible through this Fs (list, read, exists).
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { CpuSet } from '../../src/cpus/cpuset.ts';
import { ErrnoError, type DirEntry, type Fs, type Updater, type Writer } from '../../src/kernel/fs.ts';

const PF_KTHREAD = 0x00200000;
const PF_NO_SETAFFINITY = 0x04000000;

/** cgroup2 controllers in the kernel's order (the order cgroup.controllers / subtree_control print). */
const V2_CONTROLLERS = ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids', 'rdma', 'misc'];
/** Threaded controllers: may sit in subtree_control of a populated cgroup (no-internal-process rule). */
const V2_THREADED = new Set(['cpuset', 'cpu', 'pids', 'perf_event']);
/** The cgroup v1 controllers, in /proc/cgroups order. */
export const V1_CONTROLLER_NAMES = [
  'cpuset',
  'cpu',
  'cpuacct',
  'blkio',
  'memory',
  'devices',
  'freezer',
  'net_cls',
  'perf_event',
  'net_prio',
  'hugetlb',
  'pids',
  'rdma',
  'misc',
];
const V1_CONTROLLERS = new Set(V1_CONTROLLER_NAMES);
const V1_FLAG_FILES = new Set([
  'cpuset.cpu_exclusive',
  'cpuset.mem_exclusive',
  'cpuset.mem_hardwall',
  'cpuset.memory_migrate',
  'cpuset.sched_load_balance',
  'cpuset.memory_spread_page',
  'cpuset.memory_spread_slab',
  'cpuset.memory_pressure_enabled',
  'cgroup.clone_children',
  'notify_on_release',
]);
const PER_CPU_KTHREAD =
  /^(?:(?:cpuhp|migration|ksoftirqd|idle_inject|rcuc|watchdog)\/\d+|kworker\/\d+:\d+H?)$/;

/** The log every SimFs appends to, relative to the root. */
export const SIM_LOG = '.sim-log';

export interface SimLogEntry {
  op: string;
  path: string;
  value?: string;
  /** errno code when the operation failed. */
  error?: string;
}

function escPath(p: string): string {
  return p.replace(/[\\ \n\t]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}
function unescPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Parse `<root>/.sim-log`: one entry per write/mkdir/rmdir/setaffinity/setscheduler attempt, oldest first. */
export function readSimLog(root: string): SimLogEntry[] {
  let text: string;
  try {
    text = fs.readFileSync(nodePath.join(root, SIM_LOG), 'utf8');
  } catch {
    return [];
  }
  const out: SimLogEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\S+) (\S+)(?: ("(?:[^"\\]|\\.)*"))?(?: !(\w+))?$/.exec(line);
    if (!m) continue;
    const e: SimLogEntry = { op: m[1]!, path: unescPath(m[2]!) };
    if (m[3] !== undefined) e.value = JSON.parse(m[3]) as string;
    if (m[4] !== undefined) e.error = m[4];
    out.push(e);
  }
  return out;
}

interface Mount {
  point: string;
  type: string;
  options: string[];
}

interface Hierarchy {
  version: 1 | 2;
  mount: string;
  /** v1: controllers (and name=...) of the hierarchy. */
  controllers: string[];
}

interface TaskLoc {
  tgid: number;
  tid: number;
  /** system path of /proc/TGID/task/TID */
  dir: string;
}

interface V1State {
  cpus: CpuSet;
  mems: CpuSet;
  cpuExcl: boolean;
  memExcl: boolean;
}

function err(code: string, op: string, path: string, message?: string): ErrnoError {
  return new ErrnoError(code, op, path, message);
}

function parseIds(text: string): number[] {
  const out: number[] = [];
  for (const l of text.split('\n')) {
    const t = l.trim();
    if (/^\d+$/.test(t)) out.push(Number(t));
  }
  return out;
}

function idsText(ids: readonly number[]): string {
  return ids.map((i) => `${i}\n`).join('');
}

/** kstrtoint(strstrip(buf), 0): decimal, 0x hex, 0 octal. */
function parseKernelInt(value: string): number | undefined {
  const s = value.trim();
  if (/^[1-9]\d*$|^0$/.test(s)) return Number(s);
  if (/^0[xX][0-9a-fA-F]+$/.test(s)) return parseInt(s.slice(2), 16);
  if (/^0[0-7]+$/.test(s)) return parseInt(s.slice(1), 8);
  return undefined;
}

export class SimFs implements Fs {
  readonly root: string;
  private mountCache?: { key: string; mounts: Mount[] };

  constructor(root: string) {
    try {
      this.root = fs.realpathSync(nodePath.resolve(root));
    } catch {
      throw err('ENOENT', 'open', root, `simulated root ${root} does not exist`);
    }
    if (!fs.statSync(this.root).isDirectory()) throw err('ENOTDIR', 'open', root);
  }

  // ------------------------------------------------------------------------------------------------ paths

  /** Host path of a (canonical) system path. */
  hostPath(sys: string): string {
    return sys === '/' ? this.root : this.root + sys;
  }

  /**
   * Resolve a system path to a canonical system path: `.`/`..` handled physically (`..` at the root stays at the
   * root), symlinks followed inside the root (absolute targets restart at the root). `/proc/TID` of a thread
   * that is not a thread-group leader resolves to `/proc/TGID/task/TID`, as the kernel's hidden entries do.
   */
  private resolve(
    path: string,
    op: string,
    opts: { followLast?: boolean; allowMissingLast?: boolean } = {},
  ): string {
    const followLast = opts.followLast ?? true;
    const todo = path.split('/').reverse();
    const done: string[] = [];
    let links = 0;
    while (todo.length > 0) {
      const c = todo.pop()!;
      if (c === '' || c === '.') continue;
      if (c === '..') {
        done.pop();
        continue;
      }
      const isLast = todo.every((x) => x === '' || x === '.');
      if (c.startsWith('.sim-')) throw err('ENOENT', op, path);
      const host = this.root + '/' + [...done, c].join('/');
      let st: fs.Stats | undefined;
      try {
        st = fs.lstatSync(host);
      } catch {
        st = undefined;
      }
      if (!st) {
        if (done.length === 1 && done[0] === 'proc' && /^\d+$/.test(c)) {
          const tgid = this.findThreadGroup(Number(c));
          if (tgid !== undefined) {
            done.push(String(tgid), 'task', c);
            continue;
          }
        }
        if (isLast && opts.allowMissingLast) {
          done.push(c);
          continue;
        }
        throw err('ENOENT', op, path);
      }
      if (st.isSymbolicLink() && (!isLast || followLast)) {
        if (++links > 40) throw err('ELOOP', op, path);
        const target = fs.readlinkSync(host);
        if (target.startsWith('/')) done.length = 0;
        const parts = target.split('/');
        for (let i = parts.length - 1; i >= 0; i--) todo.push(parts[i]!);
        continue;
      }
      if (!isLast && !st.isDirectory()) throw err('ENOTDIR', op, path);
      done.push(c);
    }
    return '/' + done.join('/');
  }

  /** The thread group a (non-leader) thread id belongs to, by scanning /proc/PID/task. */
  private findThreadGroup(tid: number): number | undefined {
    let names: string[];
    try {
      names = fs.readdirSync(this.hostPath('/proc'));
    } catch {
      return undefined;
    }
    for (const n of names) {
      if (!/^\d+$/.test(n)) continue;
      if (fs.existsSync(`${this.root}/proc/${n}/task/${tid}`)) return Number(n);
    }
    return undefined;
  }

  // ------------------------------------------------------------------------------------------------ Fs

  read(path: string): string {
    const sys = this.resolve(path, 'read', { allowMissingLast: path.endsWith('/cgroup.threads') });
    try {
      const threads = this.v2Threads(sys);
      if (threads !== undefined) return threads;
      const later = this.seqFile(sys);
      if (later !== undefined) return fs.readFileSync(later, 'utf8');
      return fs.readFileSync(this.hostPath(sys), 'utf8');
    } catch (e) {
      throw err((e as NodeJS.ErrnoException).code ?? 'EIO', 'read', path);
    }
  }

  private readonly reads = new Map<string, number>();

  /**
   * A cgroup v2 directory's cgroup.threads, as the kernel prints it: the threads of the processes in its
   * cgroup.procs (the tree keeps no such file; a test may write one, which is then read as it is). Undefined for
   * any other file.
   */
  private v2Threads(sys: string): string | undefined {
    if (!sys.endsWith('/cgroup.threads') || this.existsSys(sys)) return undefined;
    const dir = sys.slice(0, sys.lastIndexOf('/'));
    if (this.hierarchyOf(dir)?.version !== 2) return undefined;
    const procs = this.readSys(`${dir}/cgroup.procs`);
    const tids: number[] = [];
    for (const pid of parseIds(procs)) {
      const task = this.hostPath(`/proc/${pid}/task`);
      const own = fs.existsSync(task)
        ? fs
            .readdirSync(task)
            .filter((n) => /^\d+$/.test(n))
            .map(Number)
            .sort((a, b) => a - b)
        : [pid];
      tids.push(...own);
    }
    return idsText(tids);
  }

  /** The host file a read of `sys` gives now when `.sim-seq-NAME` exists beside it (see the header). */
  private seqFile(sys: string): string | undefined {
    const slash = sys.lastIndexOf('/');
    const dir = this.hostPath(`${sys.slice(0, slash)}/.sim-seq-${sys.slice(slash + 1)}`);
    if (!fs.existsSync(dir)) return undefined;
    const n = this.reads.get(sys) ?? 0;
    this.reads.set(sys, n + 1);
    const have = fs
      .readdirSync(dir)
      .filter((f) => /^\d+$/.test(f))
      .map(Number)
      .sort((a, b) => a - b);
    const k = have.filter((x) => x <= n).pop();
    return k === undefined ? undefined : `${dir}/${k}`;
  }

  write(path: string, value: string): void {
    this.logged('write', path, value, () => {
      const sys = this.openForWrite(path);
      // Like the kernel: a zero-length write(2) never reaches a control file's handler.
      if (value !== '') this.emulateWrite(sys, value, path);
    });
  }

  /** A read, then the same write as `write` (the tree's files are plain files: no descriptor is kept). */
  openForUpdate(path: string): Updater {
    const text = this.read(path);
    return { text, write: (value: string) => this.write(path, value), close: () => {} };
  }

  openWriter(path: string): Writer {
    const sys = this.openForWrite(path);
    return {
      write: (value: string) =>
        this.logged('write', path, value, () => {
          if (!fs.existsSync(this.hostPath(sys))) throw err('ENODEV', 'write', path);
          this.emulateWrite(sys, value, path);
        }),
      close: () => {},
    };
  }

  exists(path: string): boolean {
    try {
      this.resolve(path, 'stat');
      return true;
    } catch {
      return false;
    }
  }

  isDir(path: string): boolean {
    try {
      return fs.statSync(this.hostPath(this.resolve(path, 'stat'))).isDirectory();
    } catch {
      return false;
    }
  }

  /** The fake tree's own link count: a directory's is 2 + its subdirectories (ext4, tmpfs), as procfs gives task/. */
  linkCount(path: string): number | undefined {
    try {
      return fs.statSync(this.hostPath(this.resolve(path, 'stat'))).nlink;
    } catch {
      return undefined;
    }
  }

  list(path: string): DirEntry[] {
    const sys = this.resolve(path, 'list');
    try {
      return fs
        .readdirSync(this.hostPath(sys), { withFileTypes: true })
        .filter((d) => !d.name.startsWith('.sim-'))
        .map((d) => ({ name: d.name, isDir: d.isDirectory(), isSymlink: d.isSymbolicLink() }));
    } catch (e) {
      throw err((e as NodeJS.ErrnoException).code ?? 'EIO', 'list', path);
    }
  }

  realpath(path: string): string {
    return this.resolve(path, 'realpath');
  }

  mkdir(path: string): void {
    this.logged('mkdir', path, undefined, () => this.doMkdir(path));
  }

  rmdir(path: string): void {
    this.logged('rmdir', path, undefined, () => this.doRmdir(path));
  }

  getAffinity(tid: number): number[] {
    const t = this.task(tid, 'sched_getaffinity');
    // the kernel's sched_getaffinity: the mask and the active (online) CPUs
    return this.taskAffinity(t).intersect(this.online()).toArray();
  }

  setAffinity(tid: number, cpus: readonly number[]): void {
    const where = `/proc/${tid}`;
    const value = (() => {
      try {
        return CpuSet.of(cpus).toList();
      } catch {
        return cpus.join(',');
      }
    })();
    this.logged('setaffinity', where, value, () => this.doSetAffinity(tid, cpus));
  }

  getScheduler(tid: number): { policy: number; priority: number } {
    const t = this.task(tid, 'sched_getscheduler');
    const f = this.statFields(`${t.dir}/stat`);
    return { policy: Number(f[41 - 3] ?? 0), priority: Number(f[40 - 3] ?? 0) };
  }

  setScheduler(tid: number, policy: number, priority: number): void {
    const where = `/proc/${tid}`;
    this.logged('setscheduler', where, `${policy} ${priority}`, () =>
      this.doSetScheduler(tid, policy, priority),
    );
  }

  /** Signals are only logged: a fake tree's pids are not this machine's processes. */
  kill(pid: number, signal: NodeJS.Signals): void {
    this.logged('kill', `/proc/${pid}`, signal, () => void this.task(pid, 'kill'));
  }

  // ------------------------------------------------------------------------------------------------ log

  /** Run one operation and append its line to the write log, with the errno when it failed. */
  private logged(op: string, path: string, value: string | undefined, f: () => void): void {
    try {
      f();
    } catch (e) {
      this.log(op, path, value, e);
      throw e;
    }
    this.log(op, path, value);
  }

  private log(op: string, path: string, value?: string, e?: unknown): void {
    let line = `${op} ${escPath(path)}`;
    if (value !== undefined) line += ` ${JSON.stringify(value)}`;
    if (e !== undefined) line += ` !${e instanceof ErrnoError ? e.code : 'EIO'}`;
    fs.appendFileSync(nodePath.join(this.root, SIM_LOG), line + '\n');
  }

  // ------------------------------------------------------------------------------------------------ helpers

  private readSys(sys: string): string {
    return fs.readFileSync(this.hostPath(sys), 'utf8');
  }
  private readOpt(sys: string): string | undefined {
    try {
      return this.readSys(sys);
    } catch {
      return undefined;
    }
  }
  private writeSys(sys: string, content: string): void {
    fs.writeFileSync(this.hostPath(sys), content);
  }
  /** Write only when the content differs; returns whether it changed. */
  private updateSys(sys: string, content: string): boolean {
    if (this.readOpt(sys) === content) return false;
    this.writeSys(sys, content);
    return true;
  }
  private existsSys(sys: string): boolean {
    return fs.existsSync(this.hostPath(sys));
  }
  private listSet(sys: string): CpuSet {
    try {
      return CpuSet.parseList(this.readSys(sys));
    } catch {
      return CpuSet.EMPTY;
    }
  }
  private subdirs(sys: string): string[] {
    try {
      return fs
        .readdirSync(this.hostPath(sys), { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name)
        .sort();
    } catch {
      return [];
    }
  }
  private online(): CpuSet {
    return this.listSet('/sys/devices/system/cpu/online');
  }
  private possible(): CpuSet {
    const p = this.listSet('/sys/devices/system/cpu/possible');
    return p.isEmpty ? this.online() : p;
  }
  private nrCpuIds(): number {
    return (this.possible().last ?? 0) + 1;
  }
  private memNodes(): CpuSet {
    for (const f of ['has_memory', 'online', 'possible']) {
      const s = this.listSet(`/sys/devices/system/node/${f}`);
      if (!s.isEmpty) return s;
    }
    return CpuSet.of([0]);
  }
  private version(): [number, number] {
    const m = /^(\d+)\.(\d+)/.exec(this.readOpt('/proc/sys/kernel/osrelease') ?? '');
    return m ? [Number(m[1]), Number(m[2])] : [6, 12];
  }
  private atLeast(major: number, minor: number): boolean {
    const [a, b] = this.version();
    return a > major || (a === major && b >= minor);
  }

  private parseListOr(code: string, value: string, op: string, path: string): CpuSet {
    try {
      return CpuSet.parseList(value);
    } catch {
      throw err(code, op, path);
    }
  }

  // ------------------------------------------------------------------------------------------------ mounts

  private mounts(): Mount[] {
    let sys: string;
    try {
      sys = this.resolve('/proc/self/mountinfo', 'read');
    } catch {
      return [];
    }
    const host = this.hostPath(sys);
    let key: string;
    try {
      const st = fs.statSync(host);
      key = `${host}:${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      return [];
    }
    if (this.mountCache?.key === key) return this.mountCache.mounts;
    const mounts: Mount[] = [];
    for (const line of fs.readFileSync(host, 'utf8').split('\n')) {
      const parts = line.split(' ');
      const dash = parts.indexOf('-');
      if (dash < 6) continue;
      mounts.push({
        point: unescPath(parts[4] ?? ''),
        type: parts[dash + 1] ?? '',
        options: [...(parts[5] ?? '').split(','), ...(parts[dash + 3] ?? '').split(',')],
      });
    }
    this.mountCache = { key, mounts };
    return mounts;
  }

  /** The cgroup hierarchy a canonical system path lies in (the mount with the longest matching prefix). */
  private hierarchyOf(sys: string): Hierarchy | undefined {
    let best: Mount | undefined;
    for (const m of this.mounts()) {
      const inside = m.point === '/' || sys === m.point || sys.startsWith(m.point + '/');
      if (inside && (!best || m.point.length >= best.point.length)) best = m;
    }
    if (!best || (best.type !== 'cgroup' && best.type !== 'cgroup2')) return undefined;
    if (best.type === 'cgroup2') return { version: 2, mount: best.point, controllers: [] };
    const controllers = best.options.filter((o) => V1_CONTROLLERS.has(o) || o.startsWith('name='));
    return { version: 1, mount: best.point, controllers: [...new Set(controllers)] };
  }

  private hierarchies(): Hierarchy[] {
    const out: Hierarchy[] = [];
    for (const m of this.mounts()) {
      if (m.type !== 'cgroup' && m.type !== 'cgroup2') continue;
      const h = this.hierarchyOf(m.point);
      if (h && h.mount === m.point && !out.some((x) => x.mount === h.mount)) out.push(h);
    }
    return out;
  }

  /** Does this hierarchy carry the cpuset controller (and so govern task affinity)? */
  private hasCpuset(h: Hierarchy): boolean {
    if (h.version === 1) return h.controllers.includes('cpuset');
    return this.existsSys(`${h.mount}/cpuset.cpus.effective`);
  }

  /** The cgroup path of a hierarchy ("/x/y") from a cgroup directory's system path. */
  private cgPath(h: Hierarchy, dir: string): string {
    return dir === h.mount ? '/' : dir.slice(h.mount.length);
  }

  /** Match a /proc/PID/cgroup line to its hierarchy. */
  private lineMatches(h: Hierarchy, line: string): boolean {
    const m = /^(\d+):([^:]*):/.exec(line);
    if (!m) return false;
    if (h.version === 2) return m[1] === '0';
    const ctrls = (m[2] ?? '').split(',').filter(Boolean);
    return ctrls.length === h.controllers.length && ctrls.every((c) => h.controllers.includes(c));
  }

  /** The cgroup (directory system path) a process is in, from /proc/PID/cgroup. */
  private procCgroupDir(h: Hierarchy, pid: number): string | undefined {
    const text = this.readOpt(`/proc/${pid}/cgroup`);
    if (text === undefined) return undefined;
    for (const line of text.split('\n')) {
      if (!this.lineMatches(h, line)) continue;
      const p = line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1);
      return p === '/' ? h.mount : h.mount + p;
    }
    return undefined;
  }

  private setProcCgroup(h: Hierarchy, pid: number, dir: string): void {
    const sys = `/proc/${pid}/cgroup`;
    const text = this.readOpt(sys);
    if (text === undefined) return;
    const cg = this.cgPath(h, dir);
    const lines = text.split('\n');
    let found = false;
    const out = lines.map((line) => {
      if (!this.lineMatches(h, line)) return line;
      found = true;
      const head = line.slice(0, line.indexOf(':', line.indexOf(':') + 1) + 1);
      return head + cg;
    });
    if (!found) return;
    this.writeSys(sys, out.join('\n'));
  }

  /** Every cgroup directory of a hierarchy, parents first. */
  private walk(dir: string, out: string[] = []): string[] {
    out.push(dir);
    for (const c of this.subdirs(dir)) this.walk(`${dir}/${c}`, out);
    return out;
  }

  // ------------------------------------------------------------------------------------------------ tasks

  private task(tid: number, op: string): TaskLoc {
    if (!Number.isSafeInteger(tid) || tid <= 0) throw err('ESRCH', op, `/proc/${tid}`);
    if (this.existsSys(`/proc/${tid}/task/${tid}`))
      return { tgid: tid, tid, dir: `/proc/${tid}/task/${tid}` };
    const tgid = this.findThreadGroup(tid);
    if (tgid === undefined) throw err('ESRCH', op, `/proc/${tid}`);
    return { tgid, tid, dir: `/proc/${tgid}/task/${tid}` };
  }

  private threadsOf(tgid: number): number[] {
    try {
      return fs
        .readdirSync(this.hostPath(`/proc/${tgid}/task`))
        .filter((n) => /^\d+$/.test(n))
        .map(Number)
        .sort((a, b) => a - b);
    } catch {
      return [tgid];
    }
  }

  private statFields(sys: string): string[] {
    const text = this.readSys(sys);
    const close = text.lastIndexOf(')');
    return text
      .slice(close + 2)
      .trim()
      .split(/\s+/);
  }

  private setStatFields(sys: string, set: Record<number, string | number>): void {
    const text = this.readOpt(sys);
    if (text === undefined) return;
    const close = text.lastIndexOf(')');
    const rest = text
      .slice(close + 2)
      .trim()
      .split(/\s+/);
    for (const [k, v] of Object.entries(set)) rest[Number(k) - 3] = String(v);
    this.writeSys(sys, `${text.slice(0, close + 1)} ${rest.join(' ')}\n`);
  }

  private taskFlags(t: TaskLoc): number {
    return Number(this.statFields(`${t.dir}/stat`)[9 - 3] ?? 0);
  }

  private taskComm(t: TaskLoc): string {
    const text = this.readOpt(`${t.dir}/stat`) ?? '';
    return text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'));
  }

  private taskAffinity(t: TaskLoc): CpuSet {
    const m = /^Cpus_allowed_list:\s*(.*)$/m.exec(this.readOpt(`${t.dir}/status`) ?? '');
    return m ? CpuSet.parseList(m[1] ?? '') : this.possible();
  }

  /** Write a thread's affinity into its status (and the process status for the leader) and fix `processor`. */
  private storeAffinity(t: TaskLoc, cpus: CpuSet): void {
    const nr = this.nrCpuIds();
    const files = [`${t.dir}/status`];
    if (t.tid === t.tgid) files.push(`/proc/${t.tgid}/status`);
    for (const f of files) {
      const text = this.readOpt(f);
      if (text === undefined) continue;
      const next = text
        .replace(/^Cpus_allowed:.*$/m, `Cpus_allowed:\t${cpus.toMask(nr)}`)
        .replace(/^Cpus_allowed_list:.*$/m, `Cpus_allowed_list:\t${cpus.toList()}`);
      if (next !== text) this.writeSys(f, next);
    }
    const statFiles = [`${t.dir}/stat`];
    if (t.tid === t.tgid) statFiles.push(`/proc/${t.tgid}/stat`);
    for (const f of statFiles) {
      const fields = this.existsSys(f) ? this.statFields(f) : [];
      const cpu = Number(fields[39 - 3] ?? -1);
      if (!cpus.has(cpu)) {
        const usable = cpus.intersect(this.online());
        this.setStatFields(f, { 39: usable.first ?? cpus.first ?? 0 });
      }
    }
  }

  private userMask(t: TaskLoc): CpuSet | undefined {
    const text = this.readOpt(`${t.dir}/.sim-user-affinity`);
    if (text === undefined) return undefined;
    try {
      return CpuSet.parseList(text);
    } catch {
      return undefined;
    }
  }

  /** Apply a cpuset's effective CPUs to a thread (cpuset attach / cpus change), keeping a user mask on >= 6.2. */
  private applyCpuset(t: TaskLoc, eff: CpuSet): void {
    let user = this.userMask(t);
    if (user && !this.atLeast(6, 2)) {
      fs.rmSync(this.hostPath(`${t.dir}/.sim-user-affinity`), { force: true });
      user = undefined;
    }
    const both = user ? user.intersect(eff) : CpuSet.EMPTY;
    const next = both.isEmpty ? eff : both;
    if (!next.equals(this.taskAffinity(t))) this.storeAffinity(t, next);
  }

  /** The CPUs a task's cpuset allows (cpuset_cpus_allowed). */
  private cpusetAllowed(t: TaskLoc): CpuSet {
    for (const h of this.hierarchies()) {
      if (!this.hasCpuset(h)) continue;
      if (h.version === 2) {
        const dir = this.procCgroupDir(h, t.tgid);
        if (dir !== undefined) return this.v2GoverningEffective(h, dir);
      } else {
        const dir = this.v1TaskCgroup(h, t.tid) ?? h.mount;
        const eff = this.readOpt(`${dir}/cpuset.effective_cpus`) ?? this.readOpt(`${dir}/cpuset.cpus`) ?? '';
        return CpuSet.parseList(eff);
      }
    }
    return this.online();
  }

  private doSetAffinity(tid: number, cpus: readonly number[]): void {
    const op = 'sched_setaffinity';
    const t = this.task(tid, op);
    let req: CpuSet;
    try {
      req = CpuSet.of(cpus);
    } catch {
      throw err('EINVAL', op, `/proc/${tid}`);
    }
    if ((this.taskFlags(t) & PF_NO_SETAFFINITY) !== 0) throw err('EINVAL', op, `/proc/${tid}`);
    const next = req.intersect(this.cpusetAllowed(t));
    if (!next.overlaps(this.online())) throw err('EINVAL', op, `/proc/${tid}`);
    if (this.atLeast(6, 2)) this.writeSys(`${t.dir}/.sim-user-affinity`, `${req.toList()}\n`);
    this.storeAffinity(t, next);
  }

  private doSetScheduler(tid: number, policy: number, priority: number): void {
    const op = 'sched_setscheduler';
    const t = this.task(tid, op);
    const where = `/proc/${tid}`;
    if (![0, 1, 2, 3, 5].includes(policy)) throw err('EINVAL', op, where);
    const rt = policy === 1 || policy === 2;
    if (!Number.isInteger(priority)) throw err('EINVAL', op, where);
    if (rt ? priority < 1 || priority > 99 : priority !== 0) throw err('EINVAL', op, where);
    const files = [`${t.dir}/stat`];
    if (t.tid === t.tgid) files.push(`/proc/${t.tgid}/stat`);
    for (const f of files) {
      if (!this.existsSys(f)) continue;
      const nice = Number(this.statFields(f)[19 - 3] ?? 0);
      this.setStatFields(f, { 18: rt ? -1 - priority : 20 + nice, 40: priority, 41: policy });
    }
  }

  // ------------------------------------------------------------------------------------------------ writes

  /** Resolve a path for writing: must exist, must not be a directory. */
  private openForWrite(path: string): string {
    const sys = this.resolve(path, 'write');
    let st: fs.Stats;
    try {
      st = fs.statSync(this.hostPath(sys));
    } catch {
      throw err('ENOENT', 'write', path);
    }
    if (st.isDirectory()) throw err('EISDIR', 'write', path);
    return sys;
  }

  private plainWrite(sys: string, value: string, path: string): void {
    let fd: number;
    try {
      fd = fs.openSync(this.hostPath(sys), fs.constants.O_WRONLY | fs.constants.O_TRUNC);
    } catch (e) {
      throw err((e as NodeJS.ErrnoException).code ?? 'EIO', 'write', path);
    }
    try {
      fs.writeSync(fd, value);
    } finally {
      fs.closeSync(fd);
    }
  }

  private emulateWrite(sys: string, value: string, path: string): void {
    const dir = nodePath.posix.dirname(sys);
    const file = nodePath.posix.basename(sys);
    const h = this.hierarchyOf(dir);
    if (h) {
      if (h.version === 2) return this.v2Write(h, dir, file, value, path);
      return this.v1Write(h, dir, file, value, path);
    }
    let m: RegExpExecArray | null;
    if ((m = /^\/proc\/irq\/(\d+)\/(smp_affinity|smp_affinity_list)$/.exec(sys))) {
      return this.irqWrite(Number(m[1]), m[2] === 'smp_affinity_list', value, path);
    }
    if (sys === '/proc/irq/default_smp_affinity') return this.defaultAffinityWrite(value, path);
    if (
      /^\/proc\/irq\/\d+\/(effective_affinity|effective_affinity_list|node|affinity_hint|spurious)$/.test(sys)
    ) {
      throw err('EIO', 'write', path);
    }
    if (
      sys === '/proc/interrupts' ||
      sys === '/proc/cmdline' ||
      sys === '/proc/uptime' ||
      sys === '/proc/cgroups'
    ) {
      throw err('EIO', 'write', path);
    }
    if (/^\/proc\/\d+\/(?:task\/\d+\/)?(?:stat|status|cgroup|cmdline|mountinfo|mounts)$/.test(sys)) {
      throw err('EINVAL', 'write', path);
    }
    if ((m = /^\/sys\/devices\/virtual\/workqueue\/(?:([^/]+)\/)?cpumask$/.exec(sys))) {
      return this.workqueueWrite(m[1] === undefined, sys, value, path);
    }
    if (/^\/sys\/devices\/system\/cpu\/cpufreq\/policy\d+\/scaling_governor$/.test(sys)) {
      return this.governorWrite(sys, value, path);
    }
    if (
      /^\/sys\/devices\/system\/cpu\/(?:possible|present|online|offline|isolated|nohz_full|kernel_max)$/.test(
        sys,
      ) ||
      /^\/sys\/devices\/system\/cpu\/cpu\d+\/(?:topology|cache)\//.test(sys) ||
      /^\/sys\/devices\/system\/cpu\/cpufreq\/policy\d+\/(?:scaling_available_governors|scaling_driver|affected_cpus|related_cpus|cpuinfo_\w+)$/.test(
        sys,
      ) ||
      /^\/sys\/devices\/system\/node\//.test(sys) ||
      sys === '/proc/sys/kernel/osrelease' ||
      sys === '/proc/sys/kernel/random/boot_id'
    ) {
      throw err('EACCES', 'write', path);
    }
    if (sys === '/proc/sys/vm/drop_caches') {
      const n = parseKernelInt(value);
      if (n === undefined || n < 1 || n > 4) throw err('EINVAL', 'write', path);
      return this.writeSys(sys, `${n}\n`);
    }
    if (sys === '/proc/sys/vm/stat_interval') {
      // an integer sysctl (proc_dointvec): read back as the number and a newline
      const n = parseKernelInt(value);
      if (n === undefined) throw err('EINVAL', 'write', path);
      return this.writeSys(sys, `${n}\n`);
    }
    if (sys === '/proc/sys/vm/compact_memory') {
      if (parseKernelInt(value) !== 1) throw err('EINVAL', 'write', path);
      return this.writeSys(sys, '1\n');
    }
    if (sys === '/proc/sys/kernel/watchdog_cpumask') {
      // a CPU list, shown back in canonical form (the kernel keeps only possible CPUs)
      const set = this.parseListOr('EINVAL', value, 'write', path);
      if (!this.existsSys(sys)) throw err('ENOENT', 'write', path);
      return this.writeSys(sys, `${set.intersect(this.possible()).toList()}\n`);
    }
    if (/^\/sys\/devices\/system\/cpu\/cpu\d+\/power\/pm_qos_resume_latency_us$/.test(sys)) {
      // "n/a": no wake-up latency at all; a number of microseconds; 0 shows "no limit"
      const v = value.trim();
      if (!this.existsSys(sys)) throw err('ENOENT', 'write', path);
      if (v !== 'n/a' && parseKernelInt(v) === undefined) throw err('EINVAL', 'write', path);
      return this.writeSys(sys, `${v === 'n/a' ? 'n/a' : parseKernelInt(v)}\n`);
    }
    this.plainWrite(sys, value, path);
  }

  // ---- IRQs, workqueues, cpufreq

  private irqWrite(irq: number, list: boolean, value: string, path: string): void {
    const refuse = this.readOpt(`/proc/irq/${irq}/.sim-refuse`);
    if (refuse !== undefined) throw err(refuse.trim() || 'EIO', 'write', path);
    let set: CpuSet;
    try {
      set = list ? CpuSet.parseList(value) : CpuSet.parseMask(value);
    } catch {
      throw err('EINVAL', 'write', path);
    }
    const nr = this.nrCpuIds();
    if ((set.last ?? -1) >= nr) throw err(list ? 'ERANGE' : 'EOVERFLOW', 'write', path);
    const online = this.online();
    if (!set.overlaps(online)) throw err('EINVAL', 'write', path);
    const dir = `/proc/irq/${irq}`;
    this.writeSys(`${dir}/smp_affinity`, `${set.toMask(nr)}\n`);
    this.writeSys(`${dir}/smp_affinity_list`, `${set.toList()}\n`);
    const eff = CpuSet.of([set.intersect(online).first!]);
    if (this.existsSys(`${dir}/effective_affinity`))
      this.writeSys(`${dir}/effective_affinity`, `${eff.toMask(nr)}\n`);
    if (this.existsSys(`${dir}/effective_affinity_list`))
      this.writeSys(`${dir}/effective_affinity_list`, `${eff.toList()}\n`);
  }

  private defaultAffinityWrite(value: string, path: string): void {
    let set: CpuSet;
    try {
      set = CpuSet.parseMask(value);
    } catch {
      throw err('EINVAL', 'write', path);
    }
    const nr = this.nrCpuIds();
    if ((set.last ?? -1) >= nr) throw err('EOVERFLOW', 'write', path);
    if (!set.overlaps(this.online())) throw err('EINVAL', 'write', path);
    this.writeSys('/proc/irq/default_smp_affinity', `${set.toMask(nr)}\n`);
  }

  private workqueueWrite(global: boolean, sys: string, value: string, path: string): void {
    let set: CpuSet;
    try {
      set = CpuSet.parseMask(value);
    } catch {
      throw err('EINVAL', 'write', path);
    }
    const nr = this.nrCpuIds();
    if ((set.last ?? -1) >= nr) throw err('EOVERFLOW', 'write', path);
    set = set.intersect(this.possible());
    if (!set.overlaps(this.online())) throw err('EINVAL', 'write', path);
    this.writeSys(sys, `${set.toMask(nr)}\n`);
    if (!global) return;
    // unbound workqueue workers follow the unbound cpumask
    for (const name of fs.readdirSync(this.hostPath('/proc'))) {
      if (!/^\d+$/.test(name)) continue;
      const t: TaskLoc = { tgid: Number(name), tid: Number(name), dir: `/proc/${name}/task/${name}` };
      if (/^kworker\/u\d+:\d+/.test(this.taskComm(t))) this.storeAffinity(t, set);
    }
  }

  private governorWrite(sys: string, value: string, path: string): void {
    const gov = value.trim().split(/\s+/)[0] ?? '';
    const dir = nodePath.posix.dirname(sys);
    const avail = (this.readOpt(`${dir}/scaling_available_governors`) ?? '').trim().split(/\s+/);
    if (gov === '' || !avail.includes(gov)) throw err('EINVAL', 'write', path);
    this.writeSys(sys, `${gov}\n`);
  }

  // ---- cgroup attach (cgroup.procs, tasks)

  private attach(h: Hierarchy, dir: string, value: string, threadgroup: boolean, path: string): void {
    const id0 = parseKernelInt(value);
    if (id0 === undefined || id0 < 0) throw err('EINVAL', 'write', path);
    let id = id0;
    if (id === 0) {
      const self = Number(this.readOpt('/proc/self/stat')?.split(' ')[0] ?? NaN);
      if (!Number.isSafeInteger(self)) throw err('ESRCH', 'write', path);
      id = self;
    }
    let t: TaskLoc;
    try {
      t = this.task(id, 'write');
    } catch {
      throw err('ESRCH', 'write', path);
    }
    const leader: TaskLoc = threadgroup
      ? { tgid: t.tgid, tid: t.tgid, dir: `/proc/${t.tgid}/task/${t.tgid}` }
      : t;
    if ((this.taskFlags(leader) & PF_NO_SETAFFINITY) !== 0) throw err('EINVAL', 'write', path);
    const isRoot = dir === h.mount;
    if (h.version === 2 && !isRoot) {
      const st = (this.readOpt(`${dir}/cgroup.subtree_control`) ?? '').split(/\s+/).filter(Boolean);
      if (st.some((c) => !V2_THREADED.has(c))) throw err('EBUSY', 'write', path);
    }
    const cpuset = this.hasCpuset(h);
    let eff: CpuSet | undefined;
    if (cpuset) {
      if (h.version === 1) {
        if (
          !isRoot &&
          (this.listSet(`${dir}/cpuset.cpus`).isEmpty || this.listSet(`${dir}/cpuset.mems`).isEmpty)
        ) {
          throw err('ENOSPC', 'write', path);
        }
        // Attaching to the top cpuset gives the task every possible CPU again (cpuset_attach uses
        // task_cpu_possible_mask for top_cpuset), as a task that never left it has.
        eff = isRoot ? this.possible() : this.listSet(`${dir}/cpuset.cpus`);
      } else {
        eff = this.v2GoverningEffective(h, dir);
        if (eff.isEmpty) throw err('ENOSPC', 'write', path);
      }
    }
    const tids = threadgroup ? this.threadsOf(t.tgid) : [t.tid];
    if (h.version === 2) {
      const old = this.procCgroupDir(h, t.tgid);
      if (old !== dir) {
        const sources =
          old !== undefined && this.existsSys(`${old}/cgroup.procs`) ? [old] : this.walk(h.mount);
        for (const src of sources) {
          if (src === dir) continue;
          const ids = parseIds(this.readOpt(`${src}/cgroup.procs`) ?? '');
          if (ids.includes(t.tgid))
            this.writeSys(`${src}/cgroup.procs`, idsText(ids.filter((x) => x !== t.tgid)));
        }
        const dest = parseIds(this.readOpt(`${dir}/cgroup.procs`) ?? '');
        if (!dest.includes(t.tgid)) this.writeSys(`${dir}/cgroup.procs`, idsText([...dest, t.tgid]));
        this.setProcCgroup(h, t.tgid, dir);
      }
    } else {
      const moving = new Set(tids);
      const touched: string[] = [];
      for (const src of this.walk(h.mount)) {
        if (src === dir) continue;
        const ids = parseIds(this.readOpt(`${src}/tasks`) ?? '');
        if (!ids.some((x) => moving.has(x))) continue;
        const left = ids.filter((x) => !moving.has(x));
        this.writeSys(`${src}/tasks`, idsText(left));
        touched.push(src);
        const groupLeft = this.threadsOf(t.tgid).some((x) => left.includes(x));
        if (!groupLeft) {
          const procs = parseIds(this.readOpt(`${src}/cgroup.procs`) ?? '');
          if (procs.includes(t.tgid))
            this.writeSys(`${src}/cgroup.procs`, idsText(procs.filter((x) => x !== t.tgid)));
        }
      }
      const dest = parseIds(this.readOpt(`${dir}/tasks`) ?? '');
      const add = tids.filter((x) => !dest.includes(x));
      if (add.length > 0) this.writeSys(`${dir}/tasks`, idsText([...dest, ...add]));
      const destProcs = parseIds(this.readOpt(`${dir}/cgroup.procs`) ?? '');
      if (!destProcs.includes(t.tgid)) this.writeSys(`${dir}/cgroup.procs`, idsText([...destProcs, t.tgid]));
      if (tids.includes(t.tgid)) this.setProcCgroup(h, t.tgid, dir);
    }
    if (eff) {
      for (const tid of tids)
        this.applyCpuset({ tgid: t.tgid, tid, dir: `/proc/${t.tgid}/task/${tid}` }, eff);
    }
  }

  /** The v1 cgroup whose `tasks` lists a thread id. */
  private v1TaskCgroup(h: Hierarchy, tid: number): string | undefined {
    for (const dir of this.walk(h.mount)) {
      if (parseIds(this.readOpt(`${dir}/tasks`) ?? '').includes(tid)) return dir;
    }
    return undefined;
  }

  // ---- cgroup v2

  private v2Write(h: Hierarchy, dir: string, file: string, value: string, path: string): void {
    switch (file) {
      case 'cgroup.procs':
        return this.attach(h, dir, value, true, path);
      case 'cgroup.subtree_control':
        return this.v2SubtreeControl(h, dir, value, path);
      case 'cpuset.cpus':
        return this.v2SetCpus(h, dir, value, path);
      case 'cpuset.mems':
        return this.v2SetMems(h, dir, value, path);
      case 'cpuset.cpus.partition':
        return this.v2SetPartition(h, dir, value, path);
      case 'cpuset.cpus.exclusive':
        return this.v2SetExclusive(h, dir, value, path);
      case 'cgroup.controllers':
      case 'cgroup.events':
      case 'cgroup.stat':
      case 'cpuset.cpus.effective':
      case 'cpuset.mems.effective':
      case 'cpuset.cpus.exclusive.effective':
      case 'cpuset.cpus.isolated':
        throw err('EACCES', 'write', path);
      default:
        return this.plainWrite(`${dir}/${file}`, value, path);
    }
  }

  private words(sys: string): string[] {
    return (this.readOpt(sys) ?? '').split(/\s+/).filter(Boolean);
  }

  private v2SubtreeControl(h: Hierarchy, dir: string, value: string, path: string): void {
    const enable = new Set<string>();
    const disable = new Set<string>();
    for (const tok of value.split(/\s+/).filter(Boolean)) {
      const name = tok.slice(1);
      if ((tok[0] !== '+' && tok[0] !== '-') || !V2_CONTROLLERS.includes(name))
        throw err('EINVAL', 'write', path);
      if (tok[0] === '+') {
        enable.add(name);
        disable.delete(name);
      } else {
        disable.add(name);
        enable.delete(name);
      }
    }
    const current = this.words(`${dir}/cgroup.subtree_control`);
    const available = this.words(`${dir}/cgroup.controllers`);
    const children = this.subdirs(dir).map((c) => `${dir}/${c}`);
    for (const c of [...enable]) {
      if (current.includes(c)) enable.delete(c);
      else if (!available.includes(c)) throw err('ENOENT', 'write', path);
    }
    for (const c of [...disable]) {
      if (!current.includes(c)) disable.delete(c);
      else if (children.some((ch) => this.words(`${ch}/cgroup.subtree_control`).includes(c))) {
        throw err('EBUSY', 'write', path);
      }
    }
    const isRoot = dir === h.mount;
    if (!isRoot && [...enable].some((c) => !V2_THREADED.has(c))) {
      if (parseIds(this.readOpt(`${dir}/cgroup.procs`) ?? '').length > 0) throw err('EBUSY', 'write', path);
    }
    if (enable.size === 0 && disable.size === 0) return;
    const next = V2_CONTROLLERS.filter((c) => (current.includes(c) || enable.has(c)) && !disable.has(c));
    this.writeSys(`${dir}/cgroup.subtree_control`, `${next.join(' ')}\n`);
    for (const ch of children) {
      this.writeSys(`${ch}/cgroup.controllers`, `${next.join(' ')}\n`);
      if (enable.has('cpuset')) this.createV2CpusetFiles(ch);
      if (disable.has('cpuset')) this.removeV2CpusetFiles(ch);
    }
    if (enable.has('cpuset') || disable.has('cpuset')) this.v2Recompute(h);
    // Disabling the controller moves the subtree's tasks to this cgroup's cpuset (css migration → cpuset_attach):
    // they get its effective CPUs.
    if (disable.has('cpuset')) {
      const eff = this.v2GoverningEffective(h, dir);
      for (const ch of children)
        for (const d of this.walk(ch))
          for (const pid of parseIds(this.readOpt(`${d}/cgroup.procs`) ?? ''))
            for (const tid of this.threadsOf(pid)) {
              const t: TaskLoc = { tgid: pid, tid, dir: `/proc/${pid}/task/${tid}` };
              if (this.existsSys(`${t.dir}/stat`)) this.applyCpuset(t, eff);
            }
    }
  }

  private createV2CpusetFiles(dir: string): void {
    const files: [string, string][] = [
      ['cpuset.cpus', '\n'],
      ['cpuset.mems', '\n'],
      ['cpuset.cpus.effective', '\n'],
      ['cpuset.mems.effective', '\n'],
      ['cpuset.cpus.partition', 'member\n'],
    ];
    if (this.atLeast(6, 7))
      files.push(['cpuset.cpus.exclusive', '\n'], ['cpuset.cpus.exclusive.effective', '\n']);
    for (const [f, v] of files) if (!this.existsSys(`${dir}/${f}`)) this.writeSys(`${dir}/${f}`, v);
  }

  private removeV2CpusetFiles(dir: string): void {
    for (const f of fs.readdirSync(this.hostPath(dir))) {
      if (f.startsWith('cpuset.')) fs.rmSync(this.hostPath(`${dir}/${f}`), { force: true });
    }
  }

  private v2SetCpus(h: Hierarchy, dir: string, value: string, path: string): void {
    const set = this.parseListOr('EINVAL', value, 'write', path);
    if (!set.isSubsetOf(this.possible())) throw err('EINVAL', 'write', path);
    this.v2RefuseEmptying(dir, 'cpuset.cpus', set, path);
    this.writeSys(`${dir}/cpuset.cpus`, `${set.toList()}\n`);
    this.v2Recompute(h);
  }

  /**
   * validate_change(): a populated cpuset (tasks anywhere in its subtree) cannot go from a configured list back to
   * empty - on v2 too, where empty would mean "inherit" (ENOSPC, seen on 6.12).
   */
  private v2RefuseEmptying(dir: string, file: string, set: CpuSet, path: string): void {
    if (!set.isEmpty || this.listSet(`${dir}/${file}`).isEmpty) return;
    const populated = this.walk(dir).some(
      (d) => parseIds(this.readOpt(`${d}/cgroup.procs`) ?? '').length > 0,
    );
    if (populated) throw err('ENOSPC', 'write', path);
  }

  private v2SetMems(h: Hierarchy, dir: string, value: string, path: string): void {
    const set = this.parseListOr('EINVAL', value, 'write', path);
    const nodes = this.listSet('/sys/devices/system/node/possible');
    if (!set.isSubsetOf(nodes.isEmpty ? this.memNodes() : nodes)) throw err('EINVAL', 'write', path);
    this.v2RefuseEmptying(dir, 'cpuset.mems', set, path);
    this.writeSys(`${dir}/cpuset.mems`, `${set.toList()}\n`);
    this.v2Recompute(h);
  }

  private v2SetPartition(h: Hierarchy, dir: string, value: string, path: string): void {
    const mode = value.trim();
    const ok = mode === 'member' || mode === 'root' || (mode === 'isolated' && this.atLeast(6, 1));
    if (!ok) throw err('EINVAL', 'write', path);
    this.writeSys(`${dir}/cpuset.cpus.partition`, `${mode}\n`);
    this.v2Recompute(h);
  }

  private v2SetExclusive(h: Hierarchy, dir: string, value: string, path: string): void {
    const set = this.parseListOr('EINVAL', value, 'write', path);
    if (!set.isEmpty) {
      const parent = nodePath.posix.dirname(dir);
      let pool: CpuSet;
      if (parent === h.mount || dir === h.mount) pool = this.possible();
      else {
        const pex = this.listSet(`${parent}/cpuset.cpus.exclusive`);
        const pcpus = this.listSet(`${parent}/cpuset.cpus`);
        pool = !pex.isEmpty ? pex : !pcpus.isEmpty ? pcpus : this.listSet(`${parent}/cpuset.cpus.effective`);
      }
      if (!set.isSubsetOf(pool)) throw err('EINVAL', 'write', path);
      for (const s of this.subdirs(parent)) {
        const sib = `${parent}/${s}`;
        if (sib === dir) continue;
        if (this.listSet(`${sib}/cpuset.cpus.exclusive`).overlaps(set)) throw err('EINVAL', 'write', path);
      }
    }
    this.writeSys(`${dir}/cpuset.cpus.exclusive`, `${set.toList()}\n`);
    this.v2Recompute(h);
  }

  /** Effective CPUs of the nearest cgroup at or above `dir` that has cpuset files. */
  private v2GoverningEffective(h: Hierarchy, dir: string): CpuSet {
    let d = dir;
    for (;;) {
      const t = this.readOpt(`${d}/cpuset.cpus.effective`);
      if (t !== undefined) return CpuSet.parseList(t);
      if (d === h.mount || d.length <= h.mount.length) return this.online();
      d = nodePath.posix.dirname(d);
    }
  }

  /**
   * Recompute every derived cpuset file of a v2 hierarchy from the configured ones (cpuset.cpus, .mems,
   * .cpus.exclusive, .cpus.partition) top-down, then re-apply the effective CPUs to the tasks of every cgroup
   * whose effective CPUs changed.
   */
  private v2Recompute(h: Hierarchy): void {
    if (!this.existsSys(`${h.mount}/cpuset.cpus.effective`)) return;
    const isolated: number[] = [];
    const changed: [string, CpuSet][] = [];
    const hasExclusive = this.atLeast(6, 7);

    const plain = (dir: string, gov: CpuSet, dirty: boolean): void => {
      if (dirty) changed.push([dir, gov]);
      for (const c of this.subdirs(dir)) plain(`${dir}/${c}`, gov, dirty);
    };

    const visit = (
      dir: string,
      eff: CpuSet,
      mems: CpuSet,
      partRoot: boolean,
      parentInvalid: boolean,
    ): void => {
      interface Child {
        dir: string;
        has: boolean;
        cpus: CpuSet;
        mems: CpuSet;
        excl: CpuSet;
        mode: string;
        claim: CpuSet;
        valid: boolean;
        reason?: string;
      }
      const kids: Child[] = this.subdirs(dir).map((name) => {
        const d = `${dir}/${name}`;
        const has = this.existsSys(`${d}/cpuset.cpus`);
        const cpus = has ? this.listSet(`${d}/cpuset.cpus`) : CpuSet.EMPTY;
        const excl = has ? this.listSet(`${d}/cpuset.cpus.exclusive`) : CpuSet.EMPTY;
        const mode = has
          ? ((this.readOpt(`${d}/cpuset.cpus.partition`) ?? 'member').trim().split(/\s+/)[0] ?? 'member')
          : 'member';
        return {
          dir: d,
          has,
          cpus,
          mems: has ? this.listSet(`${d}/cpuset.mems`) : CpuSet.EMPTY,
          excl,
          mode,
          claim: excl.isEmpty ? cpus : excl,
          valid: false,
        };
      });
      let avail = eff;
      for (const k of kids) {
        if (!k.has || k.mode === 'member') continue;
        const r = remote.get(k.dir);
        if (r) {
          k.valid = true;
          k.claim = r;
          continue;
        }
        let reason: string | undefined;
        if (!partRoot)
          reason = parentInvalid ? 'Parent is an invalid partition root' : 'Parent is not a partition root';
        else if (k.claim.isEmpty) {
          reason = hasExclusive ? 'cpuset.cpus and cpuset.cpus.exclusive are empty' : 'cpuset.cpus is empty';
        } else if (!k.claim.isSubsetOf(eff)) reason = 'Invalid cpu list in cpuset.cpus.exclusive';
        else if (kids.some((o) => o !== k && o.has && o.claim.overlaps(k.claim))) {
          reason = 'Cpu list in cpuset.cpus not exclusive';
        } else if (avail.minus(k.claim).isEmpty) reason = 'Parent unable to distribute cpu downstream';
        if (reason === undefined) {
          k.valid = true;
          avail = avail.minus(k.claim);
          if (k.mode === 'isolated') isolated.push(...k.claim);
        } else k.reason = reason;
      }
      const effChanged = this.updateSys(`${dir}/cpuset.cpus.effective`, `${avail.toList()}\n`);
      this.updateSys(`${dir}/cpuset.mems.effective`, `${mems.toList()}\n`);
      if (effChanged) changed.push([dir, avail]);
      for (const k of kids) {
        if (!k.has) {
          plain(k.dir, avail, effChanged);
          continue;
        }
        const inter = k.cpus.intersect(avail);
        const childEff = k.valid ? k.claim : inter.isEmpty ? avail : inter;
        const memInter = k.mems.intersect(mems);
        const childMems = memInter.isEmpty ? mems : memInter;
        const text = k.mode === 'member' ? 'member' : k.valid ? k.mode : `${k.mode} invalid (${k.reason})`;
        this.updateSys(`${k.dir}/cpuset.cpus.partition`, `${text}\n`);
        if (this.existsSys(`${k.dir}/cpuset.cpus.exclusive.effective`)) {
          const xeff = k.valid ? k.claim : k.excl.intersect(eff);
          this.updateSys(`${k.dir}/cpuset.cpus.exclusive.effective`, `${xeff.toList()}\n`);
        }
        visit(k.dir, childEff, childMems, k.valid, k.mode !== 'member' && !k.valid);
      }
    };

    // Remote partitions (>= 6.7): a partition whose parent is not a partition root is valid when every
    // ancestor below the root lends its CPUs in cpuset.cpus.exclusive; its CPUs then leave every other cgroup.
    const remote = new Map<string, CpuSet>();
    const remoteIsolated: CpuSet[] = [];
    if (hasExclusive) {
      let taken = CpuSet.EMPTY;
      const walk = (dir: string, lent: CpuSet | undefined, parentIsRoot: boolean): void => {
        for (const name of this.subdirs(dir)) {
          const d = `${dir}/${name}`;
          if (!this.existsSys(`${d}/cpuset.cpus`)) continue;
          const excl = this.listSet(`${d}/cpuset.cpus.exclusive`);
          const mode = (this.readOpt(`${d}/cpuset.cpus.partition`) ?? 'member').trim().split(/\s+/)[0];
          if (!parentIsRoot && mode !== 'member' && lent !== undefined && !excl.isEmpty) {
            if (
              excl.isSubsetOf(lent) &&
              !excl.overlaps(taken) &&
              !this.online().minus(taken).minus(excl).isEmpty
            ) {
              remote.set(d, excl);
              if (mode === 'isolated') remoteIsolated.push(excl);
              taken = taken.union(excl);
            }
            continue;
          }
          // what this cgroup lends further down: its exclusive CPUs, within what its ancestors lend
          const next = excl.isEmpty
            ? undefined
            : lent === undefined
              ? parentIsRoot
                ? excl
                : undefined
              : excl.intersect(lent);
          walk(d, next, false);
        }
      };
      walk(h.mount, undefined, true);
      for (const cpus of remoteIsolated) isolated.push(...cpus);
    }
    const remoteCpus = CpuSet.of([...remote.values()].flatMap((c) => [...c]));
    visit(h.mount, this.online().minus(remoteCpus), this.memNodes(), true, false);
    if (this.existsSys(`${h.mount}/cpuset.cpus.isolated`)) {
      this.updateSys(`${h.mount}/cpuset.cpus.isolated`, `${CpuSet.of(isolated).toList()}\n`);
    }
    for (const [dir, eff] of changed) {
      const isRoot = dir === h.mount;
      for (const pid of parseIds(this.readOpt(`${dir}/cgroup.procs`) ?? '')) {
        for (const tid of this.threadsOf(pid)) {
          const t: TaskLoc = { tgid: pid, tid, dir: `/proc/${pid}/task/${tid}` };
          if (!this.existsSys(`${t.dir}/stat`)) continue;
          const flags = this.taskFlags(t);
          if (
            isRoot &&
            (flags & PF_KTHREAD) !== 0 &&
            (flags & PF_NO_SETAFFINITY) !== 0 &&
            PER_CPU_KTHREAD.test(this.taskComm(t))
          ) {
            continue;
          }
          this.applyCpuset(t, eff);
        }
      }
    }
  }

  // ---- cgroup v1

  private v1Write(h: Hierarchy, dir: string, file: string, value: string, path: string): void {
    if (file === 'tasks') return this.attach(h, dir, value, false, path);
    if (file === 'cgroup.procs') return this.attach(h, dir, value, true, path);
    const cpuset = h.controllers.includes('cpuset');
    if (cpuset && (file === 'cpuset.cpus' || file === 'cpuset.mems'))
      return this.v1SetCpusMems(h, dir, file, value, path);
    if (
      cpuset &&
      (file === 'cpuset.effective_cpus' ||
        file === 'cpuset.effective_mems' ||
        file === 'cpuset.memory_pressure')
    ) {
      throw err('EACCES', 'write', path);
    }
    if (V1_FLAG_FILES.has(file) && (cpuset || !file.startsWith('cpuset.'))) {
      const n = parseKernelInt(value);
      if (n === undefined) throw err('EINVAL', 'write', path);
      if (file === 'cpuset.cpu_exclusive' || file === 'cpuset.mem_exclusive') {
        const trial = this.v1State(dir);
        if (file === 'cpuset.cpu_exclusive') trial.cpuExcl = n !== 0;
        else trial.memExcl = n !== 0;
        this.v1Validate(h, dir, trial, path);
      }
      return this.writeSys(`${dir}/${file}`, n !== 0 ? '1\n' : '0\n');
    }
    return this.plainWrite(`${dir}/${file}`, value, path);
  }

  private v1State(dir: string): V1State {
    return {
      cpus: this.listSet(`${dir}/cpuset.cpus`),
      mems: this.listSet(`${dir}/cpuset.mems`),
      cpuExcl: (this.readOpt(`${dir}/cpuset.cpu_exclusive`) ?? '0').trim() === '1',
      memExcl: (this.readOpt(`${dir}/cpuset.mem_exclusive`) ?? '0').trim() === '1',
    };
  }

  private static v1Subset(p: V1State, q: V1State): boolean {
    return (
      p.cpus.isSubsetOf(q.cpus) &&
      p.mems.isSubsetOf(q.mems) &&
      (!p.cpuExcl || q.cpuExcl) &&
      (!p.memExcl || q.memExcl)
    );
  }

  /** The kernel's validate_change for legacy cpusets. */
  private v1Validate(h: Hierarchy, dir: string, trial: V1State, path: string): void {
    for (const c of this.subdirs(dir)) {
      if (!SimFs.v1Subset(this.v1State(`${dir}/${c}`), trial)) throw err('EBUSY', 'write', path);
    }
    if (dir === h.mount) return;
    const parent = nodePath.posix.dirname(dir);
    if (!SimFs.v1Subset(trial, this.v1State(parent))) throw err('EACCES', 'write', path);
    for (const s of this.subdirs(parent)) {
      const sib = `${parent}/${s}`;
      if (sib === dir) continue;
      const o = this.v1State(sib);
      if ((trial.cpuExcl || o.cpuExcl) && trial.cpus.overlaps(o.cpus)) throw err('EINVAL', 'write', path);
      if ((trial.memExcl || o.memExcl) && trial.mems.overlaps(o.mems)) throw err('EINVAL', 'write', path);
    }
    const cur = this.v1State(dir);
    if (parseIds(this.readOpt(`${dir}/tasks`) ?? '').length > 0) {
      if ((!cur.cpus.isEmpty && trial.cpus.isEmpty) || (!cur.mems.isEmpty && trial.mems.isEmpty)) {
        throw err('ENOSPC', 'write', path);
      }
    }
  }

  private v1SetCpusMems(h: Hierarchy, dir: string, file: string, value: string, path: string): void {
    if (dir === h.mount) throw err('EACCES', 'write', path);
    const set = this.parseListOr('EINVAL', value, 'write', path);
    const isCpus = file === 'cpuset.cpus';
    if (isCpus && !set.isSubsetOf(this.online())) throw err('EINVAL', 'write', path);
    if (!isCpus && !set.isSubsetOf(this.memNodes())) throw err('EINVAL', 'write', path);
    const trial = this.v1State(dir);
    if (isCpus) trial.cpus = set;
    else trial.mems = set;
    this.v1Validate(h, dir, trial, path);
    const effFile = isCpus ? 'cpuset.effective_cpus' : 'cpuset.effective_mems';
    const before = this.listSet(`${dir}/${file}`);
    this.writeSys(`${dir}/${file}`, `${set.toList()}\n`);
    if (this.existsSys(`${dir}/${effFile}`)) this.writeSys(`${dir}/${effFile}`, `${set.toList()}\n`);
    if (isCpus && !before.equals(set)) {
      for (const tid of parseIds(this.readOpt(`${dir}/tasks`) ?? '')) {
        let t: TaskLoc;
        try {
          t = this.task(tid, 'write');
        } catch {
          continue;
        }
        this.applyCpuset(t, set);
      }
    }
  }

  // ------------------------------------------------------------------------------------------------ mkdir/rmdir

  private splitParent(path: string, op: string): { parent: string; name: string } {
    const trimmed = path.replace(/\/+$/, '');
    const idx = trimmed.lastIndexOf('/');
    const name = trimmed.slice(idx + 1);
    if (name === '' || name === '.' || name === '..')
      throw err(op === 'mkdir' ? 'EEXIST' : 'EBUSY', op, path);
    if (name.startsWith('.sim-')) throw err('EPERM', op, path);
    const parent = this.resolve(idx <= 0 ? '/' : trimmed.slice(0, idx), op);
    if (!fs.statSync(this.hostPath(parent)).isDirectory()) throw err('ENOTDIR', op, path);
    return { parent, name };
  }

  private doMkdir(path: string): void {
    const { parent, name } = this.splitParent(path, 'mkdir');
    const sys = parent === '/' ? `/${name}` : `${parent}/${name}`;
    try {
      fs.lstatSync(this.hostPath(sys));
      throw err('EEXIST', 'mkdir', path);
    } catch (e) {
      if (e instanceof ErrnoError) throw e;
    }
    const h = this.hierarchyOf(sys);
    fs.mkdirSync(this.hostPath(sys));
    if (!h) return;
    this.writeSys(`${sys}/cgroup.procs`, '');
    if (h.version === 2) {
      const st = this.readOpt(`${parent}/cgroup.subtree_control`) ?? '\n';
      this.writeSys(`${sys}/cgroup.controllers`, st.endsWith('\n') ? st : `${st}\n`);
      this.writeSys(`${sys}/cgroup.subtree_control`, '\n');
      this.writeSys(`${sys}/cgroup.type`, 'domain\n');
      if (this.words(`${parent}/cgroup.subtree_control`).includes('cpuset')) {
        this.createV2CpusetFiles(sys);
        this.v2Recompute(h);
      }
      return;
    }
    this.writeSys(`${sys}/tasks`, '');
    this.writeSys(`${sys}/cgroup.clone_children`, this.readOpt(`${parent}/cgroup.clone_children`) ?? '0\n');
    this.writeSys(`${sys}/notify_on_release`, '0\n');
    if (!h.controllers.includes('cpuset')) return;
    const clone = (this.readOpt(`${parent}/cgroup.clone_children`) ?? '0').trim() === '1';
    const cpus = clone ? this.listSet(`${parent}/cpuset.cpus`).toList() : '';
    const mems = clone ? this.listSet(`${parent}/cpuset.mems`).toList() : '';
    const files: [string, string][] = [
      ['cpuset.cpus', cpus],
      ['cpuset.mems', mems],
      ['cpuset.effective_cpus', cpus],
      ['cpuset.effective_mems', mems],
      ['cpuset.cpu_exclusive', '0'],
      ['cpuset.mem_exclusive', '0'],
      ['cpuset.mem_hardwall', '0'],
      ['cpuset.memory_migrate', '0'],
      ['cpuset.memory_pressure', '0'],
      ['cpuset.sched_load_balance', '1'],
      ['cpuset.sched_relax_domain_level', '-1'],
    ];
    for (const [f, v] of files) this.writeSys(`${sys}/${f}`, `${v}\n`);
  }

  private doRmdir(path: string): void {
    const { parent, name } = this.splitParent(path, 'rmdir');
    const sys = parent === '/' ? `/${name}` : `${parent}/${name}`;
    let st: fs.Stats;
    try {
      st = fs.lstatSync(this.hostPath(sys));
    } catch {
      throw err('ENOENT', 'rmdir', path);
    }
    if (!st.isDirectory()) throw err('ENOTDIR', 'rmdir', path);
    const h = this.hierarchyOf(sys);
    if (!h) {
      try {
        fs.rmdirSync(this.hostPath(sys));
      } catch (e) {
        throw err((e as NodeJS.ErrnoException).code ?? 'EIO', 'rmdir', path);
      }
      return;
    }
    if (sys === h.mount) throw err('EBUSY', 'rmdir', path);
    if (this.subdirs(sys).length > 0) throw err('EBUSY', 'rmdir', path);
    const members = parseIds(this.readOpt(`${sys}/${h.version === 1 ? 'tasks' : 'cgroup.procs'}`) ?? '');
    if (members.length > 0) throw err('EBUSY', 'rmdir', path);
    fs.rmSync(this.hostPath(sys), { recursive: true, force: true });
    if (h.version === 2) this.v2Recompute(h);
  }
}
