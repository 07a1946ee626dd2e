/**
 * The journal parse on the host (pure JavaScript, no kernel state): `parseJournal` of journals the tool writes —
 * one record of 2,000 and of 10,000 moved tasks (with their pids), an affinity record of 2,000 threads, a 25-IRQ
 * write record — against the floor of any reader: `JSON.parse` of each line, alternating in the same run. Prints
 * each as ours ÷ JSON.parse (median of the paired ratios, IQR, min–max).
 *
 *   node --import tsx bench/journal-parse.ts [--reps N]
 */
import { parseArgs } from 'node:util';
import { parseJournal } from '../src/steps/journal.ts';
import { fmtRatio, fmtSummaryMs, pairedRatio, summarize, table } from './stats.ts';

const { values } = parseArgs({ options: { reps: { type: 'string', default: '30' } } });
const reps = Math.max(3, Number(values.reps) || 30);

const head = JSON.stringify({
  t: 'header',
  format: 'vfio-isolate-journal',
  version: 1,
  tool: 'vfio-isolate bench',
  bootId: '00000000-0000-0000-0000-000000000000',
  created: '2026-12-07T00:00:00.000Z',
});
const run = JSON.stringify({
  t: 'run',
  run: 1,
  at: '2026-12-07T00:00:00.000Z',
  argv: ['move-tasks', '/', '/x'],
});
const rec = (r: object): string => JSON.stringify({ t: 'rec', run: 1, rec: r });
const tasks = (n: number): string => {
  const ids = Array.from({ length: n }, (_, i) => [i + 300, 1000 + i]);
  return rec({
    kind: 'tasks',
    from: '/sys/fs/cgroup/cpuset',
    to: '/sys/fs/cgroup/cpuset/host.slice',
    file: 'tasks',
    ids,
    pids: ids.map(([p]) => p),
    listedAt: 99999,
  });
};
const records: [string, string][] = [
  ['tasks record, 2,000 tasks', tasks(2000)],
  ['tasks record, 10,000 tasks', tasks(10000)],
  [
    'affinity record, 2,000 threads',
    rec({ kind: 'affinity', tasks: Array.from({ length: 2000 }, (_, i) => [i + 2, 50 + i, '0-15']) }),
  ],
  [
    'write record, 25 IRQs',
    rec({
      kind: 'write',
      files: Array.from({ length: 25 }, (_, i) => [`/proc/irq/${i}/smp_affinity_list`, '0-15', '0-7']),
    }),
  ],
];
const journals = records.map(([name, line]): [string, string] => [name, `${head}\n${run}\n${line}\n`]);

/** ms per call of `f`, over enough calls to take about 20 ms. */
function timed(f: () => unknown): number {
  let n = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) f();
    const ms = performance.now() - t0;
    if (ms > 20) return ms / n;
    n *= 2;
  }
}

const rows: string[][] = [];
for (const [name, text] of journals) {
  const ours: number[] = [];
  const base: number[] = [];
  const json = (): unknown => text.split('\n').map((l) => (l ? JSON.parse(l) : undefined));
  const parse = (): unknown => parseJournal(text, 'bench');
  parse(); // warm
  json();
  for (let r = 0; r < reps; r++) {
    if (r % 2 === 0) {
      ours.push(timed(parse));
      base.push(timed(json));
    } else {
      base.push(timed(json));
      ours.push(timed(parse));
    }
  }
  rows.push([
    name,
    fmtSummaryMs(summarize(ours)),
    fmtSummaryMs(summarize(base)),
    fmtRatio(pairedRatio(ours, base)),
  ]);
}
console.log(`journal parse on the host (${reps} rounds, alternating)`);
console.log(table(['journal', 'parseJournal', 'JSON.parse of its lines', 'ours ÷ JSON.parse'], rows));
