/**
 * Start-up on the host: `node dist/vfio-isolate.mjs` with `--help`, `--version`, `help isolate`, `completion bash` and a
 * usage error (exit 2) next to `node -e 0`, with hyperfine (`--warmup 3 --runs 30 --export-json`) when it is
 * installed, else with an in-script spawn harness that runs the commands interleaved. Each must exit as expected.
 * Never runs anything that changes kernel state.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  fmtRatio,
  fmtSummaryMs,
  medianRatio,
  pairedRatio,
  summarize,
  table,
  verdict,
  type Summary,
} from './stats.ts';

/** Each start-up command may take at most this multiple of `node -e 0` (issue 16). */
export const STARTUP_TARGET = 1.2;

export interface StartupRow {
  name: string;
  command: string;
  /** Wall time of each run, ms. */
  times: number[];
  wall: Summary;
  /** Mean user+system CPU time per run, when known. */
  cpuMs?: number;
}

export interface StartupResult {
  tool: 'hyperfine' | 'spawn';
  runs: number;
  warmup: number;
  loadavg: number[];
  rows: StartupRow[];
  ratios: { name: string; wall: Summary; cpu?: number }[];
  bundle: string;
  built: boolean;
  bundleBytes: number;
  /** Bytes >= 0x80 in dist/: one is enough to make V8 decode and scan its whole file as UTF-16. */
  nonAscii: number;
}

function newestMtime(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** dist/vfio-isolate.mjs, rebuilt (bundle only, as `npm run build` does first) when missing or older than src/. */
export function ensureBundle(repo: string, log: (s: string) => void): { bundle: string; built: boolean } {
  const bundle = join(repo, 'dist', 'vfio-isolate.mjs');
  let stale: boolean;
  try {
    stale = statSync(bundle).mtimeMs < newestMtime(join(repo, 'src'));
  } catch {
    stale = true;
  }
  if (!stale) return { bundle, built: false };
  log('startup: dist/vfio-isolate.mjs is missing or older than src/: building it (node scripts/build.mjs)');
  const r = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: repo, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('node scripts/build.mjs failed');
  return { bundle, built: true };
}

function hyperfineAvailable(): boolean {
  const r = spawnSync('hyperfine', ['--version'], { stdio: 'ignore' });
  return r.status === 0;
}

interface Cmd {
  name: string;
  argv: string[];
  /** The exit status it must have (default 0). */
  code?: number;
}

function shellJoin(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

interface HyperfineJson {
  results: { command: string; times: number[]; user: number; system: number; exit_codes?: number[] }[];
}

function viaHyperfine(cmds: Cmd[], runs: number, warmup: number, cwd: string): StartupRow[] {
  const dir = mkdtempSync(join(tmpdir(), 'vfio-bench-'));
  const json = join(dir, 'startup.json');
  try {
    const args = ['-N', '--style', 'none', '--warmup', String(warmup), '--runs', String(runs)];
    // A command expected to fail (the usage error) needs -i; every exit status is checked below instead.
    if (cmds.some((c) => (c.code ?? 0) !== 0)) args.push('-i');
    args.push('--export-json', json, ...cmds.map((c) => shellJoin(c.argv)));
    const r = spawnSync('hyperfine', args, { cwd, stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status !== 0) throw new Error(`hyperfine exited ${r.status}`);
    const data = JSON.parse(readFileSync(json, 'utf8')) as HyperfineJson;
    return cmds.map((c, i) => {
      const res = data.results[i]!;
      const bad = (res.exit_codes ?? []).find((x) => x !== (c.code ?? 0));
      if (bad !== undefined) throw new Error(`${res.command} exited ${bad}, not ${c.code ?? 0}`);
      const ms = res.times.map((t) => t * 1000);
      return {
        name: c.name,
        command: res.command,
        times: ms,
        wall: summarize(ms),
        cpuMs: (res.user + res.system) * 1000,
      };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** CPU time (user+system, ms) of all reaped children so far, from /proc/self/stat (cutime, cstime). */
function childrenCpuMs(): number | undefined {
  try {
    const s = readFileSync('/proc/self/stat', 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[13]) + Number(f[14])) * 1000) / 100; // fields 16, 17 in USER_HZ (100)
  } catch {
    return undefined;
  }
}

/** The fallback: every round runs each command once, in a rotating order, so load changes hit all alike. */
function viaSpawn(cmds: Cmd[], runs: number, warmup: number, cwd: string): StartupRow[] {
  const times = cmds.map(() => [] as number[]);
  const cpu = cmds.map(() => 0);
  for (let round = 0; round < warmup + runs; round++) {
    for (let j = 0; j < cmds.length; j++) {
      const i = (round + j) % cmds.length;
      const c = cmds[i]!;
      const c0 = childrenCpuMs();
      const t0 = process.hrtime.bigint();
      const r = spawnSync(c.argv[0]!, c.argv.slice(1), { cwd, stdio: 'ignore' });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const c1 = childrenCpuMs();
      if (r.status !== (c.code ?? 0))
        throw new Error(`${shellJoin(c.argv)} exited ${r.status}, not ${c.code ?? 0}`);
      if (round < warmup) continue;
      times[i]!.push(ms);
      if (c0 !== undefined && c1 !== undefined) cpu[i]! += c1 - c0;
    }
  }
  return cmds.map((c, i) => ({
    name: c.name,
    command: shellJoin(c.argv),
    times: times[i]!,
    wall: summarize(times[i]!),
    cpuMs: cpu[i]! / runs,
  }));
}

export function runStartup(
  repo: string,
  opts: { runs?: number; warmup?: number; forceSpawn?: boolean; log: (s: string) => void },
): StartupResult {
  const runs = opts.runs ?? 30;
  const warmup = opts.warmup ?? 3;
  const { bundle, built } = ensureBundle(repo, opts.log);
  const rel = 'dist/vfio-isolate.mjs';
  const node = process.execPath;
  const cmds: Cmd[] = [
    { name: 'node -e 0', argv: [node, '-e', '0'] },
    { name: '--help', argv: [node, rel, '--help'] },
    { name: '--version', argv: [node, rel, '--version'] },
    { name: 'help isolate', argv: [node, rel, 'help', 'isolate'] },
    { name: 'completion bash', argv: [node, rel, 'completion', 'bash'] },
    { name: 'usage error', argv: [node, rel, 'cpuset-modify'], code: 2 },
  ];
  const useHyperfine = !opts.forceSpawn && hyperfineAvailable();
  opts.log(
    useHyperfine
      ? `startup: hyperfine -N --warmup ${warmup} --runs ${runs} (${cmds.length} commands)`
      : `startup: hyperfine not installed; in-script spawn harness, ${runs} interleaved rounds after ${warmup} warm-up rounds`,
  );
  const rows = useHyperfine ? viaHyperfine(cmds, runs, warmup, repo) : viaSpawn(cmds, runs, warmup, repo);
  const base = rows[0]!;
  const ratios = rows.slice(1).map((r) => ({
    name: r.name,
    // hyperfine runs the commands one after the other: compare medians; the spawn harness pairs its rounds.
    wall: useHyperfine ? medianRatio(r.times, base.times) : pairedRatio(r.times, base.times),
    ...(r.cpuMs !== undefined && base.cpuMs ? { cpu: r.cpuMs / base.cpuMs } : {}),
  }));
  // The entry and every chunk it may load (dist/chunks/): sizes and non-ASCII bytes of all of them.
  const chunkDir = join(repo, 'dist', 'chunks');
  const files = [bundle, ...readdirSync(chunkDir).map((f) => join(chunkDir, f))];
  let total = 0;
  let nonAscii = 0;
  for (const f of files) {
    const bytes = readFileSync(f);
    total += bytes.length;
    for (const b of bytes) if (b >= 0x80) nonAscii++;
  }
  return {
    tool: useHyperfine ? 'hyperfine' : 'spawn',
    runs,
    warmup,
    loadavg: loadavg(),
    rows,
    ratios,
    bundle,
    built,
    bundleBytes: total,
    nonAscii,
  };
}

export function formatStartup(r: StartupResult): string {
  const rows = r.rows.map((x) => [
    x.name,
    fmtSummaryMs(x.wall),
    `${x.wall.q1.toFixed(0)}–${x.wall.q3.toFixed(0)} ms`,
    x.cpuMs !== undefined ? `${x.cpuMs.toFixed(0)} ms` : '—',
  ]);
  const lines = [
    `dist/ (vfio-isolate.mjs and the chunks it loads on demand): ${(r.bundleBytes / 1024).toFixed(0)} KiB${r.built ? ' (rebuilt from src/ first)' : ''}` +
      (r.nonAscii
        ? `; WARNING: ${r.nonAscii} non-ASCII bytes (comments kept in class bodies?): V8 then reads the whole file as UTF-16, ~1.5% slower start-up`
        : ', ASCII only'),
    `Start-up on the host (${r.tool}, ${r.runs} runs after ${r.warmup} warm-up; load average ${r.loadavg.map((l) => l.toFixed(2)).join(' ')})`,
    table(['command', 'wall median (min–max)', 'wall IQR', 'CPU user+sys'], rows),
    '',
    ...r.ratios.map(
      (x) =>
        `  ratio ${x.name.padEnd(15)} / node -e 0: ${fmtRatio(x.wall)}  ${verdict(x.wall, STARTUP_TARGET)}` +
        (x.cpu !== undefined ? `; CPU time ratio ${x.cpu.toFixed(2)}×` : ''),
    ),
  ];
  return lines.join('\n');
}
