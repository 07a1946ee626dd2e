/**
 * Two or more variants of the guest benchmarks, run alternately: each round runs `npm run bench` once per variant
 * (the order reversed every other round, so that a drift of the machine's speed hits all alike), then one table
 * compares each figure's per-run medians. A variant is a checkout and extra environment: another revision's
 * worktree, or V8 flags for the guest's node.
 *
 *   node --import tsx bench/alternate.ts [--rounds 2] --variant SPEC --variant SPEC … -- BENCH ARGS
 *
 * SPEC is `NAME[@DIR][:KEY=VALUE[;KEY=VALUE…]]` (bench/alternate-core.ts). For example:
 *
 *   node --import tsx bench/alternate.ts --variant default --variant 'nojit:BENCH_NODE_FLAGS=--no-opt --no-sparkplug' \
 *     -- --no-startup --modes v2 --parts irq
 *   node --import tsx bench/alternate.ts --variant old@/tmp/wt-old --variant new -- --no-startup --parts irq
 *
 * Each run's whole output goes to .vm-cache/bench/alternate-NAME-ROUND.txt. The guest work itself is bench/run.ts's.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT, cacheSubdir } from '../test/vm/cache.ts';
import { compareTable, figures, parseVariant, type Variant } from './alternate-core.ts';
import type { GuestRun } from './guest.ts';

const { values, positionals } = parseArgs({
  options: {
    rounds: { type: 'string', default: '2' },
    variant: { type: 'string', multiple: true, default: [] },
  },
  allowPositionals: true,
});

const variants: Variant[] = values.variant.map(parseVariant);
const rounds = Math.max(1, Number(values.rounds) || 2);
if (variants.length < 2 || new Set(variants.map((v) => v.name)).size !== variants.length) {
  process.stderr.write('alternate: give at least two --variant, each with its own name\n');
  process.exit(2);
}
if (positionals.includes('--json')) {
  process.stderr.write(
    'alternate: --json is its own (each run writes one); leave it out of the bench arguments\n',
  );
  process.exit(2);
}

const dir = cacheSubdir('bench');
const runs = new Map<string, Map<string, number>[]>(variants.map((v) => [v.name, []]));
let failed = 0;
for (let r = 1; r <= rounds; r++) {
  const order = r % 2 === 1 ? variants : [...variants].reverse();
  for (const v of order) {
    const json = join(dir, `alternate-${v.name}-${r}.json`);
    const cwd = v.dir ? resolve(v.dir) : REPO_ROOT;
    const t0 = Date.now();
    const p = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'bench/run.ts', ...positionals, '--json', json],
      { cwd, env: { ...process.env, ...v.env }, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
    );
    writeFileSync(join(dir, `alternate-${v.name}-${r}.txt`), `${p.stdout ?? ''}${p.stderr ?? ''}`);
    let guests: GuestRun[] = [];
    try {
      guests = (JSON.parse(readFileSync(json, 'utf8')) as { guests: GuestRun[] }).guests;
      rmSync(json);
    } catch {
      /* no figures: reported below */
    }
    const merged = new Map<string, number>();
    for (const g of guests) for (const [k, x] of figures(g)) merged.set(k, x);
    if (p.status !== 0 || merged.size === 0) failed++;
    runs.get(v.name)!.push(merged);
    process.stderr.write(
      `round ${r}/${rounds} ${v.name}: exit ${p.status}, ${merged.size} figures, ${((Date.now() - t0) / 1000).toFixed(0)} s\n`,
    );
  }
}
process.stdout.write(
  compareTable(
    variants.map((v) => v.name),
    runs,
  ) + '\n',
);
process.exit(failed > 0 ? 1 : 0);
