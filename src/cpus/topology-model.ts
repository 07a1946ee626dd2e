/**
 * What the CPU notation needs to know about a machine. Pure data: the kernel layer fills it from sysfs, tests build
 * it with `topologyFromSpec`.
 */
import { CpuSet } from './cpuset.ts';

export interface CpuTopology {
  /** sysfs `cpu/possible`. */
  possible: CpuSet;
  /** sysfs `cpu/present`: the bound for every CPU a user names. */
  present: CpuSet;
  /** sysfs `cpu/online`. */
  online: CpuSet;
  /** NUMA node id → its CPUs (empty for memory-only nodes). */
  nodes: Map<number, CpuSet>;
  /** physical_package_id → its CPUs. */
  packages: Map<number, CpuSet>;
  /** L3 cache domains, ordered by their lowest CPU (index = the number used in `L<n>`). */
  l3: CpuSet[];
  /** CPU → its SMT thread siblings, including itself. */
  siblings: Map<number, CpuSet>;
}

/**
 * Order L3 cache domains the way `L<n>` numbers them: by lowest CPU, duplicates (the same domain seen from each of
 * its CPUs' shared_cpu_list) and empty sets dropped, and sets that overlap merged into one domain, so that the
 * domains never share a CPU.
 */
export function orderL3Domains(domains: Iterable<CpuSet>): CpuSet[] {
  let out: CpuSet[] = [];
  for (const d of domains) {
    if (d.isEmpty) continue;
    let merged = d;
    const rest: CpuSet[] = [];
    for (const o of out) {
      if (o.overlaps(merged)) merged = merged.union(o);
      else rest.push(o);
    }
    out = [...rest, merged];
  }
  return out.sort((a, b) => a.first! - b.first!);
}

/** A CPU list given as a kernel list string (`0-7,16-23`), an array of numbers, or a CpuSet. */
export type CpuListLike = string | readonly number[] | CpuSet;

/** Per-id sets: an array (index = id) or a record for sparse ids. */
export type IdMapLike = readonly CpuListLike[] | Readonly<Record<number, CpuListLike>>;

export interface TopologySpec {
  /** Shorthand: CPUs 0..cpus-1 possible, present and online. */
  cpus?: number;
  possible?: CpuListLike;
  present?: CpuListLike;
  /** Defaults to `present`. */
  online?: CpuListLike;
  /** Defaults to one node 0 holding every present CPU. `''` / `[]` = a memory-only node. */
  nodes?: IdMapLike;
  /** Defaults to one package 0 holding every present CPU. */
  packages?: IdMapLike;
  /** Defaults to one L3 domain holding every present CPU. Sorted by lowest CPU here. */
  l3?: readonly CpuListLike[];
  /** Groups of SMT thread siblings (`['0,16', '1,17', …]`). */
  siblings?: readonly CpuListLike[];
  /** Shorthand for siblings: CPUs n, n+offset, n+2·offset, … are siblings (5950X: 16, 6c/12t: 6). */
  smtOffset?: number;
}

export function toCpuSet(v: CpuListLike): CpuSet {
  if (v instanceof CpuSet) return v;
  if (typeof v === 'string') return CpuSet.parseList(v);
  return CpuSet.of(v);
}

function toIdMap(v: IdMapLike): Map<number, CpuSet> {
  const m = new Map<number, CpuSet>();
  for (const [k, cpus] of Object.entries(v) as [string, CpuListLike][]) m.set(Number(k), toCpuSet(cpus));
  return new Map([...m].sort((a, b) => a[0] - b[0]));
}

/**
 * Build a CpuTopology from plain data (tests, fixtures). Like sysfs, only online CPUs get a sibling entry, and a
 * sibling list holds online CPUs only; a CPU without SMT is its own only sibling.
 */
export function topologyFromSpec(spec: TopologySpec): CpuTopology {
  const all = spec.cpus !== undefined && spec.cpus > 0 ? CpuSet.range(0, spec.cpus - 1) : undefined;
  const present = spec.present
    ? toCpuSet(spec.present)
    : spec.possible
      ? toCpuSet(spec.possible)
      : (all ?? CpuSet.EMPTY);
  if (present.isEmpty) throw new Error('topologyFromSpec: give cpus, possible or present');
  const possible = spec.possible ? toCpuSet(spec.possible) : (all ?? present).union(present);
  const online = spec.online ? toCpuSet(spec.online) : present;

  const nodes = spec.nodes ? toIdMap(spec.nodes) : new Map([[0, present]]);
  const packages = spec.packages ? toIdMap(spec.packages) : new Map([[0, present]]);
  const l3 = orderL3Domains(spec.l3 ? spec.l3.map(toCpuSet) : [present]);

  const siblings = new Map<number, CpuSet>();
  const groups: CpuSet[] = [];
  if (spec.siblings) groups.push(...spec.siblings.map(toCpuSet));
  if (spec.smtOffset !== undefined && spec.smtOffset > 0) {
    const off = spec.smtOffset;
    for (let base = 0; base < off; base++) {
      groups.push(CpuSet.of(possible.toArray().filter((c) => c % off === base)));
    }
  }
  for (const g of groups) {
    const live = g.intersect(online);
    for (const c of live) siblings.set(c, live);
  }
  for (const c of online) if (!siblings.has(c)) siblings.set(c, CpuSet.of([c]));

  return { possible, present, online, nodes, packages, l3, siblings };
}
