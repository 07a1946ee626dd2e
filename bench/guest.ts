/**
 * Host side of the guest benchmarks: boots one throw-away QEMU guest per cgroup mode (test/vm/harness.ts), runs
 * bench/guest-bench.ts in it (one node process per boot), and turns its raw timings into ratios.
 */
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { REPO_ROOT, cacheSubdir } from '../test/vm/cache.ts';
import { ensureKernels, runInGuest, vmAvailable, type VmMode } from '../test/vm/harness.ts';
import type { ColdResult, GuestBenchResult, Spec, ToolRun } from './guest-bench.ts';
import { fmtMs, fmtRatio, linearity, pairedRatio, summarize, table, verdict, type Summary } from './stats.ts';

/** Issue 17: move-tasks marginal cost (start-up subtracted) at most 1.3× a bare loop of one write per task. */
export const MOVE_TARGET = 1.3;

export interface GuestRun {
  mode: VmMode;
  spec: Spec;
  memMiB: number;
  result?: GuestBenchResult;
  error?: string;
  bootSeconds?: number;
  seconds: number;
}

/** Whether guest benchmarks can run here; the reason when not. */
export function guestAvailable(): { ok: boolean; why?: string } {
  const a = vmAvailable();
  return a.ok ? { ok: true } : { ok: false, why: `${a.why ?? 'QEMU missing'} (install: ${a.install ?? ''})` };
}

/** One bench run at a time on this checkout (another `npm run bench` waits; guest tests are not affected). */
function benchLock(log: (s: string) => void): () => void {
  const file = join(cacheSubdir('bench'), 'lock');
  mkdirSync(join(file, '..'), { recursive: true });
  for (let waited = 0; ; waited++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => rmSync(file, { force: true });
    } catch {
      const pid = Number(readFileSafe(file).trim());
      let alive: boolean;
      try {
        if (pid > 0) process.kill(pid, 0);
        alive = pid > 0;
      } catch {
        alive = false;
      }
      if (!alive) {
        rmSync(file, { force: true });
        continue;
      }
      if (waited === 0) log(`guest: another benchmark (pid ${pid}) is running; waiting for it`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2000);
    }
  }
}

function readFileSafe(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Bundle `entry` into one ESM file the way scripts/build.mjs bundles the tool (koffi stays external, the version of
 * the package.json in `pkgDir` is defined in); `nodePaths` resolves the bundled libraries of a tree without its own
 * node_modules.
 */
async function bundleLikeTheTool(entry: string, out: string, pkgDir: string, nodePaths: string[] = []) {
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string };
  await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: out,
    external: ['koffi'],
    nodePaths,
    define: { __VERSION__: JSON.stringify(pkg.version) },
    legalComments: 'none',
    logLevel: 'warning',
  });
}

/**
 * Bundle bench/guest-bench.ts (with the tool's sources) the way scripts/build.mjs bundles the tool, so the guest
 * measures the same compiled code as dist/vfio-isolate.mjs, and starts without tsx (seconds under TCG).
 */
export async function buildGuestBundle(): Promise<string> {
  const out = join(cacheSubdir('bench'), 'guest-bench.mjs');
  await bundleLikeTheTool(join(REPO_ROOT, 'bench', 'guest-bench.ts'), out, REPO_ROOT);
  return relative(REPO_ROOT, out);
}

/** The sources of revision `rev` (src/ and package.json) extracted into `dir`, which must exist. */
export function archiveSources(rev: string, dir: string): void {
  execFileSync('sh', [
    '-c',
    'git -C "$0" archive "$1" src package.json | tar -x -C "$2"',
    REPO_ROOT,
    rev,
    dir,
  ]);
}

/**
 * The product of the tree at `root` (this repository, or sources archiveSources extracted) built by scripts/build.mjs
 * into `outdir` as dist/ is built, its libraries taken from this repository's node_modules; `extra`: more options
 * of build.mjs. Returns the entry's path.
 */
export function buildProduct(root: string, outdir: string, extra: string[] = []): string {
  execFileSync(process.execPath, [
    join(REPO_ROOT, 'scripts', 'build.mjs'),
    ...['--root', root, '--outdir', outdir, '--node-path', join(REPO_ROOT, 'node_modules')],
    ...extra,
  ]);
  return join(outdir, 'vfio-isolate.mjs');
}

/**
 * `--baseline REV`: the tool's sources at REV (git archive of src/ into the cache), bundled like the guest bench
 * into one module exporting runCli and COMMANDS, so that the guest can run that revision's isolate/release beside
 * ours. Returns the bundle's path relative to the repository (the guest's working directory).
 */
export async function buildBaselineBundle(rev: string): Promise<{ rev: string; bundle: string }> {
  const sha = execFileSync('git', ['-C', REPO_ROOT, 'rev-parse', '--verify', `${rev}^{commit}`], {
    encoding: 'utf8',
  }).trim();
  const dir = join(cacheSubdir('bench'), `baseline-${sha.slice(0, 12)}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  archiveSources(sha, dir);
  const entry = join(dir, 'entry.ts');
  writeFileSync(
    entry,
    "export { runCli } from './src/cli/run.ts';\nexport { COMMANDS } from './src/cli/table.ts';\n",
  );
  const out = join(dir, 'tool.mjs');
  await bundleLikeTheTool(entry, out, dir, [join(REPO_ROOT, 'node_modules')]);
  return { rev: sha.startsWith(rev) ? rev : `${rev} (${sha.slice(0, 7)})`, bundle: relative(REPO_ROOT, out) };
}

/**
 * The cold part's entries: this tree's product and, with --baseline, REV's (the tree buildBaselineBundle archived),
 * each built by scripts/build.mjs into the cache as dist/ is built. Paths relative to the repository.
 */
export function buildColdEntries(baseline?: { bundle: string }): { ours: string; baseline?: string } {
  const build = (root: string, outdir: string): string => relative(REPO_ROOT, buildProduct(root, outdir));
  const ours = build(REPO_ROOT, join(cacheSubdir('bench'), 'cold-ours'));
  if (!baseline) return { ours };
  const dir = dirname(join(REPO_ROOT, baseline.bundle));
  return { ours, baseline: build(dir, join(dir, 'cold')) };
}

/**
 * BENCH_NODE_FLAGS: node/V8 flags for the guest's node (e.g. "--single-threaded"), to see whether a figure depends on
 * how V8 runs under emulation. Each must look like --name or --name=value; anything else is refused.
 */
export function guestNodeFlags(env: NodeJS.ProcessEnv = process.env): string[] {
  const flags = (env.BENCH_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
  for (const f of flags)
    if (!/^--[a-z0-9][a-z0-9-]*(=[\w.,-]+)?$/.test(f))
      throw new Error(`BENCH_NODE_FLAGS: ${JSON.stringify(f)} is not a node flag (--name or --name=value)`);
  return flags;
}

export async function runGuestBench(
  mode: VmMode,
  spec: Spec,
  opts: { memMiB: number; timeoutSec: number; log: (s: string) => void },
): Promise<GuestRun> {
  const t0 = Date.now();
  const release = benchLock(opts.log);
  try {
    await ensureKernels([mode], (l) => opts.log(`guest: ${l}`));
    const bundle = await buildGuestBundle();
    const nodeFlags = guestNodeFlags();
    if (nodeFlags.length > 0) opts.log(`guest ${mode}: node ${nodeFlags.join(' ')}`);
    let pending = '';
    for (let attempt = 1; attempt <= 2; attempt++) {
      const r = await runInGuest({
        mode,
        command: `exec node ${[...nodeFlags, bundle].join(' ')}\n`,
        timeoutSec: opts.timeoutSec,
        memMiB: opts.memMiB,
        env: {
          BENCH_SPEC: JSON.stringify(spec),
          ...(process.env.BENCH_PROFILE === '1' ? { BENCH_PROFILE: '1' } : {}),
          ...(process.env.BENCH_TRACE === '1' ? { BENCH_TRACE: '1' } : {}),
          ...(process.env.BENCH_TRACE_RUNS ? { BENCH_TRACE_RUNS: process.env.BENCH_TRACE_RUNS } : {}),
          ...(process.env.BENCH_PROFILE_RUNS ? { BENCH_PROFILE_RUNS: process.env.BENCH_PROFILE_RUNS } : {}),
        },
        onOutput: (chunk, stream) => {
          if (stream !== 'stderr') return;
          pending += chunk;
          const lines = pending.split('\n');
          pending = lines.pop() ?? '';
          for (const l of lines) if (l.trim()) opts.log(`  ${l}`);
        },
      });
      // the guest's whole standard output, for a run with V8's tracing flags (BENCH_NODE_FLAGS="--trace-deopt")
      writeFileSync(join(cacheSubdir('bench'), `guest-${mode}.out`), r.stdout);
      const line = r.stdout.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
      const base = {
        mode,
        spec,
        memMiB: opts.memMiB,
        ...(r.bootSeconds !== undefined ? { bootSeconds: r.bootSeconds } : {}),
      };
      if (line) {
        return {
          ...base,
          result: JSON.parse(line.slice('BENCH_RESULT '.length)) as GuestBenchResult,
          seconds: (Date.now() - t0) / 1000,
        };
      }
      const why = r.timedOut
        ? `guest killed after ${opts.timeoutSec} s`
        : `no result from the guest (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-5).join(' | ')}`;
      // A guest that died without running the benchmark (e.g. starved by other guests) is worth one more try;
      // a benchmark that ran and failed is not.
      if (attempt === 1 && !r.timedOut && r.code === 125) {
        opts.log(`guest ${mode}: ${why}; retrying once`);
        continue;
      }
      opts.log(`guest ${mode}: ${why}; console tail:\n${r.consoleTail}`);
      return { ...base, error: why, seconds: (Date.now() - t0) / 1000 };
    }
    throw new Error('unreachable');
  } finally {
    release();
  }
}

// ------------------------------------------------------------------------------------------------ reporting

const ms = (runs: readonly ToolRun[]): number[] => runs.map((r) => r.ms);

function phaseMedians(runs: readonly ToolRun[]): Record<string, number> {
  const keys = new Set(runs.flatMap((r) => Object.keys(r.phases)));
  const out: Record<string, number> = {};
  for (const k of keys) out[k] = summarize(runs.map((r) => r.phases[k] ?? 0)).median;
  return out;
}

const PHASES = ['parse', 'plan', 'lock', 'journal', 'apply', 'finish'];

/** "plan 12 ms, journal 1.2 ms, ...": the phases of VFIO_ISOLATE_TIMINGS, in run order, those present only. */
function fmtPhases(p: Record<string, number>): string {
  return PHASES.filter((n) => p[n] !== undefined)
    .map((n) => `${n} ${fmtMs(p[n]!)}`)
    .join(', ');
}

export interface MoveRow {
  mode: VmMode;
  size: number;
  tasks: number;
  bare: Summary;
  ours: Summary;
  ratio: Summary;
  ratioNoJournal: Summary;
  usPerTaskBare: number;
  usPerTaskOurs: number;
  /** Ours ÷ the baseline revision's move-tasks (--baseline), paired in the same rotation. */
  ratioBase?: Summary;
  /** Before 6.2: ours ÷ the bare loop that also reads every thread's mask (ours with -u, and without). */
  ratioMasks?: Summary;
  ratioMasksNoJournal?: Summary;
  skipped?: string;
  /** 'root' for the seed's `move-tasks / DST`. */
  source?: 'root';
}

export function moveRows(run: GuestRun): MoveRow[] {
  const r = run.result;
  if (!r) return [];
  return r.move.map((m) => {
    const bare = summarize(m.bare);
    const ours = summarize(ms(m.ours));
    return {
      mode: run.mode,
      size: m.size,
      tasks: m.tasks,
      bare,
      ours,
      ratio: pairedRatio(ms(m.ours), m.bare),
      ratioNoJournal: pairedRatio(ms(m.oursNoJournal), m.bare),
      ...(m.base && m.base.length > 0 ? { ratioBase: pairedRatio(ms(m.ours), ms(m.base)) } : {}),
      ...(m.bareMasks && m.bareMasks.length > 0
        ? {
            ratioMasks: pairedRatio(ms(m.ours), m.bareMasks),
            ratioMasksNoJournal: pairedRatio(ms(m.oursNoJournal), m.bareMasks),
          }
        : {}),
      usPerTaskBare: m.tasks ? (bare.median * 1000) / m.tasks : Number.NaN,
      usPerTaskOurs: m.tasks ? (ours.median * 1000) / m.tasks : Number.NaN,
      ...(m.skipped ? { skipped: m.skipped } : {}),
      ...(m.source ? { source: m.source } : {}),
    };
  });
}

/**
 * The lines of a "bare + checks" floor (bare + safety + the system calls of the checks other issues ask for): what
 * the floor itself costs against the bare loop (a target below it cannot be met by any tool that keeps those
 * guarantees, on this kernel) and ours against the floor (the tool's own cost).
 */
function checkedLines(
  checked: readonly number[],
  bare: readonly number[],
  ours: readonly number[],
): string[] {
  return [
    `    the floor with the checks' system calls (bare + safety + the trust walks of the journal and the lock's directory, the boot id; restore: the registry lookup too): ${fmtMs(summarize(checked).median)}`,
    `      floor ÷ bare ${fmtRatio(pairedRatio(checked, bare))}; ours ÷ floor ${fmtRatio(pairedRatio(ours, checked))}`,
  ];
}

export function formatGuest(run: GuestRun): string {
  const out: string[] = [];
  const head = `Guest ${run.mode}`;
  if (!run.result) {
    out.push(`${head}: FAILED: ${run.error ?? 'no result'}`);
    return out.join('\n');
  }
  const r = run.result;
  out.push(
    `${head}: kernel ${r.kernel}, CPUs ${r.cpus}, ${r.memMiB} MiB, TCG (boot ${run.bootSeconds?.toFixed(1) ?? '?'} s, ` +
      `whole guest ${run.seconds.toFixed(0)} s); move-tasks writes ${r.taskFile}`,
  );
  for (const e of r.errors) out.push(`  ERROR ${e.split('\n')[0]}`);

  const allRows = moveRows(run);
  for (const source of ['cgroup', 'root'] as const) {
    const rows = allRows.filter((x) => (x.source ?? 'cgroup') === source);
    if (rows.length === 0) continue;
    out.push(
      '',
      source === 'root'
        ? `  move-tasks / DST (the seed's path: the root's own tasks and kernel threads too): the tool vs the bare loop`
        : `  move-tasks SRC DST: the tool in-process (runCli, -u journal) vs a bare one-fd write loop`,
    );
    out.push(
      table(
        [
          'tasks',
          'bare median',
          'ours median',
          'µs/task bare',
          'µs/task ours',
          'ratio ours/bare',
          'no -u',
          'target',
        ],
        rows.map((x) =>
          x.skipped && !x.ours.n
            ? [String(x.size), '—', '—', '—', '—', `skipped: ${x.skipped}`, '', '']
            : [
                String(x.tasks || x.size),
                fmtMs(x.bare.median),
                fmtMs(x.ours.median),
                x.usPerTaskBare.toFixed(0),
                x.usPerTaskOurs.toFixed(0),
                fmtRatio(x.ratio),
                Number.isFinite(x.ratioNoJournal.median) ? `${x.ratioNoJournal.median.toFixed(2)}×` : '—',
                x.skipped ? `aborted: ${x.skipped}` : verdict(x.ratio, MOVE_TARGET),
              ],
        ),
      )
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n'),
    );
    const measured = rows.filter((x) => x.ours.n && Number.isFinite(x.usPerTaskOurs) && !x.skipped);
    if (measured.length >= 2) {
      // Marginal µs per task between sizes, so a fixed cost cannot make a curve look linear (see linearity()).
      const lin = linearity(measured.map((x) => [x.tasks, x.ours.median] as const));
      const bare = linearity(measured.map((x) => [x.tasks, x.bare.median] as const));
      out.push(
        `  linearity: marginal µs/task of the tool ${lin.slopes.map((v) => v.toFixed(0)).join(' → ')} ` +
          `(bare ${bare.slopes.map((v) => v.toFixed(0)).join(' → ')}) over ${measured.map((x) => x.tasks).join(', ')} tasks: ` +
          lin.verdict +
          `; marginal ratio (fixed costs left out) ${lin.slopes
            .map((v, i) => `${(v / (bare.slopes[i] ?? Number.NaN)).toFixed(2)}×`)
            .join(' → ')}`,
      );
    }
    for (const x of rows)
      if (x.ratioMasks)
        out.push(
          `  ${x.tasks} tasks: ours ÷ the bare loop that also reads each thread's mask (the floor on this kernel, ` +
            `whose attach replaces masks): ${fmtRatio(x.ratioMasks)}; no -u ${x.ratioMasksNoJournal!.median.toFixed(2)}×`,
        );
    for (const x of rows)
      if (x.ratioBase)
        out.push(
          `  ${x.tasks} tasks: ours ÷ ${r.baselineRev ?? 'the baseline revision'}'s move-tasks -u, same guest: ${fmtRatio(x.ratioBase)}`,
        );
    const big = r.move.filter((m) => m.ours.length && (m.source ?? 'cgroup') === source).at(-1);
    if (big) out.push(`  phases at ${big.tasks} tasks (median): ${fmtPhases(phaseMedians(big.ours))}`);
    if (big?.oursNoJournal.length)
      out.push(`  the same without -u: ${fmtPhases(phaseMedians(big.oursNoJournal))}`);
  }
  if (r.diag) {
    out.push(
      `  per-task cost of single operations at ${r.diag.tasks} tasks (warm): ` +
        Object.entries(r.diag.perTaskUs)
          .map(([k, v]) => `${k} ${v.toFixed(0)} µs`)
          .join(', '),
    );
  }
  if (r.irq) {
    const q = r.irq;
    const ratio = pairedRatio(ms(q.ours), q.bare);
    out.push(
      '',
      `  irq-affinity mask C4-7 (${q.irqs} IRQs, ${q.changed} to change) vs a bare loop writing the same values:`,
      `    bare ${fmtMs(summarize(q.bare).median)}, ours ${fmtMs(summarize(ms(q.ours)).median)}: ratio ${fmtRatio(ratio)}`,
      `    phases (median): ${fmtPhases(phaseMedians(q.ours))}`,
    );
    if (q.bareSafe?.length)
      out.push(
        `    ours ÷ the bare loop plus the lock and a durable journal (the floor of an exclusive, crash-safe tool; bare + safety ${fmtMs(summarize(q.bareSafe).median)}): ${fmtRatio(pairedRatio(ms(q.ours), q.bareSafe))}`,
      );
    if (q.bareChecked?.length) out.push(...checkedLines(q.bareChecked, q.bare, ms(q.ours)));
    if (q.restore?.length && q.restoreBare?.length) {
      out.push(
        `  restore of it (restore F) vs a bare loop reading the saved old values and writing each back:`,
        `    bare ${fmtMs(summarize(q.restoreBare).median)}, ours ${fmtMs(summarize(ms(q.restore)).median)}: ratio ${fmtRatio(pairedRatio(ms(q.restore), q.restoreBare))}`,
        `    phases (median): ${fmtPhases(phaseMedians(q.restore))}`,
      );
      if (q.restoreBareSafe?.length)
        out.push(
          `    ours ÷ the bare loop plus the lock, a read of each value before its write and the journal marked restored durably (bare + safety ${fmtMs(summarize(q.restoreBareSafe).median)}): ${fmtRatio(pairedRatio(ms(q.restore), q.restoreBareSafe))}`,
        );
      if (q.restoreBareChecked?.length && q.restoreBare?.length)
        out.push(...checkedLines(q.restoreBareChecked, q.restoreBare, ms(q.restore)));
    }
  }
  if (r.cycle) {
    const c = r.cycle;
    const hook = pairedRatio(ms(c.hook), c.hookBare);
    const rest = pairedRatio(ms(c.restore), c.restoreBare);
    out.push(
      '',
      `  hook sequence: vfio-isolate -u F ${c.hookArgv.join(' ')}`,
      `    apply:   bare ${fmtMs(summarize(c.hookBare).median)}, ours ${fmtMs(summarize(ms(c.hook)).median)}: ratio ${fmtRatio(hook)}`,
      `             phases: ${fmtPhases(phaseMedians(c.hook))}`,
      `    restore: bare ${fmtMs(summarize(c.restoreBare).median)}, ours ${fmtMs(summarize(ms(c.restore)).median)}: ratio ${fmtRatio(rest)}`,
      `             phases: ${fmtPhases(phaseMedians(c.restore))}`,
      `  isolate C4-7: ${fmtMs(summarize(ms(c.isolate)).median)} (${fmtPhases(phaseMedians(c.isolate))})`,
      `  release:      ${fmtMs(summarize(ms(c.release)).median)} (${fmtPhases(phaseMedians(c.release))})`,
    );
    if (c.baseline && c.baseline.isolate.length > 0) {
      const b = c.baseline;
      const sum = (a: ToolRun[], z: ToolRun[]): number[] => a.map((x, i) => x.ms + (z[i]?.ms ?? 0));
      const ours = sum(c.isolate, c.release);
      const theirs = sum(b.isolate, b.release);
      out.push(
        `  the same pairs by ${b.rev}, alternating with ours in this guest:`,
        `    isolate C4-7: ${fmtMs(summarize(ms(b.isolate)).median)} (${fmtPhases(phaseMedians(b.isolate))})`,
        `    release:      ${fmtMs(summarize(ms(b.release)).median)} (${fmtPhases(phaseMedians(b.release))})`,
        `    isolate + release: ours ${fmtMs(summarize(ours).median)}, ${b.rev} ${fmtMs(summarize(theirs).median)}: ratio ours/theirs ${fmtRatio(pairedRatio(ours, theirs))}`,
      );
      // BENCH_RAW=1: each pair's two sums (ms), in the order they ran
      if (process.env.BENCH_RAW === '1')
        out.push(
          `    pairs (ours/${b.rev} ms): ${ours.map((o, i) => `${o.toFixed(0)}/${theirs[i]?.toFixed(0)}`).join(' ')}`,
        );
    }
    out.push(...c.notes.map((n) => `  note: ${n}`));
  }
  if (r.cold) out.push('', ...coldLines(r.cold));
  return out.join('\n');
}

/**
 * The cold part: per command, the fresh process's time from the import of the entry to its exit, beside the bare
 * module's, each less an empty module's (what any fresh process costs past node's own start-up): the marginal ratio.
 */
export function coldLines(c: ColdResult): string[] {
  const med = (xs: readonly number[]): number => summarize(xs).median;
  const e = med(c.empty);
  const marginal = (ours: readonly number[], bare: readonly number[]): string =>
    `${((med(ours) - e) / (med(bare) - e)).toFixed(2)}×`;
  const out = [
    `  fresh processes, as a hook runs them (${c.irqs} IRQs, ${c.changed} to change; ${c.empty.length} repetitions): ms from the import of the entry to exit`,
    `    node's own start-up before it ${fmtMs(med(c.boot))}; an empty module ${fmtMs(e)}; bare module: mask ${fmtMs(med(c.bareMask))}, restore ${fmtMs(med(c.bareRestore))}`,
  ];
  for (const t of c.tools)
    out.push(
      `    ${t.name}: -u J irq-affinity mask C4-7 ${fmtMs(med(t.mask))} (less the empty module ÷ the bare one's: ${marginal(t.mask, c.bareMask)}), ` +
        `restore J ${fmtMs(med(t.restore))} (${marginal(t.restore, c.bareRestore)})`,
    );
  for (const t of c.tools)
    if (t.isolate.length > 0)
      out.push(`    ${t.name}: isolate C4-7 ${fmtMs(med(t.isolate))}, release ${fmtMs(med(t.release))}`);
  const [ours, base] = c.tools;
  if (ours && base) {
    out.push(
      `    ours ÷ ${base.name}, paired: mask ${fmtRatio(pairedRatio(ours.mask, base.mask))}; restore ${fmtRatio(pairedRatio(ours.restore, base.restore))}`,
    );
    if (ours.isolate.length > 0 && base.isolate.length > 0)
      out.push(
        `    ours ÷ ${base.name}, paired: isolate ${fmtRatio(pairedRatio(ours.isolate, base.isolate))}; release ${fmtRatio(pairedRatio(ours.release, base.release))}`,
      );
  }
  return out;
}
