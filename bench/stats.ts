/** Small statistics and formatting helpers shared by the host and guest sides of the benchmarks. */

export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
  q1: number;
  q3: number;
}

/** Linear-interpolated quantile of sorted values (q in 0..1). */
function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (b - a) * (pos - lo);
}

export function summarize(values: readonly number[]): Summary {
  const s = [...values].sort((a, b) => a - b);
  return {
    n: s.length,
    median: quantile(s, 0.5),
    min: s[0] ?? Number.NaN,
    max: s[s.length - 1] ?? Number.NaN,
    q1: quantile(s, 0.25),
    q3: quantile(s, 0.75),
  };
}

/**
 * Ratio of two paired series (run i of `ours` next to run i of `base`): the median of the per-pair ratios and
 * their spread. Pairs are measured side by side, so a slow moment of the machine hits both halves of a pair.
 */
export function pairedRatio(ours: readonly number[], base: readonly number[]): Summary {
  const n = Math.min(ours.length, base.length);
  const r: number[] = [];
  for (let i = 0; i < n; i++) if (base[i]! > 0) r.push(ours[i]! / base[i]!);
  return summarize(r);
}

/**
 * Ratio of the medians of two unpaired series (hyperfine runs one command after the other). The spread is the
 * widest ratio the two interquartile ranges allow: [q1(ours)/q3(base), q3(ours)/q1(base)]; min and max likewise.
 */
export function medianRatio(ours: readonly number[], base: readonly number[]): Summary {
  const o = summarize(ours);
  const b = summarize(base);
  return {
    n: Math.min(o.n, b.n),
    median: o.median / b.median,
    min: o.min / b.max,
    max: o.max / b.min,
    q1: o.q1 / b.q3,
    q3: o.q3 / b.q1,
  };
}

/** "12.3 ms" style with a sensible unit for a duration given in milliseconds. */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

/** "12.3 ms (11.9–13.0)": median with min–max. */
export function fmtSummaryMs(s: Summary): string {
  return `${fmtMs(s.median)} (${fmtMs(s.min)}–${fmtMs(s.max)})`;
}

/** "1.23× (IQR 1.20–1.31, min–max 1.10–1.40)". */
export function fmtRatio(s: Summary): string {
  if (!Number.isFinite(s.median)) return '—';
  const f = (x: number): string => x.toFixed(2);
  return `${f(s.median)}× (IQR ${f(s.q1)}–${f(s.q3)}, min–max ${f(s.min)}–${f(s.max)})`;
}

/** A verdict for a ratio against a target: the median must be at or under it. */
export function verdict(s: Summary, target: number): string {
  if (!Number.isFinite(s.median)) return 'n/a';
  return s.median <= target ? `ok (≤ ${target}×)` : `OVER target ${target}×`;
}

/** Plain text table with left-aligned first column and right-aligned others. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]): string =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export interface Linearity {
  /** Marginal cost per item between consecutive sizes (µs per item), smallest sizes first. */
  slopes: number[];
  /** Last slope over first slope. */
  growth: number;
  verdict: 'linear' | 'NOT linear' | 'needs 3 sizes';
}

/**
 * Is time linear in the number of items? Judged on marginal costs — (t(b) − t(a)) / (b − a) between consecutive
 * sizes — so a fixed cost (start-up, plan) cancels out: with time per item (t / n) a large fixed cost makes the
 * small size look expensive and hides a quadratic term. Linear when the last marginal cost is under 1.5× the first.
 * Two sizes give one slope and cannot tell a line from a curve: "needs 3 sizes". `points`: [items, ms].
 */
export function linearity(points: readonly (readonly [number, number])[]): Linearity {
  const p = [...points].filter(([n, t]) => n > 0 && Number.isFinite(t)).sort((a, b) => a[0] - b[0]);
  const slopes: number[] = [];
  for (let i = 1; i < p.length; i++) {
    const [n0, t0] = p[i - 1]!;
    const [n1, t1] = p[i]!;
    if (n1 > n0) slopes.push(((t1 - t0) * 1000) / (n1 - n0));
  }
  if (slopes.length < 2) return { slopes, growth: Number.NaN, verdict: 'needs 3 sizes' };
  const growth = slopes[slopes.length - 1]! / slopes[0]!;
  return { slopes, growth, verdict: slopes[0]! > 0 && growth < 1.5 ? 'linear' : 'NOT linear' };
}
