/**
 * The pure half of bench/alternate.ts: what a variant is, which figures one `npm run bench -- --json` run gives,
 * and the table that compares the variants' runs.
 */
import type { ToolRun } from './guest-bench.ts';
import type { GuestRun } from './guest.ts';
import { pairedRatio, summarize, table } from './stats.ts';

/** One side of the comparison: a name, the checkout it runs from (default: this one) and extra environment. */
export interface Variant {
  name: string;
  dir?: string;
  env: Record<string, string>;
}

/**
 * `NAME[@DIR][:KEY=VALUE[;KEY=VALUE…]]`, e.g. `nojit:BENCH_NODE_FLAGS=--no-opt --no-sparkplug` or `old@/tmp/wt-old`.
 * A value may hold spaces and "=" (only the first "=" of a pair splits it); pairs are separated by ";".
 */
export function parseVariant(spec: string): Variant {
  const colon = spec.indexOf(':');
  const head = colon < 0 ? spec : spec.slice(0, colon);
  const at = head.indexOf('@');
  const name = at < 0 ? head : head.slice(0, at);
  const dir = at < 0 ? undefined : head.slice(at + 1);
  if (!/^[\w.-]+$/.test(name))
    throw new Error(`variant ${JSON.stringify(spec)}: a name of letters, digits, . _ -`);
  if (dir === '') throw new Error(`variant ${JSON.stringify(spec)}: an empty directory after "@"`);
  const env: Record<string, string> = {};
  if (colon >= 0)
    for (const pair of spec.slice(colon + 1).split(';')) {
      if (pair === '') continue;
      const eq = pair.indexOf('=');
      const key = eq < 0 ? '' : pair.slice(0, eq);
      if (!/^[A-Z_][A-Z0-9_]*$/.test(key))
        throw new Error(`variant ${JSON.stringify(spec)}: ${JSON.stringify(pair)} is not KEY=VALUE`);
      env[key] = pair.slice(eq + 1);
    }
  return { name, ...(dir !== undefined ? { dir } : {}), env };
}

const ms = (runs: readonly ToolRun[]): number[] => runs.map((r) => r.ms);

/**
 * The headline figures of one guest run, each the median of its paired ratios as the bench prints it, keyed by
 * "MODE: what". Figures whose series are missing or empty are left out.
 */
export function figures(run: GuestRun): Map<string, number> {
  const out = new Map<string, number>();
  const r = run.result;
  if (!r) return out;
  const put = (
    what: string,
    ours: readonly number[] | undefined,
    base: readonly number[] | undefined,
  ): void => {
    if (!ours?.length || !base?.length) return;
    const m = pairedRatio(ours, base).median;
    if (Number.isFinite(m)) out.set(`${run.mode}: ${what}`, m);
  };
  for (const m of r.move) {
    // keyed by the size asked for: a move from the root takes the root's own tasks too, a number that varies
    const src = m.source === 'root' ? `move-tasks / (${m.size} bench tasks)` : `move-tasks ${m.size}`;
    put(`${src} ÷ bare`, ms(m.ours), m.bare);
    put(`${src} without -u ÷ bare`, ms(m.oursNoJournal), m.bare);
    put(`${src} ÷ bare + masks`, ms(m.ours), m.bareMasks);
  }
  const q = r.irq;
  if (q) {
    put('irq mask ÷ bare', ms(q.ours), q.bare);
    put('irq mask ÷ floor with checks', ms(q.ours), q.bareChecked);
    put('irq restore ÷ bare', q.restore && ms(q.restore), q.restoreBare);
    put('irq restore ÷ floor with checks', q.restore && ms(q.restore), q.restoreBareChecked);
  }
  const k = r.cold;
  const [ours, base] = k?.tools ?? [];
  if (k && ours) {
    // fresh processes: each run's time less the same repetition's empty module, ours ÷ bare
    const less = (xs: readonly number[]): number[] => xs.map((x, i) => x - (k.empty[i] ?? Number.NaN));
    put('cold mask − empty ÷ bare − empty', less(ours.mask), less(k.bareMask));
    put('cold restore − empty ÷ bare − empty', less(ours.restore), less(k.bareRestore));
    put(`cold mask ÷ ${base?.name ?? 'baseline'}`, ours.mask, base?.mask);
    put(`cold restore ÷ ${base?.name ?? 'baseline'}`, ours.restore, base?.restore);
    put(`cold isolate ÷ ${base?.name ?? 'baseline'}`, ours.isolate, base?.isolate);
    put(`cold release ÷ ${base?.name ?? 'baseline'}`, ours.release, base?.release);
  }
  const c = r.cycle;
  if (c) {
    put('hook sequence ÷ bare', ms(c.hook), c.hookBare);
    put('its restore ÷ bare', ms(c.restore), c.restoreBare);
  }
  return out;
}

/**
 * A table with one row per figure and, per variant, the median of its runs' values and each run's value.
 * `runs`: per variant name, the figures of each of its runs in order.
 */
export function compareTable(
  variants: readonly string[],
  runs: ReadonlyMap<string, Map<string, number>[]>,
): string {
  const names: string[] = [];
  for (const v of variants)
    for (const f of runs.get(v) ?? []) for (const k of f.keys()) if (!names.includes(k)) names.push(k);
  const cell = (v: string, name: string): string => {
    const values = (runs.get(v) ?? []).map((f) => f.get(name)).filter((x) => x !== undefined);
    if (values.length === 0) return '-';
    const each = values.map((x) => x.toFixed(2)).join(', ');
    return `${summarize(values).median.toFixed(2)}× (${each})`;
  };
  return table(
    ['figure (median of each run’s paired ratios)', ...variants.map((v) => `${v}: median (runs)`)],
    names.map((n) => [n, ...variants.map((v) => cell(v, n))]),
  );
}
