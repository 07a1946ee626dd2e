/**
 * Pure helpers of the demo: a readable summary of a snapshot diff (test/vm/snapshot.ts diffSnapshots), the leak
 * figures of `status --json`, and argv split per chained command for display.
 */
import type { LeakFigures } from './events.ts';

interface Group {
  from: string;
  to: string;
  items: string[];
}

function groupBy(groups: Map<string, Group>, from: string, to: string, item: string): void {
  const key = `${from}\u0000${to}`;
  let g = groups.get(key);
  if (!g) {
    g = { from, to, items: [] };
    groups.set(key, g);
  }
  g.items.push(item);
}

function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}

/** `a, b ×3, c` for the names, most frequent first, at most `max` names. */
export function nameList(names: readonly string[], max = 6): string {
  const counts = new Map<string, number>();
  for (const n of names) counts.set(n, (counts.get(n) ?? 0) + 1);
  const sorted = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const shown = sorted.slice(0, max).map(([n, c]) => (c > 1 ? `${n} ×${c}` : n));
  const rest = sorted.slice(max).reduce((s, [, c]) => s + c, 0);
  return rest > 0 ? `${shown.join(', ')}, +${rest} more` : shown.join(', ');
}

const IRQ = /^irq (\d+) smp_affinity_list: (.+) → (.+)$/;
const TASK = /^task (\d+) \((.*)\) Cpus_allowed_list: (.+) → (.+)$/;
const CGROUP_FILE = /^cgroup (\S+) ([\w.]+): ((?:"[^"]*")|\(absent\)) → ((?:"[^"]*")|\(absent\))$/;
const ABSENT = '(absent)';

/** A value as diffSnapshots prints it ("0-3" quoted, or (absent)), without the quotes unless empty. */
function bare(v: string): string {
  return v === '""' || v === ABSENT ? v : v.replace(/^"(.*)"$/, '$1');
}

/** One description of the changed files of one cgroup: "cpuset enabled, CPUs 0-3 (effective 0-3)". */
function describeCgroup(files: Map<string, { from: string; to: string }>): string {
  const parts: string[] = [];
  const appeared = (f: string): boolean => files.get(f)?.from === ABSENT && files.get(f)?.to !== ABSENT;
  const cpusFile = ['cpuset.cpus', 'cpuset.effective_cpus'].find((f) => files.has(f));
  const effFile = files.has('cpuset.cpus.effective') ? 'cpuset.cpus.effective' : 'cpuset.effective_cpus';
  const shown = new Set<string>();
  if (appeared('cpuset.cpus') && appeared('cpuset.cpus.effective')) {
    // v2: the parent enabled cpuset; its files appear at once
    const cpus = bare(files.get('cpuset.cpus')!.to);
    const eff = bare(files.get('cpuset.cpus.effective')!.to);
    parts.push(`cpuset enabled, CPUs ${cpus === '""' ? `inherited (${eff})` : `${cpus} (effective ${eff})`}`);
    for (const [f, c] of files) if (c.from === ABSENT || f === 'cgroup.controllers') shown.add(f);
  } else if (cpusFile && files.has(effFile)) {
    const eff = files.get(effFile)!;
    const cpus = files.get(cpusFile)!;
    if (cpusFile !== effFile) {
      parts.push(
        `CPUs ${bare(cpus.from)} → ${bare(cpus.to)} (effective ${bare(eff.from)} → ${bare(eff.to)})`,
      );
      shown.add(cpusFile);
    } else parts.push(`CPUs ${bare(eff.from)} → ${bare(eff.to)}`);
    shown.add(effFile);
  }
  for (const [f, c] of files) if (!shown.has(f)) parts.push(`${f} ${bare(c.from)} → ${bare(c.to)}`);
  return parts.join(', ');
}

/**
 * Turn the line-per-change diff into a few lines: the file changes of each cgroup in one line (cgroups with the
 * same changes together), IRQ and thread affinity changes grouped by "from → to", the rest as it is.
 */
export function summariseChanges(lines: readonly string[]): string[] {
  const other: string[] = [];
  const cgroups = new Map<string, Map<string, { from: string; to: string }>>();
  const irqs = new Map<string, Group>();
  const tasks = new Map<string, Group>();
  for (const line of lines) {
    const c = CGROUP_FILE.exec(line);
    if (c) {
      let files = cgroups.get(c[1]!);
      if (!files) cgroups.set(c[1]!, (files = new Map()));
      files.set(c[2]!, { from: c[3]!, to: c[4]! });
      continue;
    }
    const i = IRQ.exec(line);
    if (i) {
      groupBy(irqs, i[2]!, i[3]!, i[1]!);
      continue;
    }
    const t = TASK.exec(line);
    if (t) {
      groupBy(tasks, t[3]!, t[4]!, t[2]!);
      continue;
    }
    other.push(line);
  }
  const byDescription = new Map<string, string[]>();
  for (const [path, files] of cgroups) {
    const d = describeCgroup(files);
    byDescription.set(d, [...(byDescription.get(d) ?? []), path]);
  }
  const out: string[] = [];
  for (const [d, paths] of byDescription)
    out.push(`${paths.length > 1 ? 'cgroups' : 'cgroup'} ${paths.join(', ')}: ${d}`);
  out.push(...other);
  for (const g of irqs.values()) {
    const shown = g.items.slice(0, 12).join(' ');
    const more = g.items.length > 12 ? ` +${g.items.length - 12} more` : '';
    out.push(
      `${plural(g.items.length, 'IRQ')} may fire on ${g.to} instead of ${g.from} (IRQ ${shown}${more})`,
    );
  }
  for (const g of tasks.values()) {
    out.push(
      `${plural(g.items.length, 'thread')} may run on ${g.to} instead of ${g.from} (${nameList(g.items)})`,
    );
  }
  return out;
}

interface Finding {
  kind?: string;
  id?: number | string;
  line?: string;
}

export interface StatusFigures {
  figures: LeakFigures;
  /** IRQ numbers status calls kernel-managed (expected to stay on the VM CPUs). */
  managedIrqs: Set<string>;
  /** One line per movable leak. */
  leakLines: string[];
}

/** Leak figures from the output of `status --json CPUS`; throws when it is not such a document. */
export function figuresFromStatus(json: string): StatusFigures {
  const j = JSON.parse(json) as { leaks?: unknown; unmovable?: unknown };
  if (!Array.isArray(j.leaks) || !Array.isArray(j.unmovable)) {
    throw new Error('status --json has no leaks/unmovable lists');
  }
  const leaks = j.leaks as Finding[];
  const unmovable = j.unmovable as Finding[];
  const n = (k: string): number => leaks.filter((f) => f.kind === k).length;
  return {
    figures: {
      tasks: n('task'),
      kthreads: n('kthread'),
      irqs: n('irq'),
      masks: n('default-irq') + n('workqueue'),
      total: leaks.length,
      pinnedKthreads: unmovable.filter((f) => f.kind === 'pinned-kthread').length,
      managedIrqs: unmovable.filter((f) => f.kind === 'managed-irq').length,
    },
    managedIrqs: new Set(unmovable.filter((f) => f.kind === 'managed-irq').map((f) => String(f.id))),
    leakLines: leaks.map((f) => f.line ?? f.kind ?? '?'),
  };
}

/**
 * Split argv where each chained command starts, for display; global options stay with the first chunk. Only
 * words in `commands` that follow a command start a new chunk.
 */
export function chunkArgv(argv: readonly string[], commands: ReadonlySet<string>): string[][] {
  const chunks: string[][] = [[]];
  let seenCommand = false;
  for (const a of argv) {
    if (commands.has(a)) {
      if (seenCommand) chunks.push([]);
      seenCommand = true;
    }
    chunks[chunks.length - 1]!.push(a);
  }
  return chunks;
}
