/**
 * The machine at a glance: packages, dies, L3 cache domains with their cores as SMT sibling pairs, NUMA nodes, and
 * a suggested host/VM split. Pure: everything comes from a `Machine` (or a `CpuTopology` in tests).
 */
import { CpuSet } from '../cpus/cpuset.ts';
import { formatNotation } from '../cpus/notation.ts';
import type { CpuTopology } from '../cpus/topology-model.ts';
import type { Core, Machine } from '../kernel/topology.ts';
import { paint, plural, table, wrapWords } from './table.ts';

/** What suggestSplit needs: the notation's topology, plus cores and boot isolation when known. */
export type SplitInput = CpuTopology & { cores?: readonly Core[]; isolated?: CpuSet };

export interface SplitSuggestion {
  host: CpuSet;
  vm: CpuSet;
  /** One or two sentences: which rule chose the split, and why. */
  reason: string;
}

/** The physical cores of the online CPUs, each as its set of SMT siblings, ordered by lowest CPU. */
export function physicalCores(topo: SplitInput): CpuSet[] {
  const out: CpuSet[] = [];
  const seen = new Set<number>();
  const fromCores = topo.cores?.map((c) => c.cpus.intersect(topo.online)).filter((c) => !c.isEmpty);
  for (const cpu of topo.online) {
    if (seen.has(cpu)) continue;
    const core = fromCores?.find((c) => c.has(cpu)) ?? topo.siblings.get(cpu) ?? CpuSet.of([cpu]);
    const live = core.intersect(topo.online).union(CpuSet.of([cpu]));
    for (const c of live) seen.add(c);
    out.push(live);
  }
  return out.sort((a, b) => a.first! - b.first!);
}

/** `set` grown to whole cores: every online SMT sibling of its CPUs added. */
export function wholeCores(set: CpuSet, topo: SplitInput): CpuSet {
  let out = set;
  for (const core of physicalCores(topo)) if (core.overlaps(set)) out = out.union(core);
  return out;
}

/** A short selector for a set when one exists: `L1-3`, `N1`, `P0`; otherwise undefined. */
export function shortNotation(set: CpuSet, topo: CpuTopology): string | undefined {
  if (set.isEmpty) return undefined;
  const live = set.intersect(topo.online);
  const pick = (prefix: string, groups: [number, CpuSet][]): string | undefined => {
    const ids = groups.filter(
      ([, g]) => !g.intersect(topo.online).isEmpty && g.intersect(topo.online).isSubsetOf(live),
    );
    const covered = ids.reduce((acc, [, g]) => acc.union(g.intersect(topo.online)), CpuSet.EMPTY);
    return ids.length > 0 && covered.equals(live)
      ? `${prefix}${CpuSet.of(ids.map(([i]) => i)).toList()}`
      : undefined;
  };
  const l3: [number, CpuSet][] = topo.l3.map((g, i) => [i, g]);
  return (
    (topo.nodes.size > 1 ? pick('N', [...topo.nodes]) : undefined) ??
    (topo.l3.length > 1 ? pick('L', l3) : undefined) ??
    (topo.packages.size > 1 ? pick('P', [...topo.packages]) : undefined)
  );
}

/**
 * The default host/VM split (isolate and libvirt cputune use it when no CPUs are given). Always whole cores, so
 * the host and the VM never share an SMT sibling. Rules, first match wins:
 *  1. CPUs isolated at boot (`isolcpus=`), when they are whole cores and leave the host a core: the VM gets them.
 *  2. Two or more NUMA nodes with CPUs: the VM gets the last node (its memory stays local), the host the rest.
 *  3. Two or more L3 cache domains: the VM gets every domain but the first (whole CCDs/CCXs: no L3 shared with the
 *     host); the host keeps domain 0 (L0, CCD0 on Ryzen), where the boot CPU and most IRQs live.
 *  4. One L3 domain: the host keeps core 0 with its siblings, plus core 1 on machines with more than 8 cores; the
 *     VM gets the other cores.
 * A machine with a single core has nothing to give: the VM set is empty.
 */
export function suggestSplit(topo: SplitInput): SplitSuggestion {
  const online = topo.online;
  const cores = physicalCores(topo);
  const done = (vm: CpuSet, reason: string): SplitSuggestion => {
    const whole = wholeCores(vm.intersect(online), topo);
    return { host: online.minus(whole), vm: whole, reason };
  };
  if (cores.length < 2) {
    return {
      host: online,
      vm: CpuSet.EMPTY,
      reason: 'This machine has a single core: there is nothing to give a VM.',
    };
  }
  const isolated = (topo.isolated ?? CpuSet.EMPTY).intersect(online);
  if (!isolated.isEmpty && wholeCores(isolated, topo).equals(isolated) && !online.minus(isolated).isEmpty) {
    return done(
      isolated,
      `CPUs ${isolated.toList()} are isolated at boot (isolcpus): the VM gets them, the host keeps the rest.`,
    );
  }
  const nodes = [...topo.nodes].filter(([, c]) => !c.intersect(online).isEmpty);
  if (nodes.length >= 2) {
    const [id, cpus] = nodes[nodes.length - 1]!;
    const hostNodes = nodes.slice(0, -1).map(([n]) => n);
    return done(
      cpus,
      `${nodes.length} NUMA nodes: the VM gets the last node, N${id}, so its CPUs and memory stay local to each ` +
        `other; the host keeps N${CpuSet.of(hostNodes).toList()}.`,
    );
  }
  const l3 = topo.l3.map((d) => d.intersect(online)).filter((d) => !d.isEmpty);
  if (l3.length >= 2) {
    const vm = l3.slice(1).reduce((a, b) => a.union(b), CpuSet.EMPTY);
    return done(
      vm,
      `${l3.length} L3 cache domains (CCDs/CCXs): the VM gets L${l3.length === 2 ? '1' : `1-${l3.length - 1}`} ` +
        `whole, so it shares no L3 cache with the host; the host keeps L0 (the boot CPU's domain).`,
    );
  }
  const hostCores = cores.length > 8 ? 2 : 1;
  const host = cores.slice(0, hostCores).reduce((a, b) => a.union(b), CpuSet.EMPTY);
  return done(
    online.minus(host),
    `One L3 cache domain with ${cores.length} cores: the host keeps ${hostCores === 1 ? 'core 0' : 'cores 0 and 1'} ` +
      `(CPUs ${host.toList()}), the VM gets the other ${cores.length - hostCores}; whole cores, so no SMT sibling is shared.`,
  );
}

/**
 * The VM side of this machine's suggested split in C-notation, for hints that show a CPU set ("e.g. vfio-isolate
 * isolate C4-7"): always CPUs this machine has. Undefined when there is nothing to give a VM (a single core).
 */
export function exampleVmCpus(topo: SplitInput): string | undefined {
  const vm = suggestSplit(topo).vm;
  return vm.isEmpty ? undefined : formatNotation(vm);
}

// ---------------------------------------------------------------------------------------------------------------
// The view

export interface TopologyView {
  cpus: { possible: CpuSet; present: CpuSet; online: CpuSet; offline: CpuSet };
  threadsPerCore: number;
  packages: { id: number; cpus: CpuSet; dies: { id: number; cpus: CpuSet }[] }[];
  l3: { index: number; cpus: CpuSet; nodes: number[]; cores: CpuSet[] }[];
  nodes: { id: number; cpus: CpuSet; memKb: number; l3: number[] }[];
  cores: { package: number; die: number; core: number; cpus: CpuSet; l3?: number; node?: number }[];
  isolated: CpuSet;
  nohzFull: CpuSet;
  suggestion: SplitSuggestion;
}

export function buildTopology(m: Machine): TopologyView {
  // offline CPUs have no topology files: show the cores of the online CPUs
  const online = m.cores
    .map((c) => ({ ...c, cpus: c.cpus.intersect(m.online) }))
    .filter((c) => !c.cpus.isEmpty);
  const coreList =
    online.length > 0 ? online : physicalCores(m).map((cpus, i) => ({ package: 0, die: 0, core: i, cpus }));
  const l3Of = (cpus: CpuSet): number | undefined => {
    const i = m.l3.findIndex((d) => d.overlaps(cpus));
    return i < 0 ? undefined : i;
  };
  const nodeOf = (cpus: CpuSet): number | undefined => [...m.nodes].find(([, c]) => c.overlaps(cpus))?.[0];
  const packages = [...m.packages]
    .sort((a, b) => a[0] - b[0])
    .map(([id, cpus]) => {
      const dies = new Map<number, number[]>();
      for (const c of coreList.filter((c) => c.package === id)) {
        (dies.get(c.die) ?? dies.set(c.die, []).get(c.die)!).push(...c.cpus);
      }
      return {
        id,
        cpus,
        dies: [...dies].sort((a, b) => a[0] - b[0]).map(([d, list]) => ({ id: d, cpus: CpuSet.of(list) })),
      };
    });
  const threadsPerCore = Math.max(1, ...coreList.map((c) => c.cpus.size));
  return {
    cpus: { possible: m.possible, present: m.present, online: m.online, offline: m.present.minus(m.online) },
    threadsPerCore,
    packages,
    l3: m.l3.map((cpus, index) => ({
      index,
      cpus,
      nodes: [...m.nodes].filter(([, c]) => c.overlaps(cpus)).map(([n]) => n),
      cores: coreList.filter((c) => c.cpus.overlaps(cpus)).map((c) => c.cpus),
    })),
    nodes: [...m.nodes]
      .sort((a, b) => a[0] - b[0])
      .map(([id, cpus]) => ({
        id,
        cpus,
        memKb: m.nodeMemKb.get(id) ?? 0,
        l3: m.l3.flatMap((d, i) => (d.overlaps(cpus) ? [i] : [])),
      })),
    cores: coreList.map((c) => ({ ...c, l3: l3Of(c.cpus), node: nodeOf(c.cpus) })),
    isolated: m.isolated,
    nohzFull: m.nohzFull,
    suggestion: suggestSplit(m),
  };
}

/** The notation's view of a TopologyView (enough for shortNotation). */
function notationTopology(v: TopologyView): CpuTopology {
  return {
    possible: v.cpus.possible,
    present: v.cpus.present,
    online: v.cpus.online,
    nodes: new Map(v.nodes.map((n) => [n.id, n.cpus])),
    packages: new Map(v.packages.map((x) => [x.id, x.cpus])),
    l3: v.l3.map((d) => d.cpus),
    siblings: new Map(),
  };
}

const corePair = (cpus: CpuSet): string => cpus.toArray().join('/');

function memory(kb: number): string {
  if (kb <= 0) return '?';
  const gib = kb / 1024 / 1024;
  return gib >= 1 ? `${gib.toFixed(1)} GiB` : `${Math.round(kb / 1024)} MiB`;
}

/** The human picture of the machine. */
/**
 * `partitionsUnavailable`: why a running VM's vCPUs cannot become isolated partitions here (undefined: they can),
 * for the closing advice on isolate, partition, or both.
 */
export function renderTopology(v: TopologyView, colour: boolean, partitionsUnavailable?: string): string {
  const p = paint(colour);
  const topo = notationTopology(v);
  let out = '';
  const summary = [
    plural(v.cpus.online.size, 'CPU') + ` online (${v.cpus.online.toList()})`,
    plural(v.cores.length, 'core'),
    `${v.threadsPerCore} thread${v.threadsPerCore === 1 ? '' : 's'} per core`,
    plural(v.packages.length, 'package'),
    plural(v.nodes.length, 'NUMA node'),
    plural(v.l3.length, 'L3 cache domain'),
  ];
  out += `${p.bold('Machine:')} ${summary.join(', ')}\n`;
  if (!v.cpus.offline.isEmpty) out += `Offline: ${v.cpus.offline.toList()}\n`;
  if (!v.cpus.possible.equals(v.cpus.present)) {
    out += `Possible but not present: ${v.cpus.possible.minus(v.cpus.present).toList()}\n`;
  }
  out += '\n';

  const multiDie = v.packages.some((x) => x.dies.length > 1);
  out += table(
    v.packages.flatMap((x) => {
      const rows = [[`P${x.id}`, plural(x.dies.length, 'die'), formatNotation(x.cpus)]];
      if (multiDie) for (const d of x.dies) rows.push([`  die ${d.id}`, '', formatNotation(d.cpus)]);
      return rows;
    }),
    { header: ['PACKAGE', 'DIES', 'CPUS'], colour },
  );
  out += '\n';

  out += table(
    v.l3.map((d) => [
      `L${d.index}`,
      d.nodes.map((n) => `N${n}`).join(',') || '-',
      formatNotation(d.cpus),
      wrapWords(d.cores.map(corePair), 64),
    ]),
    { header: ['L3', 'NODE', 'CPUS', v.threadsPerCore > 1 ? 'CORES (SMT siblings)' : 'CORES'], colour },
  );
  out += '\n';

  out += table(
    v.nodes.map((n) => [
      `N${n.id}`,
      n.cpus.isEmpty ? '(memory only)' : formatNotation(n.cpus),
      memory(n.memKb),
      n.l3.map((i) => `L${i}`).join(',') || '-',
    ]),
    { header: ['NODE', 'CPUS', 'MEMORY', 'L3'], colour, align: ['left', 'left', 'right', 'left'] },
  );

  if (!v.isolated.isEmpty || !v.nohzFull.isEmpty) {
    out += '\n';
    if (!v.isolated.isEmpty) out += `Isolated at boot (isolcpus): ${formatNotation(v.isolated)}\n`;
    if (!v.nohzFull.isEmpty) out += `Tickless (nohz_full): ${formatNotation(v.nohzFull)}\n`;
  }

  const s = v.suggestion;
  out += `\n${p.bold('Suggested split:')}\n`;
  const row = (who: string, set: CpuSet): string[] => {
    const short = shortNotation(set, topo);
    return [
      who,
      set.isEmpty ? '(none)' : formatNotation(set),
      short ? `= ${short}` : '',
      plural(set.size, 'CPU'),
    ];
  };
  out += table([row('host', s.host), row('vm', s.vm)], { indent: '  ' });
  out += `  ${wrapWords(s.reason.split(' '), 100).replace(/\n/g, '\n  ')}\n`;
  if (!s.vm.isEmpty) {
    out += `  To apply it: vfio-isolate isolate ${shortNotation(s.vm, topo) ?? formatNotation(s.vm)}\n`;
    const advice =
      partitionsUnavailable === undefined
        ? 'isolate keeps the host off the VM CPUs. While the VM runs, its pinned vCPUs can also become isolated partitions (vfio-isolate partition DOMAIN, or partition = true in the profile): the kernel then stops load balancing there and keeps more housekeeping off them. Use both for the least jitter.'
        : `isolate keeps the host off the VM CPUs. Isolated partitions (vfio-isolate partition) need Linux 6.7 or newer on cgroup v2: ${partitionsUnavailable}.`;
    out += `  ${wrapWords(advice.split(' '), 100).replace(/\n/g, '\n  ')}\n`;
  }
  return out;
}

/** The JSON form (field names documented in docs/json.md, schema in json-schema.ts). */
export function topologyJson(v: TopologyView): Record<string, unknown> {
  const topo = notationTopology(v);
  return {
    command: 'topology',
    schemaVersion: 1,
    cpus: {
      possible: v.cpus.possible.toList(),
      present: v.cpus.present.toList(),
      online: v.cpus.online.toList(),
      offline: v.cpus.offline.toList(),
    },
    threadsPerCore: v.threadsPerCore,
    packages: v.packages.map((x) => ({
      id: x.id,
      notation: `P${x.id}`,
      cpus: x.cpus.toList(),
      cpuNotation: formatNotation(x.cpus),
      dies: x.dies.map((d) => ({ id: d.id, cpus: d.cpus.toList() })),
    })),
    l3: v.l3.map((d) => ({
      index: d.index,
      notation: `L${d.index}`,
      cpus: d.cpus.toList(),
      cpuNotation: formatNotation(d.cpus),
      nodes: d.nodes,
      cores: d.cores.map((c) => c.toList()),
    })),
    nodes: v.nodes.map((n) => ({
      id: n.id,
      notation: `N${n.id}`,
      cpus: n.cpus.toList(),
      cpuNotation: n.cpus.isEmpty ? null : formatNotation(n.cpus),
      memoryKiB: n.memKb,
      l3: n.l3,
    })),
    cores: v.cores.map((c) => ({
      package: c.package,
      die: c.die,
      core: c.core,
      cpus: c.cpus.toList(),
      l3: c.l3 ?? null,
      node: c.node ?? null,
    })),
    isolated: v.isolated.toList(),
    nohzFull: v.nohzFull.toList(),
    suggestion: {
      host: v.suggestion.host.toList(),
      hostNotation: v.suggestion.host.isEmpty ? null : formatNotation(v.suggestion.host),
      hostShort: shortNotation(v.suggestion.host, topo) ?? null,
      vm: v.suggestion.vm.toList(),
      vmNotation: v.suggestion.vm.isEmpty ? null : formatNotation(v.suggestion.vm),
      vmShort: shortNotation(v.suggestion.vm, topo) ?? null,
      reason: v.suggestion.reason,
    },
  };
}
