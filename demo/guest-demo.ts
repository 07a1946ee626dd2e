/**
 * The guest half of `npm run demo`: runs INSIDE the throw-away QEMU guest of the real-kernel test harness, as one
 * node process that calls the CLI in-process on the guest's real kernel (no VFIO_ISOLATE_ROOT), and reports each
 * step as an event line on stdout (events.ts) for demo.ts to render. Refuses to run anywhere else: it writes
 * cgroups, IRQ affinities and thread affinities.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { release } from 'node:os';
import { runCli } from '../src/cli/run.ts';
import { COMMANDS } from '../src/cli/table.ts';
import { CpuSet } from '../src/cpus/cpuset.ts';
import { plural } from '../src/report/table.ts';
import { guestMode, guestSetup } from '../test/vm/guest/guest-env.ts';
import { diffSnapshots, parseStat, takeSnapshot, type Snapshot } from '../test/vm/snapshot.ts';
import { chunkArgv, figuresFromStatus, summariseChanges, type StatusFigures } from './summary.ts';
import { encodeEvent, type DemoEvent, type LeakFigures, type ProcessPlacement } from './events.ts';
import { measureDemo } from './guest-measure.ts';

const VM = '4-7';
const HOST = '0-3';
const VM_CPUS = CpuSet.parseList(VM);
const BUSY = 3;
const SAMPLE_MS = 2000;
const PF_NO_SETAFFINITY = 0x04000000;

const t0 = Date.now();
let failures = 0;

function emit(e: DemoEvent): void {
  process.stdout.write(encodeEvent(e));
}
const say = (text: string): void => emit({ type: 'say', text });
const section = (title: string): void => emit({ type: 'section', title });

function check(name: string, ok: boolean, detail = ''): boolean {
  if (!ok) failures++;
  emit({ type: 'check', name, ok, detail });
  return ok;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------------------------------------------------------
// Running the tool

/** The environment of every run: the real kernel (never VFIO_ISOLATE_ROOT), colour when the host shows it. */
function toolEnv(colour: boolean): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, VFIO_ISOLATE_LOCK_WAIT_MS: '10000' };
  delete env.VFIO_ISOLATE_ROOT;
  delete env.NO_COLOR;
  env.TERM = colour ? 'xterm-256color' : 'dumb';
  return env;
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

const COMMAND_NAMES = new Set(COMMANDS.map((c) => c.name));

/** Nothing when it exited 0, else the exit code and the first lines of its stderr. */
function exitDetail(r: RunResult): string {
  if (r.code === 0) return '';
  // eslint-disable-next-line no-control-regex
  const first = (r.stderr.trim().split('\n')[0] ?? '').replace(/\x1b\[[0-9;]*m/g, '');
  const err = first.length > 160 ? `${first.slice(0, 160)}…` : first;
  return `exit ${r.code}${err ? `: ${err}` : ''}`;
}

async function capture(argv: string[], colour: boolean): Promise<RunResult & { seconds: number }> {
  let stdout = '';
  let stderr = '';
  const start = Date.now();
  const code = await runCli(argv, {
    table: COMMANDS,
    env: toolEnv(colour),
    streams: { out: (s) => void (stdout += s), err: (s) => void (stderr += s), isTTY: colour },
  });
  return { code, stdout, stderr, seconds: (Date.now() - start) / 1000 };
}

/** Run vfio-isolate ARGV in-process and show it. */
async function tool(argv: string[], colour: boolean): Promise<RunResult> {
  const r = await capture(argv, colour);
  emit({ type: 'command', argv, chunks: chunkArgv(argv, COMMAND_NAMES), ...r });
  return r;
}

// ---------------------------------------------------------------------------------------------------------------
// Leak figures (status --json)

/** Show `status VM` and take its figures from `status --json VM`. */
async function status(label: string, colour: boolean): Promise<{ shown: RunResult; s?: StatusFigures }> {
  const shown = await tool(['status', `C${VM}`], colour);
  const json = await capture(['status', '--json', `C${VM}`], false);
  try {
    const s = figuresFromStatus(json.stdout);
    emit({ type: 'leaks', label, figures: s.figures });
    return { shown, s };
  } catch (e) {
    check(
      `status --json reads (${label})`,
      false,
      `exit ${json.code}: ${(e as Error).message} ${json.stderr}`,
    );
    return { shown };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Busy host processes and where they run

function cgroupLine(pid: number, controller: 'cpuset' | 'v2'): string | undefined {
  for (const line of (readText(`/proc/${pid}/cgroup`) ?? '').split('\n')) {
    const [, ctrls, path] = line.split(':');
    if (controller === 'v2' ? line.startsWith('0::') : (ctrls ?? '').split(',').includes('cpuset'))
      return path;
  }
  return undefined;
}

function allowedOf(pid: number): string {
  return /^Cpus_allowed_list:\s*(.*)$/m.exec(readText(`/proc/${pid}/status`) ?? '')?.[1]?.trim() ?? '?';
}

async function startBusy(cgroup2: string, slice: string): Promise<ChildProcess[]> {
  const procs: ChildProcess[] = [];
  for (let i = 0; i < BUSY; i++) {
    // The shell joins the slice itself, then spins: one exec per process (each costs ~0.2 s under emulation).
    const script = `echo $$ > ${cgroup2}${slice}/cgroup.procs && while :; do :; done`;
    procs.push(spawn('sh', ['-c', script], { stdio: 'ignore' }));
  }
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (procs.every((p) => p.pid !== undefined && cgroupLine(p.pid, 'v2') === slice)) return procs;
    if (procs.some((p) => p.exitCode !== null)) break;
    await sleep(50);
  }
  throw new Error(`the busy processes did not start in ${slice}`);
}

/**
 * Let the busy processes spin (or stop them). They spin while they are sampled and while the tool moves them;
 * otherwise they are stopped: the emulated guest runs its 8 CPUs on one host thread, and three spinning loops
 * would slow every other step down about fourfold.
 */
function spin(procs: readonly ChildProcess[], on: boolean): void {
  for (const p of procs) p.kill(on ? 'SIGCONT' : 'SIGSTOP');
}

/** Where each process runs: /proc/PID/stat field 39 (the CPU it last ran on), sampled for `ms`. */
async function samplePlacement(pids: readonly number[], ms: number): Promise<ProcessPlacement[]> {
  const seen = pids.map(() => new Map<number, number>());
  const start = Date.now();
  while (Date.now() - start < ms) {
    pids.forEach((pid, i) => {
      const st = parseStat(readText(`/proc/${pid}/stat`) ?? '');
      if (!st) return;
      const cpu = st.field(39);
      seen[i]!.set(cpu, (seen[i]!.get(cpu) ?? 0) + 1);
    });
    await sleep(10);
  }
  return pids.map((pid, i) => {
    const counts = seen[i]!;
    const samples = [...counts.values()].reduce((a, b) => a + b, 0);
    const onVm = [...counts].filter(([c]) => VM_CPUS.has(c)).reduce((a, [, n]) => a + n, 0);
    return { pid, samples, cpus: [...counts.keys()].sort((a, b) => a - b), onVm, allowed: allowedOf(pid) };
  });
}

async function placement(title: string, busy: readonly ChildProcess[]): Promise<ProcessPlacement[]> {
  const start = Date.now();
  spin(busy, true);
  const procs = await samplePlacement(
    busy.map((p) => p.pid!),
    SAMPLE_MS,
  );
  spin(busy, false);
  emit({ type: 'placement', title, vmCpus: VM, seconds: (Date.now() - start) / 1000, procs });
  return procs;
}

function checkPlacement(procs: ProcessPlacement[]): void {
  const onVm = procs.filter((p) => p.onVm > 0);
  const wrongMask = procs.filter((p) => p.allowed !== HOST);
  check(
    `the busy host processes never ran on ${VM}, and may only run on ${HOST}`,
    onVm.length === 0 && wrongMask.length === 0 && procs.every((p) => p.samples > 0),
    [
      ...onVm.map((p) => `pid ${p.pid} ran on ${p.cpus.join(',')}`),
      ...wrongMask.map((p) => `pid ${p.pid} may run on ${p.allowed}`),
    ].join('; '),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// What changed

function changes(title: string, a: Snapshot, b: Snapshot): string[] {
  const lines = diffSnapshots(a, b);
  emit({ type: 'changes', title, summary: summariseChanges(lines), lines });
  return lines;
}

function checkRestored(what: string, before: Snapshot): void {
  const lines = diffSnapshots(before, takeSnapshot());
  check(
    `after ${what}, the snapshot equals the one before (cgroups, IRQs, masks, every thread's affinity)`,
    lines.length === 0,
    lines.slice(0, 10).join('; ') + (lines.length > 10 ? `; +${lines.length - 10} more` : ''),
  );
}

/** Threads that may still use the VM CPUs although only the kernel should keep them there. */
function threadLeaks(snap: Snapshot): string[] {
  const out: string[] = [];
  for (const t of Object.values(snap.tasks)) {
    if (!CpuSet.parseList(t.cpusAllowedList).overlaps(VM_CPUS)) continue;
    const st = parseStat(readText(`/proc/${t.tgid}/task/${t.tid}/stat`) ?? '');
    if (!st) continue; // exited
    if (st.field(9) & PF_NO_SETAFFINITY) continue; // per-CPU kernel thread: only the kernel moves it
    out.push(`thread ${t.tid} (${t.comm}) may run on ${t.cpusAllowedList}`);
  }
  return out;
}

function irqsOnVm(snap: Snapshot): string[] {
  return Object.keys(snap.irqs).filter((irq) => CpuSet.parseList(snap.irqs[irq]!).overlaps(VM_CPUS));
}

/**
 * Check from the snapshots that the IRQs were moved: the only IRQs left with VM CPUs in their affinity are those
 * status calls kernel-managed, or that have no handler (they never fire; the kernel may refuse to move them).
 */
function checkIrqs(before: Snapshot, after: Snapshot, managed: ReadonlySet<string>): void {
  const was = irqsOnVm(before);
  const left = irqsOnVm(after);
  const handlerless = (irq: string): boolean => {
    try {
      return !readdirSync(`/proc/irq/${irq}`, { withFileTypes: true }).some((d) => d.isDirectory());
    } catch {
      return true; // gone
    }
  };
  const kernels = left.filter((irq) => managed.has(irq));
  const idle = left.filter((irq) => !managed.has(irq) && handlerless(irq));
  const wrong = left.filter((irq) => !managed.has(irq) && !handlerless(irq));
  check(
    `every IRQ the kernel lets us move is off ${VM}`,
    wrong.length === 0,
    `${was.length - left.length} of ${was.length} IRQs that listed ${VM} moved; left: ${kernels.length} kernel-managed, ` +
      `${idle.length} without handler` +
      (wrong.length ? `, and movable: ${wrong.map((i) => `IRQ ${i} (${after.irqs[i]})`).join(', ')}` : ''),
  );
}

// ---------------------------------------------------------------------------------------------------------------

function describeLeaks(f: LeakFigures): string {
  return (
    `${plural(f.total, 'movable leak')} onto ${VM}: ${plural(f.tasks, 'host task')}, ` +
    `${plural(f.kthreads, 'kernel thread')}, ${plural(f.irqs, 'IRQ')}, ${plural(f.masks, 'mask')}`
  );
}

async function main(): Promise<number> {
  const mode = guestMode();
  if (!mode) {
    process.stderr.write(
      'guest-demo: refusing to run: this is not a vfio-isolate test guest. It changes cgroups, IRQs and thread ' +
        'affinities of the machine it runs on; run `npm run demo`, which starts it inside a throw-away QEMU guest.\n',
    );
    return 2;
  }
  const colour = process.env.VFIO_DEMO_COLOUR === '1';
  const v1 = mode === 'v1-hybrid';
  const setup = guestSetup();
  const slice = '/user.slice';
  const busy = await startBusy(setup.cgroup2, slice);
  spin(busy, false);
  const pids = busy.map((p) => p.pid!);
  const cleanup = (): void => {
    for (const p of busy) p.kill('SIGKILL');
  };
  process.on('exit', cleanup);
  const onlineCpus = (readText('/sys/devices/system/cpu/online') ?? '?').trim();

  emit({
    type: 'start',
    mode,
    kernel: release(),
    cgroups: v1
      ? `cgroup v1 cpuset at ${setup.cpuset}, slices in a controller-less cgroup2 at ${setup.cgroup2} (systemd's hybrid layout)`
      : `cgroup v2 at ${setup.cgroup2}, cpuset not yet enabled anywhere`,
    cpus: onlineCpus,
    vmCpus: VM,
    hostCpus: HOST,
    busy: pids,
    busyCgroup: slice,
  });

  // 1 ------------------------------------------------------------------------------------------------------------
  section('The machine');
  say(
    `What the tool sees of this guest's CPUs. The plan: give CPUs ${VM} (the second NUMA node, cores 2 and 3 ` +
      `with their SMT siblings) to a VM, and keep ${HOST} for the host.`,
  );
  await tool(['topology'], colour);

  // 2 ------------------------------------------------------------------------------------------------------------
  section(`Before: what may run on the VM CPUs ${VM}`);
  say(
    `Nothing is isolated yet, so every task, kernel thread and IRQ of the host may use ${VM}. status lists each ` +
      `leak with its fix (it exits 1 while there are leaks).`,
  );
  const before = await status('before', colour);
  if (before.s) {
    check(
      'status finds leaks to fix before isolating',
      before.s.figures.total > 0,
      describeLeaks(before.s.figures),
    );
  }
  say(
    `${BUSY} busy loops (sh -c 'while :; do :; done') in ${slice} stand in for host work. They spin while they ` +
      'are sampled and while the tool moves them, and are stopped (SIGSTOP) in between: the emulated guest runs ' +
      'its 8 CPUs on one host thread, and spinning loops would slow every other step down about fourfold.',
  );
  await placement('Where the busy host processes ran before', busy);

  // 3 ------------------------------------------------------------------------------------------------------------
  section("The seed's libvirt hook sequence");
  const hookArgs = v1
    ? ['cpuset-create', '--cpus', `C${HOST}`, '/host.slice', 'move-tasks', '/', '/host.slice']
    : ['drop-caches', 'cpuset-modify', '--cpus', `C${HOST}`, '/system.slice'];
  if (!v1) hookArgs.push('cpuset-modify', '--cpus', `C${HOST}`, '/user.slice', 'compact-memory');
  hookArgs.push('irq-affinity', 'mask', `C${VM}`);
  say(
    v1
      ? `What the original vfio-isolate README puts in a libvirt qemu hook on a cgroup v1 host: create a cpuset ` +
          `/host.slice on CPUs ${HOST}, move every task of the root cpuset into it, and take ${VM} out of every ` +
          `IRQ's affinity. -u records how to undo it, -v says what each step did.`
      : `What the original vfio-isolate README puts in a libvirt qemu hook: drop caches, restrict /system.slice and ` +
          `/user.slice to CPUs ${HOST}, compact memory, and take ${VM} out of every IRQ's affinity. ` +
          `-u records how to undo it, -v says what each step did.`,
  );
  mkdirSync('/run/vfio-demo', { recursive: true });
  const undo = '/run/vfio-demo/hook.undo';
  rmSync(undo, { force: true });
  const snapA = takeSnapshot();
  spin(busy, true);
  const hook = await tool(['-v', '-u', undo, ...hookArgs], colour);
  spin(busy, false);
  check('the hook sequence succeeds', hook.code === 0, exitDetail(hook));
  const snapHook = takeSnapshot();
  changes('What changed (snapshot before → after)', snapA, snapHook);
  if (v1) {
    const eff = readText(`${setup.cpuset}/host.slice/cpuset.effective_cpus`)?.trim();
    const inHost = pids.filter((p) => cgroupLine(p, 'cpuset') === '/host.slice');
    check(
      `/host.slice runs on ${HOST} and holds the busy processes`,
      eff === HOST && inHost.length === pids.length,
      `effective_cpus ${eff ?? '(none)'}, ${inHost.length}/${pids.length} busy processes in it`,
    );
  } else {
    const eff = ['/system.slice', '/user.slice'].map(
      (s) => `${s} ${readText(`${setup.cpuset}${s}/cpuset.cpus.effective`)?.trim() ?? '(none)'}`,
    );
    check(
      `/system.slice and /user.slice run on ${HOST}`,
      eff.every((e) => e.endsWith(` ${HOST}`)),
      eff.join(', '),
    );
  }
  section('After the hook sequence');
  const afterHook = await status('after the hook sequence', colour);
  if (before.s && afterHook.s) {
    const f = afterHook.s.figures;
    checkIrqs(snapA, snapHook, afterHook.s.managedIrqs);
    check(
      'fewer leaks than before',
      f.total < before.s.figures.total,
      `${before.s.figures.total} → ${f.total}`,
    );
    say(
      `Left behind: ${describeLeaks(f)}. ` +
        (v1
          ? `Kernel threads, default_smp_affinity and the workqueue masks are not cpuset business.`
          : `Tasks outside the two slices (init.scope, the root cgroup), kernel threads, default_smp_affinity and ` +
            `the workqueue masks are not covered by the hook.`) +
        ` That is what isolate is for.`,
    );
  }
  checkPlacement(await placement('Where they ran after the hook sequence', busy));

  say(`Undo it: restore replays the undo file, newest change first.`);
  const restore = await tool(['restore', undo], colour);
  check('restore succeeds', restore.code === 0, exitDetail(restore));
  checkRestored('restore', snapA);

  // 4 ------------------------------------------------------------------------------------------------------------
  section(`One command: isolate C${VM}`);
  say(
    `isolate does it all in one journalled step: it ${
      v1
        ? `moves every task that may move into a /host.slice cpuset on ${HOST}`
        : `restricts every top-level cgroup except /machine.slice (where VMs run) to ${HOST}`
    }, takes ${VM} out of the affinity of kernel threads, kthreadd and host tasks no cgroup holds, and sets the ` +
      `workqueue cpumasks, default_smp_affinity and every movable IRQ to ${HOST}. Then it runs the leak check.`,
  );
  const snapB = takeSnapshot();
  spin(busy, true);
  const iso = await tool(['isolate', `C${VM}`], colour);
  spin(busy, false);
  check('isolate succeeds', iso.code === 0, exitDetail(iso));
  const snapC = takeSnapshot();
  changes('What changed (snapshot before → after)', snapB, snapC);
  section('After isolate');
  const afterIso = await status('after isolate', colour);
  check('status after isolate exits 0', afterIso.shown.code === 0, exitDetail(afterIso.shown));
  if (afterIso.s) {
    const f = afterIso.s.figures;
    check(
      `no movable leak onto ${VM} (tasks, kernel threads, IRQs, masks)`,
      f.total === 0,
      f.total ? `${describeLeaks(f)}: ${afterIso.s.leakLines.slice(0, 5).join('; ')}` : '',
    );
    checkIrqs(snapB, snapC, afterIso.s.managedIrqs);
    const own = threadLeaks(snapC);
    check(
      `cross-check in /proc: only threads whose affinity only the kernel sets may still run on ${VM}`,
      own.length === 0,
      own.slice(0, 8).join('; ') + (own.length > 8 ? `; +${own.length - 8} more` : ''),
    );
  }
  checkPlacement(await placement('Where they ran after isolate', busy));

  say('And give the CPUs back: release undoes exactly what isolate changed.');
  const rel = await tool(['release'], colour);
  check('release succeeds', rel.code === 0, exitDetail(rel));
  checkRestored('release', snapB);

  await measureDemo({ section, say, check, tool }, { vm: VM, noisy: 5, seconds: 1, colour });

  cleanup();
  const ok = failures === 0;
  emit({ type: 'end', ok, seconds: (Date.now() - t0) / 1000 });
  return ok ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`guest-demo: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    emit({ type: 'check', name: 'the demo runs to its end', ok: false, detail: String(e) });
    emit({ type: 'end', ok: false, seconds: (Date.now() - t0) / 1000 });
    process.exitCode = 1;
  },
);
