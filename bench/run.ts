/**
 * `npm run bench`: every benchmark, each printing ratios measured side by side in the same run.
 *
 *   npm run bench                    start-up on the host, then the guest benchmarks (v1-hybrid, v2)
 *   npm run bench -- --quick         start-up, move-tasks at 2,000 (v1) / 1,000 (v2), IRQs, hook cycle (BENCH_QUICK=1)
 *   npm run bench -- --no-guest      start-up only
 *   npm run bench -- --modes v2      guest modes to boot (default v1-hybrid,v2)
 *   npm run bench -- --json FILE     also write every raw figure as JSON
 *   npm run bench -- --check         exit 1 when a ratio misses its target (default: report only)
 *   npm run bench -- --no-hyperfine  time start-up with the in-script spawn harness even when hyperfine exists
 *   npm run bench -- --sizes 2000,10000   move-tasks task counts (default: v1 2,000 and 10,000, v2 1,000)
 *   npm run bench -- --parts move,irq     guest parts to run (move, diag, irq, cycle, cold)
 *   npm run bench -- --no-startup    skip the host start-up benchmark
 *   npm run bench -- --reps 15       repetitions of each move-tasks size (default 5; 3 with --quick)
 *   npm run bench -- --cold-reps 7   repetitions of the cold part (fresh processes; default 7, 3 with --quick)
 *   npm run bench -- --baseline REV  the tool at git revision REV runs beside ours, alternating in the same guest:
 *                                    move-tasks -u, isolate/release and the cold runs, as ratios ours ÷ REV's
 *
 * Env: BENCH_PROFILE=1 writes CPU profiles of one run of the tool per benchmark to .vm-cache/bench/;
 * BENCH_REQUIRE_VM=1 makes a missing QEMU a failure instead of a skip; BENCH_NODE_FLAGS="--flag …" runs the
 * guest's node with those flags.
 * Kernel-touching work runs only inside the throw-away QEMU guest (test/vm/); the host only spawns node.
 */
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../test/vm/cache.ts';
import { parseModes, type VmMode } from '../test/vm/harness.ts';
import type { Spec } from './guest-bench.ts';
import {
  MOVE_TARGET,
  buildBaselineBundle,
  buildColdEntries,
  formatGuest,
  guestAvailable,
  moveRows,
  runGuestBench,
  type GuestRun,
} from './guest.ts';
import { STARTUP_TARGET, formatStartup, runStartup, type StartupResult } from './startup.ts';
import { table } from './stats.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: process.env.BENCH_QUICK === '1' },
    'no-guest': { type: 'boolean', default: false },
    modes: { type: 'string', default: 'v1-hybrid,v2' },
    json: { type: 'string' },
    check: { type: 'boolean', default: false },
    runs: { type: 'string', default: '30' },
    'no-hyperfine': { type: 'boolean', default: false },
    sizes: { type: 'string' },
    parts: { type: 'string' },
    'no-startup': { type: 'boolean', default: false },
    baseline: { type: 'string' },
    reps: { type: 'string' },
    'cold-reps': { type: 'string' },
  },
});

const out = (s = ''): void => void process.stdout.write(s + '\n');
const note = (s: string): void => void process.stderr.write(s + '\n');

/** What each mode runs: v1 moves threads (tasks), v2 processes (cgroup.procs). */
function specFor(mode: VmMode, quick: boolean): { spec: Spec; memMiB: number; timeoutSec: number } {
  const v1 = mode === 'v1-hybrid';
  const spec: Spec = {
    sizes: values.sizes
      ? values.sizes.split(',').map(Number)
      : quick
        ? v1
          ? [2000]
          : [1000]
        : v1
          ? [2000, 10000]
          : [1000],
    reps: Number(values.reps) || (quick ? 3 : 5),
    parts: values.parts
      ? (values.parts.split(',') as Spec['parts'])
      : quick
        ? ['move', 'irq', 'cycle']
        : ['move', 'diag', 'irq', 'cycle', 'cold'],
    budgetSec: 60,
    irqReps: quick ? 7 : 15,
    cycleReps: quick ? 3 : 9,
    coldReps: Number(values['cold-reps']) || (quick ? 3 : 7),
  };
  // 10,000 threads need more than the default 1 GiB (kernel stacks, threads-max scales with memory).
  // Each size is measured from a cgroup and from the root (the seed's path), hence the longer timeouts.
  return {
    spec,
    memMiB: v1 && spec.sizes.some((n) => n > 5000) ? 2048 : 1024,
    timeoutSec: quick ? 600 : 900,
  };
}

async function main(): Promise<number> {
  const t0 = Date.now();
  const quick = values.quick!;
  out(`vfio-isolate benchmarks${quick ? ' (quick)' : ''}: ${new Date().toISOString()}`);
  out(
    `host: ${cpus().length} CPUs (${cpus()[0]?.model.trim() ?? '?'}), node ${process.version}, ` +
      `load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
  );
  out('');

  const startup: StartupResult = values['no-startup']
    ? ({ ratios: [] } as unknown as StartupResult)
    : runStartup(REPO_ROOT, {
        runs: Number(values.runs),
        warmup: 3,
        forceSpawn: values['no-hyperfine']!,
        log: note,
      });
  if (!values['no-startup']) {
    out(formatStartup(startup));
    out('');
  }

  const guests: GuestRun[] = [];
  let guestSkipped: string | undefined;
  if (values['no-guest']) guestSkipped = '--no-guest';
  else {
    const avail = guestAvailable();
    if (!avail.ok) guestSkipped = avail.why;
  }
  if (guestSkipped) {
    out(`Guest benchmarks skipped: ${guestSkipped}`);
  } else {
    const modes = parseModes(values.modes);
    const baseline = values.baseline ? await buildBaselineBundle(values.baseline) : undefined;
    let cold: Awaited<ReturnType<typeof buildColdEntries>> | undefined;
    for (const mode of modes) {
      const { spec, memMiB, timeoutSec } = specFor(mode, quick);
      if (spec.parts.includes('cold')) {
        cold ??= buildColdEntries(baseline);
        spec.coldEntry = cold.ours;
      }
      if (baseline) spec.baseline = { ...baseline, ...(cold?.baseline ? { coldEntry: cold.baseline } : {}) };
      note(
        `guest ${mode}: booting (${memMiB} MiB, sizes ${spec.sizes.join(', ')}, ${spec.parts.join(', ')})`,
      );
      const run = await runGuestBench(mode, spec, { memMiB, timeoutSec, log: note });
      guests.push(run);
      out(formatGuest(run));
      out('');
    }
  }

  // Summary: every ratio against its target.
  const rows: string[][] = [];
  let over = 0;
  for (const r of startup.ratios) {
    const ok = r.wall.median <= STARTUP_TARGET;
    if (!ok) over++;
    rows.push([
      `start-up ${r.name} / node -e 0`,
      `${r.wall.median.toFixed(2)}×`,
      r.cpu !== undefined ? `CPU ${r.cpu.toFixed(2)}×` : '',
      `≤ ${STARTUP_TARGET}×`,
      ok ? 'ok' : 'OVER',
    ]);
  }
  for (const g of guests) {
    for (const m of moveRows(g)) {
      if (!m.ours.n) {
        over++;
        rows.push([
          `move-tasks${m.source === 'root' ? ' /' : ''} ${g.mode} ${m.size}`,
          '—',
          m.skipped ?? '',
          `≤ ${MOVE_TARGET}×`,
          'NOT RUN',
        ]);
        continue;
      }
      const ok = m.ratio.median <= MOVE_TARGET && !m.skipped;
      if (!ok) over++;
      rows.push([
        `move-tasks${m.source === 'root' ? ' /' : ''} ${g.mode} ${m.tasks} tasks`,
        `${m.ratio.median.toFixed(2)}×`,
        `${m.usPerTaskOurs.toFixed(0)} µs/task`,
        `≤ ${MOVE_TARGET}×`,
        ok ? 'ok' : 'OVER',
      ]);
    }
  }
  out('Summary');
  out(table(['benchmark', 'ratio', '', 'target', ''], rows));
  const failed = guests.filter((g) => !g.result || g.result.errors.length > 0);
  if (guestSkipped && process.env.BENCH_REQUIRE_VM === '1') failed.push({} as GuestRun);
  out('');
  out(`total ${((Date.now() - t0) / 1000).toFixed(0)} s`);

  if (values.json) {
    writeFileSync(values.json, JSON.stringify({ startup, guests, guestSkipped }, null, 2) + '\n');
    note(`raw figures written to ${values.json}`);
  }
  if (failed.length > 0) return 1;
  return values.check && over > 0 ? 1 : 0;
}

process.exitCode = await main();
