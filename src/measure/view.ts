/** The report of `measure`: a compact human table, and the --json document (schema: MeasureJson). Pure. */
import { GAP_BUCKETS_US } from '../kernel/probe.ts';
import type { MeasureJson } from '../report/json-schema.ts';
import { printable } from '../report/printable.ts';
import { table } from '../report/table.ts';
import type { MeasureReport, Verdict } from './analysis.ts';

const round = (n: number, digits = 1): number => Math.round(n * 10 ** digits) / 10 ** digits;

function fmt(n: number): string {
  if (n >= 100) return String(Math.round(n));
  return n.toFixed(1);
}

/** Bucket labels: "<10us", "<100us", "<1ms", "<10ms", ">=10ms". */
export function bucketLabels(): string[] {
  const us = (v: number): string => (v >= 1000 ? `${v / 1000}ms` : `${v}us`);
  return [...GAP_BUCKETS_US.map((b) => `<${us(b)}`), `>=${us(GAP_BUCKETS_US[GAP_BUCKETS_US.length - 1]!)}`];
}

const TAG: Record<Verdict, string> = { expected: 'expected', vm: 'VM', leak: 'LEAK' };

function cpusOf(per: Map<number, number>): string {
  return [...per]
    .filter(([, n]) => n > 0)
    .map(([c, n]) => `${c}:${n}`)
    .join(' ');
}

export function renderMeasure(r: MeasureReport, opts: { verbose: boolean }): string {
  let out = `measure: CPUs ${r.cpus.toList()} (${r.why}), ${r.mode} mode, ${round(r.seconds, 1)} s`;
  if (r.interrupted) out += ', interrupted';
  out += '\n';
  if (r.vms.length > 0) out += `VM running there: ${r.vms.map(printable).join(', ')}\n`;
  const probe = r.mode === 'probe';
  const header = ['CPU', 'irq/s', 'softirq/s', 'host us/s', 'busy %'];
  if (probe) header.push('max gap us', 'noise %', `gaps ${bucketLabels().join('/')}`);
  const rows = r.perCpu.map((l) => {
    const row = [
      String(l.cpu),
      fmt(l.irqsPerSecond),
      fmt(l.softirqsPerSecond),
      fmt(l.hostUsPerSecond),
      l.busyPercent === undefined ? '?' : fmt(l.busyPercent),
    ];
    if (probe) {
      if (l.probe?.error) row.push(`(${l.probe.error})`, '', '');
      else if (l.probe)
        row.push(fmt(l.probe.maxUs), l.probe.noisePercent.toFixed(2), l.probe.histogram.join('/'));
    }
    return row;
  });
  out += '\n' + table(rows, { header, align: header.map((_, i) => (i === 0 || i === 7 ? 'left' : 'right')) });
  const sources = opts.verbose ? r.sources : r.sources.filter((s, i) => s.verdict === 'leak' || i < 8);
  if (sources.length > 0) {
    out += '\nInterrupts and softirqs there (per second; per CPU: count over the window):\n';
    out += table(
      sources.map((s) => [
        s.kind === 'irq' ? (/^\d+$/.test(s.label) ? `IRQ ${s.label}` : s.label) : `softirq ${s.label}`,
        s.kind === 'irq' && /^\d+$/.test(s.label) ? printable(s.name) : '',
        fmt(s.perSecond),
        cpusOf(s.perCpu),
        `${TAG[s.verdict]}: ${printable(s.note)}`,
      ]),
      { indent: '  ', align: ['left', 'left', 'right', 'left', 'left'] },
    );
    if (sources.length < r.sources.length) out += `  ... ${r.sources.length - sources.length} more (-v)\n`;
  }
  const shown = opts.verbose ? r.threads : r.threads.filter((t) => t.verdict !== 'vm');
  const threads = opts.verbose ? shown : shown.slice(0, 10);
  if (threads.length > 0) {
    out += '\nThreads that ran there (CPU time over the window):\n';
    out += table(
      threads.map((t) => [
        `${t.tid === t.pid ? `pid ${t.pid}` : `tid ${t.tid} of ${t.pid}`} (${printable(t.comm)})`,
        `${fmt(t.totalNs / 1e6)} ms`,
        `on ${[...t.perCpuNs.keys()].sort((a, b) => a - b).join(',')}`,
        // a note may quote a task's own name (the leak's line, the task it was): escaped like the name column
        `${TAG[t.verdict]}: ${printable(t.note)}`,
      ]),
      { indent: '  ', align: ['left', 'right', 'left', 'left'] },
    );
    if (threads.length < shown.length) out += `  ... ${shown.length - threads.length} more (-v)\n`;
  } else {
    out += "\nNo thread but the VM's ran there.\n";
  }
  for (const b of r.budgets) {
    const what = b.worst ? `${fmt(b.worst.value)} on CPU ${b.worst.cpu}` : 'not measured in passive mode';
    out += `budget ${b.name} ${b.limit}: ${what}: ${b.ok ? 'ok' : 'OVER BUDGET'}\n`;
  }
  if (r.budgets.length > 0) out += r.overBudget ? 'verdict: over budget\n' : 'verdict: within budget\n';
  if (r.notRead.length > 0) out += `could not read: ${r.notRead.join('; ')}\n`;
  return out;
}

const perCpuJson = (m: Map<number, number>): Record<string, number> =>
  Object.fromEntries([...m].map(([c, n]) => [String(c), n]));

export function measureJson(r: MeasureReport): MeasureJson {
  return {
    command: 'measure',
    schemaVersion: 1,
    mode: r.mode,
    cpus: r.cpus.toList(),
    why: r.why,
    seconds: round(r.seconds, 3),
    interrupted: r.interrupted,
    vms: r.vms,
    perCpu: r.perCpu.map((l) => ({
      cpu: l.cpu,
      irqsPerSecond: round(l.irqsPerSecond, 2),
      softirqsPerSecond: round(l.softirqsPerSecond, 2),
      hostUsPerSecond: round(l.hostUsPerSecond, 1),
      busyPercent: l.busyPercent === undefined ? null : round(l.busyPercent, 2),
      noiseUsPerSecond: round(l.noiseUsPerSecond, 1),
      probe: l.probe
        ? {
            maxGapUs: round(l.probe.maxUs, 1),
            noisePercent: round(l.probe.noisePercent, 3),
            histogram: l.probe.histogram,
            error: l.probe.error ?? null,
          }
        : null,
    })),
    histogramBuckets: bucketLabels(),
    sources: r.sources.map((s) => ({
      kind: s.kind,
      label: s.label,
      name: s.name,
      perSecond: round(s.perSecond, 2),
      perCpu: perCpuJson(s.perCpu),
      verdict: s.verdict,
      note: s.note,
    })),
    threads: r.threads.map((t) => ({
      pid: t.pid,
      tid: t.tid,
      comm: t.comm,
      ms: round(t.totalNs / 1e6, 3),
      perCpuMs: Object.fromEntries([...t.perCpuNs].map(([c, n]) => [String(c), round(n / 1e6, 3)])),
      verdict: t.verdict,
      note: t.note,
    })),
    budgets: r.budgets.map((b) => ({
      name: b.name,
      limit: b.limit,
      worstCpu: b.worst?.cpu ?? null,
      worst: b.worst ? round(b.worst.value, 2) : null,
      ok: b.ok,
    })),
    overBudget: r.overBudget,
    notRead: r.notRead,
  };
}

/**
 * One line for syslog (the libvirt hook's measurement after "started"): the mode, CPUs and window, the worst CPU's
 * figures, the leaks that ran there, and the budgets' verdict.
 *   measure CPUs 4-7, passive, 30 s: worst CPU 5: 812 irq/s, 1200 host us/s; leaks: pid 812 (stress-ng) 2900 ms; within budget
 */
export function summaryLine(r: MeasureReport): string {
  const worst = [...r.perCpu].sort((a, b) => b.noiseUsPerSecond - a.noiseUsPerSecond)[0];
  const parts = [`measure CPUs ${r.cpus.toList()}, ${r.mode}, ${round(r.seconds, 1)} s`];
  if (worst) {
    let w = `worst CPU ${worst.cpu}: ${fmt(worst.irqsPerSecond)} irq/s, ${fmt(worst.hostUsPerSecond)} host us/s`;
    if (worst.probe && !worst.probe.error)
      w += `, max gap ${fmt(worst.probe.maxUs)} us, noise ${worst.probe.noisePercent.toFixed(2)} %`;
    parts.push(w);
  }
  const leaks = [
    ...r.threads
      .filter((t) => t.verdict === 'leak')
      .slice(0, 3)
      .map(
        (t) =>
          `${t.tid === t.pid ? 'pid' : 'tid'} ${t.tid} (${printable(t.comm)}) ${fmt(t.totalNs / 1e6)} ms`,
      ),
    ...r.sources
      .filter((s) => s.verdict === 'leak')
      .slice(0, 3)
      .map((s) => `IRQ ${s.label}${s.name ? ` (${printable(s.name)})` : ''} ${fmt(s.perSecond)}/s`),
  ];
  parts.push(leaks.length > 0 ? `leaks: ${leaks.join(', ')}` : 'no leaks');
  if (r.budgets.length > 0)
    parts.push(
      r.overBudget
        ? `OVER BUDGET: ${r.budgets
            .filter((b) => !b.ok)
            .map(
              (b) =>
                `${b.name} ${b.limit} (${b.worst ? fmt(b.worst.value) : '?'} on CPU ${b.worst?.cpu ?? '?'})`,
            )
            .join(', ')}`
        : 'within budget',
    );
  if (r.interrupted) parts.push('interrupted');
  return parts.join('; ');
}

/**
 * isolate --measure: the two measurements side by side, per CPU "before -> after" (the probe's columns only
 * where both probed), then the leaks each found there.
 */
export function renderBeforeAfter(b: MeasureReport, a: MeasureReport): string {
  const probe = b.mode === 'probe' && a.mode === 'probe';
  const header = ['CPU', 'irq/s', 'host us/s'];
  if (probe) header.push('max gap us', 'noise %');
  const pair = (x: string, y: string): string => `${x} -> ${y}`;
  const rows = b.perCpu.map((lb) => {
    const la = a.perCpu.find((l) => l.cpu === lb.cpu);
    const row = [
      String(lb.cpu),
      pair(fmt(lb.irqsPerSecond), la ? fmt(la.irqsPerSecond) : '?'),
      pair(fmt(lb.hostUsPerSecond), la ? fmt(la.hostUsPerSecond) : '?'),
    ];
    if (probe) {
      const pb = lb.probe;
      const pa = la?.probe;
      const gap = (p: typeof pb): string => (!p || p.error ? '?' : fmt(p.maxUs));
      const noise = (p: typeof pb): string => (!p || p.error ? '?' : p.noisePercent.toFixed(2));
      row.push(pair(gap(pb), gap(pa)), pair(noise(pb), noise(pa)));
    }
    return row;
  });
  const modes = b.mode === a.mode ? b.mode : `${b.mode} before, ${a.mode} after`;
  let out = `\nMeasured CPUs ${b.cpus.toList()} before and after (${modes}, ${round(b.seconds, 1)} s and ${round(a.seconds, 1)} s):\n`;
  out += table(rows, { header, align: header.map((_, i) => (i === 0 ? 'left' : 'right')) });
  for (const [when, r] of [
    ['before', b],
    ['after', a],
  ] as const) {
    const leaks = r.threads.filter((t) => t.verdict === 'leak').slice(0, 5);
    if (leaks.length > 0)
      out += `${when}, ran there: ${leaks
        .map(
          (t) =>
            `${t.tid === t.pid ? 'pid' : 'tid'} ${t.tid} (${printable(t.comm)}) ${fmt(t.totalNs / 1e6)} ms on ${[...t.perCpuNs.keys()].sort((x, y) => x - y).join(',')}`,
        )
        .join(', ')}\n`;
    else out += `${when}: no host thread ran there\n`;
  }
  return out;
}
