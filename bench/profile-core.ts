/**
 * The tally of bench/profile-summary.ts: a V8 CPU profile's sampled time per function (self, and inclusive of what
 * it called), and the call tree below a named function, merged over all its calls. Times in microseconds.
 */

/** The parts of a V8 .cpuprofile read here. */
export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; lineNumber: number }; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
}

type Node = CpuProfile['nodes'][number];

/** `name:line` (1-based), "(anonymous)" for a function without a name. */
function nameOf(n: Node): string {
  return `${n.callFrame.functionName || '(anonymous)'}:${n.callFrame.lineNumber + 1}`;
}

/** The sampled time of each node itself: the time delta of every sample taken in it. */
function selfTimes(p: CpuProfile): Map<number, number> {
  const t = new Map<number, number>();
  p.samples.forEach((id, i) => t.set(id, (t.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  return t;
}

/**
 * Per function, sorted by time: `self` (samples in it) and `inclusive` (samples in it or below it, a recursive
 * function counted once per sample).
 */
export function byFunction(p: CpuProfile): {
  total: number;
  self: [string, number][];
  inclusive: [string, number][];
} {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  for (const [id, t] of selfTimes(p)) {
    total += t;
    const name = nameOf(byId.get(id)!);
    self.set(name, (self.get(name) ?? 0) + t);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const up = nameOf(byId.get(at)!);
      if (seen.has(up)) continue;
      seen.add(up);
      inclusive.set(up, (inclusive.get(up) ?? 0) + t);
    }
  }
  const sorted = (m: Map<string, number>): [string, number][] => [...m].sort((a, b) => b[1] - a[1]);
  return { total, self: sorted(self), inclusive: sorted(inclusive) };
}

/** One line of treeUnder: a call path's last function, its depth below the root, and its time. */
export interface TreeLine {
  depth: number;
  name: string;
  total: number;
  self: number;
}

/**
 * The call tree below every call of the function named `root` (its outermost calls), the same call paths merged,
 * children by time; paths under `min` µs are left out.
 */
export function treeUnder(p: CpuProfile, root: string, min: number): TreeLine[] {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const own = selfTimes(p);
  const totals = new Map<number, number>();
  const totalOf = (id: number): number => {
    const known = totals.get(id);
    if (known !== undefined) return known;
    const t = (byId.get(id)!.children ?? []).reduce((s, c) => s + totalOf(c), own.get(id) ?? 0);
    totals.set(id, t);
    return t;
  };
  interface Merged {
    total: number;
    self: number;
    kids: Map<string, Merged>;
  }
  const top: Merged = { total: 0, self: 0, kids: new Map() };
  const add = (n: Node, into: Merged): void => {
    into.total += totalOf(n.id);
    into.self += own.get(n.id) ?? 0;
    for (const c of n.children ?? []) {
      const child = byId.get(c)!;
      const key = nameOf(child);
      let m = into.kids.get(key);
      if (!m) into.kids.set(key, (m = { total: 0, self: 0, kids: new Map() }));
      add(child, m);
    }
  };
  const find = (n: Node): void => {
    if (n.callFrame.functionName === root) add(n, top);
    else for (const c of n.children ?? []) find(byId.get(c)!);
  };
  if (p.nodes[0]) find(p.nodes[0]);
  const out: TreeLine[] = [];
  const emit = (m: Merged, name: string, depth: number): void => {
    if (m.total < min) return;
    out.push({ depth, name, total: m.total, self: m.self });
    for (const [k, v] of [...m.kids].sort((a, b) => b[1].total - a[1].total)) emit(v, k, depth + 1);
  };
  if (top.total > 0) emit(top, root, 0);
  return out;
}
