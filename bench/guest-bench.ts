/**
 * The kernel-touching benchmarks, run INSIDE the throw-away test guest only (bench/guest.ts boots it). Refuses to
 * run anywhere else: it writes cgroups, IRQ affinities and /proc/sys/vm. Everything is timed inside this one
 * process (Node's start-up under TCG, ~2 s, is not part of any figure); the tool runs in-process through runCli.
 *
 * Input: env BENCH_SPEC (JSON, see Spec). Output: progress on stderr, and one line `BENCH_RESULT {json}` on stdout.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runCli } from '../src/cli/run.ts';
import { COMMANDS } from '../src/cli/table.ts';
import { irqTarget } from '../src/commands/irq-affinity.ts';
import { CpuSet } from '../src/cpus/cpuset.ts';
import type { Writer } from '../src/kernel/fs.ts';
import { Kernel } from '../src/kernel/kernel.ts';
import { RealFs } from '../src/kernel/realfs.ts';
import { parseStat } from '../src/kernel/procs.ts';
import { writeIds } from '../src/kernel/tasks.ts';
import { loadRawWrite } from '../src/kernel/libc-write.ts';
import { loadSched } from '../src/kernel/sched.ts';
import { guestMode, seedHook } from '../test/vm/guest/guest-env.ts';

export interface Spec {
  /** Task counts for move-tasks (ascending). */
  sizes: number[];
  /** Timed repetitions per size (after one warm-up of each). */
  reps: number;
  parts: ('move' | 'diag' | 'irq' | 'cycle' | 'cold')[];
  /** Skip a size whose projected single run of the tool exceeds this (quadratic growth assumed). */
  budgetSec: number;
  irqReps: number;
  cycleReps: number;
  /**
   * `--baseline REV`: the tool of another revision, bundled (bench/guest.ts) into a module exporting runCli and
   * COMMANDS (a path the guest sees); its isolate/release pairs alternate with ours in the cycle part.
   */
  baseline?: { rev: string; bundle: string; coldEntry?: string };
  /** The cold part: the product built like dist/ (bench/guest.ts), its entry as a path the guest sees. */
  coldEntry?: string;
  coldReps: number;
}

/** One timed run of the tool: wall time in ms and its phase timings (VFIO_ISOLATE_TIMINGS). */
export interface ToolRun {
  ms: number;
  phases: Record<string, number>;
}

export interface MoveSize {
  size: number;
  tasks: number;
  /** Bare loop: read the list, one open fd on the destination, one write per id. */
  bare: number[];
  /** move-tasks with -u (journal written and fsynced before the moves). */
  ours: ToolRun[];
  /** move-tasks without -u (records kept in memory). */
  oursNoJournal: ToolRun[];
  /** The baseline revision's move-tasks with -u (spec.baseline), in the same rotation. */
  base?: ToolRun[];
  /**
   * Kernels before 6.2 only (attach replaces every thread's mask there): the bare loop plus one sched_getaffinity
   * per thread of the listed tasks (v2: from the source's cgroup.threads), the least a tool that gives masks back
   * must read. In the same rotation.
   */
  bareMasks?: number[];
  skipped?: string;
  /** 'root': the seed's `move-tasks / DST` (the root's own tasks and kernel threads plus the bench tasks). */
  source?: 'root';
}

export interface Diag {
  tasks: number;
  /** µs per task for each single operation, second (warm) pass over every task. */
  perTaskUs: Record<string, number>;
}

export interface IrqResult {
  irqs: number;
  changed: number;
  bare: number[];
  ours: ToolRun[];
  /** Restore of the masking: bare (read the saved old values, write each back) and `restore F`. */
  restoreBare?: number[];
  restore?: ToolRun[];
  /**
   * The bare loops plus what a tool that is exclusive and crash-safe must add, in the same rotation (bareIrqMask's
   * `safe`, bareIrqRestoreSafe): the floor of the tool's design, which separates its own cost from the kernel's.
   */
  bareSafe?: number[];
  restoreBareSafe?: number[];
  /**
   * "bare + safety" plus the system calls of the checks other issues ask of every run, with no logic around them:
   * the trust walks of the journal and of the lock's directory, the boot id, and for the restore the registry
   * lookup; the restore reads each value and writes it back through one descriptor. The floor of any tool that keeps
   * those guarantees, on this kernel.
   */
  bareChecked?: number[];
  restoreBareChecked?: number[];
}

export interface CycleResult {
  hookArgv: string[];
  hookBare: number[];
  hook: ToolRun[];
  restoreBare: number[];
  restore: ToolRun[];
  isolate: ToolRun[];
  release: ToolRun[];
  /** The same pairs by the baseline revision's tool (spec.baseline), alternating with ours. */
  baseline?: { rev: string; isolate: ToolRun[]; release: ToolRun[] };
  notes: string[];
}

/**
 * Fresh processes, as a libvirt hook runs the tool: each figure is one node process's time from the wrapper's first
 * line (just before it imports the entry) to its exit, so node's own start-up is apart (`boot`). Loading the
 * command's modules, compiling them and running them once is all inside.
 */
export interface ColdResult {
  irqs: number;
  changed: number;
  /** node's own start-up: the wrapper's first line, ms after the process began, every run. */
  boot: number[];
  /** An empty module imported the same way: the floor of any fresh process. */
  empty: number[];
  /** The bare loops as a module of their own: read every IRQ's list, write the changing ones; write the old values back. */
  bareMask: number[];
  bareRestore: number[];
  /**
   * `-u J irq-affinity mask C4-7` then `restore J`, and `isolate C4-7` then `release` (what the libvirt hook runs, its
   * default journal), by ours and by the baseline revision's build (spec.baseline).
   */
  tools: { name: string; mask: number[]; restore: number[]; isolate: number[]; release: number[] }[];
}

export interface GuestBenchResult {
  mode: string;
  kernel: string;
  cpus: string;
  memMiB: number;
  taskFile: string;
  /** The revision of --baseline, when given. */
  baselineRev?: string;
  move: MoveSize[];
  diag?: Diag;
  irq?: IrqResult;
  cycle?: CycleResult;
  cold?: ColdResult;
  errors: string[];
}

const mode = guestMode();
if (!mode) {
  process.stderr.write('guest-bench: not inside a vfio-isolate test guest; refusing to touch kernel state\n');
  process.exit(2);
}
const spec: Spec = {
  sizes: [1000],
  reps: 3,
  parts: ['move', 'diag', 'irq', 'cycle'],
  budgetSec: 60,
  irqReps: 15,
  cycleReps: 3,
  coldReps: 7,
  ...(JSON.parse(process.env.BENCH_SPEC ?? '{}') as Partial<Spec>),
};
const v1 = mode === 'v1-hybrid';
const CG = v1 ? '/sys/fs/cgroup/cpuset' : '/sys/fs/cgroup';
const TASK_FILE = v1 ? 'tasks' : 'cgroup.procs';
const SRC = `${CG}/bench-src`;
const DST = `${CG}/bench-dst`;
const WORK = '/run/vfio-bench';
fs.mkdirSync(WORK, { recursive: true });

const log = (s: string): void => void process.stderr.write(`[guest-bench ${mode}] ${s}\n`);
const now = (): number => performance.now();
const read = (p: string): string => fs.readFileSync(p, 'utf8');
const readTrim = (p: string): string => read(p).trim();

function ids(file: string): number[] {
  const out: number[] = [];
  for (const l of read(file).split('\n')) {
    const n = Number.parseInt(l, 10);
    if (Number.isFinite(n)) out.push(n);
  }
  return out;
}

/** One write(2) of `value` to an existing file; errors (EIO for managed IRQs, ...) are returned, not thrown. */
function put(path: string, value: string): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(path, fs.constants.O_WRONLY);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? 'EIO';
  }
  try {
    fs.writeSync(fd, value);
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? 'EIO';
  } finally {
    fs.closeSync(fd);
  }
}

/** Whether the guest's kernel replaces a thread's mask on a cpuset attach (before 6.2). */
const attachResetsMasks = ((): boolean => {
  const m = /^(\d+)\.(\d+)/.exec(readTrim('/proc/sys/kernel/osrelease'));
  const [a, b] = [Number(m?.[1] ?? 0), Number(m?.[2] ?? 0)];
  return a < 6 || (a === 6 && b < 2);
})();

/**
 * The minimum any tool must do: read the source list, hold one fd open on the destination, write each id once.
 * `masks`: also what an exact tool must read on a kernel before 6.2, one sched_getaffinity per thread behind the
 * list (the tasks file lists threads; on v2 the threads are the source's cgroup.threads), before the writes.
 */
function bareMove(from: string, to: string, opts: { masks?: boolean } = {}): { ms: number; moved: number } {
  const sched = opts.masks ? loadSched() : undefined;
  const t0 = now();
  const list = ids(`${from}/${TASK_FILE}`);
  if (sched)
    for (const tid of v1 ? list : ids(`${from}/cgroup.threads`)) {
      try {
        sched.getAffinity(tid);
      } catch {
        /* gone */
      }
    }
  const fd = fs.openSync(`${to}/${TASK_FILE}`, fs.constants.O_WRONLY);
  let moved = 0;
  try {
    for (const id of list) {
      try {
        fs.writeSync(fd, String(id));
        moved++;
      } catch {
        /* exited, or a kernel thread that cannot move */
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return { ms: now() - t0, moved };
}

/**
 * Before each isolate/release pair: the journals the last pair left (every one restored) are removed, so that each
 * tool starts from an empty /run/vfio-isolate (the lock stays). Another revision's tool need not read this one's
 * journals: afa7794 refuses a journal record field it does not know (the affinity record's `listed`).
 */
function clearRestoredJournals(): void {
  const dir = '/run/vfio-isolate';
  if (!fs.existsSync(dir)) return;
  for (const name of fs.readdirSync(dir))
    if (name !== 'lock') fs.rmSync(join(dir, name), { recursive: true, force: true });
}

/** The baseline revision's tool (spec.baseline), imported on first use. */
let baseModule: Promise<ToolModule> | undefined;
function baselineTool(): Promise<ToolModule> | undefined {
  if (!spec.baseline) return undefined;
  baseModule ??= import(pathToFileURL(resolve(spec.baseline.bundle)).href) as Promise<ToolModule>;
  return baseModule;
}

let journalNo = 0;
function freshJournal(): string {
  return join(WORK, `journal-${process.pid}-${++journalNo}`);
}

/** Run the tool in-process on the real (guest) kernel; throws when it exits non-zero. */
/** The entry points of a tool: ours (bundled in), or the baseline revision's (spec.baseline). */
interface ToolModule {
  runCli: typeof runCli;
  COMMANDS: typeof COMMANDS;
}

async function tool(
  argv: string[],
  extraEnv: Record<string, string> = {},
  mod: ToolModule = { runCli, COMMANDS },
): Promise<ToolRun> {
  let err = '';
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    VFIO_ISOLATE_LOCK_WAIT_MS: '5000',
    VFIO_ISOLATE_TIMINGS: '1',
    ...extraEnv,
  };
  delete env.VFIO_ISOLATE_ROOT;
  const traceName = traceArmed && `${traceArmed.name}-${++traceArmed.runs}`;
  const run = (): Promise<number> =>
    mod.runCli(argv, {
      table: mod.COMMANDS,
      env,
      streams: { out: () => {}, err: (s) => void (err += s), isTTY: false },
    });
  const t0 = now();
  const code = await (traceName ? traceTool(traceName, run) : run());
  const ms = now() - t0;
  let phases: Record<string, number> = {};
  const rest: string[] = [];
  for (const line of err.split('\n')) {
    if (line.startsWith('{"timings":'))
      phases = (JSON.parse(line) as { timings: Record<string, number> }).timings;
    else if (line.trim()) rest.push(line);
  }
  if (code !== 0) throw new Error(`vfio-isolate ${argv.join(' ')}: exit ${code}: ${rest.join(' | ')}`);
  return { ms, phases };
}

function count(dir: string): number {
  return ids(`${dir}/${TASK_FILE}`).length;
}

// ------------------------------------------------------------------------------------------------ task sources

/** v1: one python process whose threads grow on request (bench/guest-spawn.py). */
class ThreadSource {
  private readonly proc: ChildProcess;
  private buf = '';
  private waiters: ((line: string) => void)[] = [];
  constructor(cgroupProcs: string) {
    this.proc = spawn('python3', ['bench/guest-spawn.py', 'threads', cgroupProcs], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.proc.stdout!.setEncoding('utf8');
    this.proc.stdout!.on('data', (d: string) => {
      this.buf += d;
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        this.waiters.shift()?.(line);
      }
    });
  }
  grow(n: number): Promise<string> {
    return new Promise((resolve, reject) => {
      this.proc.once('exit', (c) => reject(new Error(`guest-spawn.py exited ${c}`)));
      this.waiters.push(resolve);
      this.proc.stdin!.write(`${n}\n`);
    });
  }
  stop(): void {
    this.proc.stdin!.end();
    this.proc.kill('SIGKILL');
  }
}

/**
 * v2: processes (cgroup.procs takes process ids). A small shell moves itself into the cgroup and forks N-1
 * children that block reading fd 3 (a pipe from us), so no exec per task; closing the pipe ends them all.
 */
class ProcSource {
  private readonly shells: ChildProcess[] = [];
  async grow(cgroupProcs: string, dir: string, n: number): Promise<void> {
    const have = count(dir);
    if (n <= have) return;
    const script =
      'echo $$ > "$1" || exit 1; i=1; while [ "$i" -lt "$2" ]; do read x <&3 & i=$((i+1)); done; echo ready; read x <&3';
    const sh = spawn('/bin/sh', ['-c', script, 'sh', cgroupProcs, String(n - have)], {
      stdio: ['ignore', 'pipe', 'inherit', 'pipe'],
      detached: true,
    });
    this.shells.push(sh);
    await new Promise<void>((resolve, reject) => {
      sh.stdout!.on('data', () => resolve());
      sh.once('exit', (c) => reject(new Error(`task shell exited ${c}`)));
    });
    while (count(dir) < n) await new Promise((r) => setTimeout(r, 50));
  }
  stop(): void {
    for (const sh of this.shells) {
      try {
        if (sh.pid) process.kill(-sh.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      (sh.stdio[3] as NodeJS.WritableStream | null)?.end();
    }
  }
}

// ------------------------------------------------------------------------------------------------ move-tasks

function setupMoveCgroups(): () => void {
  const undo: (() => void)[] = [];
  if (v1) {
    for (const d of [SRC, DST]) {
      fs.mkdirSync(d);
      undo.push(() => fs.rmdirSync(d));
      fs.writeFileSync(`${d}/cpuset.mems`, readTrim(`${CG}/cpuset.mems`));
    }
    fs.writeFileSync(`${SRC}/cpuset.cpus`, readTrim(`${CG}/cpuset.cpus`));
    fs.writeFileSync(`${DST}/cpuset.cpus`, '0-3');
  } else {
    const had = readTrim(`${CG}/cgroup.subtree_control`).split(/\s+/).includes('cpuset');
    if (!had) {
      fs.writeFileSync(`${CG}/cgroup.subtree_control`, '+cpuset');
      undo.push(() => fs.writeFileSync(`${CG}/cgroup.subtree_control`, '-cpuset'));
    }
    for (const d of [SRC, DST]) {
      fs.mkdirSync(d);
      undo.push(() => fs.rmdirSync(d));
    }
    fs.writeFileSync(`${DST}/cpuset.cpus`, '0-3');
  }
  return () => {
    for (const u of undo.reverse()) {
      try {
        u();
      } catch (e) {
        log(`cleanup: ${(e as Error).message}`);
      }
    }
  };
}

/**
 * µs per task of single operations, to explain the move-tasks figures: each operation over every task, three
 * interleaved passes, the fastest pass kept (warm dentries and JIT).
 */
async function diagnose(list: number[]): Promise<Diag> {
  const buf = Buffer.allocUnsafe(4096);
  const rawRead = (path: string): string => {
    const fd = fs.openSync(path, 'r');
    try {
      return buf.toString('latin1', 0, fs.readSync(fd, buf, 0, buf.length, -1));
    } finally {
      fs.closeSync(fd);
    }
  };
  const statText = read(`/proc/${list[0]}/task/${list[0]}/stat`);
  const statusText = read(`/proc/${list[0]}/task/${list[0]}/status`);
  const sample = list.slice(0, 200);
  const ops: [string, (id: number) => unknown, number[]][] = [
    ['readFileSync /proc/ID/task/ID/stat', (id) => read(`/proc/${id}/task/${id}/stat`), list],
    ['readFileSync /proc/ID/task/ID/status', (id) => read(`/proc/${id}/task/${id}/status`), list],
    ['readFileSync /proc/ID/status', (id) => read(`/proc/${id}/status`), list],
    ['open+readSync+close /proc/ID/task/ID/stat', (id) => rawRead(`/proc/${id}/task/${id}/stat`), list],
    ['statSync /proc/ID/task/ID', (id) => fs.statSync(`/proc/${id}/task/${id}`), list],
    [
      'parse stat + status text (JS only)',
      () => {
        parseStat(statText);
        const m = /^Cpus_allowed_list:\s*(.*)$/m.exec(statusText);
        return CpuSet.parseList(m?.[1] ?? '');
      },
      list,
    ],
    // O(threads of the process) per read for a thread of a big process: 200 tasks only
    ['readFileSync /proc/ID/stat (200 tasks)', (id) => read(`/proc/${id}/stat`), sample],
  ];
  const best = new Map<string, number>();
  // Once per run of the tool, not per task: in µs, like the rest.
  const machine = (full: boolean): number => {
    const t0 = now();
    const m = Kernel.real().machine;
    if (full) void m.siblings;
    return (now() - t0) * 1000;
  };
  machine(true);
  best.set('k.machine: possible/present/online (once per run)', Math.min(machine(false), machine(false)));
  best.set('k.machine: whole topology (once per run)', Math.min(machine(true), machine(true)));
  for (let pass = 0; pass < 3; pass++) {
    for (const [name, f, items] of ops) {
      const t0 = now();
      for (const id of items) {
        try {
          f(id);
        } catch {
          /* gone */
        }
      }
      const us = ((now() - t0) * 1000) / items.length;
      best.set(name, Math.min(best.get(name) ?? Infinity, us));
    }
  }
  // What sched_getaffinity(2) through koffi (the tool's lazily loaded FFI) would cost instead of reading status.
  try {
    const t0 = now();
    const sched = loadSched();
    best.set('load koffi (once per run)', (now() - t0) * 1000);
    for (let pass = 0; pass < 2; pass++) {
      const t1 = now();
      for (const id of list) {
        try {
          sched.getAffinity(id);
        } catch {
          /* gone */
        }
      }
      const us = ((now() - t1) * 1000) / list.length;
      best.set(
        'sched_getaffinity via koffi',
        Math.min(best.get('sched_getaffinity via koffi') ?? Infinity, us),
      );
    }
  } catch (e) {
    log(`diag: koffi: ${(e as Error).message}`);
  }
  // The move's write itself: node's writeSync (the bare loop's) against koffi's write(2) and the tool's writeIds
  // (which use it), each moving every task of SRC to DST through one descriptor, moved back (untimed) between
  // rounds; and the apply phase of the tool's own move without -u, per task.
  const raw = loadRawWrite();
  const writeLoop = (write: (fd: number, id: number) => void): number => {
    const tasks = ids(`${SRC}/${TASK_FILE}`);
    const fd = fs.openSync(`${DST}/${TASK_FILE}`, fs.constants.O_WRONLY);
    const t0 = now();
    for (const id of tasks) {
      try {
        write(fd, id);
      } catch {
        /* gone */
      }
    }
    const us = ((now() - t0) * 1000) / tasks.length;
    fs.closeSync(fd);
    bareMove(DST, SRC);
    return us;
  };
  for (let pass = 0; pass < 3; pass++) {
    const viaNode = writeLoop((fd, id) => void fs.writeSync(fd, String(id)));
    best.set('write: fs.writeSync', Math.min(best.get('write: fs.writeSync') ?? Infinity, viaNode));
    if (raw) {
      const viaKoffi = writeLoop((fd, id) => void raw(fd, String(id)));
      best.set('write: koffi write(2)', Math.min(best.get('write: koffi write(2)') ?? Infinity, viaKoffi));
      const viaWriteIds = (() => {
        const tasks = ids(`${SRC}/${TASK_FILE}`);
        const t0 = now();
        writeIds(Kernel.real().fs, `${DST}/${TASK_FILE}`, tasks);
        const us = ((now() - t0) * 1000) / tasks.length;
        bareMove(DST, SRC);
        return us;
      })();
      best.set(
        "write: the tool's writeIds",
        Math.min(best.get("write: the tool's writeIds") ?? Infinity, viaWriteIds),
      );
      const viaTool = await (async () => {
        const tasks = ids(`${SRC}/${TASK_FILE}`);
        const r = await tool(['move-tasks', '/bench-src', '/bench-dst']);
        bareMove(DST, SRC);
        return ((r.phases.apply ?? r.ms) * 1000) / tasks.length;
      })();
      best.set(
        'the tool without -u, apply phase',
        Math.min(best.get('the tool without -u, apply phase') ?? Infinity, viaTool),
      );
    }
  }
  return { tasks: list.length, perTaskUs: Object.fromEntries(best) };
}

/**
 * With BENCH_PROFILE=1: one extra run of the tool (BENCH_PROFILE_RUNS=N: N runs) under the inspector's sampling
 * profiler, written to .vm-cache/bench/profile-MODE-NAME.cpuprofile (open it in Chrome DevTools). Without it:
 * nothing.
 */
async function profiled(name: string, f: () => Promise<unknown>): Promise<void> {
  if (process.env.BENCH_PROFILE !== '1') return;
  const inspector = await import('node:inspector');
  const session = new inspector.Session();
  session.connect();
  const post = (method: string, params?: object): Promise<unknown> =>
    new Promise((resolve, reject) =>
      session.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res))),
    );
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 500 });
  await post('Profiler.start');
  try {
    // BENCH_PROFILE_RUNS=N: N runs in one profile (more samples per function; the profiler's interval under TCG
    // is coarse)
    const runs = Math.max(1, Number(process.env.BENCH_PROFILE_RUNS ?? 1) || 1);
    for (let i = 0; i < runs; i++) await f();
  } finally {
    const { profile } = (await post('Profiler.stop')) as { profile: unknown };
    const dir = join(process.cwd(), '.vm-cache', 'bench');
    fs.mkdirSync(dir, { recursive: true });
    const file = join(dir, `profile-${mode}-${name}.cpuprofile`);
    fs.writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
    log(`profile written to ${file}`);
  }
}

// ------------------------------------------------------------------------------------------------ trace

/** One node:fs call of a traced run: when it started (ms from the run's start), how long it took, what it named. */
interface TraceCall {
  at: number;
  ms: number;
  fn: string;
  what: string;
}

const TRACED_FS = [
  'openSync',
  'closeSync',
  'readSync',
  'writeSync',
  'readFileSync',
  'writeFileSync',
  'statSync',
  'lstatSync',
  'fstatSync',
  'statfsSync',
  'readdirSync',
  'readlinkSync',
  'existsSync',
  'mkdirSync',
  'fsyncSync',
  'fdatasyncSync',
  'renameSync',
  'unlinkSync',
  'rmSync',
  'accessSync',
] as const;

/**
 * With BENCH_TRACE=1: every `tool()` run inside `f` is traced — every node:fs call it makes is timed (node:fs's functions
 * are wrapped and the ESM named exports re-synced), and the run's timeline is written to
 * .vm-cache/bench/trace-MODE-NAME.txt: each call with its start, duration and path (or the path its descriptor was
 * opened on), the JavaScript time before it, and a summary by function. Calls made outside node:fs (koffi's
 * write(2), flock, sched_getaffinity) show up as JavaScript time.
 */
async function traced(name: string, f: () => Promise<unknown>): Promise<void> {
  if (process.env.BENCH_TRACE !== '1') return;
  traceArmed = { name, runs: 0 };
  try {
    // BENCH_TRACE_RUNS=N: N runs, each traced to its own file
    const runs = Math.max(1, Number(process.env.BENCH_TRACE_RUNS ?? 1) || 1);
    for (let i = 0; i < runs; i++) await f();
  } finally {
    traceArmed = undefined;
  }
}

/** While `traced` runs: its name and how many tool runs it traced (each gets its own file, numbered). */
let traceArmed: { name: string; runs: number } | undefined;

async function traceTool<T>(name: string, run: () => Promise<T>): Promise<T> {
  const req = createRequire(import.meta.url);
  const nodeFs = req('node:fs') as Record<string, unknown>;
  const saved = new Map<string, unknown>();
  const calls: TraceCall[] = [];
  const fdPath = new Map<number, string>();
  const describe = (args: unknown[]): string => {
    const a0 = args[0];
    if (typeof a0 === 'number') return `fd ${a0} ${fdPath.get(a0) ?? '?'}`;
    return typeof a0 === 'string' ? a0 : String(a0);
  };
  let t0 = 0;
  const timed = <F extends (...a: never[]) => unknown>(fn: string, what: (a: unknown[]) => string, f: F): F =>
    function (this: unknown, ...args: unknown[]) {
      const at = now();
      try {
        return f.apply(this, args as never[]);
      } finally {
        calls.push({ at: at - t0, ms: now() - at, fn, what: what(args) });
      }
    } as unknown as F;
  for (const fn of TRACED_FS) {
    const orig = nodeFs[fn] as (...a: unknown[]) => unknown;
    saved.set(fn, orig);
    // openSync also remembers which path each descriptor is, for the lines of the calls made on it
    const call =
      fn === 'openSync'
        ? function (this: unknown, ...args: unknown[]): unknown {
            const r = orig.apply(this, args);
            if (typeof r === 'number' && typeof args[0] === 'string') fdPath.set(r, args[0]);
            return r;
          }
        : orig;
    nodeFs[fn] = timed(fn, describe, call);
  }
  syncBuiltinESMExports();
  // the calls made through koffi (sched_getaffinity, write(2) of a move or an IRQ file), timed the same way
  const proto = RealFs.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const savedProto = new Map<string, (...a: unknown[]) => unknown>();
  for (const m of ['getAffinity', 'setAffinity', 'tryWrite', 'write', 'openWriter'])
    savedProto.set(m, proto[m]!);
  proto.getAffinity = timed('getAffinity', () => '', savedProto.get('getAffinity')!);
  proto.setAffinity = timed('setAffinity', () => '', savedProto.get('setAffinity')!);
  proto.tryWrite = timed('Fs.tryWrite', (a) => String(a[0]), savedProto.get('tryWrite')!);
  proto.write = timed('Fs.write', (a) => String(a[0]), savedProto.get('write')!);
  proto.openWriter = function (this: unknown, path: unknown) {
    const w = savedProto.get('openWriter')!.call(this, path) as Writer;
    return {
      close: () => w.close(),
      write: timed('writer.write', () => String(path), w.write.bind(w)),
      ...(w.tryWrite ? { tryWrite: timed('writer.tryWrite', () => String(path), w.tryWrite.bind(w)) } : {}),
    };
  };
  t0 = now();
  let total: number;
  try {
    return await run();
  } finally {
    total = now() - t0;
    for (const [fn, orig] of saved) nodeFs[fn] = orig;
    syncBuiltinESMExports();
    for (const [m, orig] of savedProto) proto[m] = orig;
    const lines: string[] = [
      `trace ${mode} ${name}: ${total.toFixed(2)} ms, ${calls.length} calls (node:fs and koffi)`,
    ];
    let prevEnd = 0;
    let inFs = 0;
    // consecutive calls of one function on one thing (a move's writes, its mask reads) make one line
    const runs: (TraceCall & { n: number; js: number })[] = [];
    for (const c of calls) {
      const last = runs.at(-1);
      if (last && last.fn === c.fn && last.what === c.what && last.n > 0) {
        last.js += c.at - (last.at + last.ms);
        last.ms = c.at + c.ms - last.at;
        last.n++;
      } else runs.push({ ...c, n: 1, js: 0 });
    }
    for (const c of runs) {
      lines.push(
        `${c.at.toFixed(2).padStart(8)} +js ${(c.at - prevEnd).toFixed(2).padStart(6)} ${c.ms.toFixed(3).padStart(7)} ms  ${c.fn}${c.n > 1 ? ` ×${c.n} (js between ${c.js.toFixed(2)} ms)` : ''} ${c.what}`,
      );
      prevEnd = c.at + c.ms;
      inFs += c.ms - c.js;
    }
    lines.push(`${total.toFixed(2).padStart(8)} +js ${(total - prevEnd).toFixed(2).padStart(6)}  (end)`);
    const byFn = new Map<string, [number, number]>();
    for (const c of calls) {
      const e = byFn.get(c.fn) ?? [0, 0];
      byFn.set(c.fn, [e[0] + 1, e[1] + c.ms]);
    }
    lines.push('', `in the calls ${inFs.toFixed(2)} ms, elsewhere ${(total - inFs).toFixed(2)} ms`);
    for (const [fn, [n, ms]] of [...byFn].sort((a, b) => b[1][1] - a[1][1]))
      lines.push(`  ${fn.padEnd(14)} ${String(n).padStart(5)} calls ${ms.toFixed(2).padStart(8)} ms`);
    const dir = join(process.cwd(), '.vm-cache', 'bench');
    fs.mkdirSync(dir, { recursive: true });
    const file = join(dir, `trace-${mode}-${name}.txt`);
    fs.writeFileSync(file, lines.join('\n') + '\n');
    log(`trace written to ${file} (${total.toFixed(1)} ms, ${calls.length} calls)`);
  }
}

async function benchMove(res: GuestBenchResult): Promise<void> {
  const cleanup = setupMoveCgroups();
  const threads = v1 ? new ThreadSource(`${SRC}/cgroup.procs`) : undefined;
  const procs = v1 ? undefined : new ProcSource();
  try {
    let last: { size: number; ms: number } | undefined;
    for (const size of spec.sizes) {
      const entry: MoveSize = { size, tasks: 0, bare: [], ours: [], oursNoJournal: [] };
      res.move.push(entry);
      if (last) {
        const projected = (last.ms * (size / last.size) ** 2) / 1000;
        if (projected > spec.budgetSec) {
          entry.skipped = `projected ${projected.toFixed(0)} s for one run of the tool (quadratic from ${last.size}), over the ${spec.budgetSec} s budget`;
          log(`size ${size}: skipped: ${entry.skipped}`);
          continue;
        }
      }
      const t0 = now();
      if (threads) log(`size ${size}: ${await threads.grow(size)} (${((now() - t0) / 1000).toFixed(1)} s)`);
      else await procs!.grow(`${SRC}/cgroup.procs`, SRC, size);
      entry.tasks = count(SRC);
      log(`size ${size}: ${entry.tasks} tasks in ${SRC} after ${((now() - t0) / 1000).toFixed(1)} s`);
      if (spec.parts.includes('diag') && !res.diag) res.diag = await diagnose(ids(`${SRC}/${TASK_FILE}`));

      const back = (): void => {
        bareMove(DST, SRC);
        if (count(DST) !== 0) throw new Error(`${DST} not empty after moving back`);
      };
      const runOurs = async (journal: boolean, mod?: ToolModule): Promise<ToolRun> => {
        const j = freshJournal();
        const r = await tool(
          [...(journal ? ['-u', j] : []), 'move-tasks', '/bench-src', '/bench-dst'],
          {},
          mod,
        );
        fs.rmSync(j, { force: true });
        const moved = count(DST);
        if (moved !== entry.tasks) throw new Error(`move-tasks moved ${moved} of ${entry.tasks}`);
        back();
        return r;
      };
      const runBare = (masks = false): number => {
        const r = bareMove(SRC, DST, { masks });
        if (r.moved !== entry.tasks) throw new Error(`bare loop moved ${r.moved} of ${entry.tasks}`);
        back();
        return r.ms;
      };
      // warm-up (first touch of /proc entries, JIT), then alternate the order every repetition
      runBare();
      const w = await runOurs(true);
      if (w.ms / 1000 > spec.budgetSec) {
        entry.skipped = `one run took ${(w.ms / 1000).toFixed(0)} s, over the ${spec.budgetSec} s budget`;
        entry.ours.push(w);
        last = { size, ms: w.ms };
        log(`size ${size}: ${entry.skipped}`);
        continue;
      }
      await runOurs(false);
      const base = await baselineTool();
      if (base) {
        entry.base = [];
        await runOurs(true, base);
      }
      if (size === spec.sizes[0]) await profiled(`move-${size}`, () => runOurs(true));
      if (size === spec.sizes[0]) await traced(`move-${size}`, () => runOurs(true));
      if (size === spec.sizes[0]) await traced(`move-no-u-${size}`, () => runOurs(false));
      await rotateMoveRuns(entry, runBare, runOurs, base);
      const med = (a: number[]): number => [...a].sort((x, y) => x - y)[a.length >> 1]!;
      last = { size, ms: med(entry.ours.map((o) => o.ms)) };
      log(
        `size ${size}: bare ${med(entry.bare).toFixed(1)} ms, ours ${last.ms.toFixed(1)} ms, ours without -u ${med(entry.oursNoJournal.map((o) => o.ms)).toFixed(1)} ms`,
      );
      res.move.push(await benchMoveRoot(size));
    }
  } finally {
    threads?.stop();
    procs?.stop();
    for (let i = 0; i < 100 && (count(SRC) > 0 || count(DST) > 0); i++)
      await new Promise((r) => setTimeout(r, 100));
    cleanup();
  }
}

/** Write each id to `to`'s task file (errors ignored: exited tasks, kernel threads). */
function moveIds(list: readonly number[], to: string): void {
  const fd = fs.openSync(`${to}/${TASK_FILE}`, fs.constants.O_WRONLY);
  try {
    for (const id of list) {
      try {
        fs.writeSync(fd, String(id));
      } catch {
        /* gone or unmovable */
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The measured runs of one move size: the bare loop, ours with -u, ours without, and the baseline revision's with
 * -u when given, `spec.reps` times, the order rotated every repetition.
 */
async function rotateMoveRuns(
  entry: MoveSize,
  runBare: (masks?: boolean) => number,
  runOurs: (journal: boolean, mod?: ToolModule) => Promise<ToolRun>,
  base: ToolModule | undefined,
): Promise<void> {
  const runs: (() => Promise<void>)[] = [
    async () => void entry.bare.push(runBare()),
    async () => void entry.ours.push(await runOurs(true)),
    async () => void entry.oursNoJournal.push(await runOurs(false)),
  ];
  if (base) runs.push(async () => void entry.base!.push(await runOurs(true, base)));
  if (attachResetsMasks) {
    entry.bareMasks = [];
    runBare(true);
    runs.push(async () => void entry.bareMasks!.push(runBare(true)));
  }
  for (let r = 0; r < spec.reps; r++)
    for (let i = 0; i < runs.length; i++) await runs[(i + r) % runs.length]!();
}

/**
 * The seed's own path, `move-tasks / DST`: the bench tasks join the root's (system tasks and kernel threads), every
 * task of the root is moved, then everything goes back to the root and the bench tasks back to SRC. The bare loop
 * is the same read + one write per id, counting the kernel threads that refuse as any tool must.
 */
async function benchMoveRoot(size: number): Promise<MoveSize> {
  const mine = ids(`${SRC}/${TASK_FILE}`);
  moveIds(mine, CG);
  const entry: MoveSize = { size, tasks: 0, bare: [], ours: [], oursNoJournal: [], source: 'root' };
  try {
    const back = (): void => {
      bareMove(DST, CG);
      if (count(DST) !== 0) throw new Error(`${DST} not empty after moving back to the root`);
    };
    const runBare = (masks = false): number => {
      const r = bareMove(CG, DST, { masks });
      entry.tasks = Math.max(entry.tasks, r.moved);
      back();
      return r.ms;
    };
    const runOurs = async (journal: boolean, mod?: ToolModule): Promise<ToolRun> => {
      const j = freshJournal();
      const r = await tool([...(journal ? ['-u', j] : []), 'move-tasks', '/', '/bench-dst'], {}, mod);
      fs.rmSync(j, { force: true });
      back();
      return r;
    };
    runBare();
    await runOurs(true);
    const base = await baselineTool();
    if (base) {
      entry.base = [];
      await runOurs(true, base);
    }
    if (size === spec.sizes[0]) await profiled(`move-root-${size}`, () => runOurs(true));
    if (size === spec.sizes[0]) await traced(`move-root-${size}`, () => runOurs(true));
    await rotateMoveRuns(entry, runBare, runOurs, base);
    const med = (a: number[]): number => [...a].sort((x, y) => x - y)[a.length >> 1]!;
    log(
      `root source, size ${size}: ${entry.tasks} tasks moved, bare ${med(entry.bare).toFixed(1)} ms, ours ${med(entry.ours.map((o) => o.ms)).toFixed(1)} ms`,
    );
  } finally {
    moveIds(mine, SRC);
  }
  return entry;
}

// ------------------------------------------------------------------------------------------------ IRQs

interface IrqPlan {
  path: string;
  orig: string;
  target: string;
}

function planIrqs(mask: CpuSet): { all: number; plan: IrqPlan[] } {
  const online = CpuSet.parseList(readTrim('/sys/devices/system/cpu/online'));
  const plan: IrqPlan[] = [];
  let all = 0;
  for (const n of fs.readdirSync('/proc/irq')) {
    if (!/^\d+$/.test(n)) continue;
    const path = `/proc/irq/${n}/smp_affinity_list`;
    let orig: string;
    try {
      orig = readTrim(path);
    } catch {
      continue;
    }
    all++;
    const target = irqTarget('mask', CpuSet.parseList(orig), mask, online).toList();
    if (target !== orig) plan.push({ path, orig, target });
  }
  return { all, plan };
}

/**
 * The bare loop of `irq-affinity mask`, doing what any tool must, all inside the timing: read the online CPUs, list
 * /proc/irq, read every smp_affinity_list, work out the new list (0.5.2's rule: the IRQ's CPUs minus the masked
 * ones, or every online CPU minus them when none is left) and write it with one open+write+close when it changes.
 * `safe` ("bare + safety"): also what an exclusive, crash-safe tool must add: the lock (open + flock) around it all,
 * and the old values journalled durably before the first write (a new file: one write, fsync, fsync of its
 * directory). `safe.checks`: also the checks' system calls (IrqResult.bareChecked).
 */
function bareIrqMask(mask: CpuSet, safe?: { journal: string; checks?: boolean }): number {
  const t0 = now();
  // -u FILE is judged before the lock: nothing there yet, and the directories on its way
  if (safe?.checks) bareTrustNew(safe.journal);
  const unlock = safe ? bareLock(safe.checks) : undefined;
  const online = CpuSet.parseList(readTrim('/sys/devices/system/cpu/online'));
  const fallback = online.minus(mask);
  const todo: IrqPlan[] = [];
  for (const n of fs.readdirSync('/proc/irq')) {
    if (!/^\d+$/.test(n)) continue;
    const path = `/proc/irq/${n}/smp_affinity_list`;
    let orig: string;
    try {
      orig = readTrim(path);
    } catch {
      continue;
    }
    const rest = CpuSet.parseList(orig).minus(mask);
    const target = (rest.intersect(online).isEmpty ? fallback : rest).toList();
    if (target !== orig) todo.push({ path, orig, target });
  }
  // the boot id goes into the journal's header
  if (safe?.checks) readTrim('/proc/sys/kernel/random/boot_id');
  const fd = safe ? durableCreate(safe.journal, JSON.stringify(todo) + '\n') : undefined;
  for (const p of todo) put(p.path, p.target);
  if (fd !== undefined) fs.closeSync(fd);
  unlock?.();
  return now() - t0;
}

/** Put the planned IRQs back (between runs; not timed). */
function restoreIrqs(plan: readonly IrqPlan[]): void {
  for (const p of plan) put(p.path, p.orig);
}

/**
 * The bare restore of the masking: read the old values saved beside the change (a small JSON file, as any journal
 * must be read) and write each back with one open+write+close, all inside the timing.
 */
function bareIrqRestore(saved: string): number {
  const t0 = now();
  const plan = JSON.parse(read(saved)) as IrqPlan[];
  for (const p of plan) put(p.path, p.orig);
  return now() - t0;
}

let flockFn: ((fd: number, op: number) => number) | undefined;

/** flock(2) through koffi (what the tool's lock uses), loaded once outside any timing. */
function flock(fd: number, op: number): number {
  if (!flockFn) {
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    const f = koffi.load('libc.so.6').func('int flock(int fd, int operation)');
    flockFn = (d, o) => f(d, o) as number;
  }
  return flockFn(fd, op);
}

/**
 * The tool's lock, bare: open the lock file and flock it (LOCK_EX); returns the unlock. `checks`: first the trust
 * walk of its directory (a stat of each directory on the way), and an fstat of the file opened.
 */
function bareLock(checks = false): () => void {
  if (checks) bareWalk('/run/vfio-isolate');
  const fd = fs.openSync('/run/vfio-isolate/lock', fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
  if (checks) fs.fstatSync(fd);
  flock(fd, 2);
  return () => {
    flock(fd, 8);
    fs.closeSync(fd);
  };
}

/** The least a trust walk reads: a stat of each directory from / down to `dir` (owner and mode, nothing else). */
function bareWalk(dir: string): void {
  let cur = '';
  fs.statSync('/');
  for (const part of dir.split('/').filter(Boolean)) fs.statSync((cur += `/${part}`));
}

/** The trust check of a journal still to be created: nothing at its path (lstat), and the walk of its directory. */
function bareTrustNew(file: string): void {
  try {
    fs.lstatSync(file);
  } catch {
    /* not there: a new journal */
  }
  bareWalk(dirname(file));
}

/** Append `text` to a new file (O_EXCL) and make it durable: fsync of the file and of its directory. */
function durableCreate(file: string, text: string): number {
  const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
  fs.writeSync(fd, text);
  fs.fsyncSync(fd);
  const dir = fs.openSync(WORK, fs.constants.O_RDONLY);
  fs.fsyncSync(dir);
  fs.closeSync(dir);
  return fd;
}

/**
 * bareIrqRestore plus what an exclusive, crash-safe tool must add, all inside the timing: the lock; each value read
 * before it is written back (one changed since is left alone); the journal marked restored durably (append, fsync).
 * `checks`: the floor with the checks' system calls (IrqResult.restoreBareChecked), each value read and written
 * through one descriptor.
 */
function bareIrqRestoreSafe(journal: string, checks = false): number {
  const t0 = now();
  const unlock = bareLock(checks);
  let plan: IrqPlan[];
  if (checks) {
    // the registry (is the journal an isolation's, to release?), the journal's trust check (lstat, the walk of its
    // directory, fstat of what was opened) and the boot id its header is checked against
    try {
      fs.lstatSync('/run/vfio-isolate/reservations.json');
    } catch {
      /* no isolation registered */
    }
    fs.lstatSync(journal);
    bareWalk(dirname(journal));
    const fd = fs.openSync(journal, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    fs.fstatSync(fd);
    plan = JSON.parse(fs.readFileSync(fd, 'utf8')) as IrqPlan[];
    fs.closeSync(fd);
    readTrim('/proc/sys/kernel/random/boot_id');
  } else plan = JSON.parse(read(journal)) as IrqPlan[];
  if (checks) for (const p of plan) readThenPut(p);
  else for (const p of plan) if (readTrim(p.path) === p.target) put(p.path, p.orig);
  const fd = fs.openSync(journal, fs.constants.O_WRONLY | fs.constants.O_APPEND);
  fs.writeSync(fd, '{"t":"restored"}\n');
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  unlock();
  return now() - t0;
}

const rwBuf = Buffer.alloc(4096);

/**
 * The read before the write through one descriptor (the least a restore can do): open, read, write, close. procfs
 * takes the value at the offset the read left (a positional write is ESPIPE there); a managed IRQ refuses (EIO,
 * EPERM), anything else is an error of the benchmark.
 */
function readThenPut(p: IrqPlan): void {
  const fd = fs.openSync(p.path, fs.constants.O_RDWR);
  try {
    const n = fs.readSync(fd, rwBuf, 0, rwBuf.length, null);
    if (rwBuf.toString('utf8', 0, n).trim() === p.target) fs.writeSync(fd, p.orig);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EIO' && code !== 'EPERM') throw e;
  } finally {
    fs.closeSync(fd);
  }
}

async function benchIrq(res: GuestBenchResult): Promise<void> {
  const { all, plan } = planIrqs(CpuSet.parseList('4-7'));
  const out: IrqResult = {
    irqs: all,
    changed: plan.length,
    bare: [],
    ours: [],
    restoreBare: [],
    restore: [],
    bareSafe: [],
    restoreBareSafe: [],
    bareChecked: [],
    restoreBareChecked: [],
  };
  res.irq = out;
  fs.mkdirSync('/run/vfio-isolate', { recursive: true, mode: 0o700 }); // the lock's directory, for bareLock
  const saved = join(WORK, 'irq-plan.json');
  const runOurs = async (keep: boolean): Promise<void> => {
    const j = freshJournal();
    const r = await tool(['-u', j, 'irq-affinity', 'mask', 'C4-7']);
    const back = await tool(['restore', j]);
    fs.rmSync(j, { force: true });
    if (keep) {
      out.ours.push(r);
      out.restore!.push(back);
    }
  };
  const runBare = (keep: boolean): void => {
    const ms = bareIrqMask(CpuSet.parseList('4-7'));
    fs.writeFileSync(saved, JSON.stringify(plan));
    const back = bareIrqRestore(saved);
    const j = freshJournal();
    const safe = bareIrqMask(CpuSet.parseList('4-7'), { journal: j });
    const safeBack = bareIrqRestoreSafe(j);
    fs.rmSync(j, { force: true });
    const jc = freshJournal();
    const checked = bareIrqMask(CpuSet.parseList('4-7'), { journal: jc, checks: true });
    const checkedBack = bareIrqRestoreSafe(jc, true);
    fs.rmSync(jc, { force: true });
    if (keep) {
      out.bare.push(ms);
      out.restoreBare!.push(back);
      out.bareSafe!.push(safe);
      out.restoreBareSafe!.push(safeBack);
      out.bareChecked!.push(checked);
      out.restoreBareChecked!.push(checkedBack);
    }
  };
  runBare(false);
  await runOurs(false);
  await profiled('irq', () => runOurs(false));
  await traced('irq', () => runOurs(false));
  for (let r = 0; r < spec.irqReps; r++) {
    if (r % 2 === 0) {
      runBare(true);
      await runOurs(true);
    } else {
      await runOurs(true);
      runBare(true);
    }
  }
  restoreIrqs(plan);
  log(`irq: ${all} IRQs, ${plan.length} change; ${spec.irqReps} repetitions done`);
}

// ------------------------------------------------------------------------------------------------ isolate cycle

/** The seed's hook sequence, as bare writes with the same values: returns [apply, restore] closures. */
function bareHook(): { apply: () => void; restore: () => void } {
  const { plan } = planIrqs(CpuSet.parseList('4-7'));
  if (v1) {
    const host = `${CG}/host.slice`;
    return {
      apply() {
        put('/proc/sys/vm/drop_caches', '3');
        fs.mkdirSync(host);
        put(`${host}/cpuset.cpus`, '0-3');
        put(`${host}/cpuset.mems`, readTrim(`${CG}/cpuset.mems`));
        bareMoveDirs(CG, host);
        put('/proc/sys/vm/compact_memory', '1');
        for (const p of plan) put(p.path, p.target);
      },
      restore() {
        for (const p of plan) put(p.path, p.orig);
        bareMoveDirs(host, CG);
        fs.rmdirSync(host);
      },
    };
  }
  const slices = ['system.slice', 'user.slice'].map((s) => `${CG}/${s}/cpuset.cpus`);
  let enabled = false;
  let before: string[] = [];
  return {
    apply() {
      put('/proc/sys/vm/drop_caches', '3');
      enabled = !readTrim(`${CG}/cgroup.subtree_control`).split(/\s+/).includes('cpuset');
      if (enabled) put(`${CG}/cgroup.subtree_control`, '+cpuset');
      before = slices.map((p) => readTrim(p));
      for (const p of slices) put(p, '0-3');
      put('/proc/sys/vm/compact_memory', '1');
      for (const p of plan) put(p.path, p.target);
    },
    restore() {
      for (const p of plan) put(p.path, p.orig);
      slices.forEach((p, i) => put(p, before[i]!));
      if (enabled) put(`${CG}/cgroup.subtree_control`, '-cpuset');
    },
  };
}

/** v1 move of every task (threads) from one cpuset to another through one fd (kernel threads refuse: skipped). */
function bareMoveDirs(from: string, to: string): void {
  const list = ids(`${from}/tasks`);
  const fd = fs.openSync(`${to}/tasks`, fs.constants.O_WRONLY);
  try {
    for (const id of list) {
      try {
        fs.writeSync(fd, String(id));
      } catch {
        /* kernel thread or gone */
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

async function benchCycle(res: GuestBenchResult): Promise<void> {
  const hookArgv = seedHook(guestMode());
  const out: CycleResult = {
    hookArgv,
    hookBare: [],
    hook: [],
    restoreBare: [],
    restore: [],
    isolate: [],
    release: [],
    notes: [],
  };
  res.cycle = out;
  const bare = bareHook();
  // Untimed drop_caches first, so that the timed drop-caches of both variants finds the same (empty) page cache.
  const settle = (): void => void put('/proc/sys/vm/drop_caches', '3');
  const runBare = (keep: boolean): void => {
    settle();
    const t0 = now();
    bare.apply();
    const t1 = now();
    bare.restore();
    const t2 = now();
    if (keep) {
      out.hookBare.push(t1 - t0);
      out.restoreBare.push(t2 - t1);
    }
  };
  const runOurs = async (keep: boolean): Promise<void> => {
    const j = freshJournal();
    settle();
    const h = await tool(['-u', j, ...hookArgv]);
    const r = await tool(['restore', j]);
    fs.rmSync(j, { force: true });
    if (keep) {
      out.hook.push(h);
      out.restore.push(r);
    }
  };
  runBare(false);
  await runOurs(false);
  await profiled('hook', () => runOurs(false));
  await traced('hook', () => runOurs(false));
  for (let r = 0; r < spec.cycleReps; r++) {
    if (r % 2 === 0) {
      runBare(true);
      await runOurs(true);
    } else {
      await runOurs(true);
      runBare(true);
    }
  }
  log(`cycle: hook sequence and restore, ${spec.cycleReps} repetitions done`);
  // isolate / release: the first pair is a warm-up (first use of koffi for sched_setaffinity, JIT). With a
  // baseline revision, its pairs alternate with ours (order swapped every repetition), after a warm-up of its own.
  const baseMod = await baselineTool();
  const base = spec.baseline && baseMod ? { rev: spec.baseline.rev, mod: baseMod } : undefined;
  if (base) out.baseline = { rev: base.rev, isolate: [], release: [] };
  const pair = async (mod?: ToolModule): Promise<[ToolRun, ToolRun]> => {
    clearRestoredJournals();
    return [await tool(['isolate', 'C4-7'], {}, mod), await tool(['release'], {}, mod)];
  };
  for (let r = 0; r <= spec.cycleReps; r++) {
    // one profile of isolate + release pairs (a second isolate without a release is refused)
    if (r === 1) await profiled('isolate-release', () => pair());
    if (r === 1) await traced('isolate-release', () => pair());
    const baseFirst = base !== undefined && r % 2 === 1;
    const b1 = baseFirst ? await pair(base.mod) : undefined;
    const [i, rel] = await pair();
    const b = b1 ?? (base ? await pair(base.mod) : undefined);
    if (r === 0) {
      out.notes.push(
        `isolate warm-up (first isolate in this process): ${i.ms.toFixed(0)} ms, release ${rel.ms.toFixed(0)} ms`,
      );
      continue;
    }
    out.isolate.push(i);
    out.release.push(rel);
    if (b && out.baseline) {
      out.baseline.isolate.push(b[0]);
      out.baseline.release.push(b[1]);
    }
  }
  log(`cycle: isolate/release, ${spec.cycleReps} repetitions done${base ? ` (and ${base.rev}'s)` : ''}`);
}

// ------------------------------------------------------------------------------------------------ cold

/**
 * Times one fresh node process: argv[2] the file to write {boot, ms} to at exit, argv[3] the module, then its argv.
 * It imports nothing itself: an ESM import of node:fs would build that module's facade before the timing starts, a
 * cost the module timed would then not pay.
 */
const COLD_WRAP = `const t0 = performance.now();
const [out, entry, ...args] = process.argv.slice(2);
process.argv = [process.argv[0], entry, ...args];
process.on('exit', () => {
  const ms = performance.now() - t0;
  process.getBuiltinModule('node:fs').writeFileSync(out, JSON.stringify({ boot: t0, ms }));
});
await import(entry);
`;

/** The bare loops of the cold part: "mask PLAN" reads every IRQ's list and writes the changing ones, "restore PLAN" the old values. */
const COLD_BARE = `const fs = process.getBuiltinModule('node:fs');
const [what, planFile] = process.argv.slice(2);
const plan = JSON.parse(fs.readFileSync(planFile, 'utf8'));
const put = (path, value) => {
  const fd = fs.openSync(path, 'w');
  try {
    fs.writeSync(fd, value);
  } catch (e) {
    if (e.code !== 'EIO' && e.code !== 'EPERM') throw e;
  } finally {
    fs.closeSync(fd);
  }
};
if (what === 'mask') {
  const target = new Map(plan.map((p) => [p.path, p.target]));
  for (const n of fs.readdirSync('/proc/irq')) {
    if (!/^\\d+$/.test(n)) continue;
    const path = '/proc/irq/' + n + '/smp_affinity_list';
    let now;
    try {
      now = fs.readFileSync(path, 'utf8').trim();
    } catch {
      continue;
    }
    const t = target.get(path);
    if (t !== undefined && t !== now) put(path, t);
  }
} else for (const p of plan) put(p.path, p.orig);
`;

/**
 * The cost a hook pays for one command, start to end, beside the same work in a bare module: fresh processes,
 * alternating (ours, the baseline's build, bare, an empty module; the order rotates each repetition), after one
 * unkept round that brings every file into the page cache.
 */
async function benchCold(res: GuestBenchResult): Promise<void> {
  if (!spec.coldEntry) throw new Error('no cold entry in the spec (bench/guest.ts builds it)');
  const { all, plan } = planIrqs(CpuSet.parseList('4-7'));
  fs.mkdirSync('/run/vfio-isolate', { recursive: true, mode: 0o700 });
  const planFile = join(WORK, 'cold-plan.json');
  fs.writeFileSync(planFile, JSON.stringify(plan));
  const wrap = join(WORK, 'cold-wrap.mjs');
  fs.writeFileSync(wrap, COLD_WRAP);
  const bare = join(WORK, 'cold-bare.mjs');
  fs.writeFileSync(bare, COLD_BARE);
  const empty = join(WORK, 'cold-empty.mjs');
  fs.writeFileSync(empty, '');
  const timing = join(WORK, 'cold-time.json');
  const out: ColdResult = {
    irqs: all,
    changed: plan.length,
    boot: [],
    empty: [],
    bareMask: [],
    bareRestore: [],
    tools: [],
  };
  res.cold = out;
  const once = (module: string, args: string[], flags: string[] = []): number => {
    fs.rmSync(timing, { force: true });
    const p = spawnSync(process.execPath, [...flags, wrap, timing, module, ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    if (p.status !== 0)
      throw new Error(`cold: node ${module} ${args.join(' ')}: exit ${p.status}: ${p.stderr.trim()}`);
    const t = JSON.parse(fs.readFileSync(timing, 'utf8')) as { boot: number; ms: number };
    if (flags.length === 0) out.boot.push(t.boot);
    return t.ms;
  };
  // Each build and koffi are copied to the guest's own tmpfs first, as an installation lies on a local disk: the
  // checkout reaches the guest through virtiofs, where every stat of the module resolver is a round trip to the host.
  const local = join(WORK, 'cold');
  fs.rmSync(local, { recursive: true, force: true });
  for (const pkg of ['koffi', '@koromix/koffi-linux-x64'])
    fs.cpSync(join('node_modules', pkg), join(local, 'node_modules', pkg), { recursive: true });
  const copied = (name: string, entry: string): { name: string; entry: string } => {
    const dir = join(local, name.replace(/\W+/g, '-'));
    fs.cpSync(dirname(resolve(entry)), dir, { recursive: true });
    return { name, entry: join(dir, 'vfio-isolate.mjs') };
  };
  const tools = [
    copied('ours', spec.coldEntry),
    ...(spec.baseline?.coldEntry ? [copied(spec.baseline.rev, spec.baseline.coldEntry)] : []),
  ];
  for (const t of tools) out.tools.push({ name: t.name, mask: [], restore: [], isolate: [], release: [] });
  const runs: ((keep: boolean) => void)[] = [
    ...tools.map((t, i) => (keep: boolean) => {
      const j = freshJournal();
      const m = once(t.entry, ['-u', j, 'irq-affinity', 'mask', 'C4-7']);
      const r = once(t.entry, ['restore', j]);
      fs.rmSync(j, { force: true });
      clearRestoredJournals();
      const iso = once(t.entry, ['isolate', 'C4-7']);
      const rel = once(t.entry, ['release']);
      if (keep) {
        const o = out.tools[i]!;
        o.mask.push(m);
        o.restore.push(r);
        o.isolate.push(iso);
        o.release.push(rel);
      }
    }),
    (keep: boolean) => {
      const m = once(bare, ['mask', planFile]);
      const r = once(bare, ['restore', planFile]);
      if (keep) {
        out.bareMask.push(m);
        out.bareRestore.push(r);
      }
    },
    (keep: boolean) => {
      const e = once(empty, []);
      if (keep) out.empty.push(e);
    },
  ];
  for (const r of runs) r(false);
  out.boot.length = 0;
  for (let rep = 0; rep < spec.coldReps; rep++)
    for (let i = 0; i < runs.length; i++) runs[(i + rep) % runs.length]!(true);
  log(`cold: ${spec.coldReps} repetitions of ${runs.length} fresh-process runs done`);
  // BENCH_PROFILE=1: one more fresh mask and restore of ours, each with node's --cpu-prof
  if (process.env.BENCH_PROFILE === '1') {
    const dir = join(process.cwd(), '.vm-cache', 'bench');
    const prof = (name: string): string[] => [
      '--cpu-prof',
      `--cpu-prof-dir=${dir}`,
      `--cpu-prof-name=cold-${mode}-${name}.cpuprofile`,
      '--cpu-prof-interval=250',
    ];
    const j = freshJournal();
    once(tools[0]!.entry, ['-u', j, 'irq-affinity', 'mask', 'C4-7'], prof('mask'));
    once(tools[0]!.entry, ['restore', j], prof('restore'));
    fs.rmSync(j, { force: true });
    log(`cold: profiles written to ${dir}/cold-${mode}-{mask,restore}.cpuprofile`);
  }
}

// ------------------------------------------------------------------------------------------------ main

async function main(): Promise<void> {
  const res: GuestBenchResult = {
    mode: mode!,
    kernel: readTrim('/proc/sys/kernel/osrelease'),
    cpus: readTrim('/sys/devices/system/cpu/online'),
    memMiB: Math.round(Number(/MemTotal:\s+(\d+)/.exec(read('/proc/meminfo'))?.[1] ?? 0) / 1024),
    taskFile: TASK_FILE,
    ...(spec.baseline ? { baselineRev: spec.baseline.rev } : {}),
    move: [],
    errors: [],
  };
  const part = async (
    name: Spec['parts'][number],
    f: (r: GuestBenchResult) => Promise<void>,
  ): Promise<void> => {
    if (!spec.parts.includes(name)) return;
    const t0 = now();
    try {
      await f(res);
    } catch (e) {
      res.errors.push(`${name}: ${(e as Error).stack ?? String(e)}`);
      log(`${name} failed: ${(e as Error).message}`);
    }
    log(`${name}: ${((now() - t0) / 1000).toFixed(1)} s`);
  };
  await part('move', benchMove);
  await part('irq', benchIrq);
  await part('cycle', benchCycle);
  await part('cold', benchCold);
  process.stdout.write(`BENCH_RESULT ${JSON.stringify(res)}\n`);
}

await main();
